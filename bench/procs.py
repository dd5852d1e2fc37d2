"""Child processes: start, reap with their CPU time, read a broker's CPU and memory from /proc."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "Child",
    "Exited",
    "LineReader",
    "cpu_seconds",
    "reap_all",
    "rss_kib",
    "stop_process",
    "wait_idle",
]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Exited:
    """How a child ended: exit code (negative: signal), CPU seconds (user + system), wall."""

    returncode: int
    cpu: float
    wall: float
    killed: bool = False
    ended: float = 0.0  # time.monotonic() when reaped

    @property
    def utilization(self) -> float:
        """CPU seconds per wall second over the child's life (1.0 = one core saturated)."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


@dataclass
class Child:
    """A started child process and when it started."""

    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    label: str = ""

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        stdin: IO[bytes] | int | None = subprocess.DEVNULL,
        stdout: IO[bytes] | int | None = subprocess.DEVNULL,
        stderr: IO[bytes] | int | None = subprocess.DEVNULL,
        label: str = "",
        cwd: Path | None = None,
    ) -> Child:
        """Start ``argv``."""
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd)
        return cls(proc, started, label or Path(argv[0]).name)


def reap_all(children: Sequence[Child], deadline: float) -> list[Exited]:
    """Wait for every child (``os.wait4``, for its CPU time) until ``deadline`` (monotonic).

    Children still running at the deadline get SIGTERM, then SIGKILL a second later; their
    ``Exited.killed`` is true.
    """
    results: dict[int, Exited] = {}
    killed: set[int] = set()
    pending = {child.proc.pid: child for child in children if child.proc.returncode is None}
    for child in children:
        if child.proc.returncode is not None:
            results[child.proc.pid] = Exited(child.proc.returncode, 0.0, 0.0, ended=child.started)
    term_sent_at: float | None = None
    while pending:
        for pid, child in list(pending.items()):
            try:
                got, status, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: no CPU figure for it
                child.proc.poll()
                code = child.proc.returncode if child.proc.returncode is not None else -1
                now = time.monotonic()
                results[pid] = Exited(code, 0.0, now - child.started, pid in killed, now)
                del pending[pid]
                continue
            if got == 0:
                continue
            code = os.waitstatus_to_exitcode(status)
            child.proc.returncode = code
            now = time.monotonic()
            results[pid] = Exited(
                code,
                usage.ru_utime + usage.ru_stime,
                now - child.started,
                killed=pid in killed,
                ended=now,
            )
            del pending[pid]
        if not pending:
            break
        now = time.monotonic()
        if now >= deadline and term_sent_at is None:
            term_sent_at = now
            # os.kill, not Popen.send_signal: that polls, i.e. reaps, and wait4 would lose the
            # child's CPU time. The pid cannot be reused before we reap it.
            for pid in pending:
                killed.add(pid)
                os.kill(pid, signal.SIGTERM)
        elif term_sent_at is not None and now - term_sent_at > 1.0:
            for pid in pending:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    return [results[child.proc.pid] for child in children]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, wait, SIGKILL if needed."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a running process so far (0.0 if it is gone).

    From ``/proc/PID/schedstat`` (nanoseconds) where the kernel has it: ``stat``'s clock ticks
    are 10 ms coarse, which adds up over a hundred short-lived clients.
    """
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14 and 15 of stat (utime, stime), counted from 1; the slice starts at field 3.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_kib(pid: int) -> int:
    """VmRSS of a running process in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_descriptors(pid: int) -> int:
    """How many descriptors a running process holds (0 if it is gone).

    A broker holds a socket per connection, whatever its load generators managed to report.
    """
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def wait_idle(pids: Sequence[int], *, threshold: float = 0.05, max_wait: float = 15.0) -> float:
    """Wait until every process uses under ``threshold`` of a core over 0.2 s; return the wait.

    A broker still draining the backlog of a run that hit its deadline would otherwise steal CPU
    from the next broker's measurement.
    """
    start = time.monotonic()
    while time.monotonic() - start < max_wait:
        before = [cpu_seconds(pid) for pid in pids]
        time.sleep(0.2)
        after = [cpu_seconds(pid) for pid in pids]
        if all((b - a) / 0.2 < threshold for a, b in zip(before, after, strict=True)):
            break
    return time.monotonic() - start


class LineReader:
    """Reads a child's stdout lines on a thread, so the harness can wait with a timeout."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str | None:
        """The rest of the next line starting with ``prefix``; None on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                self._lines.put(None)  # EOF stays visible to later calls
                return None
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
