"""The sans-IO MQTT connection and the device core, driven in memory with a fake clock.

No event loop and no socket: ``PureClient`` feeds encoded packets to an ``MqttConnection`` and
parses what it answers (``tests/mqtt_pure.py``). These are the rules that need time or
back-pressure to show: the CONNECT deadline, keep-alive, a client that stops reading, a full
session queue, and the order of a PUBACK and a built-in service's answer. Each has its twin.
"""

from __future__ import annotations

import dataclasses

import pytest

from aws_iot_mock.aws.reserved_topics import JOBS
from aws_iot_mock.core import device_core
from aws_iot_mock.core.device_core import CoreSettings
from aws_iot_mock.core.services import ServiceRequest
from aws_iot_mock.mqtt.codec import Disconnect, Pingreq, Pingresp, Puback, Publish
from tests.mqtt_pure import ACCOUNT, PureCore

# -- the CONNECT deadline and keep-alive ---------------------------------------------------------


def test_no_connect_within_the_deadline_is_refused() -> None:
    pure = PureCore()
    client = pure.client()
    deadline = client.connection.next_deadline
    assert deadline == pure.clock.mono + 10.0
    pure.clock.advance(9.9)
    client.connection.on_timer()
    assert client.connection.close_request is None
    pure.clock.advance(0.1)
    client.connection.on_timer()
    assert client.connection.close_request is not None
    (record,) = pure.failures("CONNECT_TIMEOUT")
    assert record["eventType"] == "Connect"
    assert "within 10 s" in str(record["details"])


def test_connect_before_the_deadline_is_served() -> None:
    pure = PureCore()
    client = pure.client()
    pure.clock.advance(9.9)
    assert client.connect("dev").reason_code == 0
    pure.clock.advance(1.0)
    client.connection.on_timer()
    assert client.connection.close_request is None
    assert pure.failures("CONNECT_TIMEOUT") == []


def test_keep_alive_closes_after_one_and_a_half_times_the_interval() -> None:
    pure = PureCore()
    client = pure.connected("dev", 5, keep_alive=30)  # AWS: 1.5 x 30 s = 45 s
    assert client.connection.next_deadline == pure.clock.mono + 45.0
    pure.clock.advance(44.0)
    client.connection.on_timer()
    assert client.connection.close_request is None
    pure.clock.advance(1.0)
    client.connection.on_timer()
    assert client.received() == [Disconnect(0x8D)]
    assert client.connection.close_request is not None
    (record,) = pure.failures("KEEP_ALIVE_TIMEOUT")
    assert record["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"


def test_a_ping_moves_the_keep_alive_deadline() -> None:
    pure = PureCore()
    client = pure.connected("dev", 5, keep_alive=30)
    pure.clock.advance(40.0)
    client.send(Pingreq())
    assert client.received() == [Pingresp()]
    pure.clock.advance(40.0)
    client.connection.on_timer()  # 40 s since the ping: not yet 45
    assert client.connection.close_request is None
    assert client.connection.next_deadline == pure.clock.mono + 5.0


def test_keep_alive_does_not_count_while_the_client_is_not_reading() -> None:
    pure = PureCore()
    client = pure.connected("dev", 5, keep_alive=30)
    client.connection.pause_writing()  # the door stops reading from it too
    pure.clock.advance(100.0)
    client.connection.on_timer()
    assert client.connection.close_request is None
    client.connection.resume_writing()
    pure.clock.advance(46.0)
    client.connection.on_timer()
    assert client.connection.close_request is not None


# -- a client that stops reading -----------------------------------------------------------------


def test_qos0_to_a_client_that_is_not_reading_is_dropped_and_counted_once() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")

    subscriber.connection.pause_writing()
    for i in range(5):
        publisher.publish("t/x", b"%d" % i)
    assert subscriber.publishes() == []
    (started,) = pure.failures("OUTBOUND_BUFFER_FULL")
    assert started["eventType"] == "Publish-Out"
    assert started["clientId"] == "sub"

    subscriber.connection.resume_writing()
    ended = pure.failures("OUTBOUND_BUFFER_FULL")[1:]
    assert [r["details"] for r in ended] == ["5 message(s) to this client were dropped"]
    publisher.publish("t/x", b"after")
    assert [p.payload for p in subscriber.publishes()] == [b"after"]


def test_qos0_to_a_reading_client_is_delivered() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")
    for i in range(5):
        publisher.publish("t/x", b"%d" % i)
    assert [p.payload for p in subscriber.publishes()] == [b"%d" % i for i in range(5)]
    assert pure.failures("OUTBOUND_BUFFER_FULL") == []


def test_qos1_to_a_client_that_is_not_reading_waits_and_arrives_in_order() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=1)
    publisher = pure.connected("pub")

    subscriber.connection.pause_writing()
    for i in range(5):
        publisher.publish("t/x", b"%d" % i, qos=1)
    assert subscriber.publishes() == []
    assert [p for p in publisher.received() if not isinstance(p, Puback)] == []

    subscriber.connection.resume_writing()
    assert [p.payload for p in subscriber.publishes()] == [b"%d" % i for i in range(5)]
    assert pure.failures("OUTBOUND_BUFFER_FULL") == []  # nothing was dropped


