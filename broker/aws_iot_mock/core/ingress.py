"""The one way in for "a principal publishes X": MQTT, HTTPS, WebSocket and services alike. Pure.

Every publish, whichever door it came through, passes the same checks in the same order and is
logged the same way, so a message that AWS refuses over MQTT is refused here over HTTPS too:

1. QoS: AWS IoT supports QoS 0 and 1 ("When QoS level 2 is requested, the message broker doesn't
   send a PUBACK or SUBACK", https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html).
2. Payload size: "The payload for every publish request is limited to 128 KB" (AWS IoT Core
   quotas, https://docs.aws.amazon.com/general/latest/gr/iot-core.html).
3. The topic: a valid topic name (256 bytes, 7 slashes, no wildcards); a ``$`` topic only as
   AWS's reserved-topic table allows (``aws_iot_mock.aws.reserved_topics``: a request of a
   service that is emulated, or Basic Ingest), never a response topic, never with RETAIN.
4. The publisher's policies: ``iot:Publish``, plus ``iot:RetainPublish`` with RETAIN.
5. MQTT 5 Payload Format Indicator: 1 (UTF-8) on a payload that is not UTF-8 is refused.

An accepted message is logged (``Publish-In``) before it is routed, so that the log reads cause
before effect; it is routed (and stored, for persistent sessions and RETAIN) unless it is Basic
Ingest, which reaches no subscriber; the publisher is acknowledged; then the built-in service
whose request topic it is, if any, answers it (so an MQTT client reads its PUBACK before the
service's ``/accepted``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Final

from aws_iot_mock.aws.limits import (
    PAYLOAD_MAX_BYTES,
    RETAINED_MESSAGES_MAX,
    USER_PROPERTIES_MAX_BYTES,
    clamp_message_expiry,
)
from aws_iot_mock.core.permissions import PUBLISH, RETAIN_PUBLISH, Permissions
from aws_iot_mock.core.routing import PlainRoute, Router
from aws_iot_mock.core.services import ServiceRequest, ServiceTable
from aws_iot_mock.errors import StorageError
from aws_iot_mock.frozen_values import fast_factory
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    EventType,
    Reason,
    SuccessLog,
    event_failure,
    storage_reason,
    success_logger,
)
from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties
from aws_iot_mock.mqtt.message import Message, new_message
from aws_iot_mock.mqtt.topics import validate_topic_name

__all__ = ["PublishIngress", "PublishRefusal", "PublishRequest", "Publisher", "new_publish_request"]

# Verdicts on topic names are pure functions of (topic, retain); devices publish to a handful of
# topics again and again. Bounded: a publisher cycling through many topics starts the cache over.
_TOPIC_VERDICT_CACHE = 4096
# What one user property costs on top of its key and value, as MQTT 5 encodes it: the property
# identifier (one byte) and the two strings' two-byte lengths (MQTT Version 5.0, section 3.3.2.3.7
# User Property, section 1.5.7 UTF-8 String Pair). Counting it makes 26,000 empty properties
# 130 KB, as they are on the wire, instead of nothing.
_USER_PROPERTY_FRAMING = 5

Emit = Callable[[Mapping[str, object]], None]


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who publishes, as far as the ingress needs to know.

    Attributes:
        facts: the publisher's connection facts, for its log records.
        permissions: its policies; None for the broker's own services (trusted).
        client_id: the MQTT client ID (MQTT 5 No Local compares it), None over HTTPS.
    """

    facts: ConnectionFacts
    permissions: Permissions | None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One publish as a door received it (MQTT PUBLISH, HTTPS ``POST /topics/{topic}``).

    Attributes:
        topic: the topic name (MQTT 5 topic aliases already resolved by the door).
        payload: the payload.
        qos: the requested QoS.
        retain: the RETAIN flag.
        properties: MQTT 5 properties (from the PUBLISH, or the HTTPS request's parameters and
            ``x-amz-mqtt5-*`` headers); only the forwardable ones reach subscribers, and the
            Message Expiry Interval becomes a deadline.
        trace_id: the log records' ``traceId`` (an HTTPS request's ``x-amzn-RequestId``), or
            None for a fresh one.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = EMPTY_PROPERTIES
    trace_id: str | None = None


