"""Real MQTT clients against the running broker: paho-mqtt and the AWS IoT Device SDK v2.

The broker runs in the test's event loop, so every blocking client call runs in another thread
(``asyncio.to_thread``, the client's own network thread, or awscrt's native threads) and the test
awaits its result with a timeout. Nothing sleeps: waits are on futures and events.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt5
from awscrt.exceptions import AwsCrtError
from awsiot import mqtt5_client_builder, mqtt_connection_builder
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.server.app import Broker
from aws_iot_mock.testing.clients import SniContext
from tests.conftest import ENDPOINT, Device, RunningBroker, make_config

# Generous bound for anything that should happen in milliseconds on loopback.
TIMEOUT = 10.0

PAHO_PROTOCOLS = [
    pytest.param(MQTTProtocolVersion.MQTTv311, id="mqtt311"),
    pytest.param(MQTTProtocolVersion.MQTTv5, id="mqtt5"),
]


# -- paho-mqtt ---------------------------------------------------------------------------------


# paho dials 127.0.0.1 (the endpoint name has no DNS record here) but must send the endpoint
# as SNI and verify it: the plugin's SNI-fixing context does exactly that.
FixedSniContext = SniContext


def paho_tls_context(root_ca: Path, device: Device, server_name: str) -> FixedSniContext:
    ctx = FixedSniContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.server_name = server_name
    ctx.wrapped = []
    ctx.load_verify_locations(cafile=str(root_ca))
    ctx.load_cert_chain(str(device.cert_path), str(device.key_path))
    return ctx


def paho_client(client_id: str, protocol: MQTTProtocolVersion) -> Client:
    return Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
    )


def is_connect_success(client_id: str) -> Callable[[Mapping[str, object]], bool]:
    def predicate(record: Mapping[str, object]) -> bool:
        return (
            record["eventType"] == "Connect"
            and record["status"] == "Success"
            and record.get("clientId") == client_id
        )

    return predicate


def is_connect_failure(reason: Reason) -> Callable[[Mapping[str, object]], bool]:
    def predicate(record: Mapping[str, object]) -> bool:
        return (
            record["eventType"] == "Connect"
            and record["status"] == "Failure"
            and record["reason"] == reason.name
        )

    return predicate


def mqtt_successes(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """Connect Success records written for an accepted MQTT CONNECT (they carry clientId)."""
    return [r for r in records if r["status"] == "Success" and "clientId" in r]


@pytest.mark.parametrize("protocol", PAHO_PROTOCOLS)
async def test_paho_connects_with_sni_and_registered_certificate(
    running_broker: RunningBroker, protocol: MQTTProtocolVersion
) -> None:
    device = running_broker.create_device()
    client_id = f"paho-{protocol.name}"
    client = paho_client(client_id, protocol)
    ctx = paho_tls_context(running_broker.root_ca_path, device, ENDPOINT)
    client.tls_set_context(ctx)
    connack: concurrent.futures.Future[tuple[bool, int]] = concurrent.futures.Future()
    disconnected = threading.Event()

    def on_connect(
        _client: Client,
        _userdata: object,
        _flags: ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        connack.set_result((reason_code.is_failure, reason_code.value))

    def on_disconnect(
        _client: Client,
        _userdata: object,
        _flags: DisconnectFlags,
        _reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        disconnected.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        rc = await asyncio.to_thread(client.connect, "127.0.0.1", running_broker.port, 30)
        assert rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        client.loop_start()
        failed, code = await asyncio.wait_for(asyncio.wrap_future(connack), TIMEOUT)
        assert (failed, code) == (False, 0)
        record = await running_broker.wait_for_record(is_connect_success(client_id))
        assert record["principalId"] == device.certificate_id
        assert record["logLevel"] == "INFO"

        client.disconnect()
        assert await asyncio.to_thread(disconnected.wait, TIMEOUT)
        closed = await running_broker.wait_for_record(
            lambda r: r["eventType"] == "Disconnect" and r.get("clientId") == client_id
        )
        assert closed["reason"] == "CLIENT_INITIATED_DISCONNECT"
    finally:
        await asyncio.to_thread(client.loop_stop)
        ctx.close_wrapped()
    assert running_broker.failures() == []


@dataclasses.dataclass(frozen=True)
class PahoRefusal:
    """A refused paho connection: how to provoke it, what paho raises, what the broker logs."""

    server_name: str
    status: CertificateStatus | None  # None: the certificate is not registered
    reason: Reason
    openssl_reason: str


PAHO_REFUSALS = [
    pytest.param(
        PahoRefusal(
            "wrong.example.com",
            CertificateStatus.ACTIVE,
            Reason.SNI_MISMATCH,
            "TLSV1_UNRECOGNIZED_NAME",
        ),
        id="wrong-sni",
    ),
    pytest.param(
        PahoRefusal(
            ENDPOINT, None, Reason.CERTIFICATE_NOT_REGISTERED, "SSLV3_ALERT_CERTIFICATE_UNKNOWN"
        ),
        id="unregistered",
    ),
    pytest.param(
        PahoRefusal(
            ENDPOINT,
            CertificateStatus.INACTIVE,
            Reason.CERTIFICATE_NOT_ACTIVE,
            "TLSV1_ALERT_ACCESS_DENIED",
        ),
        id="inactive",
    ),
    pytest.param(
        PahoRefusal(
            ENDPOINT,
            CertificateStatus.REVOKED,
            Reason.CERTIFICATE_NOT_ACTIVE,
            "SSLV3_ALERT_CERTIFICATE_REVOKED",
        ),
        id="revoked",
    ),
]


@pytest.mark.parametrize("protocol", PAHO_PROTOCOLS)
@pytest.mark.parametrize("case", PAHO_REFUSALS)
async def test_paho_refused(
    running_broker: RunningBroker, protocol: MQTTProtocolVersion, case: PahoRefusal
) -> None:
    if case.status is None:
        device = running_broker.create_device(register=False)
    else:
        device = running_broker.create_device(case.status)
    client = paho_client(f"paho-refused-{protocol.name}", protocol)
    ctx = paho_tls_context(running_broker.root_ca_path, device, case.server_name)
    client.tls_set_context(ctx)
    try:
        # paho's connect() runs the TLS handshake synchronously (the default policy is TLS 1.2,
        # where the server's verdict on the certificate arrives inside the handshake), so the
        # alert surfaces as the SSLError of connect() itself.
        with pytest.raises(ssl.SSLError) as raised:
            await asyncio.to_thread(client.connect, "127.0.0.1", running_broker.port, 30)
    finally:
        ctx.close_wrapped()
    assert raised.value.reason == case.openssl_reason
    record = await running_broker.wait_for_record(is_connect_failure(case.reason))
    if case.reason is not Reason.SNI_MISMATCH:
        assert record["principalId"] == device.certificate_id
    assert "clientId" not in record
    assert mqtt_successes(running_broker.records) == []


@pytest.mark.parametrize("protocol", PAHO_PROTOCOLS)
async def test_plaintext_paho_is_refused_as_handshake_failure(
    running_broker: RunningBroker, protocol: MQTTProtocolVersion
) -> None:
    client = paho_client(f"paho-plain-{protocol.name}", protocol)
    connack = threading.Event()
    client.on_connect = lambda *_args: connack.set()

    def connect_and_read() -> int | OSError:
        """Send the CONNECT, then run paho's loop until the server drops the connection."""
        try:
            rc = client.connect("127.0.0.1", running_broker.port, 30)
        except OSError as exc:  # a reset could in principle beat the CONNECT's send
            return exc
        deadline = time.monotonic() + TIMEOUT
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and time.monotonic() < deadline:
            rc = client.loop(timeout=0.5)
        return int(rc)

    outcome = await asyncio.to_thread(connect_and_read)
    # Seen every time: connect() succeeds (it only sends), then loop() returns
    # MQTT_ERR_CONN_LOST ("The connection was lost.") when the broker closes the socket.
    assert isinstance(outcome, OSError) or outcome == MQTTErrorCode.MQTT_ERR_CONN_LOST, outcome
    assert not connack.is_set()
    record = await running_broker.wait_for_record(is_connect_failure(Reason.HANDSHAKE_FAILED))
    assert "plaintext MQTT CONNECT" in str(record["details"])


