"""Profile our publish path: ``python -m bench.profile_publish [--level INFO] [--messages N]``.

Runs the QoS 0 1->1 scenario of ``make bench`` (``mosquitto_pub -l`` -> broker ->
``mosquitto_sub``, the bench's PKI, TLS settings and ``bench/ours.yaml``) against a broker started
in this process, with cProfile on the event loop's thread from the first published message to
the last delivered one. Logging goes to a JSON-lines file at the given level (the bench's INFO
variant writes the same lines to stdout). Prints the rate, the log lines written, and the
profile's top entries by own time and by cumulative time; ``--save`` keeps the raw profile.

A development tool: the rate under cProfile is far below the bench's, and only the event loop's
thread is profiled (the log drain's thread shows as contention, not as entries).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.brokers import in_process_config, setup_pki
from bench.mqttlite import client_context, sync_publish
from bench.scenarios import PROBE, QUICK, Bench

__all__ = ["main"]


async def _wait_for_output(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise RuntimeError("the subscriber never got the retained probe")
        await asyncio.sleep(0.01)


async def _run(args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    from aws_iot_mock.server.app import Broker  # noqa: PLC0415

    pki = setup_pki(workdir, sys.executable)
    bench = Bench(QUICK, pki, workdir, sys.executable, {})
    log_file = workdir / "log" / "broker.jsonl"
    config = in_process_config(pki, workdir, level=args.level, log_file=log_file)
    broker = Broker(config)
    await broker.start()
    port = broker.ports["mqtt"]
    topic = "bench/tp/profile"
    context = client_context(pki.tls)
    await asyncio.to_thread(
        sync_publish, context, port, "bench-probe", topic, PROBE.encode(), retain=True
    )
    received = workdir / "sub.out"
    with received.open("wb") as out:
        sub = await asyncio.create_subprocess_exec(
            "mosquitto_sub",
            *bench.tls_args(port),
            "-i",
            "bench-profile-sub",
            "-q",
            "0",
            "-t",
            topic,
            "-C",
            str(args.messages + 1),
            "-F",
            "%U %p",
            stdout=out,
        )
    await _wait_for_output(received, 30.0)
    profiler = cProfile.Profile()
    # CPU of the whole process (the broker and its log drains) and of the event loop's thread.
    process0, loop0 = time.process_time(), time.thread_time()
    with bench.lines_file(args.messages).open("rb") as lines:
        if not args.no_profile:
            profiler.enable()
        pub = await asyncio.create_subprocess_exec(
            *bench.publisher_argv(port, "bench-profile-pub", topic), stdin=lines
        )
        try:
            await asyncio.wait_for(sub.wait(), args.timeout)
        finally:
            profiler.disable()
    loop_cpu = time.thread_time() - loop0
    await pub.wait()
    stamps = [
        float(line.split(b" ", 1)[0])
        for line in received.read_bytes().splitlines()
        if line and not line.endswith(PROBE.encode())
    ]
    await broker.stop()  # the drains write what is queued: their CPU counts too
    process_cpu = time.process_time() - process0
    written = sum(1 for _ in log_file.open("rb")) if log_file.exists() else 0
    drops = log_file.read_bytes().count(b"OUTBOUND_BUFFER_FULL") if log_file.exists() else 0
    rate = (len(stamps) - 1) / (max(stamps) - min(stamps)) if len(stamps) > 1 else 0.0
    if args.save and not args.no_profile:
        profiler.dump_stats(args.save)
    text = io.StringIO()
    if not args.no_profile:
        stats = pstats.Stats(profiler, stream=text)
        for order in ("tottime", "cumulative"):
            stats.sort_stats(order).print_stats(args.top)
    return {
        "received": len(stamps),
        "rate_under_profile": round(rate),
        "log_lines": written,
        "cpu_us_per_msg": round(process_cpu / max(1, len(stamps)) * 1e6, 1),
        "loop_cpu_us_per_msg": round(loop_cpu / max(1, len(stamps)) * 1e6, 1),
        "log_dropped": broker.sink.dropped,
        "outbound_buffer_full_records": drops,
        "profile": text.getvalue(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run once and print the profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_publish", description=__doc__)
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--level", default="ERROR", choices=("ERROR", "WARN", "INFO", "DEBUG"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--save", type=Path, help="write the raw profile here (pstats format)")
    parser.add_argument("--no-profile", action="store_true", help="only the rate and counts")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aws-iot-mock-profile-"))
    try:
        result = asyncio.run(_run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(result.pop("profile"))
    print(" ".join(f"{key}={value}" for key, value in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
