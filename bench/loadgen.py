"""A load-generator worker process: ``python -m bench.loadgen MODE ...``.

The harness starts several of these (multi-process, so that no single Python process is the
bottleneck) and talks to each over its standard streams:

1. the worker sets up (loads the TLS context; connects its clients for the modes that hold
   connections) and prints ``ready {json}``;
2. it waits for one line on stdin: ``go T0`` (start at Unix time T0) or ``close``;
3. it does the work and prints ``result {json}`` with its counts and its own CPU time
   (user + system) and wall time for the measured phase, so the report can show how busy the
   generators were.

Modes:
    connect  new TLS connection + CONNECT/CONNACK + DISCONNECT in a loop for a duration
    publish  N connections each publish M QoS 1 messages with a window of inflight messages
    paced    N connections publish at a fixed aggregate rate, payload = send time (latency)
    idle     open N connections (keep-alive 1200 s), hold them until told to close
    subscribe  N connections subscribe; ready once each got the retained probe; count until
             each has M messages or the deadline (``go DEADLINE``) passes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.mqttlite import (
    CONNACK,
    DISCONNECT,
    PUBACK,
    PUBLISH,
    PacketReader,
    TlsFiles,
    client_context,
    connect_packet,
    puback_packet,
    publish_packet,
    subscribe_packet,
    sync_connect,
)

__all__ = ["main"]

PAYLOAD_SIZE = 64
PROBE = b"probe"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(kind: str, data: dict[str, Any]) -> None:
    sys.stdout.write(f"{kind} {json.dumps(data)}\n")
    sys.stdout.flush()


def _wait_command() -> str:
    line = sys.stdin.readline()
    return line.strip()


def _go_time(command: str) -> float:
    parts = command.split()
    if len(parts) == 2 and parts[0] == "go":
        return float(parts[1])
    return time.time()


def _sleep_until(when: float) -> None:
    delay = when - time.time()
    if delay > 0:
        time.sleep(delay)


def payload(text: str) -> bytes:
    """``text`` padded with dots to the bench's 64-byte payload."""
    raw = text.encode()
    return raw + b"." * (PAYLOAD_SIZE - len(raw)) if len(raw) < PAYLOAD_SIZE else raw


# --- connect ---------------------------------------------------------------------------------


