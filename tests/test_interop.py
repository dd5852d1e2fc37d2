"""Interoperability: real MQTT clients subscribe, publish and receive through the TLS door.

Every client presents a device certificate issued by the broker's CA and sends the broker's
endpoint as SNI; nothing talks to the MQTT core directly. The clients are paho-mqtt (3.1.1 and
5, on its own network thread), the AWS IoT Device SDK v2 (awscrt's MQTT 3 connection and MQTT 5
client, on native threads), amqtt (asyncio-native, in the test's loop) and Debian's
``mosquitto_sub``/``mosquitto_pub`` (subprocesses). Each is wrapped in a small ``Peer`` with the
same four operations, so the round-trip tests and the cross-client tests share one script.

Only paho can dial 127.0.0.1 while sending the AWS-shaped ``ENDPOINT`` as SNI (see
``FixedSniContext``); the others derive the SNI from the host they dial, so they run against a
broker whose endpoint is ``localhost`` (resolved by /etc/hosts). Nothing sleeps: waits are on
futures, queues, subprocess pipes and log records, each bounded by ``TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import queue
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from amqtt.client import MQTTClient  # type: ignore[import-untyped]
from awscrt import mqtt, mqtt5
from awsiot import mqtt5_client_builder, mqtt_connection_builder
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from aws_iot_mock.server.app import Broker
from tests.conftest import ENDPOINT, RunningBroker, make_config
from tests.test_real_clients import (
    TIMEOUT,
    Mqtt5Lifecycle,
    is_connect_success,
    paho_client,
    paho_tls_context,
    sdk_common_args,
    stop_mqtt5,
    wait_crt_future,
)

MOSQUITTO_SUB = shutil.which("mosquitto_sub")
MOSQUITTO_PUB = shutil.which("mosquitto_pub")
STDBUF = shutil.which("stdbuf")
HAVE_MOSQUITTO = None not in (MOSQUITTO_SUB, MOSQUITTO_PUB, STDBUF)
NO_MOSQUITTO = (
    "needs Debian's mosquitto-clients (mosquitto_sub, mosquitto_pub) and coreutils' stdbuf on PATH"
)

UserProperties = tuple[tuple[str, str], ...]

# MQTT 5 properties a v5 publisher attaches; a v5 subscriber must receive them unchanged, in
# order, duplicates included (MQTT 5 3.3.2.3.7: the server forwards them unaltered).
USER_PROPERTIES: UserProperties = (("source", "interop"), ("seq", "1"), ("seq", "2"))
CONTENT_TYPE = "application/json"


@dataclasses.dataclass(frozen=True)
class Received:
    """A delivered PUBLISH as the client library reported it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    user_properties: UserProperties = ()
    content_type: str | None = None


