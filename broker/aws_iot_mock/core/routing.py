"""Sessions and routing with AWS IoT Core's semantics. Pure: no event loop, no sockets.

Every rule about *who receives what* lives here: the subscription index (with ``$share`` groups),
retained messages, persistent sessions, per-session in-flight windows and queues, wills, session
expiry, and what happens to messages for a client that stops reading. The MQTT connection
(``aws_iot_mock.core.mqtt_connection``) calls into ``Router``; the router answers through each
connected session's ``Outlet``.

Flow control: an outlet that cannot take more bytes (its client stopped reading) says so with
``can_send``. A QoS 0 message for it is dropped and counted; a QoS 1 message waits in the
session's queue, as it would for an offline persistent session. Each session's queue holds at
most ``session_queue_max`` messages; past that, new messages for it are dropped and counted.
AWS documents no per-session queue size, only that queued QoS 1 messages are kept "for up to an
hour" and that a stored-message replay runs at 10 messages per second, so the cap is a bounded,
configurable choice of this project. Drops are reported once per episode through ``DropReport``.

Storage: a stored session's queue is streamed from the store a page at a time (``QUEUE_PAGE``)
as the client takes it, never loaded whole. When the store fails (``StorageError``: another
process holds the database's lock, the disk is full), nothing unsaved is acknowledged:
``publish`` raises and keeps nothing, so the caller refuses the message. Session bookkeeping
(connect, subscriptions, disconnect times, acknowledged rows) stays right in memory and is
written again on a later ``tick``. The first failure of an episode (it ends when a tick has
written everything) is reported through ``storage_failed``.

AWS facts applied here (AWS IoT "MQTT" page, https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html):
delivered QoS is min(publish QoS, granted QoS); only QoS 1 messages are kept for offline persistent
sessions; retained messages are delivered on SUBSCRIBE only to filters without wildcards, with
RETAIN=1, and live deliveries carry RETAIN=0; shared subscribers get no retained messages; at most
100 unacknowledged outbound QoS 1 messages per connection; a will is sent on every disconnect
except a clean client DISCONNECT.
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from aws_iot_mock.aws.limits import SUBSCRIPTIONS_PER_CONNECTION
from aws_iot_mock.core.session_store import SessionStore, StoredSession
from aws_iot_mock.errors import StorageError
from aws_iot_mock.mqtt.codec import (
    EMPTY_PROPERTIES,
    Properties,
    SubscriptionOptions,
    publish_bytes,
    with_packet_id,
)
from aws_iot_mock.mqtt.message import Message, new_message
from aws_iot_mock.mqtt.topics import SubscriptionIndex, is_event_topic, is_wildcard, parse_shared

__all__ = [
    "DEFAULT_SESSION_QUEUE_MAX",
    "QUEUE_PAGE",
    "DropReason",
    "DropReport",
    "Outlet",
    "PlainRoute",
    "Router",
    "Session",
    "StorageFailed",
    "SubscribeResult",
]

# MQTT 5 reason codes used in SUBACK / UNSUBACK (MQTT 5.0 sections 3.9.3, 3.11.3).
SUBACK_QUOTA_EXCEEDED = 0x97
UNSUBACK_NO_SUBSCRIPTION = 0x11
V311_SUBACK_FAILURE = 0x80

# Messages a session's queue holds at most (QoS 1 waiting for the in-flight window, a reading
# client, or a reconnect); see the module docstring. ``limits.session_queue_max`` in the config.
DEFAULT_SESSION_QUEUE_MAX = 10_000
# Stored queue rows read per page when a session's queue streams from the store.
QUEUE_PAGE = 256
# Acknowledged rows whose deletion failed, kept to retry; past this the oldest are forgotten (a
# forgotten row is delivered once more after a restart: QoS 1 is at least once).
_UNREMOVED_MAX = 100_000

# What one publish encoded: (level, QoS, RETAIN) -> (the PUBLISH, its packet identifier).
_EncodedCache = dict[tuple[int, int, bool], tuple[bytes, int | None]]

# Bounds of the router's memory of each topic's targets (_targets): messages published to a
# topic again and again skip the per-subscription work. A publisher cycling through many topics
# starts it over.
_PLANS = 4096
_PLAN_ENTRIES = 65_536

_RETRIED = "written once a second until the database accepts it"
# Told (StorageError, what was not written) on the first storage failure of an episode.
StorageFailed = Callable[[StorageError, str], None]


class DropReason(enum.Enum):
    """Why the router dropped a message for one session (values are log reason names)."""

    # A QoS 0 message for a client that is not reading (its outbound buffer is full).
    CLIENT_NOT_READING = "OUTBOUND_BUFFER_FULL"
    # Any message for a session whose queue is at ``session_queue_max``.
    SESSION_QUEUE_FULL = "SESSION_QUEUE_FULL"


class DropReport(Protocol):
    """Told when a session starts and stops dropping messages (one log line each, not per drop)."""

    def drops_started(self, session: Session, reason: DropReason) -> None:
        """The first message of an episode was dropped for ``session``."""
        ...

    def drops_ended(self, session: Session, reason: DropReason, count: int) -> None:
        """The episode is over (the client reads again, the queue has room): ``count`` dropped."""
        ...


class Outlet(Protocol):
    """The sending side of a connected session, implemented by the MQTT connection."""

    @property
    def protocol_level(self) -> int:
        """4 (MQTT 3.1.1) or 5."""
        ...

    @property
    def receive_maximum(self) -> int:
        """The client's Receive Maximum (MQTT 5), capped by AWS's 100 in-flight QoS 1."""
        ...

    @property
    def maximum_packet_size(self) -> int | None:
        """The largest packet the client accepts (MQTT 5), or None for no limit."""
        ...

    @property
    def can_send(self) -> bool:
        """False while the client is not reading: its outbound buffer is full."""
        ...

    def send(self, data: bytes) -> None:
        """Queue encoded packet bytes for the client."""
        ...

    def taken_over(self) -> None:
        """Another connection took this client ID: disconnect (MQTT 5: reason 0x8E)."""
        ...


@dataclass(slots=True)
class _Pending:
    """A message on its way to one session: queued, or in flight under ``packet_id``."""

    message: Message
    qos: int
    retain: bool
    row_id: int | None = None
    dup: bool = False
    # Called when the client acknowledges it (SendDirectMessage's delivery confirmation).
    on_acknowledged: Callable[[], None] | None = None


class PlainRoute(Protocol):
    """``Router.publish`` for a run of messages ``Router.plain_route`` planned."""

    def __call__(self, message: Message, on_stored: Callable[[], None] | None = None) -> int:
        """Route ``message``; the number of sessions it was delivered or queued to."""
        ...


@dataclass(slots=True)
class _PendingWill:
    due: float
    message: Message


@dataclass(slots=True)
class Session:
    """One client ID's session state.

    Attributes:
        client_id: the MQTT client identifier.
        protocol_level: 4 or 5, of the connection that created or last resumed it.
        expiry_interval: seconds the session outlives its connection; 0 = ends with it.
        subscriptions: topic filter -> granted options.
        outlet: the live connection, or None while disconnected.
        inflight: packet id -> message sent and awaiting PUBACK.
        queue: messages waiting for the connection or for room in the in-flight window (made
            at the first such message and dropped once empty: most sessions never queue, and
            an empty deque is 600 bytes per connection).
        disconnected_at: wall-clock time of the last disconnect (None while connected).
        disconnect_reason: AWS's ``disconnectReason`` of the last disconnect (GetConnection).
        will: the live connection's will message (sent when it ends uncleanly), or None.
        will_delay: its MQTT 5 Will Delay Interval, seconds.
        receive_check: AWS's ``iot:Receive`` check for a topic, asked before each delivery.
        on_delivery: called after each message sent (the shell logs ``Publish-Out``).
        backlog_after: while part of the queue is only in the store: the id of the last stored
            row already in ``queue`` or delivered (rows after it stream in, a page at a time);
            None when ``queue`` holds everything.
        backlog: how many stored rows come after ``backlog_after``.
    """

    client_id: str
    protocol_level: int
    expiry_interval: int
    subscriptions: dict[str, SubscriptionOptions] = field(default_factory=dict)
    outlet: Outlet | None = None
    inflight: dict[int, _Pending] = field(default_factory=dict)
    _queue: deque[_Pending] | None = field(default=None, init=False, repr=False)
    disconnected_at: float | None = None
    disconnect_reason: str | None = None
    will: Message | None = None
    will_delay: int = 0
    receive_check: Callable[[str], bool] | None = None
    on_delivery: Callable[[Message], None] | None = None
    stored: bool = False
    backlog_after: int | None = None
    backlog: int = 0
    # Messages dropped in the current episode, per reason (see DropReport); None until the
    # first drop (most sessions never drop).
    drops: dict[DropReason, int] | None = None
    _next_packet_id: int = 1

    @property
    def queue(self) -> deque[_Pending]:
        """The messages waiting (see the class docstring); made empty if there was none."""
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        return queue

    @property
    def queued(self) -> int:
        """How many messages wait in ``queue``."""
        queue = self._queue
        return 0 if queue is None else len(queue)

    def release_queue(self) -> None:
        """Forget the queue if it is empty (it is made again at the next message)."""
        if self._queue is not None and not self._queue:
            self._queue = None

    @property
    def persistent(self) -> bool:
        """Whether it outlives its connection (MQTT 3 clean_session=0, MQTT 5 expiry > 0)."""
        return self.expiry_interval > 0

    def allocate_packet_id(self) -> int:
        """Return a packet identifier not in flight (1..65535, MQTT 2.2.1)."""
        candidate = self._next_packet_id
        while candidate in self.inflight:
            candidate = candidate % 65535 + 1
        self._next_packet_id = candidate % 65535 + 1
        return candidate


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    """What a SUBSCRIBE did.

    Attributes:
        reason_codes: one per requested filter, in order (granted QoS, or a failure code).
        retained: the subscriptions whose retained message is due; pass the result to
            ``Router.send_retained`` after the SUBACK is on its way.
    """

    reason_codes: tuple[int, ...]
    retained: tuple[tuple[str, SubscriptionOptions], ...] = ()


class Router:
    """All sessions, the subscription index and the retained store of one broker.

    Args:
        store: where retained messages and persistent sessions are kept.
        clock: wall-clock time in epoch seconds (tests inject their own).
        rng: chooses the member of a shared-subscription group that gets a message.
        session_queue_max: the most messages one session's queue holds.
        subscriptions_max: the most subscriptions one session holds (AWS: 50), None for no cap.
        drop_report: told when sessions start and stop dropping messages.
        storage_failed: told of the first failed bookkeeping write of an episode (see the
            module docstring).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        session_queue_max: int = DEFAULT_SESSION_QUEUE_MAX,
        subscriptions_max: int | None = SUBSCRIPTIONS_PER_CONNECTION,
        drop_report: DropReport | None = None,
        storage_failed: StorageFailed | None = None,
    ) -> None:
        self.subscriptions_max = subscriptions_max
        self.storage_failed = storage_failed
        # Client IDs whose stored session row is stale (a write failed): rewritten by tick().
        self._unsaved: dict[str, None] = {}
        # (client ID, row id) of acknowledged messages whose deletion failed.
        self._unremoved: deque[tuple[str, int]] = deque(maxlen=_UNREMOVED_MAX)
        # Whether a storage failure was reported and no tick has written everything since.
        self._failing = False
        self.store = store
        self.clock = clock
        self.rng = rng or random.Random()
        self.session_queue_max = session_queue_max
        self.drop_report = drop_report
        self.sessions: dict[str, Session] = {}
        self.index: SubscriptionIndex[SubscriptionOptions] = SubscriptionIndex()
        # (topic, QoS, RETAIN) -> the targets of such a message (see _targets), valid while
        # the index's generation is _plans_generation.
        self._plans: dict[tuple[str, int, bool], dict[str, tuple[int, bool]]] = {}
        self._plan_entries = 0
        self._plans_generation = -1
        self.retained: dict[str, Message] = {m.topic: m for m in store.load_retained()}
        self._wills: dict[str, _PendingWill] = {}
        # Called with every message routed (tests and the pytest plugin record them here).
        self.observers: list[Callable[[Message], None]] = []
        # Disconnected persistent sessions, the only ones tick() needs to look at.
        self._offline: dict[str, Session] = {}
        for stored in store.load_sessions():
            session = Session(
                client_id=stored.client_id,
                protocol_level=stored.protocol_level,
                expiry_interval=stored.expiry_interval,
                subscriptions=dict(stored.subscriptions),
                # A session that was connected when the broker stopped is disconnected now.
                disconnected_at=stored.disconnected_at or self.clock(),
                stored=True,
                # Its queue streams from the store when the client is back.
                backlog_after=0 if stored.queued else None,
                backlog=stored.queued,
            )
            self.sessions[session.client_id] = session
            self._offline[session.client_id] = session
            for topic_filter, options in session.subscriptions.items():
                self.index.add(session.client_id, topic_filter, options)

    # -- connect / disconnect --------------------------------------------------------------

    def open_session(
        self,
        client_id: str,
        outlet: Outlet,
        *,
        clean_start: bool,
        expiry_interval: int,
        will: Message | None = None,
        will_delay: int = 0,
    ) -> tuple[Session, bool]:
        """Attach a newly authenticated connection to its session.

        A connection already using ``client_id`` is taken over first (AWS: "the new client
        connection is accepted and the previously connected client is disconnected"); its will
        is sent. With ``clean_start`` an existing session is discarded.

        Returns:
            The session and CONNACK's ``sessionPresent``.
        """
        existing = self.sessions.get(client_id)
        if existing is not None and existing.outlet is not None:
            # The shell closes the old connection and must not detach it again.
            existing.outlet.taken_over()
            self.detach(existing, send_will=True)
            existing = self.sessions.get(client_id)
        # A resumed session cancels a will still waiting out its delay (MQTT 5 3.1.3.2.2).
        self._wills.pop(client_id, None)
        level = outlet.protocol_level
        if existing is not None and (clean_start or existing.protocol_level != level):
            # AWS: "Cross MQTT version (MQTT 3 and MQTT 5) persistent sessions are not
            # supported" (mqtt.html): another version starts a new session.
            self.end_session(existing)
            existing = None
        if existing is None:
            session = Session(client_id, level, expiry_interval, outlet=outlet)
            self.sessions[client_id] = session
            present = False
        else:
            session = existing
            session.outlet = outlet
            session.protocol_level = level
            session.expiry_interval = expiry_interval
            session.disconnected_at = None
            self._offline.pop(client_id, None)
            present = True
        session.will = will
        session.will_delay = will_delay
        if session.persistent:
            # disconnected_at is None now: the row says "connected".
            self._write_session(session, "the session", partial(self._save_session, session))
        elif session.stored:
            self._write_session(session, "the end of the session", partial(self._unstore, session))
        return session, present

    def resume_delivery(self, session: Session) -> None:
        """After CONNACK: resend unacknowledged QoS 1 with DUP, then drain the queue."""
        outlet = session.outlet
        if outlet is None:
            return
        self._end_drops(session, DropReason.CLIENT_NOT_READING)
        for packet_id, pending in list(session.inflight.items()):
            pending.dup = True
            self._transmit(
                session, outlet, pending.message, pending.qos, pending.retain, True, packet_id
            )
        self._drain(session)

    def detach(self, session: Session, *, send_will: bool) -> None:
        """The session's connection is gone: keep or end the session, and handle the will.

        Args:
            session: the session.
            send_will: False only after a clean client DISCONNECT (AWS sends the will on every
                other disconnect).
        """
        now = self.clock()
        session.outlet = None
        session.disconnected_at = now
        self._end_drops(session, DropReason.CLIENT_NOT_READING)
        will, session.will = session.will, None
        if session.persistent:
            client_id = session.client_id
            write = partial(self.store.set_disconnected_at, client_id, now)
            self._write_session(session, "the disconnect time", write)
            self._offline[client_id] = session
        else:
            self.end_session(session)
        if send_will and will is not None:
            delay = min(session.will_delay, session.expiry_interval)
            if delay > 0:
                self._wills[session.client_id] = _PendingWill(now + delay, will)
            else:
                self._publish_will(session.client_id, will)

    def set_expiry_interval(self, session: Session, expiry_interval: int) -> None:
        """Apply a Session Expiry Interval sent in an MQTT 5 DISCONNECT."""
        was_persistent = session.persistent
        session.expiry_interval = expiry_interval
        if session.persistent:
            self._write_session(session, "the session", partial(self._save_session, session))
        elif was_persistent and session.stored:
            self._write_session(session, "the end of the session", partial(self._unstore, session))

    def tick(self) -> None:
        """Fire wills whose delay has passed, end expired sessions, retry failed writes."""
        now = self.clock()
        self._retry_writes()
        for client_id, pending in list(self._wills.items()):
            if pending.due <= now:
                del self._wills[client_id]
                self._publish_will(client_id, pending.message)
        for session in list(self._offline.values()):
            if (
                session.disconnected_at is not None
                and session.disconnected_at + session.expiry_interval <= now
            ):
                pending_will = self._wills.pop(session.client_id, None)
                if pending_will is not None:  # session end sends a delayed will at once
                    self._publish_will(session.client_id, pending_will.message)
                self.end_session(session)

    def end_session(self, session: Session) -> None:
        """Discard a session: subscriptions, queue and stored state (idempotent)."""
        for reason in list(session.drops or ()):
            self._end_drops(session, reason)
        self.index.remove_subscriber(session.client_id)
        self._offline.pop(session.client_id, None)
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if session.stored:
            self._write_session(session, "the end of the session", partial(self._unstore, session))

    # -- writing session state, and retrying what failed -------------------------------------

    def _write_session(self, session: Session, what: str, write: Callable[[], None]) -> None:
        """Run one bookkeeping write; when it fails, remember the session to rewrite later.

        A session already waiting for a rewrite is rewritten whole instead (``write`` alone
        would leave the rest of its row stale).
        """
        client_id = session.client_id
        try:
            if client_id in self._unsaved:
                self._sync_session(client_id)
                del self._unsaved[client_id]
            else:
                write()
        except StorageError as error:
            self._unsaved[client_id] = None
            self._report(error, f"{what} of client {client_id!r} (kept in memory; {_RETRIED})")

    def _sync_session(self, client_id: str) -> None:
        """Make the stored row of ``client_id`` what memory says: saved, or deleted."""
        session = self.sessions.get(client_id)
        if session is not None and session.persistent:
            self._save_session(session)
        else:
            self.store.delete_session(client_id)
            if session is not None:
                session.stored = False

    def _unstore(self, session: Session) -> None:
        self.store.delete_session(session.client_id)
        session.stored = False

    def _remove_queued(self, client_id: str, row_id: int) -> None:
        """Delete an acknowledged (or expired) row; remember it when the store fails."""
        if self._unremoved:  # keep the order: older failed deletions first
            self._unremoved.append((client_id, row_id))
            return
        try:
            self.store.remove_queued(client_id, row_id)
        except StorageError as error:
            self._unremoved.append((client_id, row_id))
            self._report(
                error, f"the deletion of an acknowledged message of {client_id!r} ({_RETRIED})"
            )

    def _retry_writes(self) -> None:
        """Rewrite stale sessions and delete acknowledged rows, stopping at the first failure."""
        try:
            for client_id in list(self._unsaved):
                self._sync_session(client_id)
                del self._unsaved[client_id]
            while self._unremoved:
                client_id, row_id = self._unremoved[0]
                self.store.remove_queued(client_id, row_id)
                self._unremoved.popleft()
        except StorageError:
            return  # reported when the episode began; tried again next tick
        self._failing = False

    def _report(self, error: StorageError, what: str) -> None:
        """Report the first failure of an episode; it ends when a tick wrote everything."""
        if self._failing:
            return
        self._failing = True
        if self.storage_failed is not None:
            self.storage_failed(error, what)

    def _publish_will(self, client_id: str, will: Message) -> None:
        try:
            self.publish(will)
        except StorageError as error:
            self._report(error, f"the will message of client {client_id!r} (not sent)")

    def _save_session(self, session: Session) -> None:
        self.store.put_session(
            StoredSession(
                client_id=session.client_id,
                protocol_level=session.protocol_level,
                expiry_interval=session.expiry_interval,
                subscriptions=tuple(session.subscriptions.items()),
                disconnected_at=session.disconnected_at,
            )
        )
        session.stored = True

    # -- subscribe -------------------------------------------------------------------------

    def subscribe(
        self, session: Session, requests: Iterable[tuple[str, SubscriptionOptions]]
    ) -> SubscribeResult:
        """Add subscriptions (filters already validated) and deliver retained messages.

        QoS is granted as min(requested, 1). Beyond AWS's 50 subscriptions per connection a
        filter is refused (MQTT 5: 0x97 Quota exceeded; MQTT 3.1.1: 0x80).
        """
        codes: list[int] = []
        retained_to_send: list[tuple[str, SubscriptionOptions]] = []
        for topic_filter, requested in requests:
            is_new = topic_filter not in session.subscriptions
            limit = self.subscriptions_max
            if is_new and limit is not None and len(session.subscriptions) >= limit:
                level = session.protocol_level
                codes.append(SUBACK_QUOTA_EXCEEDED if level == 5 else V311_SUBACK_FAILURE)
                continue
            options = replace(requested, qos=min(requested.qos, 1))
            session.subscriptions[topic_filter] = options
            self.index.add(session.client_id, topic_filter, options)
            codes.append(options.qos)
            # Retain Handling: 0 = send, 1 = send only for a new subscription, 2 = never.
            if options.retain_handling == 0 or (options.retain_handling == 1 and is_new):
                retained_to_send.append((topic_filter, options))
        if session.persistent:
            self._write_session(session, "the subscriptions", partial(self._save_session, session))
        return SubscribeResult(tuple(codes), tuple(retained_to_send))

    def send_retained(self, session: Session, result: SubscribeResult) -> None:
        """Deliver the retained messages a SUBSCRIBE earned (after its SUBACK)."""
        for topic_filter, options in result.retained:
            self._deliver_retained(session, topic_filter, options)

    def _deliver_retained(
        self, session: Session, topic_filter: str, options: SubscriptionOptions
    ) -> None:
        # AWS: "Subscription to topic filters that contain a wildcard character can't receive
        # retained messages"; shared subscribers "don't receive retained messages".
        if is_wildcard(topic_filter) or parse_shared(topic_filter) is not None:
            return
        message = self.retained.get(topic_filter)
        if message is None or self._expired(message):
            return
        self._deliver(session, message, min(message.qos, options.qos), retain=True)

    def unsubscribe(self, session: Session, topic_filters: Iterable[str]) -> tuple[int, ...]:
        """Remove subscriptions; return MQTT 5 reason codes (0x00, or 0x11 if none existed)."""
        codes = []
        for topic_filter in topic_filters:
            existed = session.subscriptions.pop(topic_filter, None) is not None
            self.index.remove(session.client_id, topic_filter)
            codes.append(0x00 if existed else UNSUBACK_NO_SUBSCRIPTION)
        if session.persistent:
            self._write_session(session, "the subscriptions", partial(self._save_session, session))
        return tuple(codes)

    # -- publish ---------------------------------------------------------------------------

    def observe(self, message: Message) -> None:
        """Tell the observers of a message that reaches no subscriber (Basic Ingest)."""
        for observer in self.observers:
            observer(message)

    def publish(  # noqa: PLR0912 (one pass over the targets)
        self, message: Message, on_stored: Callable[[], None] | None = None
    ) -> int:
        """Route ``message`` (already validated and authorized) to every matching session.

        A retained message replaces the topic's retained message first (an empty payload deletes
        it and is still delivered live). Persistent-session copies of a QoS 1 message are
        written to the store before this returns, so the caller may PUBACK afterwards.
        ``on_stored`` is called once everything is stored, before any observer or subscriber
        gets the message (the ingress logs ``Publish-In`` there).

        Returns:
            The number of sessions it was delivered or queued to.

        Raises:
            StorageError: the retained message or the persistent sessions' copies could not be
                stored: the message reached no subscriber and no observer, and must not be
                acknowledged (a retained message stored before the failure stays stored).
        """
        if message.retain:
            if message.payload:
                self.store.put_retained(message)
                self.retained[message.topic] = message
            elif message.topic in self.retained:
                self.store.delete_retained(message.topic)
                del self.retained[message.topic]
        targets = self._targets(message)
        if not targets:
            if on_stored is not None:
                on_stored()
            for observer in self.observers:
                observer(message)
            return 0
        # (session, pending, RETAIN): a QoS 0 delivery gets a _Pending only if it must wait.
        deliveries: list[tuple[Session, _Pending | None, bool]] = []
        to_store: list[tuple[str, Message]] = []
        for client_id, (qos, keep_retain) in targets.items():
            session = self.sessions.get(client_id)
            if session is None:
                continue
            if session.outlet is None and not (qos == 1 and session.persistent):
                continue  # AWS stores only QoS 1 messages for offline persistent sessions
            # AWS: "Permission for iot:Receive is confirmed every time a message is delivered
            # to a client": checked now for a connected session, at delivery (_drain, with the
            # reconnected client's permissions) for an offline one.
            check = session.receive_check
            if session.outlet is not None and check is not None and not check(message.topic):
                continue
            if session.queued + session.backlog >= self.session_queue_max:
                # Anything for this session would wait behind a full queue: drop it here,
                # before it is written to the store.
                self._dropped(session, DropReason.SESSION_QUEUE_FULL)
                continue
            if not qos:
                deliveries.append((session, None, keep_retain))
                continue
            deliveries.append((session, _Pending(message, qos, keep_retain), keep_retain))
            if session.persistent:
                to_store.append((client_id, message))
        if to_store:
            self._persist(deliveries, to_store)
        if on_stored is not None:
            on_stored()
        for observer in self.observers:
            observer(message)
        cache: _EncodedCache = {}
        for session, pending, keep_retain in deliveries:
            if pending is not None:
                self._enqueue(session, pending, cache)
                continue
            self._deliver_qos0(session, message, keep_retain, cache)
        return len(deliveries)

    def _deliver_qos0(
        self, session: Session, message: Message, keep_retain: bool, cache: _EncodedCache
    ) -> None:
        """``_enqueue`` of a QoS 0 delivery: a connected session that can send needs no _Pending."""
        outlet = session.outlet
        if outlet is None:
            self._enqueue(session, _Pending(message, 0, keep_retain), cache)
        elif outlet.can_send:
            self._transmit(session, outlet, message, 0, keep_retain, False, None, cache)
        else:
            self._dropped(session, DropReason.CLIENT_NOT_READING)

    def plain_route(self, topic: str, sender: str | None) -> PlainRoute:
        """``publish`` for a run of QoS 0 messages on ``topic`` from ``sender``, without RETAIN.

        The returned function routes one such message (built with ``sender``) exactly as
        ``publish`` would, with the targets and their ``iot:Receive`` checks worked out once,
        here: it is valid only until control returns to the event loop (subscriptions, sessions
        and policies change only in between). Each message still finds out whether its session
        is connected, can take it, and has room.
        """
        probe = new_message(topic, b"", 0, False, EMPTY_PROPERTIES, None, sender, 0.0)
        targets, planned = self._find_targets(probe)
        if not planned:  # shared groups and No Local: targets depend on the message
            return self.publish
        plan: list[tuple[Session, bool]] = []
        for client_id, (_qos, keep_retain) in targets.items():
            session = self.sessions.get(client_id)
            if session is None or session.outlet is None:
                continue  # QoS 0 is not kept for a session that is not connected
            check = session.receive_check
            if check is None or check(topic):
                plan.append((session, keep_retain))
        return partial(self._publish_planned, tuple(plan))

    def _publish_planned(
        self,
        plan: tuple[tuple[Session, bool], ...],
        message: Message,
        on_stored: Callable[[], None] | None = None,
    ) -> int:
        """``publish`` of a message ``plain_route`` planned: see there."""
        deliveries: list[tuple[Session, bool]] = []
        limit = self.session_queue_max
        for session, keep_retain in plan:
            if session.outlet is None:
                continue
            # (_queue first: most sessions never queue, and ``queued`` is a call)
            if (session._queue is not None or session.backlog) and (
                session.queued + session.backlog >= limit
            ):
                self._dropped(session, DropReason.SESSION_QUEUE_FULL)
                continue
            deliveries.append((session, keep_retain))
        if on_stored is not None:
            on_stored()
        for observer in self.observers:
            observer(message)
        cache: _EncodedCache = {}
        for session, keep_retain in deliveries:
            self._deliver_qos0(session, message, keep_retain, cache)
        return len(deliveries)

    def _persist(
        self,
        deliveries: list[tuple[Session, _Pending | None, bool]],
        to_store: list[tuple[str, Message]],
    ) -> None:
        """Write the persistent sessions' QoS 1 copies in one transaction, before any PUBACK."""
        for client_id, _ in to_store:
            if client_id in self._unsaved:  # its row must exist before rows can point at it
                self._sync_session(client_id)
                del self._unsaved[client_id]
        row_ids = iter(self.store.enqueue_many(to_store))
        for session, pending, _retain in deliveries:
            if pending is not None and pending.qos == 1 and session.persistent:
                pending.row_id = next(row_ids)

    def _targets(self, message: Message) -> dict[str, tuple[int, bool]]:
        """Client ID -> (delivered QoS, RETAIN flag) for every session that gets ``message``.

        A client with several matching filters gets one copy at the highest QoS (MQTT 5
        3.3.4 allows either); each shared group contributes one member. The caller must not
        change the result: without shared groups or No Local subscriptions it depends only
        on the topic, QoS and RETAIN flag, and is remembered until the subscriptions change
        (bounded by ``_PLAN_ENTRIES`` targets in all).
        """
        if self.index.generation == self._plans_generation:
            plan = self._plans.get((message.topic, message.qos, message.retain))
            if plan is not None:
                return plan
        return self._find_targets(message)[0]

    def _find_targets(self, message: Message) -> tuple[dict[str, tuple[int, bool]], bool]:
        """``_targets``, worked out (and remembered), and whether they depend only on the topic.

        The caller must not change the result.
        """
        index = self.index
        if index.generation != self._plans_generation:
            self._plans.clear()
            self._plan_entries = 0
            self._plans_generation = index.generation
        key = (message.topic, message.qos, message.retain)
        plan = self._plans.get(key)
        if plan is not None:
            return plan, True
        match = index.match(message.topic)
        targets: dict[str, tuple[int, bool]] = {}
        sender = message.sender
        cacheable = not match.shared
        for client_id, _topic_filter, options in match.direct:
            if options.no_local:
                cacheable = False
                if client_id == sender:
                    continue
            qos = min(message.qos, options.qos)
            keep_retain = options.retain_as_published and message.retain
            previous = targets.get(client_id)
            if previous is not None:
                qos, keep_retain = max(qos, previous[0]), keep_retain or previous[1]
            targets[client_id] = (qos, keep_retain)
        for _group, _topic_filter, members in match.shared:
            chosen = self._choose_member(members, sender)
            if chosen is not None:
                client_id, options = chosen
                if client_id not in targets:
                    targets[client_id] = (min(message.qos, options.qos), False)
        # An event topic nobody gets is not remembered: one per client ID (is_event_topic).
        if (
            cacheable
            and (targets or not is_event_topic(message.topic))
            and len(targets) <= _PLAN_ENTRIES
        ):
            if self._plan_entries + len(targets) > _PLAN_ENTRIES or len(self._plans) >= _PLANS:
                self._plans.clear()
                self._plan_entries = 0
            self._plans[key] = targets
            self._plan_entries += len(targets) + 1
        return targets, cacheable

    def _choose_member(
        self, members: list[tuple[str, SubscriptionOptions]], sender: str | None
    ) -> tuple[str, SubscriptionOptions] | None:
        """Pick one member of a shared group: a connected one if any (AWS picks at random)."""
        eligible = [m for m in members if not (m[1].no_local and m[0] == sender)]
        connected = [m for m in eligible if self._is_connected(m[0])]
        pool = connected or [m for m in eligible if self._is_persistent(m[0])]
        return self.rng.choice(pool) if pool else None

    def _is_connected(self, client_id: str) -> bool:
        session = self.sessions.get(client_id)
        return session is not None and session.outlet is not None

    def _is_persistent(self, client_id: str) -> bool:
        session = self.sessions.get(client_id)
        return session is not None and session.persistent

    def _deliver(self, session: Session, message: Message, qos: int, *, retain: bool) -> None:
        """Deliver one message to one session outside ``publish`` (retained on subscribe)."""
        if session.receive_check is not None and not session.receive_check(message.topic):
            return
        if session.queued + session.backlog >= self.session_queue_max:
            self._dropped(session, DropReason.SESSION_QUEUE_FULL)
            return
        pending = _Pending(message, qos, retain)
        if qos == 1 and session.persistent:
            try:
                self._persist([(session, pending, retain)], [(session.client_id, message)])
            except StorageError as error:
                # The retained message itself is stored: deliver it anyway, unstored.
                self._report(error, f"a retained message for client {session.client_id!r}")
        self._enqueue(session, pending, {})

    def _enqueue(self, session: Session, pending: _Pending, cache: _EncodedCache) -> None:
        outlet = session.outlet
        if session.backlog_after is not None and pending.row_id is not None:
            # Stored, behind stored rows not yet read: it streams in after them, in order.
            session.backlog += 1
            if outlet is not None:
                self._drain(session)
            return
        if outlet is None:
            session.queue.append(pending)
            return
        if pending.qos == 0:
            if outlet.can_send:
                self._transmit(
                    session, outlet, pending.message, 0, pending.retain, pending.dup, None, cache
                )
            else:
                self._dropped(session, DropReason.CLIENT_NOT_READING)
            return
        if session.queued or len(session.inflight) >= outlet.receive_maximum or not outlet.can_send:
            session.queue.append(pending)  # keep QoS 1 order behind what is already waiting
            return
        packet_id = session.allocate_packet_id()
        session.inflight[packet_id] = pending
        self._transmit(
            session, outlet, pending.message, 1, pending.retain, pending.dup, packet_id, cache
        )

    def acknowledge(self, session: Session, packet_id: int) -> bool:
        """Handle a PUBACK: release the in-flight slot and send what was waiting.

        Returns:
            False if no message was in flight under ``packet_id``.
        """
        pending = session.inflight.pop(packet_id, None)
        if pending is None:
            return False
        if pending.row_id is not None:
            self._remove_queued(session.client_id, pending.row_id)
        if pending.on_acknowledged is not None:
            pending.on_acknowledged()
        self._drain(session)
        return True

    def deliver_direct(
        self,
        client_id: str,
        message: Message,
        *,
        on_acknowledged: Callable[[], None] | None = None,
    ) -> bool | None:
        """Deliver ``message`` to one connected client, subscribed or not (SendDirectMessage).

        "The receiving client does not need to subscribe to the topic, but the receiver's policy
        must allow iot:Receive on the specified topic" (SendDirectMessage, iot-data API).

        Returns:
            True when it was sent or queued for the connection, False when the client's
            ``iot:Receive`` check refused it, None when no client with that ID is connected.
        """
        session = self.sessions.get(client_id)
        if session is None or session.outlet is None:
            return None
        check = session.receive_check
        if check is not None and not check(message.topic):
            return False
        pending = _Pending(message, message.qos, False, on_acknowledged=on_acknowledged)
        self._enqueue(session, pending, {})
        return True

    def _drain(self, session: Session) -> None:
        outlet = session.outlet
        if outlet is None:
            return
        check = session.receive_check
        while len(session.inflight) < outlet.receive_maximum and outlet.can_send:
            if not session.queued and not self._read_backlog(session):
                break
            pending = session.queue.popleft()
            denied = check is not None and not check(pending.message.topic)
            if denied or self._expired(pending.message):
                if pending.row_id is not None:
                    self._remove_queued(session.client_id, pending.row_id)
                continue
            if pending.qos == 0:
                self._transmit(
                    session, outlet, pending.message, 0, pending.retain, pending.dup, None
                )
                continue
            packet_id = session.allocate_packet_id()
            session.inflight[packet_id] = pending
            self._transmit(
                session, outlet, pending.message, 1, pending.retain, pending.dup, packet_id
            )
        session.release_queue()
        if session.queued + session.backlog < self.session_queue_max:
            self._end_drops(session, DropReason.SESSION_QUEUE_FULL)

    def _read_backlog(self, session: Session) -> bool:
        """Read the next page of the session's stored queue into ``queue``; False if none."""
        after = session.backlog_after
        if after is None:
            return False
        try:
            rows = self.store.load_queue(session.client_id, after=after, limit=QUEUE_PAGE)
        except StorageError as error:
            self._report(error, f"reading the queued messages of client {session.client_id!r}")
            return False
        session.queue.extend(
            _Pending(message, 1, message.retain, row_id) for row_id, message in rows
        )
        session.backlog = max(0, session.backlog - len(rows))
        if len(rows) < QUEUE_PAGE:
            session.backlog_after, session.backlog = None, 0
        else:
            session.backlog_after = rows[-1][0]
        return bool(rows)

    def _dropped(self, session: Session, reason: DropReason) -> None:
        drops = session.drops
        if drops is None:
            drops = session.drops = {}
        count = drops.get(reason, 0)
        drops[reason] = count + 1
        if count == 0 and self.drop_report is not None:
            self.drop_report.drops_started(session, reason)

    def _end_drops(self, session: Session, reason: DropReason) -> None:
        if session.drops is None:
            return
        count = session.drops.pop(reason, 0)
        if count and self.drop_report is not None:
            self.drop_report.drops_ended(session, reason, count)

    def _expired(self, message: Message) -> bool:
        return message.expires_at is not None and message.expires_at <= self.clock()

    def _transmit(  # noqa: PLR0917 (a pending delivery's fields: QoS 0 has no _Pending)
        self,
        session: Session,
        outlet: Outlet,
        message: Message,
        qos: int,
        retain: bool,
        dup: bool,
        packet_id: int | None,
        cache: _EncodedCache | None = None,
    ) -> None:
        """Encode (once per level, QoS and RETAIN for a fan-out) and send.

        ``cache`` holds what one publish encoded, with the packet identifier it carries: the
        first target's PUBLISH is encoded with its own identifier, the others get it stamped.
        """
        level = outlet.protocol_level
        key = (level, qos, retain)
        cached = None if cache is None or dup else cache.get(key)
        if cached is None:
            properties = EMPTY_PROPERTIES
            if level == 5:
                properties = _outbound_properties(message, self.clock())
            encoded = publish_bytes(
                message.topic, message.payload, qos, retain, dup, packet_id, properties, level
            )
            if cache is not None and not dup:
                cache[key] = (encoded, packet_id)
        else:
            encoded, encoded_id = cached
            if packet_id is not None and packet_id != encoded_id:
                encoded = with_packet_id(encoded, packet_id)
        limit = outlet.maximum_packet_size
        if limit is not None and len(encoded) > limit:
            # MQTT 5 3.1.2.25: the server must not send a packet larger than the client's
            # Maximum Packet Size; it discards the message as if delivered.
            if packet_id is not None:
                pending = session.inflight.pop(packet_id, None)
                if pending is not None and pending.row_id is not None:
                    self._remove_queued(session.client_id, pending.row_id)
            return
        outlet.send(encoded)
        if session.on_delivery is not None:
            session.on_delivery(message)


def _outbound_properties(message: Message, now: float) -> Properties:
    """The MQTT 5 properties a subscriber gets: the publisher's, plus the remaining expiry."""
    if message.expires_at is None:
        return message.properties
    # AWS: outbound messages carry the remaining time; "<=999 ms remaining is shown as 0".
    remaining = max(0, math.floor(message.expires_at - now))
    return replace(message.properties, message_expiry_interval=remaining)
