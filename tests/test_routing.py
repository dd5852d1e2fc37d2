"""The pure session and routing core, without sockets: AWS semantics one by one, each with a twin.

Connections are ``RecordingOutlet`` objects that keep the bytes the core sends; the bytes are
decoded with the project's codec, so what is asserted is what a client would receive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from aws_iot_mock.core.routing import Router, Session
from aws_iot_mock.core.session_store import MemorySessionStore
from aws_iot_mock.mqtt.codec import (
    PacketReader,
    Properties,
    Publish,
    SubscriptionOptions,
)
from aws_iot_mock.mqtt.message import Message


@dataclass
class RecordingOutlet:
    """A connected client as the core sees it; records what it was sent."""

    protocol_level: int = 4
    receive_maximum: int = 100
    maximum_packet_size: int | None = None
    sent: list[bytes] = field(default_factory=list)
    was_taken_over: bool = False
    can_send: bool = True

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def taken_over(self) -> None:
        self.was_taken_over = True

    def publishes(self) -> list[Publish]:
        reader = PacketReader()
        reader.protocol_level = self.protocol_level
        reader.feed(b"".join(self.sent))
        packets = []
        while (packet := reader.next_packet()) is not None:
            assert isinstance(packet, Publish)
            packets.append(packet)
        self.sent.clear()
        return packets


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemorySessionStore:
    return MemorySessionStore()


@pytest.fixture
def core(store: MemorySessionStore, clock: Clock) -> Router:
    return Router(store, clock=clock)


def connect(
    core: Router,
    client_id: str,
    *,
    level: int = 4,
    clean: bool = True,
    expiry: int = 0,
    will: Message | None = None,
    will_delay: int = 0,
    receive_maximum: int = 100,
) -> tuple[Session, RecordingOutlet, bool]:
    outlet = RecordingOutlet(protocol_level=level, receive_maximum=receive_maximum)
    session, present = core.open_session(
        client_id,
        outlet,
        clean_start=clean,
        expiry_interval=expiry,
        will=will,
        will_delay=will_delay,
    )
    core.resume_delivery(session)
    return session, outlet, present


def subscribe(
    core: Router, session: Session, topic_filter: str, qos: int = 1, **options: object
) -> tuple[int, ...]:
    result = core.subscribe(
        session,
        [(topic_filter, SubscriptionOptions(qos=qos, **options))],  # type: ignore[arg-type]
    )
    core.send_retained(session, result)
    return result.reason_codes


def msg(
    topic: str,
    payload: bytes = b"x",
    qos: int = 0,
    retain: bool = False,
    sender: str | None = "pub",
    **kw: object,
) -> Message:
    return Message(topic, payload, qos, retain, sender=sender, **kw)  # type: ignore[arg-type]


# -- delivered QoS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("published", "granted", "delivered"),
    [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1)],
)
def test_delivered_qos_is_the_minimum(
    core: Router, published: int, granted: int, delivered: int
) -> None:
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, "a/b", qos=granted)
    core.publish(msg("a/b", qos=published))
    [publish] = outlet.publishes()
    assert publish.qos == delivered
    assert (publish.packet_id is not None) == (delivered == 1)


def test_qos2_subscription_is_granted_qos1(core: Router) -> None:
    session, _, _ = connect(core, "sub")
    assert subscribe(core, session, "a", qos=2) == (1,)


def test_hash_does_not_match_the_parent_level(core: Router) -> None:
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, "sensor/#")
    for topic in ("sensor", "sensor/", "sensor/temperature", "sensor/temperature/room1"):
        core.publish(msg(topic))
    assert [p.topic for p in outlet.publishes()] == [
        "sensor/",
        "sensor/temperature",
        "sensor/temperature/room1",
    ]


def test_overlapping_subscriptions_deliver_once_with_the_highest_qos(core: Router) -> None:
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, "a/+", qos=0)
    subscribe(core, session, "a/b", qos=1)
    core.publish(msg("a/b", qos=1))
    [publish] = outlet.publishes()
    assert publish.qos == 1


# -- retained messages -----------------------------------------------------------------------


def test_retained_is_sent_on_exact_subscribe_with_retain_flag(core: Router) -> None:
    core.publish(msg("status/dev1", b"on", qos=1, retain=True))
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, "status/dev1")
    [publish] = outlet.publishes()
    assert (publish.payload, publish.retain, publish.qos) == (b"on", True, 1)


@pytest.mark.parametrize("topic_filter", ["status/+", "status/#", "#", "$share/g/status/dev1"])
def test_retained_is_not_sent_to_wildcard_or_shared_filters(
    core: Router, topic_filter: str
) -> None:
    core.publish(msg("status/dev1", b"on", retain=True))
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, topic_filter)
    assert outlet.publishes() == []


def test_live_delivery_clears_retain_unless_retain_as_published(core: Router) -> None:
    plain, plain_out, _ = connect(core, "plain", level=5)
    keeper, keeper_out, _ = connect(core, "keeper", level=5)
    subscribe(core, plain, "t")
    subscribe(core, keeper, "t", retain_as_published=True)
    plain_out.publishes()
    core.publish(msg("t", b"v", retain=True))
    assert [p.retain for p in plain_out.publishes()] == [False]
    assert [p.retain for p in keeper_out.publishes()] == [True]


def test_empty_retained_deletes_and_is_still_delivered_live(
    core: Router, store: MemorySessionStore
) -> None:
    core.publish(msg("t", b"old", retain=True))
    live, live_out, _ = connect(core, "live")
    subscribe(core, live, "t")
    live_out.publishes()
    core.publish(msg("t", b"", retain=True))
    assert [p.payload for p in live_out.publishes()] == [b""]
    assert core.retained == {}
    assert store.load_retained() == []
    late, late_out, _ = connect(core, "late")
    subscribe(core, late, "t")
    assert late_out.publishes() == []


def test_one_retained_message_per_topic(core: Router) -> None:
    core.publish(msg("t", b"1", retain=True))
    core.publish(msg("t", b"2", retain=True))
    session, outlet, _ = connect(core, "sub")
    subscribe(core, session, "t")
    assert [p.payload for p in outlet.publishes()] == [b"2"]


@pytest.mark.parametrize(("handling", "new", "sent"), [(0, False, 1), (1, False, 0), (2, True, 0)])
def test_retain_handling(core: Router, handling: int, new: bool, sent: int) -> None:
    core.publish(msg("t", b"v", retain=True))
    session, outlet, _ = connect(core, "sub", level=5)
    if not new:
        subscribe(core, session, "t")
        outlet.publishes()
    subscribe(core, session, "t", retain_handling=handling)
    assert len(outlet.publishes()) == sent


# -- persistent sessions ---------------------------------------------------------------------


def test_offline_persistent_session_queues_qos1_only(core: Router) -> None:
    session, _, _ = connect(core, "dev", clean=False, expiry=3600)
    subscribe(core, session, "cmd", qos=1)
    core.detach(session, send_will=False)
    core.publish(msg("cmd", b"q0", qos=0))
    core.publish(msg("cmd", b"q1", qos=1))
    _, outlet, present = connect(core, "dev", clean=False, expiry=3600)
    assert present
    [publish] = outlet.publishes()
    assert (publish.payload, publish.qos, publish.retain) == (b"q1", 1, False)


def test_clean_start_discards_the_session(core: Router, store: MemorySessionStore) -> None:
    session, _, _ = connect(core, "dev", clean=False, expiry=3600)
    subscribe(core, session, "cmd", qos=1)
    core.detach(session, send_will=False)
    core.publish(msg("cmd", qos=1))
    session, outlet, present = connect(core, "dev", clean=True, expiry=0)
    assert not present
    assert outlet.publishes() == []
    assert session.subscriptions == {}
    assert store.load_sessions() == []


def test_non_persistent_session_ends_with_its_connection(core: Router) -> None:
    session, _, _ = connect(core, "dev")
    subscribe(core, session, "cmd", qos=1)
    core.detach(session, send_will=False)
    assert "dev" not in core.sessions
    assert len(core.index) == 0
    _, _, present = connect(core, "dev", clean=False, expiry=3600)
    assert not present


def test_session_expires(core: Router, clock: Clock, store: MemorySessionStore) -> None:
    session, _, _ = connect(core, "dev", clean=False, expiry=60)
    subscribe(core, session, "cmd", qos=1)
    core.detach(session, send_will=False)
    clock.now += 59
    core.tick()
    assert "dev" in core.sessions
    clock.now += 2
    core.tick()
    assert "dev" not in core.sessions
    assert store.load_sessions() == []


def test_unacknowledged_qos1_is_resent_with_dup_on_resume(core: Router) -> None:
    session, outlet, _ = connect(core, "dev", clean=False, expiry=3600)
    subscribe(core, session, "cmd", qos=1)
    core.publish(msg("cmd", b"a", qos=1))
    [first] = outlet.publishes()
    assert not first.dup
    core.detach(session, send_will=False)
    session, outlet, _ = connect(core, "dev", clean=False, expiry=3600)
    [again] = outlet.publishes()
    assert (again.dup, again.packet_id, again.payload) == (True, first.packet_id, b"a")
    assert first.packet_id is not None
    assert core.acknowledge(session, first.packet_id)
    assert not core.acknowledge(session, first.packet_id)


def test_restart_restores_sessions_queues_and_retained(
    store: MemorySessionStore, clock: Clock
) -> None:
    before = Router(store, clock=clock)
    session, _, _ = connect(before, "dev", clean=False, expiry=3600)
    subscribe(before, session, "cmd", qos=1)
    before.detach(session, send_will=False)
    before.publish(msg("cmd", b"queued", qos=1))
    before.publish(msg("state", b"kept", qos=1, retain=True))

    after = Router(store, clock=clock)
    session, outlet, present = connect(after, "dev", clean=False, expiry=3600)
    assert present
    assert [p.payload for p in outlet.publishes()] == [b"queued"]
    subscribe(after, session, "state")
    assert [p.payload for p in outlet.publishes()] == [b"kept"]


# -- flow control ----------------------------------------------------------------------------


def test_at_most_100_unacknowledged_qos1_in_flight(core: Router) -> None:
    session, outlet, _ = connect(core, "dev")
    subscribe(core, session, "t", qos=1)
    for n in range(150):
        core.publish(msg("t", str(n).encode(), qos=1))
    sent = outlet.publishes()
    assert len(sent) == 100
    assert len(session.queue) == 50
    for publish in sent[:10]:
        assert publish.packet_id is not None
        core.acknowledge(session, publish.packet_id)
    more = outlet.publishes()
    assert [p.payload for p in more] == [str(n).encode() for n in range(100, 110)]


def test_a_session_queues_again_after_its_queue_drained(core: Router) -> None:
    # A session's queue is made at its first waiting message and let go once drained (most
    # sessions never queue): the next backlog is queued, in order, as the first was.
    session, outlet, _ = connect(core, "dev", level=5, receive_maximum=1)
    assert session.queued == 0
    subscribe(core, session, "t", qos=1)
    for burst in ("a", "b"):
        for n in range(3):
            core.publish(msg("t", f"{burst}{n}".encode(), qos=1))
        assert session.queued == 2
        for n in range(3):
            [publish] = outlet.publishes()
            assert publish.payload == f"{burst}{n}".encode()
            assert publish.packet_id is not None
            core.acknowledge(session, publish.packet_id)
        assert session.queued == 0
        assert outlet.publishes() == []


def test_a_session_that_never_queued_gets_its_offline_messages_after_subscribing_late(
    core: Router,
) -> None:
    # Connected for a while with nothing queued and no subscription; then it subscribes, goes
    # away, and what arrives meanwhile is waiting when it is back.
    session, outlet, _ = connect(core, "dev", clean=False, expiry=3600)
    core.publish(msg("cmd", b"before", qos=1))
    assert session.queued == 0
    subscribe(core, session, "cmd", qos=1)
    core.detach(session, send_will=False)
    core.publish(msg("cmd", b"q1", qos=1))
    core.publish(msg("cmd", b"q2", qos=1))
    assert session.queued == 2
    _, outlet, present = connect(core, "dev", clean=False, expiry=3600)
    assert present
    assert [p.payload for p in outlet.publishes()] == [b"q1", b"q2"]


def test_client_receive_maximum_is_respected(core: Router) -> None:
    session, outlet, _ = connect(core, "dev", level=5, receive_maximum=3)
    subscribe(core, session, "t", qos=1)
    for _ in range(5):
        core.publish(msg("t", qos=1))
    assert len(outlet.publishes()) == 3


# -- takeover and wills ----------------------------------------------------------------------


def test_takeover_disconnects_the_old_connection_and_sends_its_will(core: Router) -> None:
    watcher, watcher_out, _ = connect(core, "watcher")
    subscribe(core, watcher, "wills/dev")
    will = msg("wills/dev", b"gone", sender="dev")
    _, old_out, _ = connect(core, "dev", will=will)
    _, new_out, _ = connect(core, "dev")
    assert old_out.was_taken_over
    assert [p.payload for p in watcher_out.publishes()] == [b"gone"]
    assert core.sessions["dev"].outlet is new_out


@pytest.mark.parametrize(("send_will", "expected"), [(True, [b"gone"]), (False, [])])
def test_will_is_sent_unless_the_disconnect_was_clean(
    core: Router, send_will: bool, expected: list[bytes]
) -> None:
    watcher, watcher_out, _ = connect(core, "watcher")
    subscribe(core, watcher, "wills/dev")
    session, _, _ = connect(core, "dev", will=msg("wills/dev", b"gone", sender="dev"))
    core.detach(session, send_will=send_will)
    assert [p.payload for p in watcher_out.publishes()] == expected


def test_will_delay_and_cancellation_on_reconnect(core: Router, clock: Clock) -> None:
    watcher, watcher_out, _ = connect(core, "watcher")
    subscribe(core, watcher, "wills/dev")
    will = msg("wills/dev", b"gone", sender="dev")
    session, _, _ = connect(core, "dev", level=5, clean=False, expiry=600, will=will, will_delay=30)
    core.detach(session, send_will=True)
    clock.now += 29
    core.tick()
    assert watcher_out.publishes() == []
    clock.now += 2
    core.tick()
    assert [p.payload for p in watcher_out.publishes()] == [b"gone"]
    # The twin: reconnecting within the delay cancels the will.
    session, _, _ = connect(core, "dev", level=5, clean=False, expiry=600, will=will, will_delay=30)
    core.detach(session, send_will=True)
    connect(core, "dev", level=5, clean=False, expiry=600)
    clock.now += 60
    core.tick()
    assert watcher_out.publishes() == []


# -- shared subscriptions, no-local, expiry ----------------------------------------------------


def test_shared_subscription_delivers_each_message_to_one_member(core: Router) -> None:
    outlets = []
    for name in ("w1", "w2", "w3"):
        session, outlet, _ = connect(core, name)
        subscribe(core, session, "$share/workers/jobs/+")
        outlets.append(outlet)
    for n in range(30):
        core.publish(msg(f"jobs/{n}"))
    received = [p.topic for outlet in outlets for p in outlet.publishes()]
    assert sorted(received) == sorted(f"jobs/{n}" for n in range(30))


def test_no_local(core: Router) -> None:
    session, outlet, _ = connect(core, "me", level=5)
    subscribe(core, session, "chat", no_local=True)
    core.publish(msg("chat", sender="me"))
    assert outlet.publishes() == []
    core.publish(msg("chat", sender="you"))
    assert len(outlet.publishes()) == 1


def test_message_expiry(core: Router, clock: Clock) -> None:
    session, _, _ = connect(core, "dev", level=5, clean=False, expiry=3600)
    subscribe(core, session, "t", qos=1)
    core.detach(session, send_will=False)
    core.publish(msg("t", b"short", qos=1, expires_at=clock.now + 10))
    core.publish(msg("t", b"long", qos=1, expires_at=clock.now + 100))
    clock.now += 40
    _, outlet, _ = connect(core, "dev", level=5, clean=False, expiry=3600)
    [publish] = outlet.publishes()
    assert publish.payload == b"long"
    assert publish.properties.message_expiry_interval == 60


def test_mqtt5_properties_are_forwarded_and_stripped_for_mqtt311(core: Router) -> None:
    v5, v5_out, _ = connect(core, "v5", level=5)
    v3, v3_out, _ = connect(core, "v3", level=4)
    subscribe(core, v5, "t")
    subscribe(core, v3, "t")
    properties = Properties(content_type="text/plain", user_properties=(("k", "v"),))
    core.publish(msg("t", properties=properties))
    [to_v5] = v5_out.publishes()
    [to_v3] = v3_out.publishes()
    assert to_v5.properties.content_type == "text/plain"
    assert to_v5.properties.user_properties == (("k", "v"),)
    assert to_v3.payload == to_v5.payload


def test_fifty_subscriptions_per_connection(core: Router) -> None:
    session, _, _ = connect(core, "dev", level=5)
    for n in range(50):
        assert subscribe(core, session, f"t/{n}", qos=0) == (0,)
    assert subscribe(core, session, "t/50", qos=0) == (0x97,)
    # Re-subscribing to an existing filter is not a new subscription.
    assert subscribe(core, session, "t/0", qos=1) == (1,)


def test_oversized_delivery_is_dropped_for_a_small_client_maximum(core: Router) -> None:
    session, outlet, _ = connect(core, "dev", level=5)
    outlet.maximum_packet_size = 50
    subscribe(core, session, "t", qos=1)
    core.publish(msg("t", b"x" * 100, qos=1))
    core.publish(msg("t", b"small", qos=1))
    assert [p.payload for p in outlet.publishes()] == [b"small"]
    assert len(session.inflight) == 1


# -- the router's memory of each topic's targets ------------------------------------------


def test_targets_follow_subscribe_and_unsubscribe_after_the_topic_was_routed(
    core: Router,
) -> None:
    first, first_out, _ = connect(core, "first")
    subscribe(core, first, "t/1", qos=0)
    core.publish(msg("t/1"))
    second, second_out, _ = connect(core, "second")
    subscribe(core, second, "t/+", qos=1)
    core.publish(msg("t/1", qos=1))
    assert [p.qos for p in first_out.publishes()] == [0, 0]
    assert [p.qos for p in second_out.publishes()] == [1]
    core.unsubscribe(first, ["t/1"])
    core.publish(msg("t/1", qos=1))
    assert first_out.publishes() == []
    assert len(second_out.publishes()) == 1


def test_targets_differ_by_qos_and_retain_of_the_same_topic(core: Router) -> None:
    session, outlet, _ = connect(core, "s", level=5)
    subscribe(core, session, "t", qos=1, retain_as_published=True)
    core.publish(msg("t", qos=0))
    core.publish(msg("t", qos=1, retain=True))
    core.publish(msg("t", qos=1))
    assert [(p.qos, p.retain) for p in outlet.publishes()] == [(0, False), (1, True), (1, False)]


def test_no_local_targets_depend_on_the_sender_every_time(core: Router) -> None:
    session, outlet, _ = connect(core, "me", level=5)
    subscribe(core, session, "chat", no_local=True)
    for sender in ("you", "me", "you", "me"):
        core.publish(msg("chat", sender=sender))
    assert len(outlet.publishes()) == 2


def test_shared_groups_choose_a_member_per_message_on_a_repeated_topic(core: Router) -> None:
    outlets = []
    for name in ("w1", "w2"):
        session, outlet, _ = connect(core, name)
        subscribe(core, session, "$share/g/jobs")
        outlets.append(outlet)
    for _ in range(40):
        core.publish(msg("jobs"))
    counts = [len(outlet.publishes()) for outlet in outlets]
    assert sum(counts) == 40
    assert all(counts)  # 40 random picks from 2 members: both chosen (1 in 2**39 to fail)


def test_a_disconnected_target_is_skipped_then_reached_again(core: Router) -> None:
    session, outlet, _ = connect(core, "s", clean=False, expiry=3600)
    subscribe(core, session, "t", qos=1)
    core.publish(msg("t", qos=0))
    assert [p.qos for p in outlet.publishes()] == [0]
    core.detach(session, send_will=False)
    core.publish(msg("t", qos=0))  # QoS 0 is not kept for an offline session
    core.publish(msg("t", qos=1))  # QoS 1 is
    session, outlet, present = connect(core, "s", clean=False, expiry=3600)
    assert present
    assert [p.qos for p in outlet.publishes()] == [1]
    core.publish(msg("t", qos=0))
    assert [p.qos for p in outlet.publishes()] == [0]


def test_a_qos1_fan_out_carries_each_session_s_own_packet_identifier(core: Router) -> None:
    outlets = []
    for index, name in enumerate(("a", "b", "c")):
        session, outlet, _ = connect(core, name, level=4 + (index == 1))
        subscribe(core, session, "t", qos=1)
        for _ in range(index):  # each session's next identifier is different
            session.allocate_packet_id()
        outlets.append(outlet)
    core.publish(msg("t", b"payload", qos=1))
    ids = [[(p.packet_id, p.payload, p.dup) for p in o.publishes()] for o in outlets]
    assert ids == [[(1, b"payload", False)], [(2, b"payload", False)], [(3, b"payload", False)]]
