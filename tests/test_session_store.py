"""Tests for broker.state.sessions: retained messages and persistent sessions.

Every behaviour runs against both stores, so the in-memory one stays a faithful stand-in for the
SQLite one. SQLite-only tests cover reopening, ``kill -9`` and two store objects on one file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_iot_mock.core.session_store import (
    MemorySessionStore,
    SessionStore,
    StoredSession,
    stored_form,
)
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties, SubscriptionOptions
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.state.sessions import DATABASE_NAME, SCHEMA_MIGRATIONS, SqliteSessionStore

REPO = Path(__file__).resolve().parent.parent
T0 = 1_790_000_000.25  # an epoch time with a fractional part, to check REAL round trips

FULL_PROPERTIES = Properties(
    payload_format_indicator=1,
    content_type="application/json",
    response_topic="reply/here",
    correlation_data=b"\x00\x01corr\xff",
    user_properties=(("a", "1"), ("b", "two"), ("a", "3")),  # order and repeats matter
)


def _message(topic: str = "t/1", payload: bytes = b"p", **kwargs: object) -> Message:
    fields: dict[str, object] = {"qos": 1, "published_at": T0}
    fields.update(kwargs)
    return Message(topic, payload, **fields)  # type: ignore[arg-type]


def _session(client_id: str = "dev", **kwargs: object) -> StoredSession:
    fields: dict[str, object] = {"protocol_level": 5, "expiry_interval": 3600}
    fields.update(kwargs)
    return StoredSession(client_id, **fields)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    implementation: SessionStore
    if request.param == "memory":
        implementation = MemorySessionStore()
    else:
        implementation = SqliteSessionStore.open(tmp_path / "state")
    try:
        yield implementation
    finally:
        implementation.close()


# --- retained messages ------------------------------------------------------------------------


def test_retained_starts_empty(store: SessionStore) -> None:
    assert store.load_retained() == []


def test_put_retained_round_trips_every_field(store: SessionStore) -> None:
    message = _message(
        "sensors/1",
        b"\x00\xffbinary",
        retain=True,
        properties=FULL_PROPERTIES,
        expires_at=T0 + 60.5,
        sender="publisher-1",
    )
    store.put_retained(message)
    assert store.load_retained() == [message]


def test_put_retained_keeps_minimal_message(store: SessionStore) -> None:
    message = Message("a", b"")  # qos 0, no properties, no sender, empty payload
    store.put_retained(message)
    (loaded,) = store.load_retained()
    assert loaded == message
    assert loaded.properties == EMPTY_PROPERTIES
    assert loaded.payload == b""
    assert isinstance(loaded.payload, bytes)


def test_put_retained_replaces_per_topic_and_loads_by_topic(store: SessionStore) -> None:
    store.put_retained(_message("b", b"old"))
    store.put_retained(_message("a", b"a"))
    store.put_retained(_message("b", b"new", properties=FULL_PROPERTIES))
    assert store.load_retained() == [
        _message("a", b"a"),
        _message("b", b"new", properties=FULL_PROPERTIES),
    ]


def test_replacing_retained_drops_old_properties(store: SessionStore) -> None:
    store.put_retained(_message("a", properties=FULL_PROPERTIES))
    store.put_retained(_message("a"))
    assert store.load_retained()[0].properties == EMPTY_PROPERTIES


def test_delete_retained(store: SessionStore) -> None:
    store.put_retained(_message("a"))
    store.put_retained(_message("b"))
    store.delete_retained("a")
    store.delete_retained("missing")  # no error
    assert [m.topic for m in store.load_retained()] == ["b"]


def test_only_forwardable_properties_are_kept(store: SessionStore) -> None:
    extra = Properties(content_type="text/plain", topic_alias=7, subscription_identifiers=(3,))
    store.put_retained(_message("a", properties=extra))
    (loaded,) = store.load_retained()
    assert loaded.properties == Properties(content_type="text/plain")
    assert loaded == stored_form(_message("a", properties=extra))


def test_stored_form_returns_same_object_when_nothing_to_drop() -> None:
    plain = _message()
    full = _message(properties=FULL_PROPERTIES)
    assert stored_form(plain) is plain
    assert stored_form(full) is full


# --- sessions ---------------------------------------------------------------------------------


SUBSCRIPTIONS = (
    ("b/+", SubscriptionOptions(qos=1)),
    (
        "$share/group/a/#",
        SubscriptionOptions(qos=0, no_local=True, retain_as_published=True, retain_handling=2),
    ),
    ("a/b", SubscriptionOptions(qos=1, retain_handling=1)),
)


def test_put_and_load_sessions(store: SessionStore) -> None:
    connected = _session("b-dev", subscriptions=SUBSCRIPTIONS)
    offline = _session("a-dev", protocol_level=4, expiry_interval=0, disconnected_at=T0)
    store.put_session(connected)
    store.put_session(offline)
    assert store.load_sessions() == [offline, connected]  # ordered by client ID


def test_subscription_order_is_kept(store: SessionStore) -> None:
    reordered = (SUBSCRIPTIONS[2], SUBSCRIPTIONS[0], SUBSCRIPTIONS[1])
    store.put_session(_session(subscriptions=reordered))
    assert store.load_sessions()[0].subscriptions == reordered


def test_put_session_replaces_everything_but_the_queue(store: SessionStore) -> None:
    store.put_session(_session(subscriptions=SUBSCRIPTIONS, disconnected_at=T0))
    (row_id,) = store.enqueue_many([("dev", _message())])
    replacement = _session(
        protocol_level=4, expiry_interval=7, subscriptions=SUBSCRIPTIONS[:1], disconnected_at=None
    )
    store.put_session(replacement)
    assert store.load_sessions() == [replacement]
    assert store.load_queue("dev") == [(row_id, _message())]


def test_put_session_with_no_subscriptions_clears_them(store: SessionStore) -> None:
    store.put_session(_session(subscriptions=SUBSCRIPTIONS))
    store.put_session(_session())
    assert store.load_sessions()[0].subscriptions == ()


def test_set_disconnected_at(store: SessionStore) -> None:
    store.put_session(_session(subscriptions=SUBSCRIPTIONS))
    store.set_disconnected_at("dev", T0)
    assert store.load_sessions() == [_session(subscriptions=SUBSCRIPTIONS, disconnected_at=T0)]
    store.set_disconnected_at("dev", None)
    assert store.load_sessions()[0].disconnected_at is None
    store.set_disconnected_at("missing", T0)  # no error, no session created
    assert [s.client_id for s in store.load_sessions()] == ["dev"]


def test_delete_session_deletes_subscriptions_and_queue(store: SessionStore) -> None:
    store.put_session(_session("dev", subscriptions=SUBSCRIPTIONS))
    store.put_session(_session("other"))
    store.enqueue_many([("dev", _message("x")), ("other", _message("y"))])
    store.delete_session("dev")
    store.delete_session("missing")  # no error
    assert [s.client_id for s in store.load_sessions()] == ["other"]
    assert store.load_queue("dev") == []
    assert [m.topic for _, m in store.load_queue("other")] == ["y"]
    # A new session with the same ID starts empty.
    store.put_session(_session("dev"))
    assert store.load_sessions()[0].subscriptions == ()
    assert store.load_queue("dev") == []


# --- queues -----------------------------------------------------------------------------------


def test_queue_keeps_enqueue_order_and_every_field(store: SessionStore) -> None:
    store.put_session(_session())
    first = _message("t/1", b"1", properties=FULL_PROPERTIES, sender="s", expires_at=T0 + 1)
    second = _message("t/2", b"2", retain=True)
    third = _message("t/3", b"3", qos=0)
    ids = store.enqueue_many([("dev", first)])
    ids += store.enqueue_many([("dev", second), ("dev", third)])
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert store.load_queue("dev") == list(zip(ids, [first, second, third], strict=True))


def test_enqueue_many_returns_ids_in_entry_order(store: SessionStore) -> None:
    for client_id in ("a", "b", "c"):
        store.put_session(_session(client_id))
    entries = [("c", _message("1")), ("a", _message("2")), ("c", _message("3")), ("b", _message())]
    ids = store.enqueue_many(entries)
    assert len(ids) == len(entries)
    assert ids == sorted(ids)  # increasing in enqueue order
    assert store.load_queue("c") == [(ids[0], _message("1")), (ids[2], _message("3"))]
    assert store.load_queue("a") == [(ids[1], _message("2"))]
    assert store.load_queue("b") == [(ids[3], _message())]


def test_enqueue_many_nothing(store: SessionStore) -> None:
    assert store.enqueue_many([]) == []


def test_enqueue_many_is_all_or_nothing(store: SessionStore) -> None:
    store.put_session(_session("a"))
    store.put_session(_session("b"))
    entries = [("a", _message("1")), ("b", _message("2")), ("ghost", _message("3"))]
    with pytest.raises(KeyError, match="ghost"):
        store.enqueue_many(entries)
    assert store.load_queue("a") == []
    assert store.load_queue("b") == []
    assert store.load_queue("ghost") == []
    assert [s.client_id for s in store.load_sessions()] == ["a", "b"]  # no session was made
    # The store is still usable afterwards.
    assert len(store.enqueue_many(entries[:2])) == 2


def test_enqueue_one_for_unknown_client(store: SessionStore) -> None:
    with pytest.raises(KeyError, match="ghost"):
        store.enqueue_many([("ghost", _message())])
    assert store.load_queue("ghost") == []
    store.put_session(_session("ghost"))
    (row_id,) = store.enqueue_many([("ghost", _message())])
    assert store.load_queue("ghost") == [(row_id, _message())]


def test_remove_queued(store: SessionStore) -> None:
    store.put_session(_session("dev"))
    store.put_session(_session("other"))
    ids = store.enqueue_many([("dev", _message(str(i))) for i in range(4)])
    (other_id,) = store.enqueue_many([("other", _message("o"))])
    store.remove_queued("dev", ids[1])
    store.remove_queued("dev", ids[1])  # twice: no error
    store.remove_queued("dev", other_id)  # another client's row: ignored
    store.remove_queued("missing", ids[0])  # unknown client: ignored
    assert [row_id for row_id, _ in store.load_queue("dev")] == [ids[0], ids[2], ids[3]]
    assert store.load_queue("other") == [(other_id, _message("o"))]


def test_row_ids_are_never_reused(store: SessionStore) -> None:
    store.put_session(_session())
    ids = store.enqueue_many([("dev", _message()), ("dev", _message())])
    store.remove_queued("dev", ids[1])  # the highest id, which a plain rowid would hand out again
    (new_id,) = store.enqueue_many([("dev", _message())])
    assert new_id > ids[1]


def test_load_queue_of_unknown_client_is_empty(store: SessionStore) -> None:
    assert store.load_queue("nobody") == []


# --- session expiry ---------------------------------------------------------------------------


def test_purge_expired_sessions(store: SessionStore) -> None:
    store.put_session(_session("connected", expiry_interval=0, disconnected_at=None))
    store.put_session(_session("expired", expiry_interval=10, disconnected_at=T0 - 11))
    store.put_session(_session("zero", expiry_interval=0, disconnected_at=T0 - 0.5))
    store.put_session(_session("at-boundary", expiry_interval=10, disconnected_at=T0 - 10))
    store.put_session(_session("fresh", expiry_interval=3600, disconnected_at=T0 - 5))
    store.put_session(_session("forever", expiry_interval=0xFFFFFFFF, disconnected_at=0.0))
    store.enqueue_many([("expired", _message()), ("fresh", _message())])

    assert store.purge_expired_sessions(T0) == ["expired", "zero"]
    assert [s.client_id for s in store.load_sessions()] == [
        "at-boundary",
        "connected",
        "forever",
        "fresh",
    ]
    assert store.load_queue("expired") == []
    assert len(store.load_queue("fresh")) == 1
    assert store.purge_expired_sessions(T0) == []
    # Strictly after the boundary the next one goes.
    assert store.purge_expired_sessions(T0 + 0.001) == ["at-boundary"]


def test_purge_expired_sessions_with_nothing_stored(store: SessionStore) -> None:
    assert store.purge_expired_sessions(T0) == []


def test_reconnect_protects_session_from_purge(store: SessionStore) -> None:
    store.put_session(_session(expiry_interval=10, disconnected_at=T0 - 100))
    store.set_disconnected_at("dev", None)
    assert store.purge_expired_sessions(T0) == []


# --- SQLite: files, reopening, schema ---------------------------------------------------------


def _fill(store: SessionStore) -> tuple[list[int], StoredSession]:
    session = _session(subscriptions=SUBSCRIPTIONS, disconnected_at=T0)
    store.put_session(session)
    store.put_retained(_message("r", retain=True, properties=FULL_PROPERTIES))
    ids = store.enqueue_many([("dev", _message("q1", properties=FULL_PROPERTIES))])
    ids += store.enqueue_many([("dev", _message("q2"))])
    return ids, session


def test_sqlite_data_survives_close_and_reopen(tmp_path: Path) -> None:
    with SqliteSessionStore.open(tmp_path) as store:
        ids, session = _fill(store)
    with SqliteSessionStore.open(tmp_path) as store:
        assert store.load_sessions() == [session]
        assert store.load_retained() == [_message("r", retain=True, properties=FULL_PROPERTIES)]
        assert store.load_queue("dev") == [
            (ids[0], _message("q1", properties=FULL_PROPERTIES)),
            (ids[1], _message("q2")),
        ]
        # Ids keep increasing across reopening.
        assert store.enqueue_many([("dev", _message())])[0] > ids[1]


def test_sqlite_file_layout_and_pragmas(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "state"
    with SqliteSessionStore.open(state_dir):
        pass
    assert (state_dir.stat().st_mode & 0o777) == 0o700
    database = state_dir / DATABASE_NAME
    assert database.name == "broker.sqlite3"
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (len(SCHEMA_MIGRATIONS),)
    finally:
        connection.close()


def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    with SqliteSessionStore.open(tmp_path):
        pass
    connection = sqlite3.connect(tmp_path / DATABASE_NAME)
    connection.execute(f"PRAGMA user_version = {len(SCHEMA_MIGRATIONS) + 1}")
    connection.close()
    with pytest.raises(BrokerError, match=r"broker\.sqlite3.*newer"):
        SqliteSessionStore.open(tmp_path)


def test_sqlite_open_failure_names_the_file(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(BrokerError, match=r"broker\.sqlite3"):
        SqliteSessionStore.open(tmp_path)


def test_sqlite_close_twice(tmp_path: Path) -> None:
    store = SqliteSessionStore.open(tmp_path)
    store.close()
    store.close()


# --- SQLite: durability and concurrency -------------------------------------------------------

_CRASHING_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aws_iot_mock.mqtt.message import Message
    from aws_iot_mock.core.session_store import StoredSession
    from aws_iot_mock.state.sessions import SqliteSessionStore

    store = SqliteSessionStore.open(Path(sys.argv[1]))
    store.put_session(StoredSession("dev", 5, 3600))
    ids = store.enqueue_many([("dev", Message("q", b"queued", qos=1, published_at=1.5))])
    store.put_retained(Message("r", b"retained", qos=1, retain=True, published_at=2.5))
    print("committed", ids[0], flush=True)
    time.sleep(60)  # killed long before this ends
    """
)


