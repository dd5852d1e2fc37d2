"""The asyncio shell of an MQTT connection: bytes between a door's channel and the core.

``MqttDoorHandler`` serves MQTT over any ``ByteChannel`` (TLS on 8883 and on 443 with ALPN
``x-amzn-mqtt-ca``; MQTT over WebSocket wraps its frames in one). It feeds received bytes to the
pure ``MqttConnection``, writes what it answers, closes the channel when it asks, runs its one
timer (CONNECT deadline, then keep-alive), and passes the transport's back-pressure on.

Writes are coalesced: a handler woken by the core (a message routed from another connection)
flushes once after the read that woke it, or at the end of the event-loop iteration when
something else woke it (``FlushScheduler``), so N messages from one read to one subscriber cost
one TLS write, not N. No task is created per message.
"""

from __future__ import annotations

import asyncio

from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.tls_door import ByteChannel

__all__ = ["FlushScheduler", "MqttDoorHandler"]


class FlushScheduler:
    """Flushes every woken handler once, at the end of the current event-loop iteration."""

    def __init__(self) -> None:
        self._dirty: list[MqttDoorHandler] = []

    def mark(self, handler: MqttDoorHandler) -> None:
        """Flush ``handler`` soon (idempotent until the flush runs)."""
        if handler.flush_pending:
            return
        handler.flush_pending = True
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._run)
        self._dirty.append(handler)

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
        "_timer",
        "_timer_at",
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
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._throttle: asyncio.TimerHandle | None = None
        self.connection = core.open_mqtt_connection(
            who,
            channel.facts,
            wake=self._wake,
            transport_details=transport_details or channel.identity.tls_details,
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
        connection.receive_data(data)
        self._scheduler.flush_now()
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
        self._timer = self._loop.call_at(deadline, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._timer_at = None
        self.connection.on_timer()
        self.flush()

    def _cancel_timer(self) -> None:
        if self._throttle is not None:
            self._throttle.cancel()
            self._throttle = None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None
