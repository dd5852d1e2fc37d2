"""The asyncio shell of an MQTT connection: bytes between a door's channel and the core.

``MqttDoorHandler`` serves MQTT over any ``ByteChannel`` (TLS on 8883 and on 443 with ALPN
``x-amzn-mqtt-ca``; MQTT over WebSocket wraps its frames in one). It feeds received bytes to the
pure ``MqttConnection``, writes what it answers, closes the channel when it asks, runs its one
timer (CONNECT deadline, then keep-alive), and passes the transport's back-pressure on.

Writes are coalesced: a handler woken by the core (a message routed from another connection)
flushes once after the read that woke it, or at the end of the event-loop iteration when
something else woke it (``FlushScheduler``), so N messages from one read to one subscriber cost
one TLS write, not N. No task is created per message.

Timers are shared: every handler's deadline (CONNECT, then keep-alive) sits in a bucket of
``DeadlineTimers`` (a tenth of a second wide, never early), and one event-loop timer serves the
earliest bucket. A loop timer per connection would cost ~0.5 KB each, idle or not.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import sys
from collections.abc import Callable

from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.tls_door import ByteChannel

__all__ = ["DeadlineTimers", "FlushScheduler", "MqttDoorHandler"]

# Deadline buckets per second: a deadline is served at most this much late, never early.
_BUCKETS_PER_SECOND = 10


class DeadlineTimers:
    """One event-loop timer for the deadlines of many handlers, in buckets of 0.1 s."""

    def __init__(self) -> None:
        self._buckets: dict[int, set[MqttDoorHandler]] = {}
        # Bucket keys in time order; a key whose bucket emptied stays until it comes first.
        self._keys: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_key: int | None = None

    def add(self, handler: MqttDoorHandler, deadline: float) -> int:
        """Call ``handler.deadline_reached()`` at ``deadline`` (loop time); returns its bucket."""
        key = math.ceil(deadline * _BUCKETS_PER_SECOND)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            heapq.heappush(self._keys, key)
            if self._timer_key is None or key < self._timer_key:
                self._schedule(key)
        bucket.add(handler)
        return key

    def remove(self, handler: MqttDoorHandler, key: int) -> None:
        """Forget ``handler``'s deadline in bucket ``key``."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(handler)
            if not bucket:
                del self._buckets[key]
                if not self._buckets and self._timer is not None:
                    # Nothing armed (the broker stopped, say): no loop timer left behind.
                    self._timer.cancel()
                    self._timer = None
                    self._timer_key = None
                    self._keys.clear()

    def _schedule(self, key: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_key = key
        self._timer = asyncio.get_running_loop().call_at(key / _BUCKETS_PER_SECOND, self._fire)

    def _fire(self) -> None:
        due = self._timer_key
        self._timer = None
        self._timer_key = None
        keys = self._keys
        # The due buckets first: a handler that re-arms into a bucket already due (its clock
        # says "not yet") is served at the next turn, not in this loop.
        due_buckets: list[tuple[int, set[MqttDoorHandler]]] = []
        while keys and due is not None and keys[0] <= due:
            key = heapq.heappop(keys)
            bucket = self._buckets.pop(key, None)
            if bucket:
                due_buckets.append((key, bucket))
        for key, bucket in due_buckets:
            for handler in bucket:
                handler.deadline_reached(key)
        while keys and keys[0] not in self._buckets:
            heapq.heappop(keys)
        if keys and (self._timer_key is None or keys[0] < self._timer_key):
            self._schedule(keys[0])


class FlushScheduler:
    """Flushes every woken handler once, at the end of the current event-loop iteration.

    Attributes:
        deadlines: the handlers' shared timers.
    """

    def __init__(self) -> None:
        self._dirty: list[MqttDoorHandler] = []
        self.deadlines = DeadlineTimers()
        self._loop: asyncio.AbstractEventLoop | None = None
        # True while a handler's data_received runs: it flushes every marked handler at its
        # end (``flush_now``), so a mark needs no scheduled run of its own.
        self._reading = False

    def mark(self, handler: MqttDoorHandler) -> None:
        """Flush ``handler`` soon (idempotent until the flush runs)."""
        if handler.flush_pending:
            return
        handler.flush_pending = True
        if not self._dirty and not self._reading:
            loop = self._loop
            if loop is None:  # (get_running_loop() costs a getpid() system call each time)
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self._run)
        self._dirty.append(handler)

    def read_then_flush(self, read: Callable[[bytes], None], data: bytes) -> None:
        """Call ``read(data)``, then flush every handler it marked (also when it raises)."""
        self._reading = True
        try:
            read(data)
        finally:
            self._reading = False
            self.flush_now()

    def flush_now(self) -> None:
        """Flush every handler marked so far, now (the scheduled run then finds less to do)."""
        if self._dirty:
            self._run()

    def _run(self) -> None:
        dirty, self._dirty = self._dirty, []
        for handler in dirty:
            handler.flush_pending = False
            handler.flush()


