"""The log sink over real pipes: a paused reader, a reader gone, capped client strings.

Logging must never block or break the broker (issue 11): ``emit`` runs on the event loop, so it
only queues; each output's thread writes. These tests write to real OS pipes, as ``make run |
less`` or ``| head`` would give the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from aws_iot_mock.logs.cloudwatch import (
    CLIENT_TEXT_MAX,
    ConnectionFacts,
    EventType,
    LogLevel,
    Reason,
    connect_failure,
    event_failure,
    record_line,
    success_line,
)
from aws_iot_mock.logs.drain import Drain
from aws_iot_mock.logs.sink import LogSink
from aws_iot_mock.tls.verdicts import check_sni

BUFFER = 64 * 1024
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"


def _record(index: int) -> dict[str, object]:
    facts = ConnectionFacts(
        account_id="123456789012",
        client_id=f"device-{index}",
        principal_id=None,
        source_ip="127.0.0.1",
        source_port=40000 + index % 20000,
    )
    return event_failure(
        EventType.PUBLISH_IN, Reason.AUTHORIZATION_FAILURE, "x" * 200, facts, topic_name="t/1"
    )


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    try:
        yield read, write
    finally:
        for fd in (write, read):  # the writer first: a reader still running sees EOF
            with contextlib.suppress(OSError):
                os.close(fd)


FILLER = "#" * 63 + "\n"


def _fill(fd: int) -> None:
    """Fill the pipe to the last byte with ``FILLER`` lines, so the sink's first write blocks.

    Writes of at most ``PIPE_BUF`` bytes are all or nothing, so the pipe holds whole lines.
    Without this, a batch that still fits in the pipe could complete while the queue overflows
    and report the drops before the reader is back (the drain's rule: report on recovery).
    """
    os.set_blocking(fd, False)
    try:
        for chunk in (FILLER * 64, FILLER):
            with contextlib.suppress(BlockingIOError):
                while True:
                    os.write(fd, chunk.encode())
    finally:
        os.set_blocking(fd, True)


class _Reader(threading.Thread):
    """Reads a pipe to its end, line by line, when told to start."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.stream = os.fdopen(fd, "r", encoding="utf-8", closefd=False)
        self.lines: list[str] = []
        self.seen = threading.Condition()

    def run(self) -> None:
        # The pipe fixture closes the fd at the end of the test, maybe under this thread.
        with contextlib.suppress(OSError, ValueError):
            for line in self.stream:
                with self.seen:
                    self.lines.append(line)
                    self.seen.notify_all()

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        with self.seen:
            self.seen.wait_for(lambda: any(text in line for line in self.lines), timeout)
            return next(line for line in self.lines if text in line)


def test_a_paused_pipe_never_blocks_emit_and_the_drops_are_reported(
    pipe: tuple[int, int],
) -> None:
    read, write = pipe
    _fill(write)
    stderr = io.StringIO()
    sink = LogSink(
        LogLevel.INFO,
        stream=os.fdopen(write, "w", encoding="utf-8", closefd=False),
        buffer_bytes=BUFFER,
        stderr=stderr,
        account_id="123456789012",
    )
    # Nobody reads: the pipe is full and the queue (64 KiB) fills, then lines are dropped.
    # Each emit returns at once all the same; a blocking sink would hang here.
    emitted = 0
    while sink.dropped < 100:
        sink.emit(_record(emitted))
        emitted += 1
        assert emitted < 100_000, "the sink never dropped a line"
    dropped = sink.dropped
    assert "dropped" not in stderr.getvalue()  # not yet: reported once the reader is back

    reader = _Reader(read)
    reader.start()  # the reader resumes
    report = json.loads(reader.wait_for("LOG_RECORDS_DROPPED"))
    assert report["eventType"] == "Broker"
    assert report["accountId"] == "123456789012"
    assert report["details"].startswith(f"{dropped} log record(s) were dropped")
    assert sink.flush()
    written = [json.loads(line) for line in reader.lines if line != FILLER]
    assert len(written) == emitted - dropped + 1  # every line not dropped, and the report
    assert f"{dropped} log record(s) were dropped at standard output" in stderr.getvalue()
    sink.close()


def test_a_reader_that_keeps_up_loses_nothing(pipe: tuple[int, int]) -> None:
    read, write = pipe
    stderr = io.StringIO()
    sink = LogSink(
        LogLevel.INFO,
        stream=os.fdopen(write, "w", encoding="utf-8", closefd=False),
        buffer_bytes=BUFFER,
        stderr=stderr,
    )
    reader = _Reader(read)
    reader.start()
    for index in range(500):
        sink.emit(_record(index))
        if index % 50 == 0:
            assert sink.flush()  # a reader that keeps up: the queue never fills
    assert sink.flush()
    sink.close()
    reader.wait_for('"device-499"')
    assert sink.dropped == 0
    assert len(reader.lines) == 500
    assert stderr.getvalue() == ""


def test_a_closed_pipe_disables_stdout_with_one_line_and_the_file_carries_on(
    pipe: tuple[int, int], tmp_path: Path
) -> None:
    read, write = pipe
    os.close(read)  # `| head -1` has exited
    stderr = io.StringIO()
    log_file = tmp_path / "logs" / "iot.jsonl"
    sink = LogSink(
        LogLevel.INFO,
        file=log_file,
        stream=os.fdopen(write, "w", encoding="utf-8", closefd=False),
        stderr=stderr,
    )
    for index in range(3):
        sink.emit(_record(index))
        assert sink.flush()
    sink.close()
    notices = stderr.getvalue().splitlines()
    assert notices == [
        "aws-iot-mock: standard output is closed (its reader went away): log records are no "
        "longer written there"
    ]
    assert len(log_file.read_text(encoding="utf-8").splitlines()) == 3


def test_an_open_pipe_gets_every_line_and_stderr_nothing(pipe: tuple[int, int]) -> None:
    read, write = pipe
    stderr = io.StringIO()
    sink = LogSink(
        LogLevel.INFO, stream=os.fdopen(write, "w", encoding="utf-8", closefd=False), stderr=stderr
    )
    reader = _Reader(read)
    reader.start()
    for index in range(3):
        sink.emit(_record(index))
    assert sink.flush()
    sink.close()
    reader.wait_for('"device-2"')
    assert len(reader.lines) == 3
    assert stderr.getvalue() == ""


def test_the_log_file_is_private(tmp_path: Path) -> None:
    log_file = tmp_path / "new-dir" / "iot.jsonl"
    sink = LogSink(LogLevel.INFO, file=log_file, stdout=False)
    sink.emit(_record(1))
    assert sink.flush()
    sink.close()
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700


def _facts(client_id: str) -> ConnectionFacts:
    return ConnectionFacts(
        account_id="123456789012",
        client_id=client_id,
        principal_id=None,
        source_ip="127.0.0.1",
        source_port=50000,
    )


def test_a_huge_client_id_is_cut_and_says_so() -> None:
    record = connect_failure(Reason.AUTHORIZATION_FAILURE, "refused", _facts("d" * 60_000))
    client_id = str(record["clientId"])
    assert client_id.startswith("d" * CLIENT_TEXT_MAX)
    assert client_id.endswith(f"... [cut: {60_000 - CLIENT_TEXT_MAX} more characters]")
    assert len(json.dumps(record)) < 2_000


def test_an_ordinary_client_id_is_logged_whole() -> None:
    record = connect_failure(Reason.AUTHORIZATION_FAILURE, "refused", _facts("d" * 128))
    assert record["clientId"] == "d" * 128


def test_a_60_kb_sni_makes_a_short_log_line() -> None:
    refusal = check_sni("x" * 60_000, {ENDPOINT}, require_sni=True)
    assert refusal is not None
    assert refusal.reason is Reason.SNI_MISMATCH
    assert "[cut: " in refusal.details
    assert len(refusal.details) < 1_000


def test_an_ordinary_wrong_sni_is_quoted_whole() -> None:
    refusal = check_sni("wrong.example.com", {ENDPOINT}, require_sni=True)
    assert refusal is not None
    assert refusal.reason is Reason.SNI_MISMATCH
    assert "SNI host_name 'wrong.example.com' is not the endpoint" in refusal.details
    assert "[cut: " not in refusal.details


def _text_drain(deliver: Callable[[Sequence[str]], None], stderr: io.StringIO) -> Drain[str]:
    return Drain(
        "the test output",
        deliver,
        size=len,
        drop_report=lambda count: f"{count} dropped",
        max_bytes=1 << 20,
        stderr=stderr,
    )


def test_records_an_output_does_not_take_by_shutdown_are_counted_on_stderr() -> None:
    stderr = io.StringIO()
    release = threading.Event()

    def stuck(batch: Sequence[str]) -> None:
        release.wait()

    drain = _text_drain(stuck, stderr)
    try:
        for line in ("a", "b", "c"):
            drain.put(line)
        assert drain.close(grace=0.05) is False
        assert stderr.getvalue() == (
            "aws-iot-mock: 3 log record(s) not written to the test output: "
            "it did not take them within 0.05 s of shutdown\n"
        )
    finally:
        release.set()


def test_an_output_that_takes_everything_by_shutdown_says_nothing() -> None:
    stderr = io.StringIO()
    written: list[str] = []
    drain = _text_drain(written.extend, stderr)
    for line in ("a", "b", "c"):
        drain.put(line)
    assert drain.close(grace=5.0) is True
    assert written == ["a", "b", "c"]
    assert stderr.getvalue() == ""


def test_lines_put_from_several_threads_all_arrive_in_each_threads_order() -> None:
    # The first thread to put (here the test's, in the broker the event loop's) puts without
    # the lock; the others take it. Nothing may be lost or reordered within a thread.
    stderr = io.StringIO()
    written: list[str] = []
    drain = _text_drain(written.extend, stderr)

    def put_many(tag: str) -> None:
        for index in range(3000):
            drain.put(f"{tag}{index}")

    put_many("owner-")
    others = [threading.Thread(target=put_many, args=(f"t{n}-",)) for n in range(3)]
    for thread in others:
        thread.start()
    put_many("owner+")
    for thread in others:
        thread.join()
    assert drain.close(grace=5.0) is True
    for tag in ("owner-", "owner+", "t0-", "t1-", "t2-"):
        assert [line for line in written if line.startswith(tag)] == [
            f"{tag}{index}" for index in range(3000)
        ]
    assert len(written) == 5 * 3000
    assert drain.dropped == 0
    assert stderr.getvalue() == ""


def _held_drain(written: list[str]) -> tuple[Drain[str], threading.Event, threading.Event]:
    """A drain of 100 bytes whose delivery waits for ``release`` (``entered`` once it waits)."""
    entered, release = threading.Event(), threading.Event()

    def held(batch: Sequence[str]) -> None:
        entered.set()
        release.wait()
        written.extend(batch)

    drain = Drain(
        "the test output",
        held,
        size=len,
        drop_report=lambda count: f"{count} dropped",
        max_bytes=100,
        stderr=io.StringIO(),
    )
    return drain, entered, release


def test_a_full_queue_drops_from_any_thread_and_reports_once_it_drains() -> None:
    written: list[str] = []
    drain, entered, release = _held_drain(written)
    drain.put("x" * 10)  # the owner; the thread takes it and waits in ``held``
    assert entered.wait(5.0)
    for _ in range(12):
        drain.put("y" * 10)  # 10 fit, 2 dropped
    other = threading.Thread(target=lambda: drain.put("z" * 10))  # dropped too
    other.start()
    other.join()
    assert drain.dropped == 3
    release.set()
    assert drain.flush()
    assert written == ["x" * 10, *["y" * 10] * 10, "3 dropped"]
    drain.close()


def test_put_many_queues_what_fits_in_order_and_drops_the_rest() -> None:
    written: list[str] = []
    drain, entered, release = _held_drain(written)
    drain.put("x" * 10)  # the owner; the thread takes it and waits in ``held``
    assert entered.wait(5.0)
    drain.put_many([f"{index}" * 10 for index in range(4)])  # fits whole
    drain.put_many([f"{index}" * 10 for index in range(4, 12)])  # 6 fit, 2 dropped
    assert drain.dropped == 2
    release.set()
    assert drain.flush()
    assert written == ["x" * 10, *[f"{index}" * 10 for index in range(10)], "2 dropped"]
    drain.close()


def _sink_facts() -> ConnectionFacts:
    return ConnectionFacts("123456789012", "127.0.0.1", 40000, "device-1", "cert-1")


async def test_lines_of_a_loop_iteration_are_written_in_order_after_the_iteration() -> None:
    # On the event loop the sink collects an iteration's lines and hands them over together;
    # a failure record and success lines keep the order they were emitted in.
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    facts = _sink_facts()
    sink.emit_success(EventType.PUBLISH_IN, facts, "t/1", False, None)
    sink.emit(_record(1))
    sink.emit_success(EventType.PUBLISH_OUT, facts, "t/1", False, None)
    sink.emit_success(EventType.PUBLISH_IN, facts, "t/2", True, "trace-1")
    await asyncio.sleep(0)  # the iteration that hands the lines over
    assert sink.flush()
    sink.emit_success(EventType.PUBLISH_OUT, facts, "t/3", False, None)
    assert sink.flush()  # hands over at once: no iteration ran since
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["eventType"], r.get("topicName"), r["status"]) for r in records] == [
        ("Publish-In", "t/1", "Success"),
        ("Publish-In", "t/1", "Failure"),
        ("Publish-Out", "t/1", "Success"),
        ("Publish-In", "t/2", "Success"),
        ("Publish-Out", "t/3", "Success"),
    ]
    assert records[3]["traceId"] == "trace-1"
    assert records[3]["retain"] == "True"
    sink.close()