# -- AWS IoT Device SDK v2 (awscrt) -----------------------------------------------------------


@pytest.fixture
async def localhost_broker(tmp_path: Path) -> AsyncIterator[RunningBroker]:
    """A broker whose endpoint is ``localhost``: awscrt resolves the endpoint itself and sends
    it as SNI, and ``localhost`` is the one name /etc/hosts resolves to 127.0.0.1."""
    config = dataclasses.replace(make_config(tmp_path), endpoint="localhost")
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    try:
        yield running
    finally:
        await broker.stop()


def sdk_common_args(broker: RunningBroker, device: Device, client_id: str) -> dict[str, Any]:
    return {
        "endpoint": "localhost",
        "port": broker.port,
        "cert_filepath": str(device.cert_path),
        "pri_key_filepath": str(device.key_path),
        "ca_filepath": str(broker.root_ca_path),
        "client_id": client_id,
    }


async def wait_crt_future(future: concurrent.futures.Future[Any]) -> Any:
    return await asyncio.wait_for(asyncio.wrap_future(future), TIMEOUT)


async def test_sdk_mqtt3_connects(localhost_broker: RunningBroker) -> None:
    device = localhost_broker.create_device()
    client_id = "sdk-mqtt3"
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_common_args(localhost_broker, device, client_id),
        clean_session=True,
        keep_alive_secs=30,
    )
    result = await wait_crt_future(connection.connect())
    assert result["session_present"] is False
    record = await localhost_broker.wait_for_record(is_connect_success(client_id))
    assert record["principalId"] == device.certificate_id

    await wait_crt_future(connection.disconnect())
    closed = await localhost_broker.wait_for_record(
        lambda r: r["eventType"] == "Disconnect" and r.get("clientId") == client_id
    )
    assert closed["reason"] == "CLIENT_INITIATED_DISCONNECT"
    assert localhost_broker.failures() == []


