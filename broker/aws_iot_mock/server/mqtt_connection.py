"""The asyncio shell of the MQTT core: one ``MqttConnection`` per authenticated device.

It parses packets with the sans-IO codec, applies AWS IoT's CONNECT and PUBLISH rules, drives the
pure ``BrokerCore`` and runs the keep-alive timer. Writes are coalesced: every packet of a received
chunk is handled before anything is written, and packets queued for other connections during that
time are flushed once per event-loop iteration (``MqttHub``). No task is created per message.

AWS behaviour cited here is from ``shared/reference/aws-iot-spec.md`` section 3 (AWS IoT
"MQTT" page and the message-broker quotas).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_iot_mock.authz.iot_policy_evaluation import Decision
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
    INFLIGHT_MAX,
    PAYLOAD_MAX_BYTES,
    SESSION_EXPIRY_DEFAULT_MAX,
    TOPIC_ALIAS_MAX,
    clamp_message_expiry,
    effective_keep_alive,
    grant_session_expiry,
)
from aws_iot_mock.logs.cloudwatch import (
    EventType,
    Reason,
    connect_failure,
    event_failure,
    event_success,
)
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
    Pingreq,
    Pingresp,
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
)
from aws_iot_mock.mqtt.core import BrokerCore, Session
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.mqtt.topics import (
    reserved_topic_problem,
    validate_publish_topic,
    validate_topic_filter,
    validate_topic_name,
)
from aws_iot_mock.server.authorization import (
    CONNECT,
    PUBLISH,
    RECEIVE,
    RETAIN_PUBLISH,
    SUBSCRIBE,
    Authorizer,
    ConnectionPermissions,
)
from aws_iot_mock.server.door import DeviceChannel
from aws_iot_mock.server.shadows import ShadowService

__all__ = ["MqttConnection", "MqttHub"]

logger = logging.getLogger("aws_iot_mock.mqtt")

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
_V5_PAYLOAD_FORMAT_INVALID = 0x99
_V5_PROTOCOL_ERROR = 0x82
_V5_TOPIC_ALIAS_INVALID = 0x94
_V5_SERVER_SHUTTING_DOWN = 0x8B
_V5_KEEP_ALIVE_TIMEOUT = 0x8D
_V5_SESSION_TAKEN_OVER = 0x8E
_V5_PACKET_TOO_LARGE = 0x95
_V5_SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1
_V5_TOPIC_FILTER_INVALID = 0x8F
_V3_SUBACK_FAILURE = 0x80
_V3_NOT_AUTHORIZED = 0x05
_DISCONNECT_WITH_WILL = 0x04

_DUPLICATE_DETAILS = "A new connection was established with the same client ID"
_TOPIC_VERDICT_CACHE = 256
_TopicVerdict = tuple[Reason, str] | None


@dataclass(frozen=True, slots=True)
class _Closing:
    """How a server-side close is reported: log reason, AWS disconnectReason, MQTT 5 code."""

    reason: str
    disconnect_reason: str
    code: int | None


class MqttHub:
    """What every ``MqttConnection`` of a broker shares: the core, write batching and ticks.

    Args:
        core: the sessions and routing.
        session_expiry_cap: the longest session AWS grants (default 1 hour; AWS allows up to
            7 days when the account limit is raised).
        emit: writes a log record.
        keep_alive_time_scale: real seconds per keep-alive second. Tests use a small value so
            that AWS's 30 s minimum (a 45 s timeout) elapses quickly; CONNACK still carries the
            keep-alive in protocol seconds.
        authorizer: evaluates IoT policies; None turns authorization off (only for tests of
            the MQTT layer alone).
        connack_on_deny: ``diagnostics.connack_on_deny``: answer a denied MQTT 3.1.1 CONNECT
            with CONNACK 0x05 and a denied SUBSCRIBE with SUBACK 0x80 instead of closing.
        log_successes: write INFO records for every publish, delivery and (un)subscribe (AWS
            logs them at INFO); off when the configured level is below INFO.
    """

    def __init__(
        self,
        core: BrokerCore,
        *,
        emit: Callable[[Mapping[str, object]], None],
        session_expiry_cap: int = SESSION_EXPIRY_DEFAULT_MAX,
        keep_alive_time_scale: float = 1.0,
        authorizer: Authorizer | None = None,
        connack_on_deny: bool = False,
        log_successes: bool = True,
    ) -> None:
        self.core = core
        self.emit = emit
        self.session_expiry_cap = session_expiry_cap
        self.keep_alive_time_scale = keep_alive_time_scale
        self.authorizer = authorizer
        self.connack_on_deny = connack_on_deny
        self.log_successes = log_successes
        self.connections: set[MqttConnection] = set()
        self.registry_listeners: list[Callable[[], None]] = []
        # The Device Shadow service, when the broker runs one (set by broker.server.app).
        self.shadows: ShadowService | None = None
        self._mailbox_handle: asyncio.TimerHandle | None = None
        # AWS: versionNumber is "monotonically increasing ... for each client ID connection".
        self._version_numbers: dict[str, int] = {}
        self._dirty: list[MqttConnection] = []
        self._tick_handle: asyncio.TimerHandle | None = None

    def handler_factory(self, channel: DeviceChannel) -> MqttConnection:
        """Create the handler for a newly authenticated connection (the door calls this)."""
        return MqttConnection(channel, self)

    def mark_dirty(self, connection: MqttConnection) -> None:
        """Flush ``connection``'s queued bytes at the end of this event-loop iteration."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush)
        self._dirty.append(connection)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for connection in dirty:
            connection.flush()

    def start(self) -> None:
        """Start the timers: the once-a-second tick and the shadow mailbox poll.

        The tick fires delayed wills, expires sessions and applies registry changes; the poll
        answers shadow requests posted by the CLI within a fifth of a second.
        """
        self._tick()
        self._poll_mailbox()

    def _poll_mailbox(self) -> None:
        self._mailbox_handle = asyncio.get_running_loop().call_later(0.2, self._poll_mailbox)
        if self.shadows is not None:
            self.shadows.drain_cli_requests()

    def _tick(self) -> None:
        self._tick_handle = asyncio.get_running_loop().call_later(1.0, self._tick)
        self.core.tick()
        if self.authorizer is not None and self.authorizer.changed():
            # The registry was written (CLI, another process): re-read every live connection's
            # certificate status, policies and things.
            for connection in list(self.connections):
                connection.refresh_permissions()
            for listener in self.registry_listeners:
                listener()

    def next_version_number(self, client_id: str) -> int:
        """The lifecycle ``versionNumber`` for a new connection of ``client_id``."""
        number = self._version_numbers.get(client_id, -1) + 1
        self._version_numbers[client_id] = number
        return number

    def publish_event(self, topic: str, payload: bytes) -> None:
        """Publish a broker-made message (lifecycle events) to subscribers, QoS 1."""
        self.core.publish(Message(topic, payload, qos=1, sender=None, published_at=time.time()))

    def stop(self) -> None:
        """Stop the timers."""
        for handle in (self._tick_handle, self._mailbox_handle):
            if handle is not None:
                handle.cancel()
        self._tick_handle = self._mailbox_handle = None