# ``PublishRequest(...)`` at a fraction of the frozen ``__init__``'s cost, for the doors' hot
# paths (see ``aws_iot_mock.frozen_values``).
new_publish_request: Final = fast_factory(PublishRequest)


@dataclass(frozen=True, slots=True)
class PublishRefusal:
    """Why a publish was refused: the reason (its log name) and a sentence for the log."""

    reason: Reason
    details: str


# Read once: an Enum member's attribute access costs as much as a dict build (Python 3.11), and
# Publish-In is logged for every message at INFO.
_PUBLISH_IN = EventType.PUBLISH_IN

# (refusal or None, whether subscribers get it)
_TopicVerdict = tuple[PublishRefusal | None, bool]


class PublishIngress:
    """Checks, logs, routes and dispatches publishes.

    Args:
        router: the sessions and subscriptions.
        services: the built-in services, by request topic.
        emit: writes an AWSIotLogsV2 record.
        log_success: writes the ``Publish-In`` success record; by default through ``emit``.
        log_successes: whether INFO records are built at all (False below level INFO).
        clock: wall-clock epoch seconds (message timestamps and expiry deadlines).
    """

    def __init__(
        self,
        router: Router,
        services: ServiceTable,
        *,
        emit: Emit,
        log_success: SuccessLog | None = None,
        log_successes: bool,
        clock: Callable[[], float] = time.time,
        user_properties_max_bytes: int = USER_PROPERTIES_MAX_BYTES,
        retained_messages_max: int = RETAINED_MESSAGES_MAX,
    ) -> None:
        self._user_properties_max_bytes = user_properties_max_bytes
        self._retained_messages_max = retained_messages_max
        self._router = router
        self._services = services
        self._emit = emit
        self._log_success = log_success or success_logger(emit)
        self.log_successes = log_successes
        self._clock = clock
        self._topic_verdicts: dict[tuple[str, bool], _TopicVerdict] = {}

    def publish(
        self,
        publisher: Publisher,
        request: PublishRequest,
        acknowledge: Callable[[], None] | None = None,
    ) -> PublishRefusal | None:
        """Check, log, route and dispatch one publish.

        Args:
            publisher: who publishes.
            request: what.
            acknowledge: called once the message is routed and stored, before a built-in
                service answers it (the MQTT door sends the PUBACK from here).

        Returns:
            None when it was accepted (routed, stored where needed, and answered by its service),
            else the refusal, already logged as a ``Publish-In`` failure. What the publisher is
            told (PUBACK code, disconnect, HTTP status) is the door's decision.
        """
        refusal, routed = self._check(publisher, request)
        if refusal is not None:
            return self._refused(publisher, request, refusal)

        log_success: Callable[[], None] | None = None
        if self.log_successes:
            # A ``partial`` (made and called in C) rather than a closure: one Python frame
            # fewer per message at INFO.
            log_success = partial(
                self._log_success,
                _PUBLISH_IN,
                publisher.facts,
                request.topic,
                request.retain,
                request.trace_id,
            )

        message = build_message(request, publisher.client_id, self._clock())
        if routed:
            try:
                # Publish-In is logged once the message is stored, before any Publish-Out.
                self._router.publish(message, on_stored=log_success)
            except StorageError as error:
                # Not stored, so not acknowledged: the publisher learns it from its door.
                return self._refused(
                    publisher,
                    request,
                    PublishRefusal(
                        storage_reason(error.fault),
                        f"{error}; the message was not stored, delivered or acknowledged",
                    ),
                )
        else:
            if log_success is not None:
                log_success()
            self._router.observe(message)
        if acknowledge is not None:
            acknowledge()
        if request.topic.startswith("$aws/"):
            self._services.dispatch(
                ServiceRequest(request.topic, request.payload, publisher.facts, publisher.client_id)
            )
        return None

    def plain_publisher(
        self, publisher: Publisher, topic: str
    ) -> Callable[[bytes], PublishRefusal | None] | None:
        """A publish function for one run of plain messages from ``publisher`` on ``topic``.

        A plain message is QoS 0, without RETAIN and without properties: what a device sending
        telemetry in a loop sends, many to one read. The returned function publishes one such
        payload exactly as ``publish(publisher, PublishRequest(topic, payload))`` would (same
        checks, log records, routing and return value), but the checks that depend only on the
        topic and the publisher's policies are made once, here.

        The function is valid only until control returns to the event loop: a policy, registry
        or service change can only happen in between. A door uses it for the PUBLISH packets of
        one read.

        Returns:
            None when a message on ``topic`` needs the full path: it would be refused, it is
            answered by a built-in service (``$aws/``), or it reaches no subscriber (Basic
            Ingest). The door then calls ``publish`` for each message.
        """
        if topic.startswith("$"):
            return None
        refusal, routed = self._check(publisher, new_publish_request(topic, b""))
        if refusal is not None or not routed:
            return None
        route = self._router.plain_route(topic, publisher.client_id)
        return partial(self._publish_plain, publisher, topic, route)

    def _publish_plain(
        self, publisher: Publisher, topic: str, route: PlainRoute, payload: bytes
    ) -> PublishRefusal | None:
        """``publish`` of a plain message whose topic and publisher ``plain_publisher`` checked."""
        if len(payload) > PAYLOAD_MAX_BYTES:
            return self.publish(publisher, new_publish_request(topic, payload))
        log_success: Callable[[], None] | None = None
        if self.log_successes:
            log_success = partial(
                self._log_success, _PUBLISH_IN, publisher.facts, topic, False, None
            )
        message = new_message(
            topic, payload, 0, False, EMPTY_PROPERTIES, None, publisher.client_id, self._clock()
        )
        try:
            route(message, log_success)  # (positional: a partial merges keywords per call)
        except StorageError as error:  # (a plain message is never stored; kept for the contract)
            return self._refused(
                publisher,
                new_publish_request(topic, payload),
                PublishRefusal(
                    storage_reason(error.fault),
                    f"{error}; the message was not stored, delivered or acknowledged",
                ),
            )
        return None

    def _refused(
        self, publisher: Publisher, request: PublishRequest, refusal: PublishRefusal
    ) -> PublishRefusal:
        """Log ``refusal`` as the ``Publish-In`` failure of ``request``; return it."""
        self._emit(
            event_failure(
                EventType.PUBLISH_IN,
                refusal.reason,
                refusal.details,
                publisher.facts,
                topic_name=request.topic,
                trace_id=request.trace_id,
            )
        )
        return refusal

    def _check(
        self, publisher: Publisher, request: PublishRequest
    ) -> tuple[PublishRefusal | None, bool]:
        topic = request.topic
        if request.qos > 1:
            refusal = PublishRefusal(
                Reason.QOS_NOT_SUPPORTED, "QoS 2 PUBLISH: not acknowledged and not delivered"
            )
            return refusal, False
        if len(request.payload) > PAYLOAD_MAX_BYTES:
            refusal = PublishRefusal(
                Reason.PAYLOAD_LIMIT_EXCEEDED,
                "Message payload exceeds size limit for message type.",
            )
            return refusal, False
        user_properties = request.properties.user_properties
        if user_properties:
            size = sum(
                _USER_PROPERTY_FRAMING + len(key.encode()) + len(value.encode())
                for key, value in user_properties
            )
            if size > self._user_properties_max_bytes:
                refusal = PublishRefusal(
                    Reason.USER_PROPERTIES_LIMIT_EXCEEDED,
                    f"{len(user_properties)} user properties of {size} bytes; at most "
                    f"{self._user_properties_max_bytes} bytes per message",
                )
                return refusal, False
        known = self._topic_verdicts.get((topic, request.retain))  # topic_verdict's cache
        verdict, routed = known if known is not None else self.topic_verdict(topic, request.retain)
        if verdict is not None:
            return verdict, False
        permissions = publisher.permissions
        if permissions is not None:
            decision = permissions.check(PUBLISH, "topic", topic)
            if decision.allowed and request.retain:
                # AWS: publishing with RETAIN needs iot:RetainPublish on top of iot:Publish.
                decision = permissions.check(RETAIN_PUBLISH, "topic", topic)
            if not decision.allowed:
                refusal = PublishRefusal(
                    Reason.AUTHORIZATION_FAILURE, f"Authorization Failure: {decision.details}"
                )
                return refusal, False
        if request.retain and request.payload and self._retained_full(topic):
            refusal = PublishRefusal(
                Reason.RETAINED_MESSAGES_LIMIT_EXCEEDED,
                f"{self._retained_messages_max} retained messages are stored; a new one is "
                "throttled (replacing or deleting one is allowed)",
            )
            return refusal, False
        if request.properties.payload_format_indicator == 1 and not _is_utf8(request.payload):
            refusal = PublishRefusal(
                Reason.PAYLOAD_FORMAT_INVALID,
                "Payload Format Indicator says UTF-8 but the payload is not valid UTF-8",
            )
            return refusal, False
        return None, routed

    def _retained_full(self, topic: str) -> bool:
        retained = self._router.retained
        return topic not in retained and len(retained) >= self._retained_messages_max

    def topic_verdict(self, topic: str, retain: bool) -> _TopicVerdict:
        """Whether a client may publish to ``topic`` (also an MQTT will's topic).

        Returns:
            ``(refusal, routed)``: the refusal (None when allowed) and whether subscribers get
            messages on ``topic`` (not Basic Ingest's).
        """
        key = (topic, retain)
        verdicts = self._topic_verdicts
        if key in verdicts:
            return verdicts[key]
        refusal: PublishRefusal | None = None
        name_problem = validate_topic_name(topic)
        if name_problem is not None:
            refusal = PublishRefusal(Reason.TOPIC_INVALID, name_problem.reason)
        else:
            reserved = self._services.publish_refusal(topic, retain=retain)
            if reserved is not None:
                refusal = PublishRefusal(reserved.reason, reserved.details)
        verdict = (refusal, self._services.routes_to_subscribers(topic))
        if len(verdicts) >= _TOPIC_VERDICT_CACHE:
            verdicts.clear()
        verdicts[key] = verdict
        return verdict

    def forget_verdicts(self) -> None:
        """Drop cached topic verdicts (a service was registered: its topics are now served)."""
        self._topic_verdicts.clear()


def build_message(request: PublishRequest, sender: str | None, now: float) -> Message:
    """Build the routed ``Message`` of a publish (also used for MQTT wills).

    Only the properties the broker forwards are kept; a Message Expiry Interval becomes
    ``expires_at``, clamped as AWS clamps it (1 s to 7 days).
    """
    properties = request.properties
    if properties is EMPTY_PROPERTIES:  # every MQTT 3.1.1 publish: nothing to copy
        return new_message(
            request.topic,
            request.payload,
            request.qos,
            request.retain,
            EMPTY_PROPERTIES,
            None,
            sender,
            now,
        )
    expires_at = None
    if properties.message_expiry_interval is not None:
        expires_at = now + clamp_message_expiry(properties.message_expiry_interval)
    forwarded = Properties(
        payload_format_indicator=properties.payload_format_indicator,
        content_type=properties.content_type,
        response_topic=properties.response_topic,
        correlation_data=properties.correlation_data,
        user_properties=properties.user_properties,
    )
    return new_message(
        topic=request.topic,
        payload=request.payload,
        qos=request.qos,
        retain=request.retain,
        properties=forwarded,
        expires_at=expires_at,
        sender=sender,
        published_at=now,
    )


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
