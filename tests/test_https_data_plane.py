"""The iot-data HTTPS API over mutual TLS (8443, and 443 with ALPN x-amzn-http-ca).

Real clients only: curl (AWS's own example, verbatim but for host, port and CA), boto3's
``iot-data`` client with a client certificate, Python's ``http.client`` for what the others
cannot send (bad requests, keep-alive, HTTP/1.0, a stall), and MQTT clients on the other side.
Each refusal has its passing twin and asserts the reason it is logged under.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.client
import json
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.config import Config as BotoConfig
from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.config import TlsConfig
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, paho_client
from tests.conftest import ENDPOINT, Device, RunningBroker, client_context, make_config
from tests.test_door import start

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
PUBLISH_ONLY_TO_OK = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": "arn:aws:iot:us-east-1:123456789012:topic/ok/*",
            }
        ],
    }
)
TIMEOUT = 10.0


# -- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread() as running:
        yield running


@pytest.fixture(scope="module")
def device(broker: IotBrokerThread) -> DeviceFiles:
    return broker.create_device("rest-1", ALLOW_ALL)


def iot_data(broker: IotBrokerThread, device: DeviceFiles, door: str = "https") -> Any:
    """boto3's iot-data client authenticating with the device certificate (no SigV4)."""
    return boto3.client(
        "iot-data",
        region_name="us-east-1",
        endpoint_url=f"https://localhost:{broker.ports[door]}",
        verify=str(broker.root_ca_path),
        config=BotoConfig(
            signature_version=botocore.UNSIGNED,
            client_cert=(str(device.cert_path), str(device.key_path)),
            retries={"max_attempts": 1},
        ),
    )


def https(
    broker: IotBrokerThread,
    device: DeviceFiles | None,
    *,
    port: int | None = None,
    alpn: list[str] | None = None,
) -> http.client.HTTPSConnection:
    """An ``http.client`` connection to the HTTPS door, with the device's certificate."""
    ctx = ssl.create_default_context(cafile=str(broker.root_ca_path))
    if device is not None:
        ctx.load_cert_chain(str(device.cert_path), str(device.key_path))
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return http.client.HTTPSConnection(
        "localhost", port or broker.ports["https"], context=ctx, timeout=TIMEOUT
    )


_OPEN: list[http.client.HTTPSConnection] = []


def closing_https(broker: IotBrokerThread, device: DeviceFiles) -> http.client.HTTPSConnection:
    """``https(...)``, closed at the end of the test (see the autouse fixture below)."""
    connection = https(broker, device)
    _OPEN.append(connection)
    return connection


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def failures(broker: IotBrokerThread, reason: str) -> list[dict[str, object]]:
    return [r for r in broker.logs if r.get("reason") == reason]


