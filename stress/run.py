"""`make stress`: run the stress scenarios, print each figure beside its target, fail on a miss.

Each scenario starts a fresh broker process (ours, and Mosquitto beside it for reference when it
is installed), drives it with client processes (``stress.clients``), and measures one figure.
A scenario fails when our figure misses its target; Mosquitto's figure is printed, never judged.

    .venv/bin/python -m stress.run                       # every scenario
    .venv/bin/python -m stress.run slow-subscriber       # one
    .venv/bin/python -m stress.run --brokers ours        # without Mosquitto
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.brokers import (
    Pki,
    RunningBroker,
    free_port,
    launch,
    mosquitto_binary,
    setup_pki,
    wait_ready,
)
from bench.mqttlite import (
    DISCONNECT,
    PUBLISH,
    SUBACK,
    PacketReader,
    client_context,
    connect_packet,
    puback_packet,
    subscribe_packet,
    sync_connect,
)
from bench.procs import LineReader, wait_idle
from stress.clients import publish_acknowledged

__all__ = ["SCENARIOS", "Figure", "main"]

REPO = Path(__file__).resolve().parent.parent
STORAGE_CONFIG = REPO / "stress" / "storage.yaml"
MIB = 1024 * 1024
_PINGREQ = b"\xc0\x00"
_PINGRESP = 0xD0
# Mosquitto's default max_queued_messages (mosquitto.conf(5)).
_MOSQUITTO_DEFAULT_QUEUE = 1000


@dataclass(frozen=True)
class Figure:
    """One measured figure of one broker.

    Attributes:
        scenario: the scenario's name.
        broker: ``ours`` or ``mosquitto``.
        name: what was measured.
        value: the figure.
        unit: its unit.
        target: the most (lower is better) our broker may show; None when not judged.
        details: what else was seen.
        floor: the least our broker may show (a count that must be there); None for none.
    """

    scenario: str
    broker: str
    name: str
    value: float
    unit: str
    target: float | None
    details: dict[str, object]
    floor: float | None = None

    @property
    def met(self) -> bool | None:
        """Whether the target (and floor) is met (None for a reference figure)."""
        if self.target is None and self.floor is None:
            return None
        below = self.target is None or self.value <= self.target
        return below and (self.floor is None or self.value >= self.floor)


@dataclass
class Context:
    """What every scenario gets: the PKI and a place to work."""

    pki: Pki
    workdir: Path
    python: str

    def start(
        self,
        kind: str,
        tag: str,
        *,
        config: Path | None = None,
        state_dir: Path | None = None,
        stdout: int | None = None,
    ) -> RunningBroker:
        """Start a broker; ours with ``config`` (the bench's by default) and ``stdout`` (an fd).

        ``stress/storage.yaml`` puts the records on stdout (the log file), where they are counted.
        """
        # Mosquitto as it ships (max_queued_messages 1000), not the bench's never-drop setting.
        broker = launch(
            kind,
            self.pki,
            self.workdir,
            self.python,
            port=free_port(),
            tag=tag,
            mosquitto_queue=_MOSQUITTO_DEFAULT_QUEUE,
            **({"config": config} if config is not None else {}),
            state_dir=state_dir,
            stdout=stdout,
        )
        wait_ready(broker, self.pki)
        return broker

    def client(
        self, role: str, broker: RunningBroker, client_id: str, topic: str, **extra: float
    ) -> subprocess.Popen[bytes]:
        argv = [
            self.python,
            "-m",
            "stress.clients",
            role,
            "--port",
            str(broker.port),
            "--ca",
            str(self.pki.ca),
            "--cert",
            str(self.pki.device_cert),
            "--key",
            str(self.pki.device_key),
            "--client-id",
            client_id,
            "--topic",
            topic,
        ]
        for key, value in extra.items():
            argv += [f"--{key}", str(value)]
        return subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


_READERS: dict[int, LineReader] = {}


def _lines(proc: subprocess.Popen[bytes]) -> LineReader:
    """The one line reader of ``proc``'s stdout (a second one would race the first for lines)."""
    assert proc.stdout is not None
    reader = _READERS.get(proc.pid)
    if reader is None:
        reader = _READERS[proc.pid] = LineReader(proc.stdout)
    return reader


def _line(proc: subprocess.Popen[bytes], reader: LineReader, prefix: str, timeout: float) -> str:
    line = reader.expect(prefix, timeout)
    if line is None:
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"client gave no {prefix!r} line within {timeout:.0f} s: {stderr}")
    return line