def test_outbound_buffer_cap_drops_qos0_until_the_client_takes_its_bytes() -> None:
    pure = PureCore(
        settings=CoreSettings(account_id=ACCOUNT, outbound_buffer_bytes=1024, aws_quotas=False)
    )
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")

    for _ in range(20):  # 20 x ~110 bytes: the subscriber's door has not flushed yet
        publisher.publish("t/x", b"x" * 100)
    delivered = subscriber.publishes()
    assert 8 <= len(delivered) < 20
    dropped = 20 - len(delivered)
    start, end = pure.failures("OUTBOUND_BUFFER_FULL")
    assert end["details"] == f"{dropped} message(s) to this client were dropped"
    assert start["details"] != end["details"]

    publisher.publish("t/x", b"again")
    assert [p.payload for p in subscriber.publishes()] == [b"again"]


# -- the session queue cap -----------------------------------------------------------------------


def test_a_full_session_queue_drops_newer_messages_and_logs_once() -> None:
    pure = PureCore(
        settings=CoreSettings(account_id=ACCOUNT, session_queue_max=3, aws_quotas=False)
    )
    subscriber = pure.connected("sub", clean=False)
    subscriber.subscribe("t/#", qos=1)
    subscriber.connection.connection_lost("gone")
    publisher = pure.connected("pub")
    for i in range(5):
        publisher.publish("t/x", b"%d" % i, qos=1)
    assert [r["reason"] for r in pure.records if r.get("eventType") == "Publish-Out"] == [
        "SESSION_QUEUE_FULL"
    ]

    returning = pure.client()
    assert returning.connect("sub", clean=False).session_present
    assert [p.payload for p in returning.publishes()] == [b"0", b"1", b"2"]
    start, end = pure.failures("SESSION_QUEUE_FULL")
    assert end["details"] == "2 message(s) to this client were dropped"
    assert start["clientId"] == "sub"


def test_a_session_queue_with_room_keeps_every_message() -> None:
    pure = PureCore(
        settings=CoreSettings(account_id=ACCOUNT, session_queue_max=5, aws_quotas=False)
    )
    subscriber = pure.connected("sub", clean=False)
    subscriber.subscribe("t/#", qos=1)
    subscriber.connection.connection_lost("gone")
    publisher = pure.connected("pub")
    for i in range(5):
        publisher.publish("t/x", b"%d" % i, qos=1)
    returning = pure.client()
    returning.connect("sub", clean=False)
    assert [p.payload for p in returning.publishes()] == [b"%d" % i for i in range(5)]
    assert pure.failures("SESSION_QUEUE_FULL") == []


# -- waking the door -----------------------------------------------------------------------------


