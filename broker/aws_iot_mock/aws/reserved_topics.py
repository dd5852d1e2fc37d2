"""AWS IoT's reserved topics as a table: which service owns each, and who may publish it. Pure.

"Topics that begin with a dollar sign ($) are reserved for use by AWS IoT. You can subscribe and
publish to these reserved topics as they allow; however, you can't create new topics that begin
with a dollar sign. Unsupported publish or subscribe operations to reserved topics can result in
a terminated connection." ("Reserved topics",
https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html). Every row below is
a row of that page (patterns in MQTT filter syntax, ``+`` for a name, ``#`` for the rest).

Three kinds of topic:

- **requests** a client publishes for a service to answer (``.../shadow/update``,
  ``.../jobs/get``, ``$aws/certificates/create/json``...);
- **responses and notifications** the service publishes and clients may only subscribe to
  (``/accepted``, ``/rejected``, ``/delta``, ``notify``, ``$aws/events/...``);
- **Basic Ingest** ``$aws/rules/<rule>/...``: publish only, for the rules engine, never
  delivered to subscribers ("devices can't subscribe to Basic Ingest reserved topics",
  iot-basic-ingest).

Whether a service is emulated is not decided here: the broker says which services are
registered, and a request to a service that is not gets a refusal naming it, never silence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aws_iot_mock.mqtt.topics import topic_matches

__all__ = [
    "BASIC_INGEST",
    "DEVICE_SHADOW",
    "FLEET_PROVISIONING",
    "JOBS",
    "LIFECYCLE_EVENTS",
    "RESERVED_TOPICS",
    "Kind",
    "ReservedTopic",
    "classify",
    "filter_overlaps",
    "subscription_entries",
]

DEVICE_SHADOW = "Device Shadow"
JOBS = "Jobs"
FLEET_PROVISIONING = "Fleet provisioning"
BASIC_INGEST = "Basic Ingest (rules engine)"
LIFECYCLE_EVENTS = "Lifecycle events"


class Kind(enum.Enum):
    """Who publishes a reserved topic."""

    REQUEST = "request"  # a client publishes, the service answers; also routed to subscribers
    RESPONSE = "response"  # the service publishes; clients subscribe
    INGEST = "ingest"  # a client publishes for the rules engine only; nobody subscribes


@dataclass(frozen=True)
class ReservedTopic:
    """One row of AWS's reserved-topics table.

    Attributes:
        pattern: the topics of the row, as an MQTT topic filter.
        service: the AWS service that owns it.
        kind: who publishes it.
    """

    pattern: str
    service: str
    kind: Kind

    @property
    def client_may_publish(self) -> bool:
        """Requests and Basic Ingest; never a response or event."""
        return self.kind is not Kind.RESPONSE

    @property
    def client_may_subscribe(self) -> bool:
        """Responses and requests (requests are routed like messages); never Basic Ingest."""
        return self.kind is not Kind.INGEST


def _rows(service: str, kind: Kind, *patterns: str) -> tuple[ReservedTopic, ...]:
    return tuple(ReservedTopic(pattern, service, kind) for pattern in patterns)


_SHADOW = "$aws/things/+/shadow"
_NAMED = "$aws/things/+/shadow/name/+"
_JOBS = "$aws/things/+/jobs"
# Responses first: a row is found by its first match, and a response topic (…/get/accepted) is
# longer than its request (…/get), so the two never both match one topic anyway.
RESERVED_TOPICS: tuple[ReservedTopic, ...] = (
    # Device Shadow (device-shadow-mqtt)
    *_rows(
        DEVICE_SHADOW,
        Kind.REQUEST,
        *(f"{base}/{op}" for base in (_SHADOW, _NAMED) for op in ("get", "update", "delete")),
    ),
    *_rows(
        DEVICE_SHADOW,
        Kind.RESPONSE,
        *(
            f"{base}/{op}/{outcome}"
            for base in (_SHADOW, _NAMED)
            for op in ("get", "update", "delete")
            for outcome in ("accepted", "rejected")
        ),
        *(f"{base}/update/{what}" for base in (_SHADOW, _NAMED) for what in ("delta", "documents")),
    ),
    # Jobs (jobs-mqtt-api)
    *_rows(
        JOBS,
        Kind.REQUEST,
        f"{_JOBS}/get",
        f"{_JOBS}/start-next",
        f"{_JOBS}/+/get",
        f"{_JOBS}/+/update",
    ),
    *_rows(
        JOBS,
        Kind.RESPONSE,
        *(
            f"{request}/{outcome}"
            for request in (
                f"{_JOBS}/get",
                f"{_JOBS}/start-next",
                f"{_JOBS}/+/get",
                f"{_JOBS}/+/update",
            )
            for outcome in ("accepted", "rejected")
        ),
        f"{_JOBS}/notify",
        f"{_JOBS}/notify-next",
        "$aws/events/job/#",
        "$aws/events/jobExecution/#",
    ),
    # Any other topic in the Jobs namespace is a request Jobs answers with InvalidTopic: "The
    # request was sent to a topic in the AWS IoT Jobs namespace that does not map to any API"
    # (https://docs.aws.amazon.com/iot/latest/developerguide/jobs-api.html, ErrorResponse). After
    # the rows above, so that their topics keep their kind.
    *_rows(JOBS, Kind.REQUEST, f"{_JOBS}/#"),
    # Fleet provisioning (fleet-provision-api)
    *_rows(
        FLEET_PROVISIONING,
        Kind.REQUEST,
        "$aws/certificates/create/+",
        "$aws/certificates/create-from-csr/+",
        "$aws/provisioning-templates/+/provision/+",
    ),
    *_rows(
        FLEET_PROVISIONING,
        Kind.RESPONSE,
        "$aws/certificates/create/+/+",
        "$aws/certificates/create-from-csr/+/+",
        "$aws/provisioning-templates/+/provision/+/+",
    ),
    # Basic Ingest (iot-basic-ingest)
    *_rows(BASIC_INGEST, Kind.INGEST, "$aws/rules/#"),
    # Lifecycle events (life-cycle-events): the broker publishes these.
    *_rows(
        LIFECYCLE_EVENTS,
        Kind.RESPONSE,
        "$aws/events/presence/connected/+",
        "$aws/events/presence/disconnected/+",
        "$aws/events/presence/connect_failed/+",
        "$aws/events/subscriptions/subscribed/+",
        "$aws/events/subscriptions/unsubscribed/+",
    ),
    # Services this project does not emulate: refused by name, never silently swallowed.
    *_rows("Registry events", Kind.RESPONSE, "$aws/events/thing/#", "$aws/events/thingGroup/#"),
    *_rows(
        "Registry events",
        Kind.RESPONSE,
        "$aws/events/thingType/#",
        "$aws/events/thingTypeAssociation/#",
        "$aws/events/thingGroupMembership/#",
        "$aws/events/thingGroupHierarchy/#",
    ),
    *_rows("Just-in-time registration", Kind.RESPONSE, "$aws/events/certificates/registered/+"),
    *_rows("Device Defender", Kind.REQUEST, "$aws/things/+/defender/metrics/+"),
    *_rows("Device Defender", Kind.RESPONSE, "$aws/things/+/defender/metrics/+/+"),
    *_rows("Secure tunneling", Kind.RESPONSE, "$aws/things/+/tunnels/notify"),
    *_rows(
        "MQTT-based file delivery",
        Kind.REQUEST,
        "$aws/things/+/streams/+/get/+",
        "$aws/things/+/streams/+/describe/+",
    ),
    *_rows(
        "MQTT-based file delivery",
        Kind.RESPONSE,
        "$aws/things/+/streams/+/data/+",
        "$aws/things/+/streams/+/description/+",
        "$aws/things/+/streams/+/rejected/+",
    ),
    *_rows("Device Location", Kind.REQUEST, "$aws/device_location/+/get_position_estimate"),
    *_rows("Device Location", Kind.RESPONSE, "$aws/device_location/+/get_position_estimate/+"),
    *_rows("Commands", Kind.RESPONSE, "$aws/commands/#"),
    *_rows("IoT SiteWise", Kind.RESPONSE, "$aws/sitewise/#"),
)


def classify(topic: str) -> ReservedTopic | None:
    """The row ``topic`` (a topic name starting with ``$aws/``) belongs to, or None."""
    for row in RESERVED_TOPICS:
        if topic_matches(row.pattern, topic):
            return row
    return None


def filter_overlaps(first: str, second: str) -> bool:
    """Whether some topic name matches both filters (``#`` matches one or more levels)."""
    a, b = first.split("/"), second.split("/")
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else None
        right = b[index] if index < len(b) else None
        if left == "#" or right == "#":
            return left is not None and right is not None
        if left is None or right is None:
            return False
        if left != right and "+" not in (left, right):
            return False
    return True


def subscription_entries(topic_filter: str) -> list[ReservedTopic]:
    """The rows whose topics a subscription to ``topic_filter`` (``$aws/...``) could receive."""
    return [row for row in RESERVED_TOPICS if filter_overlaps(row.pattern, topic_filter)]