class MqttConnection:
    """One device's MQTT connection: an ``MqttHandler`` for the door, an ``Outlet`` for the core."""

    def __init__(self, channel: DeviceChannel, hub: MqttHub) -> None:
        self._channel = channel
        self._hub = hub
        self._core = hub.core
        self._reader = PacketReader(max_packet_size=MAX_INBOUND_PACKET)
        self._level = 4
        self._session: Session | None = None
        self._client_id: str | None = None
        self._out: list[bytes] = []
        self._closing = False
        self._clean_disconnect = False
        self._keep_alive = 0
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self._receive_maximum = INFLIGHT_MAX
        self._maximum_packet_size: int | None = None
        self._aliases: dict[int, str] = {}
        self._permissions: ConnectionPermissions | None = None
        self._connect_attributes: frozenset[str] = frozenset()
        self._lifecycle: ConnectionIdentity | None = None
        self._disconnect_reason = "CONNECTION_LOST"
        self._receive_denied_logged: set[str] = set()
        # Devices publish to a handful of topics again and again: remember verdicts.
        self._topic_verdicts: dict[tuple[str, bool], _TopicVerdict] = {}

    # -- Outlet (called by the core) -------------------------------------------------------

    @property
    def protocol_level(self) -> int:
        """4 (MQTT 3.1.1) or 5."""
        return self._level

    @property
    def receive_maximum(self) -> int:
        """How many QoS 1 messages may be in flight to this client."""
        return self._receive_maximum

    @property
    def maximum_packet_size(self) -> int | None:
        """The client's Maximum Packet Size (MQTT 5), or None."""
        return self._maximum_packet_size

    def send(self, data: bytes) -> None:
        """Queue bytes; they are written once per event-loop iteration."""
        if self._closing:
            return
        if not self._out:
            self._hub.mark_dirty(self)
        self._out.append(data)

    def flush(self) -> None:
        """Write everything queued, in one TLS write."""
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            self._channel.write(data)

    def taken_over(self) -> None:
        """Another connection authenticated with this client ID (the core then detaches us)."""
        self._session = None  # the core detaches the session and sends the will
        # The old connection's disconnected event must come before the new one's connected.
        lifecycle, self._lifecycle = self._lifecycle, None
        if lifecycle is not None:
            self._hub.publish_event(
                *disconnected_event(lifecycle, _now_ms(), disconnect_reason="DUPLICATE_CLIENTID")
            )
        self._close(
            _Closing(Reason.DUPLICATE_CLIENT_ID.name, "DUPLICATE_CLIENTID", _V5_SESSION_TAKEN_OVER),
            _DUPLICATE_DETAILS,
        )

    # -- MqttHandler (called by the door) --------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Handle every complete packet in ``data``, then write the answers at once."""
        self._last_activity = self._loop.time()
        error: MqttError | None = None
        try:
            packets = self._reader.read_packets(data)
        except MqttError as exc:
            # The packets before the bad one were valid and arrived first: handle them.
            packets, error = list(exc.packets), exc
        for packet in packets:
            if self._closing:
                break
            self._handle(packet)
        if error is not None and not self._closing:
            self._fail(error)
        self.flush()

    def _fail(self, error: MqttError) -> None:
        if isinstance(error, UnsupportedProtocolVersion):
            self._channel.write(encode(Connack(False, _V3_UNACCEPTABLE_PROTOCOL), 4))
            self._refuse_connect(
                Reason.UNSUPPORTED_PROTOCOL_VERSION,
                f"{error}; AWS IoT speaks MQTT 3.1.1 (level 4) and MQTT 5",
            )
        elif isinstance(error, PacketTooLarge):
            self._close(
                _Closing(Reason.PAYLOAD_LIMIT_EXCEEDED.name, "CLIENT_ERROR", _V5_PACKET_TOO_LARGE),
                "Message payload exceeds size limit for message type.",
            )
        else:
            malformed = isinstance(error, MalformedPacket)
            reason = Reason.MALFORMED_PACKET if malformed else Reason.PROTOCOL_ERROR
            self._close(_Closing(reason.name, "CLIENT_ERROR", error.reason_code), str(error))

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: detach the session; send the will unless it was clean."""
        self._closing = True
        self._out.clear()
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        self._hub.connections.discard(self)
        session, self._session = self._session, None
        if session is not None:
            self._core.detach(session, send_will=not self._clean_disconnect)
        lifecycle, self._lifecycle = self._lifecycle, None
        if lifecycle is not None:
            self._hub.publish_event(
                *disconnected_event(lifecycle, _now_ms(), disconnect_reason=self._disconnect_reason)
            )

    def shutdown(self) -> None:
        """The broker is stopping: MQTT 5 gets DISCONNECT 0x8B, then the connection closes."""
        self._close(
            _Closing(
                "SERVER_INITIATED_DISCONNECT",
                "SERVER_INITIATED_DISCONNECT",
                _V5_SERVER_SHUTTING_DOWN,
            ),
            "The broker is shutting down",
            failure=False,
        )

    # -- packets ---------------------------------------------------------------------------

    def _handle(self, packet: Packet) -> None:
        if self._session is None:
            if isinstance(packet, Connect) and self._client_id is None:
                self._on_connect(packet)
                return
            raise_protocol = "A second CONNECT" if isinstance(packet, Connect) else "A packet"
            self._protocol_error(f"{raise_protocol} arrived before CONNACK or after takeover")
            return
        if isinstance(packet, Publish):
            self._on_publish(packet)
        elif isinstance(packet, Puback):
            self._core.acknowledge(self._session, packet.packet_id)
        elif isinstance(packet, Pingreq):
            self.send(encode(Pingresp(), self._level))
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

    def _on_connect(self, connect: Connect) -> None:  # noqa: PLR0912, PLR0915 (AWS's rules, in order)
        level = connect.protocol_level
        if (connect.protocol_name, level) not in (("MQTT", 4), ("MQTT", 5)):
            self._channel.write(encode(Connack(False, _V3_UNACCEPTABLE_PROTOCOL), 4))
            self._refuse_connect(
                Reason.UNSUPPORTED_PROTOCOL_VERSION,
                f"Protocol {connect.protocol_name!r} level {level} is not supported; "
                "AWS IoT speaks MQTT 3.1.1 (level 4) and MQTT 5",
            )
            return
        self._level = level
        v5 = level == 5
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
            will_message = _message(
                will.topic,
                will.payload,
                qos=will.qos,
                retain=will.retain,
                properties=will.properties,
                sender=client_id,
            )
            will_delay = will.properties.will_delay_interval or 0

        self._keep_alive = effective_keep_alive(connect.keep_alive)
        properties = connect.properties
        cap = self._hub.session_expiry_cap
        if v5:
            requested_expiry = properties.session_expiry_interval or 0
            self._receive_maximum = min(properties.receive_maximum or 65535, INFLIGHT_MAX)
            self._maximum_packet_size = properties.maximum_packet_size
        else:
            # MQTT 3.1.1 clean_session=0: AWS keeps the session for the account's expiry
            # (1 hour by default).
            requested_expiry = 0 if connect.clean_start else cap
        granted_expiry = grant_session_expiry(requested_expiry, cap)

        # AWS authorizes before anything else happens: a refused CONNECT never takes over.
        attributes = {"PersistentConnect"} if granted_expiry > 0 else set()
        if connect.will is not None:
            attributes.add("LastWill")
        self._connect_attributes = frozenset(attributes)
        if not self._authorize_connect(client_id, connect):
            return

        session, present = self._core.open_session(
            client_id,
            self,
            clean_start=connect.clean_start,
            expiry_interval=granted_expiry,
            will=will_message,
            will_delay=will_delay,
        )
        self._session = session
        connack_properties = Properties()
        if v5:
            connack_properties = self._connack_properties(
                requested_expiry, granted_expiry, assigned
            )
        self.send(encode(Connack(present, 0, connack_properties), level))
        self._channel.connect_accepted(client_id)
        self._hub.connections.add(self)
        permissions = self._permissions
        if permissions is not None:
            session.receive_check = self._receive_check(permissions)
        if self._hub.log_successes:
            session.on_delivery = self._log_delivery
        self._start_lifecycle(client_id)
        self._core.resume_delivery(session)
        self._arm_keep_alive(self._keep_alive_limit())

    def _will_acceptable(self, will: Will) -> bool:
        """AWS's will rules: QoS 0 or 1, a publishable topic, a payload within the limit."""
        if will.qos > 1:
            # AWS: QoS 2 is unsupported; MQTT 3 has no CONNACK code for it, so just close.
            self._refuse_connect_with(
                Reason.WILL_QOS_NOT_SUPPORTED, "The will has QoS 2", None, _V5_QOS_NOT_SUPPORTED
            )
            return False
        topic_problem = validate_publish_topic(will.topic, retain=will.retain)
        if topic_problem is not None:
            self._refuse_connect_with(
                Reason.WILL_TOPIC_INVALID,
                f"Will topic {will.topic!r}: {topic_problem.reason}",
                None,
                _V5_TOPIC_NAME_INVALID,
            )
            return False
        if len(will.payload) > PAYLOAD_MAX_BYTES:
            self._refuse_connect_with(
                Reason.PAYLOAD_LIMIT_EXCEEDED,
                "Message payload exceeds size limit for message type.",
                None,
                _V5_PACKET_TOO_LARGE,
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
            principal_identifier=self._channel.identity.certificate_id,
            session_identifier=str(uuid.uuid4()),
            ip_address=self._channel.facts().source_ip,
            version_number=self._hub.next_version_number(client_id),
        )
        self._hub.publish_event(*connected_event(self._lifecycle, _now_ms()))

    # -- authorization ---------------------------------------------------------------------

    def _authorize_connect(self, client_id: str, connect: Connect) -> bool:
        """``iot:Connect`` on the client ID, and ``iot:Publish`` on the will topic (AWS)."""
        authorizer = self._hub.authorizer
        if authorizer is None:
            return True
        identity = self._channel.identity
        permissions = authorizer.permissions_for(
            identity.certificate_der, identity.certificate_id, client_id, self._connect_attributes
        )
        self._permissions = permissions
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
        if self._level == 5:
            self._channel.write(encode(Connack(False, _V5_NOT_AUTHORIZED), 5))
        elif self._hub.connack_on_deny:
            self._channel.write(encode(Connack(False, _V3_NOT_AUTHORIZED), 4))
        if emits_lifecycle_events(client_id):
            failed = ConnectionIdentity(
                client_id=client_id,
                principal_identifier=identity.certificate_id,
                session_identifier=str(uuid.uuid4()),
                ip_address=self._channel.facts().source_ip,
                version_number=0,
            )
            self._hub.publish_event(*connect_failed_event(failed, _now_ms()))
        self._refuse_connect(Reason.AUTHORIZATION_FAILURE, details)
        return False

    def _authorize(self, action: str, kind: str, name: str) -> Decision | None:
        """None when allowed (or authorization is off), else the denying decision."""
        permissions = self._permissions
        if permissions is None:
            return None
        return _first_denial(permissions.check(action, kind, name))

    def _receive_check(self, permissions: ConnectionPermissions) -> Callable[[str], bool]:
        """``iot:Receive`` at each delivery, logged once per topic when denied."""

        def may_receive(topic: str) -> bool:
            decision = permissions.check(RECEIVE, "topic", topic)
            if not decision.allowed and topic not in self._receive_denied_logged:
                self._receive_denied_logged.add(topic)
                self._emit_failure(
                    EventType.PUBLISH_OUT,
                    Reason.AUTHORIZATION_FAILURE,
                    f"Authorization Failure: {decision.details}",
                    topic,
                )
            return decision.allowed

        return may_receive

    def refresh_permissions(self) -> None:
        """Re-read the certificate's status, policies and things after a registry change.

        AWS: "Within a few minutes of updating a certificate from the ACTIVE state to any other
        state, AWS IoT disconnects all devices that used that certificate" (UpdateCertificate);
        policy changes apply to the next action.
        """
        authorizer = self._hub.authorizer
        if authorizer is None or self._session is None or self._client_id is None:
            return
        identity = self._channel.identity
        permissions = authorizer.permissions_for(
            identity.certificate_der,
            identity.certificate_id,
            self._client_id,
            self._connect_attributes,
        )
        if permissions.status != "ACTIVE":
            self._close(
                _Closing(Reason.CERTIFICATE_STATUS_CHANGED.name, "AUTH_ERROR", _V5_NOT_AUTHORIZED),
                f"Certificate {identity.certificate_id} is now {permissions.status or 'deleted'}",
            )
            return
        self._permissions = permissions
        self._receive_denied_logged.clear()
        self._session.receive_check = self._receive_check(permissions)

    def _log_delivery(self, message: Message) -> None:
        self._channel.emit(
            event_success(EventType.PUBLISH_OUT, self._channel.facts(), topic_name=message.topic)
        )

    def _on_publish(self, publish: Publish) -> None:
        assert self._session is not None and self._client_id is not None
        properties = publish.properties
        topic = self._resolve_alias(publish)
        if topic is None:
            return
        if publish.qos > 1:
            # AWS: "When QoS level 2 is requested, the message broker doesn't send a PUBACK".
            self._emit_failure(
                EventType.PUBLISH_IN,
                Reason.QOS_NOT_SUPPORTED,
                "QoS 2 PUBLISH: not acknowledged and not delivered",
                topic,
            )
            return
        if len(publish.payload) > PAYLOAD_MAX_BYTES:
            self._close(
                _Closing(Reason.PAYLOAD_LIMIT_EXCEEDED.name, "CLIENT_ERROR", _V5_PACKET_TOO_LARGE),
                "Message payload exceeds size limit for message type.",
            )
            return
        verdict = self._topic_verdict(topic, publish.retain)
        if verdict is not None:
            reason, details = verdict
            if reason is Reason.TOPIC_INVALID:
                self._close(
                    _Closing(reason.name, "CLIENT_ERROR", _V5_TOPIC_NAME_INVALID),
                    f"Topic {topic!r}: {details}",
                )
            else:
                self._refuse_publish(publish, topic, reason, details, _V5_NOT_AUTHORIZED)
            return
        denial = self._authorize(PUBLISH, "topic", topic)
        if denial is None and publish.retain:
            # AWS: publishing with RETAIN needs iot:RetainPublish on top of iot:Publish.
            denial = self._authorize(RETAIN_PUBLISH, "topic", topic)
        if denial is not None:
            self._deny(publish.packet_id if publish.qos else None, topic, denial)
            return
        if properties.payload_format_indicator == 1 and not _is_utf8(publish.payload):
            self._refuse_publish(
                publish,
                topic,
                Reason.PAYLOAD_FORMAT_INVALID,
                "Payload Format Indicator says UTF-8 but the payload is not valid UTF-8",
                _V5_PAYLOAD_FORMAT_INVALID,
            )
            return
        message = _message(
            topic,
            publish.payload,
            qos=publish.qos,
            retain=publish.retain,
            properties=properties,
            sender=self._client_id,
        )
        self._core.publish(message)
        if publish.qos == 1 and publish.packet_id is not None:
            self.send(encode(Puback(publish.packet_id), self._level))
        if self._hub.log_successes:
            self._channel.emit(
                event_success(EventType.PUBLISH_IN, self._channel.facts(), topic_name=topic)
            )
        shadows = self._hub.shadows
        if shadows is not None and topic.startswith("$aws/things/"):
            shadows.handle_publish(topic, publish.payload, self._channel.facts())

    def _deny(self, packet_id: int | None, topic: str, denial: Decision) -> None:
        """A denied PUBLISH: MQTT 5 gets PUBACK 0x87; MQTT 3.1.1 is disconnected (AWS)."""
        details = f"Authorization Failure: {denial.details}"
        self._emit_failure(EventType.PUBLISH_IN, Reason.AUTHORIZATION_FAILURE, details, topic)
        if self._level == 5:
            if packet_id is not None:
                self.send(encode(Puback(packet_id, _V5_NOT_AUTHORIZED), 5))
            return
        self._close(_Closing(Reason.AUTHORIZATION_FAILURE.name, "AUTH_ERROR", None), details)

    def _resolve_alias(self, publish: Publish) -> str | None:
        """The PUBLISH's topic, with an MQTT 5 topic alias applied; None after a refusal."""
        topic = publish.topic
        alias = publish.properties.topic_alias
        if self._level != 5 or alias is None:
            return topic
        if not 1 <= alias <= TOPIC_ALIAS_MAX:
            self._close(
                _Closing(Reason.PROTOCOL_ERROR.name, "CLIENT_ERROR", _V5_TOPIC_ALIAS_INVALID),
                f"Topic alias {alias} is outside 1..{TOPIC_ALIAS_MAX}",
            )
            return None
        if topic:
            self._aliases[alias] = topic
            return topic
        if alias in self._aliases:
            return self._aliases[alias]
        self._protocol_error(f"Topic alias {alias} was never set")
        return None

    def _topic_verdict(self, topic: str, retain: bool) -> _TopicVerdict:
        """None if ``topic`` may be published to (with ``retain``), else the refusal."""
        key = (topic, retain)
        verdicts = self._topic_verdicts
        if key in verdicts:
            return verdicts[key]
        verdict: _TopicVerdict = None
        name_problem = validate_topic_name(topic)
        if name_problem is not None:
            verdict = (Reason.TOPIC_INVALID, name_problem.reason)
        else:
            reserved = reserved_topic_problem(topic, retain=retain)
            if reserved is not None:
                verdict = (Reason.RESERVED_TOPIC, reserved.reason)
        if len(verdicts) >= _TOPIC_VERDICT_CACHE:
            verdicts.clear()  # a device cycling through many topics: start over, stay bounded
        verdicts[key] = verdict
        return verdict

    def _refuse_publish(
        self, publish: Publish, topic: str, reason: Reason, details: str, v5_code: int
    ) -> None:
        """MQTT 5 can refuse one PUBLISH in its PUBACK; MQTT 3.1.1 can only disconnect."""
        if self._level == 5:
            self._emit_failure(EventType.PUBLISH_IN, reason, details, topic)
            if publish.qos == 1 and publish.packet_id is not None:
                self.send(encode(Puback(publish.packet_id, v5_code), 5))
            return
        self._close(_Closing(reason.name, "CLIENT_ERROR", None), f"Topic {topic!r}: {details}")

    def _on_subscribe(self, subscribe: Subscribe) -> None:  # noqa: PLR0912 (per-filter verdicts)
        assert self._session is not None
        if subscribe.properties.subscription_identifiers:
            self._close(
                _Closing(
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
        v5 = self._level == 5
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
            denial = self._authorize(SUBSCRIBE, "topicfilter", topic_filter)
            if denial is not None:
                details = f"Authorization Failure: {denial.details}"
                if not v5 and not self._hub.connack_on_deny:
                    # AWS: a denied SUBSCRIBE disconnects an MQTT 3.1.1 client.
                    self._emit_failure(
                        EventType.SUBSCRIBE, Reason.AUTHORIZATION_FAILURE, details, topic_filter
                    )
                    self._close(
                        _Closing(Reason.AUTHORIZATION_FAILURE.name, "AUTH_ERROR", None), details
                    )
                    return
                self._emit_failure(
                    EventType.SUBSCRIBE, Reason.AUTHORIZATION_FAILURE, details, topic_filter
                )
                codes.append(_V5_NOT_AUTHORIZED if v5 else _V3_SUBACK_FAILURE)
                continue
            valid.append((topic_filter, options))
            codes.append(None)
        result = self._core.subscribe(self._session, valid)
        for (topic_filter, _), code in zip(valid, result.reason_codes, strict=True):
            if code not in (0, 1):  # the core refuses only beyond AWS's 50 subscriptions
                self._emit_failure(
                    EventType.SUBSCRIBE,
                    Reason.SUBSCRIPTION_LIMIT_EXCEEDED,
                    "The connection already has 50 subscriptions",
                    topic_filter,
                )
        granted = iter(result.reason_codes)
        final = [code if code is not None else next(granted) for code in codes]
        self.send(encode(Suback(subscribe.packet_id, tuple(final)), self._level))
        granted_filters = [
            topic_filter
            for (topic_filter, _), code in zip(subscribe.subscriptions, final, strict=True)
            if code in (0, 1)
        ]
        if granted_filters:
            if self._hub.log_successes:
                facts = self._channel.facts()
                for topic_filter in granted_filters:
                    self._channel.emit(
                        event_success(EventType.SUBSCRIBE, facts, topic_name=topic_filter)
                    )
            if self._lifecycle is not None:
                self._hub.publish_event(
                    *subscription_event(
                        self._lifecycle, _now_ms(), granted_filters, subscribed=True
                    )
                )
        self._core.send_retained(self._session, result)

    def _on_unsubscribe(self, unsubscribe: Unsubscribe) -> None:
        assert self._session is not None
        codes = self._core.unsubscribe(self._session, unsubscribe.topic_filters)
        reason_codes = codes if self._level == 5 else ()
        self.send(encode(Unsuback(unsubscribe.packet_id, reason_codes), self._level))
        filters = list(unsubscribe.topic_filters)
        if self._hub.log_successes:
            facts = self._channel.facts()
            for topic_filter in filters:
                self._channel.emit(
                    event_success(EventType.UNSUBSCRIBE, facts, topic_name=topic_filter)
                )
        if self._lifecycle is not None:
            self._hub.publish_event(
                *subscription_event(self._lifecycle, _now_ms(), filters, subscribed=False)
            )

    def _on_disconnect(self, disconnect: Disconnect) -> None:
        assert self._session is not None
        expiry = disconnect.properties.session_expiry_interval
        if self._level == 5 and expiry is not None:
            if self._session.expiry_interval == 0 and expiry > 0:
                # MQTT 5 3.14.2.2.2: 0 at CONNECT cannot become non-zero at DISCONNECT.
                self._protocol_error("Session Expiry Interval changed from 0 at DISCONNECT")
                return
            self._core.set_expiry_interval(
                self._session, grant_session_expiry(expiry, self._hub.session_expiry_cap)
            )
        # AWS sends no will after a client DISCONNECT; MQTT 5 reason 0x04 asks for it.
        self._clean_disconnect = disconnect.reason_code != _DISCONNECT_WITH_WILL
        self._disconnect_reason = "CLIENT_INITIATED_DISCONNECT"
        self._closing = True
        self._channel.close("CLIENT_INITIATED_DISCONNECT", "The client sent DISCONNECT")

    # -- keep-alive ------------------------------------------------------------------------

    def _keep_alive_limit(self) -> float:
        # AWS "will disconnect a client whose keep-alive timer has reached 1.5x the specified
        # keep-alive interval".
        return self._keep_alive * 1.5 * self._hub.keep_alive_time_scale

    def _arm_keep_alive(self, delay: float) -> None:
        self._keep_alive_timer = self._loop.call_later(delay, self._check_keep_alive)

    def _check_keep_alive(self) -> None:
        # One timer per connection, re-armed lazily: packets only move _last_activity.
        self._keep_alive_timer = None
        limit = self._keep_alive_limit()
        idle = self._loop.time() - self._last_activity
        if idle >= limit:
            self._close(
                _Closing(
                    Reason.KEEP_ALIVE_TIMEOUT.name,
                    "MQTT_KEEP_ALIVE_TIMEOUT",
                    _V5_KEEP_ALIVE_TIMEOUT,
                ),
                f"No packet within 1.5 times the keep-alive of {self._keep_alive} s",
            )
        else:
            self._arm_keep_alive(limit - idle)

    # -- closing and logging ---------------------------------------------------------------

    def _protocol_error(self, details: str) -> None:
        self._close(
            _Closing(Reason.PROTOCOL_ERROR.name, "CLIENT_ERROR", _V5_PROTOCOL_ERROR), details
        )

    def _close(self, closing: _Closing, details: str, *, failure: bool = True) -> None:
        """Close from the server side: MQTT 5 DISCONNECT first, one log line, then TLS close."""
        if self._closing:
            return
        if self._level == 5 and closing.code is not None and self._client_id is not None:
            self.send(encode(Disconnect(closing.code), 5))
        self.flush()
        self._closing = True
        self._disconnect_reason = closing.disconnect_reason
        self._channel.close(
            closing.reason,
            details,
            failure=failure,
            disconnect_reason=closing.disconnect_reason,
        )

    def _refuse_connect(self, reason: Reason, details: str) -> None:
        facts = self._channel.facts()
        if self._client_id is not None:  # the door learns the client ID only on acceptance
            facts = dataclasses.replace(facts, client_id=self._client_id)
        self._channel.emit(connect_failure(reason, details, facts))
        self._closing = True
        self._channel.close()

    def _refuse_connect_with(
        self, reason: Reason, details: str, v3_code: int | None, v5_code: int
    ) -> None:
        """Refuse a CONNECT: CONNACK with the version's code (if it has one), log, close."""
        code = v5_code if self._level == 5 else v3_code
        if code is not None:
            self._channel.write(encode(Connack(False, code), self._level))
        self._refuse_connect(reason, details)

    def _emit_failure(self, event: EventType, reason: Reason, details: str, topic: str) -> None:
        facts = self._channel.facts()
        self._channel.emit(event_failure(event, reason, details, facts, topic_name=topic))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _first_denial(decision: Decision) -> Decision | None:
    return None if decision.allowed else decision


def _client_id_problem(client_id: str) -> str | None:
    if len(client_id.encode("utf-8")) > CLIENT_ID_MAX_BYTES:
        return f"The client ID is over {CLIENT_ID_MAX_BYTES} bytes"
    if client_id.startswith("$"):
        return "Client IDs starting with $ are reserved for AWS IoT"
    return None


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _message(
    topic: str,
    payload: bytes,
    *,
    qos: int,
    retain: bool,
    properties: Properties,
    sender: str,
) -> Message:
    """Build the routed ``Message``: forwardable properties only, expiry as a deadline."""
    now = time.time()
    if properties is EMPTY_PROPERTIES:  # every MQTT 3.1.1 publish: nothing to copy
        return Message(topic, payload, qos, retain, EMPTY_PROPERTIES, None, sender, now)
    expires_at = None
    if properties.message_expiry_interval is not None:
        expires_at = now + clamp_message_expiry(properties.message_expiry_interval)
    forwarded = Properties(
        payload_format_indicator=properties.payload_format_indicator,
        content_type=properties.content_type,
        response_topic=properties.response_topic,
        correlation_data=properties.correlation_data,
        user_properties=properties.user_properties,
    )
    return Message(
        topic=topic,
        payload=payload,
        qos=qos,
        retain=retain,
        properties=forwarded,
        expires_at=expires_at,
        sender=sender,
        published_at=now,
    )
