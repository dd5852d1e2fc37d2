"""IoT policies, things, lifecycle events and the log stream, end to end over real TLS sockets.

Real clients (the AWS IoT Device SDK v2, paho-mqtt) show what a device developer sees; raw MQTT
clients (``RawClient`` from ``test_mqtt_connect``) pin the exact packets. Registry changes are
made the way the CLI makes them: through ``running.broker.registry``, the live
``CertificateRegistry``; the broker notices them on its once-a-second tick.

Nothing sleeps. "Nothing else arrived" is proven with a PINGREQ barrier; waiting for a registry
change to reach live connections uses the hub's ``registry_listeners`` (called right after every
live connection re-read its permissions), bounded by the 5 s AWS-like budget.

AWS payloads checked field by field come from the AWS IoT developer guide, "Lifecycle events"
(https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt, mqtt5
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt5_client_builder, mqtt_connection_builder
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.reasoncodes import ReasonCode

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import write_private_key, write_public_file
from aws_iot_mock.config import Config, DiagnosticsConfig
from aws_iot_mock.core import mqtt_connection
from aws_iot_mock.mqtt.codec import (
    Connack,
    Connect,
    Disconnect,
    Puback,
    Publish,
    Suback,
    Subscribe,
    SubscriptionOptions,
    Unsuback,
    Unsubscribe,
    Will,
)
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.server.app import Broker
from tests.conftest import ENDPOINT, Device, RunningBroker, client_context, make_config
from tests.test_mqtt_connect import RawClient, start
from tests.test_real_clients import (
    Mqtt5Lifecycle,
    paho_client,
    paho_tls_context,
    sdk_common_args,
    stop_mqtt5,
    wait_crt_future,
)

# Generous bound for anything that should take milliseconds on loopback.
TIMEOUT = 5.0
# How soon AWS-like registry changes (revocation, new policy version) must reach live devices.
CHANGE_BUDGET = 5.0

ARN = "arn:aws:iot:us-east-1:123456789012"
THING = "${iot:Connection.Thing.ThingName}"

V311 = pytest.param(4, id="mqtt311")
V5 = pytest.param(5, id="mqtt5")
LEVELS = [V311, V5]

NOT_AUTHORIZED = 0x87  # MQTT 5 CONNACK / PUBACK / SUBACK / DISCONNECT reason code
V3_CONNACK_NOT_AUTHORIZED = 0x05
V3_SUBACK_FAILURE = 0x80


# -- policy documents -------------------------------------------------------------------------


def allow(actions: str | list[str], *resources: str, **condition: object) -> dict[str, object]:
    statement: dict[str, object] = {
        "Effect": "Allow",
        "Action": actions,
        "Resource": list(resources) if len(resources) > 1 else resources[0],
    }
    if condition:
        statement["Condition"] = condition
    return statement


def deny(actions: str | list[str], *resources: str) -> dict[str, object]:
    return {**allow(actions, *resources), "Effect": "Deny"}


def document(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# The classic "client ID must be the thing's name" policy (README, "Connecting a device").
THING_NAME_POLICY = document(
    allow(
        "iot:Connect",
        f"{ARN}:client/{THING}",
        Bool={"iot:Connection.Thing.IsAttached": "true"},
    ),
    allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/devices/{THING}/*"),
    allow("iot:Subscribe", f"{ARN}:topicfilter/devices/{THING}/*"),
)

CONNECT_ANY = allow("iot:Connect", f"{ARN}:client/*")


def certificate_arn(running: RunningBroker, device: Device) -> str:
    return running.broker.registry.describe_certificate(device.certificate_id).certificate_arn


# -- raw clients ------------------------------------------------------------------------------


class Net:
    """Raw MQTT clients against one broker, with any device; all closed at teardown."""

    def __init__(self, running: RunningBroker) -> None:
        self.running = running
        self._clients: list[RawClient] = []
        self._allow_all: Device | None = None

    @property
    def allow_all(self) -> Device:
        """A device whose policy allows everything (watchers, publishers)."""
        if self._allow_all is None:
            self._allow_all = self.running.create_device(name="allow-all")
        return self._allow_all

    async def open(self, device: Device, level: int) -> RawClient:
        """Handshake with ``device``'s certificate and SNI = the broker's endpoint."""
        ctx = client_context(self.running.root_ca_path, device)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1",
                self.running.port,
                ssl=ctx,
                server_hostname=self.running.config.endpoint,
            ),
            TIMEOUT,
        )
        client = RawClient(reader, writer, level)
        self._clients.append(client)
        return client

    async def send_connect(
        self,
        device: Device,
        client_id: str,
        level: int = 5,
        *,
        will: Will | None = None,
        clean: bool = True,
    ) -> RawClient:
        client = await self.open(device, level)
        client.send(Connect("MQTT", level, client_id, clean, 60, will))
        return client

    async def connect(
        self,
        device: Device,
        client_id: str,
        level: int = 5,
        *,
        will: Will | None = None,
        clean: bool = True,
    ) -> tuple[RawClient, Connack]:
        client = await self.send_connect(device, client_id, level, will=will, clean=clean)
        return client, await client.expect(Connack)

    async def connected(
        self,
        device: Device,
        client_id: str,
        level: int = 5,
        *,
        will: Will | None = None,
        clean: bool = True,
    ) -> RawClient:
        client, connack = await self.connect(device, client_id, level, will=will, clean=clean)
        assert connack.reason_code == 0, connack
        return client

    async def watcher(self, *filters: str, client_id: str = "watcher", level: int = 4) -> RawClient:
        """An allow-all client subscribed to ``filters`` at QoS 1."""
        client = await self.connected(self.allow_all, client_id, level)
        packet_id = client.packet_id()
        client.send(Subscribe(packet_id, tuple((f, SubscriptionOptions(qos=1)) for f in filters)))
        assert await client.expect(Suback) == Suback(packet_id, (1,) * len(filters))
        return client

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()


@pytest.fixture
async def net(running_broker: RunningBroker) -> AsyncIterator[Net]:
    clients = Net(running_broker)
    try:
        yield clients
    finally:
        await clients.aclose()


@pytest.fixture
async def deny_net(config: Config) -> AsyncIterator[Net]:
    """A broker with ``diagnostics.connack_on_deny: true``."""
    running = await start(
        dataclasses.replace(config, diagnostics=DiagnosticsConfig(connack_on_deny=True))
    )
    clients = Net(running)
    try:
        yield clients
    finally:
        await clients.aclose()
        await running.broker.stop()


async def refused_without_connack(client: RawClient) -> None:
    """MQTT 3.1.1 on AWS: a denied CONNECT just closes the connection."""
    await client.expect_eof()


async def publish_code(
    client: RawClient, topic: str, payload: bytes, *, retain: bool = False
) -> int:
    """MQTT 5 QoS 1 PUBLISH; the PUBACK's reason code."""
    packet_id = client.packet_id()
    client.send(Publish(topic, payload, qos=1, retain=retain, packet_id=packet_id))
    puback = await client.expect(Puback)
    assert puback.packet_id == packet_id
    return puback.reason_code


