"""AWS IoT Core's CONNECT and connection-lifetime semantics, over raw MQTT on real TLS sockets.

Every test drives MQTT by hand (``RawClient``: the broker's own codec builds what the client
sends and parses what the broker answers), so each byte on the wire is the test's choice. Each
AWS rule has its compliant twin: the refusal, and the one change that makes it pass.

Nothing sleeps. "Nothing else arrived" is proven with a PINGREQ barrier (the broker answers
packets in order, so whatever it sent before the PINGRESP was sent before the PINGREQ was
handled) or with a sentinel message published afterwards that must arrive first. Keep-alive
tests shrink time with ``Broker(config, keep_alive_time_scale=0.01)``: AWS's 30 s minimum
keep-alive (a 45 s timeout) becomes 0.45 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import TypeVar, cast

import pytest

from aws_iot_mock.config import Config
from aws_iot_mock.core.routing import Router
from aws_iot_mock.mqtt.codec import (
    EMPTY_PROPERTIES,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketReader,
    Pingreq,
    Pingresp,
    Properties,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Will,
    encode,
)
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.server.app import Broker
from tests.conftest import ENDPOINT, Device, RunningBroker, client_context
from tests.memory_link import open_memory_connection

# Generous bound for anything that should take milliseconds on loopback.
TIMEOUT = 5.0
P = TypeVar("P")

V311 = pytest.param(4, id="mqtt311")
V5 = pytest.param(5, id="mqtt5")
LEVELS = [V311, V5]

# What AWS IoT Core advertises in every MQTT 5 CONNACK (besides Server Keep Alive).
AWS_CONNACK_PROPERTIES = Properties(
    receive_maximum=100,
    maximum_qos=1,
    retain_available=1,
    maximum_packet_size=131072,
    topic_alias_maximum=8,
    wildcard_subscription_available=1,
    subscription_identifier_available=0,
    shared_subscription_available=1,
)

DUPLICATE_DETAILS = "A new connection was established with the same client ID"


# -- a raw MQTT client ------------------------------------------------------------------------


class RawClient:
    """One TLS connection speaking MQTT packet by packet.

    ``level`` is the protocol level used to encode what is sent and to parse what arrives.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, level: int):
        self._reader = reader
        self._writer = writer
        self.level = level
        self._packets = PacketReader(protocol_level=level)
        self._next_id = 0
        # The client's TCP port: the ``sourcePort`` of the broker's records about it.
        self.local_port = int(writer.get_extra_info("sockname")[1])

    @classmethod
    async def open(
        cls, running: RunningBroker, device: Device, level: int, transport: str = "tls"
    ) -> RawClient:
        """Handshake with the device's certificate and SNI = the endpoint (or link in memory)."""
        if transport == "memory":
            inbound, link = await open_memory_connection(
                running.broker, device.cert_path.read_bytes()
            )
            return cls(inbound, cast(asyncio.StreamWriter, link), level)
        ctx = client_context(running.root_ca_path, device)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", running.port, ssl=ctx, server_hostname=ENDPOINT),
            TIMEOUT,
        )
        return cls(reader, writer, level)

    def send(self, packet: Packet) -> None:
        self._writer.write(encode(packet, self.level))

    def send_bytes(self, data: bytes) -> None:
        self._writer.write(data)

    def packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    async def _read(self) -> bytes:
        try:
            return await self._reader.read(65536)
        except (ConnectionError, ssl.SSLError):
            return b""

    async def recv_packet(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet from the broker; EOFError if it closed, TimeoutError if none came."""
        async with asyncio.timeout(timeout):
            while True:
                packet = self._packets.next_packet()
                if packet is not None:
                    return packet
                data = await self._read()
                if not data:
                    raise EOFError("the broker closed the connection")
                self._packets.feed(data)

    async def expect(self, kind: type[P], timeout: float = TIMEOUT) -> P:
        packet = await self.recv_packet(timeout)
        assert isinstance(packet, kind), f"expected {kind.__name__}, got {packet!r}"
        return packet

    async def expect_eof(self, timeout: float = TIMEOUT) -> None:
        """The broker closes the connection without sending any further packet."""
        async with asyncio.timeout(timeout):
            while True:
                packet = self._packets.next_packet()
                assert packet is None, f"expected EOF, got {packet!r}"
                data = await self._read()
                if not data:
                    assert self._packets.buffered == 0, "EOF inside a packet"
                    return
                self._packets.feed(data)

    async def expect_silence(self, duration: float) -> None:
        """Nothing arrives (and the connection stays open) for ``duration`` seconds."""
        try:
            packet = await self.recv_packet(duration)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {packet!r}")

    async def ping(self) -> list[Packet]:
        """PINGREQ, then return every packet that arrived before the PINGRESP."""
        self.send(Pingreq())
        before: list[Packet] = []
        while not isinstance(packet := await self.recv_packet(), Pingresp):
            before.append(packet)
        return before

    async def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        packet_id = self.packet_id()
        self.send(Subscribe(packet_id, ((topic_filter, SubscriptionOptions(qos=qos)),)))
        assert await self.expect(Suback) == Suback(packet_id, (qos,))

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish; for QoS 1 wait for the PUBACK, so the broker has routed the message."""
        packet_id = self.packet_id() if qos else None
        self.send(Publish(topic, payload, qos=qos, packet_id=packet_id))
        if packet_id is not None:
            assert await self.expect(Puback) == Puback(packet_id)

    def drop(self) -> None:
        """Close the TCP connection without DISCONNECT or close_notify."""
        self._writer.transport.abort()

    async def close(self) -> None:
        self._writer.transport.abort()
        with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), TIMEOUT)


