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
        drop_report: makes the item that says ``count`` items were dropped.
        max_bytes: the most bytes waiting; past that, ``put`` drops and counts.
        batch_items: the most items in one batch.
        batch_bytes: the most bytes in one batch (a single larger item goes alone).
        retry: retry a failed batch (True) or count it as dropped (False).
        stderr: where notices go; ``sys.stderr`` at the time of writing when None.
    """

    def __init__(
        self,
        name: str,
        deliver: Callable[[Sequence[T]], None],
        *,
        size: Callable[[T], int],
        drop_report: Callable[[int], T],
        max_bytes: int,
        batch_items: int = 1_000_000,
        batch_bytes: int = 1 << 62,
        retry: bool = False,
        stderr: TextIO | None = None,
    ) -> None:
        self.name = name
        self._deliver = deliver
        self._size = size
        self._drop_report = drop_report
        self._max_bytes = max_bytes
        self._batch_items = batch_items
        self._batch_bytes = batch_bytes
        self._retry = retry
        self._stderr = stderr
        # The items alone (no per-item size tuple): a whole-queue batch needs no sizes, a partial
        # one asks ``size`` again.
        self._items: deque[T] = deque()
        self._bytes = 0
        self._dropped = 0
        self._dropped_total = 0
        self._failing: str | None = None
        self._busy = False
        self._in_flight = 0  # the batch being delivered, for close()'s count of what is left
        # The thread waits for items (``put`` must wake it); False while it delivers.
        self._idle = False
        self._closed = False  # the output is gone
        self._closing = False  # close() was called
        self._lock = threading.Lock()  # never re-entered: a plain lock is cheaper than an RLock
        self._condition = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        """Items dropped since the drain was made (reported or not)."""
        with self._condition:
            return self._dropped_total

    @property
    def closed(self) -> bool:
        """Whether the output went away for good."""
        with self._condition:
            return self._closed

    def put(self, item: T) -> None:
        """Queue ``item``, or drop and count it when the queue is full. Never blocks."""
        size = self._size(item)
        # acquire/release rather than ``with``: the context manager's calls cost more than the
        # rest of ``put`` (a ``try`` costs nothing until something raises).
        lock = self._lock  # the condition's lock, without Condition.__enter__'s Python frame
        lock.acquire()
        try:
            if self._closed or self._closing:
                return
            if self._bytes + size > self._max_bytes:
                self._dropped += 1
                self._dropped_total += 1
                return
            self._items.append(item)
            self._bytes += size
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"aws-iot-mock log: {self.name}", daemon=True
                )
                self._thread.start()
            elif self._idle:
                # Wake the thread only when it waits for work: a busy one takes everything
                # queued when its delivery ends. A wake-up per item would make it fight the
                # event loop for the GIL once per log line.
                self._idle = False
                self._condition.notify_all()
        finally:
            lock.release()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued has been delivered (or dropped).

        Returns:
            True when the queue emptied within ``timeout`` seconds.
        """
        with self._condition:
            return self._condition.wait_for(
                lambda: self._closed or (not self._items and not self._busy), timeout=timeout
            )

    def close(self, grace: float = 2.0) -> bool:
        """Deliver what is queued, waiting at most ``grace`` seconds. Idempotent.

        Returns:
            True when the thread finished (a thread stuck on a paused pipe is left behind: it is
            a daemon and holds at most ``max_bytes``).
        """
        with self._condition:
            self._closing = True
            self._condition.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(grace)
        if not thread.is_alive():
            return True
        with self._condition:
            left = len(self._items) + self._in_flight
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
                    while not (self._items or self._closing):
                        self._idle = True
                        self._condition.wait()
                    self._idle = False
                    if not self._items:
                        self._condition.notify_all()
                        return  # closing, and everything is delivered
                    batch = self._take()
                self._busy = True
                self._in_flight = len(batch)
            try:
                self._deliver(batch)
            except OutputClosed as exc:
                self._gone(str(exc))
                return
            except Exception as exc:
                self._failed(exc, len(batch))
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
                    self._dropped += len(batch)
                    self._dropped_total += len(batch)
            else:
                pause = _RETRY_FIRST
                self._recovered()
            batch = []
            with self._condition:
                self._busy = False
                self._in_flight = 0
                self._condition.notify_all()

    def _take(self) -> list[T]:
        """Pop the next batch (the lock is held)."""
        if len(self._items) <= self._batch_items and self._bytes <= self._batch_bytes:
            # Everything fits (always, for a stream): no per-item loop while holding the GIL
            # and the lock the event loop's ``put`` needs.
            batch = list(self._items)
            self._items.clear()
            self._bytes = 0
            return batch
        batch = []
        taken = 0
        while self._items and len(batch) < self._batch_items:
            item = self._items[0]
            size = self._size(item)
            if batch and taken + size > self._batch_bytes:
                break
            self._items.popleft()
            self._bytes -= size
            taken += size
            batch.append(item)
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
                self._bytes += self._size(report)
        if dropped:
            self._notice(
                f"{dropped} log record(s) were dropped at {self.name}: it did not keep up (a "
                "paused or slow reader, a stuck log shipper, a slow disk or endpoint)"
            )

    def _gone(self, why: str) -> None:
        with self._condition:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._busy = False
            self._condition.notify_all()
        self._notice(f"{self.name} is closed ({why}): log records are no longer written there")

    def _notice(self, text: str) -> None:
        """One line on stderr (never raises: stderr may be a closed pipe too)."""
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):
            stream.write(f"aws-iot-mock: {text}\n")
            stream.flush()