class Peer(Protocol):
    """One real client against the broker (for mosquitto: one process per operation, one id)."""

    mqtt5: bool
    client_ids: list[str]  # every client id this peer connected with

    async def start(self) -> None: ...

    async def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and return once the SUBACK granted QoS 1."""

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        """Publish; return once sent (QoS 0) or acknowledged (QoS 1)."""

    async def receive(self) -> Received: ...

    async def close(self) -> None:
        """Disconnect cleanly (an MQTT DISCONNECT) if connected; release everything."""


PeerT = TypeVar("PeerT", bound=Peer)


@contextlib.asynccontextmanager
async def started(peer: PeerT) -> AsyncIterator[PeerT]:
    try:
        await peer.start()
        yield peer
    finally:
        await peer.close()


# -- paho-mqtt ---------------------------------------------------------------------------------


class PahoPeer:
    """A paho client on its network thread; callbacks complete futures and fill a queue."""

    def __init__(
        self, running: RunningBroker, client_id: str, protocol: MQTTProtocolVersion
    ) -> None:
        self.mqtt5 = protocol is MQTTProtocolVersion.MQTTv5
        self.client_ids = [client_id]
        device = running.create_device(name=client_id)
        # The SNI (and the server certificate's expected name) is the broker's endpoint.
        self._ctx = paho_tls_context(running.root_ca_path, device, running.config.endpoint)
        self._port = running.port
        self._client = paho_client(client_id, protocol)
        self._client.tls_set_context(self._ctx)
        self._connack: concurrent.futures.Future[ReasonCode] = concurrent.futures.Future()
        self._disconnected = threading.Event()
        self._messages: queue.Queue[MQTTMessage] = queue.Queue()
        self._lock = threading.Lock()
        self._subacks: dict[int, concurrent.futures.Future[list[ReasonCode]]] = {}
        self._connected = False
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = lambda _client, _userdata, message: self._messages.put(message)

    def _on_connect(
        self,
        _client: Client,
        _userdata: object,
        _flags: ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._connack.set_result(reason_code)

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: object,
        _flags: DisconnectFlags,
        _reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._disconnected.set()

    def _suback(self, mid: int) -> concurrent.futures.Future[list[ReasonCode]]:
        """The SUBACK future for ``mid``, whichever of caller and callback asks first."""
        with self._lock:
            return self._subacks.setdefault(mid, concurrent.futures.Future())

    def _on_subscribe(
        self,
        _client: Client,
        _userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        self._suback(mid).set_result(reason_codes)

    async def start(self) -> None:
        rc = await asyncio.to_thread(self._client.connect, "127.0.0.1", self._port, 30)
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        self._client.loop_start()
        reason = await asyncio.wait_for(asyncio.wrap_future(self._connack), TIMEOUT)
        assert (reason.is_failure, reason.value) == (False, 0)
        self._connected = True

    async def subscribe(self, topic: str) -> None:
        rc, mid = self._client.subscribe(topic, qos=1)
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert mid is not None
        granted = await asyncio.wait_for(asyncio.wrap_future(self._suback(mid)), TIMEOUT)
        assert [code.value for code in granted] == [1]

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        properties = None
        if user_properties or content_type is not None:
            assert self.mqtt5, "MQTT 3.1.1 has no properties"
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            if user_properties:
                properties.UserProperty = list(user_properties)
            if content_type is not None:
                properties.ContentType = content_type
        info = self._client.publish(topic, payload, qos=qos, properties=properties)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        # Returns once written (QoS 0) or once the PUBACK arrived (QoS 1).
        await asyncio.to_thread(info.wait_for_publish, TIMEOUT)
        assert info.is_published()

    async def receive(self) -> Received:
        message = await asyncio.to_thread(self._messages.get, timeout=TIMEOUT)
        properties = message.properties
        return Received(
            message.topic,
            bytes(message.payload),
            message.qos,
            message.retain,
            tuple(getattr(properties, "UserProperty", ())),
            getattr(properties, "ContentType", None),
        )

    async def close(self) -> None:
        try:
            if self._connected:
                self._client.disconnect()
                assert await asyncio.to_thread(self._disconnected.wait, TIMEOUT)
        finally:
            await asyncio.to_thread(self._client.loop_stop)
            self._ctx.close_wrapped()


# -- AWS IoT Device SDK v2 ---------------------------------------------------------------------


def require_localhost(running: RunningBroker) -> None:
    """awscrt, amqtt and mosquitto send the host they dial as SNI: only 'localhost' works."""
    assert running.config.endpoint == "localhost"


class SdkMqtt3Peer:
    """``awsiot.mqtt_connection_builder``: awscrt's MQTT 3.1.1 connection."""

    mqtt5 = False

    def __init__(self, running: RunningBroker, client_id: str) -> None:
        require_localhost(running)
        self.client_ids = [client_id]
        device = running.create_device(name=client_id)
        self._connection = mqtt_connection_builder.mtls_from_path(
            **sdk_common_args(running, device, client_id),
            clean_session=True,
            keep_alive_secs=30,
        )
        self._messages: queue.Queue[Received] = queue.Queue()
        self._connected = False

    def _on_message(
        self, topic: str, payload: bytes, dup: bool, qos: Any, retain: bool, **_kwargs: Any
    ) -> None:
        self._messages.put(Received(topic, bytes(payload), int(qos), bool(retain)))

    async def start(self) -> None:
        result = await wait_crt_future(self._connection.connect())
        assert result["session_present"] is False
        self._connected = True

    async def subscribe(self, topic: str) -> None:
        future, _packet_id = self._connection.subscribe(
            topic, mqtt.QoS.AT_LEAST_ONCE, callback=self._on_message
        )
        result = await wait_crt_future(future)
        assert result["qos"] == mqtt.QoS.AT_LEAST_ONCE

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        assert not user_properties and content_type is None, "MQTT 3.1.1 has no properties"
        future, _packet_id = self._connection.publish(topic, payload, mqtt.QoS(qos))
        await wait_crt_future(future)

    async def receive(self) -> Received:
        return await asyncio.to_thread(self._messages.get, timeout=TIMEOUT)

    async def close(self) -> None:
        if self._connected:
            await wait_crt_future(self._connection.disconnect())


