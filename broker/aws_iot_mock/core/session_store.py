"""What the device core needs from a place to keep retained messages and persistent sessions.

AWS IoT Core keeps retained messages and, for persistent sessions, the subscriptions and the
unacknowledged QoS 1 messages of a client, including QoS 1 messages published while it is
offline ("Using persistent sessions",
https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions).
``SessionStore`` is that interface; it belongs to the core, and the stores implement it:

- ``MemorySessionStore`` (here): dicts, for pure tests (nothing survives a restart).
- ``aws_iot_mock.state.sessions.SqliteSessionStore``: ``<state_dir>/broker.sqlite3``.

The stores keep what they are given: they do not interpret payloads, expire messages, or turn an
empty retained payload into a deletion. Those are the core's decisions (MQTT 3.1.1 3.3.1.3,
MQTT 5 3.3.2.3.3); the store only records the outcome. The core calls ``put_retained`` /
``enqueue_many`` *before* it acknowledges a QoS 1 message it accepts as retained or for a
persistent session, so a store whose methods have committed when they return loses nothing
that was acknowledged.

A store that cannot do what it is asked (another process holds the database's lock, the disk
is full) raises ``aws_iot_mock.errors.StorageError`` and keeps nothing of that call; the core
then refuses what it could not keep.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from types import TracebackType
from typing import Protocol, Self

from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties, SubscriptionOptions
from aws_iot_mock.mqtt.message import Message

__all__ = [
    "MemorySessionStore",
    "SessionStore",
    "StoredSession",
    "forwarded_properties",
    "stored_form",
]


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
        queued: how many messages its queue holds (set by ``load_sessions``; ignored by
            ``put_session``).
    """

    client_id: str
    protocol_level: int
    expiry_interval: int
    subscriptions: tuple[tuple[str, SubscriptionOptions], ...] = ()
    disconnected_at: float | None = None
    queued: int = field(default=0, compare=False)


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
            The sessions, with their subscriptions in stored order and their ``queued`` count.
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

    def load_queue(
        self, client_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, Message]]:
        """Return a session's queued messages in enqueue order, a page at a time.

        Args:
            client_id: the session's client ID.
            after: only rows whose id is greater (the last id of the previous page).
            limit: at most this many (None: all).

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
    kept = forwarded_properties(
        properties.payload_format_indicator,
        properties.content_type,
        properties.response_topic,
        properties.correlation_data,
        properties.user_properties,
    )
    return replace(message, properties=kept)


def forwarded_properties(
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
        return [
            replace(self._sessions[client_id], queued=len(self._queues.get(client_id, ())))
            for client_id in sorted(self._sessions)
        ]

    def put_session(self, session: StoredSession) -> None:
        """See ``SessionStore.put_session``."""
        # StoredSession is frozen, but a caller could pass a list as subscriptions; normalize so
        # both stores return tuples.
        self._sessions[session.client_id] = replace(
            session, subscriptions=tuple(session.subscriptions), queued=0
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

    def load_queue(
        self, client_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[tuple[int, Message]]:
        """See ``SessionStore.load_queue``."""
        rows = (row for row in self._queues.get(client_id, {}).items() if row[0] > after)
        return list(itertools.islice(rows, limit))

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
