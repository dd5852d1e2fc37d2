"""AWS IoT lifecycle events: topics and payloads. Pure.

"Lifecycle events are available by default and they can't be disabled" (AWS IoT developer guide,
"Lifecycle events", https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html).
The broker publishes them on reserved topics
that clients may subscribe to but never publish to:

- ``$aws/events/presence/connected/<clientId>`` and ``.../disconnected/<clientId>``
- ``$aws/events/presence/connect_failed/<clientId>``
- ``$aws/events/subscriptions/subscribed/<clientId>`` and ``.../unsubscribed/<clientId>``

Payload keys and their order follow AWS's verbatim examples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ConnectionIdentity",
    "connect_failed_event",
    "connected_event",
    "disconnected_event",
    "emits_lifecycle_events",
    "subscription_event",
]

_PRESENCE = "$aws/events/presence"
_SUBSCRIPTIONS = "$aws/events/subscriptions"


@dataclass(frozen=True, slots=True)
class ConnectionIdentity:
    """What every lifecycle event says about the connection.

    Attributes:
        client_id: the MQTT client ID.
        principal_identifier: the certificate ID (AWS: for mTLS connections).
        session_identifier: a UUID for this connection.
        ip_address: the client's address (sent on connect events only).
        version_number: shared by one connection's connect and disconnect events and rising
            per client ID.
        thing_name: AWS adds ``thingName`` only with its "exclusive thing" feature, which this
            mock does not have; kept for that day, None omits it.
    """

    client_id: str
    principal_identifier: str
    session_identifier: str
    ip_address: str
    version_number: int
    thing_name: str | None = None


def emits_lifecycle_events(client_id: str) -> bool:
    """AWS: "Client IDs that contain # or + do not receive lifecycle events"."""
    return "#" not in client_id and "+" not in client_id


def _head(identity: ConnectionIdentity, timestamp_ms: int, event_type: str) -> dict[str, object]:
    payload: dict[str, object] = {"clientId": identity.client_id}
    if identity.thing_name is not None:
        payload["thingName"] = identity.thing_name
    payload["timestamp"] = timestamp_ms
    payload["eventType"] = event_type
    return payload


def _encode(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def connected_event(identity: ConnectionIdentity, timestamp_ms: int) -> tuple[str, bytes]:
    """The ``connected`` event: (topic, JSON payload)."""
    payload = _head(identity, timestamp_ms, "connected")
    payload["sessionIdentifier"] = identity.session_identifier
    payload["principalIdentifier"] = identity.principal_identifier
    payload["ipAddress"] = identity.ip_address
    payload["versionNumber"] = identity.version_number
    return f"{_PRESENCE}/connected/{identity.client_id}", _encode(payload)


def disconnected_event(
    identity: ConnectionIdentity,
    timestamp_ms: int,
    *,
    disconnect_reason: str,
) -> tuple[str, bytes]:
    """The ``disconnected`` event; ``clientInitiatedDisconnect`` follows from the reason."""
    payload = _head(identity, timestamp_ms, "disconnected")
    payload["sessionIdentifier"] = identity.session_identifier
    payload["principalIdentifier"] = identity.principal_identifier
    payload["clientInitiatedDisconnect"] = disconnect_reason == "CLIENT_INITIATED_DISCONNECT"
    payload["disconnectReason"] = disconnect_reason
    payload["versionNumber"] = identity.version_number
    return f"{_PRESENCE}/disconnected/{identity.client_id}", _encode(payload)


def connect_failed_event(
    identity: ConnectionIdentity,
    timestamp_ms: int,
    *,
    reason: str = "AUTHORIZATION_FAILED",
) -> tuple[str, bytes]:
    """The ``connect_failed`` event.

    AWS publishes it when a client may not connect, or may not publish to its will topic.
    """
    payload = _head(identity, timestamp_ms, "connect_failed")
    payload["connectFailureReason"] = reason
    payload["principalIdentifier"] = identity.principal_identifier
    payload["sessionIdentifier"] = identity.session_identifier
    payload["ipAddress"] = identity.ip_address
    return f"{_PRESENCE}/connect_failed/{identity.client_id}", _encode(payload)


def subscription_event(
    identity: ConnectionIdentity,
    timestamp_ms: int,
    topics: Sequence[str],
    *,
    subscribed: bool,
) -> tuple[str, bytes]:
    """The ``subscribed`` or ``unsubscribed`` event listing the topic filters."""
    kind = "subscribed" if subscribed else "unsubscribed"
    payload = _head(identity, timestamp_ms, kind)
    payload["sessionIdentifier"] = identity.session_identifier
    payload["principalIdentifier"] = identity.principal_identifier
    payload["topics"] = list(topics)
    return f"{_SUBSCRIPTIONS}/{kind}/{identity.client_id}", _encode(payload)
