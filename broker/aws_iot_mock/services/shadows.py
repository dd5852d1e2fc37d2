"""The Device Shadow service: answers ``$aws/things/<thing>/shadow/...`` requests.

A built-in service of the device core (``aws_iot_mock.core.services``). A device (or app)
publishes to ``.../shadow[/name/<shadow>]/get|update|delete``; the request goes through the
ingress like any publish (so subscribers of the request topic see it, and ``iot:Publish`` on it
was already checked), then the core hands it to this service, which applies it with the pure
document logic in
``aws_iot_mock.aws.shadow`` and publishes the answer on ``/accepted`` or ``/rejected`` (plus
``/update/delta`` and ``/update/documents`` after an accepted update) to whoever subscribed, as
AWS does ("Device Shadow service MQTT topics", device-shadow-mqtt). The shadow is on disk before
``/accepted`` is published.

It also drains the CLI mailbox (``aws_iot_mock.state.shadows``), so ``update-thing-shadow`` from the
command line publishes the same messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_iot_mock.aws import shadow as documents
from aws_iot_mock.core.services import ServiceRequest
from aws_iot_mock.errors import StorageError
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    EventType,
    shadow_record,
    storage_reason,
)
from aws_iot_mock.state.shadows import ShadowStore

__all__ = ["ShadowOutcome", "ShadowService", "parse_request_topic"]

_OPERATIONS = ("get", "update", "delete")
_EVENT_TYPES = {
    "get": EventType.GET_THING_SHADOW,
    "update": EventType.UPDATE_THING_SHADOW,
    "delete": EventType.DELETE_THING_SHADOW,
}
# HTTP-style codes on /rejected, named as the iot-data API names the errors (botocore iot-data).
ERROR_NAMES = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    404: "ResourceNotFoundException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    500: "InternalFailureException",
}


def parse_request_topic(topic: str) -> tuple[str, str | None, str] | None:
    """``(thing name, shadow name or None, operation)`` for a shadow request topic, else None.

    Request topics: ``$aws/things/<thing>/shadow/<op>`` (classic) and
    ``$aws/things/<thing>/shadow/name/<shadow>/<op>`` (named), ``<op>`` one of get, update,
    delete. Response topics (``/accepted`` and so on) are not requests.
    """
    if not topic.startswith("$aws/things/"):
        return None
    parts = topic.split("/")
    if len(parts) == 5 and parts[3] == "shadow" and parts[4] in _OPERATIONS:
        return parts[2], None, parts[4]
    if len(parts) == 7 and parts[3] == "shadow" and parts[4] == "name" and parts[6] in _OPERATIONS:
        return parts[2], parts[5], parts[6]
    return None


@dataclass(frozen=True, slots=True)
class ShadowOutcome:
    """The messages one request produced, in publication order: ``(topic, payload)``."""

    messages: tuple[tuple[str, bytes], ...]
    accepted: bool

    @property
    def response(self) -> tuple[str, bytes]:
        """The ``/accepted`` or ``/rejected`` message (the answer to the requester)."""
        return self.messages[0]


class ShadowService:
    """Applies shadow requests and publishes the answers.

    Args:
        store: where shadows are kept.
        publish: publishes a broker-made message to subscribers (None: nobody to publish to,
            as in the CLI without a running broker).
        emit: writes an AWSIotLogsV2 record.
        clock: epoch seconds.
    """

    def __init__(
        self,
        store: ShadowStore,
        *,
        publish: Callable[[str, bytes], None] | None,
        emit: Callable[[Mapping[str, object]], None],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self._publish = publish
        self._emit = emit
        self._clock = clock

    name = "Device Shadow"
    # Classic (…/shadow/<op>) and named (…/shadow/name/<shadow>/<op>) request topics; responses
    # (…/accepted and so on) do not match parse_request_topic and are ignored.
    request_filters = ("$aws/things/+/shadow/+", "$aws/things/+/shadow/name/+/+")

    def handle(self, request: ServiceRequest) -> None:
        """Answer a publish on a shadow request topic (a built-in service of the core)."""
        parsed = parse_request_topic(request.topic)
        if parsed is None:
            return
        thing_name, shadow_name, operation = parsed
        self.process(operation, thing_name, shadow_name, request.payload, facts=request.facts)

    def drain_cli_requests(self) -> None:
        """Answer the requests the CLI posted (called on a short timer by the broker)."""
        for request in self.store.take_requests():
            outcome = self.process(
                request.operation, request.thing_name, request.shadow_name, request.payload
            )
            topic, payload = outcome.response
            self.store.answer_request(request.request_id, topic, payload)

    def process(
        self,
        operation: str,
        thing_name: str,
        shadow_name: str | None,
        payload: bytes,
        *,
        facts: ConnectionFacts | None = None,
        via_rest: bool = False,
    ) -> ShadowOutcome:
        """Apply one request, store the result, publish and log it.

        Args:
            operation: ``get``, ``update`` or ``delete``.
            thing_name: the thing.
            shadow_name: a named shadow, or None for the classic one.
            payload: the request document.
            facts: the requester's connection facts, for the log record (None: not logged).
            via_rest: a Device Shadow REST API call: AWS answers it on HTTP only, so a rejection
                and a get are not published; an accepted update or delete still publishes its
                ``/accepted`` (and ``/delta``, ``/documents``) messages to MQTT subscribers
                ("REST API ... no MQTT error messages are emitted", device-shadow-error-messages).
        """
        base = f"$aws/things/{thing_name}/shadow"
        if shadow_name is not None:
            base += f"/name/{shadow_name}"
        now = self._clock()
        client_token = _client_token(payload)
        storage: StorageError | None = None
        try:
            _check_names(thing_name, shadow_name)
            try:
                messages = self._apply(operation, thing_name, shadow_name, payload, base, now)
            except StorageError as exc:
                # A storage failure is the service's, not the device's: answer 500 on
                # /rejected (nothing was stored, nothing accepted) and keep the connection.
                storage = exc
                raise documents.ShadowError(500, documents.MSG_INTERNAL) from exc
        except documents.ShadowError as error:
            rejected = documents.rejected_document(error, now=now, client_token=client_token)
            messages = ((f"{base}/{operation}/rejected", _json(rejected)),)
            outcome = ShadowOutcome(messages, accepted=False)
            failure: tuple[str, str] | None = (
                ERROR_NAMES.get(error.code, str(error.code)),
                error.message,
            )
            if storage is not None:
                failure = (storage_reason(storage.fault).name, f"{storage}; nothing was stored")
        else:
            outcome = ShadowOutcome(messages, accepted=True)
            failure = None
        quiet = via_rest and (not outcome.accepted or operation == "get")
        if self._publish is not None and not quiet:
            for topic, body in outcome.messages:
                self._publish(topic, body)
        if facts is not None:
            self._emit(
                shadow_record(
                    _EVENT_TYPES[operation],
                    facts,
                    thing_name=thing_name,
                    shadow_name=shadow_name,
                    topic_name=f"{base}/{operation}",
                    failure=failure,
                )
            )
        return outcome

    def _apply(  # noqa: PLR0917 (private; the request's parts)
        self,
        operation: str,
        thing_name: str,
        shadow_name: str | None,
        payload: bytes,
        base: str,
        now: float,
    ) -> tuple[tuple[str, bytes], ...]:
        request = documents.parse_request(payload, operation=operation)
        current = self.store.get(thing_name, shadow_name)
        token = request.get("clientToken")
        client_token = token if isinstance(token, str) else None
        if operation == "get":
            document = documents.get_document(
                current,
                now=now,
                client_token=client_token,
                thing_name=thing_name,
                shadow_name=shadow_name,
            )
            return ((f"{base}/get/accepted", _json(document)),)
        if operation == "delete":
            tombstone, accepted = documents.delete(
                current,
                now=now,
                client_token=client_token,
                thing_name=thing_name,
                shadow_name=shadow_name,
            )
            self.store.put(tombstone)
            return ((f"{base}/delete/accepted", _json(accepted)),)
        result = documents.apply_update(
            current, request, now=now, thing_name=thing_name, shadow_name=shadow_name
        )
        # On disk before anyone is told it was accepted.
        self.store.put(result.state)
        messages = [(f"{base}/update/accepted", _json(result.accepted))]
        if result.delta is not None:
            messages.append((f"{base}/update/delta", _json(result.delta)))
        messages.append((f"{base}/update/documents", _json(result.documents)))
        return tuple(messages)


def _check_names(thing_name: str, shadow_name: str | None) -> None:
    """Thing and shadow names as AWS allows them (API_iotdata_UpdateThingShadow): 400 if not.

    AWS documents the patterns but not the MQTT message for a bad name; ours names the rule.
    """
    if not documents.THING_NAME_PATTERN.fullmatch(thing_name):
        raise documents.ShadowError(
            400, "Invalid thing name: 1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-'"
        )
    if shadow_name is not None and not documents.SHADOW_NAME_PATTERN.fullmatch(shadow_name):
        raise documents.ShadowError(
            400, "Invalid shadow name: 1 to 64 characters of a-z, A-Z, 0-9, '$', ':', '_' and '-'"
        )


def _client_token(payload: bytes) -> str | None:
    """Best effort: the request's clientToken, echoed even on /rejected."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    token = data.get("clientToken") if isinstance(data, dict) else None
    return token if isinstance(token, str) and len(token.encode()) <= 64 else None


def _json(document: Mapping[str, object]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
