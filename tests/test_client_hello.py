"""``read_client_hello`` against real OpenSSL ClientHellos, and against bytes that are not TLS."""

from __future__ import annotations

import random
import ssl
import struct

import pytest

from aws_iot_mock.tls.client_hello import (
    MAX_CLIENT_HELLO_RECORDS,
    ClientHelloInfo,
    NeedMoreData,
    NotTls,
    read_client_hello,
)
from tests.conftest import MQTT311_CONNECT

SNI = "Device.Example.com"


def real_client_hello(server_hostname: str | None, *, tls13: bool = True) -> bytes:
    """The first flight an OpenSSL client sends: a ClientHello in one or more records."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if server_hostname is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if not tls13:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass  # waiting for the ServerHello, the ClientHello is in ``outgoing``
    else:
        raise AssertionError("a handshake cannot complete without a server")
    data = outgoing.read()
    assert data[0] == 0x16
    return data


def records(data: bytes) -> list[tuple[int, bytes]]:
    """Split a byte stream into (content type, fragment) TLS records."""
    out = []
    offset = 0
    while offset < len(data):
        content_type = data[offset]
        (length,) = struct.unpack("!H", data[offset + 3 : offset + 5])
        out.append((content_type, data[offset + 5 : offset + 5 + length]))
        offset += 5 + length
    assert offset == len(data)
    return out


def frame(content_type: int, fragment: bytes, version: bytes = b"\x03\x01") -> bytes:
    return bytes((content_type,)) + version + struct.pack("!H", len(fragment)) + fragment


def handshake_message(data: bytes) -> bytes:
    """The ClientHello handshake message (type, length, body) of a one-record first flight."""
    (only,) = records(data)
    assert only[0] == 0x16
    return only[1]


def rebuild(body: bytes) -> bytes:
    """Frame a ClientHello body into a handshake message in one record."""
    return frame(0x16, b"\x01" + len(body).to_bytes(3, "big") + body)


def body_parts(hello: bytes) -> tuple[bytes, bytes]:
    """Split a ClientHello body into (everything before the extensions, the extensions block)."""
    body = handshake_message(hello)[4:]
    pos = 2 + 32
    pos += 1 + body[pos]  # session id
    pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher suites
    pos += 1 + body[pos]  # compression methods
    extensions_length = int.from_bytes(body[pos : pos + 2], "big")
    assert pos + 2 + extensions_length == len(body)
    return body[:pos], body[pos + 2 :]


@pytest.fixture(scope="module")
def hello_with_sni() -> bytes:
    return real_client_hello(SNI)


@pytest.fixture(scope="module")
def hello_without_sni() -> bytes:
    return real_client_hello(None)


def test_server_name_is_preserved_as_sent(hello_with_sni: bytes) -> None:
    assert read_client_hello(hello_with_sni) == ClientHelloInfo(server_name=SNI)


def test_tls12_only_client_hello() -> None:
    assert read_client_hello(real_client_hello(SNI, tls13=False)) == ClientHelloInfo(SNI)


def test_no_sni_gives_none(hello_without_sni: bytes) -> None:
    assert read_client_hello(hello_without_sni) == ClientHelloInfo(server_name=None)


def test_trailing_bytes_after_the_hello_are_ignored(hello_with_sni: bytes) -> None:
    assert read_client_hello(hello_with_sni + b"\x17\x03\x03") == ClientHelloInfo(SNI)


def needs_more(data: bytes, end: int) -> bool:
    """The prefix ``data[:end]`` needs more bytes, and says truthfully how many at least."""
    result = read_client_hello(data[:end])
    if not isinstance(result, NeedMoreData) or result.at_least <= end:
        return False
    # Below ``at_least`` the verdict does not change (the door skips those calls).
    return all(
        isinstance(read_client_hello(data[:shorter]), NeedMoreData)
        for shorter in range(end, min(result.at_least, len(data)))
    )


def test_empty_buffer_needs_more_data() -> None:
    assert read_client_hello(b"") == NeedMoreData(1)


def test_byte_by_byte(hello_with_sni: bytes) -> None:
    for end in range(len(hello_with_sni)):
        assert needs_more(hello_with_sni, end), end
    assert read_client_hello(hello_with_sni) == ClientHelloInfo(SNI)


def test_a_client_hello_in_too_many_records_is_not_read(hello_with_sni: bytes) -> None:
    message = handshake_message(hello_with_sni)
    tiny = b"".join(frame(0x16, message[i : i + 1]) for i in range(len(message)))
    verdict = read_client_hello(tiny)
    assert isinstance(verdict, NotTls)
    assert f"more than {MAX_CLIENT_HELLO_RECORDS} records" in verdict.description
    # The twin: fragments of 512 bytes (RFC 6066's smallest) are read.
    fragments = b"".join(frame(0x16, message[i : i + 512]) for i in range(0, len(message), 512))
    assert read_client_hello(fragments) == ClientHelloInfo(SNI)


@pytest.mark.parametrize("seed", range(20))
def test_random_chunk_splits(seed: int, hello_with_sni: bytes) -> None:
    # What the front door does: append each received chunk and ask again.
    rng = random.Random(seed)
    buffer = b""
    remaining = hello_with_sni
    while remaining:
        size = rng.randint(1, max(1, len(remaining) // 3))
        buffer += remaining[:size]
        remaining = remaining[size:]
        result = read_client_hello(buffer)
        if remaining:
            assert isinstance(result, NeedMoreData)
        else:
            assert result == ClientHelloInfo(SNI)


@pytest.mark.parametrize("split_at", [1, 3, 4, 40, -1])
def test_client_hello_split_across_two_records(hello_with_sni: bytes, split_at: int) -> None:
    message = handshake_message(hello_with_sni)
    cut = split_at % len(message)
    two_records = frame(0x16, message[:cut]) + frame(0x16, message[cut:])
    assert len(records(two_records)) == 2
    for end in range(len(two_records)):
        assert needs_more(two_records, end), end
    assert read_client_hello(two_records) == ClientHelloInfo(SNI)


def test_client_hello_without_extensions_has_no_sni(hello_with_sni: bytes) -> None:
    before_extensions, _ = body_parts(hello_with_sni)
    assert read_client_hello(rebuild(before_extensions)) == ClientHelloInfo(None)


def test_sni_extension_with_non_host_name_entry_only(hello_with_sni: bytes) -> None:
    before_extensions, _ = body_parts(hello_with_sni)
    entry = b"\x01" + struct.pack("!H", 3) + b"abc"  # name_type 1 is not host_name
    sni = struct.pack("!H", len(entry)) + entry
    extensions = struct.pack("!HH", 0, len(sni)) + sni
    body = before_extensions + struct.pack("!H", len(extensions)) + extensions
    assert read_client_hello(rebuild(body)) == ClientHelloInfo(None)


def _malformed_extensions_cases() -> list[tuple[str, bytes]]:
    hello = real_client_hello(SNI)
    before, extensions = body_parts(hello)
    cases = []
    # Extensions length claims more than the body holds.
    cases.append(("extensions length too long", before + struct.pack("!H", len(extensions) + 9)))
    cases.append(("extensions block truncated", before + struct.pack("!H", len(extensions))))
    # A single extension whose own length runs past the block.
    bad_extension = struct.pack("!HH", 0x0000, 500) + b"\x00\x05"
    cases.append(
        (
            "extension length overruns",
            before + struct.pack("!H", len(bad_extension)) + bad_extension,
        )
    )
    # A server_name extension whose name list claims more than the extension holds.
    sni = struct.pack("!H", 40) + b"\x00" + struct.pack("!H", 3) + b"abc"
    extension = struct.pack("!HH", 0x0000, len(sni)) + sni
    cases.append(("name list overruns", before + struct.pack("!H", len(extension)) + extension))
    # A host_name that is not ASCII.
    name = "bücher.example".encode()
    entry = b"\x00" + struct.pack("!H", len(name)) + name
    sni = struct.pack("!H", len(entry)) + entry
    extension = struct.pack("!HH", 0x0000, len(sni)) + sni
    cases.append(("non-ASCII host_name", before + struct.pack("!H", len(extension)) + extension))
    # Garbage after the fixed fields: a lone byte where the extensions length belongs.
    cases.append(("one stray byte", before + b"\x07"))
    # A body cut off inside the random.
    cases.append(("body shorter than random", before[:20]))
    # Garbage instead of the ClientHello body.
    cases.append(("garbage body", bytes(range(256)) * 2))
    return [(label, rebuild(body)) for label, body in cases]


MALFORMED_CASES = _malformed_extensions_cases()


@pytest.mark.parametrize(
    ("label", "data"), MALFORMED_CASES, ids=[label for label, _ in MALFORMED_CASES]
)
def test_malformed_client_hello_is_not_tls(label: str, data: bytes) -> None:
    result = read_client_hello(data)
    assert isinstance(result, NotTls), label
    assert result.description.startswith("malformed ClientHello"), result


def _not_tls_cases() -> list[tuple[str, bytes, str]]:
    hello = real_client_hello(SNI)
    message = handshake_message(hello)
    server_hello_type = b"\x02" + message[1:]
    return [
        ("mqtt connect", MQTT311_CONNECT, "plaintext MQTT CONNECT"),
        ("http get", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP"),
        ("http post", b"POST /topics/x HTTP/1.1\r\n", "HTTP"),
        ("random byte", b"\x42", "0x42"),
        ("sslv2 hello", b"\x80\x2e\x01\x03\x01", "0x80"),
        ("zero-length record", b"\x16\x03\x01\x00\x00", "length 0"),
        ("oversized record", b"\x16\x03\x01\xff\xff", "length 65535"),
        ("non-ClientHello handshake", frame(0x16, server_hello_type), "type 2"),
        (
            "alert record inside the hello",
            frame(0x16, message[:10]) + frame(0x15, b"\x02\x28"),
            "non-handshake record",
        ),
        (
            "huge claimed body",
            frame(0x16, b"\x01\xff\xff\xff" + b"\x00" * 10),
            "claims",
        ),
    ]


NOT_TLS_CASES = _not_tls_cases()


@pytest.mark.parametrize(
    ("label", "data", "phrase"), NOT_TLS_CASES, ids=[label for label, _, _ in NOT_TLS_CASES]
)
def test_not_tls(label: str, data: bytes, phrase: str) -> None:
    result = read_client_hello(data)
    assert isinstance(result, NotTls), (label, result)
    assert phrase in result.description
    assert result.description  # a sentence for the log's details


def test_not_tls_is_decided_from_the_first_byte() -> None:
    # No need to wait for more bytes: a plaintext client is told off at once.
    assert isinstance(read_client_hello(b"\x10"), NotTls)
    assert isinstance(read_client_hello(b"G"), NotTls)


@pytest.mark.parametrize("seed", range(200))
def test_random_bytes_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(1, 300)
    data = bytes(rng.getrandbits(8) for _ in range(size))
    if seed % 2:
        # Make half of them look like a handshake record carrying a ClientHello header.
        data = b"\x16\x03\x01" + struct.pack("!H", size) + b"\x01" + data
    result = read_client_hello(data)
    assert isinstance(result, ClientHelloInfo | NeedMoreData | NotTls)