async def test_close_writes_the_lines_of_the_current_iteration() -> None:
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    for index in range(5):
        sink.emit_success(EventType.PUBLISH_OUT, _sink_facts(), f"t/{index}", False, None)
    sink.close()
    topics = [json.loads(line)["topicName"] for line in stream.getvalue().splitlines()]
    assert topics == [f"t/{index}" for index in range(5)]


def test_flush_from_another_thread_sees_every_line_the_loop_emitted() -> None:
    # The broker's loop in a thread of its own (``IotBrokerThread``), the test's flush in another.
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    loop = asyncio.new_event_loop()
    emitted, flushed = threading.Event(), threading.Event()

    async def emit_then_wait() -> None:
        for index in range(50):
            sink.emit_success(EventType.PUBLISH_OUT, _sink_facts(), f"t/{index}", False, None)
        emitted.set()
        # The lines are handed over by the loop or, if it has not yet, by the flush.
        await asyncio.to_thread(flushed.wait, 10.0)

    thread = threading.Thread(target=loop.run_until_complete, args=(emit_then_wait(),))
    thread.start()
    try:
        assert emitted.wait(10.0)
        assert sink.flush()
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["topicName"] for line in lines] == [
            f"t/{index}" for index in range(50)
        ]
    finally:
        flushed.set()
        thread.join(10.0)
        loop.close()
        sink.close()


