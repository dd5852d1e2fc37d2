"""Where an idle connection's bytes go: ``python -m bench.profile_idle [--connections N]``.

Runs the bench's idle scenario (``bench.loadgen idle``: mutual-TLS connections with keep-alive
1200 s, CONNECT done, nothing else) against a broker started in this process (the bench's PKI,
TLS settings and ``bench/ours.yaml``, on uvloop as ``serve`` runs it). A first worker opens
``--warm-up`` connections (caches, free lists and arenas settle), then a second one opens
``--connections`` more; what the broker's process grew by during the second, divided by its
connections, is printed: RSS, the bytes glibc's malloc hands out (``mallinfo2``), and with
``--trace`` the Python-level allocations (``tracemalloc``, by line, top ``--top``), so that
"RSS minus traced" is the native part (OpenSSL, libuv, the allocators' slack).

A development tool: tracemalloc's own bookkeeping inflates RSS, so take RSS figures from a run
without ``--trace`` (and the bench's, ``python -m bench.run --only idle``, for the record).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import resource
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

from bench.brokers import in_process_config, setup_pki
from bench.procs import open_descriptors, rss_kib

__all__ = ["main"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_in_use() -> int:
    """Bytes glibc's malloc has handed out and not taken back (0 where unavailable)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return 0
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


async def _worker(
    args: argparse.Namespace, pki_args: list[str], port: int, prefix: str, count: int
) -> asyncio.subprocess.Process:
    """Start a ``bench.loadgen idle`` worker and wait for its ``ready`` line."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        "idle",
        "--port",
        str(port),
        *pki_args,
        "--prefix",
        prefix,
        "--connections",
        str(count),
        "--concurrency",
        "16",
        "--connect-timeout",
        str(args.timeout),
        "--source-address",
        "127.0.1.1" if prefix.endswith("warm") else "127.0.2.1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    while True:
        line = await asyncio.wait_for(child.stdout.readline(), args.timeout * 4)
        if not line:
            raise RuntimeError(f"worker {prefix} ended before it was ready")
        if line.startswith(b"ready"):
            ready = json.loads(line.split(b" ", 1)[1])
            if ready.get("connected") != count:
                raise RuntimeError(f"worker {prefix}: {ready}")
            return child


def _measure(pid: int, *, trace: bool) -> tuple[int, int, int, tracemalloc.Snapshot | None, int]:
    """RSS (KiB), malloc's bytes in use, descriptors, and tracemalloc's snapshot and overhead."""
    return (
        rss_kib(pid),
        _malloc_in_use(),
        open_descriptors(pid),
        tracemalloc.take_snapshot() if trace else None,
        tracemalloc.get_tracemalloc_memory() if trace else 0,
    )


async def _settle() -> None:
    """Let the broker finish what the last handshakes queued, then collect garbage."""
    for _ in range(20):
        await asyncio.sleep(0.05)
    gc.collect()


async def _run(args: argparse.Namespace, workdir: Path) -> str:
    from aws_iot_mock.server.app import Broker  # noqa: PLC0415

    pki = setup_pki(workdir, sys.executable)
    config = in_process_config(pki, workdir)
    if args.trace:
        tracemalloc.start(args.frames)
    broker = Broker(config)
    await broker.start()
    port = broker.ports["mqtt"]
    tls = pki.tls
    pki_args = ["--ca", str(tls.ca), "--cert", str(tls.cert), "--key", str(tls.key)]
    pid = os.getpid()
    children = []
    try:
        children.append(await _worker(args, pki_args, port, "bench-profile-warm", args.warm_up))
        await _settle()
        before = _measure(pid, trace=args.trace)
        children.append(await _worker(args, pki_args, port, "bench-profile-main", args.connections))
        await _settle()
        after = _measure(pid, trace=args.trace)
    finally:
        for child in children:
            if child.stdin is not None:
                child.stdin.write(b"close\n")
                await child.stdin.drain()
        for child in children:
            await asyncio.wait_for(child.wait(), 30.0)
        await broker.stop()
    held = after[2] - before[2]
    lines = [
        f"connections {args.connections} (after {args.warm_up} warm-up), descriptors held {held}",
        f"RSS per connection: {(after[0] - before[0]) * 1024 / held:,.0f} B",
        f"malloc per connection: {(after[1] - before[1]) / held:,.0f} B",
    ]
    if args.trace:
        assert before[3] is not None and after[3] is not None
        stats = after[3].compare_to(before[3], "traceback" if args.frames > 1 else "lineno")
        traced = sum(stat.size_diff for stat in stats)
        lines.append(f"traced per connection: {traced / held:,.0f} B")
        lines.append(f"tracemalloc's own per connection: {(after[4] - before[4]) / held:,.0f} B")
        lines.append("top allocations per connection (B, blocks):")
        for stat in stats[: args.top]:
            frames = stat.traceback.format(limit=args.frames)
            where = " <- ".join(line.strip() for line in frames if not line.startswith("    "))
            lines.append(f"{stat.size_diff / held:8,.0f} {stat.count_diff / held:6.2f}  {where}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run once and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_idle", description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--warm-up", type=int, default=200)
    parser.add_argument("--trace", action="store_true", help="tracemalloc (slower, inflates RSS)")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth with --trace")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="aws-iot-mock-profile-idle-"))
    try:
        try:
            import uvloop  # noqa: PLC0415 (the broker's optional dependency, as serve uses it)
        except ImportError:
            print(asyncio.run(_run(args, workdir)))
        else:
            print(uvloop.run(_run(args, workdir)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