async def subscribe_codes(client: RawClient, *filters: str) -> tuple[int, ...]:
    packet_id = client.packet_id()
    client.send(Subscribe(packet_id, tuple((f, SubscriptionOptions(qos=1)) for f in filters)))
    suback = await client.expect(Suback)
    assert suback.packet_id == packet_id
    return suback.reason_codes


async def received(client: RawClient) -> Publish:
    """The next PUBLISH, acknowledged."""
    publish = await client.expect(Publish)
    if publish.packet_id is not None:
        client.send(Puback(publish.packet_id))
    return publish


def matching(**fields: object) -> Callable[[Mapping[str, object]], bool]:
    return lambda record: all(record.get(key) == value for key, value in fields.items())


async def record_with(running: RunningBroker, **fields: object) -> dict[str, object]:
    return await running.wait_for_record(matching(**fields), timeout=TIMEOUT)


def registry_refreshed(running: RunningBroker) -> asyncio.Event:
    """An event set once the broker has applied the next registry change to live connections.

    The device core calls its ``registry_listeners`` on the tick that noticed a change, after
    every live connection re-read its certificate status, policies and things, and after the
    doors refreshed their trusted CAs.
    """
    event = asyncio.Event()
    # Left registered (the broker lives for one test): removing it from inside the call would
    # mutate the list the core is iterating.
    running.broker.core.registry_listeners.append(event.set)
    return event


# == 1. The AWS IoT Device SDK v2 and the "client ID = thing name" policy ======================


@pytest.fixture
async def localhost_broker(tmp_path: Path) -> AsyncIterator[RunningBroker]:
    """A broker whose endpoint is ``localhost``, the name awscrt can resolve and send as SNI."""
    config = dataclasses.replace(make_config(tmp_path), endpoint="localhost")
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


def thing_device(running: RunningBroker) -> Device:
    """A device under THING_NAME_POLICY, attached to thing-1; thing-2 exists, unattached."""
    device = running.create_device(name="thing", policy=THING_NAME_POLICY)
    registry = running.broker.registry
    registry.create_thing("thing-1")
    registry.create_thing("thing-2")
    registry.attach_thing_principal("thing-1", certificate_arn(running, device))
    return device


async def connect_refused_record(running: RunningBroker, client_id: str) -> dict[str, object]:
    record = await record_with(running, eventType="Connect", status="Failure", clientId=client_id)
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    details = str(record["details"])
    assert "iot:Connect" in details
    assert f"{ARN}:client/{client_id}" in details
    return record


async def test_sdk_mqtt3_client_id_must_be_the_attached_thing(
    localhost_broker: RunningBroker,
) -> None:
    running = localhost_broker
    device = thing_device(running)
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_common_args(running, device, "thing-1"), clean_session=True, keep_alive_secs=30
    )
    await wait_crt_future(connection.connect())
    delivered: concurrent.futures.Future[tuple[str, bytes]] = concurrent.futures.Future()

    def on_message(topic: str, payload: bytes, **_kwargs: Any) -> None:
        if not delivered.done():
            delivered.set_result((topic, payload))

    subscribe_future, _ = connection.subscribe(
        "devices/thing-1/cmd", mqtt.QoS.AT_LEAST_ONCE, callback=on_message
    )
    subscribed = await wait_crt_future(subscribe_future)
    assert subscribed["qos"] == mqtt.QoS.AT_LEAST_ONCE
    publish_future, _ = connection.publish("devices/thing-1/cmd", b"hello", mqtt.QoS.AT_LEAST_ONCE)
    await wait_crt_future(publish_future)
    assert await asyncio.wait_for(asyncio.wrap_future(delivered), TIMEOUT) == (
        "devices/thing-1/cmd",
        b"hello",
    )
    await wait_crt_future(connection.disconnect())

    # The same certificate with client ID thing-2 (a thing, but not attached to it).
    intruder = mqtt_connection_builder.mtls_from_path(
        **sdk_common_args(running, device, "thing-2"), clean_session=True, keep_alive_secs=30
    )
    with pytest.raises(AwsCrtError) as raised:
        await wait_crt_future(intruder.connect())
    # No CONNACK at all: awscrt sees the connection close while waiting for one.
    assert raised.value.name == "AWS_ERROR_MQTT_UNEXPECTED_HANGUP", raised.value.name
    record = await connect_refused_record(running, "thing-2")
    assert record["principalId"] == device.certificate_id
    assert not [
        r for r in running.records if r.get("clientId") == "thing-2" and r["status"] == "Success"
    ]


