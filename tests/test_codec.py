"""The sans-IO MQTT codec: round trips, spec byte vectors, chunking, limits, malformed input.

Specs: MQTT 3.1.1 (http://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html) and
MQTT 5.0 (https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_iot_mock.mqtt import codec
from aws_iot_mock.mqtt.codec import (
    EMPTY_PROPERTIES,
    Auth,
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    MqttError,
    Packet,
    PacketReader,
    PacketTooLarge,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolError,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
    encode,
    encode_publish,
    packet_id_offset,
    with_packet_id,
)

# A minimal CONNECT per level, to put a server-side reader into that level.
CONNECT_V4 = bytes.fromhex("100c00044d5154540402003c0000")
CONNECT_V5 = bytes.fromhex("100d00044d5154540502003c000000")
CONNECT_BYTES = {4: CONNECT_V4, 5: CONNECT_V5}


def decode_all(data: bytes, level: int | None) -> list[Packet]:
    """Parse ``data`` completely with a reader preset to ``level`` (None: server side)."""
    reader = PacketReader(protocol_level=level)
    packets = reader.read_packets(data)
    assert reader.buffered == 0
    return packets


def decode_one(data: bytes, level: int | None) -> Packet:
    packets = decode_all(data, level)
    assert len(packets) == 1
    return packets[0]


def read_after_connect(level: int, data: bytes) -> list[Packet]:
    """Feed a CONNECT for ``level`` then ``data`` to a fresh server-side reader."""
    reader = PacketReader()
    return reader.read_packets(CONNECT_BYTES[level] + data)[1:]


# --------------------------------------------------------------------------------------------
# Table-driven round trips

FULL_PROPS = Properties(reason_string="why", user_properties=(("k", "v"), ("k", "v2")))

COMMON_PACKETS: list[Packet] = [
    Connack(session_present=True, reason_code=0),
    Connack(session_present=False, reason_code=0),
    Publish("a/b", b"hello"),
    Publish("a/b", b"", qos=1, packet_id=1, retain=True),
    Publish("caf\u00e9/\U0001f600", b"\x00\xff" * 200, qos=2, dup=True, packet_id=65535),
    Puback(7),
    Pubrec(8),
    Pubrel(9),
    Pubcomp(10),
    Subscribe(11, (("a/+", SubscriptionOptions(qos=1)), ("#", SubscriptionOptions(qos=2)))),
    Subscribe(1, (("x", SubscriptionOptions()),)),
    Unsubscribe(12, ("a/+", "#")),
    Pingreq(),
    Pingresp(),
    Disconnect(),
]
V4_PACKETS: list[Packet] = [
    *COMMON_PACKETS,
    Connect("MQTT", 4, "dev-1", True, 60),
    Connect(
        "MQTT", 4, "", False, 0, will=Will("w", b"gone", 2, True), username="u", password=b"pw"
    ),
    Connect("MQTT", 4, "id", True, 65535, username="only-user"),
    Connack(session_present=False, reason_code=5),
    Suback(11, (0, 1, 2, 0x80)),
    Unsuback(12),
]
V5_PACKETS: list[Packet] = [
    *COMMON_PACKETS,
    Connect(
        "MQTT",
        5,
        "dev-1",
        True,
        60,
        will=Will(
            "w/t",
            b"bye",
            1,
            False,
            Properties(
                payload_format_indicator=1,
                message_expiry_interval=10,
                content_type="text/plain",
                response_topic="r/t",
                correlation_data=b"\x01\x02",
                will_delay_interval=30,
                user_properties=(("a", "b"),),
            ),
        ),
        username="u",
        password=b"p",
        properties=Properties(
            session_expiry_interval=3600,
            authentication_method="SCRAM",
            authentication_data=b"\x00",
            request_problem_information=0,
            request_response_information=1,
            receive_maximum=20,
            topic_alias_maximum=10,
            maximum_packet_size=1 << 20,
            user_properties=(("x", "y"),),
        ),
    ),
    Connect("MQTT", 5, "no-user", False, 10, password=b"password without user is fine in v5"),
    Connack(
        session_present=False,
        reason_code=0x87,
        properties=Properties(
            session_expiry_interval=0,
            assigned_client_identifier="auto-1",
            server_keep_alive=120,
            authentication_method="m",
            authentication_data=b"d",
            response_information="resp",
            server_reference="other:1883",
            reason_string="not authorized",
            receive_maximum=100,
            topic_alias_maximum=0,
            maximum_qos=1,
            retain_available=0,
            user_properties=(("a", "1"),),
            maximum_packet_size=131072,
            wildcard_subscription_available=1,
            subscription_identifier_available=0,
            shared_subscription_available=1,
        ),
    ),
    Publish(
        "",
        b"aliased",
        qos=1,
        packet_id=5,
        properties=Properties(
            payload_format_indicator=0,
            message_expiry_interval=60,
            content_type="c",
            response_topic="reply/to",
            correlation_data=b"cd",
            subscription_identifiers=(1, 268_435_455, 128),
            topic_alias=3,
            user_properties=(("u", "v"),),
        ),
    ),
    Puback(7, 0x10),
    Puback(7, 0x80, FULL_PROPS),
    Pubrec(8, 0x91, FULL_PROPS),
    Pubrel(9, 0x92),
    Pubcomp(10, 0, FULL_PROPS),
    Subscribe(
        3,
        (
            ("a", SubscriptionOptions(qos=2, no_local=True, retain_as_published=True)),
            ("$share/g/b", SubscriptionOptions(qos=0, retain_handling=2)),
        ),
        Properties(subscription_identifiers=(42,), user_properties=(("k", "v"),)),
    ),
    Suback(3, (0, 1, 2, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2), FULL_PROPS),
    Unsubscribe(4, ("a",), Properties(user_properties=(("k", "v"),))),
    Unsuback(4, (0x00, 0x11, 0x80), FULL_PROPS),
    Disconnect(0x04),
    Disconnect(
        0x8E, Properties(session_expiry_interval=0, server_reference="s", reason_string="r")
    ),
    Auth(),
    Auth(0x18, Properties(authentication_method="m", authentication_data=b"x")),
    Auth(0x19),
]


@pytest.mark.parametrize(
    ("level", "packet"),
    [(4, p) for p in V4_PACKETS] + [(5, p) for p in V5_PACKETS],
    ids=lambda value: type(value).__name__ if not isinstance(value, int) else f"v{value}",
)
def test_round_trip(level: int, packet: Packet) -> None:
    encoded = encode(packet, level)
    preset = None if isinstance(packet, Connect) else level
    decoded = decode_one(encoded, preset)
    assert decoded == packet
    assert encode(decoded, level) == encoded


def test_every_packet_type_is_covered() -> None:
    v4_types = {type(p) for p in V4_PACKETS}
    v5_types = {type(p) for p in V5_PACKETS}
    all_types = {
        Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback,
        Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect, Auth,
    }  # fmt: skip
    assert v5_types == all_types
    assert v4_types == all_types - {Auth}


def test_decoded_empty_properties_are_the_shared_constant() -> None:
    packet = decode_one(encode(Publish("t", b"p"), 5), 5)
    assert isinstance(packet, Publish)
    assert packet.properties is EMPTY_PROPERTIES


def test_decoded_values_are_frozen_instances_of_the_public_classes() -> None:
    packet = decode_one(encode(Publish("t", b"p", qos=1, packet_id=3), 4), 4)
    assert type(packet) is Publish
    with pytest.raises(AttributeError):
        packet.topic = "other"  # type: ignore[misc]
    assert hash(packet) == hash(Publish("t", b"p", qos=1, packet_id=3))
    ack = decode_one(encode(Puback(3), 4), 4)
    assert type(ack) is Puback
    assert ack == Puback(3)


def test_level_4_drops_what_mqtt_311_lacks() -> None:
    props = Properties(message_expiry_interval=5)
    assert encode(Publish("t", b"p", properties=props), 4) == encode(Publish("t", b"p"), 4)
    assert encode(Puback(1, 0x80, FULL_PROPS), 4) == b"\x40\x02\x00\x01"
    assert encode(Unsuback(1, (0x11,)), 4) == b"\xb0\x02\x00\x01"
    assert encode(Disconnect(0x8E), 4) == b"\xe0\x00"
    # 3.1.1 3.9.3 has one failure code: MQTT 5 failure codes become 0x80.
    assert encode(Suback(1, (1, 0x87, 0x80)), 4) == b"\x90\x05\x00\x01\x01\x80\x80"


def test_level_3_connect_and_connack() -> None:
    # MQTT 3.1 (protocol name "MQIsdp", level 3) is read, and recorded for the broker to refuse.
    connect = Connect("MQIsdp", 3, "old-client", True, 30)
    encoded = encode(connect, 3)
    assert encoded[2:10] == b"\x00\x06MQIsdp"
    reader = PacketReader()
    assert reader.read_packets(encoded) == [connect]
    assert reader.protocol_level == 3
    # MQTT 3.1 CONNACK: the first byte is reserved, there is no Session Present flag.
    assert encode(Connack(True, 1), 3) == b"\x20\x02\x00\x01"
    with pytest.raises(ValueError, match="level 3"):
        encode(Puback(1), 3)


@pytest.mark.parametrize(
    ("packet", "level"),
    [
        (Auth(), 4),
        (Publish("t", b"", qos=1), 4),
        (Publish("t", b"", qos=3, packet_id=1), 4),
        (Publish("t" * 70000, b""), 4),
        (Connack(False, 0x80), 4),
        (Connect("MQTT", 4, "c", True, 0), 5),
        (Connect("MQTT", 4, "c", True, 0, password=b"p"), 4),
        (Connect("MQTT", 4, "c", True, 70000), 4),
        (Subscribe(1, ()), 4),
        (Unsubscribe(1, ()), 5),
        (Puback(1, 0, Properties(topic_alias=1)), 5),
        (Publish("t", b"", properties=Properties(maximum_qos=1)), 5),
        (Publish("t", b"", properties=Properties(payload_format_indicator=2)), 5),
        (Publish("t", b"", properties=Properties(topic_alias=0)), 5),
        (
            Subscribe(
                1, (("a", SubscriptionOptions()),), Properties(subscription_identifiers=(1, 2))
            ),
            5,
        ),
        (Pingreq(), 6),
    ],
)
def test_encode_refuses_what_the_wire_cannot_carry(packet: Packet, level: int) -> None:
    with pytest.raises(ValueError):
        encode(packet, level)


# --------------------------------------------------------------------------------------------
# Byte vectors written by hand from the specs and real clients


def props(*parts: bytes) -> bytes:
    """A property block: Property Length (one byte here) + the properties."""
    body = b"".join(parts)
    assert len(body) < 128
    return bytes((len(body),)) + body


VECTORS: list[tuple[str, int | None, bytes, Packet]] = [
    (
        # paho-mqtt 3.1.1 CONNECT: client id "paho-test", Clean Session, Keep Alive 60.
        "v4-connect-paho",
        None,
        bytes.fromhex("10 15 0004 4d515454 04 02 003c 0009") + b"paho-test",
        Connect("MQTT", 4, "paho-test", True, 60),
    ),
    (
        # 3.1.1 3.1.2.10 example flags: user name + password + will (QoS 1, retain).
        "v4-connect-full",
        None,
        bytes.fromhex("10 24 0004 4d515454 04 ee 000a 0002")
        + b"id"
        + b"\x00\x03w/t\x00\x03bye"
        + b"\x00\x04user\x00\x04pass",
        Connect("MQTT", 4, "id", True, 10, Will("w/t", b"bye", 1, True), "user", b"pass"),
    ),
    (
        # MQTT 5 CONNECT, properties in identifier order: Session Expiry 3600, Receive Maximum
        # 20, User Property ("a", "b").
        "v5-connect-properties",
        None,
        bytes.fromhex("10 21 0004 4d515454 05 02 001e")
        + props(
            bytes.fromhex("11 00000e10"),
            bytes.fromhex("21 0014"),
            b"\x26\x00\x01a\x00\x01b",
        )
        + b"\x00\x05dev-1",
        Connect(
            "MQTT",
            5,
            "dev-1",
            True,
            30,
            properties=Properties(
                session_expiry_interval=3600, receive_maximum=20, user_properties=(("a", "b"),)
            ),
        ),
    ),
    (
        # MQTT 5 CONNECT with a will carrying Will Delay Interval 5.
        "v5-connect-will-properties",
        None,
        bytes.fromhex("10 1b 0004 4d515454 05 0e 0000 00 0001")
        + b"c"
        + props(bytes.fromhex("18 00000005"))
        + b"\x00\x01t\x00\x02wp",
        Connect(
            "MQTT",
            5,
            "c",
            True,
            0,
            will=Will("t", b"wp", 1, False, Properties(will_delay_interval=5)),
        ),
    ),
    (
        "v4-connack-session-present",
        4,
        bytes.fromhex("20 02 01 00"),
        Connack(True, 0),
    ),
    (
        # MQTT 5 CONNACK as Mosquitto sends it: Receive Maximum 20, Topic Alias Maximum 10.
        "v5-connack",
        5,
        bytes.fromhex("20 09 00 00 06 21 0014 22 000a"),
        Connack(False, 0, Properties(receive_maximum=20, topic_alias_maximum=10)),
    ),
    (
        "v4-publish-qos0",
        4,
        bytes.fromhex("30 0a 0003") + b"a/b" + b"hello",
        Publish("a/b", b"hello"),
    ),
    (
        "v4-publish-qos1-retain-dup",
        4,
        bytes.fromhex("3b 07 0001 61 1234") + b"xy",
        Publish("a", b"xy", qos=1, retain=True, dup=True, packet_id=0x1234),
    ),
    (
        # MQTT 5 PUBLISH with Topic Alias 1 and an empty topic name (5 3.3.2.3.4).
        "v5-publish-alias",
        5,
        bytes.fromhex("30 07 0000 03 23 0001") + b"p",
        Publish("", b"p", properties=Properties(topic_alias=1)),
    ),
    (
        # MQTT 5 PUBACK with Remaining Length 2: reason code 0x00, no properties (5 3.4.2.1).
        "v5-puback-short",
        5,
        bytes.fromhex("40 02 0001"),
        Puback(1),
    ),
    (
        "v5-puback-reason-only",
        5,
        bytes.fromhex("40 03 0001 10"),
        Puback(1, 0x10),
    ),
    ("v4-pubrel", 4, bytes.fromhex("62 02 0001"), Pubrel(1)),
    (
        # mosquitto_sub -t test/topic -q 1 (3.1.1).
        "v4-subscribe",
        4,
        bytes.fromhex("82 0f 0001 000a") + b"test/topic" + b"\x01",
        Subscribe(1, (("test/topic", SubscriptionOptions(qos=1)),)),
    ),
    (
        # MQTT 5 SUBSCRIBE, Subscription Identifier 1, options: QoS 1, No Local, RAP, RH 1.
        "v5-subscribe",
        5,
        bytes.fromhex("82 0b 0002 02 0b 01 0003") + b"a/#" + b"\x1d",
        Subscribe(
            2,
            (("a/#", SubscriptionOptions(1, True, True, 1)),),
            Properties(subscription_identifiers=(1,)),
        ),
    ),
    ("v4-suback", 4, bytes.fromhex("90 04 0001 01 80"), Suback(1, (1, 0x80))),
    ("v5-suback", 5, bytes.fromhex("90 05 0001 00 02 87"), Suback(1, (2, 0x87))),
    ("v4-unsubscribe", 4, bytes.fromhex("a2 05 0003 0001") + b"a", Unsubscribe(3, ("a",))),
    ("v4-unsuback", 4, bytes.fromhex("b0 02 0003"), Unsuback(3)),
    ("v5-unsuback", 5, bytes.fromhex("b0 04 0003 00 11"), Unsuback(3, (0x11,))),
    ("pingreq", 4, bytes.fromhex("c0 00"), Pingreq()),
    ("pingresp", 5, bytes.fromhex("d0 00"), Pingresp()),
    ("v4-disconnect", 4, bytes.fromhex("e0 00"), Disconnect()),
    # MQTT 5 DISCONNECT: Remaining Length 1 carries the reason code only (5 3.14.2.2.1).
    ("v5-disconnect-reason", 5, bytes.fromhex("e0 01 04"), Disconnect(0x04)),
    (
        "v5-disconnect-props",
        5,
        bytes.fromhex("e0 07 8e 05 11 00000000"),
        Disconnect(0x8E, Properties(session_expiry_interval=0)),
    ),
    ("v5-auth-empty", 5, bytes.fromhex("f0 00"), Auth()),
    (
        "v5-auth",
        5,
        bytes.fromhex("f0 06 18 04 15 0001") + b"m",
        Auth(0x18, Properties(authentication_method="m")),
    ),
]


@pytest.mark.parametrize(
    ("level", "data", "expected"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_spec_vector(level: int | None, data: bytes, expected: Packet) -> None:
    assert decode_one(data, level) == expected
    encode_level = expected.protocol_level if isinstance(expected, Connect) else level
    assert encode_level is not None
    assert encode(expected, encode_level) == data


def test_remaining_length_boundaries() -> None:
    # 3.1.1 2.2.3 table: 127 / 128 / 16383 / 16384 / 2097151 / 2097152 byte bodies.
    for body_size, header_size in ((127, 2), (128, 3), (16383, 3), (16384, 4), (2097152, 5)):
        payload = b"z" * (body_size - 3)
        encoded = encode(Publish("t", payload), 4)
        assert len(encoded) == header_size + body_size
        assert decode_one(encoded, 4) == Publish("t", payload)


# --------------------------------------------------------------------------------------------
# Chunking


def mixed_stream(level: int) -> tuple[bytes, list[Packet]]:
    """A CONNECT then 49 assorted packets, as one byte string and as values."""
    rng = random.Random(level)
    packets: list[Packet] = [Connect("MQTT", level, "chunky", True, 60)]
    candidates = [
        p for p in (V5_PACKETS if level == 5 else V4_PACKETS) if not isinstance(p, Connect)
    ]
    while len(packets) < 50:
        choice = rng.choice(candidates)
        if rng.random() < 0.3:
            choice = Publish(
                f"t/{len(packets)}",
                rng.randbytes(rng.randrange(300)),
                qos=1,
                packet_id=len(packets),
            )
        packets.append(choice)
    return b"".join(encode(p, level) for p in packets), packets


@pytest.mark.parametrize("level", [4, 5])
def test_chunked_stream_yields_the_same_packets(level: int) -> None:
    stream, expected = mixed_stream(level)
    for size in range(1, 18):
        reader = PacketReader()
        got: list[Packet] = []
        for start in range(0, len(stream), size):
            got += reader.read_packets(stream[start : start + size])
        assert got == expected, size
        assert reader.buffered == 0
        # The same through feed() + next_packet().
        reader = PacketReader()
        got = []
        for start in range(0, len(stream), size):
            reader.feed(stream[start : start + size])
            while (packet := reader.next_packet()) is not None:
                got.append(packet)
        assert got == expected, size
    rng = random.Random(1234)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randrange(1, 40)))
        reader = PacketReader()
        got = []
        for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            if rng.random() < 0.5:
                got += reader.read_packets(stream[start:stop])
            else:
                reader.feed(stream[start:stop])
                while (packet := reader.next_packet()) is not None:
                    got.append(packet)
        assert got == expected


def test_buffered_counts_the_incomplete_tail() -> None:
    reader = PacketReader(protocol_level=4)
    encoded = encode(Publish("t", b"payload"), 4)
    assert reader.read_packets(encoded + encoded[:5]) == [Publish("t", b"payload")]
    assert reader.buffered == 5
    assert reader.next_packet() is None
    assert reader.read_packets(encoded[5:]) == [Publish("t", b"payload")]
    assert reader.buffered == 0


# --------------------------------------------------------------------------------------------
# Packet size limit


LIMIT = 128 * 1024 + 5  # 128 KiB of body + the longest fixed header


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("level", [4, 5])
def test_packet_too_large_from_the_fixed_header_alone(level: int) -> None:
    size = 10 * 1024 * 1024
    header = b"\x30" + _varint_bytes(size)
    reader = PacketReader(max_packet_size=LIMIT)
    assert reader.read_packets(CONNECT_BYTES[level]) != []
    with pytest.raises(PacketTooLarge) as info:
        reader.read_packets(header)
    assert info.value.reason_code == 0x95
    assert info.value.packet_type == PacketType.PUBLISH
    assert info.value.size == size
    assert reader.buffered <= len(header)
    # The same through feed() + next_packet(), and with the header split.
    reader = PacketReader(max_packet_size=LIMIT, protocol_level=level)
    reader.feed(header[:2])
    assert reader.next_packet() is None
    reader.feed(header[2:])
    with pytest.raises(PacketTooLarge):
        reader.next_packet()
    assert reader.buffered == len(header)


def test_packet_size_limit_counts_the_whole_packet() -> None:
    # The limit is on the whole packet (fixed header included), like MQTT 5's Maximum Packet
    # Size (5 3.1.2.11.4), so a broker can advertise the same number.
    fits = encode(Publish("t", b"x" * 100), 4)
    assert decode_all(fits, 4)
    reader = PacketReader(max_packet_size=len(fits), protocol_level=4)
    assert reader.read_packets(fits) == [Publish("t", b"x" * 100)]
    reader = PacketReader(max_packet_size=len(fits) - 1, protocol_level=4)
    with pytest.raises(PacketTooLarge):
        reader.read_packets(fits)
    # A CONNECT is held to the limit too, before the first-packet rule.
    reader = PacketReader(max_packet_size=10)
    with pytest.raises(PacketTooLarge):
        reader.read_packets(CONNECT_V4)


def test_large_packet_in_small_chunks_is_not_copied_quadratically() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    encoded = encode(Publish("big", payload, qos=1, packet_id=1), 5)
    reader = PacketReader(protocol_level=5)
    got: list[Packet] = []
    for start in range(0, len(encoded), 1000):
        got += reader.read_packets(encoded[start : start + 1000])
    assert got == [Publish("big", payload, qos=1, packet_id=1)]


# --------------------------------------------------------------------------------------------
# Malformed input

M = MalformedPacket
P = ProtocolError
U = UnsupportedProtocolVersion


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def v5_props_publish(*properties: bytes) -> bytes:
    body = b"\x00\x01t" + props(*properties) + b"p"
    return bytes((0x30, len(body))) + body


def v5_connect(flags: int, properties: bytes, payload: bytes = b"\x00\x00") -> bytes:
    body = b"\x00\x04MQTT\x05" + bytes((flags,)) + b"\x00\x00" + properties + payload
    return bytes((0x10, len(body))) + body


def v4_connect(name: bytes = b"MQTT", level: int = 4, flags: int = 2, rest: str = "") -> bytes:
    body = len(name).to_bytes(2, "big") + name + bytes((level, flags)) + h("003c 0000" + rest)
    return bytes((0x10, len(body))) + body


# (id, level, bytes, error). Level 4/5: after a CONNECT of that level; None: a fresh
# server-side reader. The reason code is the error class's, except where REASON_CODES says.
BAD: list[tuple[str, int | None, bytes, type[MqttError]]] = [
    ("first-not-connect", None, h("c0 00"), P),
    ("second-connect", 4, CONNECT_V4, P),
    ("remaining-length-5-bytes", 4, h("30 ff ff ff ff 01"), M),
    ("remaining-length-not-minimal", 5, h("c0 80 00"), M),
    ("reserved-type-0", 4, h("00 00"), M),
    ("auth-in-311", 4, h("f0 00"), M),
    ("puback-flags", 4, h("41 02 0001"), M),
    ("pubrel-flags", 5, h("60 02 0001"), M),
    ("subscribe-flags", 4, h("80 06 0001 0001 61 00"), M),
    ("unsubscribe-flags", 4, h("a0 05 0001 0001 61"), M),
    ("pingreq-flags", 4, h("c1 00"), M),
    ("publish-qos3", 4, h("36 05 0001 61 0001"), M),
    ("publish-qos0-dup", 5, h("38 05 0001 61 00 70"), M),
    ("publish-qos0-dup-v4", 4, h("38 04 0001 61 70"), M),
    ("publish-bad-utf8", 4, h("30 05 0003 c3 28 41"), M),
    ("publish-surrogate", 4, h("30 05 0003 ed a0 80"), M),
    ("publish-nul", 4, h("30 05 0003 61 00 62"), M),
    ("publish-topic-past-end", 4, h("30 03 0005 61"), M),
    ("publish-no-packet-id", 4, h("32 03 0001 61"), M),
    ("publish-packet-id-0", 4, h("32 05 0001 61 0000"), P),
    ("publish-empty-topic-v4", 4, h("30 02 0000"), P),
    ("publish-empty-topic-no-alias", 5, h("30 03 0000 00"), P),
    ("puback-packet-id-0", 4, h("40 02 0000"), P),
    ("puback-v4-3-bytes", 4, h("40 03 0001 00"), M),
    ("puback-short", 5, h("40 01 00"), M),
    ("puback-bad-reason", 5, h("40 03 0001 92"), P),
    ("pubrel-bad-reason", 5, h("62 03 0001 10"), P),
    ("puback-trailing", 5, h("40 05 0001 00 00 00"), M),
    ("subscribe-no-filters-v4", 4, h("82 02 0001"), P),
    ("subscribe-no-filters-v5", 5, h("82 03 0001 00"), P),
    ("subscribe-no-options", 4, h("82 05 0001 0001 61"), M),
    ("subscribe-packet-id-0", 4, h("82 06 0000 0001 61 00"), P),
    ("subscribe-v4-reserved-bits", 4, h("82 06 0001 0001 61 04"), M),
    ("subscribe-v4-qos3", 4, h("82 06 0001 0001 61 03"), M),
    ("subscribe-v5-reserved-bits", 5, h("82 07 0001 00 0001 61 40"), M),
    ("subscribe-v5-retain-handling-3", 5, h("82 07 0001 00 0001 61 30"), P),
    ("subscribe-v5-qos3", 5, h("82 07 0001 00 0001 61 03"), P),
    ("subscribe-sub-id-0", 5, h("82 09 0001 02 0b 00 0001 61 00"), P),
    ("subscribe-sub-id-twice", 5, h("82 0b 0001 04 0b 01 0b 02 0001 61 00"), P),
    ("unsubscribe-no-filters", 4, h("a2 02 0001"), P),
    ("unsubscribe-no-filters-v5", 5, h("a2 03 0001 00"), P),
    ("unsubscribe-truncated", 4, h("a2 05 0001 0005 61"), M),
    ("unsuback-v4-long", 4, h("b0 03 0001 00"), M),
    ("pingreq-body", 4, h("c0 01 00"), M),
    ("disconnect-v4-body", 4, h("e0 01 00"), M),
    ("disconnect-bad-reason", 5, h("e0 01 05"), P),
    ("auth-reason-without-props", 5, h("f0 01 18"), M),
    ("auth-bad-reason", 5, h("f0 02 01 00"), P),
    # MQTT 5 properties (5 2.2.2.2).
    ("prop-unknown-id", 5, v5_props_publish(h("7f 00")), M),
    ("prop-not-allowed", 5, v5_props_publish(h("11 00000001")), P),
    ("prop-duplicate", 5, v5_props_publish(h("02 00000001"), h("02 00000002")), P),
    ("prop-payload-format-2", 5, v5_props_publish(h("01 02")), P),
    ("prop-topic-alias-0", 5, v5_props_publish(h("23 0000")), P),
    ("prop-sub-id-0-publish", 5, v5_props_publish(h("0b 00")), P),
    ("prop-response-topic-wildcard", 5, v5_props_publish(b"\x08\x00\x01#"), P),
    ("prop-value-past-block", 5, v5_props_publish(h("02 0000")), M),
    ("prop-string-past-block", 5, v5_props_publish(b"\x03\x00\x05ab"), M),
    ("prop-length-past-packet", 5, h("30 05 0001 74 0a 00"), M),
    ("prop-bad-utf8", 5, v5_props_publish(h("03 0001 ff")), M),
    ("ack-prop-not-allowed", 5, h("40 07 0001 00 03 23 0001"), P),
    # CONNECT, checked by a fresh server-side reader.
    ("connect-bad-name", None, v4_connect(b"MQTX"), P),
    ("connect-level-6", None, v4_connect(level=6), U),
    ("connect-mqtt-level-3", None, v4_connect(level=3), U),
    ("connect-mqisdp-level-4", None, v4_connect(b"MQIsdp"), U),
    ("connect-reserved-flag", None, v4_connect(flags=0x03), M),
    ("connect-will-qos-no-flag", None, v4_connect(flags=0x0A), M),
    ("connect-will-retain-no-flag", None, v4_connect(flags=0x22), M),
    ("connect-will-qos3", None, v4_connect(flags=0x1E), M),
    ("connect-password-no-user-v4", None, v4_connect(flags=0x42, rest="0001 70"), M),
    ("connect-trailing", None, v4_connect(rest="00"), M),
    ("connect-truncated", None, h("10 07 0004 4d515454 04"), M),
    ("connect-client-id-past-end", None, h("10 0c 0004 4d515454 04 02 003c 0005"), M),
    ("connect-v5-topic-alias", None, v5_connect(0x02, props(h("23 0001"))), P),
    ("connect-v5-dup-expiry", None, v5_connect(2, props(h("11 00000001"), h("11 00000001"))), P),
    ("connect-v5-receive-max-0", None, v5_connect(0x02, props(h("21 0000"))), P),
    ("connect-v5-max-packet-0", None, v5_connect(0x02, props(h("27 00000000"))), P),
    ("connect-v5-request-problem-2", None, v5_connect(0x02, props(h("17 02"))), P),
    ("connect-v5-auth-data-no-method", None, v5_connect(0x02, props(h("16 0001 78"))), P),
    ("connect-v5-props-past-end", None, v5_connect(0x02, b"\x10"), M),
    ("connect-v5-will-delay-in-connect", None, v5_connect(0x02, props(h("18 00000001"))), P),
    (
        "connect-v5-session-expiry-in-will",
        None,
        v5_connect(0x06, b"\x00", b"\x00\x00" + props(h("11 00000001")) + h("0001 74 0000")),
        P,
    ),
]
REASON_CODES = {"prop-topic-alias-0": 0x94}  # 5 3.3.2.3.4 / 2.4: Topic Alias invalid

# Packets only a server sends, read by a client-side reader preset to the level.
BAD_FROM_SERVER: list[tuple[str, int, bytes, type[MqttError]]] = [
    ("connack-reserved-flags", 4, h("20 02 02 00"), M),
    ("connack-v4-code-6", 4, h("20 02 00 06"), P),
    ("connack-session-present-refused", 4, h("20 02 01 05"), P),
    ("connack-v5-bad-reason", 5, h("20 03 00 01 00"), P),
    ("connack-v5-no-props", 5, h("20 02 00 00"), M),
    ("connack-v5-max-qos-2", 5, h("20 05 00 00 02 24 02"), P),
    ("connack-v5-retain-available-5", 5, h("20 05 00 00 02 25 05"), P),
    ("connack-trailing", 4, h("20 03 00 00 00"), M),
    ("suback-v4-code-3", 4, h("90 03 0001 03"), P),
    ("suback-v5-code-0x11", 5, h("90 04 0001 00 11"), P),
    ("suback-no-codes", 4, h("90 02 0001"), P),
    ("unsuback-v5-no-codes", 5, h("b0 03 0001 00"), P),
    ("unsuback-v5-bad-code", 5, h("b0 04 0001 00 01"), P),
]


@pytest.mark.parametrize(("level", "data", "error"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_input(
    request: pytest.FixtureRequest, level: int | None, data: bytes, error: type[MqttError]
) -> None:
    case = request.node.callspec.id
    reader = PacketReader()
    prefix = b"" if level is None else CONNECT_BYTES[level]
    with pytest.raises(error) as info:
        reader.read_packets(prefix + data)
    assert type(info.value) is error
    assert info.value.reason_code == REASON_CODES.get(case, error.reason_code)
    # The same bytes one at a time through feed() + next_packet() fail the same way.
    reader = PacketReader()
    with pytest.raises(error):
        for byte in prefix + data:
            reader.feed(bytes((byte,)))
            while reader.next_packet() is not None:
                pass


def test_reason_codes_of_the_error_classes() -> None:
    assert (M.reason_code, P.reason_code, U.reason_code, PacketTooLarge.reason_code) == (
        0x81,
        0x82,
        0x84,
        0x95,
    )


@pytest.mark.parametrize(
    ("level", "data", "error"),
    [b[1:] for b in BAD_FROM_SERVER],
    ids=[b[0] for b in BAD_FROM_SERVER],
)
def test_malformed_server_packets(level: int, data: bytes, error: type[MqttError]) -> None:
    with pytest.raises(error) as info:
        PacketReader(protocol_level=level).read_packets(data)
    assert type(info.value) is error


def test_error_keeps_the_packets_parsed_before_it() -> None:
    good = encode(Publish("a", b"1"), 4) + encode(Pingreq(), 4)
    reader = PacketReader()
    with pytest.raises(MalformedPacket) as info:
        reader.read_packets(CONNECT_V4 + good + bytes.fromhex("36050001610001"))
    assert info.value.packets[1:] == (Publish("a", b"1"), Pingreq())


def test_unsupported_protocol_version_names_the_level() -> None:
    with pytest.raises(UnsupportedProtocolVersion) as info:
        PacketReader().read_packets(bytes.fromhex("100c00044d5154540602003c0000"))
    assert (info.value.protocol_name, info.value.protocol_level) == ("MQTT", 6)


def test_reader_rejects_an_unknown_preset_level() -> None:
    with pytest.raises(ValueError):
        PacketReader(protocol_level=6)


def test_protocol_level_is_set_by_the_connect() -> None:
    for level, data in CONNECT_BYTES.items():
        reader = PacketReader()
        assert reader.protocol_level is None
        reader.read_packets(data)
        assert reader.protocol_level == level


def test_level_5_connect_then_level_5_packets_in_the_same_chunk() -> None:
    publish = Publish("t", b"p", properties=Properties(message_expiry_interval=9))
    packets = PacketReader().read_packets(CONNECT_V5 + encode(publish, 5))
    assert packets[1] == publish


WARM = b"\x00\x06warm/t"
FAST_PATH_CASES = [
    (4, b"\x30\x0a" + WARM + b"pa"),
    (4, b"\x30\x08" + WARM),
    (5, b"\x30\x0b" + WARM + b"\x00pa"),
    (5, b"\x30\x0d" + WARM + b"\x03\x23\x00\x07" + b"p"),  # Topic Alias 7
    (5, b"\x30\x08" + WARM),  # no Property Length: malformed
    (5, b"\x30\x0a" + WARM + b"\x05p"),  # Property Length past the end
    (4, b"\x30\x07" + WARM[:-1]),  # topic past the end
    (4, b"\x31\x08" + WARM),  # retain
    (4, b"\x32\x0a" + WARM + b"\x00\x00"),  # QoS 1, packet id 0
    (4, b"\x38\x08" + WARM),  # DUP with QoS 0
]


@pytest.mark.parametrize(("level", "data"), FAST_PATH_CASES)
def test_cached_topic_fast_path_matches_the_full_parser(level: int, data: bytes) -> None:
    # read_packets inlines QoS 0 PUBLISHes whose topic was decoded before; the outcome must
    # be the same whether the topic is cached or not.
    def outcome() -> object:
        try:
            return PacketReader(protocol_level=level).read_packets(data)
        except MqttError as exc:
            return type(exc)

    codec._TOPIC_CACHE.clear()
    cold = outcome()
    codec._TOPIC_CACHE[b"warm/t"] = "warm/t"
    assert outcome() == cold


# --------------------------------------------------------------------------------------------
# with_packet_id


@pytest.mark.parametrize("level", [4, 5])
@pytest.mark.parametrize("qos", [1, 2])
def test_with_packet_id(level: int, qos: int) -> None:
    props_v5 = Properties(
        message_expiry_interval=30,
        user_properties=(("k", "v" * 200),),
        subscription_identifiers=(5,),
    )
    original = Publish(
        "sensors/\u00e9/1", b"x" * 300, qos=qos, retain=True, packet_id=1, properties=props_v5
    )
    encoded = encode_publish(original, level)
    assert encoded == encode(original, level)
    expected_props = props_v5 if level == 5 else EMPTY_PROPERTIES
    for packet_id, dup in ((2, False), (0xFFFF, True), (0x0100, False)):
        patched = with_packet_id(encoded, packet_id, dup=dup)
        expected = Publish(
            original.topic, original.payload, qos, True, dup, packet_id, expected_props
        )
        assert patched == encode(expected, level)
        assert decode_one(patched, level) == expected
    assert packet_id_offset(encoded) == 3 + 2 + len(original.topic.encode())  # 2-byte varint


def test_with_packet_id_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        with_packet_id(encode(Publish("t", b""), 4), 1)
    with pytest.raises(ValueError):
        with_packet_id(encode(Puback(1), 4), 1)
    encoded = encode(Publish("t", b"", qos=1, packet_id=1), 4)
    for bad in (0, 0x10000):
        with pytest.raises(ValueError):
            with_packet_id(encoded, bad)


# --------------------------------------------------------------------------------------------
# Property-based tests


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from([b"", CONNECT_V4, CONNECT_V5]), data=st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_mqtt_errors(prefix: bytes, data: bytes) -> None:
    reader = PacketReader(max_packet_size=4096)
    with contextlib.suppress(MqttError):
        reader.read_packets(prefix + data)
    # Fed one small chunk at a time through next_packet, too.
    reader = PacketReader()
    with contextlib.suppress(MqttError):
        reader.feed(prefix)
        for start in range(0, len(data), 7):
            reader.feed(data[start : start + 7])
            while reader.next_packet() is not None:
                pass


@settings(max_examples=300, deadline=None)
@given(level=st.sampled_from([4, 5]), data=st.binary(max_size=300))
def test_arbitrary_bytes_to_a_client_reader_only_raise_mqtt_errors(level: int, data: bytes) -> None:
    with contextlib.suppress(MqttError):
        PacketReader(protocol_level=level).read_packets(data)


@settings(max_examples=300, deadline=None)
@given(
    level=st.sampled_from([4, 5]),
    first=st.integers(0, 255),
    body=st.binary(max_size=60),
)
def test_arbitrary_bodies_only_raise_mqtt_errors(level: int, first: int, body: bytes) -> None:
    # Random bodies behind a valid fixed header reach deeper than random streams.
    with contextlib.suppress(MqttError):
        PacketReader(protocol_level=level).read_packets(bytes((first, len(body))) + body)


text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
topic_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00+#"),
    min_size=1,
    max_size=8,
)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
flag = st.integers(0, 1)
binary = st.binary(max_size=20)
packet_ids = st.integers(1, 0xFFFF)

PROPERTY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "payload_format_indicator": flag,
    "message_expiry_interval": u32,
    "content_type": text,
    "response_topic": topic_text,
    "correlation_data": binary,
    "session_expiry_interval": u32,
    "assigned_client_identifier": text,
    "server_keep_alive": u16,
    "authentication_method": text,
    "authentication_data": binary,
    "request_problem_information": flag,
    "will_delay_interval": u32,
    "request_response_information": flag,
    "response_information": text,
    "server_reference": text,
    "reason_string": text,
    "receive_maximum": st.integers(1, 0xFFFF),
    "topic_alias_maximum": u16,
    "topic_alias": st.integers(1, 0xFFFF),
    "maximum_qos": flag,
    "retain_available": flag,
    "maximum_packet_size": st.integers(1, 0xFFFF_FFFF),
    "wildcard_subscription_available": flag,
    "subscription_identifier_available": flag,
    "shared_subscription_available": flag,
}
sub_id = st.integers(1, 268_435_455)

# 5 2.2.2.2 table: which properties each packet (and the will) may carry.
ALLOWED: dict[str, tuple[str, ...]] = {
    "connect": (
        "session_expiry_interval", "authentication_method", "authentication_data",
        "request_problem_information", "request_response_information", "receive_maximum",
        "topic_alias_maximum", "maximum_packet_size",
    ),
    "will": (
        "payload_format_indicator", "message_expiry_interval", "content_type",
        "response_topic", "correlation_data", "will_delay_interval",
    ),
    "connack": (
        "session_expiry_interval", "assigned_client_identifier", "server_keep_alive",
        "authentication_method", "authentication_data", "response_information",
        "server_reference", "reason_string", "receive_maximum", "topic_alias_maximum",
        "maximum_qos", "retain_available", "maximum_packet_size",
        "wildcard_subscription_available", "subscription_identifier_available",
        "shared_subscription_available",
    ),
    "publish": (
        "payload_format_indicator", "message_expiry_interval", "content_type",
        "response_topic", "correlation_data", "topic_alias",
    ),
    "ack": ("reason_string",),
    "subscribe": (),
    "unsubscribe": (),
    "disconnect": ("session_expiry_interval", "server_reference", "reason_string"),
    "auth": ("authentication_method", "authentication_data", "reason_string"),
}  # fmt: skip


def _properties_from(where: str, values: dict[str, Any]) -> Properties:
    if where == "connect" and "authentication_data" in values:
        values.setdefault("authentication_method", "m")  # 5 3.1.2.11.10
    return Properties(**values)


def properties(where: str) -> st.SearchStrategy[Properties]:
    """Valid MQTT 5 properties for ``where`` (a key of ALLOWED)."""
    optional: dict[str, st.SearchStrategy[Any]] = {
        name: PROPERTY_VALUES[name] for name in ALLOWED[where]
    }
    optional["user_properties"] = st.lists(st.tuples(text, text), max_size=2).map(tuple)
    if where == "publish":  # several only in a PUBLISH (5 3.3.2.3.8)
        optional["subscription_identifiers"] = st.lists(sub_id, min_size=1, max_size=3).map(tuple)
    elif where == "subscribe":
        optional["subscription_identifiers"] = st.tuples(sub_id)
    return st.fixed_dictionaries({}, optional=optional).map(
        lambda values: _properties_from(where, values)
    )


def props_for(level: int, where: str) -> st.SearchStrategy[Properties]:
    return properties(where) if level == 5 else st.just(EMPTY_PROPERTIES)


V5_ACK_CODES = {
    Puback: (0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
    Pubrec: (0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
    Pubrel: (0x00, 0x92),
    Pubcomp: (0x00, 0x92),
}
V5_CONNACK_CODES = (0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
                    0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)  # fmt: skip
V5_SUBACK_CODES = (0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
V5_UNSUBACK_CODES = (0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
V5_DISCONNECT_CODES = (0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
                       0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D,
                       0x9E, 0x9F, 0xA0, 0xA1, 0xA2)  # fmt: skip


@st.composite
def connects(draw: st.DrawFn, level: int) -> Connect:
    will = None
    if draw(st.booleans()):
        will = Will(
            draw(topic_text), draw(binary), draw(st.integers(0, 2)), draw(st.booleans()),
            draw(props_for(level, "will")),
        )  # fmt: skip
    username = draw(st.none() | text)
    password = draw(st.none() | binary)
    if level != 5 and username is None:
        password = None  # 3.1.1 [MQTT-3.1.2-22]
    name = "MQIsdp" if level == 3 else "MQTT"
    return Connect(
        name, level, draw(text), draw(st.booleans()), draw(u16), will, username, password,
        draw(props_for(level, "connect")),
    )  # fmt: skip


@st.composite
def publishes(draw: st.DrawFn, level: int) -> Publish:
    qos = draw(st.integers(0, 2))
    props_ = draw(props_for(level, "publish"))
    topic = draw(topic_text)
    if level == 5 and props_.topic_alias is not None and draw(st.booleans()):
        topic = ""  # 5 3.3.2.3.4: the alias stands for the topic
    return Publish(
        topic, draw(st.binary(max_size=200)), qos, draw(st.booleans()),
        draw(st.booleans()) if qos else False, draw(packet_ids) if qos else None, props_,
    )  # fmt: skip


@st.composite
def acks(draw: st.DrawFn, level: int) -> Packet:
    cls: Any = draw(st.sampled_from([Puback, Pubrec, Pubrel, Pubcomp]))
    packet: Packet
    if level == 4:
        packet = cls(draw(packet_ids))
    else:
        code = draw(st.sampled_from(V5_ACK_CODES[cls]))
        packet = cls(draw(packet_ids), code, draw(properties("ack")))
    return packet


@st.composite
def connacks(draw: st.DrawFn, level: int) -> Connack:
    code = draw(st.sampled_from(V5_CONNACK_CODES) if level == 5 else st.integers(0, 5))
    session_present = draw(st.booleans()) if code == 0 else False  # [MQTT-3.2.2-4/6]
    return Connack(session_present, code, draw(props_for(level, "connack")))


@st.composite
def subscribes(draw: st.DrawFn, level: int) -> Subscribe:
    if level == 5:
        options = st.builds(
            SubscriptionOptions, st.integers(0, 2), st.booleans(), st.booleans(), st.integers(0, 2)
        )
    else:
        options = st.builds(SubscriptionOptions, st.integers(0, 2))
    subscriptions = draw(st.lists(st.tuples(text, options), min_size=1, max_size=4))
    return Subscribe(draw(packet_ids), tuple(subscriptions), draw(props_for(level, "subscribe")))


def valid_packets(level: int) -> st.SearchStrategy[Packet]:
    suback_codes = st.sampled_from(V5_SUBACK_CODES if level == 5 else (0, 1, 2, 0x80))
    strategies: list[st.SearchStrategy[Any]] = [
        connacks(level),
        publishes(level),
        acks(level),
        subscribes(level),
        st.builds(
            Suback,
            packet_ids,
            st.lists(suback_codes, min_size=1).map(tuple),
            props_for(level, "ack"),
        ),
        st.builds(
            Unsubscribe,
            packet_ids,
            st.lists(text, min_size=1, max_size=4).map(tuple),
            props_for(level, "unsubscribe"),
        ),
        st.just(Pingreq()),
        st.just(Pingresp()),
    ]
    if level == 5:
        strategies += [
            st.builds(
                Unsuback,
                packet_ids,
                st.lists(st.sampled_from(V5_UNSUBACK_CODES), min_size=1).map(tuple),
                properties("ack"),
            ),
            st.builds(Disconnect, st.sampled_from(V5_DISCONNECT_CODES), properties("disconnect")),
            st.builds(Auth, st.sampled_from((0x00, 0x18, 0x19)), properties("auth")),
        ]
    else:
        strategies += [st.builds(Unsuback, packet_ids), st.just(Disconnect())]
    return st.one_of(strategies)


VALID = {level: valid_packets(level) for level in (4, 5)}
LEVEL_AND_PACKET = st.sampled_from([4, 5]).flatmap(
    lambda level: st.tuples(st.just(level), VALID[level])
)
CONNECTS = st.sampled_from([3, 4, 5]).flatmap(connects)
LEVEL_AND_STREAM = st.sampled_from([4, 5]).flatmap(
    lambda level: st.tuples(st.just(level), st.lists(VALID[level], min_size=1, max_size=5))
)


@settings(max_examples=300, deadline=None)
@given(level_packet=LEVEL_AND_PACKET)
def test_valid_packets_round_trip(level_packet: tuple[int, Packet]) -> None:
    level, packet = level_packet
    encoded = encode(packet, level)
    decoded = decode_one(encoded, level)
    assert decoded == packet
    assert encode(decoded, level) == encoded


@settings(max_examples=300, deadline=None)
@given(packet=CONNECTS)
def test_valid_connects_round_trip(packet: Connect) -> None:
    level = packet.protocol_level
    encoded = encode(packet, level)
    reader = PacketReader()
    decoded = reader.read_packets(encoded)
    assert decoded == [packet]
    assert reader.protocol_level == level
    assert encode(decoded[0], level) == encoded


@settings(max_examples=300, deadline=None)
@given(level_packets=LEVEL_AND_STREAM, cuts=st.lists(st.integers(0, 2000), max_size=10))
def test_valid_streams_survive_any_chunking(
    level_packets: tuple[int, list[Packet]], cuts: list[int]
) -> None:
    level, packets = level_packets
    stream = CONNECT_BYTES[level] + b"".join(encode(p, level) for p in packets)
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    reader = PacketReader()
    got: list[Packet] = []
    for start, stop in itertools.pairwise(bounds):
        got += reader.read_packets(stream[start:stop])
    assert got[1:] == packets
    assert reader.buffered == 0


@pytest.mark.parametrize("level", [4, 5])
@pytest.mark.parametrize(
    "packet",
    [
        Publish("a/b", b"payload"),
        Publish("a/b", b"", qos=1, packet_id=7, retain=True),
        Publish("t", b"x" * 300, qos=1, packet_id=65535, dup=True),
        Publish(
            "t/\u00e9",
            b"{}",
            properties=Properties(
                content_type="application/json",
                response_topic="r/t",
                correlation_data=b"\x00\x01",
                user_properties=(("k", "v"), ("k", "w")),
                message_expiry_interval=30,
                payload_format_indicator=1,
            ),
        ),
    ],
)
def test_publish_bytes_encodes_what_encode_encodes(packet: Publish, level: int) -> None:
    fields = (packet.topic, packet.payload, packet.qos, packet.retain, packet.dup)
    encoded = codec.publish_bytes(*fields, packet.packet_id, packet.properties, level)
    assert encoded == encode(packet, level)
    assert PacketReader(protocol_level=level).read_packets(encoded) == [
        packet if level == 5 else dataclasses.replace(packet, properties=EMPTY_PROPERTIES)
    ]


@pytest.mark.parametrize(
    ("qos", "packet_id", "message"),
    [(1, None, "packet_id"), (1, 0, "packet_id"), (3, 1, "QoS 3"), (-1, 1, "QoS -1")],
)
def test_publish_bytes_refuses_what_encode_refuses(
    qos: int, packet_id: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        codec.publish_bytes("t", b"", qos, False, False, packet_id, EMPTY_PROPERTIES, 4)


@pytest.mark.parametrize("packet_id", [1, 2, 0x1234, 0xFFFF])
@pytest.mark.parametrize("level", [4, 5])
def test_puback_bytes_is_the_success_puback_at_both_levels(packet_id: int, level: int) -> None:
    assert codec.puback_bytes(packet_id) == encode(Puback(packet_id), level)
    assert PacketReader(protocol_level=level).read_packets(codec.puback_bytes(packet_id)) == [
        Puback(packet_id)
    ]


@pytest.mark.parametrize("packet_id", [0, -1, 0x10000])
def test_puback_bytes_refuses_an_identifier_outside_1_to_65535(packet_id: int) -> None:
    with pytest.raises(ValueError, match="packet_id"):
        codec.puback_bytes(packet_id)


def test_publish_bytes_stays_right_past_its_topic_memory() -> None:
    topics = [f"t/{index}" for index in range(codec._TOPIC_CACHE_SIZE + 10)] + ["l/" + "x" * 300]
    for topic in topics + topics[:5]:
        encoded = codec.publish_bytes(topic, b"p", 1, False, False, 9, EMPTY_PROPERTIES, 4)
        decoded = PacketReader(protocol_level=4).read_packets(encoded)
        assert decoded == [Publish(topic, b"p", qos=1, packet_id=9)]
    assert len(codec._TOPIC_FIELDS) <= codec._TOPIC_CACHE_SIZE
    assert "l/" + "x" * 300 not in codec._TOPIC_FIELDS
