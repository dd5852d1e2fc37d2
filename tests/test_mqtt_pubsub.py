"""PUBLISH and SUBSCRIBE with AWS IoT Core's semantics, over real TLS, one raw MQTT client each.

Every AWS deviation or limit has a test of the refusal and a twin that changes only the one thing
the rule is about. Clients are written here from the broker's own codec (``encode`` to build what
a device sends, ``PacketReader`` to parse what the broker answers), so each test sees the exact
packets on the wire.

Nothing sleeps: the absence of a packet is proven with a PINGREQ barrier. The broker handles a
connection's packets in order and writes every delivery it queued for a subscriber before that
subscriber's PINGRESP, so "the next packet is PINGRESP" means "nothing was sent".
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import cast

import pytest

from aws_iot_mock.mqtt.codec import (
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
    Unsuback,
    Unsubscribe,
    Will,
    encode,
)
from tests.conftest import ENDPOINT, Device, RunningBroker, client_context
from tests.memory_link import open_memory_connection

TIMEOUT = 10.0
PAYLOAD_LIMIT = 128 * 1024
PAYLOAD_DETAILS = "Message payload exceeds size limit for message type."

# MQTT 5 reason codes the tests expect.
NOT_AUTHORIZED = 0x87
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
TOPIC_ALIAS_INVALID = 0x94
QOS_NOT_SUPPORTED = 0x9B
QUOTA_EXCEEDED = 0x97
UNSPECIFIED_ERROR = 0x80
PROTOCOL_ERROR = 0x82
SUBSCRIPTION_IDS_NOT_SUPPORTED = 0xA1
V3_SUBACK_FAILURE = 0x80

# A valid shadow update: the broker's shadow service also reads what reaches the update topic.
SHADOW_UPDATE = b'{"state":{"reported":{"on":true}}}'

LEVELS = pytest.mark.parametrize("level", [4, 5], ids=["mqtt311", "mqtt5"])


class RawClient:
    """One MQTT connection driven packet by packet over mutual TLS."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, level: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.level = level
        self._parser = PacketReader(protocol_level=level)
        self._pending: list[Packet] = []
        self._next_id = 1
        self.eof = False

    @classmethod
    async def open(
        cls,
        port: int,
        ctx: ssl.SSLContext,
        level: int,
        *,
        sni: str = ENDPOINT,
        host: str = "127.0.0.1",
    ) -> RawClient:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), TIMEOUT
        )
        return cls(reader, writer, level)

    def packet_id(self) -> int:
        packet_id = self._next_id
        self._next_id += 1
        return packet_id

    async def connect(
        self,
        client_id: str,
        *,
        clean: bool = True,
        properties: Properties | None = None,
        will: Will | None = None,
        keep_alive: int = 60,
    ) -> Connack:
        """Send CONNECT and return the CONNACK (which must accept)."""
        connect = Connect(
            "MQTT",
            self.level,
            client_id,
            clean,
            keep_alive,
            will=will,
            properties=properties or Properties(),
        )
        await self.send(connect)
        connack = await self.recv_packet()
        assert isinstance(connack, Connack), connack
        assert connack.reason_code == 0, connack
        return connack

    async def send(self, packet: Packet) -> None:
        await self.send_raw(encode(packet, self.level))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _read(self, timeout: float) -> bytes:
        try:
            data = await asyncio.wait_for(self.reader.read(256 * 1024), timeout)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            data = b""
        self.eof = not data
        return data

    async def recv_packet(self, timeout: float = TIMEOUT) -> Packet:
        """The next packet from the broker; fails on EOF or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._pending:
            packet = self._parser.next_packet()
            if packet is not None:
                self._pending.append(packet)
                break
            data = await self._read(max(deadline - loop.time(), 0.001))
            if not data:
                raise AssertionError("the broker closed the connection")
            self._parser.feed(data)
        return self._pending.pop(0)

    async def expect_eof(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Read until the broker closes the connection; return the packets it sent first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        packets = list(self._pending)
        self._pending.clear()
        while True:
            while (packet := self._parser.next_packet()) is not None:
                packets.append(packet)
            data = await self._read(max(deadline - loop.time(), 0.001))
            if not data:
                return packets
            self._parser.feed(data)

    async def collect(self, timeout: float = TIMEOUT) -> list[Packet]:
        """Send PINGREQ and return every packet received before its PINGRESP."""
        await self.send(Pingreq())
        packets: list[Packet] = []
        while not isinstance(packet := await self.recv_packet(timeout), Pingresp):
            packets.append(packet)
        return packets

    async def expect_nothing(self, timeout: float = TIMEOUT) -> None:
        """Assert that the broker has sent nothing (a PINGREQ round trip, bounded)."""
        assert await self.collect(timeout) == []

    async def subscribe(
        self,
        *filters: str,
        qos: int = 1,
        options: SubscriptionOptions | None = None,
        properties: Properties | None = None,
    ) -> Suback:
        opts = options or SubscriptionOptions(qos=qos)
        packet_id = self.packet_id()
        await self.send(
            Subscribe(
                packet_id, tuple((f, opts) for f in filters), properties=properties or Properties()
            )
        )
        suback = await self.recv_packet()
        assert isinstance(suback, Suback), suback
        assert suback.packet_id == packet_id
        return suback

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> Puback | None:
        """Publish; for QoS 1 wait for and return the PUBACK, for QoS 0 a PINGREQ barrier."""
        packet_id = self.packet_id() if qos else None
        await self.send(
            Publish(
                topic,
                payload,
                qos=qos,
                retain=retain,
                packet_id=packet_id,
                properties=properties or Properties(),
            )
        )
        if qos == 0:
            await self.expect_nothing()
            return None
        puback = await self.recv_packet()
        assert isinstance(puback, Puback), puback
        assert puback.packet_id == packet_id
        return puback

    async def receive_publish(self, timeout: float = TIMEOUT) -> Publish:
        """The next packet must be a PUBLISH; a QoS 1 one is acknowledged."""
        packet = await self.recv_packet(timeout)
        assert isinstance(packet, Publish), packet
        if packet.qos == 1:
            assert packet.packet_id is not None
            await self.send(Puback(packet.packet_id))
        return packet

    async def close(self) -> None:
        """Say DISCONNECT (the broker then closes TLS), and close our side."""
        if self.writer.is_closing():
            self.writer.transport.abort()
        elif not self.eof:
            # A bare close_notify is not answered by the broker (see
            # test_client_close_notify_ends_the_connection), so end with MQTT DISCONNECT.
            with contextlib.suppress(OSError, ssl.SSLError):
                await self.send(Disconnect())
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await self.expect_eof()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)
        except (OSError, ssl.SSLError, TimeoutError):
            self.writer.transport.abort()


class Clients:
    """Opens connected clients for one test and closes them all at teardown.

    ``transport`` is ``memory`` (the broker's device core, no TLS) or ``tls`` (a real socket).
    """

    def __init__(self, running: RunningBroker, transport: str = "tls") -> None:
        self.running = running
        self.transport = transport
        self.device: Device = running.create_device()
        self._ctx = client_context(running.root_ca_path, self.device)
        self._opened: list[RawClient] = []

    async def raw(self, level: int = 4) -> RawClient:
        """A TLS connection with no CONNECT sent yet."""
        if self.transport == "memory":
            inbound, link = await open_memory_connection(
                self.running.broker, self.device.cert_path.read_bytes()
            )
            client = RawClient(inbound, cast(asyncio.StreamWriter, link), level)
        else:
            client = await RawClient.open(self.running.port, self._ctx, level)
        self._opened.append(client)
        return client

    async def __call__(
        self,
        client_id: str,
        level: int = 4,
        *,
        clean: bool = True,
        properties: Properties | None = None,
    ) -> RawClient:
        client = await self.raw(level)
        await client.connect(client_id, clean=clean, properties=properties)
        return client

    async def close_all(self) -> None:
        for client in self._opened:
            await client.close()


@pytest.fixture
async def clients(running_broker: RunningBroker, transport: str) -> AsyncIterator[Clients]:
    opened = Clients(running_broker, transport)
    try:
        yield opened
    finally:
        await opened.close_all()


def _is(
    event: str, reason: str, topic: str | None = None
) -> Callable[[Mapping[str, object]], bool]:
    def predicate(record: Mapping[str, object]) -> bool:
        return (
            record.get("eventType") == event
            and record.get("reason") == reason
            and (topic is None or record.get("topicName") == topic)
        )

    return predicate


async def assert_logged(
    running: RunningBroker, event: str, reason: str, topic: str | None = None
) -> dict[str, object]:
    """The failure was logged once, as an ERROR line also written to the JSON-lines file."""
    record = await running.wait_for_record(_is(event, reason, topic))
    assert record["status"] == "Failure"
    assert record["logLevel"] == "ERROR"
    if topic is not None:
        assert record["topicName"] == topic
    assert [r for r in running.records if _is(event, reason, topic)(r)] == [record]
    assert record in running.file_records()
    return record


async def assert_closed(client: RawClient, v5_code: int | None) -> None:
    """The broker closed the connection; an MQTT 5 client got DISCONNECT ``v5_code`` first."""
    packets = await client.expect_eof()
    if client.level == 5 and v5_code is not None:
        assert packets == [Disconnect(v5_code)]
    else:
        assert packets == []


def no_failures(running: RunningBroker) -> None:
    assert running.failures() == [], running.failures()


# -- QoS -----------------------------------------------------------------------------------


@LEVELS
async def test_qos2_publish_is_not_acknowledged_nor_delivered(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("qos/t", qos=1)
    publisher = await clients("pub", level)

    await publisher.send(Publish("qos/t", b"two", qos=2, packet_id=7))

    if level == 5:
        # MQTT 5 3.3.1.2: QoS above the CONNACK's Maximum QoS (1) is DISCONNECT 0x9B.
        await assert_closed(publisher, QOS_NOT_SUPPORTED)
    else:
        await publisher.expect_nothing()  # AWS: neither PUBACK nor PUBREC
    await subscriber.expect_nothing()
    await assert_logged(running_broker, "Publish-In", "QOS_NOT_SUPPORTED", "qos/t")


@LEVELS
@pytest.mark.socket_twin
async def test_qos1_publish_is_acknowledged_and_delivered(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("qos/t", qos=1)
    publisher = await clients("pub", level)

    puback = await publisher.publish("qos/t", b"one", qos=1)

    assert puback is not None and puback.reason_code == 0
    delivered = await subscriber.receive_publish()
    assert (delivered.topic, delivered.payload, delivered.qos) == ("qos/t", b"one", 1)
    no_failures(running_broker)


@LEVELS
async def test_qos2_subscribe_gets_no_suback_and_subscribes_nothing(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.send(Subscribe(1, (("qos/t", SubscriptionOptions(qos=2)),)))
    await subscriber.expect_nothing()  # no SUBACK
    await assert_logged(running_broker, "Subscribe", "QOS_NOT_SUPPORTED", "qos/t")

    publisher = await clients("pub", level)
    await publisher.publish("qos/t", b"x", qos=1)
    await subscriber.expect_nothing()


@LEVELS
async def test_qos1_subscribe_is_granted_qos1(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    subscriber = await clients("sub", level)
    suback = await subscriber.subscribe("qos/t", qos=1)
    assert suback.reason_codes == (1,)

    publisher = await clients("pub", level)
    await publisher.publish("qos/t", b"x", qos=1)
    assert (await subscriber.receive_publish()).payload == b"x"
    no_failures(running_broker)


@LEVELS
@pytest.mark.parametrize(
    ("publish_qos", "granted_qos", "delivered_qos"),
    [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 1)],
)
async def test_delivered_qos_is_min_of_publish_and_granted(
    clients: Clients, level: int, publish_qos: int, granted_qos: int, delivered_qos: int
) -> None:
    subscriber = await clients("sub", level)
    assert (await subscriber.subscribe("qos/min", qos=granted_qos)).reason_codes == (granted_qos,)
    publisher = await clients("pub", level)

    await publisher.publish("qos/min", b"m", qos=publish_qos)

    delivered = await subscriber.receive_publish()
    assert delivered.qos == delivered_qos
    assert (delivered.packet_id is None) == (delivered_qos == 0)


# -- topic names ---------------------------------------------------------------------------


@LEVELS
@pytest.mark.parametrize("topic", ["a/+/b", "a/#", "+", "a/b#"])
@pytest.mark.socket_twin
async def test_publish_to_wildcard_topic_closes_the_connection(
    clients: Clients, running_broker: RunningBroker, level: int, topic: str
) -> None:
    publisher = await clients("pub", level)
    await publisher.send(Publish(topic, b"x", qos=1, packet_id=1))
    await assert_closed(publisher, TOPIC_NAME_INVALID)
    record = await assert_logged(running_broker, "Disconnect", "TOPIC_INVALID")
    assert record["disconnectReason"] == "CLIENT_ERROR"


@LEVELS
async def test_publish_to_plain_topic_keeps_the_connection(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    publisher = await clients("pub", level)
    puback = await publisher.publish("a/plus/b", b"x")
    assert puback is not None and puback.reason_code == 0
    await publisher.expect_nothing()
    no_failures(running_broker)


def _topic_of_bytes(size: int) -> str:
    return "t/" + "x" * (size - 2)


def _topic_of_slashes(slashes: int) -> str:
    return "/".join(["s"] * (slashes + 1))


@LEVELS
@pytest.mark.parametrize(
    "topic",
    [_topic_of_bytes(256), _topic_of_slashes(7)],
    ids=["256-bytes", "7-slashes"],
)
async def test_topic_at_the_limit_is_accepted_and_delivered(
    clients: Clients, running_broker: RunningBroker, level: int, topic: str
) -> None:
    subscriber = await clients("sub", level)
    assert (await subscriber.subscribe(topic)).reason_codes == (1,)
    publisher = await clients("pub", level)
    puback = await publisher.publish(topic, b"ok")
    assert puback is not None and puback.reason_code == 0
    assert (await subscriber.receive_publish()).topic == topic
    no_failures(running_broker)


@LEVELS
@pytest.mark.parametrize(
    "topic",
    [_topic_of_bytes(257), _topic_of_slashes(8)],
    ids=["257-bytes", "8-slashes"],
)
async def test_topic_over_the_limit_is_refused(
    clients: Clients, running_broker: RunningBroker, level: int, topic: str
) -> None:
    subscriber = await clients("sub", level)
    suback = await subscriber.subscribe(topic, "ok/filter")
    assert suback.reason_codes == (TOPIC_FILTER_INVALID if level == 5 else V3_SUBACK_FAILURE, 1)
    await assert_logged(running_broker, "Subscribe", "TOPIC_FILTER_INVALID", topic)

    publisher = await clients("pub", level)
    await publisher.send(Publish(topic, b"no", qos=1, packet_id=1))
    await assert_closed(publisher, TOPIC_NAME_INVALID)
    await assert_logged(running_broker, "Disconnect", "TOPIC_INVALID")


@LEVELS
@pytest.mark.parametrize("bad", ["a/#/b", "a/b#", "a+/b"])
async def test_invalid_filter_is_refused_in_suback_others_granted(
    clients: Clients, running_broker: RunningBroker, level: int, bad: str
) -> None:
    subscriber = await clients("sub", level)
    suback = await subscriber.subscribe("good/1", bad, "good/+", qos=1)

    failure = TOPIC_FILTER_INVALID if level == 5 else V3_SUBACK_FAILURE
    assert suback.reason_codes == (1, failure, 1)
    await assert_logged(running_broker, "Subscribe", "TOPIC_FILTER_INVALID", bad)
    # The connection stays usable and the valid filters work.
    publisher = await clients("pub", level)
    await publisher.publish("good/2", b"g")
    assert (await subscriber.receive_publish()).topic == "good/2"


@LEVELS
async def test_hash_filter_matches_children_but_not_the_parent(
    clients: Clients, level: int
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("sensor/#")
    publisher = await clients("pub", level)

    for topic in ("sensor", "sensor/", "sensor/x", "sensor/x/y"):
        await publisher.publish(topic, topic.encode())

    received = [p.topic for p in await subscriber.collect() if isinstance(p, Publish)]
    # AWS: "sensor/#" receives "sensor/" and "sensor/temperature" but not "sensor".
    assert received == ["sensor/", "sensor/x", "sensor/x/y"]


@LEVELS
async def test_exact_filter_receives_the_parent_topic(clients: Clients, level: int) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("sensor")
    publisher = await clients("pub", level)

    await publisher.publish("sensor", b"p")

    assert (await subscriber.receive_publish()).topic == "sensor"
    await subscriber.expect_nothing()


@LEVELS
async def test_leading_wildcards_do_not_match_dollar_topics(clients: Clients, level: int) -> None:
    shadow = "$aws/things/x/shadow/update"
    everything = await clients("all", level)
    await everything.subscribe("#")
    plus = await clients("plus", level)
    await plus.subscribe("+/things/x/shadow/update")
    explicit = await clients("explicit", level)
    await explicit.subscribe("$aws/things/+/shadow/update")
    publisher = await clients("pub", level)

    await publisher.publish(shadow, SHADOW_UPDATE)

    assert (await explicit.receive_publish()).topic == shadow
    await everything.expect_nothing()
    await plus.expect_nothing()


# -- reserved topics -----------------------------------------------------------------------


@LEVELS
@pytest.mark.parametrize(
    ("topic", "retain"),
    [("$aws/events/presence/connected/x", False), ("$aws/things/t/shadow/update", True)],
    ids=["events-topic", "retain-on-reserved"],
)
async def test_reserved_topic_publish_is_refused(
    clients: Clients, running_broker: RunningBroker, level: int, topic: str, retain: bool
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe(topic)
    publisher = await clients("pub", level)

    await publisher.send(Publish(topic, SHADOW_UPDATE, qos=1, retain=retain, packet_id=1))

    if level == 5:
        puback = await publisher.recv_packet()
        assert puback == Puback(1, NOT_AUTHORIZED)
        await publisher.expect_nothing()  # still connected
        await assert_logged(running_broker, "Publish-In", "RESERVED_TOPIC", topic)
    else:
        await assert_closed(publisher, None)
        record = await assert_logged(running_broker, "Disconnect", "RESERVED_TOPIC")
        assert topic in str(record["details"])
    await subscriber.expect_nothing()


@LEVELS
async def test_non_retained_shadow_publish_is_routed(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    topic = "$aws/things/t/shadow/update"
    subscriber = await clients("sub", level)
    await subscriber.subscribe(topic)
    publisher = await clients("pub", level)

    puback = await publisher.publish(topic, SHADOW_UPDATE)

    assert puback is not None and puback.reason_code == 0
    delivered = await subscriber.receive_publish()
    assert (delivered.topic, delivered.payload) == (topic, SHADOW_UPDATE)
    no_failures(running_broker)


# -- payload size --------------------------------------------------------------------------


async def test_payload_of_exactly_128_kib_is_accepted_and_delivered(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("sub", 4)
    await subscriber.subscribe("big/t")
    publisher = await clients("pub", 4)
    payload = bytes(range(256)) * (PAYLOAD_LIMIT // 256)
    assert len(payload) == PAYLOAD_LIMIT

    puback = await publisher.publish("big/t", payload)

    assert puback is not None and puback.reason_code == 0
    assert (await subscriber.receive_publish()).payload == payload
    no_failures(running_broker)


@pytest.mark.socket_twin
async def test_small_messages_flow_both_ways_after_128_kib_ones(
    clients: Clients, running_broker: RunningBroker
) -> None:
    """Over TLS the door gives a memory BIO's buffer back after such a transfer (LARGE_TRANSFER):
    the connection must carry on as before, in both directions."""
    subscriber = await clients("sub", 4)
    await subscriber.subscribe("big/t")
    publisher = await clients("pub", 4)
    await publisher.subscribe("small/back")
    big = bytes(range(256)) * (PAYLOAD_LIMIT // 256)

    for payload in (big, b"small after big", big, b"small again"):
        puback = await publisher.publish("big/t", payload)
        assert puback is not None and puback.reason_code == 0
        assert (await subscriber.receive_publish()).payload == payload
    puback = await subscriber.publish("small/back", b"reply")

    assert puback is not None and puback.reason_code == 0
    assert (await publisher.receive_publish()).payload == b"reply"
    no_failures(running_broker)


async def test_mqtt5_packet_of_exactly_the_advertised_maximum_is_accepted(
    clients: Clients, running_broker: RunningBroker
) -> None:
    """The CONNACK advertises Maximum Packet Size 131072 (AWS: "Cannot exceed 128 KB")."""
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("big/t")
    publisher = await clients("pub", 5)
    overhead = len(encode(Publish("big/t", b"", qos=1, packet_id=1), 5)) + 2  # 3-byte length
    payload = b"p" * (PAYLOAD_LIMIT - overhead)
    assert len(encode(Publish("big/t", payload, qos=1, packet_id=1), 5)) == PAYLOAD_LIMIT

    puback = await publisher.publish("big/t", payload)

    assert puback is not None and puback.reason_code == 0
    assert (await subscriber.receive_publish()).payload == payload
    no_failures(running_broker)


async def test_mqtt5_packet_one_byte_over_the_advertised_maximum_is_refused(
    clients: Clients, running_broker: RunningBroker
) -> None:
    publisher = await clients("pub", 5)
    overhead = len(encode(Publish("big/t", b"", qos=1, packet_id=1), 5)) + 2
    payload = b"p" * (PAYLOAD_LIMIT - overhead + 1)

    await publisher.send(Publish("big/t", payload, qos=1, packet_id=1))

    await assert_closed(publisher, QUOTA_EXCEEDED)
    await assert_logged(running_broker, "Disconnect", "PAYLOAD_LIMIT_EXCEEDED")


@LEVELS
@pytest.mark.socket_twin
async def test_payload_one_byte_over_128_kib_closes_the_connection(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("big/t")
    publisher = await clients("pub", level)

    await publisher.send(Publish("big/t", b"x" * (PAYLOAD_LIMIT + 1), qos=1, packet_id=1))

    await assert_closed(publisher, QUOTA_EXCEEDED)
    record = await assert_logged(running_broker, "Disconnect", "PAYLOAD_LIMIT_EXCEEDED")
    assert record["details"] == PAYLOAD_DETAILS
    assert record["disconnectReason"] == "CLIENT_ERROR"
    await subscriber.expect_nothing()


@LEVELS
@pytest.mark.socket_twin
async def test_huge_publish_is_refused_from_its_fixed_header(
    clients: Clients, running_broker: RunningBroker, level: int
) -> None:
    publisher = await clients("pub", level)
    remaining = 10 * 1024 * 1024
    varint = bytearray()
    value = remaining
    while True:
        value, digit = divmod(value, 128)
        varint.append(digit | (0x80 if value else 0))
        if not value:
            break
    # QoS 1 PUBLISH fixed header declaring 10 MiB, then only the start of the variable header.
    await publisher.send_raw(bytes([0x32]) + bytes(varint) + b"\x00\x05big/t\x00\x01")

    await assert_closed(publisher, QUOTA_EXCEEDED)
    record = await assert_logged(running_broker, "Disconnect", "PAYLOAD_LIMIT_EXCEEDED")
    assert record["details"] == PAYLOAD_DETAILS


# -- retained messages ---------------------------------------------------------------------


@LEVELS
async def test_one_retained_message_per_topic_newest_wins(clients: Clients, level: int) -> None:
    publisher = await clients("pub", level)
    await publisher.publish("state/r", b"first", retain=True)
    await publisher.publish("state/r", b"second", retain=True)

    late = await clients("late", level)
    await late.subscribe("state/r")

    packets = await late.collect()
    assert len(packets) == 1
    retained = packets[0]
    assert isinstance(retained, Publish)
    assert (retained.payload, retained.retain) == (b"second", True)


@LEVELS
async def test_empty_retained_publish_deletes_and_is_delivered_live(
    clients: Clients, level: int
) -> None:
    publisher = await clients("pub", level)
    await publisher.publish("state/r", b"on", retain=True)
    current = await clients("current", level)
    await current.subscribe("state/r")
    assert (await current.receive_publish()).payload == b"on"

    await publisher.publish("state/r", b"", retain=True)

    live = await current.receive_publish()
    assert (live.payload, live.retain) == (b"", False)
    late = await clients("late", level)
    await late.subscribe("state/r")
    await late.expect_nothing()


@LEVELS
@pytest.mark.socket_twin
async def test_retained_goes_to_exact_filters_only_and_live_copies_have_retain_0(
    clients: Clients, level: int
) -> None:
    publisher = await clients("pub", level)
    await publisher.publish("state/r", b"kept", retain=True)

    exact = await clients("exact", level)
    await exact.subscribe("state/r")
    wild = await clients("wild", level)
    await wild.subscribe("state/+", "state/#")

    retained = await exact.receive_publish()
    assert (retained.topic, retained.payload, retained.retain) == ("state/r", b"kept", True)
    await wild.expect_nothing()

    await publisher.publish("state/r", b"live", retain=True)
    for client in (exact, wild):
        live = await client.receive_publish()
        assert (live.payload, live.retain) == (b"live", False)


async def test_retain_as_published_keeps_retain_1_on_live_copies(clients: Clients) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe(
        "state/rap", options=SubscriptionOptions(qos=1, retain_as_published=True)
    )
    plain = await clients("plain", 5)
    await plain.subscribe("state/rap")
    publisher = await clients("pub", 5)

    await publisher.publish("state/rap", b"r", retain=True)
    await publisher.publish("state/rap", b"n", retain=False)

    assert [(p.payload, p.retain) for p in [await subscriber.receive_publish() for _ in "ab"]] == [
        (b"r", True),
        (b"n", False),
    ]
    assert [(p.payload, p.retain) for p in [await plain.receive_publish() for _ in "ab"]] == [
        (b"r", False),
        (b"n", False),
    ]


@pytest.mark.parametrize(
    ("retain_handling", "on_new", "on_existing"),
    [(0, True, True), (1, True, False), (2, False, False)],
)
async def test_retain_handling(
    clients: Clients, retain_handling: int, on_new: bool, on_existing: bool
) -> None:
    publisher = await clients("pub", 5)
    await publisher.publish("state/rh", b"kept", retain=True)
    subscriber = await clients("sub", 5)
    options = SubscriptionOptions(qos=1, retain_handling=retain_handling)

    for expected in (on_new, on_existing):  # first a new subscription, then the same again
        await subscriber.subscribe("state/rh", options=options)
        packets = await subscriber.collect()
        if expected:
            assert len(packets) == 1 and isinstance(packets[0], Publish)
            assert (packets[0].payload, packets[0].retain) == (b"kept", True)
            assert packets[0].packet_id is not None
            await subscriber.send(Puback(packets[0].packet_id))
        else:
            assert packets == []


@LEVELS
async def test_shared_subscription_gets_no_retained_message(clients: Clients, level: int) -> None:
    publisher = await clients("pub", level)
    await publisher.publish("state/sh", b"kept", retain=True)
    member = await clients("member", level)

    assert (await member.subscribe("$share/g/state/sh")).reason_codes == (1,)

    await member.expect_nothing()
    await publisher.publish("state/sh", b"live")
    assert (await member.receive_publish()).payload == b"live"


# -- shared subscriptions ------------------------------------------------------------------


@pytest.mark.socket_twin
async def test_shared_subscription_delivers_each_message_to_exactly_one_member(
    clients: Clients, running_broker: RunningBroker
) -> None:
    members = [await clients(f"member-{i}", level) for i, level in enumerate((4, 5, 4))]
    for member in members:
        assert (await member.subscribe("$share/g/jobs/+")).reason_codes == (1,)
    publisher = await clients("pub", 5)
    sent = [f"job-{i}".encode() for i in range(30)]

    for i, payload in enumerate(sent):
        await publisher.publish(f"jobs/{i % 4}", payload)

    received: list[bytes] = []
    for member in members:
        for packet in await member.collect():
            assert isinstance(packet, Publish), packet
            assert packet.qos == 1 and packet.packet_id is not None
            await member.send(Puback(packet.packet_id))
            received.append(packet.payload)
    assert sorted(received) == sorted(sent)  # union is everything, nothing twice
    assert len(set(received)) == len(received) == 30
    no_failures(running_broker)


# -- MQTT 5 properties ---------------------------------------------------------------------

FORWARDED = Properties(
    payload_format_indicator=1,
    content_type="application/json",
    response_topic="reply/here",
    correlation_data=b"\x00corr\xff",
    user_properties=(("k", "v"), ("k", "v2"), ("other", "x")),
)


@pytest.mark.socket_twin
async def test_mqtt5_properties_are_forwarded_to_v5_and_stripped_for_v3(
    clients: Clients, running_broker: RunningBroker
) -> None:
    v5 = await clients("sub5", 5)
    await v5.subscribe("props/t")
    v3 = await clients("sub3", 4)
    await v3.subscribe("props/t")
    publisher = await clients("pub", 5)

    await publisher.publish("props/t", b'{"a":1}', properties=FORWARDED)

    to_v5 = await v5.receive_publish()
    assert to_v5.payload == b'{"a":1}'
    assert to_v5.properties == FORWARDED
    to_v3 = await v3.receive_publish()
    assert to_v3.payload == b'{"a":1}'
    assert to_v3.properties == Properties()
    no_failures(running_broker)


async def test_payload_format_utf8_with_invalid_utf8_is_refused(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("pfi/t")
    publisher = await clients("pub", 5)

    puback = await publisher.publish(
        "pfi/t", b"\xff\xfe", properties=Properties(payload_format_indicator=1)
    )

    # AWS's PUBACK codes have no 0x99 (Payload format invalid): 0x80, Unspecified error.
    assert puback is not None and puback.reason_code == UNSPECIFIED_ERROR
    await subscriber.expect_nothing()
    await assert_logged(running_broker, "Publish-In", "PAYLOAD_FORMAT_INVALID", "pfi/t")


async def test_payload_format_utf8_with_valid_utf8_is_delivered(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("pfi/t")
    publisher = await clients("pub", 5)

    puback = await publisher.publish(
        "pfi/t", "héllo".encode(), properties=Properties(payload_format_indicator=1)
    )

    assert puback is not None and puback.reason_code == 0
    delivered = await subscriber.receive_publish()
    assert delivered.payload == "héllo".encode()
    assert delivered.properties.payload_format_indicator == 1
    no_failures(running_broker)


async def test_message_expiry_carries_remaining_time_to_offline_subscriber(
    clients: Clients,
) -> None:
    persistent = Properties(session_expiry_interval=300)
    subscriber = await clients("offline", 5, clean=False, properties=persistent)
    await subscriber.subscribe("exp/t")
    await subscriber.send(Disconnect())
    assert await subscriber.expect_eof() == []
    publisher = await clients("pub", 5)

    await publisher.publish("exp/t", b"soon", properties=Properties(message_expiry_interval=10))

    back = await clients.raw(5)
    connack = await back.connect("offline", clean=False, properties=persistent)
    assert connack.session_present
    delivered = await back.receive_publish()
    assert delivered.payload == b"soon"
    remaining = delivered.properties.message_expiry_interval
    assert remaining is not None and 5 <= remaining <= 10


async def test_message_expiry_0_is_treated_as_1(clients: Clients) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("exp/t")
    publisher = await clients("pub", 5)

    await publisher.publish("exp/t", b"now", properties=Properties(message_expiry_interval=0))

    delivered = await subscriber.receive_publish()
    assert delivered.payload == b"now"
    # Clamped to 1 s; what is forwarded is the remaining time in whole seconds, and AWS shows
    # "<=999 ms remaining" as 0, so a live copy says 1 or (a microsecond later) 0.
    assert delivered.properties.message_expiry_interval in (0, 1)


async def test_message_without_expiry_carries_none(clients: Clients) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("exp/t")
    publisher = await clients("pub", 5)

    await publisher.publish("exp/t", b"forever")

    assert (await subscriber.receive_publish()).properties.message_expiry_interval is None


@pytest.mark.socket_twin
async def test_topic_alias_is_resolved_for_subscribers(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.subscribe("alias/t")
    publisher = await clients("pub", 5)

    await publisher.publish("alias/t", b"1", properties=Properties(topic_alias=1))
    await publisher.publish("", b"2", properties=Properties(topic_alias=1))

    for payload in (b"1", b"2"):
        delivered = await subscriber.receive_publish()
        assert (delivered.topic, delivered.payload) == ("alias/t", payload)
        assert delivered.properties.topic_alias is None
    no_failures(running_broker)


async def test_topic_alias_over_the_maximum_closes_with_0x94(
    clients: Clients, running_broker: RunningBroker
) -> None:
    publisher = await clients("pub", 5)
    await publisher.send(
        Publish("alias/t", b"x", qos=1, packet_id=1, properties=Properties(topic_alias=9))
    )
    await assert_closed(publisher, TOPIC_ALIAS_INVALID)
    await assert_logged(running_broker, "Disconnect", "PROTOCOL_ERROR")


async def test_unknown_topic_alias_with_empty_topic_closes_with_0x82(
    clients: Clients, running_broker: RunningBroker
) -> None:
    publisher = await clients("pub", 5)
    await publisher.send(
        Publish("", b"x", qos=1, packet_id=1, properties=Properties(topic_alias=2))
    )
    await assert_closed(publisher, PROTOCOL_ERROR)
    await assert_logged(running_broker, "Disconnect", "PROTOCOL_ERROR")


async def test_subscription_identifier_closes_with_0xa1(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("sub", 5)
    await subscriber.send(
        Subscribe(
            1,
            (("sid/t", SubscriptionOptions(qos=1)),),
            properties=Properties(subscription_identifiers=(5,)),
        )
    )
    await assert_closed(subscriber, SUBSCRIPTION_IDS_NOT_SUPPORTED)
    record = await assert_logged(
        running_broker, "Disconnect", "SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED"
    )
    assert record["disconnectReason"] == "CLIENT_ERROR"


async def test_subscribe_without_identifier_is_granted(clients: Clients) -> None:
    subscriber = await clients("sub", 5)
    assert (await subscriber.subscribe("sid/t")).reason_codes == (1,)
    await subscriber.expect_nothing()


@pytest.mark.parametrize("no_local", [True, False])
async def test_no_local(clients: Clients, no_local: bool) -> None:
    client = await clients("both", 5)
    await client.subscribe("nl/t", options=SubscriptionOptions(qos=1, no_local=no_local))
    other = await clients("other", 5)
    await other.subscribe("nl/t")

    await client.send(Publish("nl/t", b"mine", qos=1, packet_id=1))

    assert (await other.receive_publish()).payload == b"mine"
    # AWS does not order PUBACKs against deliveries: take both, in any order.
    packets = await client.collect()
    assert Puback(1) in packets
    own = [p for p in packets if isinstance(p, Publish)]
    assert [p.payload for p in own] == ([] if no_local else [b"mine"])


@LEVELS
async def test_unsuback_reason_codes(clients: Clients, level: int) -> None:
    subscriber = await clients("sub", level)
    await subscriber.subscribe("un/a")

    await subscriber.send(Unsubscribe(9, ("un/a", "un/never")))

    unsuback = await subscriber.recv_packet()
    # AWS's UNSUBACK codes have no 0x11 (No subscription existed): 0x00 for both.
    expected = (0x00, 0x00) if level == 5 else ()
    assert unsuback == Unsuback(9, expected)
    publisher = await clients("pub", level)
    await publisher.publish("un/a", b"gone")
    await subscriber.expect_nothing()


# -- subscriptions per connection ----------------------------------------------------------


@pytest.fixture
async def quota_clients(quota_broker: RunningBroker) -> AsyncIterator[Clients]:
    """In-memory clients of a broker that enforces AWS's per-connection quotas."""
    opened = Clients(quota_broker, "memory")
    try:
        yield opened
    finally:
        await opened.close_all()


@LEVELS
async def test_the_51st_subscription_is_refused(
    quota_clients: Clients, quota_broker: RunningBroker, level: int
) -> None:
    running_broker, clients = quota_broker, quota_clients
    subscriber = await clients("sub", level)
    for first in range(0, 50, 8):  # AWS: at most 8 filters per SUBSCRIBE
        batch = [f"many/{i}" for i in range(first, min(first + 8, 50))]
        assert (await subscriber.subscribe(*batch)).reason_codes == (1,) * len(batch)
    no_failures(running_broker)

    # Re-subscribing to an existing filter is not a new subscription; the 51st filter is.
    suback = await subscriber.subscribe("many/0", "many/50")

    assert suback.reason_codes == (1, QUOTA_EXCEEDED if level == 5 else V3_SUBACK_FAILURE)
    await assert_logged(running_broker, "Subscribe", "SUBSCRIPTION_LIMIT_EXCEEDED", "many/50")
    publisher = await clients("pub", level)
    await publisher.publish("many/50", b"no")
    await publisher.publish("many/49", b"yes")
    assert (await subscriber.receive_publish()).payload == b"yes"
    await subscriber.expect_nothing()


@LEVELS
async def test_after_unsubscribing_one_there_is_room_again(
    quota_clients: Clients, level: int
) -> None:
    subscriber = await quota_clients("sub", level)
    for first in range(0, 50, 8):
        await subscriber.subscribe(*[f"many/{i}" for i in range(first, min(first + 8, 50))])
    await subscriber.send(Unsubscribe(99, ("many/0",)))
    assert isinstance(await subscriber.recv_packet(), Unsuback)

    assert (await subscriber.subscribe("many/50")).reason_codes == (1,)


# -- cross-version -------------------------------------------------------------------------


@pytest.mark.parametrize(("publisher_level", "subscriber_level"), [(4, 5), (5, 4)])
@pytest.mark.socket_twin
async def test_cross_version_delivery(
    clients: Clients, running_broker: RunningBroker, publisher_level: int, subscriber_level: int
) -> None:
    subscriber = await clients("sub", subscriber_level)
    await subscriber.subscribe("cross/t")
    publisher = await clients("pub", publisher_level)

    await publisher.publish("cross/t", b"hello")

    delivered = await subscriber.receive_publish()
    assert (delivered.topic, delivered.payload, delivered.qos) == ("cross/t", b"hello", 1)
    no_failures(running_broker)


# -- closing -------------------------------------------------------------------------------


@pytest.mark.tls_only
async def test_client_close_notify_ends_the_connection(
    clients: Clients, running_broker: RunningBroker
) -> None:
    client = await clients("closer", 4)
    client.writer.close()  # close_notify, then asyncio waits for the broker's close_notify
    try:
        await running_broker.wait_for_record(
            lambda r: r.get("reason") == "CLIENT_INITIATED_DISCONNECT", timeout=3.0
        )
        await asyncio.wait_for(client.writer.wait_closed(), 3.0)
    finally:
        client.writer.transport.abort()


@pytest.mark.socket_twin
async def test_client_disconnect_ends_the_connection(
    clients: Clients, running_broker: RunningBroker
) -> None:
    client = await clients("closer", 4)
    await client.send(Disconnect())
    assert await client.expect_eof() == []
    record = await running_broker.wait_for_record(
        lambda r: r.get("reason") == "CLIENT_INITIATED_DISCONNECT"
    )
    assert record["status"] == "Success"


def _publish_then_close_notify_in_one_write(
    port: int, ctx: ssl.SSLContext, client_id: str, topic: str
) -> bytes:
    """A TLS client (memory BIOs over a blocking socket) that sends CONNECT, a QoS 0 PUBLISH and
    its close_notify in one write, then reads until the broker closes; returns what it read."""
    import socket  # noqa: PLC0415 (this helper only)

    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=ENDPOINT)
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(outgoing.read())
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("the broker closed during the handshake") from None
                incoming.write(data)
        sock.sendall(outgoing.read())
        tls.write(encode(Connect("MQTT", 4, client_id, clean_start=True, keep_alive=60), 4))
        tls.write(encode(Publish(topic, b"last words"), 4))
        with contextlib.suppress(ssl.SSLWantReadError):
            tls.unwrap()  # queues close_notify; the broker's reply is not awaited here
        sock.sendall(outgoing.read())  # CONNECT, PUBLISH and close_notify: one write
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


@pytest.mark.tls_only
async def test_data_and_close_notify_in_one_read_are_both_handled(
    clients: Clients, running_broker: RunningBroker
) -> None:
    subscriber = await clients("listener", 4)
    await subscriber.subscribe("last/words", qos=0)
    await asyncio.to_thread(
        _publish_then_close_notify_in_one_write,
        running_broker.port,
        client_context(running_broker.root_ca_path, clients.device),
        "closer-in-one",
        "last/words",
    )
    publish = await subscriber.recv_packet()
    assert isinstance(publish, Publish)
    assert (publish.topic, publish.payload) == ("last/words", b"last words")
    record = await running_broker.wait_for_record(
        lambda r: (
            r.get("reason") == "CLIENT_INITIATED_DISCONNECT"
            and r.get("clientId") == "closer-in-one"
        )
    )
    assert record["eventType"] == "Disconnect"
