"""Load clients of the stress scenarios, each run as its own process (``python -m stress.clients``).

A separate process per role, so that the client measuring a latency is not slowed by the one
flooding the broker in the same interpreter. Each prints one JSON line with what it did.

- ``flood``: connect, then send N QoS 0 PUBLISH packets of a given size as fast as the socket
  takes them.
- ``stall``: connect, subscribe at QoS 0, print ``ready``, then never read again (its receive
  buffer is shrunk first), until killed.
- ``drain``: connect, subscribe at QoS 0, print ``ready``, then read and discard until killed.
- ``pinger``: connect, then PINGREQ every 50 ms for ``--seconds``, timing each PINGRESP; print
  the worst and the median round trip (the stall another client's trouble causes this one).
- ``publisher``: for ``--seconds``, publish numbered QoS 1 messages one at a time and wait for
  each PUBACK; when the broker closes the connection, reconnect a second later and send the
  unacknowledged number again (what a device does). Print the numbers acknowledged.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
import time
from pathlib import Path

from bench.mqttlite import (
    PUBACK,
    SUBACK,
    PacketReader,
    TlsFiles,
    client_context,
    publish_packet,
    subscribe_packet,
    sync_connect,
)

__all__ = ["main", "publish_acknowledged"]

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


_PINGREQ = b"\xc0\x00"
_PINGRESP = 0xD
_PING_INTERVAL = 0.05


def _pinger(args: argparse.Namespace) -> None:
    sock = sync_connect(client_context(_files(args)), args.port, args.client_id, keep_alive=1200)
    sock.settimeout(60)
    reader = PacketReader()
    print("ready", flush=True)
    samples: list[float] = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        sock.sendall(_PINGREQ)
        while not any(first >> 4 == _PINGRESP for first, _ in reader.feed(sock.recv(64))):
            pass
        samples.append(time.monotonic() - started)
        time.sleep(_PING_INTERVAL)
    samples.sort()
    result = {"worst": round(samples[-1], 4), "median": round(samples[len(samples) // 2], 4)}
    print(json.dumps({**result, "samples": len(samples)}), flush=True)


def publish_acknowledged(
    sock: ssl.SSLSocket, reader: PacketReader, topic: str, body: bytes, packet_id: int
) -> None:
    """Publish at QoS 1 and read until the PUBACK; ``ConnectionError`` when closed before it."""
    sock.sendall(publish_packet(topic, body, qos=1, packet_id=packet_id))
    while True:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed before the PUBACK")
        if any(first >> 4 == PUBACK for first, _ in reader.feed(data)):
            return


def _publisher(args: argparse.Namespace) -> None:
    context = client_context(_files(args))
    acked: list[int] = []
    disconnects = refused = 0
    number = 0
    payload = b"x" * args.size
    deadline = time.monotonic() + args.seconds
    print("ready", flush=True)
    while time.monotonic() < deadline:
        try:
            sock = sync_connect(context, args.port, args.client_id, keep_alive=1200, timeout=60)
        except (OSError, ConnectionError):
            refused += 1
            time.sleep(1.0)
            continue
        try:
            reader = PacketReader()
            while time.monotonic() < deadline:
                packet_id = number % 65535 + 1
                body = f"{number}:".encode() + payload
                publish_acknowledged(sock, reader, args.topic, body, packet_id)
                acked.append(number)
                number += 1
                time.sleep(args.interval)
        except (OSError, ConnectionError):
            disconnects += 1
            time.sleep(1.0)  # AWS: 1 CONNECT per second per client ID
        finally:
            sock.close()
    print(json.dumps({"acked": acked, "disconnects": disconnects, "refused": refused}), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run one client role."""
    parser = argparse.ArgumentParser(prog="python -m stress.clients")
    parser.add_argument("role", choices=("flood", "stall", "drain", "pinger", "publisher"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.02)
    args = parser.parse_args(argv)
    if args.role == "flood":
        _flood(args)
    elif args.role == "pinger":
        _pinger(args)
    elif args.role == "publisher":
        _publisher(args)
    else:
        _subscribe(args, stall=args.role == "stall")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
