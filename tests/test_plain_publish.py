"""Runs of plain PUBLISHes (QoS 0, no RETAIN, no properties) on one topic, as one read brings them.

``PublishIngress.plain_publisher`` and ``Router.plain_route`` check the topic, the policies and
the targets once per run; each message must still be handled exactly as ``publish`` handles it.
Each case here compares the run with the message-by-message path, or shows that what changes
between reads (a SUBSCRIBE, a refusal, a client that stops reading) is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import pytest

from aws_iot_mock.aws.limits import PAYLOAD_MAX_BYTES
from aws_iot_mock.core.ingress import PublishRequest
from aws_iot_mock.core.routing import DropReason, Router
from aws_iot_mock.core.session_store import MemorySessionStore
from aws_iot_mock.mqtt.codec import (
    Disconnect,
    Properties,
    Publish,
    Subscribe,
    SubscriptionOptions,
    encode,
)
from aws_iot_mock.mqtt.message import Message
from tests.mqtt_pure import PureClient, PureCore
from tests.test_routing import RecordingOutlet, connect, subscribe

# -- the router: a planned run delivers what publish delivers -------------------------------------

Setup = Callable[[Router], None]


def _observe(observed: list[str], message: Message) -> None:
    observed.append(message.topic)


def _one_subscriber(router: Router) -> None:
    session, _, _ = connect(router, "sub")
    subscribe(router, session, "t/#", qos=1)


def _overlapping_filters(router: Router) -> None:
    session, _, _ = connect(router, "sub")
    subscribe(router, session, "t/#", qos=0)
    subscribe(router, session, "t/a", qos=1, retain_as_published=True)


def _mqtt5_and_mqtt311(router: Router) -> None:
    for client_id, level in (("v5", 5), ("v4", 4)):
        session, _, _ = connect(router, client_id, level=level)
        subscribe(router, session, "t/+", qos=1)


def _nobody(router: Router) -> None:
    session, _, _ = connect(router, "sub")
    subscribe(router, session, "other/#")


def _offline_persistent(router: Router) -> None:
    session, _, _ = connect(router, "sub", clean=False, expiry=3600)
    subscribe(router, session, "t/#", qos=1)
    router.detach(session, send_will=False)


@pytest.mark.parametrize(
    "setup",
    [_one_subscriber, _overlapping_filters, _mqtt5_and_mqtt311, _nobody, _offline_persistent],
)
def test_a_planned_run_delivers_what_publish_delivers(setup: Setup) -> None:
    results: list[tuple[list[int], dict[str, list[bytes]], list[str]]] = []
    for planned in (False, True):
        router = Router(MemorySessionStore())
        setup(router)
        observed: list[str] = []
        router.observers.append(partial(_observe, observed))
        route = router.plain_route("t/a", "pub") if planned else router.publish
        counts = [route(Message("t/a", b"%d" % n, 0, False, sender="pub")) for n in range(3)]
        sent = {
            client_id: list(outlet.sent)
            for client_id, session in router.sessions.items()
            if isinstance(outlet := session.outlet, RecordingOutlet)
        }
        results.append((counts, sent, observed))
    assert results[0] == results[1]
    assert results[1][2] == ["t/a"] * 3  # every message reaches the observers (rules, console)


def test_a_run_with_a_shared_group_chooses_a_member_per_message() -> None:
    router = Router(MemorySessionStore())
    for client_id in ("m1", "m2"):
        session, _, _ = connect(router, client_id)
        subscribe(router, session, "$share/g/t/a", qos=0)
    assert router.plain_route("t/a", "pub") == router.publish  # not planned
    _one_subscriber(router)
    assert router.plain_route("t/b", "pub") != router.publish  # planned twin


def test_a_run_with_no_local_is_not_planned() -> None:
    router = Router(MemorySessionStore())
    session, _, _ = connect(router, "pub", level=5)
    subscribe(router, session, "t/a", qos=0, no_local=True)
    assert router.plain_route("t/a", "pub") == router.publish
    assert router.plain_route("t/a", "other") == router.publish  # No Local depends on the sender


def test_a_planned_run_honours_receive_checks_made_when_planned() -> None:
    router = Router(MemorySessionStore())
    allowed, allowed_outlet, _ = connect(router, "allowed")
    denied, denied_outlet, _ = connect(router, "denied")
    for session in (allowed, denied):
        subscribe(router, session, "t/#", qos=0)
    asked: list[str] = []

    def deny(topic: str) -> bool:
        asked.append(topic)
        return False

    denied.receive_check = deny
    route = router.plain_route("t/a", "pub")
    assert asked == ["t/a"]  # once, for the run
    assert [route(Message("t/a", b"x", 0, False, sender="pub")) for _ in range(2)] == [1, 1]
    assert len(allowed_outlet.publishes()) == 2
    assert denied_outlet.publishes() == []


def test_a_planned_run_sees_a_subscriber_stop_reading_or_leave() -> None:
    router = Router(MemorySessionStore())
    session, outlet, _ = connect(router, "sub")
    subscribe(router, session, "t/#", qos=0)
    route = router.plain_route("t/a", "pub")

    def send(payload: bytes) -> int:
        return route(Message("t/a", payload, 0, False, sender="pub"))

    assert send(b"1") == 1
    outlet.can_send = False
    assert send(b"2") == 1  # counted as delivered by publish too: dropped, CLIENT_NOT_READING
    assert session.drops == {DropReason.CLIENT_NOT_READING: 1}
    outlet.can_send = True
    router.detach(session, send_will=False)
    assert send(b"3") == 0
    assert [p.payload for p in outlet.publishes()] == [b"1"]


# -- the ingress: a plain publisher answers as publish answers ----------------------------------


def _records_without_trace(records: list[dict[str, object]]) -> list[Mapping[str, object]]:
    return [{k: v for k, v in r.items() if k not in ("traceId", "timestamp")} for r in records]


def test_a_plain_publisher_logs_and_routes_as_publish() -> None:
    outcomes = []
    for plain in (False, True):
        pure = PureCore()
        subscriber = pure.connected("sub")
        subscriber.subscribe("t/#", qos=0)
        publisher = pure.connected("pub")
        pure.records.clear()
        ingress = pure.core.ingress
        who = publisher.connection._publisher  # the connection's publisher
        run = ingress.plain_publisher(who, "t/a")
        assert run is not None
        for payload in (b"1", b"2"):
            if plain:
                assert run(payload) is None
            else:
                assert ingress.publish(who, PublishRequest("t/a", payload)) is None
        outcomes.append(
            ([p.payload for p in subscriber.publishes()], _records_without_trace(pure.records))
        )
    assert outcomes[0] == outcomes[1]
    payloads, records = outcomes[1]
    assert payloads == [b"1", b"2"]
    assert [r["eventType"] for r in records] == ["Publish-In", "Publish-Out"] * 2


@pytest.mark.parametrize(
    "topic",
    [
        "$aws/things/dev/shadow/get",  # a built-in service answers it
        "$aws/things/dev/shadow/get/accepted",  # refused: a response topic
        "$aws/rules/some_rule",  # Basic Ingest: reaches no subscriber
        "t/+",  # refused: not a topic name
    ],
)
def test_topics_that_need_the_full_path_get_no_plain_publisher(topic: str) -> None:
    pure = PureCore()
    publisher = pure.connected("pub")
    who = publisher.connection._publisher
    assert pure.core.ingress.plain_publisher(who, topic) is None
    assert pure.core.ingress.plain_publisher(who, "t/a") is not None  # the twin


def test_an_oversized_payload_in_a_run_is_refused_as_publish_refuses_it() -> None:
    pure = PureCore()
    publisher = pure.connected("pub")
    who = publisher.connection._publisher
    run = pure.core.ingress.plain_publisher(who, "t/a")
    assert run is not None
    assert run(bytes(PAYLOAD_MAX_BYTES)) is None  # at the limit: accepted
    refusal = run(bytes(PAYLOAD_MAX_BYTES + 1))
    assert refusal is not None
    assert refusal.reason.name == "PAYLOAD_LIMIT_EXCEEDED"
    (record,) = pure.failures("PAYLOAD_LIMIT_EXCEEDED")
    assert record["eventType"] == "Publish-In"
    assert record["topicName"] == "t/a"


# -- the connection: one read, several runs -------------------------------------------------------


def _one_read(client: PureClient, *packets: Publish | Subscribe) -> None:
    client.connection.receive_data(b"".join(encode(p, client.level) for p in packets))


def test_one_read_keeps_the_order_of_its_publishes_across_topics() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")
    topics = ["t/a", "t/a", "t/b", "t/a", "t/b", "t/b"]
    _one_read(publisher, *(Publish(t, b"%d" % n) for n, t in enumerate(topics)))
    got = [(p.topic, p.payload) for p in subscriber.publishes()]
    assert got == [(t, b"%d" % n) for n, t in enumerate(topics)]


def test_a_subscribe_in_the_middle_of_a_read_takes_effect_for_the_rest() -> None:
    pure = PureCore()
    client = pure.connected("dev")
    subscribe = Subscribe(1, (("t/a", SubscriptionOptions(qos=0)),))
    _one_read(client, Publish("t/a", b"before"), subscribe, Publish("t/a", b"after"))
    packets = client.received()
    assert [p.payload for p in packets if isinstance(p, Publish)] == [b"after"]


def test_a_refused_publish_in_a_read_ends_the_read_as_before() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub")
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub")
    _one_read(
        publisher,
        Publish("t/a", b"1"),
        Publish("t/a", bytes(PAYLOAD_MAX_BYTES + 1)),
        Publish("t/a", b"3"),
    )
    assert [p.payload for p in subscriber.publishes()] == [b"1"]
    assert publisher.connection.close_request is not None
    assert pure.failures("PAYLOAD_LIMIT_EXCEEDED")
    # Twin: the same read without the oversized message is delivered whole.
    other = pure.connected("pub2")
    _one_read(other, Publish("t/a", b"1"), Publish("t/a", b"3"))
    assert [p.payload for p in subscriber.publishes()] == [b"1", b"3"]
    assert other.connection.close_request is None


def test_an_mqtt5_publish_with_properties_in_a_read_takes_the_full_path() -> None:
    pure = PureCore()
    subscriber = pure.connected("sub", 5)
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub", 5)
    with_type = Publish("t/a", b"2", properties=Properties(content_type="text/plain"))
    _one_read(publisher, Publish("t/a", b"1"), with_type, Publish("t/a", b"3"))
    got = subscriber.publishes()
    assert [p.payload for p in got] == [b"1", b"2", b"3"]
    assert [p.properties.content_type for p in got] == [None, "text/plain", None]
    assert not any(isinstance(p, Disconnect) for p in publisher.received())
