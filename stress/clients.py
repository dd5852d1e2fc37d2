"""Load clients of the stress scenarios, each run as its own process (``python -m stress.clients``).

A separate process per role, so that the client measuring a latency is not slowed by the one
flooding the broker in the same interpreter. Each prints one JSON line with what it did.

- ``flood``: connect, then send N QoS 0 PUBLISH packets of a given size as fast as the socket
  takes them.
- ``stall``: connect, subscribe at QoS 0, print ``ready``, then never read again (its receive
  buffer is shrunk first), until killed.
- ``drain``: connect, subscribe at QoS 0, print ``ready``, then read and discard until killed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

from bench.mqttlite import (
    SUBACK,
    PacketReader,
    TlsFiles,
    client_context,
    publish_packet,
    subscribe_packet,
    sync_connect,
)

__all__ = ["main"]

# Publishes handed to the socket per sendall: big enough that Python's cost per call vanishes.
_BATCH = 256


def _files(args: argparse.Namespace) -> TlsFiles:
    return TlsFiles(Path(args.ca), Path(args.cert), Path(args.key), "localhost")


def _flood(args: argparse.Namespace) -> None:
    sock = sync_connect(client_context(_files(args)), args.port, args.client_id, keep_alive=1200)
    packet = publish_packet(args.topic, b"x" * args.size, qos=0)
    batch = packet * _BATCH
    started = time.monotonic()
    sent = 0
    while sent < args.count:
        n = min(_BATCH, args.count - sent)
        sock.sendall(batch if n == _BATCH else packet * n)
        sent += n
    elapsed = time.monotonic() - started
    print(json.dumps({"sent": sent, "seconds": round(elapsed, 3)}), flush=True)
    # Stay connected until the harness is done reading figures; it kills this process.
    sys.stdin.read()


def _subscribe(args: argparse.Namespace, *, stall: bool) -> None:
    context = client_context(_files(args))
    sock = sync_connect(context, args.port, args.client_id, keep_alive=1200)
    if stall:
        # A client that stops reading: a small receive buffer makes TCP push back sooner.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(subscribe_packet(1, args.topic, 0))
    reader = PacketReader()
    while not any(first >> 4 == SUBACK for first, _ in reader.feed(sock.recv(4096))):
        pass
    print("ready", flush=True)
    if stall:
        sys.stdin.read()  # never read the socket again
        return
    received = 0
    sock.settimeout(None)
    while data := sock.recv(256 * 1024):
        received += len(data)


def main(argv: list[str] | None = None) -> int:
    """Run one client role."""
    parser = argparse.ArgumentParser(prog="python -m stress.clients")
    parser.add_argument("role", choices=("flood", "stall", "drain"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    if args.role == "flood":
        _flood(args)
    else:
        _subscribe(args, stall=args.role == "stall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
