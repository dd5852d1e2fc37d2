"""Where AWSIotLogsV2 records go: stdout, an append-only JSON-lines file, and in-process listeners.

Every record is one ``json.dumps`` line. Records below the configured level are not written, as
AWS IoT's log level works: each level includes everything more severe.

Logging never blocks or breaks the broker. ``emit`` runs on the event loop, so it only calls the
listeners (synchronously: tests and the pytest plugin see every record at once) and hands the line
to each output's ``Drain`` (``logs.drain``): a queue bounded in bytes that a thread of its own
writes out. On the thread of a running event loop the lines of one loop iteration are collected
in a list and handed to the outputs together by a callback the loop runs on its next pass (a
``put`` per line costs more than building the line); ``flush`` and ``close`` hand over what is
collected at once. Lines from other threads go to the outputs directly. When an output does not
keep up (``make run | less`` paused, a stuck log shipper, a full disk), its queue fills and
further lines are dropped and counted; once it catches up it writes one record saying how many
were dropped (``LOG_RECORDS_DROPPED``), and says so on stderr.
Each output has its own queue, so a paused stdout does not cost the file a line. A stdout whose
reader went away (``make run | head``: ``EPIPE``) is disabled with one line on stderr; the file,
if any, and the listeners carry on.

The file is created with mode 0600 (log lines name clients, topics and source addresses) and
opened in append mode, so ``tail -f`` and ``jq`` read it while the broker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from pathlib import Path
from threading import get_ident
from time import time_ns
from typing import IO, Protocol, TextIO

from aws_iot_mock.logs.cloudwatch import (
    SUCCESS_TAILS,
    TRACE_SUFFIXES,
    ConnectionFacts,
    EventType,
    LogLevel,
    Reason,
    broker_record,
    head_of,
    new_success_tail,
    record_level,
    record_line,
    refill_trace_suffixes,
    success_line,
    success_logger,
    trace_suffix_block,
)
from aws_iot_mock.logs.drain import Drain, OutputClosed

__all__ = ["DEFAULT_BUFFER_BYTES", "LogOutput", "LogSink"]

LogListener = Callable[[Mapping[str, object]], None]

# Bytes of log lines that may wait for the writer thread. A line is at most a few KiB (client
# strings are capped in ``cloudwatch``), so this holds a few thousand records: a burst rides it
# out, a stopped reader costs at most this much memory.
DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024
_INFO = int(LogLevel.INFO)
# How long ``close`` waits for each output to finish what is queued (a paused pipe never will).
_CLOSE_GRACE = 2.0
# How long a stream's writer thread waits after writing before it takes the next lines: under
# load it then writes a few hundred lines per wake-up (each wake-up takes the GIL from the event
# loop); a quiet broker's line is still written at once, and ``flush``/``close`` do not wait.
_STREAM_LINGER = 0.01


class LogOutput(Protocol):
    """Somewhere lines go without blocking the caller (a ``Drain`` of lines, CloudWatch Logs)."""

    name: str

    @property
    def dropped(self) -> int:
        """Lines dropped since the output was made."""

    def put(self, item: str) -> None:
        """Queue one JSON line (with its newline); never blocks, never raises."""

    def put_many(self, items: Sequence[str]) -> None:
        """Queue JSON lines, in order, as ``put`` does each."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what is queued has gone out; False on timeout."""

    def close(self, grace: float = 2.0) -> bool:
        """Deliver what is queued within ``grace`` seconds; False when left behind."""