# -- scenarios -------------------------------------------------------------------------------------


def slow_subscriber(ctx: Context, kind: str) -> Figure:
    """A subscriber stops reading while 200,000 x 1 KiB QoS 0 messages are published to it."""
    count, size = 200_000, 1024
    broker = ctx.start(kind, "slow-subscriber")
    stall = flood = None
    try:
        stall = ctx.client("stall", broker, "bench-stall", "bench/slow")
        _line(stall, _lines(stall), "ready", 30)
        before = _status_kib(broker.pid, "VmRSS")
        flood = ctx.client("flood", broker, "bench-flood", "bench/slow", count=count, size=size)
        sent = json.loads("{" + _line(flood, _lines(flood), "{", 300))
        wait_idle([broker.pid])
        peak = _status_kib(broker.pid, "VmHWM")
        after = _status_kib(broker.pid, "VmRSS")
        alive = broker.proc.poll() is None
    finally:
        _stop(*(p for p in (stall, flood) if p is not None))
        broker.stop()
    growth = (peak - before) / 1024
    return Figure(
        "slow-subscriber",
        kind,
        "RSS growth (peak - before)",
        round(growth, 1),
        "MiB",
        32.0 if kind == "ours" else None,
        {
            "messages": count,
            "payload_bytes": size,
            "publish_seconds": sent["seconds"],
            "rss_before_mib": round(before / 1024, 1),
            "rss_after_mib": round(after / 1024, 1),
            "broker_alive": alive,
        },
    )


def flood_bystander(ctx: Context, kind: str) -> Figure:
    """A new device connects and pings, again and again, while one client floods the broker.

    The flood is 300,000 QoS 0 messages; the figure is the worst connect + ping.
    """
    count, size = 300_000, 64
    broker = ctx.start(kind, "flood-bystander")
    drain = flood = None
    try:
        drain = ctx.client("drain", broker, "bench-drain", "bench/flood")
        _line(drain, _lines(drain), "ready", 30)
        flood = ctx.client("flood", broker, "bench-flood", "bench/flood", count=count, size=size)
        samples, failures, result = _bystanders(ctx, broker, flood)
    finally:
        _stop(*(p for p in (drain, flood) if p is not None))
        broker.stop()
    return Figure(
        "flood-bystander",
        kind,
        "worst connect + ping during the flood",
        round(max(samples), 3),
        "s",
        0.2 if kind == "ours" else None,
        {
            "messages": count,
            "payload_bytes": size,
            "flood_seconds": result["seconds"],
            "samples": len(samples),
            "median_s": round(statistics.median(samples), 4),
            "failed_connects": failures,
        },
    )


def _connect_ping(context: ssl.SSLContext, port: int, client_id: str, timeout: float) -> None:
    """TLS + CONNECT (CONNACK 0), one PINGREQ answered, DISCONNECT; raises when refused or slow."""
    sock = sync_connect(context, port, client_id, timeout=timeout)
    try:
        sock.sendall(_PINGREQ)
        reader = PacketReader()
        while not any(first == _PINGRESP for first, _ in reader.feed(sock.recv(64))):
            pass
        sock.sendall(DISCONNECT)
    finally:
        sock.close()


