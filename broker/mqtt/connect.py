"""Just enough MQTT to authenticate a connection at the front door: CONNECT in, CONNACK out.

This is the seam where the MQTT core (issue "Native MQTT 3.1.1 + 5 broker core") plugs in; it
reads the first packet of a connection so the front door can log the ``clientId`` and enforce
"nothing before CONNACK". Pure: bytes in, values out.

Formats: MQTT 3.1.1 section 3.1 (http://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html)
and MQTT 5.0 section 3.1 (https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_PACKET_SIZE",
    "ConnectPacket",
    "MalformedPacket",
    "encode_connack",
    "parse_connect",
    "read_fixed_header",
]

# AWS IoT: "Message payload size: 128 KB"; a CONNECT carries at most a will of that size plus
# a client ID, user name and password, so anything far above is refused from the header alone.
MAX_PACKET_SIZE = 128 * 1024 + 4096

PACKET_CONNECT = 1
PACKET_PINGREQ = 12
PACKET_DISCONNECT = 14


class MalformedPacket(Exception):
    """The bytes break the MQTT spec; the connection must be closed."""


@dataclass(frozen=True)
class ConnectPacket:
    """The fields of a CONNECT the front door uses.

    Attributes:
        protocol_name: ``MQTT`` (3.1.1 and 5) or ``MQIsdp`` (3.1).
        protocol_level: 3, 4 (3.1.1) or 5.
        client_id: the client identifier (may be empty).
        keep_alive: seconds, as sent.
        clean_start: the Clean Session / Clean Start flag.
    """

    protocol_name: str
    protocol_level: int
    client_id: str
    keep_alive: int
    clean_start: bool


def read_fixed_header(data: bytes | bytearray) -> tuple[int, int, int] | None:
    """Read an MQTT fixed header from the start of ``data``.

    Returns:
        ``(first_byte, header_length, remaining_length)``, or None when more bytes are needed.

    Raises:
        MalformedPacket: if the Remaining Length uses more than four bytes (MQTT 3.1.1 2.2.3).
    """
    if len(data) < 2:
        return None
    multiplier = 1
    value = 0
    for index in range(1, 5):
        if index >= len(data):
            return None
        byte = data[index]
        value += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            return data[0], index + 1, value
        multiplier *= 128
    raise MalformedPacket("Remaining Length is longer than four bytes")


def parse_connect(first_byte: int, body: bytes) -> ConnectPacket:
    """Parse a CONNECT packet's variable header and payload up to the client ID.

    Raises:
        MalformedPacket: if the packet is not a well-formed CONNECT.
    """
    if first_byte != PACKET_CONNECT << 4:
        raise MalformedPacket(f"expected CONNECT (0x10), got first byte 0x{first_byte:02x}")
    reader = _Reader(body)
    protocol_name = reader.string()
    protocol_level = reader.u8()
    flags = reader.u8()
    if flags & 0x01:
        raise MalformedPacket("the reserved CONNECT flag is set")
    keep_alive = reader.u16()
    if protocol_level == 5:
        reader.take(reader.varint())  # CONNECT properties; the core reads them
    client_id = reader.string()
    return ConnectPacket(
        protocol_name=protocol_name,
        protocol_level=protocol_level,
        client_id=client_id,
        keep_alive=keep_alive,
        clean_start=bool(flags & 0x02),
    )


def encode_connack(
    protocol_level: int, return_code: int, *, session_present: bool = False
) -> bytes:
    """Encode a CONNACK with no properties (MQTT 5 needs at least the empty property length)."""
    flags = 0x01 if session_present else 0x00
    if protocol_level == 5:
        return bytes((0x20, 3, flags, return_code, 0))
    return bytes((0x20, 2, flags, return_code))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise MalformedPacket("the packet ends before its fields do")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def varint(self) -> int:
        value, multiplier = 0, 1
        for _ in range(4):
            byte = self.u8()
            value += (byte & 0x7F) * multiplier
            if not byte & 0x80:
                return value
            multiplier *= 128
        raise MalformedPacket("Variable Byte Integer is longer than four bytes")

    def string(self) -> str:
        raw = self.take(self.u16())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("a UTF-8 string is not valid UTF-8") from exc
        if "\x00" in text:
            raise MalformedPacket("a UTF-8 string contains U+0000")
        return text