def test_a_routed_message_wakes_the_subscribers_door_once_per_burst() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")
    before = subscriber.wakes
    for _ in range(3):
        publisher.publish("t/x", b"m")
    assert subscriber.wakes == before + 1  # the first message; the rest join the same flush
    assert len(subscriber.publishes()) == 3
    publisher.publish("t/x", b"m")
    assert subscriber.wakes == before + 2


def test_the_connection_answering_its_own_packets_does_not_wake_its_door() -> None:
    pure = PureCore()
    client = pure.connected("dev")
    before = client.wakes
    client.send(Pingreq())  # answered within receive_data: the door flushes after the call
    assert client.wakes == before
    assert client.received() == [Pingresp()]


# -- built-in services ---------------------------------------------------------------------------


@dataclasses.dataclass
class EchoJobs:
    """A stand-in Jobs service: answers ``.../jobs/get`` with its payload on ``/get/accepted``."""

    core: PureCore
    name: str = JOBS
    request_filters: tuple[str, ...] = ("$aws/things/+/jobs/get",)
    requests: list[ServiceRequest] = dataclasses.field(default_factory=list)

    def handle(self, request: ServiceRequest) -> None:
        self.requests.append(request)
        self.core.core.publish_as_service(f"{request.topic}/accepted", request.payload)


def test_the_puback_comes_before_the_services_answer() -> None:
    pure = PureCore()
    service = EchoJobs(pure)
    pure.core.register_service(service)
    client = pure.connected("dev")
    client.subscribe("$aws/things/dev/jobs/get/accepted")
    client.publish("$aws/things/dev/jobs/get", b"hi", qos=1)
    packets = client.received()
    assert isinstance(packets[0], Puback)
    assert isinstance(packets[1], Publish)
    assert (packets[1].topic, packets[1].payload) == ("$aws/things/dev/jobs/get/accepted", b"hi")
    (request,) = service.requests
    assert (request.client_id, request.facts.client_id) == ("dev", "dev")


def test_a_request_of_a_service_that_is_not_registered_is_refused_by_name() -> None:
    pure = PureCore()
    client = pure.connected("dev", 5)
    client.publish("$aws/things/dev/jobs/get", b"hi", qos=1)
    assert client.received() == [Puback(1, 0x87)]
    (record,) = pure.failures("SERVICE_NOT_EMULATED")
    assert "Jobs" in str(record["details"])
    # Once the service registers, the same request is served.
    service = EchoJobs(pure)
    pure.core.register_service(service)
    client.publish("$aws/things/dev/jobs/get", b"hi", qos=1)
    assert client.received() == [Puback(2)]
    assert len(service.requests) == 1


# -- lifecycle version numbers -------------------------------------------------------------------


def test_version_numbers_rise_per_client_and_are_forgotten_after_an_hour() -> None:
    pure = PureCore()
    core = pure.core
    assert [core.next_version_number("a") for _ in range(3)] == [0, 1, 2]
    core.note_disconnect("a", "CLIENT_INITIATED_DISCONNECT")
    pure.clock.advance(3599.0)
    core.tick()
    assert core.next_version_number("a") == 3
    core.note_disconnect("a", "CLIENT_INITIATED_DISCONNECT")
    pure.clock.advance(3601.0)
    core.tick()
    assert core.next_version_number("a") == 0  # AWS: "reset to 0" after about an hour


def test_version_numbers_of_gone_clients_are_bounded_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device_core, "_VERSION_NUMBERS_MAX", 3)
    pure = PureCore()
    core = pure.core
    for client_id in ("live", "old", "newer", "newest"):
        core.next_version_number(client_id)
    for client_id in ("old", "newer", "newest"):
        core.note_disconnect(client_id, "CONNECTION_LOST")
    core.next_version_number("fresh")  # two too many: the two clients gone longest go
    assert core.last_disconnect("old") is None
    assert core.last_disconnect("newer") is None
    # The twins: the one that left last is remembered, and the live client keeps counting.
    assert core.last_disconnect("newest") is not None
    assert core.next_version_number("live") == 1
