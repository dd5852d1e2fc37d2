"""The asyncio shell of MQTT over WebSocket: frames in and out of a TLS channel, MQTT inside.

After the SigV4 door accepted a WebSocket upgrade to ``/mqtt``, ``WebSocketMqttHandler`` takes
the TLS connection over. It unframes what the client sends with wsproto (a sans-IO WebSocket
library) and hands the bytes to an ordinary ``MqttDoorHandler`` through a ``ByteChannel`` that
frames whatever it writes, so the MQTT rules, flush scheduling, timers and back-pressure are
exactly the 8883 door's (one ``MqttConnection`` from the same device core, never a copy).

WebSocket rules applied here (RFC 6455, and MQTT 3.1.1 / 5.0 section 6 "Using WebSocket as a
network transport"):

- MQTT travels in binary data frames; "a single WebSocket data frame can contain multiple or
  partial MQTT Control Packets", so the payloads are fed to MQTT as one byte stream. A text
  frame closes the connection (1003), and so does a malformed frame (wsproto's close code).
- Each write of the MQTT connection goes out as one binary frame; pings are answered; a Close
  frame from the client is answered and ends the connection (AWS's lifecycle reason
  ``CLIENT_INITIATED_DISCONNECT`` covers "MQTT DISCONNECT or WebSocket Close frame").

AWS's connection limit: "WebSocket connections are limited to 24 hours. If the limit is
exceeded, the WebSocket connection is automatically closed when an attempt is made to send a
message by the client or server" (AWS IoT protocols page, 2019). The broker does the same with
``limits.websocket_ttl``: past it, the next frame from the client or the next write to it ends
the connection with the lifecycle reason ``WEBSOCKET_TTL_EXPIRATION`` (MQTT 5: DISCONNECT 0xA0
"Maximum connect time" first), and the will is sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Final

from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.mqtt_door import FlushScheduler, MqttDoorHandler
from aws_iot_mock.doors.tls_door import ByteChannel, DoorIdentity
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason

__all__ = ["DEFAULT_WEBSOCKET_TTL", "WebSocketDoor", "WebSocketMqttHandler"]

# AWS: "WebSocket connections are limited to 24 hours" (seconds).
DEFAULT_WEBSOCKET_TTL: Final = 24 * 3600.0
# MQTT 5 DISCONNECT reason codes (MQTT 5.0 section 3.14.2.1).
_V5_PROTOCOL_ERROR: Final = 0x82
_V5_MAXIMUM_CONNECT_TIME: Final = 0xA0


class WebSocketDoor:
    """Builds the MQTT-over-WebSocket handler of each accepted upgrade.

    Args:
        core: the device core.
        scheduler: the broker's flush scheduler (shared with the 8883 door).
        ttl: seconds a WebSocket connection may live (AWS: 24 hours).
    """

    def __init__(
        self, core: DeviceCore, scheduler: FlushScheduler, *, ttl: float = DEFAULT_WEBSOCKET_TTL
    ) -> None:
        self._core = core
        self._scheduler = scheduler
        self.ttl = ttl

    def handler(  # noqa: PLR0917 (each is one fact of the accepted upgrade)
        self,
        channel: ByteChannel,
        websocket: Connection,
        principal: Principal,
        facts: ConnectionFacts,
        transport_details: str,
        trailing: bytes = b"",
    ) -> WebSocketMqttHandler:
        """The handler of one upgraded connection (``trailing``: bytes after the request)."""
        return WebSocketMqttHandler(
            channel,
            websocket,
            core=self._core,
            scheduler=self._scheduler,
            principal=principal,
            facts=facts,
            transport_details=transport_details,
            ttl=self.ttl,
            trailing=trailing,
        )


class WebSocketMqttHandler:
    """MQTT over WebSocket on one TLS connection: a ``DoorHandler``.

    Args:
        channel: the TLS door's channel.
        websocket: the server-side wsproto connection the upgrade produced.
        core: the device core.
        scheduler: the broker's flush scheduler.
        principal: the IAM principal the upgrade was signed by.
        facts: the connection's facts for log records (principal ID, ``MQTT``).
        transport_details: the TLS handshake and the upgrade, for the ``Connect`` log line.
        ttl: seconds the connection may live.
        trailing: bytes the client sent after the upgrade request.
    """

    def __init__(
        self,
        channel: ByteChannel,
        websocket: Connection,
        *,
        core: DeviceCore,
        scheduler: FlushScheduler,
        principal: Principal,
        facts: ConnectionFacts,
        transport_details: str,
        ttl: float,
        trailing: bytes = b"",
    ) -> None:
        self._channel = channel
        self._websocket = websocket
        self._loop = asyncio.get_running_loop()
        self._ttl = ttl
        self._expires_at = self._loop.time() + ttl
        self._expired = False
        self._closed = False
        self._close_code: int = CloseReason.NORMAL_CLOSURE
        self._mqtt = MqttDoorHandler(
            _WebSocketChannel(self, channel.identity, facts),
            core,
            scheduler,
            principal=principal,
            transport_details=transport_details,
        )
        if trailing:
            self.data_received(trailing)

    # -- DoorHandler -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Unframe ``data``; hand the binary payloads to MQTT and answer control frames."""
        if self._closed:
            return
        if self._ttl_passed():
            self._mqtt.flush()  # the DISCONNECT (MQTT 5), then the close
            return
        websocket = self._websocket
        try:
            websocket.receive_data(data)
        except LocalProtocolError:
            return  # bytes after the connection closed: nothing to do with them
        payload = bytearray()
        for event in websocket.events():
            if isinstance(event, BytesMessage):
                payload += event.data
                continue
            # Whatever came before this event reaches MQTT before the event is handled.
            self._deliver(payload)
            payload.clear()
            if self._closed or not self._control(event):
                return
        self._deliver(payload)

    def peer_closed(self, reason: str, details: str, *, failure: bool) -> None:
        """The client ended the TLS session without a WebSocket Close frame."""
        self._closed = True
        self._mqtt.peer_closed(reason, details, failure=failure)

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone."""
        self._closed = True
        self._mqtt.connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading: as on 8883."""
        self._mqtt.pause_writing()

    def resume_writing(self) -> None:
        """The client drained its buffer."""
        self._mqtt.resume_writing()

    def shutdown(self) -> None:
        """The broker is stopping: MQTT 5 DISCONNECT 0x8B, WebSocket Close 1001, then close."""
        self._close_code = CloseReason.GOING_AWAY
        self._mqtt.shutdown()

    # -- frames ----------------------------------------------------------------------------

    def _deliver(self, payload: bytearray) -> None:
        if payload and not self._closed:
            self._mqtt.data_received(bytes(payload))

    def _control(self, event: Event) -> bool:
        """Handle a non-binary event; False when the connection is ending."""
        if isinstance(event, Ping):
            self._send(event.response())
            return True
        if isinstance(event, TextMessage):
            self._protocol_error(
                CloseReason.UNSUPPORTED_DATA,
                "A WebSocket text frame: MQTT over WebSocket travels in binary frames only "
                "(MQTT 3.1.1 and 5.0 section 6)",
            )
            return False
        if isinstance(event, CloseConnection):
            if self._websocket.state is ConnectionState.OPEN:
                # wsproto reports a frame it could not parse as a close with its code.
                self._protocol_error(event.code, f"A malformed WebSocket frame: {event.reason}")
                return False
            self._send(event.response())
            self._closed = True
            self._mqtt.peer_closed(
                "CLIENT_INITIATED_DISCONNECT",
                f"The client sent a WebSocket Close frame (code {int(event.code)})",
                failure=False,
            )
            self._channel.close()
            return False
        return True  # Pong: nothing to answer

    def _protocol_error(self, code: int, details: str) -> None:
        self._close_code = code
        self._mqtt.connection.disconnect(
            Reason.WEBSOCKET_PROTOCOL_ERROR, details, "CLIENT_ERROR", _V5_PROTOCOL_ERROR
        )
        self._mqtt.flush()

    def _send(self, event: Event) -> None:
        try:
            data = self._websocket.send(event)
        except LocalProtocolError:
            return  # the WebSocket is closing: control frames are no longer sent
        self._channel.write(data)

    # -- what the MQTT handler's channel does ----------------------------------------------

    def _ttl_passed(self) -> bool:
        """True, once, when the connection has outlived its TTL: MQTT is told to disconnect."""
        if self._expired or self._loop.time() < self._expires_at:
            return False
        self._expired = True
        self._mqtt.connection.disconnect(
            Reason.WEBSOCKET_TTL_EXPIRATION,
            f"The WebSocket connection is older than {self._ttl:g} s (AWS closes WebSocket "
            "connections after 24 hours, at the next message sent either way)",
            "WEBSOCKET_TTL_EXPIRATION",
            _V5_MAXIMUM_CONNECT_TIME,
        )
        return True

    def write_mqtt(self, data: bytes) -> None:
        """Send MQTT bytes in one binary frame, unless the TTL has just passed."""
        if self._closed:
            return
        if self._ttl_passed():
            # ``data`` is not sent: the connection ends instead, with its goodbye.
            data = self._mqtt.connection.data_to_send()
            if not data:
                return
        self._send(Message(data=data))

    def close_websocket(self) -> None:
        """Send a Close frame (unless one was exchanged already), then close TLS."""
        if self._websocket.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._send(CloseConnection(code=self._close_code))
        self._closed = True
        self._channel.close()

    def pause_reading(self) -> None:
        """Stop reading from the client (MQTT's back-pressure and throughput quota)."""
        self._channel.pause_reading()

    def resume_reading(self) -> None:
        """Read from the client again."""
        self._channel.resume_reading()


class _WebSocketChannel:
    """The ``ByteChannel`` the MQTT handler talks to: writes become binary frames."""

    def __init__(
        self, handler: WebSocketMqttHandler, identity: DoorIdentity, facts: ConnectionFacts
    ) -> None:
        self._handler = handler
        self._identity = identity
        self._facts = dataclasses.replace(facts, protocol="MQTT")

    @property
    def identity(self) -> DoorIdentity:
        return self._identity

    @property
    def facts(self) -> ConnectionFacts:
        return self._facts

    def write(self, data: bytes) -> None:
        self._handler.write_mqtt(data)

    def close(self) -> None:
        self._handler.close_websocket()

    def pause_reading(self) -> None:
        self._handler.pause_reading()

    def resume_reading(self) -> None:
        self._handler.resume_reading()
