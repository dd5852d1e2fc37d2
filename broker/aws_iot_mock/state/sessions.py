"""Retained messages and persistent sessions in SQLite, kept across broker restarts.

``SqliteSessionStore`` implements the device core's ``SessionStore``
(``aws_iot_mock.core.session_store``) in ``<state_dir>/broker.sqlite3``, separate from
``registry.sqlite3`` so that registry writes from the CLI never contend for the write lock with
the publish path.

Durability contract: every mutating method has committed when it returns. The database runs in
WAL mode with ``synchronous=NORMAL``, under which a commit survives the death of the process
(including ``kill -9``); only an operating-system crash or power loss can lose the last commits
(https://www.sqlite.org/pragma.html#pragma_synchronous). Each method is one short transaction.
Routing one publish to N persistent sessions is one call to ``enqueue_many``, hence one commit.

Failures: every method raises ``aws_iot_mock.errors.StorageError`` (busy, full, failed) instead
of a ``sqlite3`` error, with nothing of the call kept; a running broker bounds its waits for
another process's lock (``SqliteResource.bound_waits``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_iot_mock.core.session_store import StoredSession, forwarded_properties
from aws_iot_mock.mqtt.codec import SubscriptionOptions
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = ["DATABASE_NAME", "SCHEMA_MIGRATIONS", "SqliteSessionStore"]

DATABASE_NAME = "broker.sqlite3"

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
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM retained_messages ORDER BY topic"
            ).fetchall()
        return [_message(row) for row in rows]

    def put_retained(self, message: Message) -> None:
        """See ``SessionStore.put_retained``."""
        # One statement, so autocommit makes it one transaction. REPLACE is safe here: no
        # foreign keys point at retained_messages.
        with self._writing() as connection:
            connection.execute(
                f"INSERT OR REPLACE INTO retained_messages ({_MESSAGE_COLUMNS}) "
                f"VALUES ({_MESSAGE_PLACEHOLDERS})",
                _message_row(message),
            )

    def delete_retained(self, topic: str) -> None:
        """See ``SessionStore.delete_retained``."""
        with self._writing() as connection:
            connection.execute("DELETE FROM retained_messages WHERE topic = ?", (topic,))

    # --- sessions ------------------------------------------------------------------------------

    def load_sessions(self) -> list[StoredSession]:
        """See ``SessionStore.load_sessions``."""
        with self._reading() as connection:
            # One read transaction so sessions, subscriptions and counts share a snapshot.
            connection.execute("BEGIN")
            try:
                sessions = connection.execute(
                    "SELECT client_id, protocol_level, expiry_interval, disconnected_at "
                    "FROM sessions ORDER BY client_id"
                ).fetchall()
                subscriptions = connection.execute(
                    "SELECT client_id, topic_filter, qos, no_local, retain_as_published,"
                    " retain_handling FROM session_subscriptions ORDER BY client_id, position"
                ).fetchall()
                queued = dict(
                    connection.execute(
                        "SELECT client_id, COUNT(*) FROM queued_messages GROUP BY client_id"
                    ).fetchall()
                )
            finally:
                connection.execute("COMMIT")
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
                queued=int(queued.get(client_id, 0)),
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
        with self._writing() as locked, write_transaction(locked) as connection:
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
        with self._writing() as connection:
            connection.execute(
                "UPDATE sessions SET disconnected_at = ? WHERE client_id = ?", (when, client_id)
            )

    def delete_session(self, client_id: str) -> None:
        """See ``SessionStore.delete_session``."""
        # The foreign keys' ON DELETE CASCADE removes subscriptions and queue in the same
        # statement, hence the same transaction.
        with self._writing() as connection:
            connection.execute("DELETE FROM sessions WHERE client_id = ?", (client_id,))

    def purge_expired_sessions(self, now: float) -> list[str]:
        """See ``SessionStore.purge_expired_sessions``."""
        # The WHERE expression matches the sessions_by_expiry index; NULL disconnected_at makes
        # it NULL, which is never < now, so connected sessions stay.
        with self._writing() as locked, write_transaction(locked) as connection:
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
        with self._writing() as locked:
            try:
                if len(rows) == 1:
                    # The common case (one persistent subscriber): a single INSERT in autocommit
                    # mode is its own transaction, and skipping BEGIN/COMMIT saves two round
                    # trips through the SQLite API.
                    ids.append(_inserted_id(locked.execute(_ENQUEUE, rows[0])))
                else:
                    with write_transaction(locked) as connection:
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
        with self._writing() as connection:
            connection.execute(
                "DELETE FROM queued_messages WHERE id = ? AND client_id = ?", (row_id, client_id)
            )

    def load_queue(
        self, client_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, Message]]:
        """See ``SessionStore.load_queue``."""
        with self._reading() as connection:
            # The (client_id, id) index serves the range and the order; LIMIT -1 is no limit.
            rows = connection.execute(
                f"SELECT id, {_MESSAGE_COLUMNS} FROM queued_messages "
                "WHERE client_id = ? AND id > ? ORDER BY id LIMIT ?",
                (client_id, after, -1 if limit is None else limit),
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
        properties=forwarded_properties(
            payload_format_indicator, content_type, response_topic, correlation_data, pairs
        ),
        expires_at=expires_at,
        sender=sender,
        published_at=published_at,
    )
