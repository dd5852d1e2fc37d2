"""Fleet provisioning by claim end to end: the Device SDK v2's identity client, boto3, the CLI.

AWS's fleet-provisioning sample flow with ``awsiot.iotidentity.IotIdentityClient`` over MQTT
(awscrt, MQTT door): a provisioning template created with boto3 on the api door; a claim
certificate whose only policy is AWS's documented claim policy; CreateKeysAndCertificate (and
CreateCertificateFromCsr) and RegisterThing through the identity client; then the new
certificate connects as the new thing, its policy from the template applies, and the claim stays
limited to provisioning. Each refusal carries AWS's error code and has a passing twin.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import cbor2
import pytest
from awscrt import mqtt
from awsiot import iotidentity
from botocore.config import Config as BotoConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aws_iot_mock import pki
from aws_iot_mock.aws.provisioning.claim_policy import claim_certificate_policy_json
from aws_iot_mock.certs_dir import write_private_key, write_public_file
from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, awsiot_connection, paho_client
from aws_iot_mock.testing.clients import DeviceRefusedError

TIMEOUT = 10.0
REGION = "us-east-1"
ACCOUNT = "123456789012"
TEMPLATE = "sensor-fleet"
GROUP = "sensors"

# The device's policy the template attaches: connect as its own thing, publish under its topics.
DEVICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:client/"
            "${iot:Connection.Thing.ThingName}",
        },
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/devices/"
            "${iot:Connection.Thing.ThingName}/*",
        },
    ],
}
# AWS's fleet-provisioning template shape (provision-template.html): a parameter, a thing named
# from it (Fn::Join) in a group, the certificate the device got, and a policy.
TEMPLATE_BODY: dict[str, Any] = {
    "Parameters": {
        "SerialNumber": {"Type": "String"},
        "AWS::IoT::Certificate::Id": {"Type": "String"},
    },
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "ThingName": {"Fn::Join": ["", ["sensor-", {"Ref": "SerialNumber"}]]},
                "AttributePayload": {"serial": {"Ref": "SerialNumber"}},
                "ThingGroups": [GROUP],
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "ACTIVE",
            },
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {"PolicyDocument": json.dumps(DEVICE_POLICY)},
        },
    },
}


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def iot(broker: IotBrokerThread) -> Any:
    client = boto3.client(
        "iot",
        endpoint_url=broker.api_endpoint_url,
        verify=str(broker.root_ca_path),
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    client.create_thing_group(thingGroupName=GROUP)
    client.create_provisioning_template(
        templateName=TEMPLATE,
        templateBody=json.dumps(TEMPLATE_BODY),
        provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/provisioning",
        enabled=True,
    )
    return client


def device_files(
    broker: IotBrokerThread, directory: Path, name: str, certificate_pem: str, private_key: str
) -> DeviceFiles:
    """Write a certificate and key where the SDK reads them; the rest of what it needs."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem.crt", directory / f"{name}.pem.key"
    write_public_file(cert_path, certificate_pem.encode())
    write_private_key(key_path, private_key.encode())
    certificate_id = pki.certificate_id(pki.load_certificate(certificate_pem.encode()))
    return DeviceFiles(
        client_id=name,
        cert_path=cert_path,
        key_path=key_path,
        root_ca_path=broker.root_ca_path,
        certificate_id=certificate_id,
        certificate_arn=pki.certificate_arn(REGION, ACCOUNT, certificate_id),
        thing_name=name,
        policy_name="",
        endpoint=broker.endpoint,
        port=broker.port,
    )


@pytest.fixture(scope="module")
def claim(
    broker: IotBrokerThread, iot: Any, tmp_path_factory: pytest.TempPathFactory
) -> DeviceFiles:
    """A claim certificate with AWS's claim policy (plus create-from-csr) and nothing else."""
    keys = broker.create_keys_and_certificate()
    iot.create_policy(
        policyName="claim-policy",
        policyDocument=claim_certificate_policy_json(REGION, ACCOUNT, TEMPLATE, include_csr=True),
    )
    iot.attach_policy(policyName="claim-policy", target=keys["certificateArn"])
    return device_files(
        broker,
        tmp_path_factory.mktemp("claim"),
        "claim-client",
        keys["certificatePem"],
        keys["keyPair"]["PrivateKey"],
    )


