"""Just enough MQTT 3.1.1 over TLS for the load generators: packet bytes and a stream parser.

The generators speak raw MQTT (pre-encoded packets, no client library) so that the Python side
spends its time in the TLS layer and the socket, not in a client framework. Every broker in the
bench gets exactly the same bytes.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CIPHER",
    "CONNACK",
    "DISCONNECT",
    "PUBACK",
    "PUBLISH",
    "SUBACK",
    "PacketReader",
    "TlsFiles",
    "client_context",
    "connect_packet",
    "puback_packet",
    "publish_packet",
    "subscribe_packet",
    "sync_connect",
    "sync_publish",
]

CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"

# Control packet types (the high nibble of the fixed header's first byte).
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBACK = 9
DISCONNECT = b"\xe0\x00"


@dataclass(frozen=True)
class TlsFiles:
    """The trust anchor and the device identity every client of the bench uses."""

    ca: Path
    cert: Path
    key: Path
    server_name: str = "localhost"


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2 client context with the bench's cipher, the device certificate and the CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(CIPHER)
    context.load_verify_locations(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        digit, length = length % 128, length // 128
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, *, keep_alive: int = 60, clean: bool = True) -> bytes:
    """An MQTT 3.1.1 CONNECT without credentials (the certificate is the credential)."""
    body = _string("MQTT") + bytes((4, 0x02 if clean else 0)) + keep_alive.to_bytes(2, "big")
    body += _string(client_id)
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(
    topic: str, payload: bytes, *, qos: int = 0, packet_id: int = 0, retain: bool = False
) -> bytes:
    """A PUBLISH; ``packet_id`` is used (and required) for QoS 1."""
    header = 0x30 | (qos << 1) | (1 if retain else 0)
    body = _string(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return bytes((header,)) + _remaining_length(len(body)) + body


def puback_packet(packet_id: int) -> bytes:
    """The PUBACK a QoS 1 receiver owes for ``packet_id``."""
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


def subscribe_packet(packet_id: int, topic_filter: str, qos: int) -> bytes:
    """A SUBSCRIBE with one filter."""
    body = packet_id.to_bytes(2, "big") + _string(topic_filter) + bytes((qos,))
    return b"\x82" + _remaining_length(len(body)) + body


class PacketReader:
    """Splits a byte stream into ``(first_byte, body)`` packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add received bytes; return the packets now complete."""
        buffer = self._buffer
        buffer += data
        packets: list[tuple[int, bytes]] = []
        position = 0
        end = len(buffer)
        while end - position >= 2:
            length = 0
            shift = 0
            index = position + 1
            complete = False
            while index < end and shift <= 21:
                byte = buffer[index]
                index += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    complete = True
                    break
            if not complete or end - index < length:
                break
            packets.append((buffer[position], bytes(buffer[index : index + length])))
            position = index + length
        del buffer[:position]
        return packets


def _read_packet(sock: ssl.SSLSocket, reader: PacketReader) -> tuple[int, bytes]:
    while True:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("connection closed by the broker")
        packets = reader.feed(data)
        if packets:
            return packets[0]


def sync_connect(
    context: ssl.SSLContext,
    port: int,
    client_id: str,
    *,
    server_name: str = "localhost",
    keep_alive: int = 60,
    timeout: float = 10.0,
    clean: bool = True,
) -> ssl.SSLSocket:
    """TCP connect to 127.0.0.1, TLS handshake with SNI, CONNECT, and check the CONNACK.

    ``clean=False`` resumes (or starts) a persistent session.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock = context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise
    try:
        sock.sendall(connect_packet(client_id, keep_alive=keep_alive, clean=clean))
        first, body = _read_packet(sock, PacketReader())
        if first >> 4 != CONNACK or len(body) < 2 or body[1] != 0:
            raise ConnectionError(f"CONNECT refused: {first:#x} {body.hex()}")
    except BaseException:
        sock.close()
        raise
    return sock


def sync_publish(
    context: ssl.SSLContext,
    port: int,
    client_id: str,
    topic: str,
    payload: bytes,
    *,
    retain: bool = False,
    server_name: str = "localhost",
) -> None:
    """Connect, publish once at QoS 1, wait for the PUBACK, disconnect."""
    sock = sync_connect(context, port, client_id, server_name=server_name)
    try:
        sock.sendall(publish_packet(topic, payload, qos=1, packet_id=1, retain=retain))
        first, _ = _read_packet(sock, PacketReader())
        if first >> 4 != PUBACK:
            raise ConnectionError(f"expected PUBACK, got {first:#x}")
        sock.sendall(DISCONNECT)
    finally:
        sock.close()