class MqttDoorHandler:
    """One MQTT connection on a door: a ``DoorHandler`` around a pure ``MqttConnection``.

    Args:
        channel: the door's channel (its principal must be authenticated).
        core: the device core.
        scheduler: the broker's flush scheduler.
        principal: the authenticated principal, when the channel's identity has none (MQTT over
            WebSocket authenticates with SigV4 at the HTTP upgrade).
        transport_details: how the client came in, for the ``Connect`` log line; by default
            the channel's TLS handshake.
    """

    # Thousands of these live at once (one per connection): slots, not a dict each.
    __slots__ = (
        "_channel",
        "_closing",
        "_loop",
        "_scheduler",
        "_throttle",
        "_timer_at",
        "_timer_key",
        "_timers",
        "connection",
        "flush_pending",
    )

    def __init__(
        self,
        channel: ByteChannel,
        core: DeviceCore,
        scheduler: FlushScheduler,
        *,
        principal: Principal | None = None,
        transport_details: str | None = None,
    ) -> None:
        who = principal or channel.identity.principal
        if who is None:
            raise ValueError("MQTT needs an authenticated principal")
        self._channel = channel
        self._scheduler = scheduler
        self._loop = asyncio.get_running_loop()
        self.flush_pending = False
        self._closing = False
        self._timers = scheduler.deadlines
        self._timer_key: int | None = None  # its bucket in the shared timers, while armed
        self._timer_at: float | None = None
        self._throttle: asyncio.TimerHandle | None = None
        self.connection = core.open_mqtt_connection(
            who,
            channel.facts,
            wake=self._wake,
            # Interned: the same few handshakes' text for thousands of connections.
            transport_details=transport_details or sys.intern(channel.identity.tls_details),
            door=channel.identity.door.value,
        )
        self._arm_timer()

    # -- DoorHandler -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed the connection; write what it routed to others, then its own answers, at once.

        Deliveries first, as Mosquitto does: a subscriber's copy does not wait behind the
        publisher's PUBACK (a write each), nor for the end of the event-loop iteration. One
        read of many PUBLISH packets is still one write per woken subscriber.
        """
        connection = self.connection
        self._scheduler.read_then_flush(connection.receive_data, data)
        self.flush()
        if connection.read_paused_until is not None and self._throttle is None:
            # AWS's 512 KiB/s: read no more until the connection's second is over.
            self._channel.pause_reading()
            self._throttle = self._loop.call_at(connection.read_paused_until, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttle = None
        self.connection.read_paused_until = None
        if not self._closing:
            self._channel.resume_reading()

    def peer_closed(self, reason: str, details: str, *, failure: bool) -> None:
        """The client closed its side (the door is closing the transport)."""
        self._closing = True
        self._cancel_timer()
        self.connection.peer_closed(reason, details, failure=failure)

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone."""
        self._closing = True
        self._cancel_timer()
        self.connection.connection_lost(str(exc) if exc is not None else None)

    def pause_writing(self) -> None:
        """The client's buffer is full: the core stops sending to it; stop reading from it."""
        self.connection.pause_writing()
        self._channel.pause_reading()

    def resume_writing(self) -> None:
        """The client drained its buffer."""
        self._channel.resume_reading()
        self.connection.resume_writing()
        self.flush()

    def shutdown(self) -> None:
        """The broker is stopping: MQTT 5 DISCONNECT 0x8B, then close."""
        self.connection.shutdown()
        self.flush()

    # -- output ----------------------------------------------------------------------------

    def _wake(self) -> None:
        self._scheduler.mark(self)

    def flush(self) -> None:
        """Write what the connection has queued; close the channel if it asked to."""
        if self._closing:
            return
        connection = self.connection
        data = connection.data_to_send()
        if data:
            self._channel.write(data)
        if connection.close_request is not None:
            self._closing = True
            self._cancel_timer()
            self._channel.close()
            return
        self._arm_timer()

    # -- the timer -------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self.connection.next_deadline
        if deadline is None:
            self._cancel_timer()
            return
        # Lazily: deadlines only move later while packets arrive, so an armed timer that fires
        # early just re-arms (one timer per connection, not one per packet).
        if self._timer_at is not None and self._timer_at <= deadline:
            return
        self._cancel_timer()
        self._timer_at = deadline
        self._timer_key = self._timers.add(self, deadline)

    def deadline_reached(self, key: int) -> None:
        """The shared timers' call: the deadline armed in bucket ``key`` has come."""
        if key != self._timer_key:
            return  # cancelled (or re-armed) by another handler's turn in the same bucket
        self._timer_key = None
        self._timer_at = None
        self.connection.on_timer()
        self.flush()

    def _cancel_timer(self) -> None:
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = None
        if self._timer_key is not None:
            self._timers.remove(self, self._timer_key)
            self._timer_key = None
        self._timer_at = None