class Identity:
    """An ``IotIdentityClient`` on a claim connection, its responses queued."""

    def __init__(self, claim: DeviceFiles, client_id: str) -> None:
        self.connection = awsiot_connection(claim, client_id=client_id)
        self.client = iotidentity.IotIdentityClient(self.connection)
        self.queues: dict[str, queue.Queue[Any]] = {}
        qos = mqtt.QoS.AT_LEAST_ONCE
        keys_request = iotidentity.CreateKeysAndCertificateSubscriptionRequest()
        csr_request = iotidentity.CreateCertificateFromCsrSubscriptionRequest()
        register_request = iotidentity.RegisterThingSubscriptionRequest(template_name=TEMPLATE)
        for key, subscribe, request in (
            ("keys", self.client.subscribe_to_create_keys_and_certificate_accepted, keys_request),
            (
                "keys-rejected",
                self.client.subscribe_to_create_keys_and_certificate_rejected,
                keys_request,
            ),
            ("csr", self.client.subscribe_to_create_certificate_from_csr_accepted, csr_request),
            (
                "csr-rejected",
                self.client.subscribe_to_create_certificate_from_csr_rejected,
                csr_request,
            ),
            ("register", self.client.subscribe_to_register_thing_accepted, register_request),
            (
                "register-rejected",
                self.client.subscribe_to_register_thing_rejected,
                register_request,
            ),
        ):
            inbox: queue.Queue[Any] = queue.Queue()
            self.queues[key] = inbox
            future, _ = subscribe(request=request, qos=qos, callback=inbox.put)
            future.result(TIMEOUT)

    def next(self, key: str) -> Any:
        return self.queues[key].get(timeout=TIMEOUT)

    def create_keys(self) -> Any:
        self.client.publish_create_keys_and_certificate(
            iotidentity.CreateKeysAndCertificateRequest(), mqtt.QoS.AT_LEAST_ONCE
        ).result(TIMEOUT)
        return self.next("keys")

    def register(self, token: str, parameters: dict[str, str]) -> None:
        self.client.publish_register_thing(
            iotidentity.RegisterThingRequest(
                template_name=TEMPLATE, certificate_ownership_token=token, parameters=parameters
            ),
            mqtt.QoS.AT_LEAST_ONCE,
        ).result(TIMEOUT)

    def close(self) -> None:
        self.connection.disconnect().result(TIMEOUT)


@pytest.fixture
def identity(claim: DeviceFiles, request: pytest.FixtureRequest) -> Iterator[Identity]:
    client = Identity(claim, f"claim-{request.node.name[-20:]}")
    yield client
    client.close()


def publish_allowed(device: DeviceFiles, topic: str) -> None:
    """Connect as ``device`` and publish QoS 1 (the PUBACK proves it was authorized)."""
    connection = awsiot_connection(device)
    try:
        future, _ = connection.publish(topic, b"{}", mqtt.QoS.AT_LEAST_ONCE)
        future.result(TIMEOUT)
    finally:
        connection.disconnect().result(TIMEOUT)


def test_the_fleet_provisioning_sample_flow(
    broker: IotBrokerThread, iot: Any, claim: DeviceFiles, identity: Identity, tmp_path: Path
) -> None:
    created = identity.create_keys()
    assert created.certificate_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert created.private_key.startswith("-----BEGIN")
    assert created.certificate_ownership_token
    # Until RegisterThing, the new certificate is PENDING_ACTIVATION and cannot connect.
    described = iot.describe_certificate(certificateId=created.certificate_id)
    assert described["certificateDescription"]["status"] == "PENDING_ACTIVATION"

    identity.register(created.certificate_ownership_token, {"SerialNumber": "0042"})
    registered = identity.next("register")
    assert registered.thing_name == "sensor-0042"

    thing = iot.describe_thing(thingName="sensor-0042")
    assert thing["attributes"] == {"serial": "0042"}
    groups = iot.list_thing_groups_for_thing(thingName="sensor-0042")["thingGroups"]
    assert [group["groupName"] for group in groups] == [GROUP]
    described = iot.describe_certificate(certificateId=created.certificate_id)
    assert described["certificateDescription"]["status"] == "ACTIVE"
    principals = iot.list_thing_principals(thingName="sensor-0042")["principals"]
    assert principals == [described["certificateDescription"]["certificateArn"]]

    # The new certificate connects as the new thing; the template's policy applies.
    device = device_files(
        broker, tmp_path, "sensor-0042", created.certificate_pem, created.private_key
    )
    publish_allowed(device, "devices/sensor-0042/telemetry")
    with pytest.raises(DeviceRefusedError):
        awsiot_connection(device, client_id="sensor-9999")
    refusal = broker.wait_for_refusal("AUTHORIZATION_FAILURE", "sensor-9999")
    assert refusal["eventType"] == "Connect"

    # The claim stays limited to provisioning: a device topic is refused, its twin (provisioning)
    # is the CreateKeysAndCertificate above.
    identity.connection.publish("devices/sensor-0042/telemetry", b"{}", mqtt.QoS.AT_MOST_ONCE)
    refusal = broker.wait_for_refusal(
        "AUTHORIZATION_FAILURE", identity.connection.client_id, event_type="Publish-In"
    )
    assert refusal["topicName"] == "devices/sensor-0042/telemetry"


