"""MQTT over WebSocket on 443 (``wss://ENDPOINT/mqtt``), signed with SigV4, with real clients.

The AWS IoT Device SDK's ``websockets_with_default_aws_signing`` (MQTT 3.1.1, awsiotsdk) and the
MQTT 5 client builder's websocket mode (awscrt signs), both with long-term keys and with a
session token; paho-mqtt with ``transport="websockets"`` on a URL presigned by botocore with the
session token appended after signing, as AWS IoT wants it. Messages cross WebSocket, 8883 and
HTTPS both ways. Each refused upgrade asserts its HTTP answer (read with ``http.client``) and its
logged reason, and has a passing twin.
"""

from __future__ import annotations

import http.client
import json
import queue
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import awscrt.auth
import awscrt.http
import boto3
import pytest
from awscrt import mqtt, mqtt5
from awsiot import mqtt5_client_builder, mqtt_connection_builder
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from paho.mqtt.client import Client, WebsocketConnectionError
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from aws_iot_mock.testing import IamCredentials, IotBrokerThread, paho_client

REGION = "us-east-1"
TIMEOUT = 10.0
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
ARN = f"arn:aws:iot:{REGION}:123456789012"
# Connect as "kiosk-*" only; publish, subscribe and receive on "kiosk/*" only.
KIOSK_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/kiosk-*"},
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": f"{ARN}:topic/kiosk/*",
        },
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/kiosk/*"},
    ],
}
UPGRADE_HEADERS = (
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", "mqtt"),
)


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def alice(broker: IotBrokerThread) -> IamCredentials:
    return broker.create_iam_user("ws-alice")


def credentials_for(broker: IotBrokerThread, alice: IamCredentials, kind: str) -> IamCredentials:
    if kind == "session-token":
        session = broker.get_session_token(alice.user_name)
        assert session.session_token is not None
        return session
    return alice


def provider(credentials: IamCredentials) -> awscrt.auth.AwsCredentialsProvider:
    return awscrt.auth.AwsCredentialsProvider.new_static(
        credentials.access_key_id, credentials.secret_access_key, credentials.session_token
    )


def iot_data(broker: IotBrokerThread, credentials: IamCredentials) -> Any:
    """boto3's iot-data client on the alpn door, SigV4-signed."""
    return boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url=f"https://localhost:{broker.ports['alpn']}",
        verify=str(broker.root_ca_path),
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def sdk_websocket(
    broker: IotBrokerThread, credentials: IamCredentials, client_id: str, **options: Any
) -> Any:
    """awsiotsdk's MQTT 3.1.1 connection over WebSocket, signed by the SDK, not yet connected."""
    return mqtt_connection_builder.websockets_with_default_aws_signing(
        endpoint="localhost",
        port=broker.ports["alpn"],
        region=REGION,
        credentials_provider=provider(credentials),
        client_id=client_id,
        ca_filepath=str(broker.root_ca_path),
        clean_session=True,
        keep_alive_secs=30,
        **options,
    )


def presigned_path(
    broker: IotBrokerThread, credentials: IamCredentials, *, secret: str | None = None
) -> str:
    """``/mqtt?X-Amz-...`` presigned by botocore; the session token appended after signing."""
    host = f"localhost:{broker.ports['alpn']}"
    request = AWSRequest(method="GET", url=f"wss://{host}/mqtt")
    keys = Credentials(credentials.access_key_id, secret or credentials.secret_access_key)
    SigV4QueryAuth(keys, "iotdevicegateway", REGION, expires=300).add_auth(request)
    url = urlsplit(request.url)
    path = f"{url.path}?{url.query}"
    if credentials.session_token:
        path += "&X-Amz-Security-Token=" + quote(credentials.session_token, safe="")
    return path


def crt_presigned_path(
    broker: IotBrokerThread, credentials: IamCredentials, *, date: datetime
) -> str:
    """``/mqtt`` presigned by awscrt (the SDKs' signer) as of ``date``."""
    config = awscrt.auth.AwsSigningConfig(
        algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
        signature_type=awscrt.auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS,
        credentials_provider=provider(credentials),
        region=REGION,
        service="iotdevicegateway",
        date=date,
        omit_session_token=True,
    )
    headers = awscrt.http.HttpHeaders([("Host", f"localhost:{broker.ports['alpn']}")])
    signed = awscrt.auth.aws_sign_request(
        awscrt.http.HttpRequest("GET", "/mqtt", headers), config
    ).result(TIMEOUT)
    return str(signed.path)


def upgrade(
    broker: IotBrokerThread, target: str, headers: tuple[tuple[str, str], ...] = UPGRADE_HEADERS
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Send a WebSocket upgrade request for ``target``; the status, headers and body."""
    context = ssl.create_default_context(cafile=str(broker.root_ca_path))
    connection = http.client.HTTPSConnection(
        "localhost", broker.ports["alpn"], context=context, timeout=TIMEOUT
    )
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = b"" if response.status == 101 else response.read()
        return response.status, response.headers, body
    finally:
        connection.close()


def paho_websocket(
    broker: IotBrokerThread,
    path: str,
    client_id: str,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> Client:
    """paho-mqtt over WebSocket on ``path`` (a presigned URL), connected, its loop running."""
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        transport="websockets",
    )
    client.ws_set_options(path=path)
    client.tls_set(ca_certs=str(broker.root_ca_path))
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect("localhost", broker.ports["alpn"], keepalive=60)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        client.loop_stop()
        raise AssertionError("paho over WebSocket did not connect")
    return client


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def refusals(broker: IotBrokerThread, reason: str) -> list[dict[str, object]]:
    return [r for r in broker.logs if r.get("reason") == reason and r.get("status") == "Failure"]


def new_refusal(broker: IotBrokerThread, reason: str, before: int) -> dict[str, object]:
    """The first ``reason`` refusal logged after the ``before`` ones already there."""
    wait_until(lambda: len(refusals(broker, reason)) > before, f"a {reason} refusal")
    return refusals(broker, reason)[before]


def assert_forbidden(status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
    """AWS IoT's answer to a refused upgrade: 403 ForbiddenException, then close."""
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("ForbiddenException")
    assert json.loads(body) == {"message": "Forbidden"}
    assert headers["Connection"] == "close"


# -- the Device SDKs ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["long-term", "session-token"])
def test_device_sdk_mqtt3_over_websocket_crosses_8883_and_https(
    broker: IotBrokerThread, alice: IamCredentials, kind: str
) -> None:
    credentials = credentials_for(broker, alice, kind)
    client_id = f"ws3-{kind}"
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    connection = sdk_websocket(broker, credentials, client_id)
    connection.connect().result(TIMEOUT)
    device = broker.create_device(f"ws3-peer-{kind}", ALLOW_ALL)
    peer = paho_client(device, MQTTProtocolVersion.MQTTv311)
    peer_received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    try:
        subscribed, _ = connection.subscribe(
            f"{client_id}/in/#",
            mqtt.QoS.AT_LEAST_ONCE,
            callback=lambda topic, payload, **_: received.put((topic, payload)),
        )
        subscribed.result(TIMEOUT)
        peer.on_message = lambda _c, _u, m: peer_received.put((m.topic, bytes(m.payload)))
        peer.subscribe(f"{client_id}/out/#", qos=1)
        broker.wait_for_message(f"$aws/events/subscriptions/subscribed/{device.client_id}")

        # 8883 -> WebSocket, HTTPS -> WebSocket.
        peer.publish(f"{client_id}/in/mqtt", b"from 8883", qos=1)
        assert received.get(timeout=TIMEOUT) == (f"{client_id}/in/mqtt", b"from 8883")
        iot_data(broker, alice).publish(topic=f"{client_id}/in/https", qos=1, payload=b"https")
        assert received.get(timeout=TIMEOUT) == (f"{client_id}/in/https", b"https")

        # WebSocket -> 8883, and WebSocket -> HTTPS (a retained message the API reads).
        published, _ = connection.publish(
            f"{client_id}/out/ws", b"from websocket", mqtt.QoS.AT_LEAST_ONCE
        )
        published.result(TIMEOUT)
        assert peer_received.get(timeout=TIMEOUT) == (f"{client_id}/out/ws", b"from websocket")
        retained, _ = connection.publish(
            f"{client_id}/kept", b"kept", mqtt.QoS.AT_LEAST_ONCE, retain=True
        )
        retained.result(TIMEOUT)
        got = iot_data(broker, alice).get_retained_message(topic=f"{client_id}/kept")
        assert got["payload"] == b"kept"
    finally:
        connection.disconnect().result(TIMEOUT)
        peer.disconnect()
        peer.loop_stop()

    # The principal is the IAM user's unique ID, in the log and the lifecycle events.
    connect = next(
        r for r in broker.logs if r.get("eventType") == "Connect" and r.get("clientId") == client_id
    )
    assert (connect["status"], connect["protocol"]) == ("Success", "MQTT")
    assert connect["principalId"] == alice.principal_id
    assert "WebSocket upgrade, SigV4" in str(connect["details"])
    assert ("temporary" if kind == "session-token" else "long-term") in str(connect["details"])
    event = json.loads(
        broker.wait_for_message(f"$aws/events/presence/connected/{client_id}").payload
    )
    assert event["principalIdentifier"] == alice.principal_id


@pytest.mark.parametrize("kind", ["long-term", "session-token"])
def test_device_sdk_mqtt5_over_websocket(
    broker: IotBrokerThread, alice: IamCredentials, kind: str
) -> None:
    credentials = credentials_for(broker, alice, kind)
    client_id = f"ws5-{kind}"
    connected: Future[Any] = Future()
    stopped: Future[None] = Future()
    received: queue.Queue[tuple[str, bytes, str | None]] = queue.Queue()

    def on_publish(data: Any) -> None:
        packet = data.publish_packet
        received.put((packet.topic, bytes(packet.payload), packet.content_type))

    client = mqtt5_client_builder.websockets_with_default_aws_signing(
        endpoint="localhost",
        port=broker.ports["alpn"],
        region=REGION,
        credentials_provider=provider(credentials),
        client_id=client_id,
        ca_filepath=str(broker.root_ca_path),
        on_publish_received=on_publish,
        on_lifecycle_connection_success=connected.set_result,
        on_lifecycle_connection_failure=lambda data: connected.set_exception(data.exception),
        on_lifecycle_stopped=lambda _data: stopped.set_result(None),
    )
    client.start()
    try:
        assert (
            connected.result(TIMEOUT).connack_packet.reason_code == mqtt5.ConnectReasonCode.SUCCESS
        )
        client.subscribe(
            mqtt5.SubscribePacket(
                subscriptions=[mqtt5.Subscription(f"{client_id}/in", mqtt5.QoS.AT_LEAST_ONCE)]
            )
        ).result(TIMEOUT)
        # HTTPS -> MQTT 5 over WebSocket, with the content type as an MQTT 5 property.
        iot_data(broker, alice).publish(
            topic=f"{client_id}/in", qos=1, payload=b"{}", contentType="application/json"
        )
        assert received.get(timeout=TIMEOUT) == (f"{client_id}/in", b"{}", "application/json")
        puback = client.publish(
            mqtt5.PublishPacket(
                topic=f"{client_id}/out", payload=b"five", qos=mqtt5.QoS.AT_LEAST_ONCE
            )
        ).result(TIMEOUT)
        assert puback.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert broker.wait_for_message(f"{client_id}/out").payload == b"five"
    finally:
        client.stop()
        stopped.result(TIMEOUT)


def test_device_sdk_refused_upgrade_is_logged_with_its_reason(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    wrong = IamCredentials(alice.user_name, alice.access_key_id, "x" * 40)
    connection = sdk_websocket(broker, wrong, "ws-wrong-secret")
    before = len(refusals(broker, "SIGV4_SIGNATURE_MISMATCH"))
    with pytest.raises(Exception, match="WEBSOCKET_UPGRADE_FAILURE"):
        connection.connect().result(TIMEOUT)
    record = new_refusal(broker, "SIGV4_SIGNATURE_MISMATCH", before)
    assert record["protocol"] == "MQTT"
    assert alice.access_key_id in str(record["details"])
    # The twin: the right secret.
    twin = sdk_websocket(broker, alice, "ws-right-secret")
    twin.connect().result(TIMEOUT)
    twin.disconnect().result(TIMEOUT)


# -- a presigned URL with paho-mqtt ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["long-term", "session-token"])
def test_paho_with_a_presigned_url(
    broker: IotBrokerThread, alice: IamCredentials, kind: str
) -> None:
    credentials = credentials_for(broker, alice, kind)
    path = presigned_path(broker, credentials)
    assert ("X-Amz-Security-Token" in path) == (kind == "session-token")
    client_id = f"paho-ws-{kind}"
    client = paho_websocket(broker, path, client_id, MQTTProtocolVersion.MQTTv5)
    received: queue.Queue[bytes] = queue.Queue()
    try:
        client.on_message = lambda _c, _u, m: received.put(bytes(m.payload))
        client.subscribe(f"{client_id}/in", qos=1)
        broker.wait_for_message(f"$aws/events/subscriptions/subscribed/{client_id}")
        iot_data(broker, alice).publish(topic=f"{client_id}/in", qos=1, payload=b"to paho")
        assert received.get(timeout=TIMEOUT) == b"to paho"
        client.publish(f"{client_id}/out", b"from paho", qos=1).wait_for_publish(TIMEOUT)
        assert broker.wait_for_message(f"{client_id}/out").payload == b"from paho"
    finally:
        client.disconnect()
        client.loop_stop()


# paho-mqtt drops the TLS socket of a refused upgrade without closing it (its WebsocketWrapper
# raises from its constructor): the ResourceWarning is paho's, not the broker's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_paho_with_a_wrongly_presigned_url_is_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="paho-ws-refused",
        transport="websockets",
    )
    client.ws_set_options(path=presigned_path(broker, alice, secret="y" * 40))
    client.tls_set(ca_certs=str(broker.root_ca_path))
    before = len(refusals(broker, "SIGV4_SIGNATURE_MISMATCH"))
    with pytest.raises(WebsocketConnectionError):
        client.connect("localhost", broker.ports["alpn"], keepalive=60)
    new_refusal(broker, "SIGV4_SIGNATURE_MISMATCH", before)
    # The twin is test_paho_with_a_presigned_url.


# -- refused upgrades: AWS's answer and the logged reason, each with a twin ------------------------


def test_a_presigned_upgrade_is_accepted(broker: IotBrokerThread, alice: IamCredentials) -> None:
    status, headers, _ = upgrade(broker, presigned_path(broker, alice))
    assert status == 101
    assert headers["Sec-WebSocket-Protocol"] == "mqtt"


def test_an_unknown_access_key_is_refused(broker: IotBrokerThread) -> None:
    stranger = IamCredentials("nobody", "AKIAIOSFODNN7EXAMPLE", "z" * 40)
    assert_forbidden(*upgrade(broker, presigned_path(broker, stranger)))
    record = broker.wait_for_refusal("SIGV4_UNKNOWN_ACCESS_KEY")
    assert (record["eventType"], record["protocol"]) == ("Connect", "MQTT")
    assert "AKIAIOSFODNN7EXAMPLE" in str(record["details"])


def test_a_bad_signature_is_refused(broker: IotBrokerThread, alice: IamCredentials) -> None:
    path = presigned_path(broker, alice)
    signature = path.rsplit("X-Amz-Signature=", 1)[1][:64]
    tampered = path.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    before = len(refusals(broker, "SIGV4_SIGNATURE_MISMATCH"))
    assert_forbidden(*upgrade(broker, tampered))
    record = new_refusal(broker, "SIGV4_SIGNATURE_MISMATCH", before)
    assert alice.access_key_id in str(record["details"])
    assert upgrade(broker, path)[0] == 101  # the twin


def test_a_clock_more_than_5_minutes_off_is_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    now = datetime.now(UTC)
    status, _, _ = upgrade(
        broker, crt_presigned_path(broker, alice, date=now - timedelta(minutes=4))
    )
    assert status == 101  # the twin: within AWS's 5 minutes
    before = len([r for r in broker.logs if r.get("reason") == "SIGV4_CLOCK_SKEW"])
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        assert_forbidden(*upgrade(broker, crt_presigned_path(broker, alice, date=now + skew)))
    wait_until(
        lambda: (
            len([r for r in broker.logs if r.get("reason") == "SIGV4_CLOCK_SKEW"]) == before + 2
        ),
        "two SIGV4_CLOCK_SKEW records",
    )


def test_expired_temporary_credentials_are_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=1000)
    session = broker.iam.get_session_token(
        user_name=alice.user_name, duration_seconds=900, now=issued
    )
    expired = IamCredentials(
        alice.user_name, session.access_key_id, session.secret_access_key, session.session_token
    )
    assert_forbidden(*upgrade(broker, presigned_path(broker, expired)))
    broker.wait_for_refusal("SIGV4_EXPIRED_CREDENTIALS")
    fresh = broker.get_session_token(alice.user_name, duration_seconds=900)
    assert upgrade(broker, presigned_path(broker, fresh))[0] == 101  # the twin


def test_an_unsigned_upgrade_is_refused(broker: IotBrokerThread) -> None:
    assert_forbidden(*upgrade(broker, "/mqtt"))
    broker.wait_for_refusal("SIGV4_MISSING_AUTHENTICATION")


def test_custom_authorizers_are_refused_as_not_emulated(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    path = presigned_path(broker, alice) + "&x-amz-customauthorizer-name=MyAuthorizer"
    assert_forbidden(*upgrade(broker, path))
    assert "not emulated" in str(broker.wait_for_refusal("CUSTOM_AUTH_NOT_EMULATED")["details"])


def test_a_path_other_than_mqtt_and_a_missing_subprotocol_are_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    path = presigned_path(broker, alice)
    status, headers, _ = upgrade(broker, path.replace("/mqtt?", "/chat?"))
    assert (status, headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException:")
    record = broker.wait_for_refusal("WEBSOCKET_UPGRADE_INVALID")
    assert "/mqtt only" in str(record["details"])
    no_mqtt = tuple(h for h in UPGRADE_HEADERS if h[0] != "Sec-WebSocket-Protocol")
    status, _, _ = upgrade(broker, path, (*no_mqtt, ("Sec-WebSocket-Protocol", "chat")))
    assert status == 400
    wait_until(
        lambda: any(
            "needs 'mqtt'" in str(r.get("details"))
            for r in broker.logs
            if r.get("reason") == "WEBSOCKET_UPGRADE_INVALID"
        ),
        "the subprotocol refusal",
    )


# -- IAM policies authorize MQTT over WebSocket ---------------------------------------------


def test_iam_policy_denies_connect_publish_and_subscribe(broker: IotBrokerThread) -> None:
    kiosk = broker.create_iam_user("ws-kiosk", KIOSK_ONLY)
    # Connect: a client ID the policy does not allow is refused (AWS closes without CONNACK).
    denied = sdk_websocket(broker, kiosk, "lobby-1")
    with pytest.raises(Exception, match=r"UNEXPECTED_HANGUP|CONNECTION_REJECTED|CLOSED"):
        denied.connect().result(TIMEOUT)
    record = broker.wait_for_refusal("AUTHORIZATION_FAILURE", client_id="lobby-1")
    assert record["principalId"] == kiosk.principal_id
    assert "iot:Connect" in str(record["details"])
    # The twin, then a publish outside kiosk/* (MQTT 3.1.1: AWS disconnects the client).
    client = paho_websocket(broker, presigned_path(broker, kiosk), "kiosk-1")
    try:
        client.publish("kiosk/status", b"up", qos=1).wait_for_publish(TIMEOUT)
        assert broker.wait_for_message("kiosk/status").payload == b"up"
        client.publish("lobby/status", b"no", qos=1)
        record = broker.wait_for_refusal("AUTHORIZATION_FAILURE", client_id="kiosk-1")
        assert (record["eventType"], record["topicName"]) == ("Publish-In", "lobby/status")
    finally:
        client.loop_stop()


# -- AWS's 24-hour WebSocket limit -----------------------------------------------------------------


def test_a_websocket_older_than_its_ttl_is_closed_at_the_next_send() -> None:
    with IotBrokerThread(aws_quotas=False, websocket_ttl=3.0) as broker:
        user = broker.create_iam_user("ws-ttl")
        client = paho_websocket(broker, presigned_path(broker, user), "ws-ttl-1")
        gone = threading.Event()
        client.on_disconnect = lambda *_args: gone.set()
        try:
            client.publish("ttl/young", b"1", qos=1).wait_for_publish(TIMEOUT)  # the twin
            assert broker.wait_for_message("ttl/young").payload == b"1"
            # Keep sending until the connection is older than its TTL: the next send ends it.
            deadline = time.monotonic() + TIMEOUT
            while not gone.is_set() and time.monotonic() < deadline:
                client.publish("ttl/old", b"2", qos=0)
                gone.wait(0.25)
            assert gone.is_set()
        finally:
            client.loop_stop()
        record = broker.wait_for_refusal("WEBSOCKET_TTL_EXPIRATION", client_id="ws-ttl-1")
        assert record["eventType"] == "Disconnect"
        event = broker.wait_for_message("$aws/events/presence/disconnected/ws-ttl-1")
        assert json.loads(event.payload)["disconnectReason"] == "WEBSOCKET_TTL_EXPIRATION"
