"""One endpoint, many doors: which protocol a TLS connection gets, by door, ALPN and certificate.

The pure table (``choose_route``) first, then real handshakes against the ``alpn`` door (AWS's
443) and the ``mqtt`` door (8883) of one broker: each refusal with the reason it is logged under
and its passing twin. The legacy TLS policies' per-port suites follow the door, not the number.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from pathlib import Path

import pytest

from aws_iot_mock.config import ListenerConfig, TlsConfig
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.tls.door_routes import (
    ALPN_HTTP_X509,
    ALPN_MQTT_CUSTOM_AUTH,
    ALPN_MQTT_X509,
    DoorKind,
    Route,
    alpn_protocols_offered,
    choose_route,
)
from aws_iot_mock.tls.verdicts import Refusal
from tests.conftest import (
    ENDPOINT,
    MQTT311_CONNACK_ACCEPTED,
    MQTT311_CONNECT,
    Device,
    RunningBroker,
    client_context,
    make_config,
)
from tests.test_door import start

# -- the table -----------------------------------------------------------------------------------

ROUTES: list[tuple[DoorKind, str | None, bool, Route | Reason]] = [
    # 8883 and 8443: X.509 only, ALPN ignored.
    (DoorKind.MQTT, None, True, Route.MQTT_X509),
    (DoorKind.MQTT, ALPN_MQTT_X509, True, Route.MQTT_X509),
    (DoorKind.MQTT, "h2", True, Route.MQTT_X509),
    (DoorKind.HTTPS, None, True, Route.HTTPS_X509),
    (DoorKind.HTTPS, "http/1.1", True, Route.HTTPS_X509),
    # 443 with a certificate: the ALPN name decides.
    (DoorKind.ALPN, ALPN_MQTT_X509, True, Route.MQTT_X509),
    (DoorKind.ALPN, ALPN_HTTP_X509, True, Route.HTTPS_X509),
    (DoorKind.ALPN, None, True, Reason.ALPN_REQUIRED),
    (DoorKind.ALPN, "http/1.1", True, Reason.ALPN_REQUIRED),
    # 443 without a certificate: SigV4 (HTTPS or WebSocket), never X.509 names.
    (DoorKind.ALPN, None, False, Route.SIGV4),
    (DoorKind.ALPN, "http/1.1", False, Route.SIGV4),
    (DoorKind.ALPN, ALPN_MQTT_X509, False, Reason.CLIENT_CERTIFICATE_MISSING),
    (DoorKind.ALPN, ALPN_HTTP_X509, False, Reason.CLIENT_CERTIFICATE_MISSING),
    # Custom authentication (ALPN "mqtt") is not emulated, with or without a certificate.
    (DoorKind.ALPN, ALPN_MQTT_CUSTOM_AUTH, False, Reason.CUSTOM_AUTH_NOT_EMULATED),
    (DoorKind.ALPN, ALPN_MQTT_CUSTOM_AUTH, True, Reason.CUSTOM_AUTH_NOT_EMULATED),
    # Our control-plane door: the iot API, whatever the ALPN and certificate.
    (DoorKind.API, None, False, Route.CONTROL_PLANE),
    (DoorKind.API, "http/1.1", True, Route.CONTROL_PLANE),
]


@pytest.mark.parametrize(("door", "alpn", "has_certificate", "expected"), ROUTES)
def test_choose_route(
    door: DoorKind, alpn: str | None, has_certificate: bool, expected: Route | Reason
) -> None:
    route = choose_route(door, alpn, has_certificate=has_certificate)
    if isinstance(expected, Route):
        assert route is expected
    else:
        assert isinstance(route, Refusal)
        assert route.reason is expected
        assert route.details


def test_alpn_names_each_door_selects() -> None:
    assert alpn_protocols_offered(DoorKind.MQTT) == ()  # 8883 must not require ALPN
    assert alpn_protocols_offered(DoorKind.HTTPS) == ("http/1.1",)
    assert alpn_protocols_offered(DoorKind.ALPN)[:2] == (ALPN_MQTT_X509, ALPN_HTTP_X509)
    assert DoorKind.ALPN.aws_port == 443
    assert (DoorKind.MQTT.aws_port, DoorKind.HTTPS.aws_port) == (8883, 8443)


# -- real handshakes -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seen:
    """What a client saw: the negotiated ALPN and the first bytes read after a CONNECT."""

    alpn: str | None
    received: bytes


def _mqtt_attempt(port: int, ctx: ssl.SSLContext) -> Seen:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=ENDPOINT) as tls,
    ):
        alpn = tls.selected_alpn_protocol()
        try:
            tls.sendall(MQTT311_CONNECT)
            data = tls.recv(4)
        except (ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            data = b""
        return Seen(alpn, data)


async def attempt(
    running: RunningBroker, door: str, device: Device | None, alpn: list[str] | None
) -> Seen:
    ctx = client_context(running.root_ca_path, device)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return await asyncio.to_thread(_mqtt_attempt, running.broker.ports[door], ctx)


async def refused(running: RunningBroker, reason: Reason) -> dict[str, object]:
    record = await running.wait_for_record(lambda r: r.get("reason") == reason.name)
    assert (record["eventType"], record["status"]) == ("Connect", "Failure")
    assert [r for r in running.records if r.get("reason") == reason.name] == [record]
    return record


async def test_443_with_x_amzn_mqtt_ca_and_a_certificate_is_mqtt(
    running_broker: RunningBroker,
) -> None:
    device = running_broker.create_device()
    seen = await attempt(running_broker, "alpn", device, [ALPN_MQTT_X509])
    assert seen == Seen(ALPN_MQTT_X509, MQTT311_CONNACK_ACCEPTED)
    assert running_broker.failures() == []


async def test_443_certificate_without_alpn_is_refused(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    seen = await attempt(running_broker, "alpn", device, None)
    assert seen == Seen(None, b"")  # close_notify: the handshake itself was fine
    record = await refused(running_broker, Reason.ALPN_REQUIRED)
    assert record["principalId"] == device.certificate_id
    assert "x-amzn-mqtt-ca" in str(record["details"])


async def test_443_certificate_with_http_1_1_is_refused(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    seen = await attempt(running_broker, "alpn", device, ["http/1.1"])
    assert seen == Seen("http/1.1", b"")
    await refused(running_broker, Reason.ALPN_REQUIRED)


async def test_443_x509_alpn_without_a_certificate_is_refused(
    running_broker: RunningBroker,
) -> None:
    seen = await attempt(running_broker, "alpn", None, [ALPN_MQTT_X509])
    assert seen == Seen(ALPN_MQTT_X509, b"")
    record = await refused(running_broker, Reason.CLIENT_CERTIFICATE_MISSING)
    assert "principalId" not in record


async def test_443_custom_authentication_is_refused_as_not_emulated(
    running_broker: RunningBroker,
) -> None:
    seen = await attempt(running_broker, "alpn", None, [ALPN_MQTT_CUSTOM_AUTH])
    assert seen == Seen(ALPN_MQTT_CUSTOM_AUTH, b"")
    record = await refused(running_broker, Reason.CUSTOM_AUTH_NOT_EMULATED)
    assert "not emulated" in str(record["details"])


async def test_443_unregistered_certificate_is_refused_by_the_registry_first(
    running_broker: RunningBroker,
) -> None:
    device = running_broker.create_device(register=False)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_UNKNOWN"):
        await attempt(running_broker, "alpn", device, [ALPN_MQTT_X509])
    await refused(running_broker, Reason.CERTIFICATE_NOT_REGISTERED)


@pytest.mark.parametrize("alpn", [None, [ALPN_MQTT_X509], ["h2", "http/1.1"]])
async def test_8883_serves_mqtt_whatever_the_alpn(
    running_broker: RunningBroker, alpn: list[str] | None
) -> None:
    device = running_broker.create_device()
    seen = await attempt(running_broker, "mqtt", device, alpn)
    assert seen == Seen(None, MQTT311_CONNACK_ACCEPTED)  # 8883 selects no ALPN at all
    assert running_broker.failures() == []


async def test_8883_still_requires_a_certificate(running_broker: RunningBroker) -> None:
    with pytest.raises(ssl.SSLError):
        await attempt(running_broker, "mqtt", None, [ALPN_MQTT_X509])
    await refused(running_broker, Reason.CLIENT_CERTIFICATE_MISSING)


# -- the legacy policies' per-port suites follow the door ----------------------------------------


async def test_legacy_policy_suites_follow_the_door_not_the_port_number(tmp_path: Path) -> None:
    """AES128-SHA256 is in TLS12_1_0_2016_01 on 443 but not on 8443/8883 (transport-security)."""
    config = dataclasses.replace(
        make_config(tmp_path), tls=TlsConfig(security_policy="IoTSecurityPolicy_TLS12_1_0_2016_01")
    )
    running = await start(config)
    try:
        device = running.create_device()

        def only_aes128_sha256(door: str) -> str | None:
            ctx = client_context(running.root_ca_path, device, maximum=ssl.TLSVersion.TLSv1_2)
            ctx.set_ciphers("AES128-SHA256")
            ctx.set_alpn_protocols([ALPN_MQTT_X509])
            try:
                return _mqtt_attempt(running.broker.ports[door], ctx).received.hex()
            except ssl.SSLError as exc:
                return exc.reason

        assert await asyncio.to_thread(only_aes128_sha256, "alpn") == "20020000"
        assert (
            await asyncio.to_thread(only_aes128_sha256, "mqtt") == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        )
    finally:
        await running.broker.stop()


# -- the AWS IoT Device SDK on a real port 443 ---------------------------------------------------


def _port_443_free() -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 443))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _port_443_free(), reason="needs to bind 127.0.0.1:443 (root, and free)")
async def test_awsiotsdk_on_443_negotiates_x_amzn_mqtt_ca(tmp_path: Path) -> None:
    """The SDK sets ALPN x-amzn-mqtt-ca by itself when the port is 443 (mqtt_connection_builder)."""
    from awscrt import mqtt  # noqa: PLC0415
    from awsiot import mqtt_connection_builder  # noqa: PLC0415

    config = dataclasses.replace(
        make_config(tmp_path),
        listeners=(ListenerConfig("alpn", 443, host="127.0.0.1"),),
        endpoint="localhost",
    )
    running = await start(config)
    try:
        device = running.create_device()
        connection = mqtt_connection_builder.mtls_from_path(
            endpoint="localhost",
            port=443,
            cert_filepath=str(device.cert_path),
            pri_key_filepath=str(device.key_path),
            ca_filepath=str(running.root_ca_path),
            client_id="sdk-443",
            clean_session=True,
        )
        await asyncio.wrap_future(connection.connect())
        try:
            topic = "sdk/443"
            received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            loop = asyncio.get_running_loop()

            def on_message(topic: str, payload: bytes, **_: object) -> None:
                loop.call_soon_threadsafe(received.set_result, payload)

            subscribed, _ = connection.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE, on_message)
            await asyncio.wrap_future(subscribed)
            published, _ = connection.publish(topic, b"via 443", mqtt.QoS.AT_LEAST_ONCE)
            await asyncio.wrap_future(published)
            assert await asyncio.wait_for(received, 10) == b"via 443"
        finally:
            await asyncio.wrap_future(connection.disconnect())
        assert running.failures() == []
    finally:
        await running.broker.stop()
