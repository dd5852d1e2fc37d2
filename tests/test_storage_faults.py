"""Storage faults (issue 11 item 2): a locked database, a full disk, a long stored queue.

Nothing here mocks SQLite: a locked database is another connection holding its write lock (as
the ``sqlite3`` shell's ``BEGIN IMMEDIATE`` or a backup would), a full disk is SQLite's own size
cap (``PRAGMA max_page_count``: the same SQLITE_FULL a full file system gives; ``make stress``
fills a real tmpfs). The pure router tests use a store that fails on demand, since the router
is what they test. Every refusal has its twin.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from aws_iot_mock.core.routing import QUEUE_PAGE, Router
from aws_iot_mock.core.session_store import MemorySessionStore, StoredSession
from aws_iot_mock.errors import StorageError, StorageFault
from aws_iot_mock.mqtt.codec import Properties, Puback, Publish, SubscriptionOptions
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.state.sessions import SqliteSessionStore
from tests.conftest import RunningBroker
from tests.test_mqtt_pubsub import LEVELS, Clients, RawClient, assert_closed, assert_logged
from tests.test_routing import Clock, connect, msg, subscribe

TIMEOUT = 10.0
SERVER_BUSY = 0x89
QUOTA_EXCEEDED = 0x97


@contextlib.contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another connection holds ``database``'s write lock until the block ends."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


def cap_size(connection: sqlite3.Connection, extra_pages: int = 0) -> None:
    """Let the database grow by ``extra_pages`` at most (SQLite then answers SQLITE_FULL)."""
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


# -- the SQLite store ----------------------------------------------------------------------------


def test_a_locked_database_fails_as_busy_and_then_at_once(tmp_path: Path) -> None:
    store = SqliteSessionStore.open(tmp_path).bound_waits(retry_after=3600)
    with write_lock_held(tmp_path / "broker.sqlite3"):
        with pytest.raises(StorageError) as first:
            store.put_retained(Message("r/t", b"kept", 1, True))
        assert (first.value.fault, first.value.what) == (StorageFault.BUSY, "broker.sqlite3")
        assert first.value.cause == "database is locked"
        # Within retry_after the next write does not wait for the lock again.
        with pytest.raises(StorageError) as second:
            store.put_retained(Message("r/t", b"kept", 1, True))
        assert second.value.fault is StorageFault.BUSY
        assert "not retried yet" in second.value.cause
        # Reads are not blocked by another process's write lock (WAL).
        assert store.load_retained() == []
    store.close()
    # The twin: once the lock is gone, a store that may try again writes.
    store = SqliteSessionStore.open(tmp_path).bound_waits(retry_after=0)
    store.put_retained(Message("r/t", b"kept", 1, True))
    assert [m.payload for m in store.load_retained()] == [b"kept"]
    store.close()


def test_a_full_database_fails_as_full_and_keeps_nothing(tmp_path: Path) -> None:
    store = SqliteSessionStore.open(tmp_path).bound_waits()
    store.put_session(StoredSession("dev", 4, 60))
    big = Message("q/t", b"x" * 65536, 1)
    cap_size(store._connection)
    with pytest.raises(StorageError) as raised:
        store.enqueue_many([("dev", big)])
    assert (raised.value.fault, raised.value.cause) == (
        StorageFault.FULL,
        "database or disk is full",
    )
    assert store.load_queue("dev") == []
    # The twin: with room again, the same message is stored.
    cap_size(store._connection, extra_pages=1000)
    (row_id,) = store.enqueue_many([("dev", big)])
    assert store.load_queue("dev") == [(row_id, big)]
    store.close()


def test_the_queue_is_read_a_page_at_a_time(tmp_path: Path) -> None:
    store = SqliteSessionStore.open(tmp_path)
    store.put_session(StoredSession("dev", 4, 60))
    ids = store.enqueue_many([("dev", Message("q/t", str(n).encode(), 1)) for n in range(5)])
    assert [row for row, _ in store.load_queue("dev", limit=2)] == ids[:2]
    assert [row for row, _ in store.load_queue("dev", after=ids[1], limit=2)] == ids[2:4]
    assert [row for row, _ in store.load_queue("dev", after=ids[3])] == ids[4:]
    assert store.load_sessions()[0].queued == 5
    store.close()


# -- the router, with a store that fails on demand -------------------------------------------------


class BreakableStore(MemorySessionStore):
    """The memory store, failing every write while ``fault`` is set; records queue reads."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: StorageFault | None = None
        self.pages: list[int | None] = []

    def _check(self) -> None:
        if self.fault is not None:
            raise StorageError(self.fault, "broker.sqlite3", "database is locked")

    def put_retained(self, message: Message) -> None:
        self._check()
        super().put_retained(message)

    def delete_retained(self, topic: str) -> None:
        self._check()
        super().delete_retained(topic)

    def put_session(self, session: StoredSession) -> None:
        self._check()
        super().put_session(session)

    def set_disconnected_at(self, client_id: str, when: float | None) -> None:
        self._check()
        super().set_disconnected_at(client_id, when)

    def delete_session(self, client_id: str) -> None:
        self._check()
        super().delete_session(client_id)

    def enqueue_many(self, entries: Sequence[tuple[str, Message]]) -> list[int]:
        self._check()
        return super().enqueue_many(entries)

    def remove_queued(self, client_id: str, row_id: int) -> None:
        self._check()
        super().remove_queued(client_id, row_id)

    def load_queue(
        self, client_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, Message]]:
        self.pages.append(limit)
        return super().load_queue(client_id, after=after, limit=limit)