async def test_sdk_mqtt3_refused_with_inactive_certificate(
    localhost_broker: RunningBroker,
) -> None:
    device = localhost_broker.create_device(CertificateStatus.INACTIVE)
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_common_args(localhost_broker, device, "sdk-mqtt3-inactive"),
        clean_session=True,
        keep_alive_secs=30,
    )
    with pytest.raises(AwsCrtError) as raised:
        await wait_crt_future(connection.connect())
    assert raised.value.name == "AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE"
    record = await localhost_broker.wait_for_record(
        is_connect_failure(Reason.CERTIFICATE_NOT_ACTIVE)
    )
    assert record["principalId"] == device.certificate_id
    assert mqtt_successes(localhost_broker.records) == []


@dataclasses.dataclass
class Mqtt5Lifecycle:
    """Events for the awscrt MQTT 5 client's lifecycle callbacks (they run on CRT threads)."""

    success: concurrent.futures.Future[Any] = dataclasses.field(
        default_factory=concurrent.futures.Future
    )
    failure: concurrent.futures.Future[Any] = dataclasses.field(
        default_factory=concurrent.futures.Future
    )
    stopped: threading.Event = dataclasses.field(default_factory=threading.Event)

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        def on_success(data: Any) -> None:
            if not self.success.done():
                self.success.set_result(data)

        def on_failure(data: Any) -> None:
            if not self.failure.done():
                self.failure.set_result(data)

        return {
            "on_lifecycle_connection_success": on_success,
            "on_lifecycle_connection_failure": on_failure,
            "on_lifecycle_stopped": lambda _data: self.stopped.set(),
        }


@pytest.fixture
def stop_mqtt5_clients() -> Iterator[list[tuple[Any, Mqtt5Lifecycle]]]:
    """Stops every MQTT 5 client a test started (even a failing one) and waits until stopped."""
    clients: list[tuple[Any, Mqtt5Lifecycle]] = []
    yield clients
    for client, lifecycle in clients:
        if not lifecycle.stopped.is_set():
            client.stop()
            assert lifecycle.stopped.wait(TIMEOUT)


async def stop_mqtt5(client: Any, lifecycle: Mqtt5Lifecycle) -> None:
    # Without a DisconnectPacket, stop() closes the TLS connection without an MQTT DISCONNECT.
    client.stop(mqtt5.DisconnectPacket())
    assert await asyncio.to_thread(lifecycle.stopped.wait, TIMEOUT)


async def test_sdk_mqtt5_connects(
    localhost_broker: RunningBroker,
    stop_mqtt5_clients: list[tuple[Any, Mqtt5Lifecycle]],
) -> None:
    device = localhost_broker.create_device()
    client_id = "sdk-mqtt5"
    lifecycle = Mqtt5Lifecycle()
    client = mqtt5_client_builder.mtls_from_path(
        **sdk_common_args(localhost_broker, device, client_id),
        keep_alive_interval_sec=60,
        **lifecycle.callbacks(),
    )
    stop_mqtt5_clients.append((client, lifecycle))
    client.start()
    success = await asyncio.wait_for(asyncio.wrap_future(lifecycle.success), TIMEOUT)
    assert int(success.connack_packet.reason_code) == 0
    record = await localhost_broker.wait_for_record(is_connect_success(client_id))
    assert record["principalId"] == device.certificate_id

    await stop_mqtt5(client, lifecycle)
    closed = await localhost_broker.wait_for_record(
        lambda r: r["eventType"] == "Disconnect" and r.get("clientId") == client_id
    )
    assert closed["reason"] == "CLIENT_INITIATED_DISCONNECT"
    assert not lifecycle.failure.done()
    assert localhost_broker.failures() == []


async def test_sdk_mqtt5_refused_with_unregistered_certificate(
    localhost_broker: RunningBroker,
    stop_mqtt5_clients: list[tuple[Any, Mqtt5Lifecycle]],
) -> None:
    device = localhost_broker.create_device(register=False)
    lifecycle = Mqtt5Lifecycle()
    client = mqtt5_client_builder.mtls_from_path(
        **sdk_common_args(localhost_broker, device, "sdk-mqtt5-unregistered"),
        keep_alive_interval_sec=60,
        **lifecycle.callbacks(),
    )
    stop_mqtt5_clients.append((client, lifecycle))
    client.start()
    failure = await asyncio.wait_for(asyncio.wrap_future(lifecycle.failure), TIMEOUT)
    await stop_mqtt5(client, lifecycle)
    assert isinstance(failure.exception, AwsCrtError)
    assert failure.exception.name == "AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE"
    record = await localhost_broker.wait_for_record(
        is_connect_failure(Reason.CERTIFICATE_NOT_REGISTERED)
    )
    assert record["principalId"] == device.certificate_id
    assert not lifecycle.success.done()
    assert mqtt_successes(localhost_broker.records) == []