def test_a_drain_of_multi_line_texts_counts_dropped_and_left_records_in_lines() -> None:
    # The sink's streams queue several lines in one text: drops and leftovers count lines.
    written: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def held(batch: Sequence[str]) -> None:
        entered.set()
        release.wait()
        written.extend(batch)

    drain: Drain[str] = Drain(
        "the test output",
        held,
        size=len,
        count=lambda text: text.count("\n"),
        drop_report=lambda count: f"{count} dropped\n",
        max_bytes=10,
        stderr=io.StringIO(),
    )
    drain.put("a\n")
    assert entered.wait(5.0)
    drain.put_many(["b\nc\n", "d\ne\nf\ng\nh\ni\nj\nk\n"])  # the second does not fit: 8 lines
    assert drain.dropped == 8
    release.set()
    assert drain.flush()
    assert written == ["a\n", "b\nc\n", "8 dropped\n"]
    drain.close()


async def test_success_lines_formatted_together_are_the_lines_success_line_writes() -> None:
    # Lines of one millisecond are formatted in one join: each is still exactly the line
    # ``success_line`` makes, with a trace ID of its own.
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    publisher, subscriber = _sink_facts(), ConnectionFacts("123456789012", "10.0.0.2", 1, "s")
    for index in range(300):
        sink.emit_success(EventType.PUBLISH_IN, publisher, f"t/{index % 3}", False, None)
        sink.emit_success(EventType.PUBLISH_OUT, subscriber, f"t/{index % 3}", False, None)
    await asyncio.sleep(0)
    assert sink.flush()
    lines = stream.getvalue().splitlines(keepends=True)
    assert len(lines) == 600
    trace_ids = set()
    for index, line in enumerate(lines):
        record = json.loads(line)
        trace_ids.add(record["traceId"])
        facts = publisher if index % 2 == 0 else subscriber
        event = EventType.PUBLISH_IN if index % 2 == 0 else EventType.PUBLISH_OUT
        expected = json.loads(success_line(event, facts, f"t/{index // 2 % 3}", False, None))
        assert list(record) == list(expected)
        assert {**record, "timestamp": "", "traceId": ""} == {
            **expected,
            "timestamp": "",
            "traceId": "",
        }
        assert line == record_line(record)  # byte for byte what json.dumps writes
    assert len(trace_ids) == 600
    sink.close()