class Mqtt:
    """Raw clients against one broker, all closed at teardown; one device certificate.

    ``transport`` is ``memory`` (the broker's device core, no TLS) or ``tls`` (a real socket).
    """

    def __init__(self, running: RunningBroker, transport: str = "tls") -> None:
        self.running = running
        self.transport = transport
        self._device: Device | None = None
        self._clients: list[RawClient] = []

    @property
    def device(self) -> Device:
        if self._device is None:
            self._device = self.running.create_device()
        return self._device

    async def open(self, level: int = 5, device: Device | None = None) -> RawClient:
        client = await RawClient.open(self.running, device or self.device, level, self.transport)
        self._clients.append(client)
        return client

    async def connect(
        self,
        client_id: str,
        level: int = 5,
        *,
        clean: bool = True,
        keep_alive: int = 60,
        will: Will | None = None,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> tuple[RawClient, Connack]:
        """Send a CONNECT and return the client with the CONNACK it got."""
        client = await self.open(level)
        client.send(
            Connect("MQTT", level, client_id, clean, keep_alive, will, None, None, properties)
        )
        return client, await client.expect(Connack)

    async def connected(
        self,
        client_id: str,
        level: int = 5,
        *,
        clean: bool = True,
        keep_alive: int = 60,
        will: Will | None = None,
        properties: Properties = EMPTY_PROPERTIES,
    ) -> RawClient:
        """Connect and insist on CONNACK 0."""
        client, connack = await self.connect(
            client_id,
            level,
            clean=clean,
            keep_alive=keep_alive,
            will=will,
            properties=properties,
        )
        assert connack.reason_code == 0, connack
        return client

    async def watcher(self, topic_filter: str, client_id: str = "watcher") -> RawClient:
        """An MQTT 3.1.1 client subscribed to ``topic_filter`` at QoS 1.

        Its keep-alive is AWS's longest (1200 s), so that under ``fast_mqtt``'s shrunk seconds
        it outlives the client a test times out, however busy the machine is.
        """
        client = await self.connected(client_id, 4, keep_alive=1200)
        await client.subscribe(topic_filter)
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()


async def start(config: Config, keep_alive_time_scale: float = 1.0) -> RunningBroker:
    broker = Broker(config, keep_alive_time_scale=keep_alive_time_scale)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    return running


@pytest.fixture
async def mqtt(running_broker: RunningBroker, transport: str) -> AsyncIterator[Mqtt]:
    net = Mqtt(running_broker, transport)
    try:
        yield net
    finally:
        await net.aclose()


@pytest.fixture
async def fast_mqtt(config: Config, transport: str) -> AsyncIterator[Mqtt]:
    """A broker whose keep-alive second lasts 10 ms (the 45 s AWS timeout becomes 0.45 s)."""
    running = await start(config, keep_alive_time_scale=0.01)
    net = Mqtt(running, transport)
    try:
        yield net
    finally:
        await net.aclose()
        await running.broker.stop()


def matching(**fields: object) -> Callable[[Mapping[str, object]], bool]:
    return lambda record: all(record.get(key) == value for key, value in fields.items())


async def logged(running: RunningBroker, **fields: object) -> dict[str, object]:
    """Wait for the record carrying ``fields`` and check it is the only one."""
    record = await running.wait_for_record(matching(**fields), timeout=TIMEOUT)
    assert [r for r in running.records if matching(**fields)(r)] == [record]
    return record


async def nth_record(running: RunningBroker, nth: int, **fields: object) -> dict[str, object]:
    """Wait for the ``nth`` record carrying ``fields``, and check there is no ``nth + 1``-th."""
    is_it = matching(**fields)
    await running.wait_for_record(
        lambda r: is_it(r) and sum(map(is_it, running.records)) >= nth, TIMEOUT
    )
    records = [r for r in running.records if is_it(r)]
    assert len(records) == nth
    return records[-1]


async def connect_refused(
    running: RunningBroker, reason: str, client: RawClient, nth: int = 1
) -> dict[str, object]:
    """The connection is closed and the ``nth`` Connect/Failure record names ``reason``."""
    await client.expect_eof()
    record = await nth_record(running, nth, reason=reason)
    assert record["eventType"] == "Connect"
    assert record["status"] == "Failure"
    assert record["logLevel"] == "ERROR"
    assert not [
        r
        for r in running.records
        if r["eventType"] == "Connect" and r["status"] == "Success" and "clientId" in r
    ]
    return record


def without_id(packet: Publish) -> Publish:
    """The PUBLISH as the subscriber sees it, minus the broker-chosen packet identifier."""
    return replace(packet, packet_id=None)


# -- protocol version ---------------------------------------------------------------------


async def test_mqtt31_gets_connack_unacceptable_protocol(mqtt: Mqtt) -> None:
    # MQTT 3.1 proper ("MQIsdp", level 3), and level 3 under the 3.1.1 protocol name.
    for nth, name in enumerate(["MQIsdp", "MQTT"], start=1):
        client = await mqtt.open(4)
        client.send_bytes(encode(Connect(name, 3, "dev-1", True, 60), 3))
        assert await client.expect(Connack) == Connack(False, 0x01)
        record = await connect_refused(mqtt.running, "UNSUPPORTED_PROTOCOL_VERSION", client, nth)
        assert record["principalId"] == mqtt.device.certificate_id


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.socket_twin
async def test_mqtt311_and_5_are_accepted(mqtt: Mqtt, level: int) -> None:
    _, connack = await mqtt.connect("dev-1", level)
    assert (connack.session_present, connack.reason_code) == (False, 0)
    record = await logged(mqtt.running, eventType="Connect", clientId="dev-1")
    assert record["status"] == "Success"
    assert mqtt.running.failures() == []


# -- one CONNECT, and CONNECT first ---------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
async def test_second_connect_is_a_protocol_error(mqtt: Mqtt, level: int) -> None:
    client = await mqtt.connected("dev-1", level)
    assert await client.ping() == []  # the twin: the first CONNECT was fine
    client.send(Connect("MQTT", level, "dev-1", True, 60))
    if level == 5:
        assert await client.expect(Disconnect) == Disconnect(0x82)
    await client.expect_eof()
    record = await logged(mqtt.running, eventType="Disconnect", clientId="dev-1")
    assert record["reason"] == "PROTOCOL_ERROR"
    assert record["disconnectReason"] == "CLIENT_ERROR"
    assert record["status"] == "Failure"


async def test_packet_before_connect_closes_the_connection(mqtt: Mqtt) -> None:
    firsts = [
        encode(Pingreq(), 4),
        encode(Publish("a/b", b"x"), 4),
        encode(Publish("a/b", b"x", qos=1, packet_id=1), 5),
    ]
    for nth, first in enumerate(firsts, start=1):
        client = await mqtt.open(4)
        client.send_bytes(first)
        await client.expect_eof()
        record = await nth_record(mqtt.running, nth, reason="PROTOCOL_ERROR")
        assert record["status"] == "Failure"
        assert "CONNECT" in str(record["details"])
    assert not [r for r in mqtt.running.records if "clientId" in r]


# -- wills at CONNECT -------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
async def test_will_qos2_is_refused_and_qos1_accepted(mqtt: Mqtt, level: int) -> None:
    will = Will("wills/dev", b"gone", 2, False)
    if level == 5:
        client, connack = await mqtt.connect("dev-1", 5, will=will)
        assert connack == Connack(False, 0x9B)
    else:
        # MQTT 3.1.1 has no CONNACK code for it: the connection is just closed.
        client = await mqtt.open(4)
        client.send(Connect("MQTT", 4, "dev-1", True, 60, will))
    await connect_refused(mqtt.running, "WILL_QOS_NOT_SUPPORTED", client)
    # The twin: the same will at QoS 1.
    _, connack = await mqtt.connect("dev-1", level, will=replace(will, qos=1))
    assert connack.reason_code == 0
    await logged(mqtt.running, eventType="Connect", status="Success", clientId="dev-1")


# -- client ID --------------------------------------------------------------------------------


# AWS: "Client ID size: 128 bytes of UTF-8 encoded characters"; "$" IDs are AWS's own.
VALID_CLIENT_IDS = ["a" * 128, "\u00e9" * 64, "foo$"]
INVALID_CLIENT_IDS = ["a" * 129, "\u00e9" * 64 + "a", "$foo"]


async def test_client_ids_of_up_to_128_bytes_are_accepted(mqtt: Mqtt) -> None:
    for level in (4, 5):
        for client_id in VALID_CLIENT_IDS:
            _, connack = await mqtt.connect(client_id, level)
            assert connack.reason_code == 0, (level, client_id)
    for client_id in VALID_CLIENT_IDS:
        connects = matching(eventType="Connect", clientId=client_id, status="Success")
        assert len([r for r in mqtt.running.records if connects(r)]) == 2
    # (The MQTT 5 connection takes over the MQTT 3.1.1 one with the same ID: a Disconnect.)
    assert not [r for r in mqtt.running.failures() if r["eventType"] == "Connect"]


@pytest.mark.parametrize(
    ("level", "code"), [pytest.param(4, 0x02, id="mqtt311"), pytest.param(5, 0x85, id="mqtt5")]
)
async def test_invalid_client_ids_are_refused(mqtt: Mqtt, level: int, code: int) -> None:
    for nth, client_id in enumerate(INVALID_CLIENT_IDS, start=1):
        client, connack = await mqtt.connect(client_id, level)
        assert connack == Connack(False, code), client_id
        await connect_refused(mqtt.running, "CLIENT_ID_INVALID", client, nth)


async def test_mqtt5_empty_client_id_is_assigned_one(mqtt: Mqtt) -> None:
    client, connack = await mqtt.connect("", 5)
    assert connack.reason_code == 0
    assigned = connack.properties.assigned_client_identifier
    assert assigned
    assert len(assigned.encode()) <= 128
    assert not assigned.startswith("$")
    await logged(mqtt.running, eventType="Connect", clientId=assigned)
    assert await client.ping() == []
    # The twin: a client that names itself is assigned nothing.
    _, connack = await mqtt.connect("dev-1", 5)
    assert connack.reason_code == 0
    assert connack.properties.assigned_client_identifier is None


async def test_mqtt311_empty_client_id_is_refused(mqtt: Mqtt) -> None:
    # MQTT 3.1.1 lets a server assign an ID when clean_session=1; AWS does not document it for
    # 3.1.1, and this broker refuses (identifier rejected), the documented choice.
    client, connack = await mqtt.connect("", 4, clean=True)
    assert connack == Connack(False, 0x02)
    await connect_refused(mqtt.running, "CLIENT_ID_INVALID", client)


# -- MQTT 5 CONNACK properties and keep-alive ------------------------------------------------


async def test_mqtt5_connack_advertises_aws_limits(mqtt: Mqtt) -> None:
    _, connack = await mqtt.connect("dev-1", 5, keep_alive=60)
    assert connack == Connack(False, 0, replace(AWS_CONNACK_PROPERTIES, server_keep_alive=60))


# AWS: keep-alive "between 30 - 1200 seconds"; 0 and values above 1200 get the default 1200.
KEEP_ALIVE_CLAMPS = [
    (0, 1200),
    (1, 30),
    (29, 30),
    (30, 30),
    (600, 600),
    (1200, 1200),
    (1201, 1200),
    (65535, 1200),
]


async def test_keep_alive_is_clamped_to_aws_range(mqtt: Mqtt) -> None:
    applied = []
    for requested, _ in KEEP_ALIVE_CLAMPS:
        _, connack = await mqtt.connect(f"dev-{requested}", 5, keep_alive=requested)
        assert connack.reason_code == 0
        applied.append((requested, connack.properties.server_keep_alive))
    assert applied == KEEP_ALIVE_CLAMPS


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.socket_twin
async def test_keep_alive_timeout_closes_and_sends_the_will(fast_mqtt: Mqtt, level: int) -> None:
    loop = asyncio.get_running_loop()
    watcher = await fast_mqtt.watcher("wills/#")
    will = Will("wills/dev", b"timed out", 1, False)
    client = await fast_mqtt.connected("dev", level, keep_alive=30, will=will)
    started = loop.time()
    if level == 5:
        assert await client.expect(Disconnect) == Disconnect(0x8D)
    await client.expect_eof()
    # 1.5 x 30 s = 45 s, at 10 ms per second: 0.45 s after the CONNECT.
    assert loop.time() - started > 0.3
    record = await logged(fast_mqtt.running, eventType="Disconnect", clientId="dev")
    assert record["reason"] == "KEEP_ALIVE_TIMEOUT"
    assert record["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
    assert record["status"] == "Failure"
    delivered = await watcher.expect(Publish)
    assert without_id(delivered) == Publish("wills/dev", b"timed out", qos=1)


async def test_pings_keep_the_connection_alive(fast_mqtt: Mqtt) -> None:
    loop = asyncio.get_running_loop()
    client = await fast_mqtt.connected("dev", 5, keep_alive=30)
    started = loop.time()
    for _ in range(6):  # 6 x 0.2 s = 1.2 s, well past the 0.45 s timeout
        await client.expect_silence(0.2)
        assert await client.ping() == []
    assert loop.time() - started > 1.0
    assert not [r for r in fast_mqtt.running.records if r["eventType"] == "Disconnect"]


# -- client-ID takeover -------------------------------------------------------------------


@pytest.mark.socket_twin
async def test_same_client_id_takes_over_the_old_connection(mqtt: Mqtt) -> None:
    watcher = await mqtt.watcher("wills/#")
    old = await mqtt.connected("dev", 5, will=Will("wills/dev", b"A gone", 1, False))
    new, connack = await mqtt.connect("dev", 5)
    assert connack == Connack(False, 0, connack.properties)
    assert await old.expect(Disconnect) == Disconnect(0x8E)
    await old.expect_eof()
    delivered = await watcher.expect(Publish)
    assert without_id(delivered) == Publish("wills/dev", b"A gone", qos=1)
    record = await logged(mqtt.running, eventType="Disconnect", clientId="dev")
    assert record["reason"] == "DUPLICATE_CLIENT_ID"
    assert record["disconnectReason"] == "DUPLICATE_CLIENTID"
    assert record["details"] == DUPLICATE_DETAILS
    assert record["status"] == "Failure"
    assert record["sourcePort"] == old.local_port  # logged for the old connection
    assert await new.ping() == []


async def test_mqtt311_old_connection_is_closed_on_takeover(mqtt: Mqtt) -> None:
    old = await mqtt.connected("dev", 4)
    new = await mqtt.connected("dev", 4)
    await old.expect_eof()
    assert await new.ping() == []


async def test_different_client_id_does_not_disturb(mqtt: Mqtt) -> None:
    watcher = await mqtt.watcher("wills/#")
    first = await mqtt.connected("dev", 5, will=Will("wills/dev", b"A gone", 1, False))
    second = await mqtt.connected("dev-2", 5)
    assert await first.ping() == []
    assert await second.ping() == []
    assert await watcher.ping() == []
    assert not [r for r in mqtt.running.records if r["eventType"] == "Disconnect"]


@pytest.mark.tls_only
async def test_refused_connect_does_not_take_over(mqtt: Mqtt) -> None:
    """AWS disconnects the old connection only once the new one is authenticated and valid."""
    watcher = await mqtt.watcher("wills/#")
    first = await mqtt.connected("dev", 5, will=Will("wills/dev", b"A gone", 1, False))

    inactive = mqtt.running.create_device(CertificateStatus.INACTIVE, name="inactive")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        intruder = await mqtt.open(5, inactive)
        intruder.send(Connect("MQTT", 5, "dev", True, 60))
        await intruder.recv_packet()
    await logged(mqtt.running, reason="CERTIFICATE_NOT_ACTIVE")
    assert await first.ping() == []

    for topic, qos, code in [("wills/x", 2, 0x9B), ("wills/#", 1, 0x90)]:
        intruder, connack = await mqtt.connect("dev", 5, will=Will(topic, b"B gone", qos, False))
        assert connack == Connack(False, code)
        await intruder.expect_eof()
        assert await first.ping() == []

    assert await watcher.ping() == []
    assert not [r for r in mqtt.running.records if r["eventType"] == "Disconnect"]


# -- persistent sessions ------------------------------------------------------------------


async def test_mqtt311_persistent_session_keeps_only_qos1(mqtt: Mqtt) -> None:
    publisher = await mqtt.connected("publisher", 4)
    subscriber, connack = await mqtt.connect("sub", 4, clean=False)
    assert connack == Connack(False, 0)
    await subscriber.subscribe("persist/t")
    subscriber.send(Disconnect())
    await subscriber.expect_eof()

    await publisher.publish("persist/t", b"qos0", qos=0)
    await publisher.publish("persist/t", b"qos1", qos=1)

    subscriber, connack = await mqtt.connect("sub", 4, clean=False)
    assert connack == Connack(True, 0)
    delivered = await subscriber.expect(Publish)
    assert without_id(delivered) == Publish("persist/t", b"qos1", qos=1, retain=False, dup=False)
    assert delivered.packet_id is not None
    subscriber.send(Puback(delivered.packet_id))
    assert await subscriber.ping() == []  # the QoS 0 message was not kept
    subscriber.send(Disconnect())
    await subscriber.expect_eof()

    # clean_session=1 discards the session, its queue and its subscriptions.
    await publisher.publish("persist/t", b"queued", qos=1)
    subscriber, connack = await mqtt.connect("sub", 4, clean=True)
    assert connack == Connack(False, 0)
    await publisher.publish("persist/t", b"live", qos=1)
    assert await subscriber.ping() == []


# (requested, CONNACK's Session Expiry Interval): MQTT 5 3.2.2.3.2, the server sends the
# property only when it grants something other than what was asked; AWS's default cap is 1 h.
SESSION_EXPIRY_GRANTS = [(7200, 3600), (3601, 3600), (3600, None), (60, None), (0, None)]


async def test_mqtt5_session_expiry_is_capped_at_one_hour(mqtt: Mqtt) -> None:
    granted = []
    for requested, _ in SESSION_EXPIRY_GRANTS:
        properties = Properties(session_expiry_interval=requested)
        _, connack = await mqtt.connect(f"dev-{requested}", 5, properties=properties)
        assert connack.reason_code == 0
        granted.append((requested, connack.properties.session_expiry_interval))
    assert granted == SESSION_EXPIRY_GRANTS


@pytest.mark.parametrize(("expiry", "present"), [(0, False), (60, True)])
@pytest.mark.socket_twin
async def test_mqtt5_session_survives_only_with_expiry(
    mqtt: Mqtt, expiry: int, present: bool
) -> None:
    properties = Properties(session_expiry_interval=expiry)
    client = await mqtt.connected("dev", 5, clean=False, properties=properties)
    await client.subscribe("persist/t")
    client.send(Disconnect())
    await client.expect_eof()
    client, connack = await mqtt.connect("dev", 5, clean=False, properties=properties)
    assert (connack.reason_code, connack.session_present) == (0, present)


@pytest.mark.parametrize("level", LEVELS)
async def test_unacknowledged_qos1_is_resent_with_dup(mqtt: Mqtt, level: int) -> None:
    properties = Properties(session_expiry_interval=600) if level == 5 else EMPTY_PROPERTIES
    publisher = await mqtt.connected("publisher", 4)
    subscriber = await mqtt.connected("sub", level, clean=False, properties=properties)
    await subscriber.subscribe("persist/t")
    await publisher.publish("persist/t", b"unacked")
    first = await subscriber.expect(Publish)
    assert without_id(first) == Publish("persist/t", b"unacked", qos=1, dup=False)

    subscriber.drop()
    await mqtt.running.wait_for_record(
        matching(eventType="Disconnect", clientId="sub", reason="CONNECTION_LOST"), TIMEOUT
    )
    subscriber, connack = await mqtt.connect("sub", level, clean=False, properties=properties)
    assert (connack.reason_code, connack.session_present) == (0, True)
    again = await subscriber.expect(Publish)
    assert again == replace(first, dup=True)  # same packet identifier, DUP=1
    assert again.packet_id is not None
    subscriber.send(Puback(again.packet_id))
    assert await subscriber.ping() == []
    subscriber.send(Disconnect())
    await subscriber.expect_eof()

    # Acknowledged: the next resumption has nothing to resend.
    subscriber, connack = await mqtt.connect("sub", level, clean=False, properties=properties)
    assert connack.session_present
    assert await subscriber.ping() == []


# -- wills --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.socket_twin
async def test_will_is_sent_when_the_connection_drops(mqtt: Mqtt, level: int) -> None:
    watcher = await mqtt.watcher("wills/#")
    client = await mqtt.connected("dev", level, will=Will("wills/dev", b"dropped", 1, False))
    client.drop()
    delivered = await watcher.expect(Publish)
    assert without_id(delivered) == Publish("wills/dev", b"dropped", qos=1)
    record = await logged(mqtt.running, eventType="Disconnect", clientId="dev")
    assert record["reason"] == "CONNECTION_LOST"


@pytest.mark.parametrize("level", LEVELS)
async def test_will_is_not_sent_after_disconnect(mqtt: Mqtt, level: int) -> None:
    watcher = await mqtt.watcher("wills/#")
    publisher = await mqtt.connected("publisher", 4)
    client = await mqtt.connected("dev", level, will=Will("wills/dev", b"will", 1, False))
    client.send(Disconnect())
    await client.expect_eof()
    record = await logged(mqtt.running, eventType="Disconnect", clientId="dev")
    assert record["reason"] == "CLIENT_INITIATED_DISCONNECT"
    assert record["status"] == "Success"
    # Had the will been sent, it would have reached the watcher before this sentinel.
    await publisher.publish("wills/dev", b"sentinel")
    delivered = await watcher.expect(Publish)
    assert without_id(delivered) == Publish("wills/dev", b"sentinel", qos=1)
    assert await watcher.ping() == []


async def test_mqtt5_disconnect_with_will_message_sends_it(mqtt: Mqtt) -> None:
    watcher = await mqtt.watcher("wills/#")
    client = await mqtt.connected("dev", 5, will=Will("wills/dev", b"asked for", 1, False))
    client.send(Disconnect(0x04))
    await client.expect_eof()
    delivered = await watcher.expect(Publish)
    assert without_id(delivered) == Publish("wills/dev", b"asked for", qos=1)


async def test_mqtt5_will_delay_defers_the_will(mqtt: Mqtt) -> None:
    loop = asyncio.get_running_loop()
    watcher = await mqtt.watcher("wills/#")
    publisher = await mqtt.connected("publisher", 4)
    will = Will("wills/dev", b"late", 1, False, Properties(will_delay_interval=1))
    client = await mqtt.connected(
        "dev", 5, will=will, properties=Properties(session_expiry_interval=60)
    )
    started = loop.time()
    client.drop()
    await mqtt.running.wait_for_record(
        matching(eventType="Disconnect", clientId="dev", reason="CONNECTION_LOST"), TIMEOUT
    )
    await publisher.publish("wills/dev", b"sentinel")
    first = await watcher.expect(Publish)
    assert first.payload == b"sentinel"
    watcher.send(Puback(first.packet_id or 0))
    # The broker ticks once a second: the will comes between 1 s and about 2 s after the drop.
    delivered = await watcher.expect(Publish, timeout=TIMEOUT)
    assert without_id(delivered) == Publish("wills/dev", b"late", qos=1)
    assert loop.time() - started >= 0.9


@pytest.mark.parametrize("reconnect", [True, False], ids=["reconnected", "not-reconnected"])
async def test_mqtt5_reconnect_within_will_delay_cancels_the_will(
    mqtt: Mqtt, monkeypatch: pytest.MonkeyPatch, reconnect: bool
) -> None:
    watcher = await mqtt.watcher("wills/#")
    publisher = await mqtt.connected("publisher", 4)
    will = Will("wills/dev", b"late", 1, False, Properties(will_delay_interval=30))
    session = Properties(session_expiry_interval=60)
    client = await mqtt.connected("dev", 5, will=will, properties=session)
    client.drop()
    await mqtt.running.wait_for_record(
        matching(eventType="Disconnect", clientId="dev", reason="CONNECTION_LOST"), TIMEOUT
    )
    if reconnect:
        _, connack = await mqtt.connect("dev", 5, clean=False, properties=session)
        assert (connack.reason_code, connack.session_present) == (0, True)
    # Rather than wait 30 s: move the core's clock 45 s on (past the delay, short of the
    # session expiry) and run the once-a-second tick now.
    core = _core(mqtt.running)
    monkeypatch.setattr(core, "clock", lambda: time.time() + 45)
    core.tick()
    await publisher.publish("wills/dev", b"sentinel")
    payloads = []
    for _ in range(1 if reconnect else 2):
        delivered = await watcher.expect(Publish)
        payloads.append(delivered.payload)
    assert payloads == ([b"sentinel"] if reconnect else [b"late", b"sentinel"])
    assert await watcher.ping() == []


def _core(running: RunningBroker) -> Router:
    return running.broker.core.router


# -- flow control -------------------------------------------------------------------------


@pytest.mark.socket_twin
async def test_at_most_100_unacknowledged_qos1_messages_in_flight(mqtt: Mqtt) -> None:
    subscriber = await mqtt.watcher("flow/t", client_id="sub")
    publisher = await mqtt.connected("publisher", 4)
    publisher.send_bytes(
        b"".join(
            encode(Publish("flow/t", b"%d" % i, qos=1, packet_id=i + 1), 4) for i in range(150)
        )
    )
    acks = [await publisher.expect(Puback) for _ in range(150)]
    assert acks == [Puback(i + 1) for i in range(150)]

    received = [await subscriber.expect(Publish) for _ in range(100)]
    assert [p.payload for p in received] == [b"%d" % i for i in range(100)]
    assert await subscriber.ping() == []  # exactly 100 in flight

    for packet in received[:10]:
        assert packet.packet_id is not None
        subscriber.send(Puback(packet.packet_id))
    more = [await subscriber.expect(Publish) for _ in range(10)]
    assert [p.payload for p in more] == [b"%d" % i for i in range(100, 110)]
    assert await subscriber.ping() == []  # exactly 10 more


# -- broker stop --------------------------------------------------------------------------


async def test_broker_stop_sends_server_shutting_down(config: Config) -> None:
    running = await start(config)
    net = Mqtt(running)
    stopped = False
    try:
        v5 = await net.connected("dev-5", 5)
        v311 = await net.connected("dev-4", 4)
        await running.broker.stop()
        stopped = True
        assert await v5.expect(Disconnect) == Disconnect(0x8B)
        await v5.expect_eof()
        await v311.expect_eof()
        record = await logged(running, eventType="Disconnect", clientId="dev-5")
        assert record["reason"] == "SERVER_INITIATED_DISCONNECT"
        assert record["status"] == "Success"
    finally:
        await net.aclose()
        if not stopped:
            await running.broker.stop()