class SdkMqtt5Peer:
    """``awsiot.mqtt5_client_builder``: awscrt's MQTT 5 client."""

    mqtt5 = True

    def __init__(self, running: RunningBroker, client_id: str) -> None:
        require_localhost(running)
        self.client_ids = [client_id]
        device = running.create_device(name=client_id)
        self._lifecycle = Mqtt5Lifecycle()
        self._messages: queue.Queue[Received] = queue.Queue()
        self._client = mqtt5_client_builder.mtls_from_path(
            **sdk_common_args(running, device, client_id),
            keep_alive_interval_sec=60,
            on_publish_received=self._on_publish_received,
            **self._lifecycle.callbacks(),
        )
        self._started = False

    def _on_publish_received(self, data: Any) -> None:
        packet = data.publish_packet
        self._messages.put(
            Received(
                packet.topic,
                bytes(packet.payload),
                int(packet.qos),
                bool(packet.retain),
                tuple((prop.name, prop.value) for prop in packet.user_properties or ()),
                packet.content_type,
            )
        )

    async def start(self) -> None:
        self._client.start()
        self._started = True
        success = await asyncio.wait_for(asyncio.wrap_future(self._lifecycle.success), TIMEOUT)
        assert int(success.connack_packet.reason_code) == 0

    async def subscribe(self, topic: str) -> None:
        subscription = mqtt5.Subscription(topic_filter=topic, qos=mqtt5.QoS.AT_LEAST_ONCE)
        suback = await wait_crt_future(
            self._client.subscribe(mqtt5.SubscribePacket(subscriptions=[subscription]))
        )
        assert [int(code) for code in suback.reason_codes] == [1]  # GRANTED_QOS_1

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        packet = mqtt5.PublishPacket(
            topic=topic,
            payload=payload,
            qos=mqtt5.QoS(qos),
            user_properties=[mqtt5.UserProperty(name, value) for name, value in user_properties],
            content_type=content_type,
        )
        result = await wait_crt_future(self._client.publish(packet))
        if qos == 1:
            assert int(result.puback.reason_code) == 0

    async def receive(self) -> Received:
        return await asyncio.to_thread(self._messages.get, timeout=TIMEOUT)

    async def close(self) -> None:
        if self._started:
            await stop_mqtt5(self._client, self._lifecycle)
        assert not self._lifecycle.failure.done()


# -- amqtt -------------------------------------------------------------------------------------