class _LineOutput:
    """A ``LogOutput`` that records what ``put_many`` is given (as CloudWatch Logs gets it)."""

    name = "lines"
    dropped = 0

    def __init__(self) -> None:
        self.items: list[str] = []

    def put(self, item: str) -> None:
        self.items.append(item)

    def put_many(self, items: Sequence[str]) -> None:
        self.items.extend(items)

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def close(self, grace: float = 2.0) -> bool:
        return True


async def test_an_added_output_gets_one_line_per_item_when_the_streams_get_them_together() -> None:
    stream = io.StringIO()
    sink = LogSink(LogLevel.INFO, stream=stream)
    output = _LineOutput()
    sink.add_output(output)
    for index in range(10):
        sink.emit_success(EventType.PUBLISH_IN, _sink_facts(), f"t/{index}", False, None)
    sink.emit(_record(1))
    await asyncio.sleep(0)
    assert sink.flush()
    assert output.items == stream.getvalue().splitlines(keepends=True)
    assert len(output.items) == 11
    sink.close()


async def test_the_recent_records_are_the_last_ones_even_when_kept_together() -> None:
    sink = LogSink(LogLevel.INFO, stream=io.StringIO())
    sink.keep_recent(5)
    sink.emit(_record(1))
    for index in range(20):
        sink.emit_success(EventType.PUBLISH_IN, _sink_facts(), f"t/{index}", False, None)
    sink.emit(_record(2))
    sink.emit_success(EventType.PUBLISH_OUT, _sink_facts(), "t/last", False, None)
    recent = sink.take_recent()
    assert [(r["eventType"], r.get("topicName"), r["status"]) for r in recent] == [
        ("Publish-In", "t/17", "Success"),
        ("Publish-In", "t/18", "Success"),
        ("Publish-In", "t/19", "Success"),
        ("Publish-In", "t/1", "Failure"),
        ("Publish-Out", "t/last", "Success"),
    ]
    sink.close()


async def test_the_recent_records_across_many_iterations_are_the_last_ones_in_order() -> None:
    sink = LogSink(LogLevel.INFO, stream=io.StringIO())
    sink.keep_recent(7)
    for batch in range(30):
        for index in range(4):
            topic = f"t/{batch}/{index}"
            sink.emit_success(EventType.PUBLISH_IN, _sink_facts(), topic, False, None)
        await asyncio.sleep(0)  # the iteration ends: its lines are formatted together
    topics = [record["topicName"] for record in sink.take_recent()]
    assert topics == [f"t/{batch}/{index}" for batch in (28, 29) for index in range(4)][-7:]
    sink.close()
