"""Sans-IO MQTT 3.1.1 and MQTT 5 codec: bytes in, packet values out, and back.

Pure module: no I/O, no asyncio, no logging. ``PacketReader`` turns a byte stream (any chunking)
into packet values and enforces the wire-format rules of the specs; ``encode`` turns packet
values into bytes. Everything that needs connection or session state (topic aliases, receive
maximum, QoS 2 flows, client ID rules, topic filter syntax, who may send which packet) belongs
to the broker, not here.

Specs cited as "3.1.1 x.y" and "5 x.y":

* MQTT 3.1.1: http://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html
* MQTT 5.0: https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html

Performance notes: the hot paths (``PacketReader.read_packets`` and ``encode`` of PUBLISH and
acknowledgements) index and slice ``bytes`` directly and never loop per byte; decoded topic
names are memoised (``_TOPIC_CACHE``); the commonest packet (QoS 0 PUBLISH with a known topic)
is parsed inline in ``read_packets``; and the frozen packet values are built through
``aws_iot_mock.frozen_values``, since a frozen dataclass ``__init__`` pays one
``object.__setattr__`` per field, more than parsing the packet costs.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, TypeAlias, overload

from aws_iot_mock.frozen_values import fast_factory, mutable_twin, new_object, set_class

__all__ = [
    "EMPTY_PROPERTIES",
    "MAX_REMAINING_LENGTH",
    "Auth",
    "Connack",
    "Connect",
    "Disconnect",
    "MalformedPacket",
    "MqttError",
    "Packet",
    "PacketReader",
    "PacketTooLarge",
    "PacketType",
    "Pingreq",
    "Pingresp",
    "PlainPublish",
    "Properties",
    "ProtocolError",
    "Puback",
    "Pubcomp",
    "Publish",
    "Pubrec",
    "Pubrel",
    "Suback",
    "Subscribe",
    "SubscriptionOptions",
    "Unsuback",
    "Unsubscribe",
    "UnsupportedProtocolVersion",
    "Will",
    "encode",
    "encode_publish",
    "packet_id_offset",
    "puback_bytes",
    "publish_bytes",
    "with_packet_id",
]

# 3.1.1 2.2.3 / 5 1.5.5: four Variable Byte Integer bytes carry at most 268,435,455.
MAX_REMAINING_LENGTH: Final = 268_435_455


# --------------------------------------------------------------------------------------------
# Errors


class MqttError(Exception):
    """The bytes received break the MQTT spec; the connection must be closed.

    Attributes:
        reason_code: the MQTT 5 reason code to send in the DISCONNECT (or in the CONNACK when
            the error is in the CONNECT), 5 2.4. MQTT 3.1.1 has no such packet: just close.
        packets: the packets ``PacketReader.read_packets`` parsed successfully from the same
            call before it met the bad one (empty otherwise); they were valid and arrived first.
    """

    reason_code: int = 0x80  # Unspecified error
    packets: tuple[Packet | PlainPublish, ...] = ()

    def __init__(self, message: str, *, reason_code: int | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(MqttError):
    """The packet cannot be parsed according to the spec (5 reason code 0x81)."""

    reason_code = 0x81


class ProtocolError(MqttError):
    """The packet parses but breaks a rule of the protocol (5 reason code 0x82)."""

    reason_code = 0x82


class UnsupportedProtocolVersion(MqttError):
    """A CONNECT names a protocol or level this codec does not speak (5 reason code 0x84).

    3.1.1 3.1.2.2 wants CONNACK return code 0x01 then a close; 5 3.1.2.2 allows CONNACK 0x84.

    Attributes:
        protocol_name: the protocol name the CONNECT carried.
        protocol_level: the protocol level byte the CONNECT carried.
    """

    reason_code = 0x84

    def __init__(self, protocol_name: str, protocol_level: int) -> None:
        super().__init__(f"unsupported protocol {protocol_name!r} level {protocol_level}")
        self.protocol_name = protocol_name
        self.protocol_level = protocol_level


class PacketTooLarge(MqttError):
    """A fixed header announces a packet above the reader's limit (5 reason code 0x95).

    Raised from the fixed header alone, before the body is buffered.

    Attributes:
        packet_type: the control packet type from the fixed header.
        size: the Remaining Length the fixed header declares.
        limit: the reader's ``max_packet_size`` (limit on the whole packet, header included).
    """

    reason_code = 0x95

    def __init__(self, packet_type: int, size: int, limit: int) -> None:
        super().__init__(
            f"packet type {packet_type} declares remaining length {size}, "
            f"over the maximum packet size {limit}"
        )
        self.packet_type = packet_type
        self.size = size
        self.limit = limit


# --------------------------------------------------------------------------------------------
# Packet values


class PacketType(enum.IntEnum):
    """MQTT control packet types (3.1.1 2.2.1, 5 2.1.2); AUTH exists in MQTT 5 only."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