def test_create_certificate_from_csr_keeps_the_key_on_the_device(
    broker: IotBrokerThread, iot: Any, identity: Identity, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensor-0043")]))
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    # A malformed CSR: InvalidCertificateSigningRequest; the real one (its twin): accepted.
    for csr_text, key_name in (("not a CSR", "csr-rejected"), (pem, "csr")):
        identity.client.publish_create_certificate_from_csr(
            iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request=csr_text),
            mqtt.QoS.AT_LEAST_ONCE,
        ).result(TIMEOUT)
        answer = identity.next(key_name)
        if key_name == "csr-rejected":
            assert (answer.status_code, answer.error_code) == (
                400,
                "InvalidCertificateSigningRequest",
            )
    created = answer
    identity.register(created.certificate_ownership_token, {"SerialNumber": "0043"})
    assert identity.next("register").thing_name == "sensor-0043"
    private_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    device = device_files(broker, tmp_path, "sensor-0043", created.certificate_pem, private_key)
    publish_allowed(device, "devices/sensor-0043/telemetry")


def test_register_thing_refusals_have_aws_error_codes_and_passing_twins(
    broker: IotBrokerThread, iot: Any, identity: Identity
) -> None:
    created = identity.create_keys()
    token = created.certificate_ownership_token

    # A forged ownership token.
    identity.register(token[:-4] + "AAAA", {"SerialNumber": "0050"})
    rejected = identity.next("register-rejected")
    assert (rejected.status_code, rejected.error_code) == (400, "InvalidCertificateOwnershipToken")

    # A disabled template.
    iot.update_provisioning_template(templateName=TEMPLATE, enabled=False)
    try:
        identity.register(token, {"SerialNumber": "0050"})
        rejected = identity.next("register-rejected")
        assert (rejected.status_code, rejected.error_code) == (400, "TemplateDisabled")
    finally:
        iot.update_provisioning_template(templateName=TEMPLATE, enabled=True)

    # The twin: the same token, the template enabled.
    identity.register(token, {"SerialNumber": "0050"})
    assert identity.next("register").thing_name == "sensor-0050"


