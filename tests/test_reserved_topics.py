"""The reserved topic space: AWS's table, what a client may publish and subscribe, and the rest.

The table first (pure: ``ServiceTable`` with the services the broker registers), then real
clients against a running broker: a service AWS has and this project does not emulate is
refused by name (never accepted and ignored), a response topic cannot be forged, and Basic
Ingest reaches no subscriber. Each refusal has its passing twin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from aws_iot_mock.aws.reserved_topics import (
    BASIC_INGEST,
    DEVICE_SHADOW,
    JOBS,
    RESERVED_TOPICS,
    Kind,
    classify,
    filter_overlaps,
)
from aws_iot_mock.core.services import ServiceRequest, ServiceTable
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, paho_client

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


class _Named:
    def __init__(self, name: str, filters: tuple[str, ...]) -> None:
        self.name = name
        self.request_filters = filters

    def handle(self, request: ServiceRequest) -> None:
        """Not called by these tests."""


@pytest.fixture
def table() -> ServiceTable:
    """The table as the broker has it today: Device Shadow registered, nothing else."""
    services = ServiceTable()
    services.register(_Named(DEVICE_SHADOW, ("$aws/things/+/shadow/+",)))
    return services


# -- the table -----------------------------------------------------------------------------------

PUBLISH: list[tuple[str, bool, Reason | None]] = [
    ("sensor/t", True, None),
    ("$aws/things/x/shadow/update", False, None),
    ("$aws/things/x/shadow/name/s/get", False, None),
    ("$aws/rules/my_rule/a/b", False, None),  # Basic Ingest: always accepted
    ("$aws/things/x/shadow/update/accepted", False, Reason.RESERVED_TOPIC),  # forging
    ("$aws/things/x/shadow/update/delta", False, Reason.RESERVED_TOPIC),
    ("$aws/things/x/shadow/update", True, Reason.RESERVED_TOPIC),  # RETAIN
    ("$aws/events/presence/connected/c1", False, Reason.RESERVED_TOPIC),
    ("$aws/things/x/jobs/get", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/jobs/j1/update", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/jobs/get/accepted", False, Reason.RESERVED_TOPIC),
    ("$aws/certificates/create/json", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/provisioning-templates/t/provision/cbor", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/defender/metrics/json", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/streams/s1/get/json", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/device_location/d/get_position_estimate", False, Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/tunnels/notify", False, Reason.RESERVED_TOPIC),
    ("$aws/anything/else", False, Reason.RESERVED_TOPIC),
    ("$SYS/x", False, Reason.RESERVED_TOPIC),
    ("$AWS/rules/r/x", False, Reason.RESERVED_TOPIC),  # topics are case sensitive
]


@pytest.mark.parametrize(("topic", "retain", "reason"), PUBLISH)
def test_publish_refusal(
    table: ServiceTable, topic: str, retain: bool, reason: Reason | None
) -> None:
    refusal = table.publish_refusal(topic, retain=retain)
    assert (refusal.reason if refusal else None) is reason
    if refusal is not None:
        assert refusal.details


def test_a_registered_service_turns_its_refusals_into_requests(table: ServiceTable) -> None:
    assert table.publish_refusal("$aws/things/x/jobs/get", retain=False) is not None
    table.register(_Named(JOBS, ("$aws/things/+/jobs/get",)))
    assert table.publish_refusal("$aws/things/x/jobs/get", retain=False) is None
    # Its responses stay the service's to publish.
    refusal = table.publish_refusal("$aws/things/x/jobs/get/accepted", retain=False)
    assert refusal is not None and refusal.reason is Reason.RESERVED_TOPIC


SUBSCRIBE: list[tuple[str, Reason | None]] = [
    ("sensor/#", None),
    ("$aws/things/x/shadow/update/accepted", None),
    ("$aws/things/+/shadow/#", None),
    ("$aws/things/x/#", None),  # shadows among others
    ("$aws/events/presence/connected/+", None),
    ("$share/g/$aws/things/+/shadow/update/delta", None),
    ("$aws/things/x/jobs/notify-next", Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/jobs/#", Reason.SERVICE_NOT_EMULATED),
    ("$aws/things/x/tunnels/notify", Reason.SERVICE_NOT_EMULATED),
    ("$aws/events/thing/+/created", Reason.SERVICE_NOT_EMULATED),
    ("$aws/rules/my_rule/#", Reason.RESERVED_TOPIC),  # Basic Ingest: nobody subscribes
    ("$aws/rules/my_rule", Reason.RESERVED_TOPIC),
    ("$aws/nothing/here", Reason.RESERVED_TOPIC),
    ("$SYS/#", Reason.RESERVED_TOPIC),
]


@pytest.mark.parametrize(("topic_filter", "reason"), SUBSCRIBE)
def test_subscribe_refusal(table: ServiceTable, topic_filter: str, reason: Reason | None) -> None:
    refusal = table.subscribe_refusal(topic_filter)
    assert (refusal.reason if refusal else None) is reason


def test_every_row_is_a_valid_filter_and_classifies_its_own_topics() -> None:
    for row in RESERVED_TOPICS:
        example = row.pattern.replace("+", "x").replace("#", "x/y")
        found = classify(example)
        assert found is not None, row
        assert found.service == row.service, (row, found)
    assert classify("$aws/rules/r/a").kind is Kind.INGEST  # type: ignore[union-attr]
    assert classify("$aws/rules/r/a").service == BASIC_INGEST  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("$aws/things/+/shadow/+", "$aws/things/x/#", True),
        ("$aws/things/+/jobs/get", "$aws/things/x/shadow/#", False),
        ("$aws/rules/#", "$aws/rules/r", True),
        ("$aws/rules/#", "$aws/rules", False),  # AWS: '#' does not match the parent level
        ("a/+/c", "a/b/+", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_filter_overlaps(first: str, second: str, overlap: bool) -> None:
    assert filter_overlaps(first, second) is overlap
    assert filter_overlaps(second, first) is overlap


# -- real clients ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread() as running:
        yield running


@pytest.fixture(scope="module")
def device(broker: IotBrokerThread) -> DeviceFiles:
    return broker.create_device("rt-1", ALLOW_ALL)


def _v5(device: DeviceFiles, client_id: str) -> Any:
    return paho_client(device, MQTTProtocolVersion.MQTTv5, client_id=client_id)


def _publish_rc(client: Any, topic: str) -> int:
    """Publish QoS 1 and return the PUBACK reason code (paho v5)."""
    done = threading.Event()
    codes: list[int] = []

    def on_publish(_c: object, _u: object, _mid: int, reason: ReasonCode, _p: object) -> None:
        codes.append(reason.value)
        done.set()

    client.on_publish = on_publish
    client.publish(topic, b"payload", qos=1)
    assert done.wait(10)
    return codes[0]


def _subscribe_rc(client: Any, topic_filter: str) -> int:
    done = threading.Event()
    codes: list[int] = []

    def on_subscribe(
        _c: object, _u: object, _mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        codes.extend(reason.value for reason in reasons)
        done.set()

    client.on_subscribe = on_subscribe
    client.subscribe(topic_filter, qos=1)
    assert done.wait(10)
    return codes[0]


def test_a_service_that_is_not_emulated_is_refused_by_name(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = _v5(device, "rt-defender")
    try:
        assert _publish_rc(client, "$aws/things/rt-1/defender/metrics/json") == 0x87
        assert _subscribe_rc(client, "$aws/things/rt-1/tunnels/notify") == 0x87
        assert _publish_rc(client, "$aws/things/rt-1/shadow/get") == 0x00  # the twin
    finally:
        client.disconnect()
        client.loop_stop()
    refusals = [r for r in broker.logs if r.get("reason") == "SERVICE_NOT_EMULATED"]
    assert any("Device Defender" in str(r["details"]) for r in refusals)
    assert any("Secure tunneling" in str(r["details"]) for r in refusals)
    assert not [m for m in broker.messages if "/defender/" in m.topic]


def test_a_service_response_cannot_be_forged(broker: IotBrokerThread, device: DeviceFiles) -> None:
    client = _v5(device, "rt-forger")
    try:
        assert _publish_rc(client, "$aws/things/rt-1/shadow/update/accepted") == 0x87
    finally:
        client.disconnect()
        client.loop_stop()
    record = next(
        r
        for r in broker.logs
        if r.get("reason") == "RESERVED_TOPIC"
        and r.get("topicName") == "$aws/things/rt-1/shadow/update/accepted"
    )
    assert "clients may only subscribe" in str(record["details"])
    assert not [m for m in broker.messages if m.topic == "$aws/things/rt-1/shadow/update/accepted"]


def test_mqtt311_publish_to_a_service_that_is_not_emulated_is_disconnected(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="rt-311")
    gone = threading.Event()
    client.on_disconnect = lambda *_args: gone.set()
    client.publish("$aws/things/rt-1/defender/metrics/cbor", b"x", qos=1)
    assert gone.wait(10)
    client.loop_stop()


def test_basic_ingest_is_accepted_and_reaches_no_subscriber(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = _v5(device, "rt-ingest")
    try:
        assert _subscribe_rc(client, "$aws/rules/my_rule/#") == 0x87
        assert _subscribe_rc(client, "ingest/#") == 0x01  # the twin: an ordinary filter
        assert _publish_rc(client, "$aws/rules/my_rule/ingest/x") == 0x00
    finally:
        client.disconnect()
        client.loop_stop()
    routed = [m for m in broker.messages if m.topic == "$aws/rules/my_rule/ingest/x"]
    assert len(routed) == 1  # seen by the broker (and a rules engine), delivered to nobody
    record = next(
        r
        for r in broker.logs
        if r["eventType"] == "Publish-In" and r.get("topicName") == "$aws/rules/my_rule/ingest/x"
    )
    assert record["status"] == "Success"
