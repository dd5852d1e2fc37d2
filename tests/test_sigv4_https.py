"""The iot-data HTTPS API on 443 without a client certificate: SigV4 against the local IAM.

Real signers only: boto3's ``iot-data`` client (every operation, long-term and temporary
credentials), the ``aws iot-data`` command line, and awscrt (the Device SDKs' signer) where a
request must be signed at another time or with another service name. Each refusal asserts its
answer (403 ForbiddenException, as AWS IoT's data endpoint answers) and its logged reason, and
has a passing twin.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import awscrt.auth
import awscrt.http
import boto3
import pytest
from botocore.config import Config as BotoConfig
from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.testing import IamCredentials, IotBrokerThread, paho_client

REGION = "us-east-1"
TIMEOUT = 10.0
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
ONLY_OK_TOPICS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:GetThingShadow"],
            "Resource": [
                f"arn:aws:iot:{REGION}:123456789012:topic/ok/*",
                f"arn:aws:iot:{REGION}:123456789012:thing/ok-thing",
            ],
        }
    ],
}


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def alice(broker: IotBrokerThread) -> IamCredentials:
    return broker.create_iam_user("alice")


@pytest.fixture(autouse=True)
def _isolated_aws_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile, config file or instance metadata from the machine running the tests."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def iot_data(broker: IotBrokerThread, credentials: IamCredentials, **overrides: str) -> Any:
    """boto3's iot-data client, signing with SigV4, on the alpn door (AWS's 443)."""
    keys = {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
        "aws_session_token": credentials.session_token,
        **overrides,
    }
    return boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url=f"https://localhost:{broker.ports['alpn']}",
        verify=str(broker.root_ca_path),
        config=BotoConfig(retries={"max_attempts": 1}),
        **keys,
    )


def refusal(broker: IotBrokerThread, reason: str) -> dict[str, object]:
    record = broker.wait_for_refusal(reason)
    assert record["protocol"] == "HTTP"
    return record


def crt_signed(
    broker: IotBrokerThread,
    credentials: IamCredentials,
    *,
    target: str,
    body: bytes = b"",
    service: str = "iotdata",
    date: datetime | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> tuple[int, dict[str, str], bytes]:
    """POST ``target`` signed by awscrt (the Device SDKs' signer) at ``date``; the answer."""
    host = f"localhost:{broker.ports['alpn']}"
    config = awscrt.auth.AwsSigningConfig(
        algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
        signature_type=awscrt.auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=awscrt.auth.AwsCredentialsProvider.new_static(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        ),
        region=REGION,
        service=service,
        date=date or datetime.now(UTC),
    )
    request = awscrt.http.HttpRequest(
        "POST",
        target,
        awscrt.http.HttpHeaders([("Host", host), *headers]),
        io.BytesIO(body),
    )
    signed = awscrt.auth.aws_sign_request(request, config).result(TIMEOUT)
    context = ssl.create_default_context(cafile=str(broker.root_ca_path))
    connection = http.client.HTTPSConnection(
        "localhost", broker.ports["alpn"], context=context, timeout=TIMEOUT
    )
    try:
        connection.putrequest("POST", signed.path, skip_host=True, skip_accept_encoding=True)
        for name, value in signed.headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# -- every operation, with long-term and with temporary credentials -------------------------------


@pytest.mark.parametrize("temporary", [False, True], ids=["long-term", "session-token"])
def test_boto3_every_iot_data_operation_with_sigv4(
    broker: IotBrokerThread, alice: IamCredentials, temporary: bool
) -> None:
    credentials = broker.get_session_token("alice") if temporary else alice
    assert credentials.access_key_id.startswith("ASIA" if temporary else "AKIA")
    client = iot_data(broker, credentials)
    suffix = "t" if temporary else "l"
    topic = f"sigv4/{suffix}/retained"
    client.publish(topic=topic, qos=1, retain=True, payload=b"kept")
    assert broker.wait_for_message(topic).payload == b"kept"
    got = client.get_retained_message(topic=topic)
    assert (got["topic"], got["payload"]) == (topic, b"kept")
    assert topic in [t["topic"] for t in client.list_retained_messages()["retainedTopics"]]
    thing = f"sigv4-lamp-{suffix}"
    update = json.dumps({"state": {"desired": {"on": True}}})
    client.update_thing_shadow(thingName=thing, payload=update)
    assert broker.wait_for_message(f"$aws/things/{thing}/shadow/update/delta").payload
    shadow = json.loads(client.get_thing_shadow(thingName=thing)["payload"].read())
    assert shadow["state"]["delta"] == {"on": True}
    client.update_thing_shadow(thingName=thing, shadowName="night", payload=update)
    assert client.list_named_shadows_for_thing(thingName=thing)["results"] == ["night"]
    client.delete_thing_shadow(thingName=thing, shadowName="night")
    # The connection APIs, about an MQTT client on 8883.
    device = broker.create_device(f"sigv4-peer-{suffix}", ALLOW_ALL)
    peer = paho_client(device, MQTTProtocolVersion.MQTTv311)
    try:
        received: list[bytes] = []
        peer.on_message = lambda _c, _u, m: received.append(bytes(m.payload))
        peer.subscribe(f"{device.client_id}/in", qos=1)
        broker.wait_for_message(f"$aws/events/subscriptions/subscribed/{device.client_id}")
        assert client.get_connection(clientId=device.client_id)["connected"] is True
        assert client.list_subscriptions(clientId=device.client_id)["subscriptions"] == [
            {"topicFilter": f"{device.client_id}/in", "qos": 1}
        ]
        client.send_direct_message(
            clientId=device.client_id,
            topic=f"{device.client_id}/direct",
            payload=b"only you",
            confirmation=True,
            timeout=5,
        )
        assert b"only you" in received
        client.delete_connection(clientId=device.client_id)
        gone = broker.wait_for_message(f"$aws/events/presence/disconnected/{device.client_id}")
        assert json.loads(gone.payload)["disconnectReason"] == "API_INITIATED_DISCONNECT"
    finally:
        peer.loop_stop()
    # Every request was logged as HTTP, with the IAM user's ID as the principal.
    records = [r for r in broker.logs if r.get("topicName") == topic]
    assert records
    assert {(r["protocol"], r["principalId"]) for r in records} == {("HTTP", alice.principal_id)}


def test_https_publish_reaches_an_mqtt_subscriber_on_8883(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    device = broker.create_device("sigv4-listener", ALLOW_ALL)
    subscriber = paho_client(device, MQTTProtocolVersion.MQTTv5)
    arrived: queue.Queue[tuple[str, bytes]] = queue.Queue()
    try:
        subscriber.on_message = lambda _c, _u, m: arrived.put((m.topic, bytes(m.payload)))
        subscriber.subscribe(f"{device.client_id}/#", qos=1)
        broker.wait_for_message(f"$aws/events/subscriptions/subscribed/{device.client_id}")
        iot_data(broker, alice).publish(
            topic=f"{device.client_id}/from-https", qos=1, payload=b"signed"
        )
        assert arrived.get(timeout=TIMEOUT) == (f"{device.client_id}/from-https", b"signed")
    finally:
        subscriber.disconnect()
        subscriber.loop_stop()


def test_both_signing_names_are_accepted(broker: IotBrokerThread, alice: IamCredentials) -> None:
    """boto3 signs as iotdata; the Device SDKs and the Shadow REST docs as iotdevicegateway."""
    for service in ("iotdata", "iotdevicegateway"):
        status, _, body = crt_signed(
            broker, alice, target=f"/topics/names/{service}?qos=1", body=b"x", service=service
        )
        assert (status, json.loads(body)["message"]) == (200, "OK")
        assert broker.wait_for_message(f"names/{service}").payload == b"x"
    status, headers, _ = crt_signed(broker, alice, target="/topics/names/iot", service="iot")
    assert (status, headers["x-amzn-ErrorType"]) == (403, "ForbiddenException")
    assert "iotdevicegateway" in str(refusal(broker, "SIGV4_INVALID_CREDENTIAL_SCOPE")["details"])


@pytest.mark.skipif(
    shutil.which("aws", path=str(Path(sys.executable).parent)) is None,
    reason="needs the awscli package (the dev extra)",
)
def test_the_aws_cli_publishes_with_sigv4(broker: IotBrokerThread, alice: IamCredentials) -> None:
    aws = str(Path(sys.executable).parent / "aws")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": alice.access_key_id,
        "AWS_SECRET_ACCESS_KEY": alice.secret_access_key,
    }
    command = [
        aws,
        "iot-data",
        "publish",
        "--endpoint-url",
        f"https://localhost:{broker.ports['alpn']}",
        "--ca-bundle",
        str(broker.root_ca_path),
        "--region",
        REGION,
        "--topic",
        "cli/hello",
        "--qos",
        "1",
        "--payload",
        '{"from":"aws cli"}',
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert broker.wait_for_message("cli/hello").payload == b'{"from":"aws cli"}'
    # The twin: a wrong secret gets AWS IoT's answer.
    env["AWS_SECRET_ACCESS_KEY"] = "x" * 40
    command[command.index("cli/hello")] = "cli/refused"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0  # 255 from the AWS CLI v1, 254 from v2
    assert "(ForbiddenException) when calling the Publish operation: Forbidden" in done.stderr


# -- refusals, each with its twin ------------------------------------------------------------------


def test_wrong_secret_is_refused_as_a_signature_mismatch(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    iot_data(broker, alice).publish(topic="twin/secret", payload=b"ok")
    client = iot_data(
        broker, alice, aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )
    with pytest.raises(client.exceptions.ForbiddenException) as info:
        client.publish(topic="refused/secret", payload=b"no")
    assert info.value.response["Error"]["Message"] == "Forbidden"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    record = refusal(broker, "SIGV4_SIGNATURE_MISMATCH")
    assert (record["eventType"], record["status"]) == ("Connect", "Failure")
    assert alice.access_key_id in str(record["details"])
    assert "wJalrXUtnFEMI" not in json.dumps(broker.logs)  # a secret is never logged
    assert not [m for m in broker.messages if m.topic == "refused/secret"]


def test_unknown_access_key_is_refused(broker: IotBrokerThread, alice: IamCredentials) -> None:
    client = iot_data(broker, alice, aws_access_key_id="AKIAIOSFODNN7EXAMPLE")
    with pytest.raises(client.exceptions.ForbiddenException):
        client.publish(topic="refused/unknown", payload=b"no")
    assert "AKIAIOSFODNN7EXAMPLE" in str(refusal(broker, "SIGV4_UNKNOWN_ACCESS_KEY")["details"])
    iot_data(broker, alice).publish(topic="twin/unknown", payload=b"ok")  # the twin


def test_a_clock_more_than_5_minutes_off_is_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    now = datetime.now(UTC)
    status, _, _ = crt_signed(
        broker, alice, target="/topics/skew/4", body=b"4", date=now - timedelta(minutes=4)
    )
    assert status == 200  # the twin: inside AWS's 5 minutes
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        status, headers, body = crt_signed(
            broker, alice, target="/topics/skew/6", body=b"6", date=now + skew
        )
        assert (status, headers["x-amzn-ErrorType"]) == (403, "ForbiddenException")
        assert json.loads(body) == {"message": "Forbidden"}
    records = [r for r in broker.logs if r.get("reason") == "SIGV4_CLOCK_SKEW"]
    assert len(records) == 2
    assert "5 min" in str(records[0]["details"])


def test_missing_signature_is_refused(broker: IotBrokerThread) -> None:
    context = ssl.create_default_context(cafile=str(broker.root_ca_path))
    connection = http.client.HTTPSConnection(
        "localhost", broker.ports["alpn"], context=context, timeout=TIMEOUT
    )
    try:
        connection.request("POST", "/topics/unsigned", body=b"x")
        response = connection.getresponse()
        assert response.status == 403
        assert response.getheader("x-amzn-ErrorType") == "ForbiddenException"
        response.read()
    finally:
        connection.close()
    refusal(broker, "SIGV4_MISSING_AUTHENTICATION")


def test_expired_temporary_credentials_are_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    issued = datetime.now(UTC) - timedelta(seconds=1000)
    session = broker.iam.get_session_token(user_name="alice", duration_seconds=900, now=issued)
    expired = IamCredentials(
        "alice", session.access_key_id, session.secret_access_key, session.session_token
    )
    client = iot_data(broker, expired)
    with pytest.raises(client.exceptions.ForbiddenException):
        client.publish(topic="refused/expired", payload=b"no")
    refusal(broker, "SIGV4_EXPIRED_CREDENTIALS")
    fresh = broker.get_session_token("alice", duration_seconds=900)
    iot_data(broker, fresh).publish(topic="twin/expired", payload=b"ok")  # the twin
    assert broker.wait_for_message("twin/expired").payload == b"ok"


def test_a_session_token_that_is_not_the_keys_is_refused(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    session = broker.get_session_token("alice")
    other = broker.get_session_token("alice")
    assert session.session_token is not None and other.session_token is not None
    client = iot_data(broker, session, aws_session_token=other.session_token)
    with pytest.raises(client.exceptions.ForbiddenException):
        client.publish(topic="refused/token", payload=b"no")
    refusal(broker, "SIGV4_INVALID_SESSION_TOKEN")


def test_custom_authorizer_headers_are_refused_as_not_emulated(
    broker: IotBrokerThread, alice: IamCredentials
) -> None:
    status, _, _ = crt_signed(
        broker,
        alice,
        target="/topics/custom/auth",
        headers=(("x-amz-customauthorizer-name", "MyAuthorizer"),),
    )
    assert status == 403
    record = refusal(broker, "CUSTOM_AUTH_NOT_EMULATED")
    assert "not emulated" in str(record["details"])


# -- IAM policies authorize, with the IoT evaluator ------------------------------------------------


def test_iam_policy_denial_is_forbidden_and_logged(broker: IotBrokerThread) -> None:
    limited = broker.create_iam_user("limited", ONLY_OK_TOPICS)
    client = iot_data(broker, limited)
    client.publish(topic="ok/yes", payload=b"1")  # the twin
    with pytest.raises(client.exceptions.ForbiddenException):
        client.publish(topic="not-ok/no", payload=b"2")
    record = next(
        r
        for r in broker.logs
        if r.get("reason") == "AUTHORIZATION_FAILURE" and r.get("topicName") == "not-ok/no"
    )
    assert (record["eventType"], record["protocol"]) == ("Publish-In", "HTTP")
    assert record["principalId"] == limited.principal_id
    assert "iot:Publish" in str(record["details"])
    with pytest.raises(client.exceptions.ForbiddenException):
        client.get_thing_shadow(thingName="not-ok-thing")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_thing_shadow(thingName="ok-thing")  # allowed, and there is no shadow
    with pytest.raises(client.exceptions.ForbiddenException):
        client.list_retained_messages()  # iot:ListRetainedMessages on *: not granted


def test_a_policy_change_applies_to_the_next_request(broker: IotBrokerThread) -> None:
    bob = broker.create_iam_user("bob", ONLY_OK_TOPICS)
    client = iot_data(broker, bob)
    with pytest.raises(client.exceptions.ForbiddenException):
        client.publish(topic="later/ok", payload=b"no")
    broker.iam.put_user_policy("bob", "bob-iot", json.dumps(ONLY_OK_TOPICS).replace("ok/*", "*"))
    client.publish(topic="later/ok", payload=b"yes")
    assert broker.wait_for_message("later/ok").payload == b"yes"


def test_x509_doors_still_want_certificates(broker: IotBrokerThread, alice: IamCredentials) -> None:
    """SigV4 is 443 without a certificate only: 8443 (X.509) refuses a SigV4-only client."""
    client = boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url=f"https://localhost:{broker.ports['https']}",
        verify=str(broker.root_ca_path),
        aws_access_key_id=alice.access_key_id,
        aws_secret_access_key=alice.secret_access_key,
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    with pytest.raises(Exception, match=r"SSL|EOF|reset|certificate"):
        client.publish(topic="x509/only", payload=b"no")
