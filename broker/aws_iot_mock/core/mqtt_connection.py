"""One MQTT connection with AWS IoT Core's rules, as a sans-IO state machine. Pure.

Bytes in, bytes out, a clock injected: the door that carries the connection (MQTT over TLS on
8883 or on 443 with ALPN ``x-amzn-mqtt-ca``, MQTT over WebSocket) feeds ``receive_data``, writes
what ``data_to_send`` returns, closes the transport once ``close_request`` is set, and calls
``on_timer`` at ``next_deadline``. Everything else is decided here: the CONNECT rules, keep-alive,
session takeover, topic aliases, subscribe authorization, and the MQTT answer to each publish
the ingress accepts or refuses. There is no event loop in this module.

Output is coalesced: every packet of a received chunk is handled before anything is written, and
packets routed to this connection by others accumulate until the door flushes them (it is woken
through the ``wake`` callback once per burst). While the door says writing is paused, or more
than ``outbound_buffer_bytes`` wait, the connection tells the router it cannot send: QoS 0 for it
is dropped and counted, QoS 1 waits in its session's queue.

AWS behaviour cited here is from the AWS IoT developer guide's "MQTT" page
(https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html), "Lifecycle events"
(https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html) and the message
broker quotas (https://docs.aws.amazon.com/general/latest/gr/iot-core.html).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Final

from aws_iot_mock.aws.lifecycle import (
    ConnectionIdentity,
    connect_failed_event,
    connected_event,
    disconnected_event,
    emits_lifecycle_events,
    subscription_event,
)
from aws_iot_mock.aws.limits import (
    CLIENT_ID_MAX_BYTES,
    FILTERS_PER_SUBSCRIBE,
    INFLIGHT_MAX,
    PAYLOAD_MAX_BYTES,
    PUBLISHES_PER_SECOND,
    THROUGHPUT_BYTES_PER_SECOND,
    TOPIC_ALIAS_MAX,
    effective_keep_alive,
    grant_session_expiry,
)
from aws_iot_mock.core.ingress import (
    Publisher,
    PublishRefusal,
    PublishRequest,
    build_message,
    new_publish_request,
)
from aws_iot_mock.core.permissions import (
    CONNECT,
    PUBLISH,
    RECEIVE,
    RETAIN_PUBLISH,
    SUBSCRIBE,
    Permissions,
)
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.core.quotas import PerSecond
from aws_iot_mock.core.routing import Session
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    EventType,
    Reason,
    connect_failure,
    connect_success,
    disconnect_record,
    event_failure,
    event_success,
)
from aws_iot_mock.mqtt.codec import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    MalformedPacket,
    MqttError,
    Packet,
    PacketReader,
    PacketTooLarge,
    Pingreq,
    Pingresp,
    PlainPublish,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    UnsupportedProtocolVersion,
    Will,
    encode,
    puback_bytes,
)
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.mqtt.topics import validate_topic_filter

if TYPE_CHECKING:
    from aws_iot_mock.authz.iot_policy_evaluation import Decision
    from aws_iot_mock.core.device_core import DeviceCore

__all__ = ["ADVERTISED_MAXIMUM_PACKET_SIZE", "MAX_INBOUND_PACKET", "Closing", "MqttConnection"]

# A PUBLISH or CONNECT whose Remaining Length exceeds the payload limit plus room for a topic,
# packet id and properties is refused from its fixed header, before the body is buffered.
_HEADER_ROOM = 8 * 1024
MAX_INBOUND_PACKET = PAYLOAD_MAX_BYTES + _HEADER_ROOM
# What an MQTT 5 CONNACK advertises: AWS's "Maximum Packet Size: Cannot exceed 128 KB".
ADVERTISED_MAXIMUM_PACKET_SIZE = PAYLOAD_MAX_BYTES

# MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) and MQTT 5 reason codes (section 2.4).
_V3_UNACCEPTABLE_PROTOCOL = 0x01
_V3_IDENTIFIER_REJECTED = 0x02
_V5_CLIENT_ID_NOT_VALID = 0x85
_V5_TOPIC_NAME_INVALID = 0x90
_V5_QOS_NOT_SUPPORTED = 0x9B
_V5_NOT_AUTHORIZED = 0x87
# AWS's PUBACK reason codes are 0x00, 0x80, 0x87, 0x90, 0x91 and 0x97 ("MQTT 5 reason codes",
# mqtt.html): a payload that breaks its Payload Format Indicator gets 0x80 (Unspecified error),
# not the spec's optional 0x99, which AWS does not list.
_V5_UNSPECIFIED_ERROR = 0x80
_V5_PROTOCOL_ERROR = 0x82
_V5_TOPIC_ALIAS_INVALID = 0x94
_V5_SERVER_SHUTTING_DOWN = 0x8B
_V5_KEEP_ALIVE_TIMEOUT = 0x8D
_V5_SESSION_TAKEN_OVER = 0x8E
_V5_ADMINISTRATIVE_ACTION = 0x98
# AWS lists no 0x95 (Packet too large) among its DISCONNECT codes; an oversized payload or packet
# gets 0x97 (Quota exceeded), which it does list.
_V5_QUOTA_EXCEEDED = 0x97
_V5_SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1
# A publish the broker could not store (MQTT 5 3.14.2.1): 0x89 Server busy while another process
# holds the database's lock, 0x97 Quota exceeded when the disk is full, 0x80 otherwise. The
# connection is closed without a PUBACK: nothing unsaved is acknowledged, and the client sends
# the message again when it reconnects. AWS has no such failure to copy; 0x97 and 0x80 are
# codes it lists for DISCONNECT, 0x89 is MQTT 5's own for "try again later".
_V5_SERVER_BUSY = 0x89
_STORAGE_DISCONNECT_CODES = {
    Reason.STORAGE_BUSY: _V5_SERVER_BUSY,
    Reason.STORAGE_FULL: _V5_QUOTA_EXCEEDED,
    Reason.STORAGE_FAILED: _V5_UNSPECIFIED_ERROR,
}
_V5_TOPIC_FILTER_INVALID = 0x8F
_V3_SUBACK_FAILURE = 0x80
_V3_NOT_AUTHORIZED = 0x05
_DISCONNECT_WITH_WILL = 0x04

_DUPLICATE_DETAILS = "A new connection was established with the same client ID"
# iot:Receive denials are logged once per topic per connection; bounded like every per-client map.
_RECEIVE_DENIALS_LOGGED = 1024
# Read once: an Enum member's attribute access costs as much as a dict build (Python 3.11), and
# Publish-Out is logged for every delivery at INFO.
_PUBLISH_OUT = EventType.PUBLISH_OUT

# How an ingress refusal reaches an MQTT 5 publisher (PUBACK code) when it does not close the
# connection; refusals absent here close it (MQTT 3.1.1 has no PUBACK code, so any refusal but
# QoS 2 closes an MQTT 3.1.1 connection, as AWS does).
_V5_PUBACK_CODES = {
    Reason.RESERVED_TOPIC: _V5_NOT_AUTHORIZED,
    Reason.AUTHORIZATION_FAILURE: _V5_NOT_AUTHORIZED,
    Reason.PAYLOAD_FORMAT_INVALID: _V5_UNSPECIFIED_ERROR,
    Reason.SERVICE_NOT_EMULATED: _V5_NOT_AUTHORIZED,
    Reason.USER_PROPERTIES_LIMIT_EXCEEDED: _V5_QUOTA_EXCEEDED,
    Reason.RETAINED_MESSAGES_LIMIT_EXCEEDED: _V5_QUOTA_EXCEEDED,
}


# The connect attributes a policy's iot:ConnectAttributes condition sees, by (persistent session,
# last will): four shared sets rather than one per connection.
_CONNECT_ATTRIBUTES: Final = {
    (persistent, will): frozenset(
        name for name, present in (("PersistentConnect", persistent), ("LastWill", will)) if present
    )
    for persistent in (False, True)
    for will in (False, True)
}


@dataclass(frozen=True, slots=True)
class Closing:
    """A server-side close: the log reason, AWS's lifecycle ``disconnectReason``, MQTT 5 code.

    Attributes:
        reason: the ``reason`` of the ``Disconnect`` log record (a ``Reason`` name or AWS's
            lifecycle name such as ``SERVER_INITIATED_DISCONNECT``).
        disconnect_reason: the lifecycle event's ``disconnectReason``.
        code: the MQTT 5 DISCONNECT reason code sent first, or None to send none.
    """

    reason: str
    disconnect_reason: str
    code: int | None


class MqttConnection:
    """One client's MQTT connection: the protocol rules, between a door and the device core.

    Created by ``DeviceCore.open_mqtt_connection`` once a door has authenticated the principal.

    Args:
        core: the device core.
        principal: who is connected.
        facts: the connection's facts for log records (no client ID yet).
        wake: called (once per burst) when bytes became ready to send or a close was requested
            from outside a call by the door (a message routed from another connection, a
            takeover, a registry change).
        transport_details: how the client came in (TLS version and suite, SNI...), written in
            the ``details`` of the one ``Connect`` success line.
        door: the listener it came in on (``mqtt``, ``alpn``...), for the console; None when
            the caller does not say (in-memory tests).
    """

    # Thousands of these live at once (one per connection): slots, not a dict each.
    __slots__ = (
        "_aliases",
        "_clean_disconnect",
        "_client_id",
        "_closed",
        "_connect_attributes",
        "_connect_deadline",
        "_core",
        "_disconnect_reason",
        "_end_session_on_close",
        "_facts",
        "_in_call",
        "_keep_alive",
        "_last_activity",
        "_lifecycle",
        "_out",
        "_out_bytes",
        "_permissions",
        "_principal",
        "_publisher",
        "_publishes",
        "_reader",
        "_receive_denied_logged",
        "_receive_maximum",
        "_received",
        "_router",
        "_session",
        "_suppress_will",
        "_transport_details",
        "_wake",
        "_write_paused",
        "clean_start",
        "close_request",
        "connected_at",
        "door",
        "maximum_packet_size",
        "protocol_level",
        "read_paused_until",
    )

    def __init__(
        self,
        core: DeviceCore,
        principal: Principal,
        facts: ConnectionFacts,
        *,
        wake: Callable[[], None],
        transport_details: str | None = None,
        door: str | None = None,
    ) -> None:
        self._transport_details = transport_details
        self.door = door
        self._core = core
        self._router = core.router
        self._principal = principal
        self._facts = facts
        self._wake = wake
        self._reader = PacketReader(max_packet_size=MAX_INBOUND_PACKET)
        # Outlet attributes the router reads per delivery (plain slots, not properties):
        # 4 (MQTT 3.1.1) or 5, and the client's MQTT 5 Maximum Packet Size or None.
        self.protocol_level = 4
        self._session: Session | None = None
        self._client_id: str | None = None
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._write_paused = False
        self._in_call = False
        self.close_request: Closing | None = None
        self._closed = False
        self._clean_disconnect = False
        self._keep_alive = 0
        now = core.monotonic()
        self._last_activity = now
        self._connect_deadline: float | None = now + core.settings.connect_timeout
        self._receive_maximum = INFLIGHT_MAX
        self.maximum_packet_size: int | None = None
        # MQTT 5 topic aliases; made at the first alias (most clients never send one).
        self._aliases: dict[int, str] | None = None
        self._permissions: Permissions | None = None
        self._publisher = Publisher(facts, None)
        self._connect_attributes: frozenset[str] = frozenset()
        self._lifecycle: ConnectionIdentity | None = None
        self._disconnect_reason = "CONNECTION_LOST"
        # Topics whose iot:Receive denial was logged; made at the first denial (most never do).
        self._receive_denied_logged: set[str] | None = None
        self.connected_at: float | None = None
        self.clean_start = True
        # DeleteConnection's options (preventWillMessage, cleanSession).
        self._suppress_will = False
        self._end_session_on_close = False
        # AWS's per-connection quotas, when enforced.
        quotas = core.settings.aws_quotas
        self._publishes = PerSecond(PUBLISHES_PER_SECOND) if quotas else None
        self._received = PerSecond(THROUGHPUT_BYTES_PER_SECOND) if quotas else None
        # When the door should read again after the throughput quota was exceeded (None: now).
        self.read_paused_until: float | None = None

    # -- what the door reads ---------------------------------------------------------------

    @property
    def facts(self) -> ConnectionFacts:
        """The connection's facts for log records (with the client ID once connected)."""
        return self._facts

    @property
    def client_id(self) -> str | None:
        """The MQTT client ID once the CONNECT was accepted."""
        return self._client_id if self._session is not None else None

    @property
    def principal(self) -> Principal:
        """Who is connected."""
        return self._principal

    @property
    def transport_details(self) -> str | None:
        """How the client came in (TLS version and suite, SNI, policy), as logged."""
        return self._transport_details

    @property
    def keep_alive(self) -> int:
        """The keep-alive AWS applied, in seconds (0 before the CONNECT)."""
        return self._keep_alive

    @property
    def next_deadline(self) -> float | None:
        """When ``on_timer`` is due (the core's monotonic clock), None when nothing is pending.

        Before the CONNECT: the CONNECT deadline; after: the keep-alive deadline (1.5 times the
        keep-alive after the last packet). It only moves later while packets arrive, so a door
        may arm its timer lazily and re-arm when ``on_timer`` leaves a new deadline.
        """
        if self.close_request is not None or self._closed:
            return None
        if self._session is None:
            return self._connect_deadline
        return self._last_activity + self._keep_alive_limit()

    def data_to_send(self) -> bytes:
        """Take the bytes waiting to be written (b"" when none)."""
        out = self._out
        if not out:
            return b""
        data = b"".join(out) if len(out) > 1 else out[0]
        out.clear()
        was_full = self._out_bytes >= self._core.settings.outbound_buffer_bytes
        self._out_bytes = 0
        if was_full and not self._write_paused:
            self._resume_delivery()
        return data

    # -- what the door calls ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:  # noqa: PLR0912 (inlined for speed)
        """Handle every complete packet in ``data`` (arbitrarily chunked), in order."""
        if self.close_request is not None or self._closed:
            return
        now = self._last_activity = self._core.monotonic()
        received = self._received
        if received is not None and received.add(now, len(data)):
            # AWS: "Data received at a rate that exceeds this limit will be delayed in
            # processing": these bytes are handled, the door reads no more this second.
            if self.read_paused_until is None:
                self._emit_failure(
                    EventType.CONNECT,
                    Reason.THROUGHPUT_LIMIT_EXCEEDED,
                    f"More than {THROUGHPUT_BYTES_PER_SECOND} bytes received in one second; "
                    "reading resumes when the second is over",
                    None,
                )
            self.read_paused_until = received.window_end
        error: MqttError | None = None
        packets: list[Packet | PlainPublish]
        try:
            packets = self._reader.read_packets(data, plain_pairs=True)
        except MqttError as exc:
            # The packets before the bad one were valid and arrived first: handle them.
            packets, error = list(exc.packets), exc
        self._in_call = True
        try:
            on_publish = self._on_publish
            # A device sending telemetry in a loop sends many plain PUBLISHes (QoS 0, no RETAIN,
            # no properties) on one topic per read: the reader returns them as (topic, payload)
            # pairs, and their topic and policy checks are made once per run
            # (PublishIngress.plain_publisher), for this read only.
            run_topic: str | None = None
            run: Callable[[bytes], PublishRefusal | None] | None = None
            for packet in packets:
                if self.close_request is not None:
                    break
                if isinstance(packet, tuple):
                    topic, payload = packet
                    if self._session is not None and self._publishes is None:
                        if topic != run_topic:
                            run_topic = topic
                            run = self._core.ingress.plain_publisher(self._publisher, topic)
                        if run is not None:
                            refusal = run(payload)
                            if refusal is not None:
                                self._publish_refused(Publish(topic, payload), topic, refusal)
                            continue
                    publish = Publish(topic, payload)  # the full path
                    if self._session is not None:
                        on_publish(publish)
                    else:
                        self._handle(publish)
                    continue
                # PUBLISH, the commonest packet, straight to its handler once connected.
                if type(packet) is Publish and self._session is not None:
                    on_publish(packet)
                else:
                    run_topic = run = None  # e.g. a SUBSCRIBE: checks are made afresh
                    self._handle(packet)
            if error is not None and self.close_request is None:
                self._fail(error)
        finally:
            self._in_call = False

    def on_timer(self) -> None:
        """The door's timer fired: enforce the CONNECT deadline or the keep-alive."""
        now = self._core.monotonic()
        deadline = self.next_deadline
        if deadline is None or now < deadline:
            return
        if self._write_paused:
            # Reading is paused while the client does not read: its silence is ours.
            self._last_activity = now
            return
        if self._session is None:
            self._refuse_connect(
                Reason.CONNECT_TIMEOUT,
                f"No MQTT CONNECT arrived within {self._core.settings.connect_timeout:g} s of "
                "the TLS handshake",
            )
            return
        # AWS "will disconnect a client whose keep-alive timer has reached 1.5x the specified
        # keep-alive interval".
        self._close(
            Closing(
                Reason.KEEP_ALIVE_TIMEOUT.name, "MQTT_KEEP_ALIVE_TIMEOUT", _V5_KEEP_ALIVE_TIMEOUT
            ),
            f"No packet within 1.5 times the keep-alive of {self._keep_alive} s",
        )

    def pause_writing(self) -> None:
        """The transport's buffer is full: stop sending until ``resume_writing``."""
        self._write_paused = True

    def resume_writing(self) -> None:
        """The transport drained: send what waited (queued QoS 1) and end a drop episode."""
        self._write_paused = False
        # Time spent blocked on the client's reading is not the client's silence.
        self._last_activity = self._core.monotonic()
        self._resume_delivery()

    def peer_closed(self, reason: str, details: str, *, failure: bool = False) -> None:
        """The client ended the transport (TLS close_notify, WebSocket close, a TLS error)."""
        if self.close_request is not None or self._closed:
            return
        self._log_disconnect(reason, details, failure=failure, disconnect_reason=None)
        self.close_request = Closing(reason, self._disconnect_reason, None)

    def connection_lost(self, details: str | None = None) -> None:
        """The transport is gone: detach the session; send the will unless it was clean.

        Args:
            details: why, when it went without a close from either side (logged as
                ``CONNECTION_LOST``); None when a close was already logged.
        """
        if self._closed:
            return
        if self.close_request is None:
            cause = f": {details}" if details else ""
            self._log_disconnect(
                "CONNECTION_LOST",
                f"The connection was lost without DISCONNECT{cause}",
                failure=False,
                disconnect_reason=None,
            )
        self._closed = True
        self._out.clear()
        self._out_bytes = 0
        self._core.connection_closed(self)
        session, self._session = self._session, None
        if session is not None:
            session.disconnect_reason = self._disconnect_reason
            self._router.detach(
                session, send_will=not (self._clean_disconnect or self._suppress_will)
            )
            if self._end_session_on_close:
                self._router.end_session(session)
        lifecycle, self._lifecycle = self._lifecycle, None
        if lifecycle is not None:
            self._core.publish_event(
                *disconnected_event(
                    lifecycle, self._core.now_ms(), disconnect_reason=self._disconnect_reason
                )
            )
            self._core.note_disconnect(lifecycle.client_id, self._disconnect_reason)

    def shutdown(self) -> None:
        """The broker is stopping: MQTT 5 gets DISCONNECT 0x8B, then the connection closes."""
        self._close(
            Closing(
                "SERVER_INITIATED_DISCONNECT",
                "SERVER_INITIATED_DISCONNECT",
                _V5_SERVER_SHUTTING_DOWN,
            ),
            "The broker is shutting down",
            failure=False,
        )

    def disconnect(self, reason: Reason, details: str, disconnect_reason: str, code: int) -> None:
        """Close from the server side for a reason outside the protocol (a limit, a fault)."""
        self._close(Closing(reason.name, disconnect_reason, code), details)

    def delete_by_api(self, *, clean_session: bool, prevent_will: bool) -> None:
        """The DeleteConnection API: close (MQTT 5: DISCONNECT 0x98 Administrative action).

        AWS reports it as ``API_INITIATED_DISCONNECT`` and sends the will "unless
        preventWillMessage=true"; ``clean_session`` ends a persistent session with it.
        """
        self._suppress_will = prevent_will
        self._end_session_on_close = clean_session
        self._close(
            Closing(
                "API_INITIATED_DISCONNECT", "API_INITIATED_DISCONNECT", _V5_ADMINISTRATIVE_ACTION
            ),
            "Disconnected by the DeleteConnection API",
            failure=False,
        )

    # -- Outlet (called by the router) -----------------------------------------------------

    @property
    def receive_maximum(self) -> int:
        """How many QoS 1 messages may be in flight to this client."""
        return self._receive_maximum

    @property
    def can_send(self) -> bool:
        """False while the transport is paused or the outbound buffer is over its cap."""
        return (
            not self._write_paused
            and self._out_bytes < self._core.settings.outbound_buffer_bytes
            and self.close_request is None
        )

    def send(self, data: bytes) -> None:
        """Queue bytes for the client; the door takes them with ``data_to_send``."""
        if self.close_request is not None or self._closed:
            return
        if not self._out and not self._in_call:
            self._wake()
        self._out.append(data)
        self._out_bytes += len(data)
        publishes = self._publishes
        if publishes is not None and data[0] & 0xF0 == 0x30:  # a PUBLISH: counts in + out
            publishes.add(self._core.monotonic())

    def taken_over(self) -> None:
        """Another connection authenticated with this client ID (the router then detaches us)."""
        self._session = None  # the router detaches the session and sends the will
        # The old connection's disconnected event must come before the new one's connected.
        lifecycle, self._lifecycle = self._lifecycle, None
        if lifecycle is not None:
            self._core.publish_event(
                *disconnected_event(
                    lifecycle, self._core.now_ms(), disconnect_reason="DUPLICATE_CLIENTID"
                )
            )
        self._close(
            Closing(Reason.DUPLICATE_CLIENT_ID.name, "DUPLICATE_CLIENTID", _V5_SESSION_TAKEN_OVER),
            _DUPLICATE_DETAILS,
        )

    # -- packets ---------------------------------------------------------------------------

    def _handle(self, packet: Packet) -> None:
        if self._session is None:
            if isinstance(packet, Connect) and self._client_id is None:
                self._on_connect(packet)
                return
            what = "A second CONNECT" if isinstance(packet, Connect) else "A packet"
            self._protocol_error(f"{what} arrived before CONNACK or after takeover")
            return
        if isinstance(packet, Publish):
            self._on_publish(packet)
        elif isinstance(packet, Puback):
            self._router.acknowledge(self._session, packet.packet_id)
        elif isinstance(packet, Pingreq):
            self.send(encode(Pingresp(), self.protocol_level))
        elif isinstance(packet, Subscribe):
            self._on_subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            self._on_unsubscribe(packet)
        elif isinstance(packet, Disconnect):
            self._on_disconnect(packet)
        elif isinstance(packet, Connect):
            # AWS: ">1 MQTT CONNECT packet on the same connection" is a CLIENT_ERROR.
            self._protocol_error("A second CONNECT arrived on the same connection")
        elif isinstance(packet, Auth):
            self._protocol_error("AUTH is not supported by AWS IoT Core")
        else:
            name = type(packet).__name__.upper()
            self._protocol_error(f"{name} is not supported by AWS IoT Core (QoS 0 and 1 only)")

    def _fail(self, error: MqttError) -> None:
        if isinstance(error, UnsupportedProtocolVersion):
            self.send(encode(Connack(False, _V3_UNACCEPTABLE_PROTOCOL), 4))
            self._refuse_connect(
                Reason.UNSUPPORTED_PROTOCOL_VERSION,
                f"{error}; AWS IoT speaks MQTT 3.1.1 (level 4) and MQTT 5",
            )
        elif isinstance(error, PacketTooLarge):
            self._close(
                Closing(Reason.PAYLOAD_LIMIT_EXCEEDED.name, "CLIENT_ERROR", _V5_QUOTA_EXCEEDED),
                "Message payload exceeds size limit for message type.",
            )
        else:
            malformed = isinstance(error, MalformedPacket)
            reason = Reason.MALFORMED_PACKET if malformed else Reason.PROTOCOL_ERROR
            self._close(Closing(reason.name, "CLIENT_ERROR", error.reason_code), str(error))

    def _on_connect(self, connect: Connect) -> None:  # noqa: PLR0912, PLR0915 (AWS's rules, in order)
        level = connect.protocol_level
        if (connect.protocol_name, level) not in (("MQTT", 4), ("MQTT", 5)):
            self.send(encode(Connack(False, _V3_UNACCEPTABLE_PROTOCOL), 4))
            self._refuse_connect(
                Reason.UNSUPPORTED_PROTOCOL_VERSION,
                f"Protocol {connect.protocol_name!r} level {level} is not supported; "
                "AWS IoT speaks MQTT 3.1.1 (level 4) and MQTT 5",
            )
            return
        self.protocol_level = level
        v5 = level == 5
        if v5 and connect.properties.authentication_method is not None:
            # AWS IoT supports no AUTH (enhanced authentication); MQTT-4.12.0-1: a server that
            # does not support the method "MUST close the Network Connection", after a CONNACK
            # 0x8C or 0x87. AWS lists 0x87, not 0x8C, among its CONNACK codes.
            self._refuse_connect_with(
                Reason.ENHANCED_AUTHENTICATION_NOT_SUPPORTED,
                f"Authentication Method {connect.properties.authentication_method!r}: AWS IoT "
                "Core supports no MQTT 5 enhanced authentication",
                None,
                _V5_NOT_AUTHORIZED,
            )
            return
        client_id = connect.client_id
        assigned: str | None = None
        if not client_id:
            if not v5:
                # UNCONFIRMED on AWS for MQTT 3.1.1: refusing is the safer choice.
                self._refuse_connect_with(
                    Reason.CLIENT_ID_INVALID,
                    "An empty client ID is refused on MQTT 3.1.1",
                    _V3_IDENTIFIER_REJECTED,
                    _V5_CLIENT_ID_NOT_VALID,
                )
                return
            # AWS: "A random client ID generated by AWS IoT Core when a client ID isn't specified"
            client_id = assigned = uuid.uuid4().hex
        problem = _client_id_problem(client_id)
        if problem is not None:
            self._refuse_connect_with(
                Reason.CLIENT_ID_INVALID, problem, _V3_IDENTIFIER_REJECTED, _V5_CLIENT_ID_NOT_VALID
            )
            return
        self._client_id = client_id
        will_message: Message | None = None
        will_delay = 0
        if connect.will is not None:
            if not self._will_acceptable(connect.will):
                return
            will = connect.will
            will_message = build_message(
                PublishRequest(will.topic, will.payload, will.qos, will.retain, will.properties),
                client_id,
                self._core.clock(),
            )
            will_delay = will.properties.will_delay_interval or 0

        self._keep_alive = effective_keep_alive(connect.keep_alive)
        properties = connect.properties
        cap = self._core.settings.session_expiry_cap
        if v5:
            requested_expiry = properties.session_expiry_interval or 0
            self._receive_maximum = min(properties.receive_maximum or 65535, INFLIGHT_MAX)
            self.maximum_packet_size = properties.maximum_packet_size
        else:
            # MQTT 3.1.1 clean_session=0: AWS keeps the session for the account's expiry
            # (1 hour by default).
            requested_expiry = 0 if connect.clean_start else cap
        granted_expiry = grant_session_expiry(requested_expiry, cap)

        # AWS authorizes before anything else happens: a refused CONNECT never takes over.
        self._connect_attributes = _CONNECT_ATTRIBUTES[
            (granted_expiry > 0, connect.will is not None)
        ]
        if not self._authorize_connect(client_id, connect):
            return
        # Counted once authorized: a client that may not use this client ID cannot use up its
        # one CONNECT per second and lock the device that may out.
        if not self._core.connect_allowed(client_id):
            self._refuse_connect_with(
                Reason.CONNECT_RATE_EXCEEDED,
                "A CONNECT with this client ID was accepted less than a second ago; AWS allows "
                "1 CONNECT per second per client ID",
                None,
                _V5_QUOTA_EXCEEDED,
            )
            return

        session, present = self._router.open_session(
            client_id,
            self,
            clean_start=connect.clean_start,
            expiry_interval=granted_expiry,
            will=will_message,
            will_delay=will_delay,
        )
        self._session = session
        self.connected_at = self._core.clock()
        self.clean_start = connect.clean_start
        self._facts = dataclasses.replace(self._facts, client_id=client_id)
        self._publisher = Publisher(self._facts, self._permissions, client_id)
        connack_properties = Properties()
        if v5:
            connack_properties = self._connack_properties(
                requested_expiry, granted_expiry, assigned
            )
        self.send(encode(Connack(present, 0, connack_properties), level))
        if v5:
            # Enforce the Maximum Packet Size the CONNACK advertises (MQTT 5 3.2.2.3.6).
            self._reader.limit_packet_size(ADVERTISED_MAXIMUM_PACKET_SIZE)
        self._connect_deadline = None
        if self._core.ingress.log_successes:
            self._core.emit(connect_success(self._facts, details=self._transport_details))
        self._core.connection_opened(self)
        if self._permissions is not None:
            session.receive_check = self._may_receive
        if self._core.ingress.log_successes:
            session.on_delivery = self._log_delivery
        self._start_lifecycle(client_id)
        self._router.resume_delivery(session)

    def _will_acceptable(self, will: Will) -> bool:
        """AWS's will rules: QoS 0 or 1, a publishable topic, a payload within the limit."""
        if will.qos > 1:
            # AWS: QoS 2 is unsupported; MQTT 3 has no CONNACK code for it, so just close.
            self._refuse_connect_with(
                Reason.WILL_QOS_NOT_SUPPORTED, "The will has QoS 2", None, _V5_QOS_NOT_SUPPORTED
            )
            return False
        topic_problem, _ = self._core.ingress.topic_verdict(will.topic, will.retain)
        if topic_problem is not None:
            self._refuse_connect_with(
                Reason.WILL_TOPIC_INVALID,
                f"Will topic {will.topic!r}: {topic_problem.details}",
                None,
                _V5_TOPIC_NAME_INVALID,
            )
            return False
        if len(will.payload) > PAYLOAD_MAX_BYTES:
            self._refuse_connect_with(
                Reason.PAYLOAD_LIMIT_EXCEEDED,
                "Message payload exceeds size limit for message type.",
                None,
                _V5_QUOTA_EXCEEDED,
            )
            return False
        return True

    def _connack_properties(
        self, requested_expiry: int, granted_expiry: int, assigned: str | None
    ) -> Properties:
        """MQTT 5 CONNACK properties: AWS's advertised limits and the values applied."""
        return Properties(
            session_expiry_interval=granted_expiry if granted_expiry != requested_expiry else None,
            receive_maximum=INFLIGHT_MAX,
            maximum_qos=1,
            retain_available=1,
            maximum_packet_size=ADVERTISED_MAXIMUM_PACKET_SIZE,
            assigned_client_identifier=assigned,
            topic_alias_maximum=TOPIC_ALIAS_MAX,
            wildcard_subscription_available=1,
            subscription_identifier_available=0,
            shared_subscription_available=1,
            server_keep_alive=self._keep_alive,
        )

    def _start_lifecycle(self, client_id: str) -> None:
        if not emits_lifecycle_events(client_id):
            return
        self._lifecycle = ConnectionIdentity(
            client_id=client_id,
            principal_identifier=self._principal.principal_id,
            session_identifier=str(uuid.uuid4()),
            ip_address=self._facts.source_ip,
            version_number=self._core.next_version_number(client_id),
        )
        self._core.publish_event(*connected_event(self._lifecycle, self._core.now_ms()))

    # -- authorization ---------------------------------------------------------------------

    def _authorize_connect(self, client_id: str, connect: Connect) -> bool:
        """``iot:Connect`` on the client ID, and ``iot:Publish`` on the will topic (AWS)."""
        provider = self._core.permissions
        if provider is None:
            return True
        permissions = provider.permissions_for(self._principal, client_id, self._connect_attributes)
        self._permissions = permissions
        if permissions.status != "ACTIVE":
            # The door checked the registry at the handshake; the status changed since.
            self._refuse_connect(
                Reason.CERTIFICATE_NOT_ACTIVE,
                f"The principal {self._principal.principal_id} is "
                f"{permissions.status or 'not registered'}",
            )
            return False
        denial = _first_denial(permissions.check(CONNECT, "client", client_id))
        if denial is None and connect.will is not None:
            will = connect.will
            denial = _first_denial(permissions.check(PUBLISH, "topic", will.topic))
            if denial is None and will.retain:
                denial = _first_denial(permissions.check(RETAIN_PUBLISH, "topic", will.topic))
        if denial is None:
            return True
        details = f"Authorization Failure: {denial.details}"
        # AWS: MQTT 3 gets no CONNACK (the connection just closes), MQTT 5 gets 0x87.
        if self.protocol_level == 5:
            self.send(encode(Connack(False, _V5_NOT_AUTHORIZED), 5))
        elif self._core.settings.connack_on_deny:
            self.send(encode(Connack(False, _V3_NOT_AUTHORIZED), 4))
        if emits_lifecycle_events(client_id):
            failed = ConnectionIdentity(
                client_id=client_id,
                principal_identifier=self._principal.principal_id,
                session_identifier=str(uuid.uuid4()),
                ip_address=self._facts.source_ip,
                version_number=0,
            )
            self._core.publish_event(*connect_failed_event(failed, self._core.now_ms()))
        self._refuse_connect(Reason.AUTHORIZATION_FAILURE, details)
        return False

    def _authorize(self, action: str, kind: str, name: str) -> Decision | None:
        """None when allowed (or authorization is off), else the denying decision."""
        permissions = self._permissions
        if permissions is None:
            return None
        return _first_denial(permissions.check(action, kind, name))

    def _may_receive(self, topic: str) -> bool:
        """``iot:Receive`` at each delivery (the session's check); denials logged once a topic.

        A method rather than a closure over the permissions: nothing more per connection than
        the bound method the session holds; it reads the permissions the last refresh set.
        """
        permissions = self._permissions
        if permissions is None:
            return True
        decision = permissions.check(RECEIVE, "topic", topic)
        if decision.allowed:
            return True
        logged = self._receive_denied_logged
        if logged is None:
            logged = self._receive_denied_logged = set()
        if topic not in logged:
            if len(logged) >= _RECEIVE_DENIALS_LOGGED:
                logged.clear()
            logged.add(topic)
            self._emit_failure(
                EventType.PUBLISH_OUT,
                Reason.AUTHORIZATION_FAILURE,
                f"Authorization Failure: {decision.details}",
                topic,
            )
        return False

    def refresh_permissions(self) -> None:
        """Re-read the principal's status and policies after a registry change.

        AWS: "Within a few minutes of updating a certificate from the ACTIVE state to any other
        state, AWS IoT disconnects all devices that used that certificate" (UpdateCertificate);
        policy changes apply to the next action.
        """
        provider = self._core.permissions
        if provider is None or self._session is None or self._client_id is None:
            return
        permissions = provider.permissions_for(
            self._principal, self._client_id, self._connect_attributes
        )
        if permissions.status != "ACTIVE":
            self._close(
                Closing(Reason.CERTIFICATE_STATUS_CHANGED.name, "AUTH_ERROR", _V5_NOT_AUTHORIZED),
                f"Certificate {self._principal.principal_id} is now "
                f"{permissions.status or 'deleted'}",
            )
            return
        self._permissions = permissions
        self._publisher = Publisher(self._facts, permissions, self._client_id)
        self._receive_denied_logged = None
        self._session.receive_check = self._may_receive

    def _log_delivery(self, message: Message) -> None:
        self._core.log_success(_PUBLISH_OUT, self._facts, message.topic, False, None)

    def _on_publish(self, publish: Publish) -> None:
        topic = publish.topic
        if self.protocol_level == 5 and publish.properties.topic_alias is not None:
            aliased = self._resolve_alias(publish)
            if aliased is None:
                return
            topic = aliased
        if self._publishes is not None and self._over_publish_quota(publish, topic):
            return
        request = new_publish_request(
            topic, publish.payload, publish.qos, publish.retain, publish.properties
        )
        packet_id = publish.packet_id if publish.qos == 1 else None
        acknowledge = None if packet_id is None else partial(self._acknowledge, packet_id)
        refusal = self._core.ingress.publish(self._publisher, request, acknowledge)
        if refusal is not None:
            self._publish_refused(publish, topic, refusal)

    def _publish_refused(self, publish: Publish, topic: str, refusal: PublishRefusal) -> None:
        """Tell the client of a refused PUBLISH as AWS does (PUBACK code, silence or close)."""
        reason = refusal.reason
        if reason is Reason.QOS_NOT_SUPPORTED:
            if self.protocol_level == 5:
                # MQTT 5 3.3.1.2: QoS above the CONNACK's Maximum QoS is a DISCONNECT 0x9B
                # (which AWS lists); MQTT 3.1.1 gets AWS's observed silence.
                self._close(
                    Closing(reason.name, "CLIENT_ERROR", _V5_QOS_NOT_SUPPORTED), refusal.details
                )
            return  # AWS: "the message broker doesn't send a PUBACK"
        code = _V5_PUBACK_CODES.get(reason)
        if self.protocol_level == 5 and code is not None:
            if publish.qos == 1 and publish.packet_id is not None:
                self.send(encode(Puback(publish.packet_id, code), 5))
            return
        if reason is Reason.AUTHORIZATION_FAILURE:
            # AWS: an unauthorized PUBLISH disconnects an MQTT 3.1.1 client (AUTH_ERROR).
            self._close(Closing(reason.name, "AUTH_ERROR", None), refusal.details)
        elif reason is Reason.TOPIC_INVALID:
            self._close(
                Closing(reason.name, "CLIENT_ERROR", _V5_TOPIC_NAME_INVALID),
                f"Topic {topic!r}: {refusal.details}",
            )
        elif reason is Reason.PAYLOAD_LIMIT_EXCEEDED:
            self._close(Closing(reason.name, "CLIENT_ERROR", _V5_QUOTA_EXCEEDED), refusal.details)
        elif reason in _STORAGE_DISCONNECT_CODES:
            code = _STORAGE_DISCONNECT_CODES[reason]
            self._close(Closing(reason.name, "SERVER_ERROR", code), refusal.details)
        else:
            self._close(
                Closing(reason.name, "CLIENT_ERROR", None), f"Topic {topic!r}: {refusal.details}"
            )

    def _over_publish_quota(self, publish: Publish, topic: str) -> bool:
        """AWS: "Publish requests exceeding that limit will be discarded" (100 per second)."""
        publishes = self._publishes
        if publishes is None or publishes.take(self._core.monotonic()):
            return False
        if publishes.refused == 1:  # once per second it happens
            self._emit_failure(
                EventType.PUBLISH_IN,
                Reason.PUBLISH_RATE_EXCEEDED,
                f"More than {PUBLISHES_PER_SECOND} publishes (in and out) in one second; the "
                "excess is discarded for the rest of the second",
                topic,
            )
        if self.protocol_level == 5 and publish.qos == 1 and publish.packet_id is not None:
            self.send(encode(Puback(publish.packet_id, _V5_QUOTA_EXCEEDED), 5))
        return True

    def _acknowledge(self, packet_id: int) -> None:
        self.send(puback_bytes(packet_id))

    def _resolve_alias(self, publish: Publish) -> str | None:
        """The PUBLISH's topic, with an MQTT 5 topic alias applied; None after a refusal."""
        topic = publish.topic
        alias = publish.properties.topic_alias
        if self.protocol_level != 5 or alias is None:
            return topic
        if not 1 <= alias <= TOPIC_ALIAS_MAX:
            self._close(
                Closing(Reason.PROTOCOL_ERROR.name, "CLIENT_ERROR", _V5_TOPIC_ALIAS_INVALID),
                f"Topic alias {alias} is outside 1..{TOPIC_ALIAS_MAX}",
            )
            return None
        aliases = self._aliases
        if topic:
            if aliases is None:
                aliases = self._aliases = {}
            aliases[alias] = topic
            return topic
        if aliases is not None and alias in aliases:
            return aliases[alias]
        self._protocol_error(f"Topic alias {alias} was never set")
        return None

    def _on_subscribe(self, subscribe: Subscribe) -> None:  # noqa: PLR0912 (per-filter verdicts)
        assert self._session is not None
        if subscribe.properties.subscription_identifiers:
            self._close(
                Closing(
                    Reason.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED.name,
                    "CLIENT_ERROR",
                    _V5_SUBSCRIPTION_IDS_NOT_SUPPORTED,
                ),
                "Subscription Identifiers are not available on AWS IoT Core",
            )
            return
        if any(options.qos > 1 for _, options in subscribe.subscriptions):
            # AWS: "When QoS level 2 is requested, the message broker doesn't send a ... SUBACK".
            for topic_filter, options in subscribe.subscriptions:
                if options.qos > 1:
                    self._emit_failure(
                        EventType.SUBSCRIBE,
                        Reason.QOS_NOT_SUPPORTED,
                        "QoS 2 SUBSCRIBE: no SUBACK, nothing subscribed",
                        topic_filter,
                    )
            return
        v5 = self.protocol_level == 5
        if self._core.settings.aws_quotas and len(subscribe.subscriptions) > FILTERS_PER_SUBSCRIBE:
            self._emit_failure(
                EventType.SUBSCRIBE,
                Reason.SUBSCRIBE_FILTERS_EXCEEDED,
                f"A SUBSCRIBE with {len(subscribe.subscriptions)} topic filters; AWS allows "
                f"{FILTERS_PER_SUBSCRIBE}",
                subscribe.subscriptions[0][0],
            )
            refused = (_V5_QUOTA_EXCEEDED if v5 else _V3_SUBACK_FAILURE,)
            self.send(
                encode(
                    Suback(subscribe.packet_id, refused * len(subscribe.subscriptions)),
                    self.protocol_level,
                )
            )
            return
        codes: list[int | None] = []
        valid = []
        for topic_filter, options in subscribe.subscriptions:
            problem = validate_topic_filter(topic_filter)
            if problem is not None:
                self._emit_failure(
                    EventType.SUBSCRIBE, Reason.TOPIC_FILTER_INVALID, problem.reason, topic_filter
                )
                codes.append(_V5_TOPIC_FILTER_INVALID if v5 else _V3_SUBACK_FAILURE)
                continue
            reserved = self._core.services.subscribe_refusal(topic_filter)
            if reserved is not None:
                self._emit_failure(
                    EventType.SUBSCRIBE, reserved.reason, reserved.details, topic_filter
                )
                codes.append(_V5_NOT_AUTHORIZED if v5 else _V3_SUBACK_FAILURE)
                continue
            denial = self._authorize(SUBSCRIBE, "topicfilter", topic_filter)
            if denial is not None:
                details = f"Authorization Failure: {denial.details}"
                self._emit_failure(
                    EventType.SUBSCRIBE, Reason.AUTHORIZATION_FAILURE, details, topic_filter
                )
                if not v5 and not self._core.settings.connack_on_deny:
                    # AWS: a denied SUBSCRIBE disconnects an MQTT 3.1.1 client.
                    self._close(
                        Closing(Reason.AUTHORIZATION_FAILURE.name, "AUTH_ERROR", None), details
                    )
                    return
                codes.append(_V5_NOT_AUTHORIZED if v5 else _V3_SUBACK_FAILURE)
                continue
            valid.append((topic_filter, options))
            codes.append(None)
        result = self._router.subscribe(self._session, valid)
        for (topic_filter, _), code in zip(valid, result.reason_codes, strict=True):
            if code not in (0, 1):  # the router refuses only beyond AWS's 50 subscriptions
                self._emit_failure(
                    EventType.SUBSCRIBE,
                    Reason.SUBSCRIPTION_LIMIT_EXCEEDED,
                    "The connection already has 50 subscriptions",
                    topic_filter,
                )
        granted = iter(result.reason_codes)
        final = [code if code is not None else next(granted) for code in codes]
        self.send(encode(Suback(subscribe.packet_id, tuple(final)), self.protocol_level))
        granted_filters = [
            topic_filter
            for (topic_filter, _), code in zip(subscribe.subscriptions, final, strict=True)
            if code in (0, 1)
        ]
        if granted_filters:
            if self._core.ingress.log_successes:
                for topic_filter in granted_filters:
                    self._core.emit(
                        event_success(EventType.SUBSCRIBE, self._facts, topic_name=topic_filter)
                    )
            if self._lifecycle is not None:
                self._core.publish_event(
                    *subscription_event(
                        self._lifecycle, self._core.now_ms(), granted_filters, subscribed=True
                    )
                )
        self._router.send_retained(self._session, result)

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        assert self._session is not None
        self._router.unsubscribe(self._session, unsubscribe.topic_filters)
        # AWS's UNSUBACK codes are 0x00, 0x80, 0x8F and 0x91 (mqtt.html): no 0x11 (No
        # subscription existed), so an unknown filter is acknowledged with 0x00.
        reason_codes = (0x00,) * len(unsubscribe.topic_filters) if self.protocol_level == 5 else ()
        self.send(encode(Unsuback(unsubscribe.packet_id, reason_codes), self.protocol_level))
        filters = list(unsubscribe.topic_filters)
        if self._core.ingress.log_successes:
            for topic_filter in filters:
                self._core.emit(
                    event_success(EventType.UNSUBSCRIBE, self._facts, topic_name=topic_filter)
                )
        if self._lifecycle is not None:
            self._core.publish_event(
                *subscription_event(self._lifecycle, self._core.now_ms(), filters, subscribed=False)
            )

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        assert self._session is not None
        expiry = disconnect.properties.session_expiry_interval
        if self.protocol_level == 5 and expiry is not None:
            if self._session.expiry_interval == 0 and expiry > 0:
                # MQTT 5 3.14.2.2.2: 0 at CONNECT cannot become non-zero at DISCONNECT.
                self._protocol_error("Session Expiry Interval changed from 0 at DISCONNECT")
                return
            self._router.set_expiry_interval(
                self._session, grant_session_expiry(expiry, self._core.settings.session_expiry_cap)
            )
        # AWS sends no will after a client DISCONNECT; MQTT 5 reason 0x04 asks for it.
        self._clean_disconnect = disconnect.reason_code != _DISCONNECT_WITH_WILL
        self._disconnect_reason = "CLIENT_INITIATED_DISCONNECT"
        self._log_disconnect(
            "CLIENT_INITIATED_DISCONNECT",
            "The client sent DISCONNECT",
            failure=False,
            disconnect_reason=None,
        )
        self._request_close(
            Closing("CLIENT_INITIATED_DISCONNECT", "CLIENT_INITIATED_DISCONNECT", None)
        )

    # -- keep-alive ------------------------------------------------------------------------

    def _keep_alive_limit(self) -> float:
        return self._keep_alive * 1.5 * self._core.settings.keep_alive_time_scale

    # -- closing and logging ---------------------------------------------------------------

    def _resume_delivery(self) -> None:
        if self._session is not None and self.close_request is None:
            self._router.resume_delivery(self._session)

    def _protocol_error(self, details: str) -> None:
        self._close(
            Closing(Reason.PROTOCOL_ERROR.name, "CLIENT_ERROR", _V5_PROTOCOL_ERROR), details
        )

    def _close(self, closing: Closing, details: str, *, failure: bool = True) -> None:
        """Close from the server side: MQTT 5 DISCONNECT first, one log line, then the close."""
        if self.close_request is not None or self._closed:
            return
        if self.protocol_level == 5 and closing.code is not None and self._client_id is not None:
            self.send(encode(Disconnect(closing.code), 5))
        self._disconnect_reason = closing.disconnect_reason
        self._log_disconnect(
            closing.reason, details, failure=failure, disconnect_reason=closing.disconnect_reason
        )
        self._request_close(closing)

    def _request_close(self, closing: Closing) -> None:
        self.close_request = closing
        if not self._in_call:
            self._wake()

    def _log_disconnect(
        self, reason: str, details: str, *, failure: bool, disconnect_reason: str | None
    ) -> None:
        if failure or self._core.ingress.log_successes:
            self._core.emit(
                disconnect_record(
                    self._facts,
                    reason,
                    details,
                    failure=failure,
                    disconnect_reason=disconnect_reason,
                )
            )

    def _refuse_connect(self, reason: Reason, details: str) -> None:
        """Log a refused CONNECT (no ``Disconnect`` record) and close."""
        facts = self._facts
        if self._client_id is not None:
            facts = dataclasses.replace(facts, client_id=self._client_id)
        self._core.emit(connect_failure(reason, details, facts))
        self._request_close(Closing(reason.name, "CLIENT_ERROR", None))

    def _refuse_connect_with(
        self, reason: Reason, details: str, v3_code: int | None, v5_code: int
    ) -> None:
        """Refuse a CONNECT: CONNACK with the version's code (if it has one), log, close."""
        code = v5_code if self.protocol_level == 5 else v3_code
        if code is not None:
            self.send(encode(Connack(False, code), self.protocol_level))
        self._refuse_connect(reason, details)

    def _emit_failure(
        self, event: EventType, reason: Reason, details: str, topic: str | None
    ) -> None:
        self._core.emit(event_failure(event, reason, details, self._facts, topic_name=topic))


def _first_denial(decision: Decision) -> Decision | None:
    return None if decision.allowed else decision


def _client_id_problem(client_id: str) -> str | None:
    if len(client_id.encode("utf-8")) > CLIENT_ID_MAX_BYTES:
        return f"The client ID is over {CLIENT_ID_MAX_BYTES} bytes"
    if client_id.startswith("$"):
        return "Client IDs starting with $ are reserved for AWS IoT"
    return None
