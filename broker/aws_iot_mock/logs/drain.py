"""A bounded queue emptied by its own thread: how every log output stays off the event loop.

``Drain.put`` never blocks and never raises: it appends to a queue bounded in bytes, or, when the
queue is full, drops the item and counts it. A thread hands the queue, in batches, to the
output's ``deliver`` callable (a write to stdout, to a file, a ``PutLogEvents`` call). When a
delivery succeeds after drops, the drain queues one item saying how many were dropped (made by
``drop_report``) and says so on stderr, so the gap is visible where the records go.

A delivery may fail in two ways. ``OutputClosed`` means for good (a pipe whose reader went away):
the drain stops, says so once, and drops whatever is put afterwards without counting. Any other
exception is a passing failure (a full disk, an endpoint that is down): it is said once per
episode; the batch is retried after a pause when the drain was built with ``retry=True`` (a
network call that either happened or not), else counted as dropped (a stream write that may have
half happened must not be repeated).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from threading import get_ident
from typing import Generic, TextIO, TypeVar

__all__ = ["Drain", "OutputClosed"]

T = TypeVar("T")

# Pause between retries of a failed delivery: short at first, then at most this long.
_RETRY_FIRST = 0.2
_RETRY_MAX = 5.0


class OutputClosed(Exception):
    """Raised by ``deliver`` when the output is gone for good (its reader went away)."""


class Drain(Generic[T]):
    """A queue bounded in bytes, delivered in batches by a daemon thread.

    Args:
        name: what the output is, for stderr notices ("standard output", a path, a log group).
        deliver: called on the drain's thread with a non-empty batch, in queue order; raises
            ``OutputClosed`` when the output is gone, any other exception when it fails now.
        size: the bytes an item counts for (against ``max_bytes`` and ``batch_bytes``).
        count: the records an item holds, for the counts of dropped and undelivered records (a
            log stream's item may be several lines written together); one each when None.
        drop_report: makes the item that says ``count`` items were dropped.
        max_bytes: the most bytes waiting; past that, ``put`` drops and counts.
        batch_items: the most items in one batch.
        batch_bytes: the most bytes in one batch (a single larger item goes alone).
        retry: retry a failed batch (True) or count it as dropped (False).
        stderr: where notices go; ``sys.stderr`` at the time of writing when None.
        linger: seconds the thread waits after a delivery before it takes the next batch
            (``flush`` and ``close`` cut the wait short). Under a steady stream of items the
            thread then wakes once per ``linger`` with a large batch instead of once per
            handful of items: each wake-up costs the event loop a GIL hand-over. An item put
            while the thread is idle still wakes it at once.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[Sequence[T]], None],
        *,
        size: Callable[[T], int],
        count: Callable[[T], int] | None = None,
        drop_report: Callable[[int], T],
        max_bytes: int,
        batch_items: int = 1_000_000,
        batch_bytes: int = 1 << 62,
        retry: bool = False,
        stderr: TextIO | None = None,
        linger: float = 0.0,
    ) -> None:
        self.name = name
        self._linger = linger
        self._deliver = deliver
        self._size = size
        self._count = count
        self._drop_report = drop_report
        self._max_bytes = max_bytes
        self._batch_items = batch_items
        self._batch_bytes = batch_bytes
        self._retry = retry
        self._stderr = stderr
        # The items alone (no per-item size tuple): the thread asks ``size`` again when it takes
        # them. One thread, the first to put (the event loop's), puts without the lock: a
        # ``deque.append`` is atomic under the GIL, and the bytes waiting are counted in three
        # parts, each written by one side only (the owner; other threads, under the lock; the
        # drain's thread), so no update is lost. A lock per log line would cost the event loop
        # more than the rest of ``put``.
        self._items: deque[T] = deque()
        self._owner: int | None = None
        self._owner_bytes = 0
        self._other_bytes = 0
        self._taken_bytes = 0
        self._dropped = 0
        self._dropped_total = 0
        self._failing: str | None = None
        self._busy = False
        # The batch being delivered, for close()'s count of what is left.
        self._in_flight: Sequence[T] = ()
        # The thread waits for items (``put`` must wake it); False while it delivers.
        self._idle = False
        self._flushing = 0  # threads waiting in flush(): the thread does not linger
        self._closed = False  # the output is gone
        self._closing = False  # close() was called
        self._refusing = False  # either: put drops without counting
        self._lock = threading.Lock()  # never re-entered: a plain lock is cheaper than an RLock
        self._condition = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Records dropped since the drain was made (reported or not)."""
        with self._condition:
            return self._dropped_total

    @property
    def closed(self) -> bool:
        """Whether the output went away for good."""
        with self._condition:
            return self._closed

    def put(self, item: T) -> None:
        """Queue ``item``, or drop and count it when the queue is full. Never blocks."""
        if self._refusing:
            return
        size = self._size(item)
        if get_ident() != self._owner:
            self._put_locked(item, size)
            return
        if self._owner_bytes + self._other_bytes - self._taken_bytes + size > self._max_bytes:
            self._drop(self._records(item))
            return
        self._items.append(item)
        self._owner_bytes += size
        if self._idle:
            self._wake()

    def put_many(self, items: Sequence[T]) -> None:
        """``put`` each of ``items`` in order, at the cost of about one ``put``. Never blocks."""
        if self._refusing or not items:
            return
        if get_ident() != self._owner:
            for item in items:
                self.put(item)
            return
        size = sum(map(self._size, items))
        if self._owner_bytes + self._other_bytes - self._taken_bytes + size > self._max_bytes:
            for item in items:  # the first ones that fit go in, the rest are dropped
                self.put(item)
            return
        self._items.extend(items)
        self._owner_bytes += size
        if self._idle:
            self._wake()

    def _put_locked(self, item: T, size: int) -> None:
        """``put`` from a thread other than the owner (the first one to put becomes it)."""
        with self._condition:
            if self._refusing:
                return
            me = get_ident()
            if self._owner is None:
                self._owner = me
            if self._owner_bytes + self._other_bytes - self._taken_bytes + size > self._max_bytes:
                records = self._records(item)
                self._dropped += records
                self._dropped_total += records
                return
            self._items.append(item)
            if me == self._owner:
                self._owner_bytes += size
            else:
                self._other_bytes += size
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"aws-iot-mock log: {self.name}", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._idle = False
                self._condition.notify_all()

    def _drop(self, records: int) -> None:
        with self._condition:
            self._dropped += records
            self._dropped_total += records

    def _records(self, item: T) -> int:
        """The records ``item`` holds (``count``; asked only when items are dropped or left)."""
        return 1 if self._count is None else self._count(item)

    def _records_in(self, items: Sequence[T] | deque[T]) -> int:
        return len(items) if self._count is None else sum(map(self._count, items))

    def _wake(self) -> None:
        # Only when the thread waits for work: a busy one takes everything queued when its
        # delivery ends. A wake-up per item would make it fight the event loop for the GIL
        # once per log line.
        with self._condition:
            if self._idle:
                self._idle = False
                self._condition.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued has been delivered (or dropped).

        Returns:
            True when the queue emptied within ``timeout`` seconds.
        """
        with self._condition:
            self._flushing += 1
            try:
                self._condition.notify_all()  # a lingering thread delivers at once
                return self._condition.wait_for(
                    lambda: self._closed or (not self._items and not self._busy),
                    timeout=timeout,
                )
            finally:
                self._flushing -= 1

    def close(self, grace: float = 2.0) -> bool:
        """Deliver what is queued, waiting at most ``grace`` seconds. Idempotent.

        Returns:
            True when the thread finished (a thread stuck on a paused pipe is left behind: it is
            a daemon and holds at most ``max_bytes``).
        """
        with self._condition:
            self._closing = self._refusing = True
            self._condition.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(grace)
        if not thread.is_alive():
            return True
        with self._condition:
            left = self._records_in(self._items) + self._records_in(self._in_flight)
        if left:
            # The process is about to exit and take the daemon thread with it: say what is
            # lost rather than lose it silently.
            self._notice(
                f"{left} log record(s) not written to {self.name}: it did not take them "
                f"within {grace:g} s of shutdown"
            )
        return False

    # -- the drain's thread ---------------------------------------------------------------

    def _run(self) -> None:
        pause = _RETRY_FIRST
        batch: list[T] = []
        while True:
            with self._condition:
                if not batch:
                    # Idle before looking: the owner appends without the lock, then wakes the
                    # thread if it sees it idle; an item appended after this look sees it so.
                    self._idle = True
                    while not (self._items or self._closing):
                        self._condition.wait()
                    self._idle = False
                    if not self._items:
                        self._condition.notify_all()
                        return  # closing, and everything is delivered
                    batch = self._take()
                self._busy = True
                self._in_flight = batch
            try:
                self._deliver(batch)
            except OutputClosed as exc:
                self._gone(str(exc))
                return
            except Exception as exc:
                records = self._records_in(batch)
                self._failed(exc, records)
                if self._retry:
                    with self._condition:
                        if self._closing:
                            self._busy = False
                            self._condition.notify_all()
                            return  # stopping: the endpoint had its chance
                        # Still busy: flush() waits for this batch too.
                        self._condition.wait(pause)
                    pause = min(pause * 2, _RETRY_MAX)
                    continue
                with self._condition:
                    self._dropped += records
                    self._dropped_total += records
            else:
                pause = _RETRY_FIRST
                self._recovered()
            batch = []
            with self._condition:
                self._busy = False
                self._in_flight = ()
                self._condition.notify_all()
                if self._linger and not (self._closing or self._flushing):
                    # Not idle: puts meanwhile queue without waking the thread (see linger).
                    self._condition.wait(self._linger)

    def _take(self) -> list[T]:
        """Pop the next batch (the lock is held; the owner may append meanwhile)."""
        items = self._items
        batch = [items.popleft() for _ in range(min(len(items), self._batch_items))]
        taken = sum(map(self._size, batch))
        if taken > self._batch_bytes and len(batch) > 1:
            # Too many bytes (CloudWatch Logs' batch limit; never for a stream): the rest goes
            # back in front, in order.
            taken = 0
            for index, item in enumerate(batch):
                size = self._size(item)
                if index and taken + size > self._batch_bytes:
                    items.extendleft(reversed(batch[index:]))
                    del batch[index:]
                    break
                taken += size
        self._taken_bytes += taken
        return batch

    def _failed(self, exc: Exception, count: int) -> None:
        reason = str(exc) or type(exc).__name__
        if self._failing is None:
            self._failing = reason
            then = "retried" if self._retry else "dropped"
            self._notice(
                f"cannot write the log to {self.name}: {reason}; {count} record(s) {then} "
                "until it works again"
            )

    def _recovered(self) -> None:
        if self._failing is not None:
            self._failing = None
            self._notice(f"the log works again at {self.name}")
        with self._condition:
            dropped, self._dropped = self._dropped, 0
            if dropped:
                # Past the bound on purpose: the report is what says the bound was hit.
                report = self._drop_report(dropped)
                self._items.append(report)
                self._other_bytes += self._size(report)
        if dropped:
            self._notice(
                f"{dropped} log record(s) were dropped at {self.name}: it did not keep up (a "
                "paused or slow reader, a stuck log shipper, a slow disk or endpoint)"
            )

    def _gone(self, why: str) -> None:
        with self._condition:
            self._closed = self._refusing = True
            self._taken_bytes += sum(map(self._size, self._items))
            self._items.clear()
            self._busy = False
            self._condition.notify_all()
        self._notice(f"{self.name} is closed ({why}): log records are no longer written there")

    def _notice(self, text: str) -> None:
        """One line on stderr (never raises: stderr may be a closed pipe too)."""
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):
            stream.write(f"aws-iot-mock: {text}\n")
            stream.flush()