class LogSink:
    """Writes AWSIotLogsV2 records as JSON lines, off the event loop.

    Args:
        level: the most verbose level written (``DISABLED`` writes nothing to stdout or the file;
            listeners still see every record emitted, so tests can assert on refusals
            regardless). The broker does not build INFO records at all when the level is below
            INFO, so listeners then see failures only.
        file: path of the JSON-lines file, created (mode 0600) with its parent directories
            (mode 0700); None for none.
        stdout: whether to write lines to standard output too.
        stream: the stream used for ``stdout`` (tests pass their own).
        account_id: the ``accountId`` of the sink's own records (``LOG_RECORDS_DROPPED``).
        buffer_bytes: how many bytes of lines may wait for each output; past that, lines are
            dropped and counted.
        stderr: where the sink's own notices go (a closed stdout, dropped records).
    """

    def __init__(
        self,
        level: LogLevel = LogLevel.INFO,
        *,
        file: Path | None = None,
        stdout: bool = True,
        stream: TextIO | None = None,
        account_id: str = "",
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        stderr: TextIO | None = None,
    ) -> None:
        self._level = level
        self.account_id = account_id
        self._stderr = stderr
        self._buffer_bytes = buffer_bytes
        self._outputs: list[LogOutput] = []
        self._streams: list[LogOutput] = []
        self._files: list[IO[str]] = []
        # The file first: a reader that saw a line on stdout finds it in the file too.
        if file is not None:
            opened = _open_private(file)
            self._files.append(opened)
            self._outputs.append(self._stream_drain(str(file), opened))
        out = stream if stream is not None else (sys.stdout if stdout else None)
        if out is not None:
            self._outputs.append(self._stream_drain("standard output", out))
        self._listeners: tuple[LogListener, ...] = ()
        # The recent records (``keep_recent``): each item with how many records it holds (a
        # text of several success lines holds several), and their total, kept near ``count``.
        self._recent: deque[tuple[str | Mapping[str, object], int]] | None = None
        self._recent_count = 0
        self._recent_records = 0
        self._closed = False
        # What ``emit`` needs per record, kept current by ``_arm``: the most verbose level
        # written (0: nothing is) and each output's ``put``.
        self._threshold = 0
        self._puts: tuple[Callable[[str], None], ...] = ()
        self._put_manys: tuple[Callable[[Sequence[str]], None], ...] = ()
        # Text of the current event-loop iteration (whole lines, or several lines in one
        # string), handed over by ``_hand_over``, which ``_scheduled`` says the loop will run;
        # only the ``_owner`` thread (the first that emitted with a running loop) adds to them.
        self._pending: list[str] = []
        self._scheduled = False
        # The success lines of the iteration's current millisecond, not yet formatted: the
        # text after each one's trace ID (see ``emit_success``). ``_close_segment`` formats
        # them into one string at the end of the millisecond, the iteration, or before any
        # other line.
        self._segment: list[str] = []
        self._segment_millis = -1
        self._suffixes: list[str] = []  # trace-ID endings for the segments, taken from the end
        self._owner: int | None = None
        self._owner_loop: asyncio.AbstractEventLoop | None = None
        self._owner_lock = threading.Lock()
        self._emit_record = success_logger(self.emit)  # emit_success, when listeners want it
        self._arm()

    @property
    def level(self) -> LogLevel:
        """The most verbose level written to the outputs."""
        return self._level

    @level.setter
    def level(self, level: LogLevel) -> None:
        self._level = level
        self._arm()

    def _arm(self) -> None:
        written = bool(self._outputs) and not self._closed
        self._threshold = int(self._level) if written else 0
        # emit_success's fast path: the line is all there is (no listener wants the record).
        self._lines_only = self._threshold >= _INFO and not self._listeners
        self._puts = tuple(output.put for output in self._outputs)
        # The sink's own streams take several lines in one string; other outputs (CloudWatch
        # Logs: an event per line) get them one by one.
        self._put_manys = tuple(
            output.put_many if output in self._streams else _line_by_line(output)
            for output in self._outputs
        )

    @property
    def dropped(self) -> int:
        """Lines dropped by any output since the sink was made."""
        return sum(output.dropped for output in self._outputs)

    def add_output(self, output: LogOutput) -> None:
        """Send every line written from now on to ``output`` too (CloudWatch Logs)."""
        self._outputs.append(output)
        self._arm()

    def drop_report_line(self, count: int) -> str:
        """The JSON line saying ``count`` lines were dropped (``LOG_RECORDS_DROPPED``)."""
        details = (
            f"{count} log record(s) were dropped: the log output did not keep up (a paused or "
            "slow reader, a stuck log shipper, a slow disk or endpoint)"
        )
        record = broker_record(
            self.account_id, Reason.LOG_RECORDS_DROPPED, details, level=LogLevel.WARN
        )
        return record_line(record)

    def add_listener(self, listener: LogListener) -> None:
        """Call ``listener(record)`` for every record, whatever the level."""
        # A new tuple, never changed in place: ``emit`` iterates it without a copy per record,
        # and a listener that adds or removes listeners does not disturb that iteration.
        self._listeners = (*self._listeners, listener)
        self._arm()

    def remove_listener(self, listener: LogListener) -> None:
        """Stop calling ``listener``."""
        listeners = list(self._listeners)
        listeners.remove(listener)
        self._listeners = tuple(listeners)
        self._arm()

    def keep_recent(self, count: int) -> None:
        """Keep the last ``count`` records from now on, whatever the level, for ``take_recent``.

        What a listener appending to a bounded deque would keep (the console's backlog before
        the console is built), without building a record per message: ``emit_success`` keeps
        its line (in one text with the other success lines of its millisecond), which
        ``take_recent`` parses back only if asked.
        """
        self._recent = deque()
        self._recent_count = count
        self._recent_records = 0
        self._arm()

    def take_recent(self) -> list[Mapping[str, object]]:
        """The records kept since ``keep_recent``, oldest first; stops keeping them.

        Called on the event loop's thread, or once it stopped: from another thread, the success
        lines of the loop's current iteration (not formatted yet) are not among them.
        """
        if self._segment and get_ident() == self._owner:
            self._close_segment()
        recent, self._recent = self._recent, None
        self._arm()
        if recent is None:
            return []
        # A line is its record's ``json.dumps``: ``json.loads`` gives back an equal dict, in
        # the same order. A text of several success lines (``_close_segment``) counts as one
        # item of the deque: its lines are cut to ``count`` here.
        records: list[Mapping[str, object]] = []
        for item, _ in recent:
            if isinstance(item, str):
                records.extend(json.loads(line) for line in item[:-1].split("\n"))
            else:
                records.append(item)
        return records[-self._recent_count :] if self._recent_count else []

    def _keep(self, item: str | Mapping[str, object], records: int = 1) -> None:
        """Add ``item`` (holding ``records``) to the recent ones; forget the oldest past count.

        Never more than ``count`` records plus one item's are kept.
        """
        recent = self._recent
        if recent is None:
            return
        recent.append((item, records))
        self._recent_records += records
        while len(recent) > 1 and self._recent_records - recent[0][1] >= self._recent_count:
            self._recent_records -= recent.popleft()[1]

    def emit(self, record: Mapping[str, object]) -> None:
        """Hand ``record`` to the listeners, and queue its line if its level is enabled.

        Never blocks on the outputs and never raises because of them.
        """
        for listener in self._listeners:
            listener(record)
        if self._recent is not None:
            if self._segment and get_ident() == self._owner:
                self._close_segment()  # the lines before it come first in the backlog too
            self._keep(record)
        threshold = self._threshold
        if not threshold:
            return
        # Serialised once, whatever the number of outputs. A record that carries its line is an
        # unchanged ``LogRecord``: an INFO record (see ``event_success``).
        line = getattr(record, "line", None)
        if line is None:
            if record_level(record) > threshold:
                return
            line = record_line(record)
        elif threshold < _INFO:
            return
        self._append(line)

    def emit_success(
        self,
        event_type: EventType,
        facts: ConnectionFacts,
        topic_name: str | None,
        retain: bool,
        trace_id: str | None,
    ) -> None:
        """``emit(event_success(...))`` (a ``SuccessLog``): two per message at INFO.

        The record is built only for listeners; with none, its line is all there is to write.
        On the event loop's thread, the line is not even built here: its millisecond and the
        text after its trace ID (cached per connection, event type and topic) are, and the
        lines of one millisecond are formatted together, with one ``str.join``, when the
        millisecond or the loop iteration ends (``_close_segment``).
        """
        if self._lines_only and not (retain or trace_id):
            cached = SUCCESS_TAILS.get((id(facts), event_type._value_, topic_name))
            if cached is None or cached[0] is not facts:
                cached = new_success_tail(facts, event_type, topic_name)
            millis = time_ns() // 1_000_000
            if millis == self._segment_millis and get_ident() == self._owner:
                self._segment.append(cached[1])
            else:
                self._start_segment(millis, cached[1])
            return
        if self._listeners:
            self._emit_record(event_type, facts, topic_name, retain, trace_id)
            return
        threshold = self._threshold
        recent = self._recent
        if threshold < _INFO and recent is None:
            return
        line = success_line(event_type, facts, topic_name, retain, trace_id)
        if recent is not None:
            if self._segment and get_ident() == self._owner:
                self._close_segment()  # the lines before it come first in the backlog too
            self._keep(line)
        if threshold >= _INFO:
            self._append(line)

    def _append(self, line: str) -> None:
        """Queue ``line``: after what the loop iteration has collected when there is some."""
        if self._scheduled and get_ident() == self._owner:
            if self._segment:
                self._close_segment()
            self._pending.append(line)
        else:
            self._queue(line)

    def _start_segment(self, millis: int, tail: str) -> None:
        """Collect a success line of a new millisecond (``emit_success``), or queue it now."""
        if self._collecting():
            if self._segment:
                self._close_segment()
            self._segment_millis = millis
            self._segment = [tail]
            return
        # Another thread, or no running loop: the line, whole, goes to the outputs now.
        try:
            trace = TRACE_SUFFIXES.pop()
        except IndexError:
            trace = refill_trace_suffixes()
        line = f"{head_of(millis)}{trace}{tail}"
        if self._recent is not None:
            self._keep(line)
        for put in self._puts:
            put(line)

    def _close_segment(self) -> None:
        """Format the collected success lines into one string, appended to ``_pending``."""
        tails = self._segment
        count = len(tails)
        self._segment = []
        head = head_of(self._segment_millis)
        self._segment_millis = -1
        suffixes = self._suffixes
        while len(suffixes) < count:
            suffixes.extend(trace_suffix_block())
        # The pool's last ``count`` endings, each used once (then removed).
        taken = suffixes[-count:]
        del suffixes[-count:]
        # head + ending + tail, line after line, in C: no string per line.
        text = "".join(chain.from_iterable(zip(repeat(head), taken, tails)))
        self._pending.append(text)
        if self._recent is not None:
            self._keep(text, count)

    def _collecting(self) -> bool:
        """Whether this thread collects lines for its loop's next ``_hand_over`` (scheduled).

        True on the owner's thread (the first thread to emit with a running loop becomes the
        owner) while its loop runs; the first line of an iteration schedules the hand-over.
        """
        me = get_ident()
        if self._owner is None:
            with self._owner_lock:  # once: two loops' threads must not both own the lines
                if self._owner is None and asyncio.events._get_running_loop() is not None:
                    self._owner = me
        if self._owner != me:
            return False
        if self._scheduled:
            return True
        loop = asyncio.events._get_running_loop()
        if loop is None:
            return False
        self._owner_loop = loop
        loop.call_soon(self._hand_over)
        self._scheduled = True
        return True

    def _queue(self, line: str) -> None:
        """Queue ``line`` when ``emit`` cannot just append it to the iteration's lines.

        The first line of an iteration on the owner's thread starts the iteration's lines and
        asks the loop to hand them over (``_collecting``); any other line goes to the outputs
        now.
        """
        if self._collecting():
            self._append(line)
            return
        for put in self._puts:
            put(line)

    def _hand_over(self) -> None:
        """Give the lines collected on the owner's thread to the outputs (on that thread)."""
        self._scheduled = False
        if self._segment:
            self._close_segment()
        lines = self._pending
        if lines:
            self._pending = []
            for put_many in self._put_manys:
                put_many(lines)

    def _hand_over_now(self, timeout: float) -> None:
        """``_hand_over`` from any thread: through the owner's loop while it runs."""
        if not (self._pending or self._segment):
            return
        loop = self._owner_loop
        if get_ident() == self._owner or loop is None or not loop.is_running():
            self._hand_over()
            return
        handed = threading.Event()

        def hand_over() -> None:
            self._hand_over()
            handed.set()

        try:
            loop.call_soon_threadsafe(hand_over)
        except RuntimeError:  # closed meanwhile: its thread no longer collects lines
            self._hand_over()
            return
        handed.wait(timeout)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued line has been written (or dropped).

        Returns:
            True when every output drained within ``timeout`` seconds.
        """
        self._hand_over_now(timeout)
        return all([output.flush(timeout) for output in self._outputs])

    def close(self) -> None:
        """Write what is queued (waiting a couple of seconds at most), then close the file.

        Idempotent. An output stuck on a paused pipe is left behind (a daemon thread).
        """
        if self._closed:
            return
        self._hand_over_now(_CLOSE_GRACE)
        self._closed = True
        self._arm()
        finished = all([output.close(_CLOSE_GRACE) for output in self._outputs])
        if not finished:
            return  # closing a file under a writer would only move the failure there
        for opened in self._files:
            with contextlib.suppress(OSError):
                opened.close()

    def _stream_drain(self, name: str, stream: IO[str]) -> Drain[str]:
        def deliver(lines: Sequence[str]) -> None:
            _write(stream, "".join(lines))

        drain: Drain[str] = Drain(
            name,
            deliver,
            size=len,
            count=_lines_in,
            drop_report=self.drop_report_line,
            max_bytes=self._buffer_bytes,
            stderr=self._stderr,
            linger=_STREAM_LINGER,
        )
        self._streams.append(drain)
        return drain


def _lines_in(text: str) -> int:
    """How many lines ``text`` holds (a JSON line has no other newline: JSON escapes them)."""
    return text.count("\n")


def _line_by_line(output: LogOutput) -> Callable[[Sequence[str]], None]:
    """``output.put_many`` for texts that may hold several lines: it gets one line each."""

    def put_many(texts: Sequence[str]) -> None:
        output.put_many([f"{line}\n" for text in texts for line in text[:-1].split("\n")])

    return put_many


def _write(stream: IO[str], text: str) -> None:
    """Write and flush ``text``; ``OutputClosed`` when the reader went away or it was closed."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError as exc:
        _silence(stream)
        raise OutputClosed("its reader went away") from exc
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _silence(stream)
            raise OutputClosed("its reader went away") from exc
        raise
    except ValueError as exc:  # written to after being closed (a test closed its stream)
        raise OutputClosed("it was closed") from exc


def _open_private(path: Path) -> IO[str]:
    """Open ``path`` for appending, created with mode 0600 (and 0600 if it existed)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)  # a directory made for the log is private (mkdir obeys umask)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with contextlib.suppress(OSError):  # a file we cannot chmod (not ours) is still writable
        os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "a", encoding="utf-8")


def _silence(stream: IO[str]) -> None:
    """Point a closed pipe's descriptor at /dev/null.

    The stream's buffer still holds the line that failed; without this, Python's flush of
    ``sys.stdout`` at exit would print a ``BrokenPipeError`` traceback to stderr.
    """
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, descriptor)
        finally:
            os.close(null)