def _bystanders(
    ctx: Context,
    broker: RunningBroker,
    flood: subprocess.Popen[bytes],
    timeout: float = 30.0,
    deadline: float = 300.0,
) -> tuple[list[float], int, dict[str, Any]]:
    """New devices connect and ping, one after the other, until ``flood`` prints its result.

    At most ``deadline`` seconds: a broker that stopped reading never lets the flood finish (its
    result then says ``"seconds": null``).

    Returns:
        Each connect + ping's seconds (a failed one, refused, reset or unanswered, counts as
        ``timeout``: a device that never got in waited at least that long), how many failed, and
        the flood's result.
    """
    context = client_context(ctx.pki.tls)
    done = _lines(flood)
    samples: list[float] = []
    failures = 0
    give_up = time.monotonic() + deadline
    while True:
        started = time.monotonic()
        try:
            _connect_ping(context, broker.port, f"bench-bystander-{len(samples)}", timeout)
            samples.append(time.monotonic() - started)
        except (OSError, ConnectionError):
            failures += 1
            samples.append(max(timeout, time.monotonic() - started))
        line = done.expect("{", 0.05)
        if line is not None:
            return samples, failures, json.loads("{" + line)
        if time.monotonic() > give_up:
            return samples, failures, {"sent": None, "seconds": None}


# -- storage faults (issue 11 item 2) --------------------------------------------------------------

_STORAGE_TOPIC = "bench/storage"
_OFFLINE_ID = "bench-offline"


def _offline_session(ctx: Context, broker: RunningBroker) -> None:
    """Leave a persistent session subscribed at QoS 1: every QoS 1 publish is stored for it."""
    sock = sync_connect(client_context(ctx.pki.tls), broker.port, _OFFLINE_ID, clean=False)
    try:
        sock.sendall(subscribe_packet(1, _STORAGE_TOPIC, 1))
        reader = PacketReader()
        while not any(first >> 4 == SUBACK for first, _ in reader.feed(sock.recv(4096))):
            pass
        sock.sendall(DISCONNECT)
    finally:
        sock.close()


def _collect_offline(ctx: Context, broker: RunningBroker, idle: float = 3.0) -> set[int]:
    """Resume the persistent session; PUBACK and number every message until ``idle`` s of quiet."""
    # Not sync_connect: the broker sends the queued messages right behind the CONNACK, and
    # sync_connect's reader would swallow them with it.
    raw = socket.create_connection(("127.0.0.1", broker.port), timeout=60)
    sock = client_context(ctx.pki.tls).wrap_socket(raw, server_hostname="localhost")
    received: set[int] = set()
    try:
        sock.sendall(connect_packet(_OFFLINE_ID, keep_alive=1200, clean=False))
        sock.settimeout(idle)
        reader = PacketReader()
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            for first, body in reader.feed(data):
                if first >> 4 != PUBLISH:
                    continue
                topic_end = 2 + int.from_bytes(body[:2], "big")
                packet_id = int.from_bytes(body[topic_end : topic_end + 2], "big")
                received.add(int(body[topic_end + 2 :].split(b":", 1)[0]))
                sock.sendall(puback_packet(packet_id))
        sock.sendall(DISCONNECT)
    finally:
        sock.close()
    return received


def _log_findings(broker: RunningBroker) -> tuple[dict[str, int], int]:
    """The storage failure records by reason, and the tracebacks, in the broker's output."""
    reasons: dict[str, int] = {}
    tracebacks = 0
    for line in broker.log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            tracebacks += 1
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        reason = str(record.get("reason", ""))
        if reason.startswith("STORAGE_"):
            reasons[reason] = reasons.get(reason, 0) + 1
    return reasons, tracebacks