class AmqttPeer:
    """amqtt's asyncio ``MQTTClient`` (MQTT 3.1.1), running in the test's own event loop.

    amqtt 0.12 builds its own ``ssl.SSLContext`` from config keys (``connection.cafile``,
    ``connection.certfile``, ``connection.keyfile``; ``check_hostname`` defaults to True) and
    calls ``asyncio.open_connection(host, port, ssl=context)``, so the SNI is always the URI's
    host: it accepts neither a context nor a ``server_hostname``. Hence the broker whose
    endpoint is ``localhost`` and the URI ``mqtts://localhost:<port>``.
    """

    mqtt5 = False

    def __init__(self, running: RunningBroker, client_id: str) -> None:
        require_localhost(running)
        self.client_ids = [client_id]
        device = running.create_device(name=client_id)
        self._client = MQTTClient(
            client_id=client_id,
            config={
                "connection": {
                    "uri": f"mqtts://localhost:{running.port}",
                    "cafile": str(running.root_ca_path),
                    "certfile": str(device.cert_path),
                    "keyfile": str(device.key_path),
                },
                "check_hostname": True,
                "auto_reconnect": False,
            },
        )
        self._connected = False

    async def start(self) -> None:
        assert await asyncio.wait_for(self._client.connect(cleansession=True), TIMEOUT) == 0
        self._connected = True

    async def subscribe(self, topic: str) -> None:
        granted = await asyncio.wait_for(self._client.subscribe([(topic, 1)]), TIMEOUT)
        assert granted == [1]

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        assert not user_properties and content_type is None, "MQTT 3.1.1 has no properties"
        await asyncio.wait_for(self._client.publish(topic, payload, qos=qos), TIMEOUT)

    async def receive(self) -> Received:
        message = await self._client.deliver_message(timeout_duration=TIMEOUT)
        assert message is not None
        return Received(message.topic, bytes(message.data), message.qos, message.retain)

    async def close(self) -> None:
        if self._connected:
            await asyncio.wait_for(self._client.disconnect(), TIMEOUT)


# -- mosquitto_sub / mosquitto_pub -------------------------------------------------------------


