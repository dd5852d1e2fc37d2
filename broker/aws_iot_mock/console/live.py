"""The console's live feed: log records and routed messages fanned out to open pages. Pure.

The broker hands every log record (``LogSink`` listener) and every routed message (router
observer) to one ``LiveFeed``; each open console page is a ``Watcher`` with its own filters and
a bounded queue of events. A page that does not read loses events (counted, then reported as a
``dropped`` event) rather than making the broker hold them: nothing grows without bound. The
feed also keeps the last ``BACKLOG`` log records (a page opened now sees what just happened)
and the counts of the overview: messages in the last second, refusals in the last minute.
The clock is injected; the shell (``aws_iot_mock.console.endpoint``) wakes the pages.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aws_iot_mock.console.views import LogFilter, log_entry, message_event
from aws_iot_mock.mqtt.message import Message

__all__ = ["BACKLOG", "WATCHERS_MAX", "WATCHER_QUEUE_MAX", "LiveFeed", "RollingCount", "Watcher"]

# Log records kept for a page that opens now.
BACKLOG = 500
# Events waiting for one page; more are dropped (and counted) until it reads.
WATCHER_QUEUE_MAX = 1000
# Pages open at once; one more is refused (each holds a connection and a queue).
WATCHERS_MAX = 32


class RollingCount:
    """Events counted in one-second buckets over a window (e.g. refusals in the last minute).

    Args:
        window: seconds counted.
        clock: monotonic seconds.
    """

    def __init__(self, window: int, clock: Callable[[], float]) -> None:
        self._window = window
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, count: int = 1) -> None:
        """Count ``count`` events now (O(1): the router calls it for every message)."""
        second = int(self._clock())
        buckets = self._buckets
        if buckets:
            last = buckets[-1]
            if last[0] == second:
                last[1] += count
                return  # nothing expires before a new second starts
        buckets.append([second, count])
        self._expire(second)

    def total(self) -> int:
        """The events in the last ``window`` seconds (the current second included)."""
        self._expire(int(self._clock()))
        return sum(count for _, count in self._buckets)

    def _expire(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self._window:
            self._buckets.popleft()


@dataclass(eq=False)
class Watcher:
    """One open console page: what it watches and the events waiting for it.

    Attributes:
        log_filter: the log records it wants.
        topic_filters: the topic filters of its MQTT test client.
        wake: called when an event is queued (the shell sets the page's event).
        events: ``(event name, JSON data)`` waiting to be sent, oldest first.
        dropped: events lost since the page last read, because its queue was full.
    """

    log_filter: LogFilter
    topic_filters: tuple[str, ...]
    wake: Callable[[], None]
    events: deque[tuple[str, str]] = field(default_factory=deque)
    dropped: int = 0

    def push(self, name: str, data: object) -> None:
        """Queue an event (dropped and counted when the queue is full)."""
        if len(self.events) >= WATCHER_QUEUE_MAX:
            self.dropped += 1
            return
        self.events.append((name, json.dumps(data, separators=(",", ":"))))
        self.wake()

    def take(self) -> list[tuple[str, str]]:
        """Every waiting event, a ``dropped`` one first when some were lost."""
        taken: list[tuple[str, str]] = []
        if self.dropped:
            taken.append(("dropped", json.dumps({"count": self.dropped})))
            self.dropped = 0
        taken.extend(self.events)
        self.events.clear()
        return taken


class LiveFeed:
    """Fans log records and routed messages out to the open pages.

    Args:
        clock: monotonic seconds (the rolling counts).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._watchers: list[Watcher] = []
        self._backlog: deque[Mapping[str, object]] = deque(maxlen=BACKLOG)
        self.messages = RollingCount(1, clock)
        self.refusals = RollingCount(60, clock)

    @property
    def watchers(self) -> int:
        """Pages open now."""
        return len(self._watchers)

    def watch(
        self, log_filter: LogFilter, topic_filters: tuple[str, ...], wake: Callable[[], None]
    ) -> Watcher | None:
        """A new page; its queue starts with the backlog's matching records.

        Returns None when ``WATCHERS_MAX`` pages are open.
        """
        if len(self._watchers) >= WATCHERS_MAX:
            return None
        watcher = Watcher(log_filter, topic_filters, wake)
        for record in self._backlog:
            if log_filter.matches(record):
                watcher.push("log", log_entry(record))
        self._watchers.append(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """The page is gone."""
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def recent(self, log_filter: LogFilter) -> list[dict[str, object]]:
        """The backlog's records that pass ``log_filter``, oldest first, as log entries."""
        return [log_entry(r) for r in self._backlog if log_filter.matches(r)]

    def on_record(self, record: Mapping[str, object]) -> None:
        """A log record was written (a ``LogSink`` listener)."""
        self._backlog.append(record)
        if record.get("status") == "Failure":
            self.refusals.add()
        entry: dict[str, object] | None = None
        for watcher in self._watchers:
            if watcher.log_filter.matches(record):
                entry = entry or log_entry(record)
                watcher.push("log", entry)

    def on_message(self, message: Message) -> None:
        """A message was routed (a router observer)."""
        self.messages.add()
        for watcher in self._watchers:
            if watcher.topic_filters:
                event = message_event(message, watcher.topic_filters)
                if event is not None:
                    watcher.push("message", event)

    def broadcast(self, name: str, data: object) -> None:
        """Queue an event for every page (the once-a-second stats and connections)."""
        for watcher in self._watchers:
            watcher.push(name, data)
