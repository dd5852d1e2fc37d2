"""The device core: what every door talks to, and the only thing doors talk to. Pure.

A door (MQTT over TLS on 8883, the 443 multiplexer, HTTPS, MQTT over WebSocket) authenticates a
principal and then uses this narrow interface:

- ``open_mqtt_connection(principal, facts, wake)``: an MQTT client over any byte stream; the door
  moves bytes between its transport and the returned ``MqttConnection``;
- ``publish(publisher, request)``: one publish that is not MQTT (HTTPS ``POST /topics``), through
  the same ingress as MQTT's;
- ``tick()``: once a second, from the shell's timer.

Built-in services (``register_service``) are in-process clients: they see the publishes on their
request topics after the ingress and answer through ``publish_as_service``. Nothing here opens a
socket, starts a task or reads the time except through the injected clocks, so the whole MQTT
behaviour can be driven in memory (``tests/mqtt_pair.py``), and a later step can run the doors in
other processes in front of one core (``docs/scale-out.md``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aws_iot_mock.aws.limits import (
    RETAINED_MESSAGES_MAX,
    SESSION_EXPIRY_DEFAULT_MAX,
    SUBSCRIPTIONS_PER_CONNECTION,
    USER_PROPERTIES_MAX_BYTES,
)
from aws_iot_mock.core.ingress import Publisher, PublishIngress, PublishRefusal, PublishRequest
from aws_iot_mock.core.mqtt_connection import MqttConnection
from aws_iot_mock.core.permissions import PermissionsProvider
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.core.routing import DEFAULT_SESSION_QUEUE_MAX, DropReason, Router, Session
from aws_iot_mock.core.services import BuiltInService, ServiceTable
from aws_iot_mock.core.session_store import SessionStore
from aws_iot_mock.errors import StorageError, StorageFault
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    EventType,
    Reason,
    SuccessLog,
    broker_record,
    event_failure,
    storage_reason,
    success_logger,
)
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.mqtt.topics import topic_matches

__all__ = ["DEFAULT_OUTBOUND_BUFFER_BYTES", "CoreSettings", "DeviceCore"]

# Bytes that may wait for one client before it counts as not reading: a QoS 0 message for it is
# then dropped, a QoS 1 one waits in its session's queue. AWS documents no such buffer; 1 MiB
# holds eight maximum-size (128 KiB) messages. ``limits.outbound_buffer_bytes`` in the config.
DEFAULT_OUTBOUND_BUFFER_BYTES = 1024 * 1024
# AWS resets a client ID's lifecycle versionNumber "to 0" after it has been disconnected for
# about an hour (life-cycle-events); the counters of long-gone clients are dropped then.
_VERSION_NUMBER_MEMORY = 3600.0
# ... and at most this many gone clients are remembered within that hour (the oldest go first):
# a client cycling through fresh client IDs must not grow the map without bound.
_VERSION_NUMBERS_MAX = 100_000

Emit = Callable[[Mapping[str, object]], None]


@dataclass(frozen=True)
class CoreSettings:
    """Settings of the device core (from the configuration).

    Attributes:
        account_id: the 12-digit account, for log records.
        connect_timeout: seconds after a door hands over a connection within which the MQTT
            CONNECT must arrive.
        keep_alive_time_scale: real seconds per keep-alive second (tests shrink it).
        session_expiry_cap: the longest session granted (AWS: 1 hour by default, 7 days max).
        connack_on_deny: answer a denied MQTT 3.1.1 CONNECT/SUBSCRIBE instead of closing.
        outbound_buffer_bytes: bytes that may wait for one client before it counts as not
            reading.
        session_queue_max: the most messages one session's queue holds.
        aws_quotas: enforce AWS's per-connection quotas (100 publishes/s, 512 KiB/s, 50
            subscriptions, 8 filters per SUBSCRIBE, 1 CONNECT/s per client ID).
        user_properties_max_bytes: the most bytes of MQTT 5 user properties per message.
        retained_messages_max: the most retained messages stored.
    """

    account_id: str
    connect_timeout: float = 10.0
    keep_alive_time_scale: float = 1.0
    session_expiry_cap: int = SESSION_EXPIRY_DEFAULT_MAX
    connack_on_deny: bool = False
    outbound_buffer_bytes: int = DEFAULT_OUTBOUND_BUFFER_BYTES
    session_queue_max: int = DEFAULT_SESSION_QUEUE_MAX
    aws_quotas: bool = True
    user_properties_max_bytes: int = USER_PROPERTIES_MAX_BYTES
    retained_messages_max: int = RETAINED_MESSAGES_MAX


class DeviceCore:
    """Sessions, routing, the ingress, built-in services and live MQTT connections.

    Args:
        store: where retained messages and persistent sessions are kept.
        settings: the core's settings.
        emit: writes an AWSIotLogsV2 record.
        log_success: writes the ``Success`` records of messages (``Publish-In``,
            ``Publish-Out``); by default ``event_success``'s record through ``emit``.
        permissions: builds each principal's permissions; None turns authorization off (only
            for tests of the MQTT layer alone).
        log_successes: whether INFO records are built (False below level INFO).
        clock: wall-clock epoch seconds.
        monotonic: the clock of deadlines (the door's timers use the same one).
        rng: chooses shared-subscription members.
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        settings: CoreSettings,
        emit: Emit,
        log_success: SuccessLog | None = None,
        permissions: PermissionsProvider | None,
        log_successes: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.emit = emit
        self.log_success = log_success or success_logger(emit)
        self.permissions = permissions
        self.clock = clock
        self.monotonic = monotonic
        self.router = Router(
            store,
            clock=clock,
            rng=rng,
            session_queue_max=settings.session_queue_max,
            subscriptions_max=SUBSCRIPTIONS_PER_CONNECTION if settings.aws_quotas else None,
            drop_report=self,
            storage_failed=self.storage_failed,
        )
        self.services = ServiceTable()
        self.ingress = PublishIngress(
            self.router,
            self.services,
            emit=emit,
            log_success=self.log_success,
            log_successes=log_successes,
            clock=clock,
            user_properties_max_bytes=settings.user_properties_max_bytes,
            retained_messages_max=settings.retained_messages_max,
        )
        self.connections: set[MqttConnection] = set()
        # Called after tick() noticed a registry change (the TLS door re-reads registered CAs).
        self.registry_listeners: list[Callable[[], None]] = []
        # AWS: versionNumber is "monotonically increasing ... for each client ID connection".
        # client ID -> (last number, when its last connection ended or None while connected,
        # why it ended); GetConnection reads the last two for a client that is gone.
        self._version_numbers: dict[str, tuple[int, float | None, str | None]] = {}
        # client ID -> when (monotonic) its last CONNECT was let through (1 per second, AWS).
        self._last_connects: dict[str, float] = {}

    # -- the door interface ----------------------------------------------------------------

    def open_mqtt_connection(
        self,
        principal: Principal,
        facts: ConnectionFacts,
        *,
        wake: Callable[[], None],
        transport_details: str | None = None,
        door: str | None = None,
    ) -> MqttConnection:
        """A new MQTT connection for an authenticated ``principal`` (CONNECT still to come).

        ``transport_details`` (the TLS handshake, the WebSocket upgrade) go in the ``details``
        of the connection's one ``Connect`` log line; ``door`` names the listener.
        """
        return MqttConnection(
            self, principal, facts, wake=wake, transport_details=transport_details, door=door
        )

    def publish(self, publisher: Publisher, request: PublishRequest) -> PublishRefusal | None:
        """One publish through the ingress (see ``PublishIngress.publish``).

        When it returns None the message is routed and stored, and its service has answered.
        """
        return self.ingress.publish(publisher, request)

    def tick(self) -> None:
        """Once a second: due wills, expired sessions, forgotten clients, registry changes."""
        self.router.tick()
        self._forget_version_numbers()
        cutoff = self.monotonic() - 1.0
        self._last_connects = {c: t for c, t in self._last_connects.items() if t > cutoff}
        if self.permissions is not None and self.permissions.changed():
            # The registry was written (CLI, API, another process): re-read every live
            # connection's status and policies.
            for connection in list(self.connections):
                connection.refresh_permissions()
            for listener in self.registry_listeners:
                listener()

    def connection_for(self, client_id: str) -> MqttConnection | None:
        """The live MQTT connection of ``client_id``, if it is connected."""
        session = self.router.sessions.get(client_id)
        outlet = session.outlet if session is not None else None
        return outlet if isinstance(outlet, MqttConnection) else None

    def delete_connection(self, client_id: str, *, clean_session: bool, prevent_will: bool) -> bool:
        """The DeleteConnection API: disconnect ``client_id``; False if it is not connected.

        AWS closes it with ``API_INITIATED_DISCONNECT`` (MQTT 5: DISCONNECT 0x98), sends its
        will unless ``prevent_will``, and ends its persistent session with ``clean_session``
        (https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_DeleteConnection.html).
        """
        connection = self.connection_for(client_id)
        if connection is None:
            return False
        connection.delete_by_api(clean_session=clean_session, prevent_will=prevent_will)
        return True

    def shutdown(self) -> None:
        """Say goodbye to every MQTT connection (MQTT 5: DISCONNECT 0x8B)."""
        for connection in list(self.connections):
            connection.shutdown()

    # -- built-in services -----------------------------------------------------------------

    def register_service(self, service: BuiltInService) -> None:
        """Give ``service`` the publishes on its request topics."""
        self.services.register(service)
        self.ingress.forget_verdicts()

    def publish_as_service(self, topic: str, payload: bytes) -> None:
        """Route a broker-made message (service answers, lifecycle events) at QoS 1.

        When it cannot be stored for a persistent session, it is not sent and a
        ``STORAGE_*`` record says so (nobody is waiting for an acknowledgement).
        """
        message = Message(topic, payload, qos=1, sender=None, published_at=self.clock())
        try:
            self.router.publish(message)
        except StorageError as error:
            self.storage_failed(error, f"the broker's message on {topic!r} (not sent)")

    def storage_failed(self, error: StorageError, what: str) -> None:
        """Log a failed write of broker state (``STORAGE_BUSY``, ``_FULL``, ``_FAILED``)."""
        advice = {
            StorageFault.BUSY: "another process holds the database's write lock (a backup, "
            "the sqlite3 shell)",
            StorageFault.FULL: "the state directory's file system is full",
            StorageFault.FAILED: "the database could not be written",
        }[error.fault]
        self.emit(
            broker_record(
                self.settings.account_id,
                storage_reason(error.fault),
                f"{error}: {what} was not written: {advice}",
            )
        )

    # Lifecycle events are broker-made messages too.
    publish_event = publish_as_service

    def reply_as_service(
        self, client_id: str, topic: str, payload: bytes, *, subscribed_only: bool = False
    ) -> bool | None:
        """Send a service's answer to the one client that asked, not to other subscribers.

        Jobs: "the message broker will publish response message topics to the client that
        published the command message, whether your client has subscribed to the response
        message topics or not. These response messages do not pass through the message broker
        and they cannot be subscribed to by other clients or rules"
        (https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html). So the
        answer reaches no other subscriber and no observer (rules), and ``iot:Receive`` on its
        topic is still checked. It goes at QoS 1, or at the highest QoS the client was granted on
        a filter that matches it (MQTT 5 3.8.4: never above the subscription's).

        Args:
            client_id: the requesting client.
            topic: the answer's topic.
            payload: the answer.
            subscribed_only: deliver only if the client holds a matching subscription (fleet
                provisioning: "If you do not subscribe to the response topics before you publish
                a request, you might not receive the results", fleet-provision-api.html).

        Returns:
            True when sent or queued, False when ``iot:Receive`` refused it or the client holds
            no matching subscription (``subscribed_only``), None when the client is not
            connected.
        """
        session = self.router.sessions.get(client_id)
        if session is None or session.outlet is None:
            return None
        granted = [
            options.qos
            for topic_filter, options in session.subscriptions.items()
            if topic_matches(topic_filter, topic)
        ]
        if subscribed_only and not granted:
            return False
        qos = min(1, max(granted)) if granted else 1
        message = Message(topic, payload, qos=qos, sender=None, published_at=self.clock())
        return self.router.deliver_direct(client_id, message)

    # -- called by MQTT connections --------------------------------------------------------

    def connection_opened(self, connection: MqttConnection) -> None:
        """A CONNECT was accepted."""
        self.connections.add(connection)

    def connection_closed(self, connection: MqttConnection) -> None:
        """The connection's transport is gone."""
        self.connections.discard(connection)

    def connect_allowed(self, client_id: str) -> bool:
        """AWS's 1 CONNECT per second per client ID (always True with the quotas lifted)."""
        if not self.settings.aws_quotas:
            return True
        now = self.monotonic()
        last = self._last_connects.get(client_id)
        if last is not None and now - last < 1.0:
            return False
        self._last_connects[client_id] = now
        return True

    def now_ms(self) -> int:
        """Wall-clock epoch milliseconds (lifecycle event timestamps)."""
        return int(self.clock() * 1000)

    def next_version_number(self, client_id: str) -> int:
        """The lifecycle ``versionNumber`` for a new connection of ``client_id``."""
        numbers = self._version_numbers
        previous = numbers.get(client_id)
        number = 0 if previous is None else previous[0] + 1
        numbers[client_id] = (number, None, None)
        if len(numbers) > _VERSION_NUMBERS_MAX:
            # Gone clients sit in the order they left (note_disconnect moves them to the end).
            for gone in [c for c, entry in numbers.items() if entry[1] is not None][
                : len(numbers) - _VERSION_NUMBERS_MAX
            ]:
                del numbers[gone]
        return number

    def note_disconnect(self, client_id: str, reason: str) -> None:
        """``client_id``'s connection ended (its version number is kept for an hour)."""
        entry = self._version_numbers.pop(client_id, None)
        if entry is not None:
            self._version_numbers[client_id] = (entry[0], self.clock(), reason)

    def last_disconnect(self, client_id: str) -> tuple[float, str] | None:
        """When and why ``client_id``'s last connection ended, if within the last hour."""
        entry = self._version_numbers.get(client_id)
        if entry is None or entry[1] is None or entry[2] is None:
            return None
        return entry[1], entry[2]

    def _forget_version_numbers(self) -> None:
        cutoff = self.clock() - _VERSION_NUMBER_MEMORY
        stale = [
            client_id
            for client_id, (_, ended, _reason) in self._version_numbers.items()
            if ended is not None and ended < cutoff
        ]
        for client_id in stale:
            del self._version_numbers[client_id]

    # -- DropReport (called by the router) -------------------------------------------------

    def drops_started(self, session: Session, reason: DropReason) -> None:
        """Log the start of a drop episode (one line, not one per message)."""
        if reason is DropReason.CLIENT_NOT_READING:
            details = (
                "The client is not reading: its outbound buffer is full; QoS 0 messages to it "
                "are dropped (QoS 1 ones wait) until it reads again"
            )
        else:
            details = (
                f"The session's queue holds {self.settings.session_queue_max} messages; "
                "messages to it are dropped until it has room"
            )
        self._log_drops(session, reason, details)

    def drops_ended(self, session: Session, reason: DropReason, count: int) -> None:
        """Log the end of a drop episode with its count."""
        self._log_drops(session, reason, f"{count} message(s) to this client were dropped")

    def _log_drops(self, session: Session, reason: DropReason, details: str) -> None:
        outlet = session.outlet
        if isinstance(outlet, MqttConnection):
            facts = outlet.facts
        else:
            facts = ConnectionFacts(
                self.settings.account_id, source_ip="", source_port=0, client_id=session.client_id
            )
        self.emit(event_failure(EventType.PUBLISH_OUT, Reason[reason.value], details, facts))
