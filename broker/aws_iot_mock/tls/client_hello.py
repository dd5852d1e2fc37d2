"""Read the SNI ``host_name`` from a TLS ClientHello before OpenSSL sees it.

AWS IoT "uses the server name indication (SNI) TLS extension to apply domain configurations": the
name a device sends picks the domain configuration, and with it the TLS security policy. OpenSSL's
servername callback runs too late for that (switching ``SSLObject.context`` there swaps the
certificate but keeps the first context's versions and cipher list), so the front door reads the
ClientHello itself, picks the context, and only then starts OpenSSL on the same bytes.

Pure: bytes in, a verdict out. Formats: RFC 8446 section 4.1.2 (ClientHello), RFC 5246
section 6.2 (records), RFC 6066 section 3 (server_name).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_CLIENT_HELLO",
    "MAX_CLIENT_HELLO_RECORDS",
    "ClientHelloInfo",
    "NeedMoreData",
    "NotTls",
    "read_client_hello",
]

# A ClientHello can span several records (post-quantum key shares make it ~1.8 KB; a record
# holds 16 KiB). Past this many bytes we stop looking and let OpenSSL judge the stream.
MAX_CLIENT_HELLO = 64 * 1024
# The most records a ClientHello may span. The smallest fragment a client may negotiate is 512
# bytes (RFC 6066 section 4), so MAX_CLIENT_HELLO needs at most 128; a client that sends its
# ClientHello a few bytes per record only makes the reader's work grow with the square of the
# record count.
MAX_CLIENT_HELLO_RECORDS = 128

_RECORD_HANDSHAKE = 0x16
_HANDSHAKE_CLIENT_HELLO = 0x01
_EXTENSION_SERVER_NAME = 0x0000
_NAME_TYPE_HOST_NAME = 0x00


@dataclass(frozen=True)
class ClientHelloInfo:
    """What the front door needs from a complete ClientHello.

    Attributes:
        server_name: the SNI ``host_name`` (as sent; compare case-insensitively), or None.
    """

    server_name: str | None


@dataclass(frozen=True)
class NeedMoreData:
    """The buffer holds the start of a ClientHello; call again with more bytes.

    Attributes:
        at_least: the buffer length below which the verdict cannot change (a caller may wait
            for that many bytes before calling again).
    """

    at_least: int = 0


@dataclass(frozen=True)
class NotTls:
    """The bytes are not a TLS ClientHello (or one we could not read).

    Attributes:
        description: a human sentence for the log's ``details``.
    """

    description: str


def read_client_hello(data: bytes) -> ClientHelloInfo | NeedMoreData | NotTls:
    """Parse the ClientHello at the start of ``data`` (the first bytes a client sent).

    Returns:
        ``ClientHelloInfo`` once the whole ClientHello is in ``data``; ``NeedMoreData`` while it
        is incomplete; ``NotTls`` when the bytes cannot be a ClientHello.
    """
    if not data:
        return NeedMoreData(1)
    if data[0] != _RECORD_HANDSHAKE:
        return NotTls(_describe_non_tls(data))
    handshake = bytearray()
    offset = 0
    records = 0
    # Reassemble handshake records until the ClientHello message is complete.
    while True:
        if len(data) < offset + 5:
            return NeedMoreData(offset + 5)
        if data[offset] != _RECORD_HANDSHAKE:
            return NotTls("a non-handshake record arrived inside the ClientHello")
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        if length == 0 or length > 16384 + 2048:
            return NotTls(f"TLS record length {length} is invalid")
        if len(data) < offset + 5 + length:
            return NeedMoreData(offset + 5 + length)
        records += 1
        if records > MAX_CLIENT_HELLO_RECORDS:
            return NotTls(f"the ClientHello spans more than {MAX_CLIENT_HELLO_RECORDS} records")
        handshake += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != _HANDSHAKE_CLIENT_HELLO:
                return NotTls(f"the first handshake message has type {handshake[0]}")
            body_length = int.from_bytes(handshake[1:4], "big")
            if body_length > MAX_CLIENT_HELLO:
                return NotTls(f"the ClientHello claims {body_length} bytes")
            if len(handshake) >= 4 + body_length:
                return _parse_body(bytes(handshake[4 : 4 + body_length]))


def _parse_body(body: bytes) -> ClientHelloInfo | NotTls:
    try:
        return ClientHelloInfo(server_name=_server_name(body))
    except (IndexError, ValueError) as exc:
        return NotTls(f"malformed ClientHello: {exc}")


def _server_name(body: bytes) -> str | None:
    reader = _Reader(body)
    reader.skip(2 + 32)  # legacy_version, random
    reader.skip(reader.u8())  # legacy_session_id
    reader.skip(reader.u16())  # cipher_suites
    reader.skip(reader.u8())  # legacy_compression_methods
    if reader.at_end():
        return None  # no extensions at all: an SSL 3.0-style hello, hence no SNI
    extensions = _Reader(reader.take(reader.u16()))
    while not extensions.at_end():
        extension_type = extensions.u16()
        extension = extensions.take(extensions.u16())
        if extension_type != _EXTENSION_SERVER_NAME:
            continue
        names = _Reader(extension)
        name_list = _Reader(names.take(names.u16()))
        while not name_list.at_end():
            name_type = name_list.u8()
            name = name_list.take(name_list.u16())
            if name_type == _NAME_TYPE_HOST_NAME:
                # RFC 6066: "The hostname is represented as a byte string using ASCII encoding".
                return name.decode("ascii")
        return None
    return None


def _describe_non_tls(data: bytes) -> str:
    # A plaintext MQTT CONNECT starts with 0x10: the commonest mistake is pointing a client
    # without TLS at the TLS port.
    if data[0] == 0x10:
        return "received a plaintext MQTT CONNECT; this endpoint accepts only TLS"
    if data[:4] in (b"GET ", b"POST", b"HEAD", b"PUT "):
        return "received a plaintext HTTP request; this endpoint accepts only TLS"
    return f"the first byte 0x{data[0]:02x} does not start a TLS handshake record"


class _Reader:
    """Bounds-checked big-endian reads over a bytes object (IndexError when short)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise IndexError(f"needed {size} bytes at offset {self._pos}, have {len(self._data)}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def skip(self, size: int) -> None:
        self.take(size)

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def at_end(self) -> bool:
        return self._pos >= len(self._data)
