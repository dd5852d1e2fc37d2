"""Retained messages and persistent sessions, kept across broker restarts.

AWS IoT Core keeps retained messages and, for persistent sessions, the subscriptions and the
unacknowledged QoS 1 messages of a client, including QoS 1 messages published while it is
offline ("Using persistent sessions",
https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions).
``SessionStore`` is what the broker core needs from a place to keep them; there are two
implementations:

- ``MemorySessionStore``: dicts, for pure tests and ``state: memory`` (nothing survives a restart).
- ``SqliteSessionStore``: ``<state_dir>/broker.sqlite3``, separate from ``registry.sqlite3`` so
  that registry writes from the CLI never contend for the write lock with the publish path.

Durability contract: every mutating method of ``SqliteSessionStore`` has committed when it
returns. The database runs in WAL mode with ``synchronous=NORMAL``, under which a commit survives
the death of the process (including ``kill -9``); only an operating-system crash or power loss
can lose the last commits (https://www.sqlite.org/pragma.html#pragma_synchronous). So the core
must call ``put_retained`` / ``enqueue_many`` *before* it writes the PUBACK for a QoS 1 message
it accepts as retained or for a persistent session.

Each method is one short transaction, called synchronously from the event loop. Routing one
publish to N persistent sessions is one call to ``enqueue_many``, hence one commit.

The stores keep what they are given: they do not interpret payloads, expire messages, or turn an
empty retained payload into a deletion. Those are the core's decisions (MQTT 3.1.1 3.3.1.3,
MQTT 5 3.3.2.3.3); the store only records the outcome.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties, SubscriptionOptions
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = [
    "DATABASE_NAME",
    "SCHEMA_MIGRATIONS",
    "MemorySessionStore",
    "SessionStore",
    "SqliteSessionStore",
    "StoredSession",
    "stored_form",
]

DATABASE_NAME = "broker.sqlite3"

# How long a connection waits for another connection's write lock before failing
# (https://www.sqlite.org/pragma.html#pragma_busy_timeout). Only a second process on the same
# state directory (or a second store object) can hold it, and only for one short transaction.

# Step i upgrades user_version i to i + 1, in one transaction. Append only: a database that has
# run a step never runs it again, so editing a published step changes nothing for existing files.
#
# Layout decisions:
# - A message is stored as columns, not as a pickled blob: topic, payload (BLOB), qos, retain,
#   expires_at, sender, published_at and the five forwardable MQTT 5 properties. User properties
#   are JSON ``[[key, value], ...]`` (NULL when there are none) because they are an ordered list
#   with repeats allowed (MQTT 5 3.3.2.3.7), which a JSON array keeps and a map would not.
# - Subscriptions are rows of ``session_subscriptions`` (one per filter, its options as four
#   small integers), ordered by ``position`` so a session reloads exactly as it was stored.
# - The queue holds one row per (client, message): a publish routed to N offline sessions writes
#   its payload N times. A shared message table with reference counts would write it once, but
#   every PUBACK would then need a second statement and a garbage-collection rule; with AWS IoT's
#   128 KB payload limit and typical fan-outs the simple layout wins. Revisit if large fan-outs
#   to persistent sessions become common.
# - Queue row ids are AUTOINCREMENT so they are never reused: an id the core still holds can
#   never come to mean a different message, and ids sort in enqueue order.
# - Foreign keys (enforced per connection, see ``_configure``) make enqueueing for a client with
#   no stored session fail, and delete a session's subscriptions and queue with it.
SCHEMA_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: retained messages, sessions, their subscriptions and queues.
    """
    CREATE TABLE retained_messages (
        topic                    TEXT PRIMARY KEY NOT NULL,
        payload                  BLOB NOT NULL,
        qos                      INTEGER NOT NULL,
        retain                   INTEGER NOT NULL,
        expires_at               REAL,
        sender                   TEXT,
        published_at             REAL NOT NULL,
        payload_format_indicator INTEGER,
        content_type             TEXT,
        response_topic           TEXT,
        correlation_data         BLOB,
        user_properties          TEXT
    ) WITHOUT ROWID;
    CREATE TABLE sessions (
        client_id       TEXT PRIMARY KEY NOT NULL,
        protocol_level  INTEGER NOT NULL,
        expiry_interval INTEGER NOT NULL,
        disconnected_at REAL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_expiry ON sessions (disconnected_at + expiry_interval);
    CREATE TABLE session_subscriptions (
        client_id           TEXT NOT NULL REFERENCES sessions (client_id) ON DELETE CASCADE,
        position            INTEGER NOT NULL,
        topic_filter        TEXT NOT NULL,
        qos                 INTEGER NOT NULL,
        no_local            INTEGER NOT NULL,
        retain_as_published INTEGER NOT NULL,
        retain_handling     INTEGER NOT NULL,
        PRIMARY KEY (client_id, position)
    ) WITHOUT ROWID;
    CREATE TABLE queued_messages (
        id                       INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id                TEXT NOT NULL
                                 REFERENCES sessions (client_id) ON DELETE CASCADE,
        topic                    TEXT NOT NULL,
        payload                  BLOB NOT NULL,
        qos                      INTEGER NOT NULL,
        retain                   INTEGER NOT NULL,
        expires_at               REAL,
        sender                   TEXT,
        published_at             REAL NOT NULL,
        payload_format_indicator INTEGER,
        content_type             TEXT,
        response_topic           TEXT,
        correlation_data         BLOB,
        user_properties          TEXT
    );
    CREATE INDEX queued_messages_by_client ON queued_messages (client_id, id);
    """,
)

# The message columns shared by retained_messages and queued_messages, in ``_message_row`` order.
_MESSAGE_COLUMNS = (
    "topic, payload, qos, retain, expires_at, sender, published_at, payload_format_indicator,"
    " content_type, response_topic, correlation_data, user_properties"
)
_MESSAGE_PLACEHOLDERS = ", ".join("?" * 12)
_ENQUEUE = (
    f"INSERT INTO queued_messages (client_id, {_MESSAGE_COLUMNS}) "
    f"VALUES (?, {_MESSAGE_PLACEHOLDERS})"
)


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A persistent session as stored: everything but its queue.

    Attributes:
        client_id: the MQTT client ID.
        protocol_level: 4 (MQTT 3.1.1) or 5 (MQTT 5).
        expiry_interval: the granted session expiry interval, in seconds: how long the session
            outlives its connection.
        subscriptions: ``(topic_filter, options)`` pairs in the order the core keeps them; filters
            exactly as the client gave them (including ``$share/<group>/...``).
        disconnected_at: wall-clock time (epoch seconds) of the last disconnect, or None while
            the client is connected.
    """

    client_id: str
    protocol_level: int
    expiry_interval: int
    subscriptions: tuple[tuple[str, SubscriptionOptions], ...] = ()
    disconnected_at: float | None = None


class SessionStore(Protocol):
    """Where the broker core keeps retained messages and persistent sessions.

    Every mutating call is atomic, and durable when it returns to the degree the implementation
    offers (see the module docstring). Methods are synchronous and short; the core calls them
    from the event loop. Messages come back equal to ``stored_form(message)``: only the
    forwardable MQTT 5 properties are kept.
    """

    def load_retained(self) -> list[Message]:
        """Return every retained message, ordered by topic, expired ones included.

        Returns:
            The messages; dropping expired ones (``expires_at``) is the caller's job.
        """
        ...

    def put_retained(self, message: Message) -> None:
        """Make ``message`` the retained message of ``message.topic``, replacing any previous one.

        Args:
            message: the message, stored as given (an empty payload is stored too; deciding that
                it means "delete" is the caller's job).
        """
        ...

    def delete_retained(self, topic: str) -> None:
        """Remove the retained message of ``topic``; nothing happens if there is none.

        Args:
            topic: the topic name.
        """
        ...

    def load_sessions(self) -> list[StoredSession]:
        """Return every stored session, ordered by client ID.

        Returns:
            The sessions, with their subscriptions in stored order.
        """
        ...

    def put_session(self, session: StoredSession) -> None:
        """Insert a session, or replace the one with its client ID.

        Replacing overwrites the protocol level, expiry interval, subscriptions and
        ``disconnected_at`` but keeps the queued messages; to start clean, ``delete_session``
        first.

        Args:
            session: the session.
        """
        ...

    def set_disconnected_at(self, client_id: str, when: float | None) -> None:
        """Record a disconnect time (or None on reconnect); nothing happens for unknown IDs.

        Args:
            client_id: the session's client ID.
            when: epoch seconds of the disconnect, or None while connected.
        """
        ...

    def delete_session(self, client_id: str) -> None:
        """Delete a session with its subscriptions and queued messages; unknown IDs are ignored.

        Args:
            client_id: the session's client ID.
        """
        ...

    def enqueue_many(self, entries: Sequence[tuple[str, Message]]) -> list[int]:
        """Append messages to sessions' queues, all or nothing.

        Used both for messages to offline sessions and for in-flight QoS 1 messages to online
        persistent sessions (removed again on PUBACK).

        Args:
            entries: ``(client_id, message)`` pairs; a client ID may appear more than once.

        Returns:
            The new rows' ids, one per entry, in entry order. Ids are unique within the store,
            never reused, and increase in enqueue order.

        Raises:
            KeyError: some client ID has no stored session; nothing was enqueued.
        """
        ...

    def remove_queued(self, client_id: str, row_id: int) -> None:
        """Remove one queued message (after its PUBACK, or when it expired).

        Nothing happens if the row does not exist or belongs to another client.

        Args:
            client_id: the session's client ID.
            row_id: the id ``enqueue_many`` returned for it.
        """
        ...

    def load_queue(self, client_id: str) -> list[tuple[int, Message]]:
        """Return a session's queued messages in enqueue order.

        Args:
            client_id: the session's client ID.

        Returns:
            ``(row_id, message)`` pairs; empty for unknown IDs.
        """
        ...

    def purge_expired_sessions(self, now: float) -> list[str]:
        """Delete the sessions whose expiry has passed, with their subscriptions and queues.

        A session expires when ``disconnected_at + expiry_interval < now``; connected sessions
        (``disconnected_at`` None) never do. MQTT 5's "never expires" (0xFFFFFFFF) needs no
        special case: it is 136 years.

        Args:
            now: the current wall-clock time, epoch seconds.

        Returns:
            The deleted sessions' client IDs, sorted.
        """
        ...

    def close(self) -> None:
        """Release the store's resources; closing twice is harmless."""
        ...


# The Properties fields a stored message keeps: those the broker forwards to subscribers
# (MQTT 5 3.3.2.3). The others are per delivery (topic alias, subscription identifiers), carried
# elsewhere (message expiry interval -> Message.expires_at) or never in a PUBLISH.
_FORWARDED_PROPERTIES = frozenset(
    {
        "payload_format_indicator",
        "content_type",
        "response_topic",
        "correlation_data",
        "user_properties",
    }
)
_DROPPED_PROPERTY_DEFAULTS: tuple[tuple[str, object], ...] = tuple(
    (f.name, f.default) for f in fields(Properties) if f.name not in _FORWARDED_PROPERTIES
)


def stored_form(message: Message) -> Message:
    """Return ``message`` as a store gives it back: only the forwardable properties kept.

    Those are payload format indicator, content type, response topic, correlation data and user
    properties. Returns ``message`` itself when it has no other property set.

    Args:
        message: any message.

    Returns:
        An equal message, or a copy with the non-forwardable properties reset to defaults.
    """
    properties = message.properties
    # Field-by-field against the defaults rather than building a trimmed copy and comparing:
    # this runs per enqueued message in the memory store, and the common case drops nothing.
    if properties is EMPTY_PROPERTIES or all(
        getattr(properties, name) == default for name, default in _DROPPED_PROPERTY_DEFAULTS
    ):
        return message
    kept = _properties(
        properties.payload_format_indicator,
        properties.content_type,
        properties.response_topic,
        properties.correlation_data,
        properties.user_properties,
    )
    return replace(message, properties=kept)


def _properties(
    payload_format_indicator: int | None,
    content_type: str | None,
    response_topic: str | None,
    correlation_data: bytes | None,
    user_properties: tuple[tuple[str, str], ...],
) -> Properties:
    """Build Properties from the forwardable fields; the shared EMPTY_PROPERTIES if all unset."""
    if (
        payload_format_indicator is None
        and content_type is None
        and response_topic is None
        and correlation_data is None
        and not user_properties
    ):
        return EMPTY_PROPERTIES
    return Properties(
        payload_format_indicator=payload_format_indicator,
        content_type=content_type,
        response_topic=response_topic,
        correlation_data=correlation_data,
        user_properties=user_properties,
    )


class MemorySessionStore:
    """A ``SessionStore`` in dicts: same contract as the SQLite store, nothing survives a restart.

    Not thread-safe; meant for the event loop and for tests.
    """

    def __init__(self) -> None:
        """Create an empty store."""
        self._retained: dict[str, Message] = {}
        self._sessions: dict[str, StoredSession] = {}
        # client ID -> {row id: message}; dicts keep insertion order, which is enqueue order.
        self._queues: dict[str, dict[int, Message]] = {}
        self._ids = itertools.count(1)

    def load_retained(self) -> list[Message]:
        """See ``SessionStore.load_retained``."""
        return [self._retained[topic] for topic in sorted(self._retained)]

    def put_retained(self, message: Message) -> None:
        """See ``SessionStore.put_retained``."""
        self._retained[message.topic] = stored_form(message)

    def delete_retained(self, topic: str) -> None:
        """See ``SessionStore.delete_retained``."""
        self._retained.pop(topic, None)

    def load_sessions(self) -> list[StoredSession]:
        """See ``SessionStore.load_sessions``."""
        return [self._sessions[client_id] for client_id in sorted(self._sessions)]

    def put_session(self, session: StoredSession) -> None:
        """See ``SessionStore.put_session``."""
        # StoredSession is frozen, but a caller could pass a list as subscriptions; normalize so
        # both stores return tuples.
        self._sessions[session.client_id] = replace(
            session, subscriptions=tuple(session.subscriptions)
        )
        self._queues.setdefault(session.client_id, {})

    def set_disconnected_at(self, client_id: str, when: float | None) -> None:
        """See ``SessionStore.set_disconnected_at``."""
        session = self._sessions.get(client_id)
        if session is not None:
            self._sessions[client_id] = replace(session, disconnected_at=when)

    def delete_session(self, client_id: str) -> None:
        """See ``SessionStore.delete_session``."""
        self._sessions.pop(client_id, None)
        self._queues.pop(client_id, None)

    def enqueue_many(self, entries: Sequence[tuple[str, Message]]) -> list[int]:
        """See ``SessionStore.enqueue_many``."""
        # Check every client first so a bad entry leaves the queues untouched (all or nothing).
        for client_id, _ in entries:
            if client_id not in self._sessions:
                raise KeyError(client_id)
        ids: list[int] = []
        for client_id, message in entries:
            row_id = next(self._ids)
            self._queues[client_id][row_id] = stored_form(message)
            ids.append(row_id)
        return ids

    def remove_queued(self, client_id: str, row_id: int) -> None:
        """See ``SessionStore.remove_queued``."""
        queue = self._queues.get(client_id)
        if queue is not None:
            queue.pop(row_id, None)

    def load_queue(self, client_id: str) -> list[tuple[int, Message]]:
        """See ``SessionStore.load_queue``."""
        return list(self._queues.get(client_id, {}).items())

    def purge_expired_sessions(self, now: float) -> list[str]:
        """See ``SessionStore.purge_expired_sessions``."""
        expired = sorted(
            client_id
            for client_id, session in self._sessions.items()
            if session.disconnected_at is not None
            and session.disconnected_at + session.expiry_interval < now
        )
        for client_id in expired:
            self.delete_session(client_id)
        return expired

    def close(self) -> None:
        """Do nothing: there is nothing to release (the data stays readable)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SqliteSessionStore(SqliteResource):
    """A ``SessionStore`` in ``<state_dir>/broker.sqlite3``.

    Each instance owns one SQLite connection, guarded by a lock so that threads may share the
    instance. Separate instances (or processes) on the same file see each other's committed
    writes: every method is its own transaction.
    """

    @classmethod
    def open(cls, state_dir: Path) -> SqliteSessionStore:
        """Open (creating if needed) ``<state_dir>/broker.sqlite3`` and migrate its schema.

        ``state_dir`` is created with mode 0700 if it does not exist.

        Args:
            state_dir: the state directory.

        Returns:
            The store; close it with ``close()`` or use it as a context manager.

        Raises:
            BrokerError: the database cannot be opened, or was written by a newer version.
            OSError: the directory cannot be created.
        """
        return cls(
            open_database(
                state_dir,
                DATABASE_NAME,
                what="the broker state database",
                setup=lambda connection, database: apply_migrations(
                    connection, database, SCHEMA_MIGRATIONS, what="the broker state database"
                ),
            )
        )

    # --- retained messages ---------------------------------------------------------------------

    def load_retained(self) -> list[Message]:
        """See ``SessionStore.load_retained``."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM retained_messages ORDER BY topic"
            ).fetchall()
        return [_message(row) for row in rows]

    def put_retained(self, message: Message) -> None:
        """See ``SessionStore.put_retained``."""
        # One statement, so autocommit makes it one transaction. REPLACE is safe here: no
        # foreign keys point at retained_messages.
        with self._lock:
            self._connection.execute(
                f"INSERT OR REPLACE INTO retained_messages ({_MESSAGE_COLUMNS}) "
                f"VALUES ({_MESSAGE_PLACEHOLDERS})",
                _message_row(message),
            )

    def delete_retained(self, topic: str) -> None:
        """See ``SessionStore.delete_retained``."""
        with self._lock:
            self._connection.execute("DELETE FROM retained_messages WHERE topic = ?", (topic,))

    # --- sessions ------------------------------------------------------------------------------

    def load_sessions(self) -> list[StoredSession]:
        """See ``SessionStore.load_sessions``."""
        with self._lock:
            # One read transaction so sessions and subscriptions come from the same snapshot.
            self._connection.execute("BEGIN")
            try:
                sessions = self._connection.execute(
                    "SELECT client_id, protocol_level, expiry_interval, disconnected_at "
                    "FROM sessions ORDER BY client_id"
                ).fetchall()
                subscriptions = self._connection.execute(
                    "SELECT client_id, topic_filter, qos, no_local, retain_as_published,"
                    " retain_handling FROM session_subscriptions ORDER BY client_id, position"
                ).fetchall()
            finally:
                self._connection.execute("COMMIT")
        by_client: dict[str, list[tuple[str, SubscriptionOptions]]] = {}
        for client_id, topic_filter, qos, no_local, as_published, handling in subscriptions:
            by_client.setdefault(client_id, []).append(
                (
                    topic_filter,
                    SubscriptionOptions(
                        qos=int(qos),
                        no_local=bool(no_local),
                        retain_as_published=bool(as_published),
                        retain_handling=int(handling),
                    ),
                )
            )
        return [
            StoredSession(
                client_id=client_id,
                protocol_level=int(protocol_level),
                expiry_interval=int(expiry_interval),
                subscriptions=tuple(by_client.get(client_id, ())),
                disconnected_at=disconnected_at,
            )
            for client_id, protocol_level, expiry_interval, disconnected_at in sessions
        ]

    def put_session(self, session: StoredSession) -> None:
        """See ``SessionStore.put_session``."""
        subscription_rows = [
            (
                session.client_id,
                position,
                topic_filter,
                options.qos,
                int(options.no_local),
                int(options.retain_as_published),
                options.retain_handling,
            )
            for position, (topic_filter, options) in enumerate(session.subscriptions)
        ]
        with self._lock, write_transaction(self._connection) as connection:
            # An upsert, not INSERT OR REPLACE: REPLACE deletes the old row first, and the
            # ON DELETE CASCADE would take the session's queue with it.
            connection.execute(
                "INSERT INTO sessions (client_id, protocol_level, expiry_interval,"
                " disconnected_at) VALUES (?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET"
                " protocol_level = excluded.protocol_level,"
                " expiry_interval = excluded.expiry_interval,"
                " disconnected_at = excluded.disconnected_at",
                (
                    session.client_id,
                    session.protocol_level,
                    session.expiry_interval,
                    session.disconnected_at,
                ),
            )
            # Rewriting all subscriptions is simplest and cheap: AWS IoT allows 50
            # subscriptions per connection.
            connection.execute(
                "DELETE FROM session_subscriptions WHERE client_id = ?", (session.client_id,)
            )
            connection.executemany(
                "INSERT INTO session_subscriptions (client_id, position, topic_filter, qos,"
                " no_local, retain_as_published, retain_handling) VALUES (?, ?, ?, ?, ?, ?, ?)",
                subscription_rows,
            )

    def set_disconnected_at(self, client_id: str, when: float | None) -> None:
        """See ``SessionStore.set_disconnected_at``."""
        with self._lock:
            self._connection.execute(
                "UPDATE sessions SET disconnected_at = ? WHERE client_id = ?", (when, client_id)
            )

    def delete_session(self, client_id: str) -> None:
        """See ``SessionStore.delete_session``."""
        # The foreign keys' ON DELETE CASCADE removes subscriptions and queue in the same
        # statement, hence the same transaction.
        with self._lock:
            self._connection.execute("DELETE FROM sessions WHERE client_id = ?", (client_id,))

    def purge_expired_sessions(self, now: float) -> list[str]:
        """See ``SessionStore.purge_expired_sessions``."""
        # The WHERE expression matches the sessions_by_expiry index; NULL disconnected_at makes
        # it NULL, which is never < now, so connected sessions stay.
        with self._lock, write_transaction(self._connection) as connection:
            rows = connection.execute(
                "DELETE FROM sessions WHERE disconnected_at + expiry_interval < ? "
                "RETURNING client_id",
                (now,),
            ).fetchall()
        return sorted(client_id for (client_id,) in rows)

    # --- queues --------------------------------------------------------------------------------

    def enqueue_many(self, entries: Sequence[tuple[str, Message]]) -> list[int]:
        """See ``SessionStore.enqueue_many``."""
        if not entries:
            return []
        rows = [(client_id, *_message_row(message)) for client_id, message in entries]
        ids: list[int] = []
        with self._lock:
            try:
                if len(rows) == 1:
                    # The common case (one persistent subscriber): a single INSERT in autocommit
                    # mode is its own transaction, and skipping BEGIN/COMMIT saves two round
                    # trips through the SQLite API.
                    ids.append(_inserted_id(self._connection.execute(_ENQUEUE, rows[0])))
                else:
                    with write_transaction(self._connection) as connection:
                        # One execute per row rather than executemany: each row's id is needed,
                        # and lastrowid is only set by execute().
                        ids.extend(_inserted_id(connection.execute(_ENQUEUE, row)) for row in rows)
            except sqlite3.IntegrityError as exc:
                # The only constraint an insert can break is the foreign key to sessions; the
                # transaction was rolled back, so nothing was enqueued.
                missing = self._first_unknown_client(entries)
                raise KeyError(missing if missing is not None else str(exc)) from exc
        return ids

    def remove_queued(self, client_id: str, row_id: int) -> None:
        """See ``SessionStore.remove_queued``."""
        with self._lock:
            self._connection.execute(
                "DELETE FROM queued_messages WHERE id = ? AND client_id = ?", (row_id, client_id)
            )

    def load_queue(self, client_id: str) -> list[tuple[int, Message]]:
        """See ``SessionStore.load_queue``."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT id, {_MESSAGE_COLUMNS} FROM queued_messages "
                "WHERE client_id = ? ORDER BY id",
                (client_id,),
            ).fetchall()
        return [(int(row[0]), _message(row[1:])) for row in rows]

    def _first_unknown_client(self, entries: Sequence[tuple[str, Message]]) -> str | None:
        """Name the first entry's client ID that has no session (for the KeyError); lock held."""
        for client_id, _ in entries:
            row = self._connection.execute(
                "SELECT 1 FROM sessions WHERE client_id = ?", (client_id,)
            ).fetchone()
            if row is None:
                return client_id
        return None