@dataclass(frozen=True, slots=True)
class Properties:
    """MQTT 5 properties (5 2.2.2.2); a field is None (or empty) when the property is absent.

    Multi-valued properties keep wire order: ``subscription_identifiers`` (several only in a
    PUBLISH, 5 3.3.2.3.8) and ``user_properties`` (name, value) pairs (5 3.3.2.3.7).
    MQTT 3.1.1 has no properties: packets read at level 4 carry ``EMPTY_PROPERTIES``.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __repr__(self) -> str:
        """Show only the properties that are present: ``Properties(topic_alias=3)``."""
        present = (
            f"{f.name}={value!r}"
            for f in fields(self)
            if (value := getattr(self, f.name)) is not None and value != ()
        )
        return f"Properties({', '.join(present)})"


EMPTY_PROPERTIES: Final = Properties()


@dataclass(frozen=True, slots=True)
class Will:
    """The Will Message of a CONNECT (3.1.1 3.1.2.5, 5 3.1.3.2)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT (3.1.1 3.1, 5 3.1). ``protocol_level`` is 3 (MQTT 3.1, "MQIsdp"), 4 or 5."""

    protocol_name: str
    protocol_level: int
    client_id: str
    clean_start: bool
    keep_alive: int
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK (3.1.1 3.2, 5 3.2). At level 3/4 ``reason_code`` is the return code 0..5."""

    session_present: bool
    reason_code: int
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Publish:
    """PUBLISH (3.1.1 3.3, 5 3.3). ``packet_id`` is None exactly when ``qos`` is 0.

    At level 5 ``topic`` may be empty when ``properties.topic_alias`` is set; resolving the
    alias is the broker's job.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Puback:
    """PUBACK (3.1.1 3.4, 5 3.4); reason code and properties exist at level 5 only."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubrec:
    """PUBREC (3.1.1 3.5, 5 3.5); reason code and properties exist at level 5 only."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubrel:
    """PUBREL (3.1.1 3.6, 5 3.6); reason code and properties exist at level 5 only."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pubcomp:
    """PUBCOMP (3.1.1 3.7, 5 3.7); reason code and properties exist at level 5 only."""

    packet_id: int
    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class SubscriptionOptions:
    """The options byte of one SUBSCRIBE entry (5 3.8.3.1); level 4 has only ``qos``."""

    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE (3.1.1 3.8, 5 3.8): at least one (topic filter, options) pair.

    Topic filter syntax is not checked here: at level 5 a bad filter gets SUBACK 0x8F, at
    level 4 SUBACK 0x80 (3.1.1 3.8.4), both the broker's call.
    """

    packet_id: int
    subscriptions: tuple[tuple[str, SubscriptionOptions], ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK (3.1.1 3.9, 5 3.9): one reason code per subscription; level 4: 0, 1, 2, 0x80."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE (3.1.1 3.10, 5 3.10): at least one topic filter."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK (3.1.1 3.11, 5 3.11); level 4 has no reason codes (read as ``()``)."""

    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ (3.1.1 3.12, 5 3.12)."""


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP (3.1.1 3.13, 5 3.13)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT (3.1.1 3.14, 5 3.14); reason code and properties exist at level 5 only."""

    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH (5 3.15), MQTT 5 only."""

    reason_code: int = 0
    properties: Properties = EMPTY_PROPERTIES


Packet: TypeAlias = (
    Connect
    | Connack
    | Publish
    | Puback
    | Pubrec
    | Pubrel
    | Pubcomp
    | Subscribe
    | Suback
    | Unsubscribe
    | Unsuback
    | Pingreq
    | Pingresp
    | Disconnect
    | Auth
)

# A plain PUBLISH (QoS 0, no DUP or RETAIN, no properties) as ``read_packets(...,
# plain_pairs=True)`` returns it: (topic, payload), without a ``Publish`` value.
PlainPublish: TypeAlias = tuple[str, bytes]

_new_properties: Final = fast_factory(Properties)
_new_connect: Final = fast_factory(Connect)
_new_will: Final = fast_factory(Will)
_new_subscribe: Final = fast_factory(Subscribe)
_new_suback: Final = fast_factory(Suback)
_PUBLISH_TWIN: Final = mutable_twin(Publish)
_ACK_CLASSES: Final[dict[int, tuple[type, type]]] = {
    PacketType.PUBACK: (mutable_twin(Puback), Puback),
    PacketType.PUBREC: (mutable_twin(Pubrec), Pubrec),
    PacketType.PUBREL: (mutable_twin(Pubrel), Pubrel),
    PacketType.PUBCOMP: (mutable_twin(Pubcomp), Pubcomp),
}
_PINGREQ: Final = Pingreq()
_PINGRESP: Final = Pingresp()
_DISCONNECT_NORMAL: Final = Disconnect()

# --------------------------------------------------------------------------------------------
# Property table (5 2.2.2.2)

# Context bits: bit n for packet type n; bit 0 (type 0 is reserved) stands for the Will
# Properties of a CONNECT payload (5 3.1.3.2).
_C_WILL: Final = 1 << 0
_C_CONNECT: Final = 1 << 1
_C_CONNACK: Final = 1 << 2
_C_PUBLISH: Final = 1 << 3
_C_PUBACK: Final = 1 << 4
_C_PUBREC: Final = 1 << 5
_C_PUBREL: Final = 1 << 6
_C_PUBCOMP: Final = 1 << 7
_C_SUBSCRIBE: Final = 1 << 8
_C_SUBACK: Final = 1 << 9
_C_UNSUBSCRIBE: Final = 1 << 10
_C_UNSUBACK: Final = 1 << 11
_C_DISCONNECT: Final = 1 << 14
_C_AUTH: Final = 1 << 15
_C_ACKS: Final = _C_PUBACK | _C_PUBREC | _C_PUBREL | _C_PUBCOMP
_C_MESSAGE: Final = _C_PUBLISH | _C_WILL
_C_REASON_STRING: Final = _C_CONNACK | _C_ACKS | _C_SUBACK | _C_UNSUBACK | _C_DISCONNECT | _C_AUTH
_C_USER: Final = _C_REASON_STRING | _C_CONNECT | _C_MESSAGE | _C_SUBSCRIBE | _C_UNSUBSCRIBE

_CONTEXT_NAMES: Final = {_C_WILL: "Will Properties"} | {1 << t: t.name for t in PacketType}

# Value kinds (5 1.5 data representation).
_BYTE: Final = 0  # Byte; every Byte property takes only 0 or 1
_U16: Final = 1  # Two Byte Integer
_U32: Final = 2  # Four Byte Integer
_VARINT: Final = 3  # Variable Byte Integer (only Subscription Identifier)
_STR: Final = 4  # UTF-8 Encoded String
_BIN: Final = 5  # Binary Data
_PAIR: Final = 6  # UTF-8 String Pair (only User Property)

# (identifier, field name, kind, allowed contexts, zero is a Protocol Error), identifier order.
_PROPERTY_TABLE: Final[tuple[tuple[int, str, int, int, bool], ...]] = (
    (0x01, "payload_format_indicator", _BYTE, _C_MESSAGE, False),
    (0x02, "message_expiry_interval", _U32, _C_MESSAGE, False),
    (0x03, "content_type", _STR, _C_MESSAGE, False),
    (0x08, "response_topic", _STR, _C_MESSAGE, False),
    (0x09, "correlation_data", _BIN, _C_MESSAGE, False),
    (0x0B, "subscription_identifiers", _VARINT, _C_PUBLISH | _C_SUBSCRIBE, True),
    (0x11, "session_expiry_interval", _U32, _C_CONNECT | _C_CONNACK | _C_DISCONNECT, False),
    (0x12, "assigned_client_identifier", _STR, _C_CONNACK, False),
    (0x13, "server_keep_alive", _U16, _C_CONNACK, False),
    (0x15, "authentication_method", _STR, _C_CONNECT | _C_CONNACK | _C_AUTH, False),
    (0x16, "authentication_data", _BIN, _C_CONNECT | _C_CONNACK | _C_AUTH, False),
    (0x17, "request_problem_information", _BYTE, _C_CONNECT, False),
    (0x18, "will_delay_interval", _U32, _C_WILL, False),
    (0x19, "request_response_information", _BYTE, _C_CONNECT, False),
    (0x1A, "response_information", _STR, _C_CONNACK, False),
    (0x1C, "server_reference", _STR, _C_CONNACK | _C_DISCONNECT, False),
    (0x1F, "reason_string", _STR, _C_REASON_STRING, False),
    (0x21, "receive_maximum", _U16, _C_CONNECT | _C_CONNACK, True),
    (0x22, "topic_alias_maximum", _U16, _C_CONNECT | _C_CONNACK, False),
    (0x23, "topic_alias", _U16, _C_PUBLISH, True),
    (0x24, "maximum_qos", _BYTE, _C_CONNACK, False),
    (0x25, "retain_available", _BYTE, _C_CONNACK, False),
    (0x26, "user_properties", _PAIR, _C_USER, False),
    (0x27, "maximum_packet_size", _U32, _C_CONNECT | _C_CONNACK, True),
    (0x28, "wildcard_subscription_available", _BYTE, _C_CONNACK, False),
    (0x29, "subscription_identifier_available", _BYTE, _C_CONNACK, False),
    (0x2A, "shared_subscription_available", _BYTE, _C_CONNACK, False),
)
_PROPERTY_BY_ID: Final[list[tuple[int, str, int, int, bool] | None]] = [None] * 256
for _spec in _PROPERTY_TABLE:
    _PROPERTY_BY_ID[_spec[0]] = _spec
del _spec

# Reason codes each packet may carry (5 2.4 and the packet sections); 3.1.1 codes separately.
_CONNACK_CODES_V5: Final = frozenset({
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
    0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
})  # fmt: skip
_PUBACK_CODES: Final = frozenset((0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99))
_PUBREL_CODES: Final = frozenset((0x00, 0x92))
_ACK_CODES: Final[dict[int, frozenset[int]]] = {
    PacketType.PUBACK: _PUBACK_CODES,  # 5 3.4.2.1
    PacketType.PUBREC: _PUBACK_CODES,  # 5 3.5.2.1
    PacketType.PUBREL: _PUBREL_CODES,  # 5 3.6.2.1
    PacketType.PUBCOMP: _PUBREL_CODES,  # 5 3.7.2.1
}
_SUBACK_CODES_V5: Final = frozenset(
    (0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
)
_SUBACK_CODES_V4: Final = frozenset((0x00, 0x01, 0x02, 0x80))
_UNSUBACK_CODES: Final = frozenset((0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91))
_DISCONNECT_CODES: Final = frozenset({
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
})  # fmt: skip
_AUTH_CODES: Final = frozenset((0x00, 0x18, 0x19))

# Fixed header flags (3.1.1 2.2.2, 5 2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010,
# PUBLISH carries DUP/QoS/RETAIN (-1: checked by the PUBLISH parser), type 0 is reserved (-2).
_FIXED_FLAGS: Final = (-2, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0)

# --------------------------------------------------------------------------------------------
# Decoding primitives. Each takes the whole buffer plus a read offset and a hard end, and
# returns (value, next offset); running past ``end`` is a Malformed Packet.

_U16_STRUCT: Final = struct.Struct(">H")
_U32_STRUCT: Final = struct.Struct(">I")
_pack_u16: Final = _U16_STRUCT.pack
_pack_u32: Final = _U32_STRUCT.pack
_unpack_u32_from: Final = _U32_STRUCT.unpack_from


def _read_varint(data: bytes, p: int, end: int) -> tuple[int, int]:
    """Read a Variable Byte Integer (5 1.5.5, 3.1.1 2.2.3) at ``p``."""
    value = 0
    shift = 0
    for q in range(p, min(p + 4, end)):
        byte = data[q]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            # 5 1.5.5: the encoding MUST use the minimum number of bytes [MQTT-1.5.5-1].
            if byte == 0 and q != p:
                raise MalformedPacket("Variable Byte Integer is not minimally encoded")
            return value, q + 1
        shift += 7
    if end - p >= 4:
        raise MalformedPacket("Variable Byte Integer is longer than four bytes")
    raise MalformedPacket("packet ends inside a Variable Byte Integer")


def _read_u16(data: bytes, p: int, end: int) -> int:
    if p + 2 > end:
        raise MalformedPacket("packet ends inside a Two Byte Integer")
    return (data[p] << 8) | data[p + 1]


def _read_str(data: bytes, p: int, end: int) -> tuple[str, int]:
    """Read a UTF-8 Encoded String (3.1.1 1.5.3, 5 1.5.4)."""
    if p + 2 > end:
        raise MalformedPacket("packet ends inside a string length")
    q = p + 2 + ((data[p] << 8) | data[p + 1])
    if q > end:
        raise MalformedPacket("string runs past the end of its packet")
    try:
        # The strict codec rejects ill-formed UTF-8 including encoded surrogates
        # [MQTT-1.5.3-1] (3.1.1) / [MQTT-1.5.4-1] (5).
        text = data[p + 2 : q].decode()
    except UnicodeDecodeError:
        raise MalformedPacket("string is not well-formed UTF-8") from None
    if "\x00" in text:  # [MQTT-1.5.3-2] / [MQTT-1.5.4-2]
        raise MalformedPacket("string contains U+0000")
    return text, q


def _read_bin(data: bytes, p: int, end: int) -> tuple[bytes, int]:
    """Read Binary Data (5 1.5.6; 3.1.1 3.1.3.4 will message, 3.1.3.5 password)."""
    if p + 2 > end:
        raise MalformedPacket("packet ends inside a binary data length")
    q = p + 2 + ((data[p] << 8) | data[p + 1])
    if q > end:
        raise MalformedPacket("binary data runs past the end of its packet")
    return data[p + 2 : q], q


def _read_properties(data: bytes, p: int, end: int, context: int) -> tuple[Properties, int]:  # noqa: PLR0912, PLR0915
    """Read a property block (5 2.2.2) at ``p`` for ``context`` (a ``_C_*`` bit)."""
    if p < end and data[p] == 0:  # fast path: Property Length 0
        return EMPTY_PROPERTIES, p + 1
    length, p = _read_varint(data, p, end)
    stop = p + length
    if stop > end:
        raise MalformedPacket("Property Length runs past the end of the packet")
    values: dict[str, Any] = {}
    user: list[tuple[str, str]] = []
    subscription_ids: list[int] = []
    while p < stop:
        identifier = data[p]
        spec = _PROPERTY_BY_ID[identifier]
        if spec is None:
            # 5 2.2.2.2: an identifier not in the table is a Malformed Packet.
            raise MalformedPacket(f"unknown property identifier 0x{identifier:02x}")
        _, name, kind, allowed, nonzero = spec
        if not allowed & context:
            # 5 2.2.2.2 calls this Malformed; like Mosquitto we answer Protocol Error (0x82).
            raise ProtocolError(
                f"property {name} (0x{identifier:02x}) is not allowed in {_CONTEXT_NAMES[context]}"
            )
        p += 1
        value: Any
        if kind == _PAIR:  # 5 3.1.2.11.8: may appear more than once
            key, p = _read_str(data, p, stop)
            pair_value, p = _read_str(data, p, stop)
            user.append((key, pair_value))
            continue
        if kind == _BYTE:
            if p >= stop:
                raise MalformedPacket(f"property {name} runs past the property block")
            value = data[p]
            p += 1
            if value > 1:  # every Byte property is a 0/1 switch (5 3.1.2.11.6, 3.2.2.3.4 ...)
                raise ProtocolError(f"property {name} must be 0 or 1, got {value}")
        elif kind == _U16:
            value = _read_u16(data, p, stop)
            p += 2
        elif kind == _U32:
            if p + 4 > stop:
                raise MalformedPacket(f"property {name} runs past the property block")
            value = _unpack_u32_from(data, p)[0]
            p += 4
        elif kind == _STR:
            value, p = _read_str(data, p, stop)
        elif kind == _BIN:
            value, p = _read_bin(data, p, stop)
        else:  # _VARINT: Subscription Identifier, 5 3.3.2.3.8 / 3.8.2.1.2
            value, p = _read_varint(data, p, stop)
            if not value:  # 1..268,435,455
                raise ProtocolError(f"property {name} must not be 0")
            if subscription_ids and context != _C_PUBLISH:  # only a PUBLISH may carry several
                raise ProtocolError(f"property {name} appears more than once")
            subscription_ids.append(value)
            continue
        if nonzero and not value:
            # 5 3.1.2.11.3/3.2.2.3.3 receive maximum, 3.1.2.11.4 maximum packet size,
            # 3.3.2.3.4 topic alias (0x94 Topic Alias invalid), 3.8.2.1.2 subscription id.
            raise ProtocolError(
                f"property {name} must not be 0",
                reason_code=0x94 if identifier == 0x23 else None,
            )
        if name in values:  # 5 2.2.2.2: only User Property (and PUBLISH sub ids) may repeat
            raise ProtocolError(f"property {name} appears more than once")
        values[name] = value
    if "response_topic" in values:
        topic = values["response_topic"]
        if "+" in topic or "#" in topic:  # [MQTT-3.3.2-14], 5 3.1.3.2.5
            raise ProtocolError("Response Topic contains a wildcard")
    if user:
        values["user_properties"] = tuple(user)
    if subscription_ids:
        values["subscription_identifiers"] = tuple(subscription_ids)
    return _new_properties(**values), p


def _check_packet_id(packet_id: int) -> int:
    if not packet_id:  # 3.1.1 2.3.1 / 5 2.2.1: a Packet Identifier is non-zero
        raise ProtocolError("Packet Identifier is 0")
    return packet_id


# --------------------------------------------------------------------------------------------
# Packet parsers: (buffer, first byte, body start, body end, MQTT 5?) -> packet.
# The fixed header flags were validated against _FIXED_FLAGS already, except for PUBLISH.


def _parse_connect(data: bytes, first: int, p: int, end: int, v5: bool) -> Connect:  # noqa: PLR0912, PLR0915
    # 3.1.1 3.1.2.1-2 / 5 3.1.2.1-2: protocol name and level.
    name, p = _read_str(data, p, end)
    if p + 4 > end:
        raise MalformedPacket("CONNECT variable header is truncated")
    level = data[p]
    if name == "MQTT":
        if level not in (4, 5):
            raise UnsupportedProtocolVersion(name, level)
    elif name == "MQIsdp":  # MQTT 3.1
        if level != 3:
            raise UnsupportedProtocolVersion(name, level)
    else:
        raise ProtocolError(f"unknown protocol name {name!r}")
    v5 = level == 5
    flags = data[p + 1]
    keep_alive = (data[p + 2] << 8) | data[p + 3]
    p += 4
    # 3.1.1 3.1.2.3 [MQTT-3.1.2-3] / 5 3.1.2.3: the reserved flag bit must be 0.
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag is set")
    will_flag = flags & 0x04
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if not will_flag and (will_qos or will_retain):  # [MQTT-3.1.2-11/13/15]
        raise MalformedPacket("Will QoS or Will Retain set without the Will Flag")
    if will_qos == 3:  # [MQTT-3.1.2-14]
        raise MalformedPacket("Will QoS is 3")
    has_password = flags & 0x40
    has_username = flags & 0x80
    if has_password and not has_username and not v5:  # 3.1.1 [MQTT-3.1.2-22]
        raise MalformedPacket("Password Flag set without User Name Flag")
    properties = EMPTY_PROPERTIES
    if v5:
        properties, p = _read_properties(data, p, end, _C_CONNECT)
        # 5 3.1.2.11.10: Authentication Data without Authentication Method is a Protocol Error.
        if properties.authentication_data is not None and properties.authentication_method is None:
            raise ProtocolError("Authentication Data without Authentication Method")
    # Payload order (3.1.1 3.1.3 / 5 3.1.3): client id, will, user name, password.
    client_id, p = _read_str(data, p, end)
    will = None
    if will_flag:
        will_properties = EMPTY_PROPERTIES
        if v5:
            will_properties, p = _read_properties(data, p, end, _C_WILL)
        will_topic, p = _read_str(data, p, end)
        will_payload, p = _read_bin(data, p, end)
        will = _new_will(will_topic, will_payload, will_qos, will_retain, will_properties)
    username = None
    if has_username:
        username, p = _read_str(data, p, end)
    password = None
    if has_password:
        password, p = _read_bin(data, p, end)
    if p != end:
        raise MalformedPacket("bytes after the end of the CONNECT payload")
    return _new_connect(
        name, level, client_id, bool(flags & 0x02), keep_alive, will, username, password,
        properties,
    )  # fmt: skip


def _parse_connack(data: bytes, first: int, p: int, end: int, v5: bool) -> Connack:
    if p + 2 > end:
        raise MalformedPacket("CONNACK is shorter than 2 bytes")
    ack_flags = data[p]
    code = data[p + 1]
    if ack_flags & 0xFE:  # 3.1.1 3.2.2.1 / 5 3.2.2.1.1: bits 7-1 are reserved
        raise MalformedPacket("CONNACK reserved flags are set")
    properties = EMPTY_PROPERTIES
    if v5:
        if code not in _CONNACK_CODES_V5:  # 5 3.2.2.2
            raise ProtocolError(f"invalid CONNACK reason code 0x{code:02x}")
        properties, p = _read_properties(data, p + 2, end, _C_CONNACK)
    else:
        if code > 5:  # 3.1.1 3.2.2.3: 6-255 are reserved
            raise ProtocolError(f"invalid CONNACK return code {code}")
        p += 2
    if p != end:
        raise MalformedPacket("bytes after the end of the CONNACK")
    if ack_flags and code:  # [MQTT-3.2.2-4] / [MQTT-3.2.2-6]
        raise ProtocolError("Session Present set in a refusing CONNACK")
    return Connack(bool(ack_flags), code, properties)


def _parse_publish(data: bytes, first: int, p: int, end: int, v5: bool) -> Publish:  # noqa: PLR0912
    # 3.1.1 3.3.1 / 5 3.3.1: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
    qos = (first >> 1) & 0x03
    if p + 2 > end:
        raise MalformedPacket("PUBLISH ends inside the topic length")
    q = p + 2 + ((data[p] << 8) | data[p + 1])
    if q > end:
        raise MalformedPacket("PUBLISH topic runs past the end of the packet")
    raw_topic = data[p + 2 : q]
    topic = _TOPIC_CACHE.get(raw_topic)
    if topic is None:
        topic = _decode_topic(raw_topic)
    if qos:
        if qos == 3:  # [MQTT-3.3.1-4]
            raise MalformedPacket("PUBLISH QoS is 3")
        if q + 2 > end:
            raise MalformedPacket("PUBLISH ends inside the Packet Identifier")
        packet_id: int | None = (data[q] << 8) | data[q + 1]
        if not packet_id:  # [MQTT-2.3.1-1]
            raise ProtocolError("PUBLISH Packet Identifier is 0")
        q += 2
    elif first & 0x08:  # [MQTT-3.3.1-2]
        raise MalformedPacket("PUBLISH has DUP set with QoS 0")
    else:
        packet_id = None
    if v5:
        if q < end and not data[q]:  # Property Length 0, the common case
            properties = EMPTY_PROPERTIES
            q += 1
        else:
            properties, q = _read_properties(data, q, end, _C_PUBLISH)
        # 5 3.3.2.3.4: a zero-length topic needs a Topic Alias.
        if not topic and properties.topic_alias is None:
            raise ProtocolError("PUBLISH has an empty topic and no Topic Alias")
    else:
        properties = EMPTY_PROPERTIES
        if not topic:  # 3.1.1 4.7.3 [MQTT-4.7.3-1]
            raise ProtocolError("PUBLISH topic is empty")
    obj = new_object(_PUBLISH_TWIN)  # see frozen_values.mutable_twin
    obj.topic = topic
    obj.payload = data[q:end]
    obj.qos = qos
    obj.retain = first & 0x01 != 0
    obj.dup = first & 0x08 != 0
    obj.packet_id = packet_id
    obj.properties = properties
    set_class(obj, Publish)
    publish: Publish = obj
    return publish


# Decoded topic names by raw bytes: brokers see the same few topics over and over, and a dict
# hit is cheaper than decoding and checking. Bounded: cleared when full.
_TOPIC_CACHE: Final[dict[bytes, str]] = {}
_TOPIC_CACHE_SIZE: Final = 4096
_TOPIC_CACHE_MAX_TOPIC: Final = 256  # bytes; bounds the cache at about 1 MiB of keys


def _decode_topic(raw: bytes) -> str:
    try:
        topic = raw.decode()  # [MQTT-1.5.3-1] / [MQTT-1.5.4-1]
    except UnicodeDecodeError:
        raise MalformedPacket("PUBLISH topic is not well-formed UTF-8") from None
    if "\x00" in topic:  # [MQTT-1.5.3-2] / [MQTT-1.5.4-2]
        raise MalformedPacket("PUBLISH topic contains U+0000")
    if len(raw) <= _TOPIC_CACHE_MAX_TOPIC:
        if len(_TOPIC_CACHE) >= _TOPIC_CACHE_SIZE:
            _TOPIC_CACHE.clear()
        _TOPIC_CACHE[raw] = topic
    return topic


def _parse_ack(data: bytes, first: int, p: int, end: int, v5: bool) -> Packet:
    # PUBACK/PUBREC/PUBREL/PUBCOMP: 3.1.1 3.4-3.7 (exactly 2 bytes), 5 3.4-3.7 (2 bytes, or
    # reason code, or reason code + properties: 5 3.4.2.1 "Remaining Length of 2" rule).
    size = end - p
    ptype = first >> 4
    if size < 2:
        raise MalformedPacket(f"{PacketType(ptype).name} is shorter than 2 bytes")
    packet_id = (data[p] << 8) | data[p + 1]
    if not packet_id:
        raise ProtocolError(f"{PacketType(ptype).name} Packet Identifier is 0")
    code = 0
    properties = EMPTY_PROPERTIES
    if size != 2:
        if not v5:
            raise MalformedPacket(f"{PacketType(ptype).name} is not 2 bytes long")
        code = data[p + 2]
        if code not in _ACK_CODES[ptype]:
            raise ProtocolError(f"invalid {PacketType(ptype).name} reason code 0x{code:02x}")
        if size > 3:
            properties, q = _read_properties(data, p + 3, end, 1 << ptype)
            if q != end:
                raise MalformedPacket(f"bytes after the end of the {PacketType(ptype).name}")
    twin, cls = _ACK_CLASSES[ptype]
    obj = new_object(twin)  # see frozen_values.mutable_twin
    obj.packet_id = packet_id
    obj.reason_code = code
    obj.properties = properties
    set_class(obj, cls)
    ack: Packet = obj
    return ack


def _parse_subscribe(data: bytes, first: int, p: int, end: int, v5: bool) -> Subscribe:
    packet_id = _check_packet_id(_read_u16(data, p, end))
    p += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, p = _read_properties(data, p, end, _C_SUBSCRIBE)
    subscriptions: list[tuple[str, SubscriptionOptions]] = []
    while p < end:
        topic_filter, p = _read_str(data, p, end)
        if p >= end:
            raise MalformedPacket("SUBSCRIBE entry lacks its options byte")
        options = data[p]
        p += 1
        qos = options & 0x03
        if v5:
            # 5 3.8.3.1: bits 7-6 reserved [MQTT-3.8.3-5]; QoS 3 and Retain Handling 3 are
            # Protocol Errors.
            if options & 0xC0:
                raise MalformedPacket("SUBSCRIBE options reserved bits are set")
            retain_handling = (options >> 4) & 0x03
            if qos == 3 or retain_handling == 3:
                raise ProtocolError("SUBSCRIBE QoS or Retain Handling is 3")
            opts = SubscriptionOptions(
                qos, bool(options & 0x04), bool(options & 0x08), retain_handling
            )
        else:
            # 3.1.1 3.8.3.1 [MQTT-3-8.3-4]: bits 7-2 reserved, QoS 3 is malformed.
            if options & 0xFC or qos == 3:
                raise MalformedPacket("SUBSCRIBE requested QoS byte is invalid")
            opts = _QOS_OPTIONS[qos]
        subscriptions.append((topic_filter, opts))
    if not subscriptions:  # 3.1.1 [MQTT-3.8.3-3] / 5 3.8.3
        raise ProtocolError("SUBSCRIBE has no topic filters")
    return _new_subscribe(packet_id, tuple(subscriptions), properties)


_QOS_OPTIONS: Final = tuple(SubscriptionOptions(qos) for qos in range(3))


def _parse_suback(data: bytes, first: int, p: int, end: int, v5: bool) -> Suback:
    packet_id = _check_packet_id(_read_u16(data, p, end))
    p += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, p = _read_properties(data, p, end, _C_SUBACK)
    codes = tuple(data[p:end])
    if not codes:
        raise ProtocolError("SUBACK has no reason codes")
    allowed = _SUBACK_CODES_V5 if v5 else _SUBACK_CODES_V4  # 5 3.9.3 / 3.1.1 3.9.3
    if not allowed.issuperset(codes):
        raise ProtocolError("SUBACK carries an invalid reason code")
    return _new_suback(packet_id, codes, properties)


def _parse_unsubscribe(data: bytes, first: int, p: int, end: int, v5: bool) -> Unsubscribe:
    packet_id = _check_packet_id(_read_u16(data, p, end))
    p += 2
    properties = EMPTY_PROPERTIES
    if v5:
        properties, p = _read_properties(data, p, end, _C_UNSUBSCRIBE)
    filters: list[str] = []
    while p < end:
        topic_filter, p = _read_str(data, p, end)
        filters.append(topic_filter)
    if not filters:  # 3.1.1 [MQTT-3.10.3-2] / 5 3.10.3
        raise ProtocolError("UNSUBSCRIBE has no topic filters")
    return Unsubscribe(packet_id, tuple(filters), properties)


def _parse_unsuback(data: bytes, first: int, p: int, end: int, v5: bool) -> Unsuback:
    packet_id = _check_packet_id(_read_u16(data, p, end))
    p += 2
    if not v5:
        if p != end:  # 3.1.1 3.11.1: Remaining Length is 2
            raise MalformedPacket("UNSUBACK is not 2 bytes long")
        return Unsuback(packet_id)
    properties, p = _read_properties(data, p, end, _C_UNSUBACK)
    codes = tuple(data[p:end])
    if not codes:
        raise ProtocolError("UNSUBACK has no reason codes")
    if not _UNSUBACK_CODES.issuperset(codes):  # 5 3.11.3
        raise ProtocolError("UNSUBACK carries an invalid reason code")
    return Unsuback(packet_id, codes, properties)


def _parse_ping(data: bytes, first: int, p: int, end: int, v5: bool) -> Packet:
    if p != end:  # 3.1.1 3.12/3.13, 5 3.12/3.13: no variable header, no payload
        raise MalformedPacket("PINGREQ/PINGRESP has a body")
    return _PINGREQ if first >> 4 == PacketType.PINGREQ else _PINGRESP


def _parse_reason_only(
    data: bytes, p: int, end: int, *, v5: bool, context: int, codes: frozenset[int], what: str
) -> tuple[int, Properties]:
    """Read the body of a DISCONNECT or AUTH: (reason code, properties), both optional."""
    if p == end:  # 5 3.14.2.1 / 3.15.2.1: Remaining Length 0 means 0x00, no properties
        return 0, EMPTY_PROPERTIES
    if not v5:  # 3.1.1 3.14: no variable header
        raise MalformedPacket(f"{what} has a body")
    code = data[p]
    if code not in codes:
        raise ProtocolError(f"invalid {what} reason code 0x{code:02x}")
    if p + 1 == end:
        if context == _C_AUTH:  # 5 3.15.2.1: only both may be omitted
            raise MalformedPacket("AUTH has a reason code but no Property Length")
        return code, EMPTY_PROPERTIES  # 5 3.14.2.2.1: Property Length may be omitted
    properties, p = _read_properties(data, p + 1, end, context)
    if p != end:
        raise MalformedPacket(f"bytes after the end of the {what}")
    return code, properties


def _parse_disconnect(data: bytes, first: int, p: int, end: int, v5: bool) -> Disconnect:
    if p == end:
        return _DISCONNECT_NORMAL
    code, properties = _parse_reason_only(
        data, p, end, v5=v5, context=_C_DISCONNECT, codes=_DISCONNECT_CODES, what="DISCONNECT"
    )
    return Disconnect(code, properties)


def _parse_auth(data: bytes, first: int, p: int, end: int, v5: bool) -> Auth:
    if not v5:  # 3.1.1 2.2.1: type 15 is reserved
        raise MalformedPacket("packet type 15 is reserved in MQTT 3.1.1")
    code, properties = _parse_reason_only(
        data, p, end, v5=v5, context=_C_AUTH, codes=_AUTH_CODES, what="AUTH"
    )
    return Auth(code, properties)


def _parse_reserved(data: bytes, first: int, p: int, end: int, v5: bool) -> Packet:
    raise MalformedPacket("packet type 0 is reserved")


_Parser: TypeAlias = Callable[[bytes, int, int, int, bool], Packet]
_PARSERS: Final[tuple[_Parser, ...]] = (
    _parse_reserved,
    _parse_connect,
    _parse_connack,
    _parse_publish,
    _parse_ack,
    _parse_ack,
    _parse_ack,
    _parse_ack,
    _parse_subscribe,
    _parse_suback,
    _parse_unsubscribe,
    _parse_unsuback,
    _parse_ping,
    _parse_ping,
    _parse_disconnect,
    _parse_auth,
)


# --------------------------------------------------------------------------------------------
# The reader


class PacketReader:
    """Incremental parser: bytes in (arbitrary chunking, many packets per chunk), packets out.

    Contract:

    * Feed bytes with ``feed`` and pull packets with ``next_packet``, or do both at once with
      ``read_packets`` (the fast path). Mixing them is allowed.
    * The parse level is ``protocol_level``. When it is None (server side, fresh
      connection) the first packet must be a CONNECT, whose own level byte decides the format
      and is then stored in ``protocol_level`` (3 for "MQIsdp" MQTT 3.1, which is parsed like
      3.1.1 and which the broker refuses; 4; 5). A second CONNECT is a Protocol Error
      (3.1.1 [MQTT-3.1.0-2], 5 3.1). A client-side reader passes ``protocol_level`` up front.
    * The reader does not care who sent what: it parses every packet type in both directions
      (the broker rejects, say, a CONNACK from a client).
    * Any ``MqttError`` means the connection must be closed; the reader is unusable afterwards.
    """

    __slots__ = ("_buf", "_max", "_pos", "protocol_level")

    def __init__(
        self, *, max_packet_size: int | None = None, protocol_level: int | None = None
    ) -> None:
        """Create a reader.

        Args:
            max_packet_size: the largest whole packet accepted (fixed header + Remaining
                Length, like MQTT 5's Maximum Packet Size, 5 3.1.2.11.4), or None for the
                protocol maximum. Checked from the fixed header, before the body is buffered.
            protocol_level: None to expect a CONNECT first (server side), else 3, 4 or 5.
        """
        if protocol_level not in (None, 3, 4, 5):
            raise ValueError(f"protocol_level must be None, 3, 4 or 5, not {protocol_level}")
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._max = max_packet_size
        self.protocol_level: int | None = protocol_level

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as (part of) a packet."""
        return len(self._buf) - self._pos

    def limit_packet_size(self, max_packet_size: int) -> None:
        """From now on, refuse packets larger than ``max_packet_size`` (whole packet).

        A server applies the Maximum Packet Size it advertised in CONNACK (MQTT 5 3.2.2.3.6) to
        what follows the CONNECT.
        """
        self._max = max_packet_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; nothing is parsed until ``next_packet``."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def _header(self, data: bytes | bytearray, pos: int, n: int) -> tuple[int, int] | None:
        """Parse and vet the fixed header at ``pos`` (3.1.1 2.2, 5 2.1).

        Returns:
            ``(body start, body end)``, or None when the header itself is incomplete. The body
            may still be incomplete (``body end > n``).
        """
        value = 0
        shift = 0
        q = pos + 1
        while True:
            if q >= n:
                return None
            byte = data[q]
            value |= (byte & 0x7F) << shift
            q += 1
            if byte < 0x80:
                if byte == 0 and shift:  # [MQTT-1.5.5-1]
                    raise MalformedPacket("Remaining Length is not minimally encoded")
                break
            shift += 7
            if shift == 28:  # 3.1.1 2.2.3 / 5 2.1.4: at most four bytes
                raise MalformedPacket("Remaining Length is longer than four bytes")
        self._vet(data[pos], q - pos, value)
        return q, q + value

    def _vet(self, first: int, header_size: int, remaining: int) -> None:
        ptype = first >> 4
        if self._max is not None and header_size + remaining > self._max:
            raise PacketTooLarge(ptype, remaining, self._max)
        if self.protocol_level is None and ptype != PacketType.CONNECT:
            # 3.1.1 [MQTT-3.1.0-1] / 5 3.1: the first packet from a client is CONNECT.
            raise ProtocolError("first packet must be CONNECT")
        expected = _FIXED_FLAGS[ptype]
        if expected != -1 and first & 0x0F != expected:
            if expected == -2:
                raise MalformedPacket("packet type 0 is reserved")
            # 3.1.1 [MQTT-2.2.2-1/2] / 5 2.1.3: reserved flag bits.
            raise MalformedPacket(f"{PacketType(ptype).name} fixed header flags are invalid")

    def _parse(self, data: bytes, first: int, start: int, end: int) -> Packet:
        level = self.protocol_level
        ptype = first >> 4
        if ptype == PacketType.CONNECT:
            if level is not None:
                raise ProtocolError("second CONNECT on the connection")
            connect = _parse_connect(data, first, start, end, False)
            self.protocol_level = connect.protocol_level
            return connect
        return _PARSERS[ptype](data, first, start, end, level == 5)

    def next_packet(self) -> Packet | None:
        """Return the next complete packet, or None when more bytes are needed.

        Raises:
            MqttError: a subclass naming what is wrong with the next packet.
        """
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if pos >= n:
            return None
        header = self._header(buf, pos, n)
        if header is None or header[1] > n:
            return None
        start, end = header
        with memoryview(buf) as view:
            data = bytes(view[pos:end])
        if end == n:
            buf.clear()
            self._pos = 0
        else:
            self._pos = end
        return self._parse(data, data[0], start - pos, end - pos)

    @overload
    def read_packets(
        self, data: bytes | bytearray | memoryview, *, plain_pairs: Literal[False] = False
    ) -> list[Packet]: ...

    @overload
    def read_packets(
        self, data: bytes | bytearray | memoryview, *, plain_pairs: Literal[True]
    ) -> list[Packet | PlainPublish]: ...

    def read_packets(  # noqa: PLR0912, PLR0915 (inlined for speed)
        self, data: bytes | bytearray | memoryview, *, plain_pairs: bool = False
    ) -> list[Packet] | list[Packet | PlainPublish]:
        """Feed ``data`` and return every packet now complete, in order (the hot path).

        Bytes of an incomplete trailing packet stay buffered for the next call. With
        ``plain_pairs`` a plain PUBLISH (QoS 0, no DUP or RETAIN, no properties) on a topic
        seen before may come as a ``PlainPublish`` pair (a broker routes those in runs, and
        needs no ``Publish`` value for them); any other PUBLISH comes as a ``Publish``.

        Raises:
            MqttError: a subclass naming what is wrong; its ``packets`` attribute holds the
                packets parsed before the bad one in this call.
        """
        if type(data) is not bytes:  # slices of the input become payloads: must be immutable
            data = bytes(data)
        if self._pos != len(self._buf):
            # Leftover bytes: parse from a copy only once the first packet is complete, so a
            # large packet arriving in small chunks is not copied quadratically.
            self.feed(data)
            buf = self._buf
            header = self._header(buf, 0, len(buf))
            if header is None or header[1] > len(buf):
                return []
            data = bytes(buf)
            buf.clear()
        elif self._pos:
            self._buf.clear()
            self._pos = 0
        out: list[Packet | PlainPublish] = []
        append = out.append
        n = len(data)
        pos = 0
        level = self.protocol_level
        v5 = level == 5
        limit = MAX_REMAINING_LENGTH + 5 if self._max is None else self._max
        try:
            while pos < n:
                first = data[pos]
                if pos + 1 >= n:
                    break
                remaining = data[pos + 1]
                if remaining < 0x80 and level is not None:
                    # Fast path: one-byte Remaining Length after the CONNECT.
                    start = pos + 2
                    end = start + remaining
                    ptype = first >> 4
                    if (
                        _FIXED_FLAGS[ptype] != -1 and first & 0x0F != _FIXED_FLAGS[ptype]
                    ) or end - pos > limit:
                        self._vet(first, 2, remaining)  # raises the precise error
                else:
                    header = self._header(data, pos, n)
                    if header is None:
                        break
                    start, end = header
                    ptype = first >> 4
                if end > n:
                    break
                pos = end
                if first == 0x30 and end - start > 2:
                    # Inlined common case of _parse_publish: QoS 0, no DUP/RETAIN, a topic
                    # decoded before (so valid and non-empty), no properties. Anything else,
                    # including every error, takes _parse_publish below.
                    q = start + 2 + ((data[start] << 8) | data[start + 1])
                    topic = _TOPIC_CACHE.get(data[start + 2 : q])
                    if topic and q <= end and (not v5 or (q < end and not data[q])):
                        if plain_pairs:
                            append((topic, data[q + v5 : end]))
                            continue
                        obj = new_object(_PUBLISH_TWIN)
                        obj.topic = topic
                        obj.payload = data[q + v5 : end]  # v5: skip the Property Length 0
                        obj.qos = 0
                        obj.retain = False
                        obj.dup = False
                        obj.packet_id = None
                        obj.properties = EMPTY_PROPERTIES
                        set_class(obj, Publish)
                        append(obj)
                        continue
                if ptype == 3:  # PUBLISH
                    append(_parse_publish(data, first, start, end, v5))
                else:
                    append(self._parse(data, first, start, end))
                    if ptype == 1:  # CONNECT
                        level = self.protocol_level
                        v5 = level == 5
        except MqttError as exc:
            exc.packets = tuple(out)
            raise
        if pos < n:
            self._buf += memoryview(data)[pos:]
        return out


# --------------------------------------------------------------------------------------------
# Encoding

_BYTES: Final = tuple(bytes((i,)) for i in range(256))


def _varint(value: int) -> bytes:
    """Encode a Variable Byte Integer (5 1.5.5), minimally."""
    if value < 0x80:
        return _BYTES[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0x20_0000:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    if value <= MAX_REMAINING_LENGTH:
        return bytes(
            (
                (value & 0x7F) | 0x80,
                ((value >> 7) & 0x7F) | 0x80,
                ((value >> 14) & 0x7F) | 0x80,
                value >> 21,
            )
        )
    raise ValueError(f"{value} does not fit a Variable Byte Integer")


def _str(text: str) -> bytes:
    raw = text.encode()
    return _pack_u16(len(raw)) + raw


def _bin(data: bytes) -> bytes:
    return _pack_u16(len(data)) + data


def _fixed(first: int, body: bytes) -> bytes:
    return b"".join((_BYTES[first], _varint(len(body)), body))


def _is_empty(properties: Properties) -> bool:
    return properties is EMPTY_PROPERTIES or properties == EMPTY_PROPERTIES


def _properties(properties: Properties, context: int) -> bytes:  # noqa: PLR0912
    """Encode a property block (5 2.2.2), in identifier order, including its length."""
    if properties is EMPTY_PROPERTIES:
        return b"\x00"
    parts: list[bytes] = []
    for identifier, name, kind, allowed, nonzero in _PROPERTY_TABLE:
        value = getattr(properties, name)
        if value is None or value == ():
            continue
        if not allowed & context:
            raise ValueError(f"property {name} is not allowed in {_CONTEXT_NAMES[context]}")
        prefix = _BYTES[identifier]
        if kind == _PAIR:
            parts.extend(prefix + _str(key) + _str(val) for key, val in value)
            continue
        if kind == _VARINT:
            if context != _C_PUBLISH and len(value) > 1:
                raise ValueError("only a PUBLISH may carry several Subscription Identifiers")
            for sub_id in value:
                if not sub_id:
                    raise ValueError("Subscription Identifier 0")
                parts.append(prefix + _varint(sub_id))
            continue
        if nonzero and not value:
            raise ValueError(f"property {name} must not be 0")
        if kind == _BYTE:
            if value not in (0, 1):
                raise ValueError(f"property {name} must be 0 or 1")
            parts.append(prefix + _BYTES[value])
        elif kind == _U16:
            parts.append(prefix + _pack_u16(value))
        elif kind == _U32:
            parts.append(prefix + _pack_u32(value))
        elif kind == _STR:
            parts.append(prefix + _str(value))
        else:  # _BIN
            parts.append(prefix + _bin(value))
    block = b"".join(parts)
    return _varint(len(block)) + block


def _encode_connect(packet: Connect, level: int) -> bytes:
    if packet.protocol_level != level:
        raise ValueError(f"CONNECT protocol_level {packet.protocol_level} != level {level}")
    v5 = level == 5
    will = packet.will
    flags = 0x02 if packet.clean_start else 0
    if will is not None:
        if will.qos not in (0, 1, 2):
            raise ValueError(f"Will QoS {will.qos}")
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if packet.password is not None:
        if packet.username is None and not v5:
            raise ValueError("MQTT 3.1.1 needs a user name to send a password")
        flags |= 0x40
    if packet.username is not None:
        flags |= 0x80
    parts = [_str(packet.protocol_name), bytes((level, flags)), _pack_u16(packet.keep_alive)]
    if v5:
        parts.append(_properties(packet.properties, _C_CONNECT))
    parts.append(_str(packet.client_id))
    if will is not None:
        if v5:
            parts.append(_properties(will.properties, _C_WILL))
        parts += (_str(will.topic), _bin(will.payload))
    if packet.username is not None:
        parts.append(_str(packet.username))
    if packet.password is not None:
        parts.append(_bin(packet.password))
    return _fixed(0x10, b"".join(parts))


def _encode_connack(packet: Connack, level: int) -> bytes:
    code = packet.reason_code
    if level == 5:
        flags = 1 if packet.session_present else 0
        return _fixed(0x20, bytes((flags, code)) + _properties(packet.properties, _C_CONNACK))
    if not 0 <= code <= 5:  # 3.1.1 3.2.2.3
        raise ValueError(f"MQTT 3.1.1 CONNACK return code {code} is not 0..5")
    # MQTT 3.1 has no Session Present flag: its first byte is reserved.
    flags = 1 if packet.session_present and level == 4 else 0
    return bytes((0x20, 2, flags, code))


def encode_publish(packet: Publish, protocol_level: int) -> bytes:
    """Encode a PUBLISH (3.1.1 3.3, 5 3.3); ``encode`` calls this for ``Publish`` values.

    At level 4 ``properties`` are dropped (MQTT 3.1.1 has none), which is what forwarding a
    v5 message to a v3.1.1 subscriber needs.

    Raises:
        ValueError: QoS not 0..2, ``packet_id`` missing/0 with QoS > 0, or a field too large.
    """
    return publish_bytes(
        packet.topic,
        packet.payload,
        packet.qos,
        packet.retain,
        packet.dup,
        packet.packet_id,
        packet.properties,
        protocol_level,
    )


# Encoded Topic Name fields (length + UTF-8) by topic, the encoding side of _TOPIC_CACHE: a
# broker delivers the same few topics over and over. Bounded like it: cleared when full.
_TOPIC_FIELDS: Final[dict[str, bytes]] = {}


def _topic_field(topic: str) -> bytes:
    encoded = topic.encode()
    field = _pack_u16(len(encoded)) + encoded
    if len(encoded) <= _TOPIC_CACHE_MAX_TOPIC:
        if len(_TOPIC_FIELDS) >= _TOPIC_CACHE_SIZE:
            _TOPIC_FIELDS.clear()
        _TOPIC_FIELDS[topic] = field
    return field


def publish_bytes(  # noqa: PLR0917 (the fields of a PUBLISH, no Publish value)
    topic: str,
    payload: bytes,
    qos: int,
    retain: bool,
    dup: bool,
    packet_id: int | None,
    properties: Properties,
    protocol_level: int,
) -> bytes:
    """Encode a PUBLISH from its fields: ``encode_publish`` without a ``Publish`` value.

    The router's delivery path calls this once per delivered message.

    Raises:
        ValueError: as ``encode_publish``; ``protocol_level`` is 4 or 5 (not checked here).
    """
    head = _TOPIC_FIELDS.get(topic)
    if head is None:
        head = _topic_field(topic)
    if qos:
        if not 0 < qos <= 2:
            raise ValueError(f"PUBLISH QoS {qos}")
        if not packet_id:
            raise ValueError("PUBLISH with QoS > 0 needs a non-zero packet_id")
        head += _pack_u16(packet_id)
    first = 0x30 | (qos << 1)
    if retain:
        first |= 0x01
    if dup:
        first |= 0x08
    if protocol_level == 5:
        head += _properties(properties, _C_PUBLISH)
    length = len(head) + len(payload)
    if length < 0x80:  # a one-byte Remaining Length (5 1.5.5), the common case
        return b"".join((_BYTES[first], _BYTES[length], head, payload))
    return b"".join((_BYTES[first], _varint(length), head, payload))


def puback_bytes(packet_id: int) -> bytes:
    """Encode a success PUBACK: the same 4 bytes at levels 4 and 5.

    MQTT 5 3.4.2.1: "The Reason Code and Property Length can be omitted if the Reason Code is
    0x00 (Success) and there are no Properties", which is what ``encode(Puback(packet_id))``
    writes at level 5 too.

    Raises:
        ValueError: ``packet_id`` is not 1..65535.
    """
    if not 0 < packet_id <= 0xFFFF:
        raise ValueError(f"packet_id {packet_id} is not 1..65535")
    return b"\x40\x02" + _pack_u16(packet_id)


def _encode_ack(packet: Puback | Pubrec | Pubrel | Pubcomp, level: int, first: int) -> bytes:
    packet_id = _pack_u16(packet.packet_id)
    if level == 5:
        properties = packet.properties
        if not _is_empty(properties):
            context = 1 << (first >> 4)
            return _fixed(
                first, packet_id + _BYTES[packet.reason_code] + _properties(properties, context)
            )
        if packet.reason_code:  # 5 3.4.2.1: Property Length may be omitted
            return _BYTES[first] + b"\x03" + packet_id + _BYTES[packet.reason_code]
    return _BYTES[first] + b"\x02" + packet_id


def _encode_subscribe(packet: Subscribe, level: int) -> bytes:
    v5 = level == 5
    parts = [_pack_u16(packet.packet_id)]
    if v5:
        parts.append(_properties(packet.properties, _C_SUBSCRIBE))
    if not packet.subscriptions:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    for topic_filter, options in packet.subscriptions:
        byte = options.qos
        if v5:
            byte |= (
                (0x04 if options.no_local else 0)
                | (0x08 if options.retain_as_published else 0)
                | (options.retain_handling << 4)
            )
        parts += (_str(topic_filter), _BYTES[byte])
    return _fixed(0x82, b"".join(parts))


def _encode_suback(packet: Suback, level: int) -> bytes:
    if level == 5:
        body = (
            _pack_u16(packet.packet_id)
            + _properties(packet.properties, _C_SUBACK)
            + bytes(packet.reason_codes)
        )
    else:
        # 3.1.1 3.9.3 has a single failure code: MQTT 5 failure codes (>= 0x80) become 0x80.
        codes = bytes(code if code < 0x80 else 0x80 for code in packet.reason_codes)
        body = _pack_u16(packet.packet_id) + codes
    return _fixed(0x90, body)


def _encode_unsubscribe(packet: Unsubscribe, level: int) -> bytes:
    if not packet.topic_filters:
        raise ValueError("UNSUBSCRIBE needs at least one topic filter")
    parts = [_pack_u16(packet.packet_id)]
    if level == 5:
        parts.append(_properties(packet.properties, _C_UNSUBSCRIBE))
    parts += map(_str, packet.topic_filters)
    return _fixed(0xA2, b"".join(parts))


def _encode_unsuback(packet: Unsuback, level: int) -> bytes:
    if level == 5:
        body = (
            _pack_u16(packet.packet_id)
            + _properties(packet.properties, _C_UNSUBACK)
            + bytes(packet.reason_codes)
        )
        return _fixed(0xB0, body)
    return b"\xb0\x02" + _pack_u16(packet.packet_id)  # 3.1.1 3.11: no payload


def _encode_disconnect(packet: Disconnect, level: int) -> bytes:
    if level != 5:
        return b"\xe0\x00"
    if _is_empty(packet.properties):
        if not packet.reason_code:
            return b"\xe0\x00"  # 5 3.14.2.1: Remaining Length 0 means 0x00
        return b"\xe0\x01" + _BYTES[packet.reason_code]  # 5 3.14.2.2.1
    body = _BYTES[packet.reason_code] + _properties(packet.properties, _C_DISCONNECT)
    return _fixed(0xE0, body)


def _encode_auth(packet: Auth, level: int) -> bytes:
    if level != 5:
        raise ValueError("AUTH exists in MQTT 5 only")
    if not packet.reason_code and _is_empty(packet.properties):
        return b"\xf0\x00"  # 5 3.15.2.1
    return _fixed(0xF0, _BYTES[packet.reason_code] + _properties(packet.properties, _C_AUTH))


_ENCODERS: Final[dict[type, Callable[[Any, int], bytes]]] = {
    Connect: _encode_connect,
    Connack: _encode_connack,
    Publish: encode_publish,
    Puback: lambda packet, level: _encode_ack(packet, level, 0x40),
    Pubrec: lambda packet, level: _encode_ack(packet, level, 0x50),
    Pubrel: lambda packet, level: _encode_ack(packet, level, 0x62),
    Pubcomp: lambda packet, level: _encode_ack(packet, level, 0x70),
    Subscribe: _encode_subscribe,
    Suback: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    Unsuback: _encode_unsuback,
    Pingreq: lambda packet, level: b"\xc0\x00",
    Pingresp: lambda packet, level: b"\xd0\x00",
    Disconnect: _encode_disconnect,
    Auth: _encode_auth,
}


def encode(packet: Packet, protocol_level: int) -> bytes:
    """Encode ``packet`` for a connection at ``protocol_level`` (4 = 3.1.1, 5 = MQTT 5).

    Level 3 (MQTT 3.1) is accepted for CONNECT and CONNACK only. At level 4 the fields MQTT
    3.1.1 lacks are dropped: properties everywhere, reason codes of PUBACK/PUBREC/PUBREL/
    PUBCOMP/UNSUBACK/DISCONNECT; SUBACK failure codes become 0x80. Strings are not re-checked
    for U+0000 (values read by ``PacketReader`` are already valid).

    Raises:
        ValueError: the level is not 3, 4 or 5, the packet does not exist at that level, or a
            field does not fit its wire format (QoS, missing packet id, property not allowed in
            the packet, string or packet too long, ...).
    """
    if protocol_level not in (4, 5) and (
        protocol_level != 3 or type(packet) not in (Connect, Connack)
    ):
        raise ValueError(f"cannot encode {type(packet).__name__} at level {protocol_level}")
    try:
        return _ENCODERS[type(packet)](packet, protocol_level)
    except (OverflowError, struct.error) as exc:
        raise ValueError(f"{type(packet).__name__} field out of range: {exc}") from exc


def packet_id_offset(encoded: bytes) -> int:
    """Return the offset of the Packet Identifier in an encoded QoS 1 or 2 PUBLISH.

    The identifier follows the fixed header and the topic name (3.3.2); the layout is the
    same at levels 4 and 5 (properties come after it).

    Raises:
        ValueError: ``encoded`` is not a PUBLISH with QoS 1 or 2.
    """
    first = encoded[0]
    if first >> 4 != PacketType.PUBLISH or not first & 0x06:
        raise ValueError("not an encoded PUBLISH with QoS 1 or 2")
    p = 1
    while encoded[p] & 0x80:
        p += 1
    p += 1
    return p + 2 + ((encoded[p] << 8) | encoded[p + 1])


def with_packet_id(encoded: bytes, packet_id: int, *, dup: bool = False) -> bytes:
    """Return ``encoded`` (a QoS 1/2 PUBLISH) with its Packet Identifier and DUP flag replaced.

    Lets a broker encode a PUBLISH once per (level, QoS, retain, properties) and stamp the
    per-subscriber packet identifier cheaply. The result's DUP flag (3.3.1.1) is ``dup``.

    Raises:
        ValueError: ``encoded`` is not a QoS 1/2 PUBLISH, or ``packet_id`` is not 1..65535.
    """
    if not 0 < packet_id <= 0xFFFF:
        raise ValueError(f"packet_id {packet_id} is not 1..65535")
    offset = packet_id_offset(encoded)
    first = (encoded[0] | 0x08) if dup else (encoded[0] & 0xF7)
    with memoryview(encoded) as view:  # one copy of the payload, in join
        return b"".join((_BYTES[first], view[1:offset], _pack_u16(packet_id), view[offset + 2 :]))
