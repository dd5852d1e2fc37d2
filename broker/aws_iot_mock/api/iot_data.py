"""The ``iot-data`` REST API (AWS IoT Data Plane) over the device core.

Paths, parameters, shapes and errors as botocore's ``iot-data`` 2015-05-28 service model has them
(https://docs.aws.amazon.com/iot/latest/apireference/API_Operations_AWS_IoT_Data_Plane.html):

- Publish: ``POST /topics/{topic}``; ``iot:Publish`` (and ``iot:RetainPublish``) on
  ``topic/<topic>``.
- GetThingShadow, UpdateThingShadow, DeleteThingShadow: ``GET``/``POST``/``DELETE
  /things/{thingName}/shadow?name=``; ``iot:<Operation>`` on ``thing/<thing>`` (a named
  shadow: ``thing/<thing>/<shadow>``).
- ListNamedShadowsForThing: ``GET /api/things/shadow/ListNamedShadowsForThing/{thingName}``;
  ``iot:ListNamedShadowsForThing`` on ``*``.
- GetRetainedMessage: ``GET /retainedMessage/{topic}``; ``iot:GetRetainedMessage`` on
  ``topic/<topic>``. ListRetainedMessages: ``GET /retainedMessage``; on ``*``.
- GetConnection, DeleteConnection: ``GET``/``DELETE /connections/{clientId}``;
  ListSubscriptions: ``GET .../subscriptions``; SendDirectMessage: ``POST .../messages``;
  ``iot:<Operation>`` on ``client/<clientId>``.

A publish goes through the device core's one ingress, so it meets exactly the checks, RETAIN
rules and limits of an MQTT PUBLISH and reaches MQTT subscribers; a shadow call goes through the
one Device Shadow service, so an accepted update publishes ``/accepted``, ``/delta`` and
``/documents`` to MQTT subscribers, while a refusal is answered on HTTP only (AWS: "no MQTT error
messages are emitted", device-shadow-error-messages). A refused call answers with AWS's
REST-JSON error; authentication and authorization failures are ``403 ForbiddenException``
("Forbidden"), as every captured AWS data-plane response shows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.api_pages import page
from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.ingress import Publisher, PublishRequest
from aws_iot_mock.core.permissions import Permissions
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response, json_response
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    EventType,
    Reason,
    event_failure,
    event_success,
    shadow_record,
)
from aws_iot_mock.mqtt.codec import Properties
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.mqtt.topics import validate_topic_name
from aws_iot_mock.services.shadows import ERROR_NAMES, ShadowService

__all__ = ["ApiCaller", "IotDataApi"]

Emit = Callable[[Mapping[str, object]], None]
_Handler = Callable[["HttpRequest", "ApiCaller", list[str], str], Awaitable[HttpResponse]]

_FORBIDDEN = "Forbidden"
# x-amz-mqtt5-payload-format-indicator values (PayloadFormatIndicator in the model).
_PAYLOAD_FORMATS = {"UNSPECIFIED_BYTES": 0, "UTF8_DATA": 1}
_SHADOW_ACTIONS = {
    "GET": ("get", "iot:GetThingShadow", EventType.GET_THING_SHADOW),
    "POST": ("update", "iot:UpdateThingShadow", EventType.UPDATE_THING_SHADOW),
    "DELETE": ("delete", "iot:DeleteThingShadow", EventType.DELETE_THING_SHADOW),
}
# SendDirectMessage's confirmation timeout: "The total API response time ... cannot exceed
# 10 seconds" (the model's documentation of `timeout`); default 5 seconds.
_DIRECT_TIMEOUT_DEFAULT = 5
_DIRECT_TIMEOUT_MAX = 10


@dataclass(frozen=True)
class ApiCaller:
    """The authenticated caller of one request.

    Attributes:
        principal: the certificate (X.509 doors) or IAM identity (SigV4).
        permissions: its policies, evaluated as AWS evaluates them for this principal.
        facts: for log records (``protocol`` ``HTTP``).
    """

    principal: Principal
    permissions: Permissions
    facts: ConnectionFacts


class _LoggedError(AwsApiError):
    """An API error whose log record is already written (by the ingress, a service, or here)."""


class _Refused(Exception):
    """An authorization failure: answered 403 Forbidden, logged with its details."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