def test_sqlite_commits_survive_kill_9(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        # Kill before anything else can run in the child: no close(), no checkpoint, no atexit.
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    words = line.split()
    assert words[:1] == ["committed"], process.stderr.read() if process.stderr else line
    row_id = int(words[1])
    if process.stdout is not None:
        process.stdout.close()
    if process.stderr is not None:
        process.stderr.close()
    # The commits are in the WAL, never checkpointed into the main file: this is the WAL path.
    assert (tmp_path / f"{DATABASE_NAME}-wal").stat().st_size > 0

    with SqliteSessionStore.open(tmp_path) as store:
        assert store.load_sessions() == [StoredSession("dev", 5, 3600)]
        assert store.load_queue("dev") == [(row_id, Message("q", b"queued", 1, published_at=1.5))]
        assert store.load_retained() == [
            Message("r", b"retained", qos=1, retain=True, published_at=2.5)
        ]


def test_sqlite_two_stores_see_each_others_commits(tmp_path: Path) -> None:
    with SqliteSessionStore.open(tmp_path) as one, SqliteSessionStore.open(tmp_path) as two:
        one.put_session(_session("dev"))
        assert two.load_sessions() == [_session("dev")]
        (row_id,) = two.enqueue_many([("dev", _message())])
        assert one.load_queue("dev") == [(row_id, _message())]
        one.put_retained(_message("r"))
        assert two.load_retained() == [_message("r")]
        two.remove_queued("dev", row_id)
        assert one.load_queue("dev") == []
        two.delete_session("dev")
        assert one.load_sessions() == []


def test_sqlite_two_stores_writing_at_once(tmp_path: Path) -> None:
    with SqliteSessionStore.open(tmp_path) as one, SqliteSessionStore.open(tmp_path) as two:
        one.put_session(_session("a"))
        one.put_session(_session("b"))
        results: dict[str, list[int]] = {"a": [], "b": []}

        def write(store: SqliteSessionStore, client_id: str) -> None:
            for i in range(100):
                results[client_id] += store.enqueue_many([(client_id, _message(str(i)))] * 3)

        threads = [
            threading.Thread(target=write, args=(one, "a")),
            threading.Thread(target=write, args=(two, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results["a"]) | set(results["b"])) == 600
        for client_id in ("a", "b"):
            assert [row_id for row_id, _ in one.load_queue(client_id)] == results[client_id]