def test_the_cli_manages_templates_in_the_same_store(
    broker: IotBrokerThread, iot: Any, tmp_path: Path
) -> None:
    config = broker.config
    body = tmp_path / "template.json"
    body.write_text(json.dumps(TEMPLATE_BODY), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "aws_iot_mock",
                *args,
                "--state-dir",
                str(config.state_dir),
                "--certs-dir",
                str(config.certs_dir),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    created = cli(
        "create-provisioning-template",
        "--template-name",
        "from-cli",
        "--template-body",
        f"file://{body}",
        "--provisioning-role-arn",
        f"arn:aws:iam::{ACCOUNT}:role/provisioning",
        "--enabled",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["templateName"] == "from-cli"
    described = iot.describe_provisioning_template(templateName="from-cli")
    assert described["enabled"] is True
    assert json.loads(described["templateBody"]) == TEMPLATE_BODY
    again = cli(
        "create-provisioning-template",
        "--template-name",
        "from-cli",
        "--template-body",
        f"file://{body}",
        "--provisioning-role-arn",
        f"arn:aws:iam::{ACCOUNT}:role/provisioning",
    )
    assert again.returncode == 254
    assert "ResourceAlreadyExistsException" in again.stderr


def test_the_cbor_forms_with_a_raw_client(
    broker: IotBrokerThread, iot: Any, claim: DeviceFiles
) -> None:
    answers: queue.Queue[Any] = queue.Queue()
    client = paho_client(claim, client_id="claim-cbor")
    try:
        client.on_message = lambda _client, _userdata, message: answers.put(message)
        create = "$aws/certificates/create/cbor"
        provision = f"$aws/provisioning-templates/{TEMPLATE}/provision/cbor"
        for topic in (f"{create}/accepted", f"{create}/rejected", f"{provision}/accepted"):
            client.subscribe(topic, qos=1)
        # Subscriptions are in place once a QoS 1 publish on the claim's topics is acknowledged
        # (the broker handles packets in order); a malformed payload is that first publish.
        client.publish(create, b"\xff\xff", qos=1).wait_for_publish(TIMEOUT)
        rejected = answers.get(timeout=TIMEOUT)
        assert rejected.topic == f"{create}/rejected"
        assert cbor2.loads(rejected.payload)["errorCode"] == "InvalidPayload"

        client.publish(create, cbor2.dumps({}), qos=1)
        accepted = answers.get(timeout=TIMEOUT)
        assert accepted.topic == f"{create}/accepted"
        keys = cbor2.loads(accepted.payload)
        assert set(keys) == {
            "certificateId",
            "certificatePem",
            "privateKey",
            "certificateOwnershipToken",
        }
        request = {
            "certificateOwnershipToken": keys["certificateOwnershipToken"],
            "parameters": {"SerialNumber": "0060"},
        }
        client.publish(provision, cbor2.dumps(request), qos=1)
        registered = answers.get(timeout=TIMEOUT)
        assert registered.topic == f"{provision}/accepted"
        assert cbor2.loads(registered.payload)["thingName"] == "sensor-0060"
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_template_with_a_pre_provisioning_hook_is_refused_with_a_reason(
    broker: IotBrokerThread, iot: Any, claim: DeviceFiles
) -> None:
    iot.create_provisioning_template(
        templateName="hooked",
        templateBody=json.dumps(TEMPLATE_BODY),
        provisioningRoleArn=f"arn:aws:iam::{ACCOUNT}:role/provisioning",
        enabled=True,
        preProvisioningHook={"targetArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:check"},
    )
    hook = iot.describe_provisioning_template(templateName="hooked")["preProvisioningHook"]
    assert hook["targetArn"].endswith(":function:check")
    iot.create_policy(
        policyName="claim-hooked",
        policyDocument=claim_certificate_policy_json(REGION, ACCOUNT, "hooked"),
    )
    iot.attach_policy(policyName="claim-hooked", target=claim.certificate_arn)
    answers: queue.Queue[Any] = queue.Queue()
    client = paho_client(claim, client_id="claim-hook")
    try:
        client.on_message = lambda _client, _userdata, message: answers.put(message)
        create = "$aws/certificates/create/json"
        client.subscribe(f"{create}/accepted", qos=1)
        for template in ("hooked", TEMPLATE):
            client.subscribe(f"$aws/provisioning-templates/{template}/provision/json/+", qos=1)
        client.publish(create, b"{}", qos=1).wait_for_publish(TIMEOUT)
        token = json.loads(answers.get(timeout=TIMEOUT).payload)["certificateOwnershipToken"]
        request = json.dumps(
            {"certificateOwnershipToken": token, "parameters": {"SerialNumber": "0070"}}
        )
        # The hooked template: refused, saying why; its twin, the same request without a hook.
        for template, outcome in (("hooked", "rejected"), (TEMPLATE, "accepted")):
            client.publish(f"$aws/provisioning-templates/{template}/provision/json", request, 1)
            answer = answers.get(timeout=TIMEOUT)
            assert answer.topic.endswith(f"{template}/provision/json/{outcome}")
            document = json.loads(answer.payload)
            if outcome == "rejected":
                assert (document["statusCode"], document["errorCode"]) == (403, "AccessDenied")
                assert "hook" in document["errorMessage"].lower()
            else:
                assert document["thingName"] == "sensor-0070"
    finally:
        client.disconnect()
        client.loop_stop()


def test_template_versions_and_deletion(iot: Any) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:role/provisioning"
    iot.create_provisioning_template(
        templateName="versioned", templateBody=json.dumps(TEMPLATE_BODY), provisioningRoleArn=arn
    )
    resources: dict[str, Any] = TEMPLATE_BODY["Resources"]
    second = dict(TEMPLATE_BODY, Resources={"thing": resources["thing"]})
    version = iot.create_provisioning_template_version(
        templateName="versioned", templateBody=json.dumps(second), setAsDefault=True
    )
    assert (version["versionId"], version["isDefaultVersion"]) == (2, True)
    versions = iot.list_provisioning_template_versions(templateName="versioned")["versions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [(1, False), (2, True)]
    described = iot.describe_provisioning_template_version(templateName="versioned", versionId=2)
    assert json.loads(described["templateBody"]) == second
    # The default version cannot be deleted; another one can.
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_provisioning_template_version(templateName="versioned", versionId=2)
    iot.delete_provisioning_template_version(templateName="versioned", versionId=1)
    iot.delete_provisioning_template(templateName="versioned")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_provisioning_template(templateName="versioned")
