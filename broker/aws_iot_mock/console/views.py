"""What the console shows, as JSON documents, and what its forms ask for, as requests. Pure.

The console's pages (``aws_iot_mock/console/static``) render these documents; the endpoint
(``aws_iot_mock.console.endpoint``) builds them from the device core, the log stream and the
shadow service, and turns the forms' JSON into the same requests the APIs make
(``PublishRequest`` for the core's one ingress, shadow operations for the shadow service).
Nothing here reads a clock or a socket.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_iot_mock.aws.limits import PAYLOAD_MAX_BYTES
from aws_iot_mock.core.ingress import PublishRequest
from aws_iot_mock.core.mqtt_connection import MqttConnection
from aws_iot_mock.core.routing import Session
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.mqtt.codec import Properties
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.mqtt.topics import topic_matches, validate_topic_filter

__all__ = [
    "LOG_FILTER_KEYS",
    "MAX_SUBSCRIPTIONS",
    "ConsoleRequestError",
    "LogFilter",
    "connection_row",
    "explanation",
    "log_entry",
    "message_event",
    "parse_publish",
    "parse_topic_filters",
    "reason_catalogue",
]

# The log page's filters: query parameter -> the AWSIotLogsV2 attribute it compares.
LOG_FILTER_KEYS = {
    "status": "status",
    "eventType": "eventType",
    "clientId": "clientId",
    "reason": "reason",
}
# Topic filters one console page may watch at once (AWS's per-connection quota is 50).
MAX_SUBSCRIPTIONS = 50
# A message payload shown as text is cut here (the page is for people; 128 KiB is the limit).
_SHOWN_PAYLOAD_MAX = 16 * 1024
_USER_PROPERTIES_MAX = 32


class ConsoleRequestError(ValueError):
    """A console form asked for something invalid; the message says what, for the page."""


def reason_catalogue() -> dict[str, dict[str, str]]:
    """Every refusal reason: what the client sees and what it means (the README's catalogue)."""
    return {
        reason.name: {"clientSees": reason.value.alert, "meaning": reason.value.meaning}
        for reason in Reason
    }


def explanation(reason_name: str) -> dict[str, str] | None:
    """The catalogue entry of ``reason_name``, or None for a reason outside it."""
    reason = Reason.__members__.get(reason_name)
    if reason is None:
        return None
    return {"clientSees": reason.value.alert, "meaning": reason.value.meaning}


def log_entry(record: Mapping[str, object]) -> dict[str, object]:
    """A log record as the log page shows it: the record, plus its reason's explanation."""
    entry: dict[str, object] = {"record": dict(record)}
    reason = record.get("reason")
    if isinstance(reason, str):
        found = explanation(reason)
        if found is not None:
            entry["explanation"] = found
    return entry


@dataclass(frozen=True)
class LogFilter:
    """The log page's filters: each set attribute must equal the record's (exact match).

    Attributes:
        wanted: AWSIotLogsV2 attribute -> the value it must have.
    """

    wanted: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> LogFilter:
        """The filters in a query string (``status``, ``eventType``, ``clientId``, ``reason``).

        Empty values are no filter.
        """
        return cls(
            tuple(
                (attribute, query[name])
                for name, attribute in LOG_FILTER_KEYS.items()
                if query.get(name)
            )
        )

    def matches(self, record: Mapping[str, object]) -> bool:
        """Whether ``record`` passes every filter."""
        return all(record.get(attribute) == value for attribute, value in self.wanted)


def parse_topic_filters(filters: Iterable[str]) -> tuple[str, ...]:
    """The MQTT test client's subscriptions, checked as AWS checks a SUBSCRIBE's filters.

    Raises:
        ConsoleRequestError: a filter is invalid, or there are more than ``MAX_SUBSCRIPTIONS``.
    """
    chosen = tuple(dict.fromkeys(filters))
    if len(chosen) > MAX_SUBSCRIPTIONS:
        raise ConsoleRequestError(f"At most {MAX_SUBSCRIPTIONS} topic filters at once")
    for topic_filter in chosen:
        error = validate_topic_filter(topic_filter)
        if error is not None:
            raise ConsoleRequestError(f"Topic filter {topic_filter!r}: {error.reason}")
    return chosen


def message_event(message: Message, filters: Iterable[str]) -> dict[str, object] | None:
    """A routed message as the MQTT test client shows it, or None if no filter matches it.

    A UTF-8 payload is shown as text (cut at 16 KiB), any other as base64.
    """
    matched = [f for f in filters if topic_matches(f, message.topic)]
    if not matched:
        return None
    event: dict[str, object] = {
        "topic": message.topic,
        "qos": message.qos,
        "retain": message.retain,
        "publishedAt": int(message.published_at * 1000),
        "sender": message.sender,
        "filters": matched,
        "size": len(message.payload),
    }
    try:
        text = message.payload.decode("utf-8")
    except UnicodeDecodeError:
        event["payloadBase64"] = base64.b64encode(message.payload[:_SHOWN_PAYLOAD_MAX]).decode()
    else:
        event["payload"] = text[:_SHOWN_PAYLOAD_MAX]
    properties = message.properties
    shown: dict[str, object] = {}
    if properties.content_type is not None:
        shown["contentType"] = properties.content_type
    if properties.response_topic is not None:
        shown["responseTopic"] = properties.response_topic
    if properties.correlation_data is not None:
        shown["correlationData"] = base64.b64encode(properties.correlation_data).decode()
    if properties.user_properties:
        shown["userProperties"] = [list(pair) for pair in properties.user_properties]
    if shown:
        event["properties"] = shown
    return event


def connection_row(
    connection: MqttConnection, session: Session | None, things: Iterable[str]
) -> dict[str, object]:
    """One live client as the connections page shows it.

    Args:
        connection: the live MQTT connection (CONNECT accepted).
        session: its session (subscriptions, queued messages), if any.
        things: the things attached to its principal.
    """
    principal = connection.principal
    row: dict[str, object] = {
        "clientId": connection.client_id,
        "principalId": principal.principal_id,
        "principalKind": principal.kind.value,
        "things": sorted(things),
        "door": connection.door,
        "protocolVersion": "5" if connection.protocol_level == 5 else "3.1.1",
        "sourceIp": connection.facts.source_ip,
        "sourcePort": connection.facts.source_port,
        "keepAlive": connection.keep_alive,
        "transport": connection.transport_details,
    }
    if connection.connected_at is not None:
        row["connectedSince"] = int(connection.connected_at * 1000)
    if session is not None:
        row["subscriptions"] = sorted(session.subscriptions)
        row["queuedMessages"] = session.queued
        row["inflightMessages"] = len(session.inflight)
        row["persistentSession"] = session.persistent
    return row


def _optional_str(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConsoleRequestError(f"{key} must be a string")
    return value


def parse_publish(body: bytes) -> PublishRequest:
    """The MQTT test client's publish form (JSON) as a ``PublishRequest`` for the ingress.

    Members: ``topic`` (required), ``payload`` (text, sent as UTF-8), ``qos`` (0 or 1; AWS
    refuses 2 at the ingress, which says so), ``retain``, and the MQTT 5 properties
    ``contentType``, ``responseTopic``, ``correlationData`` (text), ``messageExpiry`` (seconds),
    ``userProperties`` (``[[name, value], ...]``).

    Raises:
        ConsoleRequestError: the form is not such a document.
    """
    try:
        document = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConsoleRequestError(f"The body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConsoleRequestError("The body must be a JSON object")
    topic = document.get("topic")
    if not isinstance(topic, str) or not topic:
        raise ConsoleRequestError("topic is required")
    payload = document.get("payload", "")
    if not isinstance(payload, str):
        raise ConsoleRequestError("payload must be text")
    payload_bytes = payload.encode("utf-8")
    if len(payload_bytes) > PAYLOAD_MAX_BYTES:
        raise ConsoleRequestError(f"The payload is over {PAYLOAD_MAX_BYTES} bytes")
    qos = document.get("qos", 0)
    if type(qos) is not int:
        raise ConsoleRequestError("qos must be a number")
    retain = document.get("retain", False)
    if not isinstance(retain, bool):
        raise ConsoleRequestError("retain must be true or false")
    expiry = document.get("messageExpiry")
    if expiry is not None and (type(expiry) is not int or not 0 <= expiry < 2**32):
        raise ConsoleRequestError("messageExpiry must be a number of seconds")
    pairs = document.get("userProperties") or []
    if not isinstance(pairs, list) or len(pairs) > _USER_PROPERTIES_MAX:
        raise ConsoleRequestError(f"userProperties: a list of at most {_USER_PROPERTIES_MAX}")
    user_properties: list[tuple[str, str]] = []
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            raise ConsoleRequestError("Each user property is [name, value]")
        user_properties.append((pair[0], pair[1]))
    correlation = _optional_str(document, "correlationData")
    properties = Properties(
        content_type=_optional_str(document, "contentType"),
        response_topic=_optional_str(document, "responseTopic"),
        correlation_data=None if correlation is None else correlation.encode("utf-8"),
        message_expiry_interval=expiry,
        user_properties=tuple(user_properties),
    )
    return PublishRequest(topic, payload_bytes, qos, retain, properties)
