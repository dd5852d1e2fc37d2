"""Built-in services (Device Shadow, Jobs, fleet provisioning...) as clients of the core. Pure.

AWS IoT answers requests on reserved topics under ``$aws/`` with services behind the broker
("Reserved topics", https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html).
Here each such service registers with the device core and is handed the publishes on its request
topics after the ingress has validated, authorized and routed them, exactly as an MQTT, HTTPS or
WebSocket client's publish; it answers by publishing through its ``ServiceLink``, like an
in-process client. No door and no connection class knows about any service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aws_iot_mock.logs.cloudwatch import ConnectionFacts
from aws_iot_mock.mqtt.topics import topic_matches

__all__ = ["BuiltInService", "ServiceLink", "ServiceRequest", "ServiceTable"]


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """A publish on a service's request topic.

    Attributes:
        topic: the topic it was published to.
        payload: its payload.
        facts: the publisher's connection facts (for the service's own log records).
        client_id: the publishing MQTT client ID, None over HTTPS.
    """

    topic: str
    payload: bytes
    facts: ConnectionFacts
    client_id: str | None


class ServiceLink(Protocol):
    """How a service publishes its answers: as the broker, QoS 1, to whoever subscribed."""

    def publish(self, topic: str, payload: bytes) -> None:
        """Route a service-made message to the subscribers of ``topic``."""
        ...


class BuiltInService(Protocol):
    """A service behind the broker that answers requests on reserved topics."""

    @property
    def name(self) -> str:
        """The AWS service name, for logs (``Device Shadow``, ``Jobs``, ...)."""
        ...

    @property
    def request_filters(self) -> tuple[str, ...]:
        """MQTT topic filters of the topics it answers (AWS's ``#``/``+`` matching rules)."""
        ...

    def handle(self, request: ServiceRequest) -> None:
        """Answer one request (publishing through the link it was given)."""
        ...


class ServiceTable:
    """The registered services, looked up by request topic."""

    def __init__(self) -> None:
        self._entries: list[tuple[str, BuiltInService]] = []

    def register(self, service: BuiltInService) -> None:
        """Add ``service`` for its request filters."""
        self._entries.extend((topic_filter, service) for topic_filter in service.request_filters)

    def service_for(self, topic: str) -> BuiltInService | None:
        """The service whose request filters match ``topic``, if any."""
        if not topic.startswith("$aws/"):
            return None
        for topic_filter, service in self._entries:
            if topic_matches(topic_filter, topic):
                return service
        return None

    def dispatch(self, request: ServiceRequest) -> bool:
        """Hand ``request`` to its service; False when no service answers its topic."""
        service = self.service_for(request.topic)
        if service is None:
            return False
        service.handle(request)
        return True