class IotDataApi:
    """Answers iot-data requests for authenticated callers.

    Args:
        core: the device core (publishes, retained messages, connections).
        shadows: the Device Shadow service.
        emit: writes an AWSIotLogsV2 record.
        log_successes: whether INFO records are written.
        clock: epoch seconds.
    """

    def __init__(
        self,
        core: DeviceCore,
        shadows: ShadowService,
        *,
        emit: Emit,
        log_successes: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = core
        self._shadows = shadows
        self._emit = emit
        self._log_successes = log_successes
        self._clock = clock

    async def handle(
        self, request: HttpRequest, caller: ApiCaller, request_id: str
    ) -> HttpResponse:
        """Answer one request (never raises for anything a client can send)."""
        try:
            handler, params = self._route(request)
            return await handler(request, caller, params, request_id)
        except AwsApiError as error:
            if not isinstance(error, _LoggedError):
                self._emit(
                    event_failure(
                        _event_of(request),
                        Reason.HTTP_REQUEST_REFUSED,
                        f"{error.code}: {error.message}",
                        caller.facts,
                    )
                )
            return error_response(error, request_id)

    # -- routing -------------------------------------------------------------------------------

    def _route(self, request: HttpRequest) -> tuple[_Handler, list[str]]:
        """The handler of ``request``'s operation and its path labels.

        Raises:
            AwsApiError: 404 for a path no operation has, 405 for a known path and another method.
        """
        try:
            segments = request.path_segments()
        except UnicodeDecodeError:
            raise AwsApiError("InvalidRequestException", "The path is not valid UTF-8") from None
        methods = self._operations_at(segments)
        if methods is None:
            raise AwsApiError(
                "ResourceNotFoundException", f"No iot-data operation at {request.path}"
            )
        handler = methods.get(request.method)
        if handler is None:
            raise AwsApiError(
                "MethodNotAllowedException",
                f"Method {request.method} is not allowed on {request.path}; "
                f"allowed: {', '.join(sorted(methods))}",
            )
        return handler, segments

    def _operations_at(self, segments: list[str]) -> dict[str, _Handler] | None:
        head, count = (segments[0] if segments else ""), len(segments)
        if head == "topics" and count >= 2 and segments[1]:
            return {"POST": self._publish}
        if head == "things" and count == 3 and segments[2] == "shadow" and segments[1]:
            return dict.fromkeys(_SHADOW_ACTIONS, self._shadow)
        if segments[:4] == ["api", "things", "shadow", "ListNamedShadowsForThing"] and count == 5:
            return {"GET": self._list_named_shadows}
        if head == "retainedMessage":
            if count == 1 or (count == 2 and not segments[1]):
                return {"GET": self._list_retained}
            return {"GET": self._get_retained}
        if head == "connections" and count >= 2 and segments[1]:
            if count == 2:
                return {"GET": self._get_connection, "DELETE": self._delete_connection}
            if count == 3 and segments[2] == "subscriptions":
                return {"GET": self._list_subscriptions}
            if count == 3 and segments[2] == "messages":
                return {"POST": self._send_direct_message}
        return None

    # -- Publish -------------------------------------------------------------------------------

    async def _publish(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        # The {topic} label is not greedy in the model (botocore sends / as %2F), but curl users
        # write /topics/a/b as AWS's own example does: both mean the topic a/b.
        topic = "/".join(segments[1:])
        query = request.query()
        properties = _mqtt5_properties(request, query)
        publish = PublishRequest(
            topic,
            request.body,
            qos=_int_param(query, "qos", 0, 1, default=0) or 0,
            retain=_bool_param(query, "retain"),
            properties=properties,
            trace_id=request_id,
        )
        refusal = self._core.publish(Publisher(caller.facts, caller.permissions), publish)
        if refusal is not None:  # already logged by the ingress
            error = _publish_error(refusal.reason, refusal.details)
            raise _LoggedError(error.code, error.message, status=error.status)
        return json_response({"message": "OK", "traceId": request_id}, request_id)

    # -- Device Shadow REST API ----------------------------------------------------------------

    async def _shadow(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        operation, action, event = _SHADOW_ACTIONS[request.method]
        thing_name = segments[1]
        shadow_name = request.query().get("name") or None
        resource = thing_name if shadow_name is None else f"{thing_name}/{shadow_name}"
        try:
            self._authorize(caller, action, "thing", resource)
        except _Refused as refused:
            self._emit(
                shadow_record(
                    event,
                    caller.facts,
                    thing_name=thing_name,
                    shadow_name=shadow_name,
                    topic_name=request.path,
                    failure=(Reason.AUTHORIZATION_FAILURE.name, refused.details),
                )
            )
            raise _LoggedError("ForbiddenException", _FORBIDDEN) from None
        payload = request.body if operation == "update" else b""
        outcome = self._shadows.process(
            operation, thing_name, shadow_name, payload, facts=caller.facts, via_rest=True
        )
        _topic, body = outcome.response
        if outcome.accepted:
            return HttpResponse(
                200,
                (("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)),
                body,
            )
        rejected = json.loads(body)  # the shadow service logged the rejection
        code = int(rejected["code"])
        raise _LoggedError(
            ERROR_NAMES.get(code, "InternalFailureException"), rejected["message"], status=code
        )

    async def _list_named_shadows(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        thing_name = segments[4]
        self._authorize_or_forbid(
            caller,
            action="iot:ListNamedShadowsForThing",
            kind="*",
            name="",
            event=None,
            request=request,
        )
        query = request.query()
        names = self._shadows.store.list_named_shadows(thing_name)
        results, token = page(
            names,
            _int_param(query, "pageSize", 1, 100, default=None),
            query.get("nextToken"),
            limit=100,
            default=25,
            name="pageSize",
        )
        document: dict[str, object] = {"results": list(results), "timestamp": int(self._clock())}
        if token is not None:
            document["nextToken"] = token
        return json_response(document, request_id)

    # -- retained messages ---------------------------------------------------------------------

    async def _get_retained(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        topic = "/".join(segments[1:])
        event = EventType.GET_RETAINED_MESSAGE
        self._authorize_or_forbid(
            caller,
            action="iot:GetRetainedMessage",
            kind="topic",
            name=topic,
            event=event,
            request=request,
        )
        message = self._core.router.retained.get(topic)
        if message is None or _expired(message, self._clock()):
            raise AwsApiError(
                "ResourceNotFoundException", f"No retained message exists for topic: {topic}"
            )
        if self._log_successes:
            self._emit(event_success(event, caller.facts, topic_name=topic))
        document: dict[str, object] = {
            "topic": message.topic,
            "payload": base64.b64encode(message.payload).decode("ascii"),
            "qos": message.qos,
            "lastModifiedTime": int(message.published_at * 1000),
        }
        if message.properties.user_properties:
            pairs = [{key: value} for key, value in message.properties.user_properties]
            document["userProperties"] = base64.b64encode(json.dumps(pairs).encode()).decode()
        return json_response(document, request_id)

    async def _list_retained(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        event = EventType.LIST_RETAINED_MESSAGE
        self._authorize_or_forbid(
            caller,
            action="iot:ListRetainedMessages",
            kind="*",
            name="",
            event=event,
            request=request,
        )
        query = request.query()
        now = self._clock()
        messages = sorted(
            (m for m in self._core.router.retained.values() if not _expired(m, now)),
            key=lambda m: m.topic,
        )
        chosen, token = page(
            messages,
            _int_param(query, "maxResults", 1, 200, default=None),
            query.get("nextToken"),
            limit=200,
        )
        if self._log_successes:
            self._emit(event_success(event, caller.facts))
        document: dict[str, object] = {
            "retainedTopics": [
                {
                    "topic": m.topic,
                    "payloadSize": len(m.payload),
                    "qos": m.qos,
                    "lastModifiedTime": int(m.published_at * 1000),
                }
                for m in chosen
            ]
        }
        if token is not None:
            document["nextToken"] = token
        return json_response(document, request_id)

    # -- connections ---------------------------------------------------------------------------

    async def _get_connection(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        client_id = _client_id(segments[1])
        self._authorize_or_forbid(
            caller,
            action="iot:GetConnection",
            kind="client",
            name=client_id,
            event=None,
            request=request,
        )
        with_socket = _bool_param(request.query(), "includeSocketInformation")
        session = self._core.router.sessions.get(client_id)
        connection = self._core.connection_for(client_id)
        last = self._core.last_disconnect(client_id)
        if session is None and last is None:
            raise AwsApiError("ResourceNotFoundException", f"No connection for client {client_id}")
        document: dict[str, object] = {"clientId": client_id, "connected": connection is not None}
        if connection is not None:
            document["cleanSession"] = connection.clean_start
            document["keepAliveDuration"] = connection.keep_alive
            if connection.connected_at is not None:
                document["connectedSince"] = int(connection.connected_at * 1000)
            if with_socket:
                document["sourceIp"] = connection.facts.source_ip
                document["sourcePort"] = connection.facts.source_port
        elif session is not None:  # offline, with a persistent session
            document["cleanSession"] = False
            if session.disconnected_at is not None:
                document["disconnectedSince"] = int(session.disconnected_at * 1000)
                document["sessionExpiry"] = int(
                    (session.disconnected_at + session.expiry_interval) * 1000
                )
            if session.disconnect_reason is not None:
                document["disconnectReason"] = session.disconnect_reason
        elif last is not None:  # gone within the hour AWS remembers it for
            document["cleanSession"] = True
            document["disconnectedSince"] = int(last[0] * 1000)
            document["disconnectReason"] = last[1]
        return json_response(document, request_id)

    async def _delete_connection(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        client_id = _client_id(segments[1])
        event = EventType.DELETE_CONNECTION
        self._authorize_or_forbid(
            caller,
            action="iot:DeleteConnection",
            kind="client",
            name=client_id,
            event=event,
            request=request,
        )
        query = request.query()
        if not self._core.delete_connection(
            client_id,
            clean_session=_bool_param(query, "cleanSession"),
            prevent_will=_bool_param(query, "preventWillMessage"),
        ):
            raise AwsApiError("ResourceNotFoundException", f"Client {client_id} is not connected")
        if self._log_successes:
            self._emit(event_success(event, caller.facts))
        return HttpResponse(200, (("x-amzn-RequestId", request_id),))

    async def _list_subscriptions(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        client_id = _client_id(segments[1])
        self._authorize_or_forbid(
            caller,
            action="iot:ListSubscriptions",
            kind="client",
            name=client_id,
            event=None,
            request=request,
        )
        session = self._core.router.sessions.get(client_id)
        if session is None:
            raise AwsApiError("ResourceNotFoundException", f"No session for client {client_id}")
        query = request.query()
        filters = [
            {"topicFilter": topic_filter, "qos": options.qos}
            for topic_filter, options in session.subscriptions.items()
        ]
        chosen, token = page(
            filters,
            _int_param(query, "maxResults", 1, 200, default=None),
            query.get("nextToken"),
            limit=200,
            default=20,
        )
        document: dict[str, object] = {"subscriptions": list(chosen)}
        if token is not None:
            document["nextToken"] = token
        return json_response(document, request_id)

    async def _send_direct_message(
        self, request: HttpRequest, caller: ApiCaller, segments: list[str], request_id: str
    ) -> HttpResponse:
        client_id = _client_id(segments[1])
        self._authorize_or_forbid(
            caller,
            action="iot:SendDirectMessage",
            kind="client",
            name=client_id,
            event=None,
            request=request,
        )
        query = request.query()
        topic = query.get("topic", "")
        problem = validate_topic_name(topic) if topic else None
        if problem is not None:
            raise AwsApiError("InvalidRequestException", f"Invalid topic: {problem.reason}")
        if not topic:
            raise AwsApiError("InvalidRequestException", "Invalid topic: a topic is required")
        confirm = _bool_param(query, "confirmation")
        timeout = _int_param(query, "timeout", 1, _DIRECT_TIMEOUT_MAX, default=None)
        message = Message(
            topic,
            request.body,
            qos=1 if confirm else 0,
            properties=_mqtt5_properties(request, query),
            published_at=self._clock(),
        )
        acknowledged: asyncio.Future[None] | None = None
        on_ack = None
        if confirm:
            acknowledged = asyncio.get_running_loop().create_future()
            done = acknowledged

            def on_ack() -> None:
                if not done.done():
                    done.set_result(None)

        delivered = self._core.router.deliver_direct(client_id, message, on_acknowledged=on_ack)
        if delivered is None:
            raise AwsApiError("ResourceNotFoundException", f"Client {client_id} is not connected")
        if not delivered:
            raise AwsApiError(
                "ForbiddenException", f"The receiver's policy does not allow iot:Receive on {topic}"
            )
        if acknowledged is not None:
            wait = timeout if timeout is not None else _DIRECT_TIMEOUT_DEFAULT
            try:
                await asyncio.wait_for(acknowledged, wait)
            except TimeoutError:
                raise AwsApiError(
                    "GatewayTimeoutException",
                    f"No delivery confirmation (PUBACK) from {client_id} within {wait} s",
                ) from None
        return json_response({"message": "OK", "traceId": request_id}, request_id)

    # -- authorization -------------------------------------------------------------------------

    def _authorize(self, caller: ApiCaller, action: str, kind: str, name: str) -> None:
        decision = caller.permissions.check(action, kind, name)
        if not decision.allowed:
            raise _Refused(f"Authorization Failure: {decision.details}")

    def _authorize_or_forbid(
        self,
        caller: ApiCaller,
        *,
        action: str,
        kind: str,
        name: str,
        event: EventType | None,
        request: HttpRequest,
    ) -> None:
        """Check ``action``; on a denial log it and answer 403 ForbiddenException."""
        try:
            self._authorize(caller, action, kind, name)
        except _Refused as refused:
            self._emit(
                event_failure(
                    event or EventType.CONNECT,
                    Reason.AUTHORIZATION_FAILURE,
                    refused.details,
                    caller.facts,
                    topic_name=name if kind == "topic" else None,
                )
            )
            raise _LoggedError("ForbiddenException", _FORBIDDEN) from None


# -- parameters ------------------------------------------------------------------------------------


def _int_param(
    query: Mapping[str, str], name: str, low: int, high: int, *, default: int | None
) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise AwsApiError("InvalidRequestException", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise AwsApiError("InvalidRequestException", f"{name} must be between {low} and {high}")
    return value


def _bool_param(query: Mapping[str, str], name: str) -> bool:
    text = query.get(name, "false").lower()
    if text not in ("true", "false"):
        raise AwsApiError("InvalidRequestException", f"{name} must be true or false")
    return text == "true"


def _client_id(text: str) -> str:
    if text.startswith("$") or len(text) > 128:
        raise AwsApiError(
            "InvalidRequestException", "clientId is 1-128 characters and can't start with $"
        )
    return text


def _mqtt5_properties(request: HttpRequest, query: Mapping[str, str]) -> Properties:
    """The MQTT 5 properties of a Publish or SendDirectMessage request (parameters and headers)."""
    response_topic = query.get("responseTopic") or None
    if response_topic is not None and validate_topic_name(response_topic) is not None:
        raise AwsApiError("InvalidRequestException", "responseTopic is not a valid topic name")
    expiry_text = query.get("messageExpiry")
    expiry = None
    if expiry_text:
        try:
            expiry = int(expiry_text)
        except ValueError:
            raise AwsApiError(
                "InvalidRequestException", "messageExpiry must be an integer"
            ) from None
        if expiry < 0:
            raise AwsApiError("InvalidRequestException", "messageExpiry must not be negative")
    indicator_text = request.header("x-amz-mqtt5-payload-format-indicator")
    indicator = None
    if indicator_text is not None:
        if indicator_text not in _PAYLOAD_FORMATS:
            raise AwsApiError(
                "InvalidRequestException",
                "x-amz-mqtt5-payload-format-indicator must be UNSPECIFIED_BYTES or UTF8_DATA",
            )
        indicator = _PAYLOAD_FORMATS[indicator_text]
    correlation = None
    correlation_text = request.header("x-amz-mqtt5-correlation-data")
    if correlation_text is not None:
        correlation = _base64(correlation_text, "x-amz-mqtt5-correlation-data")
    return Properties(
        payload_format_indicator=indicator,
        content_type=query.get("contentType") or None,
        response_topic=response_topic,
        correlation_data=correlation,
        user_properties=_user_properties(request.header("x-amz-mqtt5-user-properties")),
        message_expiry_interval=expiry,
    )


def _user_properties(header: str | None) -> tuple[tuple[str, str], ...]:
    """``x-amz-mqtt5-user-properties``: base64 of a JSON array of objects.

    The model calls the member "A JSON string that contains an array of JSON objects" and marks
    the header ``jsonvalue``, so botocore base64-encodes the JSON of that string: the decoded
    value is either the array or a JSON string holding it. Both are accepted.
    """
    if header is None:
        return ()
    try:
        document = json.loads(_base64(header, "x-amz-mqtt5-user-properties"))
        if isinstance(document, str):
            document = json.loads(document)
    except ValueError:
        document = None
    if not isinstance(document, list) or not all(isinstance(item, dict) for item in document):
        raise AwsApiError(
            "InvalidRequestException",
            "x-amz-mqtt5-user-properties must be base64 of a JSON array of objects",
        )
    return tuple((str(key), str(value)) for item in document for key, value in item.items())


def _base64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AwsApiError("InvalidRequestException", f"{name} is not valid base64") from None


def _publish_error(reason: Reason, details: str) -> AwsApiError:
    """The REST-JSON answer to an ingress refusal."""
    if reason in (Reason.AUTHORIZATION_FAILURE, Reason.RESERVED_TOPIC):
        return AwsApiError("ForbiddenException", _FORBIDDEN)
    if reason is Reason.PAYLOAD_LIMIT_EXCEEDED:
        return AwsApiError("RequestEntityTooLargeException", details)
    # Not stored, not accepted: iot-data's own server-side errors (botocore's Publish errors).
    if reason is Reason.STORAGE_BUSY:
        return AwsApiError("ServiceUnavailableException", details, status=503)
    if reason in (Reason.STORAGE_FULL, Reason.STORAGE_FAILED):
        return AwsApiError("InternalFailureException", details, status=500)
    return AwsApiError("InvalidRequestException", details)


def _event_of(request: HttpRequest) -> EventType:
    """The AWSIotLogsV2 event type of a request, by its path (Connect when there is none)."""
    head = request.path.split("/")[1] if "/" in request.path else ""
    if head == "topics":
        return EventType.PUBLISH_IN
    if head == "things":
        return _SHADOW_ACTIONS.get(request.method, ("", "", EventType.GET_THING_SHADOW))[2]
    if head == "retainedMessage":
        return (
            EventType.LIST_RETAINED_MESSAGE
            if request.path.rstrip("/") == "/retainedMessage"
            else EventType.GET_RETAINED_MESSAGE
        )
    if head == "connections" and request.method == "DELETE":
        return EventType.DELETE_CONNECTION
    return EventType.CONNECT


def _expired(message: Message, now: float) -> bool:
    return message.expires_at is not None and message.expires_at <= now