class MosquittoPeer:
    """Debian's ``mosquitto_sub``/``mosquitto_pub``, one process per operation, one client id.

    ``-h localhost`` makes libmosquitto send SNI ``localhost`` (it sets SNI from the host name)
    and check the server certificate against it (the broker would refuse a missing SNI).
    ``mosquitto_sub`` prints nothing until a message arrives, so it runs with ``-d``: the debug
    lines ``Client <id> received SUBACK`` then ``Subscribed (mid: 1): 1`` (granted QoS) on its
    stdout say the subscription exists. ``-F %j`` prints the message as one JSON line; ``-C 1``
    makes it send DISCONNECT and exit 0 after one message.
    """

    def __init__(self, running: RunningBroker, client_id: str, version: str) -> None:
        require_localhost(running)
        if MOSQUITTO_SUB is None or MOSQUITTO_PUB is None or STDBUF is None:
            pytest.skip(NO_MOSQUITTO)
        self._sub_path, self._pub_path, self._stdbuf = MOSQUITTO_SUB, MOSQUITTO_PUB, STDBUF
        self.mqtt5 = version == "mqttv5"
        self.client_ids = [client_id]
        device = running.create_device(name=client_id)
        self._args = [
            *("-h", "localhost", "-p", str(running.port)),
            *("--cafile", str(running.root_ca_path)),
            *("--cert", str(device.cert_path), "--key", str(device.key_path)),
            *("-i", client_id, "-V", version, "-d"),
        ]
        self._client_id = client_id
        self._sub: asyncio.subprocess.Process | None = None
        self._sub_output: list[str] = []

    async def start(self) -> None:
        """Each operation connects on its own."""

    async def subscribe(self, topic: str) -> None:
        # Into a pipe, mosquitto_sub's stdout is block-buffered: without stdbuf the debug lines
        # only arrive when it exits. Seen: no SUBACK line within the timeout.
        self._sub = sub = await asyncio.create_subprocess_exec(
            *(self._stdbuf, "-oL", self._sub_path),
            *self._args,
            *("-t", topic, "-q", "1", "-C", "1", "-F", "%j"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert sub.stdout is not None
        while True:
            line = (await asyncio.wait_for(sub.stdout.readline(), TIMEOUT)).decode()
            if not line:
                await sub.wait()
                raise AssertionError(f"mosquitto_sub exited {sub.returncode}: {self._sub_output}")
            self._sub_output.append(line)
            # After "Client <id> received SUBACK", -d prints the granted QoS list.
            if line.startswith("Subscribed (mid: "):
                assert line.rstrip().endswith("): 1"), self._sub_output
                assert f"Client {self._client_id} received SUBACK\n" in self._sub_output
                return

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        user_properties: UserProperties = (),
        content_type: str | None = None,
    ) -> None:
        properties: list[str] = []
        for name, value in user_properties:
            properties += ["-D", "publish", "user-property", name, value]
        if content_type is not None:
            properties += ["-D", "publish", "content-type", content_type]
        if properties:
            assert self.mqtt5, "MQTT 3.1.1 has no properties"
        pub = await asyncio.create_subprocess_exec(
            self._pub_path,
            *self._args,
            *("-t", topic, "-m", payload.decode(), "-q", str(qos), *properties),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(pub.communicate(), TIMEOUT)
        finally:
            if pub.returncode is None:
                pub.kill()
                await pub.wait()
        assert pub.returncode == 0, (out, err)
        if qos == 1:
            assert f"Client {self._client_id} received PUBACK" in out.decode()

    async def receive(self) -> Received:
        sub = self._sub
        assert sub is not None
        out, err = await asyncio.wait_for(sub.communicate(), TIMEOUT)
        self._sub_output += out.decode().splitlines()
        assert sub.returncode == 0, (self._sub_output, err)
        [line] = [line for line in self._sub_output if line.startswith("{")]
        # %j writes user properties as one JSON object whose keys may repeat: keep the pairs.
        document = dict(json.loads(line, object_pairs_hook=list))
        properties = dict(document.get("properties", []))
        return Received(
            document["topic"],
            document["payload"].encode(),
            document["qos"],
            bool(document["retain"]),
            tuple(properties.get("user-properties", [])),
            properties.get("content-type"),
        )

    async def close(self) -> None:
        if self._sub is not None and self._sub.returncode is None:
            self._sub.kill()
            await self._sub.wait()


# -- fixtures and shared checks ----------------------------------------------------------------


@pytest.fixture
async def localhost_broker(tmp_path: Path) -> AsyncIterator[RunningBroker]:
    """A broker whose endpoint is ``localhost``, the one name that resolves to 127.0.0.1."""
    config = dataclasses.replace(make_config(tmp_path), endpoint="localhost")
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


def is_client_disconnect(client_id: str) -> Callable[[Mapping[str, object]], bool]:
    def predicate(record: Mapping[str, object]) -> bool:
        return record["eventType"] == "Disconnect" and record.get("clientId") == client_id

    return predicate


async def assert_clean_sessions(running: RunningBroker, peers: Sequence[Peer]) -> None:
    """Every client id connected (Connect Success), left with a DISCONNECT, and nothing failed."""
    for peer in peers:
        for client_id in peer.client_ids:
            await running.wait_for_record(is_connect_success(client_id))
            closed = await running.wait_for_record(is_client_disconnect(client_id))
            assert closed["reason"] == "CLIENT_INITIATED_DISCONNECT", closed
    assert [r for r in running.records if r["status"] == "Failure"] == []


def topic_for(client_id: str) -> str:
    return f"devices/{client_id}/cmd"


# -- 1. paho round trip through the ENDPOINT SNI -----------------------------------------------


@pytest.mark.parametrize(
    "protocol",
    [
        pytest.param(MQTTProtocolVersion.MQTTv311, id="mqtt311"),
        pytest.param(MQTTProtocolVersion.MQTTv5, id="mqtt5"),
    ],
)
async def test_paho_subscribes_publishes_and_receives(
    running_broker: RunningBroker, protocol: MQTTProtocolVersion
) -> None:
    assert running_broker.config.endpoint == ENDPOINT
    peer = PahoPeer(running_broker, f"paho-{protocol.name}", protocol)
    topic = topic_for(peer.client_ids[0])
    v5 = protocol is MQTTProtocolVersion.MQTTv5
    properties: UserProperties = USER_PROPERTIES if v5 else ()
    content_type = CONTENT_TYPE if v5 else None
    async with started(peer):
        await peer.subscribe(topic)
        await peer.publish(topic, b"at-most-once", 0, properties, content_type)
        await peer.publish(topic, b"at-least-once", 1, properties, content_type)
        received = sorted([await peer.receive(), await peer.receive()], key=lambda m: m.qos)
    assert received == [
        Received(topic, b"at-most-once", 0, False, properties, content_type),
        Received(topic, b"at-least-once", 1, False, properties, content_type),
    ]
    await assert_clean_sessions(running_broker, [peer])


# -- 2-4. each other client on its own --------------------------------------------------------


SDK_PEERS = [
    pytest.param(SdkMqtt3Peer, id="mqtt3"),
    pytest.param(SdkMqtt5Peer, id="mqtt5"),
]


@pytest.mark.parametrize("make_peer", SDK_PEERS)
async def test_sdk_subscribes_publishes_and_receives(
    localhost_broker: RunningBroker, make_peer: Callable[[RunningBroker, str], Peer]
) -> None:
    peer = make_peer(localhost_broker, "sdk-client")
    topic = topic_for("sdk-client")
    properties: UserProperties = USER_PROPERTIES if peer.mqtt5 else ()
    content_type = CONTENT_TYPE if peer.mqtt5 else None
    async with started(peer):
        await peer.subscribe(topic)
        await peer.publish(topic, b"hello sdk", 1, properties, content_type)
        received = await peer.receive()
    assert received == Received(topic, b"hello sdk", 1, False, properties, content_type)
    await assert_clean_sessions(localhost_broker, [peer])


async def test_amqtt_subscribes_publishes_and_receives(localhost_broker: RunningBroker) -> None:
    peer = AmqttPeer(localhost_broker, "amqtt-client")
    topic = topic_for("amqtt-client")
    async with started(peer):
        await peer.subscribe(topic)
        await peer.publish(topic, b"hello amqtt", 1)
        received = await peer.receive()
    assert received == Received(topic, b"hello amqtt", 1, False)
    await assert_clean_sessions(localhost_broker, [peer])


MOSQUITTO_VERSIONS = [
    pytest.param("mqttv311", id="mqtt311"),
    pytest.param("mqttv5", id="mqtt5"),
]


@pytest.mark.skipif(not HAVE_MOSQUITTO, reason=NO_MOSQUITTO)
@pytest.mark.parametrize("version", MOSQUITTO_VERSIONS)
async def test_mosquitto_sub_receives_from_mosquitto_pub(
    localhost_broker: RunningBroker, version: str
) -> None:
    sub = MosquittoPeer(localhost_broker, "sub-1", version)
    pub = MosquittoPeer(localhost_broker, "pub-1", version)
    topic = topic_for("sub-1")
    properties: UserProperties = USER_PROPERTIES if sub.mqtt5 else ()
    content_type = CONTENT_TYPE if sub.mqtt5 else None
    async with started(sub), started(pub):
        await sub.subscribe(topic)
        await pub.publish(topic, b"hello", 1, properties, content_type)
        received = await sub.receive()
    assert received == Received(topic, b"hello", 1, False, properties, content_type)
    await assert_clean_sessions(localhost_broker, [sub, pub])


# -- 5. cross-version and cross-client ---------------------------------------------------------


@pytest.mark.parametrize(
    ("publisher_protocol", "subscriber_protocol"),
    [
        pytest.param(MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5, id="311-to-5"),
        pytest.param(MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311, id="5-to-311"),
    ],
)
async def test_paho_cross_version(
    running_broker: RunningBroker,
    publisher_protocol: MQTTProtocolVersion,
    subscriber_protocol: MQTTProtocolVersion,
) -> None:
    publisher = PahoPeer(running_broker, "paho-publisher", publisher_protocol)
    subscriber = PahoPeer(running_broker, "paho-subscriber", subscriber_protocol)
    topic = topic_for("paho-subscriber")
    # A v5 publisher's properties are dropped for a 3.1.1 subscriber, which has no way to see them.
    properties: UserProperties = USER_PROPERTIES if publisher.mqtt5 else ()
    content_type = CONTENT_TYPE if publisher.mqtt5 else None
    async with started(subscriber), started(publisher):
        await subscriber.subscribe(topic)
        await publisher.publish(topic, b"across versions", 1, properties, content_type)
        received = await subscriber.receive()
    assert received == Received(topic, b"across versions", 1, False)
    await assert_clean_sessions(running_broker, [publisher, subscriber])


PEER_KINDS: dict[str, Callable[[RunningBroker, str], Peer]] = {
    "paho311": lambda running, cid: PahoPeer(running, cid, MQTTProtocolVersion.MQTTv311),
    "paho5": lambda running, cid: PahoPeer(running, cid, MQTTProtocolVersion.MQTTv5),
    "sdk3": SdkMqtt3Peer,
    "sdk5": SdkMqtt5Peer,
    "amqtt": AmqttPeer,
    "mosquitto311": lambda running, cid: MosquittoPeer(running, cid, "mqttv311"),
    "mosquitto5": lambda running, cid: MosquittoPeer(running, cid, "mqttv5"),
}

# Every kind publishes once and subscribes once; v5-to-v5 pairs check the properties too.
CROSS_PAIRS = [
    ("sdk5", "mosquitto311"),
    ("mosquitto311", "paho5"),
    ("paho5", "sdk5"),
    ("sdk3", "amqtt"),
    ("amqtt", "paho311"),
    ("paho311", "sdk3"),
    ("mosquitto5", "sdk5"),
    ("sdk5", "mosquitto5"),
]


@pytest.mark.parametrize(
    ("publisher_kind", "subscriber_kind"),
    [pytest.param(p, s, id=f"{p}-to-{s}") for p, s in CROSS_PAIRS],
)
@pytest.mark.parametrize("qos", [pytest.param(0, id="qos0"), pytest.param(1, id="qos1")])
async def test_cross_client(
    localhost_broker: RunningBroker, publisher_kind: str, subscriber_kind: str, qos: int
) -> None:
    subscriber = PEER_KINDS[subscriber_kind](localhost_broker, f"{subscriber_kind}-sub")
    publisher = PEER_KINDS[publisher_kind](localhost_broker, f"{publisher_kind}-pub")
    topic = topic_for(f"{subscriber_kind}-sub")
    properties: UserProperties = USER_PROPERTIES if publisher.mqtt5 else ()
    content_type = CONTENT_TYPE if publisher.mqtt5 else None
    async with started(subscriber), started(publisher):
        await subscriber.subscribe(topic)
        payload = f"{publisher_kind} says hi at QoS {qos}".encode()
        await publisher.publish(topic, payload, qos, properties, content_type)
        received = await subscriber.receive()
    both_v5 = publisher.mqtt5 and subscriber.mqtt5
    assert received == Received(
        topic,
        payload,
        qos,  # min(publish QoS, granted QoS 1)
        False,
        properties if both_v5 else (),
        content_type if both_v5 else None,
    )
    await assert_clean_sessions(localhost_broker, [subscriber, publisher])
