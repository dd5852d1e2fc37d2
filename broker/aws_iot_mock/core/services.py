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

from aws_iot_mock.aws.reserved_topics import (
    BASIC_INGEST,
    LIFECYCLE_EVENTS,
    Kind,
    classify,
    subscription_entries,
)
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason
from aws_iot_mock.mqtt.topics import parse_shared, topic_matches

__all__ = ["BuiltInService", "ServiceLink", "ServiceRequest", "ServiceTable", "TopicRefusal"]


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


@dataclass(frozen=True, slots=True)
class TopicRefusal:
    """Why a reserved topic may not be published or subscribed to: the reason and a sentence."""

    reason: Reason
    details: str


class ServiceTable:
    """The reserved topic space: AWS's table of reserved topics and the services registered.

    A reserved topic whose service is registered is served; one whose service is not is refused
    with ``SERVICE_NOT_EMULATED`` naming the service; a response topic may not be published by a
    client; Basic Ingest may not be subscribed to; any other ``$`` topic is refused. The broker's
    own lifecycle events and Basic Ingest (accepted even before a rules engine consumes it, as
    AWS accepts it for an existing rule) are always served.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[str, BuiltInService]] = []
        self._emulated: set[str] = {LIFECYCLE_EVENTS, BASIC_INGEST}

    def register(self, service: BuiltInService) -> None:
        """Add ``service`` for its request filters."""
        self._entries.extend((topic_filter, service) for topic_filter in service.request_filters)
        self._emulated.add(service.name)

    def publish_refusal(self, topic: str, *, retain: bool) -> TopicRefusal | None:
        """None when a client may publish to ``topic`` (a valid topic name), else why not."""
        if not topic.startswith("$"):
            return None
        if not topic.startswith("$aws/"):
            return TopicRefusal(
                Reason.RESERVED_TOPIC,
                "topics starting with '$' are reserved for AWS IoT; clients can't create them",
            )
        if retain:
            return TopicRefusal(
                Reason.RESERVED_TOPIC,
                "RETAIN is not allowed on reserved topics (starting with '$')",
            )
        row = classify(topic)
        if row is None:
            return TopicRefusal(
                Reason.RESERVED_TOPIC,
                f"{topic!r} is not one of AWS IoT's reserved topics; clients can't create "
                "topics that begin with '$'",
            )
        if not row.client_may_publish:
            return TopicRefusal(
                Reason.RESERVED_TOPIC,
                f"{topic!r} is published by AWS IoT ({row.service}); clients may only "
                "subscribe to it",
            )
        if row.service not in self._emulated:
            return TopicRefusal(
                Reason.SERVICE_NOT_EMULATED,
                f"{topic!r} belongs to {row.service}, which aws-iot-mock does not emulate",
            )
        return None

    def subscribe_refusal(self, topic_filter: str) -> TopicRefusal | None:
        """None when a client may subscribe to ``topic_filter`` (a valid filter), else why not."""
        shared = parse_shared(topic_filter)
        inner = shared.topic_filter if shared is not None else topic_filter
        if not inner.startswith("$"):
            return None
        if not inner.startswith("$aws/"):
            return TopicRefusal(
                Reason.RESERVED_TOPIC, f"{inner!r}: topics starting with '$' are reserved"
            )
        rows = subscription_entries(inner)
        if not rows:
            return TopicRefusal(
                Reason.RESERVED_TOPIC, f"{inner!r} matches none of AWS IoT's reserved topics"
            )
        receivable = [row for row in rows if row.client_may_subscribe]
        if not receivable:
            return TopicRefusal(
                Reason.RESERVED_TOPIC,
                "devices can't subscribe to Basic Ingest reserved topics ('$aws/rules/...'); "
                "their messages go to the rules engine only",
            )
        if all(row.service not in self._emulated for row in receivable):
            services = ", ".join(sorted({row.service for row in receivable}))
            return TopicRefusal(
                Reason.SERVICE_NOT_EMULATED,
                f"{inner!r} is for {services}, which aws-iot-mock does not emulate",
            )
        return None

    @staticmethod
    def routes_to_subscribers(topic: str) -> bool:
        """Whether a message on ``topic`` goes to subscribers (not so for Basic Ingest)."""
        if not topic.startswith("$aws/"):
            return True
        row = classify(topic)
        return row is None or row.kind is not Kind.INGEST

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
