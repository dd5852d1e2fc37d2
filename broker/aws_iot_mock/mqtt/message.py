"""An application message as the broker routes and stores it.

Pure value type shared by the router, the sessions and the persistence layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from aws_iot_mock.frozen_values import fast_factory
from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties

__all__ = ["Message", "new_message"]


@dataclass(frozen=True, slots=True)
class Message:
    """One PUBLISH as received, independent of any subscriber.

    Attributes:
        topic: the topic name (aliases already resolved).
        payload: the payload bytes.
        qos: the QoS it was published with (0 or 1; AWS IoT drops QoS 2).
        retain: the RETAIN flag it was published with.
        properties: the MQTT 5 properties forwarded to subscribers (payload format indicator,
            content type, response topic, correlation data, user properties); the message
            expiry interval is carried as ``expires_at`` instead, and topic aliases never are.
        expires_at: wall-clock time (epoch seconds) after which it must not be delivered, or None.
        sender: the publishing client ID (for MQTT 5 No Local), or None for broker-made messages.
        published_at: wall-clock time (epoch seconds) it was received.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = field(default=EMPTY_PROPERTIES)
    expires_at: float | None = None
    sender: str | None = None
    published_at: float = 0.0


# ``Message(...)`` with the same signature, at a fraction of the frozen ``__init__``'s cost: the
# ingress builds one per publish (see ``aws_iot_mock.frozen_values``).
new_message: Final = fast_factory(Message)