def _inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT just made (always set after a successful INSERT)."""
    row_id = cursor.lastrowid
    if row_id is None:  # pragma: no cover - sqlite3 sets it for every INSERT into a rowid table
        raise RuntimeError("INSERT reported no rowid")
    return row_id


def _message_row(message: Message) -> tuple[Any, ...]:
    """The ``_MESSAGE_COLUMNS`` values of a message (only forwardable properties kept)."""
    properties = message.properties
    user_properties = (
        json.dumps([list(pair) for pair in properties.user_properties])
        if properties.user_properties
        else None
    )
    return (
        message.topic,
        bytes(message.payload),
        message.qos,
        int(message.retain),
        message.expires_at,
        message.sender,
        message.published_at,
        properties.payload_format_indicator,
        properties.content_type,
        properties.response_topic,
        properties.correlation_data,
        user_properties,
    )


def _message(row: Sequence[Any]) -> Message:
    """Build a message from a row selected with ``_MESSAGE_COLUMNS``."""
    (
        topic,
        payload,
        qos,
        retain,
        expires_at,
        sender,
        published_at,
        payload_format_indicator,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
    ) = row
    pairs: tuple[tuple[str, str], ...] = (
        tuple((str(key), str(value)) for key, value in json.loads(user_properties))
        if user_properties is not None
        else ()
    )
    return Message(
        topic=topic,
        payload=payload,
        qos=int(qos),
        retain=bool(retain),
        properties=_properties(
            payload_format_indicator, content_type, response_topic, correlation_data, pairs
        ),
        expires_at=expires_at,
        sender=sender,
        published_at=published_at,
    )