def _result(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    return dict(json.loads("{" + _line(proc, _lines(proc), "{", timeout)))


def _storage_figures(
    scenario: str,
    broker: RunningBroker,
    acked: list[int],
    received: set[int],
    details: dict[str, object],
) -> list[Figure]:
    reasons, tracebacks = _log_findings(broker)
    lost = sorted(set(acked) - received)
    details = {
        **details,
        "acknowledged": len(acked),
        "received_after": len(received),
        "lost_examples": lost[:5],
        "storage_records": reasons,
    }
    return [
        Figure(scenario, "ours", "PUBACKed messages lost", len(lost), "", 0, details),
        _tracebacks_figure(scenario, tracebacks),
    ]


def locked_database(ctx: Context, kind: str) -> list[Figure]:
    """Another process holds the session database's write lock for 15 s while clients work.

    One client pings (the stall it sees is the figure); another publishes numbered QoS 1
    messages for an offline persistent session, so each needs the database before its PUBACK.
    Afterwards the session is resumed: every acknowledged number must be there.
    """
    if kind != "ours":
        return []  # about our storage; Mosquitto keeps its state in memory
    lock_seconds = 15.0
    broker = ctx.start(kind, "locked-database", config=STORAGE_CONFIG)
    pinger = publisher = locker = None
    try:
        _offline_session(ctx, broker)
        pinger = ctx.client("pinger", broker, "bench-pinger", "unused", seconds=lock_seconds + 9)
        publisher = ctx.client(
            "publisher", broker, "bench-publisher", _STORAGE_TOPIC, seconds=lock_seconds + 6
        )
        _line(pinger, _lines(pinger), "ready", 30)
        _line(publisher, _lines(publisher), "ready", 30)
        time.sleep(2.0)
        database = broker_state(ctx, "locked-database") / "broker.sqlite3"
        locker = subprocess.Popen(
            [ctx.python, "-c", _LOCKER, str(database), str(lock_seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _line(locker, _lines(locker), "locked", 30)
        published = _result(publisher, lock_seconds + 60)
        pings = _result(pinger, 60)
        locker.wait(timeout=30)
        received = _collect_offline(ctx, broker)
    finally:
        _stop(*(p for p in (pinger, publisher, locker) if p is not None))
        broker.stop()
    acked = list(published["acked"])
    stall = Figure(
        "locked-database",
        kind,
        "worst ping of another client while the database is locked",
        pings["worst"],
        "s",
        0.5,
        {"lock_seconds": lock_seconds, "median_s": pings["median"], "pings": pings["samples"]},
    )
    details = {"publisher_disconnects": published["disconnects"]}
    return [stall, *_storage_figures("locked-database", broker, acked, received, details)]


# Another process holding the write lock, as the sqlite3 shell's BEGIN IMMEDIATE would.
_LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def broker_state(ctx: Context, tag: str) -> Path:
    """Where ``launch`` put our broker's state directory for ``tag``."""
    return ctx.workdir / f"state-{tag}"


def disk_full(ctx: Context, kind: str) -> list[Figure]:
    """The state directory's file system fills up while QoS 1 messages are stored, then frees.

    The file system is an 8 MiB tmpfs mounted for the scenario (root only: skipped otherwise);
    a filler file takes all but 128 KiB of it, and is removed after 8 s.
    """
    if kind != "ours":
        return []
    disk = ctx.workdir / "disk-full"
    disk.mkdir(exist_ok=True)
    if os.geteuid() != 0 or _mount_tmpfs(disk, "8m") is not None:
        print("disk-full: skipped (mounting a small tmpfs needs root)", flush=True)
        return []
    broker = publisher = None
    try:
        broker = ctx.start(kind, "disk-full", config=STORAGE_CONFIG, state_dir=disk / "state")
        _offline_session(ctx, broker)
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        with filler.open("wb") as out:
            out.truncate(0)
            remaining = max(0, free - 128 * 1024)
            chunk = b"\0" * MIB
            while remaining > 0:
                remaining -= out.write(chunk[: min(MIB, remaining)])
        publisher = ctx.client(
            "publisher", broker, "bench-publisher", _STORAGE_TOPIC, seconds=16, size=1024
        )
        _line(publisher, _lines(publisher), "ready", 30)
        time.sleep(8.0)
        filler.unlink()
        published = _result(publisher, 120)
        received = _collect_offline(ctx, broker)
        alive = broker.proc.poll() is None
    finally:
        if publisher is not None:
            _stop(publisher)
        if broker is not None:
            broker.stop()
        subprocess.run(["umount", str(disk)], check=False)
    details = {
        "filesystem": "tmpfs 8 MiB",
        "publisher_disconnects": published["disconnects"],
        "broker_alive": alive,
    }
    return _storage_figures("disk-full", broker, list(published["acked"]), received, details)


def _mount_tmpfs(where: Path, size: str) -> str | None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else done.stderr.strip()


# -- a log pipe that stops (issue 11 item 1) -------------------------------------------------------

LOG_PIPE_CONFIG = REPO / "stress" / "log-pipe.yaml"
_DROPPED = "LOG_RECORDS_DROPPED"
# The stall a paused pipe may add to the worst connect + ping of the same flood with stdout
# read: none, but two runs of one flood on a shared machine differ by about what
# flood-bystander allows in all.
_PAUSED_PIPE_STALL = 0.2
_STDOUT_CLOSED = "standard output is closed"


class _PipeReader:
    """Reads the broker's stdout pipe on a thread once started (``less`` resumed), until EOF."""

    def __init__(self, read_fd: int) -> None:
        self._stream = os.fdopen(read_fd, "rb")
        self.lines = 0
        self.drop_reports: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)

    def waiting_bytes(self) -> int:
        """Bytes in the pipe that nobody has read."""
        waiting = fcntl.ioctl(self._stream.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(waiting, sys.byteorder)

    def start(self) -> None:
        self._thread.start()

    def _pump(self) -> None:
        with self._stream:
            for line in self._stream:
                with self._changed:
                    self.lines += 1
                    if _DROPPED.encode() in line:
                        self.drop_reports.append(json.loads(line))
                    self._changed.notify_all()

    def wait_for_drop_report(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(self.drop_reports), timeout)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _stderr_lines(broker: RunningBroker, needle: str, timeout: float = 0.0) -> list[str]:
    """The lines of the broker's stderr (its log file) containing ``needle``.

    Waits up to ``timeout`` seconds for the first one.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = broker.log.read_text(errors="replace")
        found = [line for line in text.splitlines() if needle in line]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def _start_piped(ctx: Context, tag: str) -> tuple[RunningBroker, int]:
    """Our broker logging at INFO to a stdout that is a pipe; returns it and the pipe's read end."""
    read_fd, write_fd = os.pipe()
    try:
        broker = ctx.start("ours", tag, config=LOG_PIPE_CONFIG, stdout=write_fd)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)  # the broker holds it: EOF reaches the reader when the broker exits
    return broker, read_fd


@dataclass
class _PipedFlood:
    """What one flood against a broker whose stdout is a pipe gave."""

    samples: list[float]
    failures: int
    flood_seconds: float
    unread_bytes: int

    def stall(self, scenario: str, name: str, **details: object) -> Figure:
        """The worst connect + ping as a reference figure."""
        return Figure(
            scenario,
            "ours",
            name,
            round(max(self.samples), 3),
            "s",
            None,
            {
                "messages": _PIPE_FLOOD,
                "flood_seconds": self.flood_seconds,
                "samples": len(self.samples),
                "median_s": round(statistics.median(self.samples), 4),
                "failed_connects": self.failures,
                **details,
            },
        )


# The flood of the log-pipe scenarios: 64-byte QoS 0 publishes, each an INFO record (~300 bytes)
# on stdout: 30 MB of records, against a 64 KiB pipe and the sink's 4 MiB queue.
_PIPE_FLOOD = 100_000


def _piped_flood(ctx: Context, broker: RunningBroker, pipe: _PipeReader) -> _PipedFlood:
    """One client floods while new devices connect and ping (as ``flood-bystander``)."""
    flood = ctx.client("flood", broker, "bench-flood", "bench/flood", count=_PIPE_FLOOD, size=64)
    try:
        samples, failures, result = _bystanders(ctx, broker, flood, deadline=120)
        return _PipedFlood(samples, failures, result["seconds"], pipe.waiting_bytes())
    finally:
        _stop(flood)


def paused_log_pipe(ctx: Context, kind: str) -> list[Figure]:
    """``aws-iot-mock serve | less``, paused: stdout is a pipe nobody reads while a client floods.

    Every publish is an INFO record on stdout: the 64 KiB pipe and the sink's 4 MiB queue fill
    within the first seconds, and the rest of the flood's records are dropped. Meanwhile new
    devices connect and ping (the figure: the worst). The control is the same flood against a
    broker whose stdout is read as fast as it comes (``| cat > file``): the stall a paused
    pipe adds is the difference. Then the paused pipe's reader comes back: the broker must say
    how many records it dropped, on stdout (a ``LOG_RECORDS_DROPPED`` record) and on stderr,
    the same number.
    """
    if kind != "ours":
        return []  # about our log sink
    broker, read_fd = _start_piped(ctx, "read-log-pipe")
    pipe = _PipeReader(read_fd)
    try:
        pipe.start()
        read = _piped_flood(ctx, broker, pipe)
    finally:
        broker.stop()
        pipe.join(10)

    broker, read_fd = _start_piped(ctx, "paused-log-pipe")
    pipe = _PipeReader(read_fd)
    try:
        paused = _piped_flood(ctx, broker, pipe)
        pipe.start()  # the reader comes back
        pipe.wait_for_drop_report(30)
        alive = broker.proc.poll() is None
    finally:
        broker.stop()  # after it has written what it had queued, and its notices
        pipe.join(10)
    # Every episode's report: a reader slower than what the broker still had to log may see
    # a second one.
    notices = _stderr_lines(broker, "log record(s) were dropped")
    on_stdout = sum(int(str(report["details"]).split()[0]) for report in pipe.drop_reports)
    on_stderr = sum(int(line.split()[1]) for line in notices)
    _, tracebacks = _log_findings(broker)
    added = max(0.0, max(paused.samples) - max(read.samples))
    dropped = Figure(
        "paused-log-pipe",
        kind,
        "records dropped, reported once the reader is back (stdout and stderr agree)",
        on_stdout if on_stdout == on_stderr else 0,
        "",
        None,
        {
            "stdout_records_dropped": on_stdout,
            "stderr_records_dropped": on_stderr,
            "stdout_reports": len(pipe.drop_reports),
            "stderr_notices": len(notices),
            "lines_read_after_resume": pipe.lines,
        },
        floor=1,
    )
    return [
        read.stall("paused-log-pipe", "worst connect + ping during the flood, stdout read"),
        paused.stall(
            "paused-log-pipe",
            "worst connect + ping during the flood, stdout paused",
            pipe_bytes_unread=paused.unread_bytes,
            broker_alive=alive,
        ),
        Figure(
            "paused-log-pipe",
            kind,
            "stall the paused pipe adds (worst paused - worst read, at least 0)",
            round(added, 3),
            "s",
            _PAUSED_PIPE_STALL,
            {},
        ),
        dropped,
        _tracebacks_figure("paused-log-pipe", tracebacks),
    ]


def closed_log_pipe(ctx: Context, kind: str) -> list[Figure]:
    """``aws-iot-mock serve | head -1``: stdout's reader reads one line and goes away.

    Then devices keep coming: each connects (CONNACK), publishes at QoS 1 (PUBACK) and leaves.
    None may fail; stderr says once, and only once, that stdout is disabled; no tracebacks.
    """
    if kind != "ours":
        return []
    head_binary = shutil.which("head")
    if head_binary is None:
        print("closed-log-pipe: skipped (needs head)", flush=True)
        return []
    rounds = 40
    broker, read_fd = _start_piped(ctx, "closed-log-pipe")
    head = subprocess.Popen([head_binary, "-1"], stdin=read_fd, stdout=subprocess.PIPE)
    os.close(read_fd)  # head holds it; once head exits, nobody does
    context = client_context(ctx.pki.tls)
    times: list[float] = []
    failures = 0

    def device(index: int) -> None:
        nonlocal failures
        started = time.monotonic()
        try:
            _connect_publish(context, broker.port, f"bench-device-{index}")
        except (OSError, ConnectionError):
            failures += 1
        times.append(time.monotonic() - started)

    try:
        device(0)  # its records are head's line
        first_line, _ = head.communicate(timeout=30)
        for index in range(1, rounds + 1):
            device(index)
            if index == rounds // 2:  # the sink has met EPIPE by now
                _stderr_lines(broker, _STDOUT_CLOSED, 10)
        notices = _stderr_lines(broker, _STDOUT_CLOSED)
        alive = broker.proc.poll() is None
    finally:
        _stop(head)
        broker.stop()
    _, tracebacks = _log_findings(broker)
    served = Figure(
        "closed-log-pipe",
        kind,
        "devices without CONNACK or PUBACK after stdout's reader left",
        failures,
        "",
        0,
        {
            "devices": len(times),
            "worst_s": round(max(times), 3),
            "head_read_a_record": first_line.startswith(b"{"),
            "broker_alive": alive,
        },
    )
    notice = Figure(
        "closed-log-pipe",
        kind,
        "stderr lines saying stdout is disabled",
        len(notices),
        "",
        1,
        {"lines": notices},
        floor=1,
    )
    return [served, notice, _tracebacks_figure("closed-log-pipe", tracebacks)]


def _connect_publish(context: ssl.SSLContext, port: int, client_id: str) -> None:
    """TLS + CONNECT (CONNACK 0), one QoS 1 PUBLISH acknowledged, DISCONNECT; raises if not."""
    sock = sync_connect(context, port, client_id, timeout=10)
    try:
        publish_acknowledged(sock, PacketReader(), "bench/closed", b"x", 1)
        sock.sendall(DISCONNECT)
    finally:
        sock.close()


def _tracebacks_figure(scenario: str, tracebacks: int) -> Figure:
    return Figure(scenario, "ours", "tracebacks in the broker's output", tracebacks, "", 0, {})


SCENARIOS: dict[str, Callable[[Context, str], Figure | list[Figure]]] = {
    "slow-subscriber": slow_subscriber,
    "flood-bystander": flood_bystander,
    "locked-database": locked_database,
    "disk-full": disk_full,
    "paused-log-pipe": paused_log_pipe,
    "closed-log-pipe": closed_log_pipe,
}


def _print(figure: Figure) -> None:
    verdict = {None: "reference", True: "met", False: "MISSED"}[figure.met]
    unit = f" {figure.unit}" if figure.unit else ""
    bounds = []
    if figure.floor is not None:
        bounds.append(f">= {figure.floor:g}")
    if figure.target is not None:
        bounds.append(f"<= {figure.target:g}")
    target = f" (target {' and '.join(bounds)}{unit})" if bounds else ""
    print(
        f"{figure.scenario:<18} {figure.broker:<10} {figure.name}: "
        f"{figure.value:g}{unit}{target} {verdict}  {json.dumps(figure.details)}",
        flush=True,
    )


def _have_mosquitto() -> bool:
    try:
        mosquitto_binary()
    except RuntimeError:
        print("mosquitto is not installed: its reference figures are left out", flush=True)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m stress.run")
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], default=[])
    parser.add_argument("--brokers", nargs="+", default=["ours", "mosquitto"])
    args = parser.parse_args(argv)
    brokers = [b for b in args.brokers if b != "mosquitto" or _have_mosquitto()]
    python = sys.executable
    missed = False
    with tempfile.TemporaryDirectory(prefix="aws-iot-mock-stress-") as tmp:
        workdir = Path(tmp)
        ctx = Context(setup_pki(workdir, python), workdir, python)
        for name in args.scenarios or list(SCENARIOS):
            for kind in brokers:
                result = SCENARIOS[name](ctx, kind)
                for figure in result if isinstance(result, list) else [result]:
                    _print(figure)
                    missed |= figure.met is False
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