class Failures:
    def __init__(self) -> None:
        self.reported: list[tuple[StorageFault, str]] = []

    def __call__(self, error: StorageError, what: str) -> None:
        self.reported.append((error.fault, what))


@pytest.fixture
def store() -> BreakableStore:
    return BreakableStore()


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.fixture
def router(store: BreakableStore, failures: Failures) -> Router:
    return Router(store, clock=Clock(), storage_failed=failures)


def test_a_message_that_cannot_be_stored_reaches_nobody(
    router: Router, store: BreakableStore
) -> None:
    keeper, _, _ = connect(router, "keeper", clean=False, expiry=3600)
    subscribe(router, keeper, "s/t")
    router.detach(keeper, send_will=False)
    _, live_outlet, _ = connect(router, "live")
    subscribe(router, router.sessions["live"], "s/t")
    observed: list[Message] = []
    router.observers.append(observed.append)

    store.fault = StorageFault.BUSY
    with pytest.raises(StorageError):
        router.publish(msg("s/t", b"lost", qos=1))
    with pytest.raises(StorageError):
        router.publish(msg("r/t", b"retained", qos=0, retain=True))
    assert live_outlet.publishes() == []
    assert observed == []
    assert router.retained == {}

    # The twin: once the store works, the same publishes are stored and delivered.
    store.fault = None
    router.publish(msg("s/t", b"kept", qos=1))
    router.publish(msg("r/t", b"retained", qos=0, retain=True))
    assert [p.payload for p in live_outlet.publishes()] == [b"kept"]
    assert [m.payload for m in observed] == [b"kept", b"retained"]
    assert [m.payload for _, m in store.load_queue("keeper")] == [b"kept"]
    assert [m.payload for m in store.load_retained()] == [b"retained"]


def test_session_bookkeeping_is_written_once_the_store_recovers(
    router: Router, store: BreakableStore, failures: Failures
) -> None:
    store.fault = StorageFault.BUSY
    session, _, _ = connect(router, "dev", clean=False, expiry=3600)
    assert subscribe(router, session, "d/t") == (1,)  # granted: memory is right
    router.detach(session, send_will=False)
    assert store.load_sessions() == []
    # One record for the episode, not one per failed write.
    assert failures.reported == [
        (
            StorageFault.BUSY,
            "the session of client 'dev' (kept in memory; written once a second until the "
            "database accepts it)",
        )
    ]

    store.fault = None
    # Before the next tick a message for the session still finds its row written first.
    router.publish(msg("d/t", b"one", qos=1))
    router.tick()
    (stored,) = store.load_sessions()
    assert (stored.client_id, [f for f, _ in stored.subscriptions]) == ("dev", ["d/t"])
    assert stored.disconnected_at is not None
    assert [m.payload for _, m in store.load_queue("dev")] == [b"one"]


def test_an_acknowledged_row_is_deleted_once_the_store_recovers(
    router: Router, store: BreakableStore
) -> None:
    session, outlet, _ = connect(router, "dev", clean=False, expiry=3600)
    subscribe(router, session, "d/t")
    router.publish(msg("d/t", b"one", qos=1))
    (sent,) = outlet.publishes()
    assert sent.packet_id is not None

    store.fault = StorageFault.FULL
    assert router.acknowledge(session, sent.packet_id)
    assert len(store.load_queue("dev")) == 1  # not deleted yet
    store.fault = None
    router.tick()
    assert store.load_queue("dev") == []


def test_a_stored_queue_streams_in_pages_after_a_restart(store: BreakableStore) -> None:
    count = 3 * QUEUE_PAGE + 10
    store.put_session(
        StoredSession(
            "dev", 4, 3600, (("d/t", SubscriptionOptions(qos=1)),), disconnected_at=1_000_000.0
        )
    )
    store.enqueue_many([("dev", Message("d/t", str(n).encode(), 1)) for n in range(count)])
    router = Router(store, clock=Clock())  # a restart: the queue is only in the store
    router.publish(msg("d/t", str(count).encode(), qos=1))  # queued behind the stored ones

    session, outlet, present = connect(router, "dev", clean=False, expiry=3600)
    assert present
    received: list[bytes] = []
    while packets := outlet.publishes():
        for packet in packets:
            received.append(packet.payload)
            assert packet.packet_id is not None
            router.acknowledge(session, packet.packet_id)
        assert len(session.queue) <= QUEUE_PAGE
    assert received == [str(n).encode() for n in range(count + 1)]
    assert store.pages and set(store.pages) == {QUEUE_PAGE}
    assert store.load_queue("dev") == []


