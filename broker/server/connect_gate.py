"""The MQTT handler that stands behind the front door until the MQTT core lands.

It enforces what the door needs from MQTT: the first packet is a CONNECT ("the client must wait
for the CONNACK message ... before sending additional control packets", AWS IoT's MQTT page),
only one CONNECT per connection, MQTT 3.1.1 or 5 (3.1 gets CONNACK 0x01), and a packet size
bound read from the fixed header before the body is buffered. It answers PINGREQ and DISCONNECT.
Every other packet closes the connection with a ``Disconnect`` log line saying so: routing,
sessions and policies are the MQTT core's job (issue "Native MQTT 3.1.1 + 5 broker core").
"""

from __future__ import annotations

from broker.mqtt.connect import (
    MAX_PACKET_SIZE,
    PACKET_CONNECT,
    PACKET_DISCONNECT,
    PACKET_PINGREQ,
    MalformedPacket,
    encode_connack,
    parse_connect,
    read_fixed_header,
)
from broker.server.door import DeviceChannel

__all__ = ["ConnectGate"]

_PINGRESP = b"\xd0\x00"
_PACKET_NAMES = {
    2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP",
    8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 13: "PINGRESP", 15: "AUTH",
}  # fmt: skip
# CONNACK return code 0x01: "The Server does not support the level of the MQTT protocol".
_CONNACK_UNACCEPTABLE_PROTOCOL = 0x01
_CONNACK_ACCEPTED = 0x00


class ConnectGate:
    """``MqttHandler`` that accepts a CONNECT and keeps the connection alive with PINGREQ."""

    def __init__(self, channel: DeviceChannel) -> None:
        self._channel = channel
        self._buffer = bytearray()
        self._protocol_level: int | None = None

    def data_received(self, data: bytes) -> None:
        """Consume every complete packet in the buffer."""
        self._buffer += data
        while self._buffer:
            try:
                header = read_fixed_header(self._buffer)
            except MalformedPacket as exc:
                self._channel.close("CLIENT_ERROR", f"Malformed packet: {exc}", failure=True)
                return
            if header is None:
                return
            first_byte, header_length, body_length = header
            if body_length > MAX_PACKET_SIZE:
                self._channel.close(
                    "PAYLOAD_LIMIT_EXCEEDED",
                    "Message payload exceeds size limit for message type.",
                    failure=True,
                )
                return
            end = header_length + body_length
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[header_length:end])
            del self._buffer[:end]
            if not self._handle(first_byte, body):
                return

    def _handle(self, first_byte: int, body: bytes) -> bool:
        packet_type = first_byte >> 4
        if self._protocol_level is None:
            return self._handle_connect(first_byte, body)
        if packet_type == PACKET_PINGREQ:
            self._channel.write(_PINGRESP)
            return True
        if packet_type == PACKET_DISCONNECT:
            self._channel.close("CLIENT_INITIATED_DISCONNECT", "The client sent DISCONNECT")
            return False
        if packet_type == PACKET_CONNECT:
            self._channel.close(
                "CLIENT_ERROR", "A second CONNECT arrived on the same connection", failure=True
            )
            return False
        name = _PACKET_NAMES.get(packet_type, f"type {packet_type}")
        self._channel.close(
            "CLIENT_ERROR",
            f"{name} is not handled yet: this build has the TLS front door only, "
            "the MQTT core is a later issue",
            failure=True,
        )
        return False

    def _handle_connect(self, first_byte: int, body: bytes) -> bool:
        try:
            connect = parse_connect(first_byte, body)
        except MalformedPacket as exc:
            self._channel.close(
                "CLIENT_ERROR", f"The first packet is not a valid CONNECT: {exc}", failure=True
            )
            return False
        supported = (connect.protocol_name, connect.protocol_level) in (("MQTT", 4), ("MQTT", 5))
        if not supported:
            self._channel.write(encode_connack(4, _CONNACK_UNACCEPTABLE_PROTOCOL))
            self._channel.close(
                "CLIENT_ERROR",
                f"Unsupported protocol {connect.protocol_name!r} level "
                f"{connect.protocol_level}; AWS IoT speaks MQTT 3.1.1 and 5",
                failure=True,
            )
            return False
        self._protocol_level = connect.protocol_level
        self._channel.write(encode_connack(connect.protocol_level, _CONNACK_ACCEPTED))
        self._channel.connect_accepted(connect.client_id)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Nothing to clean up: the gate keeps no state beyond the connection."""
        self._buffer.clear()