async def test_sdk_mqtt5_client_id_must_be_the_attached_thing(
    localhost_broker: RunningBroker,
) -> None:
    running = localhost_broker
    device = thing_device(running)
    started: list[tuple[Any, Mqtt5Lifecycle]] = []
    try:
        lifecycle = Mqtt5Lifecycle()
        delivered: concurrent.futures.Future[tuple[str, bytes]] = concurrent.futures.Future()

        def on_publish(data: Any) -> None:
            if not delivered.done():
                packet = data.publish_packet
                delivered.set_result((packet.topic, bytes(packet.payload)))

        client = mqtt5_client_builder.mtls_from_path(
            **sdk_common_args(running, device, "thing-1"),
            keep_alive_interval_sec=60,
            on_publish_received=on_publish,
            **lifecycle.callbacks(),
        )
        started.append((client, lifecycle))
        client.start()
        success = await asyncio.wait_for(asyncio.wrap_future(lifecycle.success), TIMEOUT)
        assert success.connack_packet.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        suback = await wait_crt_future(
            client.subscribe(
                mqtt5.SubscribePacket(
                    subscriptions=[
                        mqtt5.Subscription("devices/thing-1/cmd", mqtt5.QoS.AT_LEAST_ONCE),
                        mqtt5.Subscription("devices/thing-2/cmd", mqtt5.QoS.AT_LEAST_ONCE),
                    ]
                )
            )
        )
        assert list(suback.reason_codes) == [
            mqtt5.SubackReasonCode.GRANTED_QOS_1,
            mqtt5.SubackReasonCode.NOT_AUTHORIZED,
        ]
        published = await wait_crt_future(
            client.publish(
                mqtt5.PublishPacket(
                    topic="devices/thing-1/cmd", payload=b"hello", qos=mqtt5.QoS.AT_LEAST_ONCE
                )
            )
        )
        assert published.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert await asyncio.wait_for(asyncio.wrap_future(delivered), TIMEOUT) == (
            "devices/thing-1/cmd",
            b"hello",
        )
        await stop_mqtt5(client, lifecycle)

        refused = Mqtt5Lifecycle()
        intruder = mqtt5_client_builder.mtls_from_path(
            **sdk_common_args(running, device, "thing-2"),
            keep_alive_interval_sec=60,
            # One attempt is enough: keep the client from retrying before it is stopped.
            min_reconnect_delay_ms=60_000,
            **refused.callbacks(),
        )
        started.append((intruder, refused))
        intruder.start()
        failure = await asyncio.wait_for(asyncio.wrap_future(refused.failure), TIMEOUT)
        await stop_mqtt5(intruder, refused)
        assert failure.connack_packet is not None
        assert failure.connack_packet.reason_code == mqtt5.ConnectReasonCode.NOT_AUTHORIZED
        assert int(failure.connack_packet.reason_code) == NOT_AUTHORIZED
        assert not refused.success.done()
        record = await connect_refused_record(running, "thing-2")
        assert record["principalId"] == device.certificate_id
    finally:
        for client, lifecycle in started:
            if not lifecycle.stopped.is_set():
                client.stop()
                assert await asyncio.to_thread(lifecycle.stopped.wait, TIMEOUT)


# == 2. Revoking a live device's certificate ===================================================


class PahoSession:
    """A paho MQTT 3.1.1 client run by hand in a thread until the broker closes it.

    paho's own ``loop_start`` would reconnect after the close; this loop stops instead.
    """

    def __init__(self, running: RunningBroker, device: Device, client_id: str) -> None:
        self.client = paho_client(client_id, MQTTProtocolVersion.MQTTv311)
        self.ctx = paho_tls_context(running.root_ca_path, device, ENDPOINT)
        self.client.tls_set_context(self.ctx)
        self.port = running.port
        self.connack: concurrent.futures.Future[int] = concurrent.futures.Future()
        self.disconnected = threading.Event()
        self._stop = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(
        self,
        _client: Client,
        _userdata: object,
        _flags: ConnectFlags,
        reason_code: ReasonCode,
        _properties: PahoProperties | None,
    ) -> None:
        self.connack.set_result(int(reason_code.value))

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: object,
        _flags: DisconnectFlags,
        _reason_code: ReasonCode,
        _properties: PahoProperties | None,
    ) -> None:
        self.disconnected.set()

    def run(self) -> int:
        """Connect, then run the network loop until the connection ends; paho's last rc."""
        rc = self.client.connect("127.0.0.1", self.port, 60)
        deadline = time.monotonic() + 3 * TIMEOUT
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and not self._stop.is_set()
            and time.monotonic() < deadline
        ):
            rc = self.client.loop(timeout=0.05)
        return int(rc)

    def stop(self) -> None:
        self._stop.set()
        self.ctx.close_wrapped()


async def test_revoked_certificate_disconnects_its_live_devices(net: Net) -> None:
    running = net.running
    loop = asyncio.get_running_loop()
    revoked = running.create_device(name="revoked")
    kept = running.create_device(name="kept")

    # The twin: another certificate's device, which also watches disconnected events and wills.
    bystander = await net.connected(kept, "bystander", 5)
    assert await subscribe_codes(bystander, "$aws/events/presence/disconnected/+", "wills/#") == (
        1,
        1,
    )

    v5 = await net.connected(revoked, "revoked-v5", 5)
    # AWS sends the will on an AUTH_ERROR disconnect of a device that was connected.
    will = Will("wills/revoked", b"revoked", 1, False)
    v311 = await net.connected(revoked, "revoked-v311", 4, will=will)
    paho = PahoSession(running, revoked, "revoked-paho")
    paho_run = asyncio.create_task(asyncio.to_thread(paho.run))
    try:
        assert await asyncio.wait_for(asyncio.wrap_future(paho.connack), TIMEOUT) == 0

        running.broker.registry.update_certificate_status(
            revoked.certificate_id, CertificateStatus.REVOKED
        )
        changed_at = loop.time()

        assert await v5.expect(Disconnect, CHANGE_BUDGET) == Disconnect(NOT_AUTHORIZED)
        await v5.expect_eof()
        await v311.expect_eof(CHANGE_BUDGET)
        rc = await asyncio.wait_for(paho_run, CHANGE_BUDGET)
        assert rc == MQTTErrorCode.MQTT_ERR_CONN_LOST
        assert paho.disconnected.is_set()
        assert loop.time() - changed_at < CHANGE_BUDGET
    finally:
        paho.stop()
        if not paho_run.done():
            await paho_run

    for client_id in ("revoked-v5", "revoked-v311", "revoked-paho"):
        record = await record_with(running, eventType="Disconnect", clientId=client_id)
        assert record["disconnectReason"] == "AUTH_ERROR"
        assert record["reason"] == "CERTIFICATE_STATUS_CHANGED"
        assert record["status"] == "Failure"
        assert record["principalId"] == revoked.certificate_id

    events = {}
    wills = []
    for _ in range(4):
        message = await received(bystander)
        if message.topic.startswith("wills/"):
            wills.append((message.topic, message.payload))
            continue
        event = json.loads(message.payload)
        assert message.topic == f"$aws/events/presence/disconnected/{event['clientId']}"
        events[event["clientId"]] = event
    assert wills == [("wills/revoked", b"revoked")]
    assert set(events) == {"revoked-v5", "revoked-v311", "revoked-paho"}
    for event in events.values():
        assert event["clientInitiatedDisconnect"] is False
        assert event["disconnectReason"] == "AUTH_ERROR"
        assert event["principalIdentifier"] == revoked.certificate_id

    # The other certificate's device is untouched.
    assert await bystander.ping() == []
    assert not [
        r
        for r in running.records
        if r["eventType"] == "Disconnect" and r.get("clientId") == "bystander"
    ]
    # And the revoked certificate can no longer get in.
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError)):
        client = await net.send_connect(revoked, "revoked-again", 4)
        await client.recv_packet()
    await record_with(running, reason="CERTIFICATE_NOT_ACTIVE", principalId=revoked.certificate_id)