# -- Publish ---------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_aws_curl_example_publishes_to_mqtt_subscribers(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    """AWS's HTTPS example ("HTTPS", http.html), verbatim but for host, port and CA."""
    subscriber = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="rest-1")
    received: list[bytes] = []
    subscriber.on_message = lambda _c, _u, message: received.append(bytes(message.payload))
    subscriber.subscribe("topic_1", qos=1)[1]
    broker.wait_for_message("$aws/events/subscriptions/subscribed/rest-1")
    command = [
        "curl",
        "--tlsv1.2",
        "--cacert",
        str(broker.root_ca_path),
        "--cert",
        str(device.cert_path),
        "--key",
        str(device.key_path),
        "--request",
        "POST",
        "--data",
        '{ "message": "Hello, world" }',
        f"https://localhost:{broker.ports['https']}/topics/topic_1?qos=1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["message"] == "OK"
    assert broker.wait_for_message("topic_1").payload == b'{ "message": "Hello, world" }'
    record = next(
        r for r in broker.logs if r["eventType"] == "Publish-In" and r.get("topicName") == "topic_1"
    )
    assert record["protocol"] == "HTTP"
    assert record["status"] == "Success"
    assert record["principalId"] == device.certificate_id
    assert record["traceId"] == answer["traceId"]  # the log line names the request
    subscriber.disconnect()
    subscriber.loop_stop()


def test_boto3_publish_carries_mqtt5_properties_to_subscribers(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    subscriber = paho_client(device, MQTTProtocolVersion.MQTTv5, client_id="rest-1-v5")
    got: list[Any] = []
    arrived = threading.Event()

    def on_message(_client: object, _userdata: object, message: Any) -> None:
        got.append(message)
        arrived.set()

    subscriber.on_message = on_message
    subscriber.subscribe("props/t", qos=1)
    broker.wait_for_message("$aws/events/subscriptions/subscribed/rest-1-v5")
    client = iot_data(broker, device)
    client.publish(
        topic="props/t",
        qos=1,
        payload=b'{"v":1}',
        contentType="application/json",
        responseTopic="props/reply",
        messageExpiry=120,
        correlationData=base64.b64encode(b"corr-1").decode(),
        payloadFormatIndicator="UTF8_DATA",
        userProperties=json.dumps([{"deviceName": "alpha"}, {"count": "45"}]),
    )
    routed = broker.wait_for_message("props/t")
    assert routed.payload == b'{"v":1}'
    assert arrived.wait(TIMEOUT), "the MQTT 5 subscriber got nothing"
    subscriber.disconnect()
    subscriber.loop_stop()
    assert got, "the MQTT 5 subscriber got nothing"
    properties = got[0].properties
    assert properties.ContentType == "application/json"
    assert properties.ResponseTopic == "props/reply"
    assert properties.CorrelationData == b"corr-1"
    assert properties.PayloadFormatIndicator == 1
    assert properties.UserProperty == [("deviceName", "alpha"), ("count", "45")]
    assert 110 <= properties.MessageExpiryInterval <= 120


def test_retained_publish_is_read_back_with_get_and_list(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = iot_data(broker, device)
    client.publish(topic="kept/a", qos=1, retain=True, payload=b"first")
    client.publish(topic="kept/a", qos=1, retain=True, payload=b"second")
    client.publish(topic="kept/b", qos=0, retain=True, payload=b"b")
    got = client.get_retained_message(topic="kept/a")
    assert (got["topic"], got["payload"], got["qos"]) == ("kept/a", b"second", 1)
    assert got["lastModifiedTime"] > 0
    listed = client.list_retained_messages()["retainedTopics"]
    assert [(t["topic"], t["payloadSize"]) for t in listed if t["topic"].startswith("kept/")] == [
        ("kept/a", 6),
        ("kept/b", 1),
    ]
    # An empty retained publish deletes it.
    client.publish(topic="kept/b", qos=1, retain=True, payload=b"")
    client.publish(topic="kept/c", qos=1, retain=True, payload=b"c")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_retained_message(topic="kept/b")
    page = client.list_retained_messages(maxResults=1)
    assert len(page["retainedTopics"]) == 1
    assert "nextToken" in page


def test_publish_denied_by_policy_is_forbidden_and_logged(broker: IotBrokerThread) -> None:
    limited = broker.create_device("rest-limited", PUBLISH_ONLY_TO_OK)
    client = iot_data(broker, limited)
    client.publish(topic="ok/yes", qos=1, payload=b"1")  # the twin
    with pytest.raises(client.exceptions.ForbiddenException) as info:
        client.publish(topic="not-ok/no", qos=1, payload=b"2")
    assert info.value.response["Error"]["Message"] == "Forbidden"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    record = next(
        r for r in failures(broker, "AUTHORIZATION_FAILURE") if r.get("topicName") == "not-ok/no"
    )
    assert (record["eventType"], record["protocol"]) == ("Publish-In", "HTTP")
    assert "iot:Publish" in str(record["details"])
    assert [m.topic for m in broker.messages if m.topic.endswith("ok/no")] == []


@pytest.mark.parametrize(
    ("topic", "reason"),
    [("a/+/b", "TOPIC_INVALID"), ("$aws/events/presence/connected/x", "RESERVED_TOPIC")],
)
def test_publish_to_a_bad_topic_is_refused(
    broker: IotBrokerThread, device: DeviceFiles, topic: str, reason: str
) -> None:
    client = iot_data(broker, device)
    error = client.exceptions.InvalidRequestException
    if reason == "RESERVED_TOPIC":
        error = client.exceptions.ForbiddenException
    with pytest.raises(error):
        client.publish(topic=topic, qos=1, payload=b"x")
    assert any(r.get("topicName") == topic for r in failures(broker, reason))


def test_qos_outside_0_and_1_is_an_invalid_request(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    connection = closing_https(broker, device)
    connection.request("POST", "/topics/q/t?qos=2", body=b"x")
    response = connection.getresponse()
    assert response.status == 400
    assert response.getheader("x-amzn-ErrorType") == "InvalidRequestException"
    assert json.loads(response.read())["message"] == "qos must be between 0 and 1"
    connection.request("POST", "/topics/q/t?qos=1", body=b"x")  # the twin, same connection
    assert connection.getresponse().status == 200


# -- limits and HTTP done properly -----------------------------------------------------------------


def test_body_of_128_kib_is_accepted_and_one_byte_more_is_413(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    connection = closing_https(broker, device)
    connection.request("POST", "/topics/big/ok", body=b"x" * (128 * 1024))
    assert connection.getresponse().read() and True
    connection.close()
    connection = closing_https(broker, device)
    connection.request("POST", "/topics/big/no", body=b"x" * (128 * 1024 + 1))
    response = connection.getresponse()
    assert response.status == 413
    assert response.getheader("x-amzn-ErrorType") == "RequestEntityTooLargeException"
    assert failures(broker, "HTTP_BODY_TOO_LARGE")


def test_headers_over_16_kib_get_431(broker: IotBrokerThread, device: DeviceFiles) -> None:
    connection = closing_https(broker, device)
    connection.request("POST", "/topics/h/t", body=b"x", headers={"X-Big": "y" * 20000})
    assert connection.getresponse().status == 431
    assert failures(broker, "HTTP_HEADERS_TOO_LARGE")


def test_bytes_that_are_not_http_get_400(broker: IotBrokerThread, device: DeviceFiles) -> None:
    ctx = ssl.create_default_context(cafile=str(broker.root_ca_path))
    ctx.load_cert_chain(str(device.cert_path), str(device.key_path))
    with (
        socket.create_connection(("127.0.0.1", broker.ports["https"]), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"x-amzn-ErrorType: InvalidRequestException" in answer
    assert failures(broker, "HTTP_MALFORMED_REQUEST")


def test_unknown_path_is_404_and_wrong_method_405(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    connection = closing_https(broker, device)
    connection.request("GET", "/nothing/here")
    response = connection.getresponse()
    assert response.status == 404
    assert response.getheader("x-amzn-ErrorType") == "ResourceNotFoundException"
    response.read()
    connection.request("GET", "/topics/a")
    response = connection.getresponse()
    assert response.status == 405
    assert response.getheader("x-amzn-ErrorType") == "MethodNotAllowedException"
    response.read()
    connection.request("POST", "/topics/a")  # the twin
    assert connection.getresponse().status == 200


def test_keep_alive_serves_many_requests_and_http_1_0_works(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    connection = closing_https(broker, device)
    for index in range(5):
        connection.request("POST", f"/topics/ka/{index}", body=b"%d" % index)
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    connection.close()
    ctx = ssl.create_default_context(cafile=str(broker.root_ca_path))
    ctx.load_cert_chain(str(device.cert_path), str(device.key_path))
    with (
        socket.create_connection(("127.0.0.1", broker.ports["https"]), timeout=TIMEOUT) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"POST /topics/ten HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert broker.wait_for_message("ten").payload == b"hi"


async def test_a_client_that_stalls_mid_request_is_cut_with_408(tmp_path: Path) -> None:
    config = dataclasses.replace(make_config(tmp_path), tls=TlsConfig(connect_timeout=0.5))
    running = await start(config)
    try:
        device = running.create_device()

        def stall() -> bytes:
            ctx = client_context(running.root_ca_path, device)
            with (
                socket.create_connection(
                    ("127.0.0.1", running.broker.ports["https"]), timeout=TIMEOUT
                ) as raw,
                ctx.wrap_socket(raw, server_hostname=ENDPOINT) as tls,
            ):
                tls.sendall(b"POST /topics/s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
                return answer

        answer = await asyncio.to_thread(stall)
        assert answer.startswith(b"HTTP/1.1 408 ")
        record = await running.wait_for_record(lambda r: r.get("reason") == "HTTP_REQUEST_TIMEOUT")
        assert record["protocol"] == "HTTP"
    finally:
        await running.broker.stop()


# -- Device Shadow REST API ------------------------------------------------------------------------


def test_rest_shadow_update_publishes_to_mqtt_and_a_rejection_does_not(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = iot_data(broker, device)
    update = {"state": {"desired": {"color": "green"}}, "clientToken": "rest"}
    accepted = json.loads(
        client.update_thing_shadow(thingName="lamp", payload=json.dumps(update))["payload"].read()
    )
    assert accepted["version"] >= 1
    assert broker.wait_for_message("$aws/things/lamp/shadow/update/accepted").payload
    assert broker.wait_for_message("$aws/things/lamp/shadow/update/delta").payload
    got = json.loads(client.get_thing_shadow(thingName="lamp")["payload"].read())
    assert got["state"]["delta"] == {"color": "green"}
    with pytest.raises(client.exceptions.InvalidRequestException) as info:
        client.update_thing_shadow(thingName="lamp", payload=b"not json")
    assert info.value.response["Error"]["Message"] == "Invalid JSON"
    assert not [m for m in broker.messages if m.topic == "$aws/things/lamp/shadow/update/rejected"]
    # Named shadows, listed.
    client.update_thing_shadow(thingName="lamp", shadowName="night", payload=json.dumps(update))
    assert client.list_named_shadows_for_thing(thingName="lamp")["results"] == ["night"]
    deleted = json.loads(
        client.delete_thing_shadow(thingName="lamp", shadowName="night")["payload"].read()
    )
    assert deleted["version"] >= 1
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_thing_shadow(thingName="lamp", shadowName="night")


def test_rest_shadow_needs_its_own_policy_actions(broker: IotBrokerThread) -> None:
    """MQTT shadow topics need iot:Publish; the REST API needs iot:*ThingShadow (AWS)."""
    mqtt_only = broker.create_device("shadow-mqtt-only")  # the default device policy
    client = iot_data(broker, mqtt_only)
    with pytest.raises(client.exceptions.ForbiddenException):
        client.get_thing_shadow(thingName="shadow-mqtt-only")
    record = failures(broker, "AUTHORIZATION_FAILURE")[-1]
    assert record["eventType"] == "GetThingShadow"
    assert "iot:GetThingShadow" in str(record["details"])


# -- connections -----------------------------------------------------------------------------------


def test_connection_apis_answer_about_live_and_offline_clients(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    mqtt = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="rest-conn")
    mqtt.subscribe("conn/+/x", qos=1)
    broker.wait_for_message("$aws/events/subscriptions/subscribed/rest-conn")
    client = iot_data(broker, device)
    info = client.get_connection(clientId="rest-conn", includeSocketInformation=True)
    assert info["connected"] is True
    assert info["keepAliveDuration"] == 60
    assert info["sourceIp"] == "127.0.0.1"
    assert client.list_subscriptions(clientId="rest-conn")["subscriptions"] == [
        {"topicFilter": "conn/+/x", "qos": 1}
    ]
    # SendDirectMessage reaches the client on a topic it never subscribed to.
    received: list[tuple[str, bytes]] = []
    mqtt.on_message = lambda _c, _u, m: received.append((m.topic, bytes(m.payload)))
    client.send_direct_message(
        clientId="rest-conn", topic="direct/x", payload=b"just you", confirmation=True, timeout=5
    )
    assert ("direct/x", b"just you") in received  # its PUBACK confirmed the delivery
    client.delete_connection(clientId="rest-conn", preventWillMessage=True)
    disconnected = broker.wait_for_message("$aws/events/presence/disconnected/rest-conn")
    assert json.loads(disconnected.payload)["disconnectReason"] == "API_INITIATED_DISCONNECT"
    offline = client.get_connection(clientId="rest-conn")
    assert (offline["connected"], offline["disconnectReason"]) == (
        False,
        "API_INITIATED_DISCONNECT",
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_connection(clientId="rest-conn")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.send_direct_message(clientId="nobody", topic="direct/x", payload=b"?")
    mqtt.loop_stop()


# -- 443 with ALPN x-amzn-http-ca ------------------------------------------------------------------


def test_443_with_x_amzn_http_ca_serves_the_same_api(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    connection = https(broker, device, port=broker.ports["alpn"], alpn=["x-amzn-http-ca"])
    _OPEN.append(connection)
    connection.request("POST", "/topics/alpn/t?qos=1", body=b"via 443")
    assert connection.getresponse().status == 200
    assert broker.wait_for_message("alpn/t").payload == b"via 443"


# -- a certificate revoked during a keep-alive connection ------------------------------------------


async def test_revoked_certificate_is_refused_on_the_next_request(
    running_broker: RunningBroker,
) -> None:
    device: Device = running_broker.create_device()

    def two_requests() -> tuple[int, int]:
        ctx = client_context(running_broker.root_ca_path, device)
        port = running_broker.broker.ports["https"]
        # SNI and the certificate check use the AWS-shaped endpoint; the socket goes to loopback.
        connection = http.client.HTTPSConnection(ENDPOINT, port, context=ctx, timeout=TIMEOUT)
        connection._create_connection = lambda *_a, **_k: socket.create_connection(  # type: ignore[attr-defined]
            ("127.0.0.1", port), TIMEOUT
        )
        connection.request("POST", "/topics/r/1", body=b"1")
        first = connection.getresponse()
        first.read()
        running_broker.broker.registry.update_certificate_status(
            device.certificate_id, CertificateStatus.REVOKED
        )
        connection.request("POST", "/topics/r/2", body=b"2")
        second = connection.getresponse().status
        connection.close()
        return first.status, second

    assert await asyncio.to_thread(two_requests) == (200, 403)
    record = await running_broker.wait_for_record(
        lambda r: r.get("reason") == "CERTIFICATE_NOT_ACTIVE"
    )
    assert record["protocol"] == "HTTP"


def test_a_retained_publish_to_a_locked_database_is_503_and_not_kept(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = iot_data(broker, device)
    # Another process (a backup, the sqlite3 shell) holds the state database's write lock.
    locker = sqlite3.connect(broker.config.state_dir / "broker.sqlite3")
    try:
        locker.execute("BEGIN IMMEDIATE")
        with pytest.raises(client.exceptions.ServiceUnavailableException):
            client.publish(topic="locked/a", qos=1, retain=True, payload=b"refused")
    finally:
        locker.rollback()
        locker.close()
    records = failures(broker, "STORAGE_BUSY")  # botocore retries a 503 once
    assert records
    assert {(r["eventType"], r["topicName"]) for r in records} == {("Publish-In", "locked/a")}
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_retained_message(topic="locked/a")
    # The twin: once the lock is gone (and the broker tries again), the publish is kept.
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            client.publish(topic="locked/a", qos=1, retain=True, payload=b"kept")
            break
        except client.exceptions.ServiceUnavailableException:
            assert time.monotonic() < deadline, "the broker never stored the publish again"
    assert client.get_retained_message(topic="locked/a")["payload"] == b"kept"
