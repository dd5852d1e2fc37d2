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
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.brokers import (
    Pki,
    RunningBroker,
    free_port,
    launch,
    mosquitto_binary,
    setup_pki,
    wait_ready,
)
from bench.mqttlite import DISCONNECT, PacketReader, client_context, sync_connect
from bench.procs import LineReader, wait_idle

__all__ = ["SCENARIOS", "Figure", "main"]

REPO = Path(__file__).resolve().parent.parent
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
    """

    scenario: str
    broker: str
    name: str
    value: float
    unit: str
    target: float | None
    details: dict[str, object]

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None for a reference figure)."""
        return None if self.target is None else self.value <= self.target


@dataclass
class Context:
    """What every scenario gets: the PKI and a place to work."""

    pki: Pki
    workdir: Path
    python: str

    def start(self, kind: str, tag: str) -> RunningBroker:
        # Mosquitto as it ships (max_queued_messages 1000), not the bench's never-drop setting.
        broker = launch(
            kind,
            self.pki,
            self.workdir,
            self.python,
            port=free_port(),
            tag=tag,
            mosquitto_queue=_MOSQUITTO_DEFAULT_QUEUE,
        )
        wait_ready(broker, self.pki)
        return broker

    def client(
        self, role: str, broker: RunningBroker, client_id: str, topic: str, **extra: int
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


def _lines(proc: subprocess.Popen[bytes]) -> LineReader:
    assert proc.stdout is not None
    return LineReader(proc.stdout)


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
    samples: list[float] = []
    try:
        drain = ctx.client("drain", broker, "bench-drain", "bench/flood")
        _line(drain, _lines(drain), "ready", 30)
        context = client_context(ctx.pki.tls)
        flood = ctx.client("flood", broker, "bench-flood", "bench/flood", count=count, size=size)
        done = _lines(flood)
        result = None
        index = 0
        while result is None:
            started = time.monotonic()
            sock = sync_connect(context, broker.port, f"bench-bystander-{index}", timeout=30)
            try:
                sock.sendall(_PINGREQ)
                reader = PacketReader()
                while not any(first == _PINGRESP for first, _ in reader.feed(sock.recv(64))):
                    pass
                sock.sendall(DISCONNECT)
            finally:
                sock.close()
            samples.append(time.monotonic() - started)
            index += 1
            line = done.expect("{", 0.05)
            result = json.loads("{" + line) if line is not None else None
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
        },
    )


SCENARIOS: dict[str, Callable[[Context, str], Figure]] = {
    "slow-subscriber": slow_subscriber,
    "flood-bystander": flood_bystander,
}


def _print(figure: Figure) -> None:
    verdict = {None: "reference", True: "met", False: "MISSED"}[figure.met]
    target = f" (target <= {figure.target:g} {figure.unit})" if figure.target is not None else ""
    print(
        f"{figure.scenario:<18} {figure.broker:<10} {figure.name}: "
        f"{figure.value:g} {figure.unit}{target} {verdict}  {json.dumps(figure.details)}",
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
                figure = SCENARIOS[name](ctx, kind)
                _print(figure)
                missed |= figure.met is False
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
