"""What a test broker saw: every routed message and every log record, with waits on both.

The broker appends from its event-loop thread; tests read and wait from any thread. Reads return
copies taken under a lock. Two kinds of wait share the same data: ``wait_async`` runs in the
broker's own event loop (the async API), ``wait_blocking`` in any other thread (the thread-backed
API and the client helpers). Neither polls: appends wake the waiters.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aws_iot_mock.mqtt.message import Message

_T = TypeVar("_T")

# A finder looks at (messages, logs) and returns what the caller waits for, or None.
Finder = Callable[[list["RoutedMessage"], list[dict[str, object]]], _T | None]


@dataclass(frozen=True)
class RoutedMessage:
    """One PUBLISH the broker routed (from a device, or made by the broker itself).

    Attributes:
        topic: the topic name.
        payload: the payload bytes.
        qos: the QoS it was published with (0 or 1).
        client_id: the publishing client ID; None for messages the broker made (lifecycle
            events under ``$aws/events/``).
        time: when the broker received it, epoch seconds.
        retain: the RETAIN flag it was published with.
    """

    topic: str
    payload: bytes
    qos: int
    client_id: str | None
    time: float
    retain: bool = False


class Recorder:
    """Messages and log records of one broker run, appended by the broker, read by tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._condition = threading.Condition(self._lock)
        self._messages: list[RoutedMessage] = []
        self._logs: list[dict[str, object]] = []
        self._events: set[asyncio.Event] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the broker's event loop (async waiters live there)."""
        self._loop = loop

    # -- appends (broker side) -----------------------------------------------------------------

    def on_message(self, message: Message) -> None:
        """Record a message the broker is routing (a ``BrokerCore`` observer)."""
        routed = RoutedMessage(
            topic=message.topic,
            payload=message.payload,
            qos=message.qos,
            client_id=message.sender,
            time=message.published_at or time.time(),
            retain=message.retain,
        )
        with self._lock:
            self._messages.append(routed)
            self._wake_locked()

    def on_record(self, record: Mapping[str, object]) -> None:
        """Record an AWSIotLogsV2 record (a ``LogSink`` listener)."""
        with self._lock:
            self._logs.append(dict(record))
            self._wake_locked()

    def _wake_locked(self) -> None:
        self._condition.notify_all()
        events = list(self._events)
        if not events:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for event in events:
            if running is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)

    # -- reads (test side) ---------------------------------------------------------------------

    @property
    def messages(self) -> list[RoutedMessage]:
        """A copy of every message routed so far, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def logs(self) -> list[dict[str, object]]:
        """A copy of every log record so far, oldest first."""
        with self._lock:
            return list(self._logs)

    def log_count(self) -> int:
        """How many log records there are (an index for "records since")."""
        with self._lock:
            return len(self._logs)

    def clear(self) -> None:
        """Forget every message and record seen so far."""
        with self._lock:
            self._messages.clear()
            self._logs.clear()

    def wait_blocking(self, find: Finder[_T], timeout: float) -> _T | None:
        """Block until ``find`` returns something (returned) or ``timeout`` passes (None).

        Must not be called from the broker's event-loop thread (the broker could not append).
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                found = find(self._messages, self._logs)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)

    async def wait_async(self, find: Finder[_T], timeout: float) -> _T | None:
        """Like ``wait_blocking``, awaited in the broker's own event loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # Arm the event before looking: an append after the look sets it.
            event = asyncio.Event()
            with self._lock:
                self._events.add(event)
                found = find(self._messages, self._logs)
            try:
                if found is not None:
                    return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                with self._lock:
                    self._events.discard(event)