# == 3. Denials on the wire ===================================================================

# Allowed: everything under allowed/ (publish, subscribe, receive); nothing under denied/.
SCOPED_POLICY = document(
    CONNECT_ANY,
    allow(["iot:Publish", "iot:Receive"], f"{ARN}:topic/allowed/*"),
    allow("iot:Subscribe", f"{ARN}:topicfilter/allowed/*"),
)


@pytest.mark.parametrize("level", LEVELS)
async def test_denied_publish(net: Net, level: int) -> None:
    running = net.running
    watcher = await net.watcher("denied/#", "allowed/#")
    device = running.create_device(name="scoped", policy=SCOPED_POLICY)
    client = await net.connected(device, "scoped", level)
    if level == 5:
        assert await publish_code(client, "denied/x", b"no") == NOT_AUTHORIZED
        assert await client.ping() == []  # still connected
        # The twin: an allowed topic on the same connection.
        assert await publish_code(client, "allowed/x", b"yes") == 0
        assert (await received(watcher)).topic == "allowed/x"
    else:
        # MQTT 3.1.1 has no way to refuse one PUBLISH: AWS disconnects the client.
        packet_id = client.packet_id()
        client.send(Publish("denied/x", b"no", qos=1, packet_id=packet_id))
        await client.expect_eof()
        closed = await record_with(running, eventType="Disconnect", clientId="scoped")
        assert closed["reason"] == "AUTHORIZATION_FAILURE"
        assert closed["disconnectReason"] == "AUTH_ERROR"
        # The twin: a fresh 3.1.1 connection publishing where it may.
        again = await net.connected(device, "scoped", 4)
        await again.publish("allowed/x", b"yes")
        assert (await received(watcher)).topic == "allowed/x"
    assert await watcher.ping() == []  # the denied message was never routed
    record = await record_with(
        running, eventType="Publish-In", status="Failure", topicName="denied/x"
    )
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert record["clientId"] == "scoped"
    assert "iot:Publish" in str(record["details"])
    assert f"{ARN}:topic/denied/x" in str(record["details"])


@pytest.mark.parametrize("level", LEVELS)
async def test_denied_subscribe(net: Net, level: int) -> None:
    running = net.running
    device = running.create_device(name="scoped", policy=SCOPED_POLICY)
    client = await net.connected(device, "scoped", level)
    if level == 5:
        codes = await subscribe_codes(client, "allowed/a", "denied/b", "allowed/c")
        assert codes == (1, NOT_AUTHORIZED, 1)
        publisher = await net.connected(net.allow_all, "publisher", 4)
        await publisher.publish("denied/b", b"not for you")
        await publisher.publish("allowed/c", b"for you")
        delivered = await received(client)
        assert (delivered.topic, delivered.payload) == ("allowed/c", b"for you")
        assert await client.ping() == []
    else:
        packet_id = client.packet_id()
        client.send(
            Subscribe(
                packet_id,
                (
                    ("allowed/a", SubscriptionOptions(qos=1)),
                    ("denied/b", SubscriptionOptions(qos=1)),
                ),
            )
        )
        await client.expect_eof()  # no SUBACK: AWS disconnects an MQTT 3.1.1 client
        closed = await record_with(running, eventType="Disconnect", clientId="scoped")
        assert closed["reason"] == "AUTHORIZATION_FAILURE"
        assert closed["disconnectReason"] == "AUTH_ERROR"
    record = await record_with(
        running, eventType="Subscribe", status="Failure", topicName="denied/b"
    )
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert "iot:Subscribe" in str(record["details"])
    assert f"{ARN}:topicfilter/denied/b" in str(record["details"])


@pytest.mark.parametrize("level", LEVELS)
async def test_denied_connect(net: Net, level: int) -> None:
    running = net.running
    device = running.create_device(
        name="dev-only", policy=document(allow("iot:Connect", f"{ARN}:client/dev-*"))
    )
    client = await net.send_connect(device, "intruder", level)
    if level == 5:
        assert await client.expect(Connack) == Connack(False, NOT_AUTHORIZED)
        await client.expect_eof()
    else:
        await refused_without_connack(client)
    record = await connect_refused_record(running, "intruder")
    assert record["logLevel"] == "ERROR"
    # The twin: a client ID the policy allows.
    await net.connected(device, "dev-1", level)


async def test_connack_on_deny_explains_mqtt311_refusals(deny_net: Net) -> None:
    running = deny_net.running
    device = running.create_device(
        name="scoped",
        policy=document(
            allow("iot:Connect", f"{ARN}:client/dev-*"),
            allow("iot:Subscribe", f"{ARN}:topicfilter/allowed/*"),
        ),
    )
    client, connack = await deny_net.connect(device, "intruder", 4)
    assert connack == Connack(False, V3_CONNACK_NOT_AUTHORIZED)
    await client.expect_eof()
    await connect_refused_record(running, "intruder")

    client = await deny_net.connected(device, "dev-1", 4)
    assert await subscribe_codes(client, "allowed/a", "denied/b") == (1, V3_SUBACK_FAILURE)
    assert await client.ping() == []  # still connected
    record = await record_with(running, eventType="Subscribe", status="Failure")
    assert record["topicName"] == "denied/b"
    assert record["reason"] == "AUTHORIZATION_FAILURE"

    # A denied PUBLISH still disconnects (the diagnostics cover CONNECT and SUBSCRIBE only).
    client.send(Publish("allowed/a", b"x", qos=1, packet_id=client.packet_id()))
    await client.expect_eof()

    # MQTT 5 is unchanged: it always had a reason code for it.
    v5, connack = await deny_net.connect(device, "intruder", 5)
    assert connack == Connack(False, NOT_AUTHORIZED)
    v5 = await deny_net.connected(device, "dev-2", 5)
    assert await subscribe_codes(v5, "denied/b") == (NOT_AUTHORIZED,)


