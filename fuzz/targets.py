"""The fuzz targets: one pure function per target, bytes in, ``None`` out.

A target returns normally for every input the code under test handles as documented; anything
else escaping it (an ``AssertionError`` from an oracle below, or any exception the code under test
does not document) is a finding. Hangs and unbounded memory are caught by the driver
(``fuzz/run.py``: libFuzzer's ``-timeout`` and ``-rss_limit_mb``).

The targets need no fuzzer: ``tests/test_fuzz_corpus.py`` replays the committed corpus through
them on every test run, so an input that once found a bug stays a regression test.

Oracles:

* ``mqtt311`` / ``mqtt5`` (``PacketReader``): only ``MqttError`` subclasses may escape; the
  fast path (``read_packets``, over chunks the input chooses) and the slow path (``feed`` +
  ``next_packet``, all at once) agree packet for packet and on the error class; and every packet
  that decodes round-trips: ``decode(encode(p)) == p`` at the level it was read at.
* ``client_hello`` (``read_client_hello``): returns one of its three verdicts, never raises; a
  ``NotTls`` or ``ClientHelloInfo`` verdict on a prefix is final (the front door acts on it), so
  the whole input gets the same verdict.
* ``topics`` (``mqtt.topics``): validation returns a verdict, never raises; the subscription
  index (a trie) matches exactly what the reference ``topic_matches`` matches; removing every
  subscription empties it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aws_iot_mock.core.services import ServiceTable
from aws_iot_mock.mqtt.codec import Connack, Connect, MqttError, Packet, PacketReader, encode
from aws_iot_mock.mqtt.topics import (
    SubscriptionIndex,
    parse_shared,
    topic_matches,
    validate_topic_filter,
    validate_topic_name,
)
from aws_iot_mock.tls.client_hello import (
    ClientHelloInfo,
    NeedMoreData,
    NotTls,
    read_client_hello,
)

__all__ = ["TARGETS", "mqtt_control_byte"]

Target = Callable[[bytes], None]

# Maximum Packet Size choices for the reader, picked by bits 1-2 of the control byte.
_MAX_PACKET_SIZES: tuple[int | None, ...] = (None, 16, 128, 2048)


def mqtt_control_byte(*, server_side: bool, max_size_index: int = 0, chunk_seed: int = 0) -> int:
    """The first byte of an ``mqtt311``/``mqtt5`` input, which sets up the reader.

    Args:
        server_side: bit 0; the reader starts with no protocol level and expects a CONNECT
            (the broker's case) instead of being preset to the target's level.
        max_size_index: bits 1-2; the reader's ``max_packet_size`` is one of None, 16, 128,
            2048 bytes.
        chunk_seed: bits 3-7; 0 feeds the stream in one chunk, anything else seeds the sizes
            of the chunks ``read_packets`` gets.
    """
    return int(server_side) | (max_size_index & 3) << 1 | (chunk_seed & 31) << 3


def _chunks(stream: bytes, seed: int) -> list[bytes]:
    if not seed:
        return [stream]
    rng = random.Random(seed)
    out: list[bytes] = []
    pos = 0
    while pos < len(stream):
        size = rng.choice((1, 1, 2, 3, 5, 8, 64, 300))
        out.append(stream[pos : pos + size])
        pos += size
    return out


def _read_fast(
    stream: bytes, level: int | None, max_size: int | None, seed: int
) -> tuple[list[Packet], type[MqttError] | None, int]:
    """``read_packets`` over chunks: the packets, the error class (or None), bytes buffered."""
    reader = PacketReader(max_packet_size=max_size, protocol_level=level)
    packets: list[Packet] = []
    for chunk in _chunks(stream, seed):
        try:
            packets += reader.read_packets(chunk)
        except MqttError as exc:
            for packet in exc.packets:
                assert not isinstance(packet, tuple)  # read without plain_pairs: no pairs
                packets.append(packet)
            return packets, type(exc), -1
    return packets, None, reader.buffered


def _read_slow(
    stream: bytes, level: int | None, max_size: int | None
) -> tuple[list[tuple[int | None, Packet]], type[MqttError] | None, int]:
    """``feed`` + ``next_packet``: (level read at, packet) pairs, the error class, buffered."""
    reader = PacketReader(max_packet_size=max_size, protocol_level=level)
    reader.feed(stream)
    packets: list[tuple[int | None, Packet]] = []
    while True:
        before = reader.protocol_level
        try:
            packet = reader.next_packet()
        except MqttError as exc:
            return packets, type(exc), -1
        if packet is None:
            return packets, None, reader.buffered
        packets.append((before, packet))


def _round_trip(read_level: int | None, packet: Packet) -> None:
    """decode(encode(p)) == p at the level ``packet`` was read at."""
    if isinstance(packet, Connect):
        level, reader = packet.protocol_level, PacketReader()
    else:
        assert read_level is not None  # a server-side reader reads a CONNECT first
        # Level 3 (MQTT 3.1) is parsed like 3.1.1; encode() speaks it for CONNECT/CONNACK only.
        level = read_level if read_level != 3 or isinstance(packet, Connack) else 4
        reader = PacketReader(protocol_level=level)
    encoded = encode(packet, level)
    again = reader.read_packets(encoded)
    assert again == [packet], f"round trip at level {level}: {packet!r} -> {again!r}"
    assert reader.buffered == 0


def _mqtt_target(level: int) -> Target:
    def target(data: bytes) -> None:
        if not data:
            return
        control, stream = data[0], data[1:]
        preset = None if control & 1 else level
        max_size = _MAX_PACKET_SIZES[(control >> 1) & 3]
        fast, fast_error, fast_buffered = _read_fast(stream, preset, max_size, control >> 3)
        slow, slow_error, slow_buffered = _read_slow(stream, preset, max_size)
        assert fast == [p for _, p in slow], "read_packets and next_packet disagree"
        assert fast_error is slow_error, f"errors differ: {fast_error} vs {slow_error}"
        assert fast_buffered == slow_buffered
        for read_level, packet in slow:
            _round_trip(read_level, packet)

    target.__name__ = f"mqtt_level_{level}"
    return target


def client_hello(data: bytes) -> None:
    """Fuzz target: ``read_client_hello`` on the first bytes of a connection."""
    verdict = read_client_hello(data)
    assert isinstance(verdict, ClientHelloInfo | NeedMoreData | NotTls)
    if isinstance(verdict, ClientHelloInfo) and verdict.server_name is not None:
        assert verdict.server_name.isascii()
    if isinstance(verdict, NotTls):
        assert verdict.description
    # The front door calls the reader on every prefix it receives and acts on a final verdict.
    cuts = {len(data) * i // 8 for i in range(1, 8)} | {len(data) - 1}
    for cut in sorted(c for c in cuts if 0 < c < len(data)):
        early = read_client_hello(data[:cut])
        if isinstance(early, NotTls):
            assert isinstance(verdict, NotTls), f"NotTls at {cut} bytes, then {verdict!r}"
        elif isinstance(early, ClientHelloInfo):
            assert verdict == early, f"{early!r} at {cut} bytes, then {verdict!r}"


def _reserved_topic_verdicts(topic: str) -> None:
    """The reserved topic space's verdicts on a valid topic name (what PublishIngress asks)."""
    services = ServiceTable()
    for retain in (False, True):
        services.publish_refusal(topic, retain=retain)
    services.subscribe_refusal(topic)
    services.routes_to_subscribers(topic)


def topics(data: bytes) -> None:
    """Fuzz target: topic/filter validation and the subscription index against the reference.

    The input is newline-separated strings (UTF-8, undecodable bytes become lone surrogates):
    the last is a topic name, the others topic filters.
    """
    *filters, topic = data.decode("utf-8", "surrogateescape").split("\n")
    topic_ok = validate_topic_name(topic) is None
    if topic_ok:
        _reserved_topic_verdicts(topic)
    index: SubscriptionIndex[int] = SubscriptionIndex()
    added: list[tuple[str, str]] = []
    for number, topic_filter in enumerate(filters[:16]):
        if validate_topic_filter(topic_filter) is not None:
            continue
        subscriber = f"c{number % 3}"
        index.add(subscriber, topic_filter, number)
        if (subscriber, topic_filter) not in added:
            added.append((subscriber, topic_filter))
        if topic_ok and "+" not in topic_filter and "#" not in topic_filter:
            shared = parse_shared(topic_filter)
            plain = shared.topic_filter if shared is not None else topic_filter
            assert topic_matches(topic_filter, topic) == (plain == topic)
    assert len(index) == len(added)
    if topic_ok:
        match = index.match(topic)
        expected_direct = set()
        expected_shared = set()
        for subscriber, topic_filter in added:
            if not topic_matches(topic_filter, topic):
                continue
            shared = parse_shared(topic_filter)
            if shared is None:
                expected_direct.add((subscriber, topic_filter))
            else:
                expected_shared.add((shared.group, shared.topic_filter, subscriber))
        direct = [(subscriber, f) for subscriber, f, _ in match.direct]
        assert len(direct) == len(set(direct)), f"duplicate matches: {direct!r}"
        assert set(direct) == expected_direct, f"{topic!r}: {direct!r} != {expected_direct!r}"
        got_shared = {
            (group, f, subscriber)
            for group, f, members in match.shared
            for subscriber, _ in members
        }
        assert got_shared == expected_shared, f"{topic!r}: {got_shared!r} != {expected_shared!r}"
    for subscriber, topic_filter in added:
        assert index.remove(subscriber, topic_filter)
    assert len(index) == 0
    if topic_ok:
        empty = index.match(topic)
        assert not empty.direct and not empty.shared


TARGETS: dict[str, Target] = {
    "mqtt311": _mqtt_target(4),
    "mqtt5": _mqtt_target(5),
    "client_hello": client_hello,
    "topics": topics,
}