def test_a_stored_backlog_counts_towards_the_queue_limit(store: BreakableStore) -> None:
    store.put_session(
        StoredSession(
            "dev", 4, 3600, (("d/t", SubscriptionOptions(qos=1)),), disconnected_at=1_000_000.0
        )
    )
    store.enqueue_many([("dev", Message("d/t", b"old", 1)) for _ in range(5)])
    router = Router(store, clock=Clock(), session_queue_max=5)
    assert router.publish(msg("d/t", b"new", qos=1)) == 0  # dropped: the queue is full
    # The twin: below the limit it is kept.
    other = Router(store, clock=Clock(), session_queue_max=6)
    assert other.publish(msg("d/t", b"new", qos=1)) == 1


# -- end to end: MQTT clients over TLS against a broker whose database is locked or full ----------


@pytest.fixture
async def tls_clients(running_broker: RunningBroker) -> AsyncIterator[Clients]:
    opened = Clients(running_broker, "tls")
    try:
        yield opened
    finally:
        await opened.close_all()


async def _keeper(clients: Clients, level: int) -> None:
    """A persistent session subscribed at QoS 1, left offline: its messages must be stored."""
    properties = Properties(session_expiry_interval=3600) if level == 5 else None
    keeper = await clients("keeper", level, clean=False, properties=properties)
    await keeper.subscribe("store/t")
    await keeper.close()


async def _publish_until_acknowledged(clients: Clients, level: int, payload: bytes) -> None:
    """Publish on fresh connections until one is acknowledged: after a lock is released the
    broker tries the database again within a second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        client = await clients("publisher", level)
        await client.send(Publish("store/t", payload, qos=1, packet_id=1))
        try:
            answer = await client.recv_packet()
        except AssertionError:  # MQTT 3.1.1: closed, not stored yet
            answer = None
        if not isinstance(answer, Puback):  # MQTT 5: DISCONNECT 0x89, not stored yet
            assert loop.time() < deadline, "the broker never accepted the publish again"
            continue
        assert answer.reason_code == 0, answer
        await client.close()
        return


async def _resume(clients: Clients, level: int) -> list[bytes]:
    properties = Properties(session_expiry_interval=3600) if level == 5 else None
    keeper = await clients("keeper", level, clean=False, properties=properties)
    payloads = [packet.payload for packet in await _drain(keeper)]
    await keeper.close()
    return payloads


async def _drain(client: RawClient) -> list[Publish]:
    received: list[Publish] = []
    while publishes := [p for p in await client.collect() if isinstance(p, Publish)]:
        for packet in publishes:
            received.append(packet)
            if packet.packet_id is not None:
                await client.send(Puback(packet.packet_id))
    return received


@LEVELS
async def test_a_locked_database_refuses_the_publish_without_a_puback(
    tls_clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    await _keeper(tls_clients, level)
    publisher = await tls_clients("publisher", level)
    puback = await publisher.publish("store/t", b"before")
    assert puback is not None and puback.reason_code == 0  # the twin, before the lock
    await publisher.close()

    publisher = await tls_clients("publisher", level)
    with write_lock_held(running_broker.config.state_dir / "broker.sqlite3"):
        await publisher.send(Publish("store/t", b"refused", qos=1, packet_id=1))
        # No PUBACK: MQTT 5 gets DISCONNECT 0x89 (Server busy), MQTT 3.1.1 a close.
        await assert_closed(publisher, SERVER_BUSY)
        record = await assert_logged(running_broker, "Publish-In", "STORAGE_BUSY", "store/t")
        assert "broker.sqlite3: database is locked" in str(record["details"])
        disconnect = await running_broker.wait_for_record(
            lambda r: r.get("eventType") == "Disconnect" and r.get("reason") == "STORAGE_BUSY"
        )
        assert disconnect["disconnectReason"] == "SERVER_ERROR"

    await _publish_until_acknowledged(tls_clients, level, b"after")
    assert await _resume(tls_clients, level) == [b"before", b"after"]


async def test_a_full_database_refuses_the_publish_with_0x97(
    tls_clients: Clients, running_broker: RunningBroker
) -> None:
    await _keeper(tls_clients, 5)
    store = running_broker.broker._store
    assert store is not None
    publisher = await tls_clients("publisher", 5)
    with store._lock:
        cap_size(store._connection)
    await publisher.send(Publish("store/t", b"x" * 65536, qos=1, packet_id=1))
    await assert_closed(publisher, QUOTA_EXCEEDED)
    record = await assert_logged(running_broker, "Publish-In", "STORAGE_FULL", "store/t")
    assert "database or disk is full" in str(record["details"])

    # The twin: with room again, the same publish is acknowledged and kept for the session.
    with store._lock:
        cap_size(store._connection, extra_pages=10_000)
    publisher = await tls_clients("publisher", 5)
    puback = await publisher.publish("store/t", b"x" * 65536)
    assert puback is not None and puback.reason_code == 0
    await publisher.close()
    assert await _resume(tls_clients, 5) == [b"x" * 65536]