def run_connect(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    """Connect, CONNECT/CONNACK, DISCONNECT, close; as many times as fit in the duration."""
    _emit("ready", {})
    start_at = _go_time(_wait_command())
    _sleep_until(start_at)
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    deadline = t0 + args.duration
    done = errors = 0
    first_error = ""
    while time.monotonic() < deadline:
        client_id = f"{args.prefix}-{done + errors}"
        try:
            sock = sync_connect(context, args.port, client_id, server_name=args.sni)
        except (OSError, ConnectionError) as exc:
            errors += 1
            first_error = first_error or repr(exc)
            continue
        with contextlib.suppress(OSError):
            sock.sendall(DISCONNECT)
        sock.close()
        done += 1
    wall = time.monotonic() - t0
    _emit(
        "result",
        {
            "count": done,
            "errors": errors,
            "first_error": first_error,
            "wall": wall,
            "cpu": _cpu_seconds() - cpu0,
        },
    )


# --- async helpers ---------------------------------------------------------------------------


class Client:
    """One connected MQTT client on asyncio streams, with a reader task counting PUBACKs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.acked = 0
        self.progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(  # noqa: PLR0917 (one call site)
        cls,
        context: ssl.SSLContext,
        port: int,
        client_id: str,
        sni: str,
        keep_alive: int,
        source: str | None = None,
    ) -> Client:
        """Open the TLS connection (from ``source``, a local address) and CONNECT/CONNACK."""
        reader, writer = await asyncio.open_connection(
            "127.0.0.1",
            port,
            ssl=context,
            server_hostname=sni,
            local_addr=None if source is None else (source, 0),
        )
        try:
            writer.write(connect_packet(client_id, keep_alive=keep_alive))
            parser = PacketReader()
            while True:
                data = await reader.read(4096)
                if not data:
                    raise ConnectionError("closed before CONNACK")
                packets = parser.feed(data)
                if packets:
                    first, body = packets[0]
                    if first >> 4 != CONNACK or len(body) < 2 or body[1] != 0:
                        raise ConnectionError(f"CONNECT refused: {first:#x} {body.hex()}")
                    break
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer)

    def start_reading(self) -> None:
        """Count PUBACKs in a background task."""
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        parser = PacketReader()
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for first, _ in parser.feed(data):
                    if first >> 4 == PUBACK:
                        self.acked += 1
                self.progress.set()
        self.progress.set()

    async def close(self) -> None:
        """DISCONNECT and close."""
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(OSError, ConnectionError, ssl.SSLError):
            self.writer.write(DISCONNECT)
            self.writer.close()
        with contextlib.suppress(OSError, ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 2.0)


async def _connect_all(
    args: argparse.Namespace, context: ssl.SSLContext, count: int, keep_alive: int
) -> tuple[list[Client], int, str]:
    """Connect ``count`` clients with bounded concurrency; return them, failures, first error."""
    gate = asyncio.Semaphore(args.concurrency)
    clients: list[Client] = []
    failures = 0
    first_error = ""

    # Several loopback source addresses: each has its own ~28,000 ephemeral ports, so that tens
    # of thousands of connections to one port do not run out of them.
    sources: list[str | None] = list(args.source_address) or [None]

    async def one(index: int) -> None:
        nonlocal failures, first_error
        async with gate:
            try:
                client = await asyncio.wait_for(
                    Client.connect(
                        context,
                        args.port,
                        f"{args.prefix}-{index}",
                        args.sni,
                        keep_alive,
                        sources[index % len(sources)],
                    ),
                    args.connect_timeout,
                )
            except (OSError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
                failures += 1
                first_error = first_error or repr(exc)
                return
            clients.append(client)

    await asyncio.gather(*(one(index) for index in range(count)))
    return clients, failures, first_error


async def _read_command() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, _wait_command)


# --- publish (windowed QoS 1) ----------------------------------------------------------------


async def _publish_windowed(client: Client, topic: str, tag: str, count: int, window: int) -> int:
    sent = 0
    while sent < count:
        free = window - (sent - client.acked)
        if free <= 0:
            client.progress.clear()
            if window - (sent - client.acked) <= 0:
                await client.progress.wait()
            continue
        batch = min(free, count - sent)
        client.writer.write(
            b"".join(
                publish_packet(
                    topic,
                    payload(f"{tag}-{sent + offset}"),
                    qos=1,
                    packet_id=(sent + offset) % 65535 + 1,
                )
                for offset in range(batch)
            )
        )
        sent += batch
        await client.writer.drain()
    while client.acked < count:
        client.progress.clear()
        if client.acked < count:
            await client.progress.wait()
    return sent


async def run_publish(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    """Connect N clients, then each publishes M QoS 1 messages, ``window`` inflight."""
    clients, failures, first_error = await _connect_all(args, context, args.connections, 60)
    for client in clients:
        client.start_reading()
    _emit("ready", {"connected": len(clients), "failures": failures, "first_error": first_error})
    start_at = _go_time(await _read_command())
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    sent = await asyncio.gather(
        *(
            _publish_windowed(
                client, args.topic, f"{args.prefix}-{index}", args.messages, args.window
            )
            for index, client in enumerate(clients)
        )
    )
    wall = time.monotonic() - t0
    cpu = _cpu_seconds() - cpu0
    acked = sum(client.acked for client in clients)
    await asyncio.gather(*(client.close() for client in clients))
    _emit("result", {"sent": sum(sent), "acked": acked, "wall": wall, "cpu": cpu})


# --- paced (latency) -------------------------------------------------------------------------


# Seconds before a paced send's due time that the loop's timer wakes the sender (> 1 ms).
_PACING_SLACK = 0.0015


async def run_paced(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    """Publish at ``rate`` msg/s in aggregate over all workers; payload carries the send time.

    Message ``k`` of the whole run is due at ``T0 + k / rate``; worker ``w`` of ``W`` sends the
    ``k`` with ``k % W == w``, round-robin over its connections (one topic per device).
    """
    clients, failures, first_error = await _connect_all(args, context, args.connections, 60)
    for client in clients:
        client.start_reading()
    _emit("ready", {"connected": len(clients), "failures": failures, "first_error": first_error})
    start_at = _go_time(await _read_command())
    total = int(args.rate * args.duration)
    mine = range(args.worker, total, args.workers)
    topics = [f"{args.topic}/{args.prefix}-{index}" for index in range(len(clients))]
    packet_ids = [0] * len(clients)
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    sent = 0
    late = 0.0
    if clients:
        for number, k in enumerate(mine):
            due = start_at + k / args.rate
            delay = due - time.time()
            if delay > 0:
                # The loop's timers have 1 ms resolution (libuv): sleeping on them alone sends
                # up to ~1.5 ms off schedule, and bunches 6-10 % of sends within 0.25 ms of the
                # previous one. Wake early on the loop, then sleep the rest precisely.
                if delay > _PACING_SLACK:
                    await asyncio.sleep(delay - _PACING_SLACK)
                rest = due - time.time()
                if rest > 0:
                    time.sleep(rest)
            late = max(late, time.time() - due)
            slot = number % len(clients)
            packet_ids[slot] = packet_ids[slot] % 65535 + 1
            body = payload(f"{time.time_ns()} {k}")
            clients[slot].writer.write(
                publish_packet(topics[slot], body, qos=1, packet_id=packet_ids[slot])
            )
            sent += 1
        deadline = time.monotonic() + 5.0
        while sum(c.acked for c in clients) < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    wall = time.monotonic() - t0
    cpu = _cpu_seconds() - cpu0
    acked = sum(client.acked for client in clients)
    await asyncio.gather(*(client.close() for client in clients))
    _emit(
        "result",
        {"sent": sent, "acked": acked, "wall": wall, "cpu": cpu, "max_late_s": late},
    )


# --- idle ------------------------------------------------------------------------------------


async def run_idle(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    """Open N connections with keep-alive 1200 s and hold them until ``close``."""
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    clients, failures, first_error = await _connect_all(args, context, args.connections, 1200)
    _emit(
        "ready",
        {
            "connected": len(clients),
            "failures": failures,
            "first_error": first_error,
            "wall": time.monotonic() - t0,
            "cpu": _cpu_seconds() - cpu0,
        },
    )
    await _read_command()
    # Still open? A broker that dropped idle connections shows here.
    alive = sum(1 for client in clients if not client.reader.at_eof())
    for client in clients:
        client.writer.transport.abort()
    _emit("result", {"alive_at_close": alive, "wall": time.monotonic() - t0})


# --- subscribe (fan-out receivers) -----------------------------------------------------------


class Receiver:
    """One subscribed connection: counts PUBLISHes (unique payloads, first/last arrival)."""

    def __init__(self, client: Client, expected: int) -> None:
        self.client = client
        self.expected = expected
        self.probed = asyncio.Event()
        self.done = asyncio.Event()
        self.received = 0
        self.payloads: set[bytes] = set()
        self.first = 0.0
        self.last = 0.0

    async def run(self, topic: str, qos: int) -> None:
        """Subscribe, then count until ``expected`` messages (the retained probe not counted)."""
        client = self.client
        client.writer.write(subscribe_packet(1, topic, qos))
        parser = PacketReader()
        with contextlib.suppress(OSError, ConnectionError, asyncio.CancelledError):
            while not self.done.is_set():
                data = await client.reader.read(65536)
                if not data:
                    break
                now = time.time()
                acks: list[bytes] = []
                for first, body in parser.feed(data):
                    if first >> 4 != PUBLISH:
                        continue
                    start = 2 + int.from_bytes(body[:2], "big")
                    if first & 0x06:
                        acks.append(puback_packet(int.from_bytes(body[start : start + 2], "big")))
                        start += 2
                    body_payload = body[start:]
                    if body_payload == PROBE:
                        self.probed.set()
                        continue
                    if not self.received:
                        self.first = now
                    self.received += 1
                    self.payloads.add(body_payload)
                    self.last = now
                if acks:
                    client.writer.write(b"".join(acks))
                if self.received >= self.expected:
                    self.done.set()
        self.done.set()


async def run_subscribe(args: argparse.Namespace, context: ssl.SSLContext) -> None:
    """N subscribed connections; ready once each has its retained probe; count until done."""
    clients, failures, first_error = await _connect_all(args, context, args.connections, 60)
    receivers = [Receiver(client, args.messages) for client in clients]
    tasks = [asyncio.create_task(r.run(args.topic, args.qos)) for r in receivers]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(r.probed.wait() for r in receivers)), args.connect_timeout
        )
    _emit(
        "ready",
        {
            "connected": len(clients),
            "subscribed": sum(r.probed.is_set() for r in receivers),
            "failures": failures,
            "first_error": first_error,
        },
    )
    deadline = _go_time(await _read_command())
    cpu0, t0 = _cpu_seconds(), time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(r.done.wait() for r in receivers)), max(0.0, deadline - time.time())
        )
    wall = time.monotonic() - t0
    cpu = _cpu_seconds() - cpu0
    for task in tasks:
        task.cancel()
    counted = [r for r in receivers if r.received]
    _emit(
        "result",
        {
            "received": sum(r.received for r in receivers),
            "unique": sum(len(r.payloads) for r in receivers),
            "complete": sum(r.received >= r.expected for r in receivers),
            "first": min((r.first for r in counted), default=0.0),
            "last": max((r.last for r in counted), default=0.0),
            "cpu": cpu,
            "wall": wall,
        },
    )
    await asyncio.gather(*(client.close() for client in clients))


# --- entry point -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("mode", choices=("connect", "publish", "paced", "idle", "subscribe"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--sni", default="localhost")
    parser.add_argument("--prefix", required=True, help="client ID prefix (unique per worker)")
    parser.add_argument("--topic", default="bench/x")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--messages", type=int, default=0, help="per connection (publish)")
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--qos", type=int, default=0, help="subscription QoS (subscribe)")
    parser.add_argument("--rate", type=float, default=1000.0, help="aggregate msg/s (paced)")
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--connect-timeout", type=float, default=20.0)
    parser.add_argument(
        "--source-address",
        action="append",
        default=[],
        metavar="IP",
        help="local address to connect from (repeat: used in turn; e.g. 127.0.0.2)",
    )
    return parser


def _run_async(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop  # noqa: PLC0415 (optional: the broker's own dependency)
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def _raise_fd_limit() -> None:
    """Soft open-files limit up to the hard one: an idle worker holds thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    """Run one worker."""
    args = _parser().parse_args(argv)
    _raise_fd_limit()
    context = client_context(TlsFiles(args.ca, args.cert, args.key, args.sni))
    modes: dict[str, Callable[[argparse.Namespace, ssl.SSLContext], Coroutine[Any, Any, None]]]
    modes = {
        "publish": run_publish,
        "paced": run_paced,
        "idle": run_idle,
        "subscribe": run_subscribe,
    }
    if args.mode == "connect":
        run_connect(args, context)
    else:
        _run_async(modes[args.mode](args, context))
    return 0


if __name__ == "__main__":
    sys.exit(main())