def _deaf_device(running: RunningBroker) -> Device:
    """A device that may subscribe to anything but receive only on ``other/*``."""
    return running.create_device(
        name="deaf",
        policy=document(
            CONNECT_ANY,
            allow("iot:Subscribe", f"{ARN}:topicfilter/*"),
            allow("iot:Receive", f"{ARN}:topic/other/*"),
        ),
    )


async def test_receive_is_checked_at_each_delivery(net: Net) -> None:
    running = net.running
    receiver = running.create_device(
        name="receiver",
        policy=document(
            CONNECT_ANY,
            allow("iot:Subscribe", f"{ARN}:topicfilter/*"),
            allow("iot:Receive", f"{ARN}:topic/shared/*", f"{ARN}:topic/other/*"),
        ),
    )
    deaf = _deaf_device(running)
    with_receive = await net.connected(receiver, "with-receive", 4)
    without = await net.connected(deaf, "without-receive", 5)
    assert await subscribe_codes(with_receive, "shared/#") == (1,)
    # Subscribing is allowed: iot:Receive is checked per message, not at SUBSCRIBE.
    assert await subscribe_codes(without, "shared/#", "other/#") == (1, 1)
    publisher = await net.connected(net.allow_all, "publisher", 4)

    await publisher.publish("shared/x", b"secret")
    assert (await received(with_receive)).payload == b"secret"
    await publisher.publish("other/y", b"public")
    delivered = await received(without)
    assert (delivered.topic, delivered.payload) == ("other/y", b"public")
    assert await without.ping() == []

    record = await record_with(
        running, eventType="Publish-Out", status="Failure", clientId="without-receive"
    )
    assert record["topicName"] == "shared/x"
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert "iot:Receive" in str(record["details"])
    await record_with(
        running,
        eventType="Publish-Out",
        status="Success",
        clientId="with-receive",
        topicName="shared/x",
    )


async def test_receive_denials_are_logged_once_per_topic_in_bounded_memory(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 11 item 4: the topics a connection was denied iot:Receive on were remembered for its
    # whole life (to log each once). It now remembers at most _RECEIVE_DENIALS_LOGGED topics,
    # then starts over: a denial may be logged again, memory stays bounded.
    monkeypatch.setattr(mqtt_connection, "_RECEIVE_DENIALS_LOGGED", 2)
    running = net.running
    deaf = _deaf_device(running)
    without = await net.connected(deaf, "without-receive", 4)
    assert await subscribe_codes(without, "shared/#", "other/#") == (1, 1)
    publisher = await net.connected(net.allow_all, "publisher", 4)

    def denials(topic: str) -> int:
        denied = matching(
            eventType="Publish-Out", status="Failure", clientId="without-receive", topicName=topic
        )
        return sum(1 for record in running.records if denied(record))

    async def publish_then_mark(topics: tuple[str, ...], mark: bytes) -> None:
        for topic in topics:
            await publisher.publish(topic, b"denied")
        # Delivered after them: each message before it has been checked (and logged) by now.
        await publisher.publish("other/mark", mark)
        assert (await received(without)).payload == mark

    await publish_then_mark(("shared/a", "shared/a", "shared/b"), b"1")
    # The twin: within the bound, a topic's denial is logged once.
    assert (denials("shared/a"), denials("shared/b")) == (1, 1)
    await publish_then_mark(("shared/c", "shared/a"), b"2")
    # A third topic: the memory started over, so shared/a's next denial is logged again.
    assert (denials("shared/c"), denials("shared/a")) == (1, 2)


async def test_retain_needs_retain_publish(net: Net) -> None:
    running = net.running
    publish_only = running.create_device(
        name="publish-only",
        policy=document(CONNECT_ANY, allow("iot:Publish", f"{ARN}:topic/retained/*")),
    )
    retainer = running.create_device(
        name="retainer",
        policy=document(
            CONNECT_ANY, allow(["iot:Publish", "iot:RetainPublish"], f"{ARN}:topic/retained/*")
        ),
    )
    plain = await net.connected(publish_only, "plain", 5)
    assert await publish_code(plain, "retained/a", b"kept?", retain=True) == NOT_AUTHORIZED
    assert await publish_code(plain, "retained/a", b"not retained") == 0  # the twin
    record = await record_with(running, eventType="Publish-In", status="Failure")
    assert record["topicName"] == "retained/a"
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert "iot:RetainPublish" in str(record["details"])

    retaining = await net.connected(retainer, "retaining", 5)
    assert await publish_code(retaining, "retained/b", b"kept", retain=True) == 0

    late = await net.watcher("retained/a", "retained/b", client_id="late")
    delivered = await received(late)
    assert (delivered.topic, delivered.payload, delivered.retain) == ("retained/b", b"kept", True)
    assert await late.ping() == []


@pytest.mark.parametrize("level", LEVELS)
async def test_will_topic_must_be_publishable(net: Net, level: int) -> None:
    running = net.running
    watcher = await net.watcher(
        "$aws/events/presence/connect_failed/+", "$aws/events/presence/connected/+"
    )
    device = running.create_device(
        name="willing",
        policy=document(CONNECT_ANY, allow("iot:Publish", f"{ARN}:topic/wills/allowed")),
    )
    will = Will("wills/denied", b"gone", 1, False)
    client = await net.send_connect(device, "willing", level, will=will)
    if level == 5:
        assert await client.expect(Connack) == Connack(False, NOT_AUTHORIZED)
        await client.expect_eof()
    else:
        await refused_without_connack(client)
    record = await record_with(running, eventType="Connect", status="Failure", clientId="willing")
    assert record["reason"] == "AUTHORIZATION_FAILURE"
    assert "iot:Publish" in str(record["details"])
    assert f"{ARN}:topic/wills/denied" in str(record["details"])
    event = await received(watcher)
    assert event.topic == "$aws/events/presence/connect_failed/willing"
    payload = json.loads(event.payload)
    assert payload["connectFailureReason"] == "AUTHORIZATION_FAILED"
    assert payload["principalIdentifier"] == device.certificate_id

    # The twin: a will topic the policy allows.
    await net.connected(
        device, "willing", level, will=dataclasses.replace(will, topic="wills/allowed")
    )
    event = await received(watcher)
    assert event.topic == "$aws/events/presence/connected/willing"


# == 4. Live policy changes ===================================================================


async def test_policy_changes_apply_to_live_connections(net: Net) -> None:
    running = net.running
    registry = running.broker.registry
    loop = asyncio.get_running_loop()
    device = running.create_device(name="live", policy=None)
    arn = certificate_arn(running, device)
    registry.create_policy(
        "live-policy", document(CONNECT_ANY, allow("iot:Publish", f"{ARN}:topic/a/*"))
    )
    registry.attach_policy("live-policy", arn)
    client = await net.connected(device, "live", 5)
    assert await publish_code(client, "a/b", b"1") == 0

    refreshed = registry_refreshed(running)
    version = registry.create_policy_version(
        "live-policy",
        document(
            CONNECT_ANY,
            allow("iot:Publish", f"{ARN}:topic/a/*"),
            deny("iot:Publish", f"{ARN}:topic/a/b"),
        ),
    )
    registry.set_default_policy_version("live-policy", version.version_id)
    changed_at = loop.time()
    await asyncio.wait_for(refreshed.wait(), CHANGE_BUDGET)
    assert await publish_code(client, "a/b", b"2") == NOT_AUTHORIZED
    assert loop.time() - changed_at < CHANGE_BUDGET
    assert await publish_code(client, "a/c", b"3") == 0  # the twin: only a/b is denied
    record = await record_with(running, eventType="Publish-In", status="Failure")
    assert record["topicName"] == "a/b"
    assert "live-policy" in str(record["details"])

    refreshed = registry_refreshed(running)
    registry.detach_policy("live-policy", arn)
    _, connack = await net.connect(device, "live-2", 5)
    assert connack == Connack(False, NOT_AUTHORIZED)
    await connect_refused_record(running, "live-2")
    # The live connection loses everything too, within the same budget.
    await asyncio.wait_for(refreshed.wait(), CHANGE_BUDGET)
    assert await publish_code(client, "a/c", b"4") == NOT_AUTHORIZED


# == 5. Lifecycle events =====================================================================

CONNECTED_KEYS = [
    "clientId",
    "timestamp",
    "eventType",
    "sessionIdentifier",
    "principalIdentifier",
    "ipAddress",
    "versionNumber",
]
DISCONNECTED_KEYS = [
    "clientId",
    "timestamp",
    "eventType",
    "sessionIdentifier",
    "principalIdentifier",
    "clientInitiatedDisconnect",
    "disconnectReason",
    "versionNumber",
]
CONNECT_FAILED_KEYS = [
    "clientId",
    "timestamp",
    "eventType",
    "connectFailureReason",
    "principalIdentifier",
    "sessionIdentifier",
    "ipAddress",
]
SUBSCRIPTION_KEYS = [
    "clientId",
    "timestamp",
    "eventType",
    "sessionIdentifier",
    "principalIdentifier",
    "topics",
]


async def next_event(watcher: RawClient, kind: str, client_id: str) -> dict[str, Any]:
    """The next lifecycle event: on the topic for ``kind`` and ``client_id``, checked."""
    publish = await received(watcher)
    section = "subscriptions" if kind in ("subscribed", "unsubscribed") else "presence"
    assert publish.topic == f"$aws/events/{section}/{kind}/{client_id}"
    assert publish.qos == 1
    event: dict[str, Any] = json.loads(publish.payload)
    keys = {
        "connected": CONNECTED_KEYS,
        "disconnected": DISCONNECTED_KEYS,
        "connect_failed": CONNECT_FAILED_KEYS,
        "subscribed": SUBSCRIPTION_KEYS,
        "unsubscribed": SUBSCRIPTION_KEYS,
    }[kind]
    assert list(event) == keys  # AWS's fields, in AWS's order, nothing else
    assert event["clientId"] == client_id
    assert event["eventType"] == kind
    timestamp = event["timestamp"]
    assert isinstance(timestamp, int)
    assert abs(timestamp - time.time() * 1000) < 5_000  # epoch milliseconds, now
    assert str(uuid.UUID(event["sessionIdentifier"])) == event["sessionIdentifier"]
    if "ipAddress" in event:
        assert event["ipAddress"] == "127.0.0.1"
    if "versionNumber" in event:
        assert isinstance(event["versionNumber"], int)
        assert event["versionNumber"] >= 0
    return event


async def test_lifecycle_events_field_by_field(net: Net) -> None:
    running = net.running
    watcher = await net.connected(net.allow_all, "watcher", 5)
    assert await subscribe_codes(watcher, "$aws/events/#") == (1,)
    own = await next_event(watcher, "subscribed", "watcher")
    assert own["topics"] == ["$aws/events/#"]
    assert own["principalIdentifier"] == net.allow_all.certificate_id

    device = running.create_device(
        name="dev",
        policy=document(allow("iot:*", "*"), deny("iot:Connect", f"{ARN}:client/bad-*")),
    )
    principal = device.certificate_id

    # connected, subscribed, unsubscribed, disconnected (client-initiated)
    client = await net.connected(device, "dev-1", 5)
    first = await next_event(watcher, "connected", "dev-1")
    assert first["principalIdentifier"] == principal
    session = first["sessionIdentifier"]
    packet_id = client.packet_id()
    client.send(
        Subscribe(
            packet_id, (("t/1", SubscriptionOptions(qos=1)), ("t/2", SubscriptionOptions(qos=0)))
        )
    )
    assert await client.expect(Suback) == Suback(packet_id, (1, 0))
    subscribed = await next_event(watcher, "subscribed", "dev-1")
    assert subscribed["topics"] == ["t/1", "t/2"]
    assert (subscribed["sessionIdentifier"], subscribed["principalIdentifier"]) == (
        session,
        principal,
    )
    packet_id = client.packet_id()
    client.send(Unsubscribe(packet_id, ("t/1",)))
    assert (await client.expect(Unsuback)).packet_id == packet_id
    unsubscribed = await next_event(watcher, "unsubscribed", "dev-1")
    assert unsubscribed["topics"] == ["t/1"]
    assert unsubscribed["sessionIdentifier"] == session
    client.send(Disconnect())
    await client.expect_eof()
    gone = await next_event(watcher, "disconnected", "dev-1")
    assert gone["sessionIdentifier"] == session
    assert gone["principalIdentifier"] == principal
    assert gone["versionNumber"] == first["versionNumber"]
    assert gone["clientInitiatedDisconnect"] is True
    assert gone["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"

    # reconnection: a new session, a higher version; a dropped socket is CONNECTION_LOST
    client = await net.connected(device, "dev-1", 4)
    second = await next_event(watcher, "connected", "dev-1")
    assert second["sessionIdentifier"] != session
    assert second["versionNumber"] > first["versionNumber"]
    client.drop()
    lost = await next_event(watcher, "disconnected", "dev-1")
    assert lost["sessionIdentifier"] == second["sessionIdentifier"]
    assert lost["versionNumber"] == second["versionNumber"]
    assert lost["clientInitiatedDisconnect"] is False
    assert lost["disconnectReason"] == "CONNECTION_LOST"

    # takeover: the old connection's disconnected (DUPLICATE_CLIENTID), then the new connected
    await net.connected(device, "dev-1", 5)
    third = await next_event(watcher, "connected", "dev-1")
    assert third["versionNumber"] > second["versionNumber"]
    await net.connected(device, "dev-1", 5)
    taken_over = await next_event(watcher, "disconnected", "dev-1")
    assert taken_over["sessionIdentifier"] == third["sessionIdentifier"]
    assert taken_over["versionNumber"] == third["versionNumber"]
    assert taken_over["clientInitiatedDisconnect"] is False
    assert taken_over["disconnectReason"] == "DUPLICATE_CLIENTID"
    fourth = await next_event(watcher, "connected", "dev-1")
    assert fourth["versionNumber"] > third["versionNumber"]
    assert (
        len(
            {
                first["sessionIdentifier"],
                second["sessionIdentifier"],
                third["sessionIdentifier"],
                fourth["sessionIdentifier"],
            }
        )
        == 4
    )

    # connect_failed
    _, connack = await net.connect(device, "bad-1", 5)
    assert connack == Connack(False, NOT_AUTHORIZED)
    failed = await next_event(watcher, "connect_failed", "bad-1")
    assert failed["connectFailureReason"] == "AUTHORIZATION_FAILED"
    assert failed["principalIdentifier"] == principal
    assert await watcher.ping() == []


async def test_client_ids_with_wildcards_produce_no_lifecycle_events(net: Net) -> None:
    running = net.running
    watcher = await net.connected(net.allow_all, "watcher", 5)
    assert await subscribe_codes(watcher, "$aws/events/#") == (1,)
    await next_event(watcher, "subscribed", "watcher")
    device = running.create_device(
        name="dev",
        policy=document(allow("iot:*", "*"), deny("iot:Connect", f"{ARN}:client/bad*")),
    )
    for client_id, level in [("dev+1", 5), ("dev#1", 4), ("+", 5), ("#", 4)]:
        # AWS client IDs may contain + and # (they are plain UTF-8): accepted, just silent.
        client = await net.connected(device, client_id, level)
        assert await subscribe_codes(client, "t/1") == (1,)
        packet_id = client.packet_id()
        client.send(Unsubscribe(packet_id, ("t/1",)))
        assert (await client.expect(Unsuback)).packet_id == packet_id
        client.send(Disconnect())
        await client.expect_eof()
    dropped = await net.connected(device, "drop+me", 4)
    dropped.drop()
    await record_with(running, eventType="Disconnect", clientId="drop+me")
    _, connack = await net.connect(device, "bad+1", 5)
    assert connack == Connack(False, NOT_AUTHORIZED)
    await connect_refused_record(running, "bad+1")

    # The sentinel: the next event the watcher sees is this client's.
    await net.connected(device, "sentinel", 5)
    await next_event(watcher, "connected", "sentinel")
    assert await watcher.ping() == []


async def test_lifecycle_events_need_receive_like_any_topic(net: Net) -> None:
    running = net.running
    subscribe_only = running.create_device(
        name="subscribe-only",
        policy=document(CONNECT_ANY, allow("iot:Subscribe", f"{ARN}:topicfilter/$aws/events/*")),
    )
    deaf = await net.connected(subscribe_only, "deaf-watcher", 5)
    assert await subscribe_codes(deaf, "$aws/events/presence/connected/+") == (1,)
    watcher = await net.watcher("$aws/events/presence/connected/+")  # the twin, with Receive
    await net.connected(net.allow_all, "visible", 4)
    await next_event(watcher, "connected", "visible")
    assert await deaf.ping() == []
    for client_id in ("watcher", "visible"):
        record = await record_with(
            running,
            eventType="Publish-Out",
            status="Failure",
            clientId="deaf-watcher",
            topicName=f"$aws/events/presence/connected/{client_id}",
        )
        assert record["reason"] == "AUTHORIZATION_FAILURE"


# == 6. Certificates from the user's own CA ==================================================


def foreign_device(
    directory: Path, ca: pki.CertificateAuthority, name: str
) -> tuple[Device, bytes]:
    issued = pki.issue_device_certificate(ca)
    assert issued.private_key_pem is not None
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    write_public_file(cert_path, issued.certificate_pem)
    write_private_key(key_path, issued.private_key_pem)
    return Device(issued.certificate_id, cert_path, key_path), issued.certificate_pem


async def try_connect(net: Net, device: Device, client_id: str) -> bool:
    """One attempt: True on CONNACK 0, False when the handshake or CONNECT is refused."""
    try:
        client, connack = await net.connect(device, client_id, 4)
    except (ssl.SSLError, ConnectionError, EOFError):
        return False
    assert connack.reason_code == 0
    assert await client.ping() == []
    return True


async def test_device_from_a_registered_ca_connects(net: Net, tmp_path: Path) -> None:
    running = net.running
    registry = running.broker.registry
    loop = asyncio.get_running_loop()
    user_ca = pki.create_root_ca(common_name="The user's own CA")
    device, certificate_pem = foreign_device(tmp_path, user_ca, "own")

    refreshed = registry_refreshed(running)
    ca_record = registry.register_ca_certificate(user_ca.certificate_pem, set_as_active=True)
    record = registry.register_certificate(
        certificate_pem, CertificateStatus.ACTIVE, ca_pem=user_ca.certificate_pem
    )
    assert record.ca_certificate_id == ca_record.certificate_id
    registry.create_policy("own-policy", document(allow("iot:*", "*")))
    registry.attach_policy("own-policy", record.certificate_arn)
    registered_at = loop.time()

    # Poll: try now; after a refusal wait for the broker's next look at the registry (when the
    # door rebuilds its trust store), and try again; give up after the budget.
    connected = await try_connect(net, device, "own-ca-device")
    while not connected:
        remaining = CHANGE_BUDGET - (loop.time() - registered_at)
        assert remaining > 0, "the registered CA was not trusted within 5 s"
        await asyncio.wait_for(refreshed.wait(), remaining)
        refreshed = registry_refreshed(running)
        connected = await try_connect(net, device, "own-ca-device")
    assert loop.time() - registered_at < CHANGE_BUDGET
    success = await record_with(
        running, eventType="Connect", status="Success", clientId="own-ca-device"
    )
    assert success["principalId"] == device.certificate_id

    # The twin: a certificate from a CA nobody registered, even if the certificate itself is
    # registered and ACTIVE, fails the chain check.
    stranger_ca = pki.create_root_ca(common_name="Nobody registered this CA")
    stranger, stranger_pem = foreign_device(tmp_path, stranger_ca, "stranger")
    registry.register_certificate(stranger_pem, CertificateStatus.ACTIVE)
    untrusted = matching(
        eventType="Connect", status="Failure", reason="CLIENT_CERTIFICATE_UNTRUSTED"
    )
    before = len([r for r in running.records if untrusted(r)])
    assert not await try_connect(net, stranger, "stranger")
    await running.wait_for_record(
        lambda r: untrusted(r) and len([x for x in running.records if untrusted(x)]) > before,
        TIMEOUT,
    )
    assert not [r for r in running.records if r.get("clientId") == "stranger"]


# == 7. The log stream =======================================================================


async def pubsub_round(net: Net, publisher_device: Device) -> tuple[RawClient, RawClient]:
    """Subscribe, publish, deliver, unsubscribe; returns (subscriber, publisher)."""
    subscriber = await net.connected(net.allow_all, "log-sub", 4)
    await subscriber.subscribe("log/t")
    publisher = await net.connected(publisher_device, "log-pub", 5)
    await publisher.publish("log/t", b"x")
    assert (await received(subscriber)).topic == "log/t"
    packet_id = subscriber.packet_id()
    subscriber.send(Unsubscribe(packet_id, ("log/t",)))
    assert (await subscriber.expect(Unsuback)).packet_id == packet_id
    return subscriber, publisher


SUCCESS_EVENTS = {"Subscribe", "Publish-In", "Publish-Out", "Unsubscribe"}


async def test_info_log_has_a_success_line_per_operation(config: Config) -> None:
    info = dataclasses.replace(config.logging, level="INFO")
    running = await start(dataclasses.replace(config, logging=info))
    net = Net(running)
    try:
        subscriber, publisher = await pubsub_round(net, net.allow_all)
        await record_with(running, eventType="Unsubscribe", clientId="log-sub")
        lines = [r for r in running.file_records() if r["eventType"] in SUCCESS_EVENTS]
        by_event = {str(r["eventType"]): r for r in lines}
        assert len(lines) == len(by_event) == 4, lines
        expected_client = {
            "Subscribe": subscriber,
            "Publish-In": publisher,
            "Publish-Out": subscriber,
            "Unsubscribe": subscriber,
        }
        for event_type, record in by_event.items():
            client = expected_client[event_type]
            assert record["status"] == "Success"
            assert record["logLevel"] == "INFO"
            assert record["protocol"] == "MQTT"
            assert record["topicName"] == "log/t"
            assert record["clientId"] == ("log-pub" if client is publisher else "log-sub")
            assert record["principalId"] == net.allow_all.certificate_id
            assert record["sourceIp"] == "127.0.0.1"
            assert record["sourcePort"] == client.local_port
    finally:
        await net.aclose()
        await running.broker.stop()


async def test_error_log_has_failures_only(config: Config) -> None:
    error = dataclasses.replace(config.logging, level="ERROR")
    running = await start(dataclasses.replace(config, logging=error))
    net = Net(running)
    try:
        scoped = running.create_device(
            name="scoped", policy=document(CONNECT_ANY, allow("iot:Publish", f"{ARN}:topic/log/t"))
        )
        _, publisher = await pubsub_round(net, scoped)
        assert await publish_code(publisher, "log/denied", b"x") == NOT_AUTHORIZED
        await record_with(running, eventType="Publish-In", status="Failure")
        lines = running.file_records()
        assert [(r["eventType"], r["topicName"]) for r in lines] == [("Publish-In", "log/denied")]
        assert {r["logLevel"] for r in lines} == {"ERROR"}
        # At ERROR the broker does not even build the per-message Success records.
        assert not [
            r
            for r in running.records
            if r["eventType"] in SUCCESS_EVENTS and r["status"] == "Success"
        ]
        # Nor the door's: accepted handshakes, CONNECTs and clean disconnects are INFO too.
        assert not [r for r in running.records if r["status"] == "Success"]
    finally:
        await net.aclose()
        await running.broker.stop()


async def test_receive_is_checked_when_queued_messages_are_delivered(net: Net) -> None:
    """AWS checks iot:Receive "every time a message is delivered", queued messages included."""
    running = net.running
    registry = running.broker.registry
    device = running.create_device(name="offline", policy=None)
    arn = certificate_arn(running, device)
    subscribe = allow("iot:Subscribe", f"{ARN}:topicfilter/q/*")
    registry.create_policy(
        "offline-policy",
        document(CONNECT_ANY, subscribe, allow("iot:Receive", f"{ARN}:topic/q/*")),
    )
    registry.attach_policy("offline-policy", arn)
    subscriber = await net.connected(device, "offline-sub", 4, clean=False)
    await subscriber.subscribe("q/t")
    subscriber.send(Disconnect())
    await subscriber.expect_eof()

    # While the device is offline its policy loses iot:Receive, then a message arrives.
    version = registry.create_policy_version(
        "offline-policy", document(CONNECT_ANY, subscribe), set_as_default=True
    )
    assert version.is_default
    publisher = await net.connected(net.allow_all, "publisher", 4)
    await publisher.publish("q/t", b"after the revocation")

    subscriber, connack = await net.connect(device, "offline-sub", 4, clean=False)
    assert connack == Connack(True, 0)
    # Expected (AWS): not delivered, and a Publish-Out failure logged.
    assert await subscriber.ping() == []
