"""The ``iot`` control-plane API with boto3's real client, against an in-process broker.

Every operation the service layer implements is called through boto3 (``endpoint_url`` = the
api door, ``verify`` = the local root CA, dummy credentials), so the request serialization, the
SigV4 signature and the response parsing are botocore's own. Each modelled error class is raised
by botocore from our answer, each with a passing twin. The live-effect tests show a change made
through the API reaching connected devices, as the same change made with the CLI does.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config as BotoConfig
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from aws_iot_mock import pki
from aws_iot_mock.api.control_endpoint import IOT_ROUTER
from aws_iot_mock.api.iot_control import IMPLEMENTED_OPERATIONS, IotControlPlane
from aws_iot_mock.api.iot_routes import IOT_ROUTE_TABLE
from aws_iot_mock.api.rest_json import epoch_json
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.iam.store import IamStore
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.rules.topic_rules import RULES_OPERATIONS
from aws_iot_mock.services.jobs import JOBS_OPERATIONS
from aws_iot_mock.services.provisioning_templates import PROVISIONING_OPERATIONS
from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, awsiot_connection, paho_client
from aws_iot_mock.testing.clients import DeviceRefusedError
from tests._aws_models import assert_shape
from tests.iot_routes_gen import route_line

ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
)
DENY_PUBLISH = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*"}],
    }
)

# What a running broker's api door serves: the registry's operations and its built-in services'.
SERVED_BY_THE_BROKER = (
    frozenset(IMPLEMENTED_OPERATIONS)
    | frozenset(JOBS_OPERATIONS)
    | frozenset(PROVISIONING_OPERATIONS)
    | frozenset(RULES_OPERATIONS)
)


def connect_as_thing(region: str, account: str) -> str:
    """A policy allowing CONNECT with the client ID of an attached thing, and nothing else."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iot:Connect",
                    "Resource": f"arn:aws:iot:{region}:{account}:client/"
                    "${iot:Connection.Thing.ThingName}",
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


def iot_client(broker: IotBrokerThread, **options: Any) -> Any:
    """boto3's iot client on the api door, with dummy credentials (any key is accepted)."""
    settings: dict[str, Any] = {
        "endpoint_url": broker.api_endpoint_url,
        "verify": str(broker.root_ca_path),
        "region_name": "us-east-1",
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "config": BotoConfig(retries={"max_attempts": 1}),
    }
    return boto3.client("iot", **(settings | options))


@pytest.fixture(scope="module")
def iot(broker: IotBrokerThread) -> Any:
    return iot_client(broker)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A resource name unique to the test (the broker is shared by the module)."""
    return "".join(c if c.isalnum() else "-" for c in request.node.name)[:60].strip("-")


def error_code(info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# --- the route table -----------------------------------------------------------------------


def test_route_table_matches_the_installed_botocore_model_for_every_implemented_operation() -> None:
    model = botocore.session.get_session().get_service_model("iot")
    table = {line.split()[0]: line for line in IOT_ROUTE_TABLE.splitlines() if line.strip()}
    for operation in SERVED_BY_THE_BROKER:
        assert table[operation] == route_line(model, operation), operation


def test_every_implemented_operation_is_reachable_by_method_and_path() -> None:
    for operation in SERVED_BY_THE_BROKER:
        assert IOT_ROUTER.route(operation).name == operation


def test_an_operation_not_emulated_says_so(iot: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        iot.list_billing_groups()
    assert error_code(info) == "NotImplementedException"
    assert "ListBillingGroups" in str(info.value)


# --- certificates --------------------------------------------------------------------------


def test_certificates_lifecycle(iot: Any, broker: IotBrokerThread) -> None:
    created = iot.create_keys_and_certificate(setAsActive=True)
    certificate_id = created["certificateId"]
    assert created["certificateArn"].endswith(f":cert/{certificate_id}")
    assert "BEGIN RSA PRIVATE KEY" in created["keyPair"]["PrivateKey"] or (
        "BEGIN PRIVATE KEY" in created["keyPair"]["PrivateKey"]
    )
    description = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["creationDate"].tzinfo is not None  # parsed from epoch seconds
    assert description["certificatePem"] == created["certificatePem"]

    iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
    assert (
        iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]["status"]
        == "INACTIVE"
    )
    listed = iot.list_certificates()["certificates"]
    assert certificate_id in [c["certificateId"] for c in listed]

    iot.delete_certificate(certificateId=certificate_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_certificate(certificateId=certificate_id)


def test_create_certificate_from_csr_and_register(iot: Any, broker: IotBrokerThread) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-device")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    from_csr = iot.create_certificate_from_csr(certificateSigningRequest=csr, setAsActive=False)
    assert from_csr["certificatePem"].startswith("-----BEGIN CERTIFICATE-----")

    # RegisterCertificate: a certificate the local CA signed, not registered yet.
    pem = from_csr["certificatePem"]
    iot.delete_certificate(certificateId=from_csr["certificateId"])
    registered = iot.register_certificate(
        certificatePem=pem, caCertificatePem=broker.root_ca_path.read_text(), status="ACTIVE"
    )
    assert registered["certificateId"] == from_csr["certificateId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.register_certificate_without_ca(certificatePem=pem)
    iot.update_certificate(certificateId=registered["certificateId"], newStatus="REVOKED")
    iot.delete_certificate(certificateId=registered["certificateId"])
    again = iot.register_certificate_without_ca(certificatePem=pem, status="INACTIVE")
    assert again["certificateId"] == registered["certificateId"]


def test_list_certificates_pages_with_page_size_and_marker(iot: Any) -> None:
    ids = {iot.create_keys_and_certificate()["certificateId"] for _ in range(3)}
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"pageSize": 2} | ({"marker": marker} if marker else {})
        answer = iot.list_certificates(**kwargs)
        assert len(answer["certificates"]) <= 2
        seen += [c["certificateId"] for c in answer["certificates"]]
        marker = answer.get("nextMarker")
        if marker is None:
            break
    assert ids <= set(seen)
    assert len(seen) == len(set(seen))
    # botocore's own paginator follows nextMarker the same way.
    paginated = [
        c["certificateId"]
        for page in iot.get_paginator("list_certificates").paginate(
            PaginationConfig={"PageSize": 2}
        )
        for c in page["certificates"]
    ]
    assert paginated == seen


def test_ca_certificates(iot: Any, tmp_path: Path, name: str) -> None:
    ca = pki.create_root_ca()
    registered = iot.register_ca_certificate(
        caCertificate=ca.certificate_pem.decode(),
        setAsActive=True,
        tags=[{"Key": "team", "Value": "fleet"}],
    )
    ca_id = registered["certificateId"]
    description = iot.describe_ca_certificate(certificateId=ca_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert ca_id in [c["certificateId"] for c in iot.list_ca_certificates()["certificates"]]
    assert iot.list_tags_for_resource(resourceArn=registered["certificateArn"])["tags"] == [
        {"Key": "team", "Value": "fleet"}
    ]
    device = pki.issue_device_certificate(ca)
    iot.register_certificate(
        certificatePem=device.certificate_pem.decode(),
        caCertificatePem=ca.certificate_pem.decode(),
    )
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca_id)["certificates"]
    assert [c["certificateId"] for c in by_ca] == [pki.certificate_id(device.certificate_pem)]

    with pytest.raises(iot.exceptions.CertificateStateException):
        iot.delete_ca_certificate(certificateId=ca_id)
    iot.update_ca_certificate(certificateId=ca_id, newStatus="INACTIVE")
    iot.delete_ca_certificate(certificateId=ca_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_ca_certificate(certificateId=ca_id)


# --- things, thing types, principals ----------------------------------------------------------


def test_things(iot: Any, name: str) -> None:
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"room": "k1"}})
    assert created["thingArn"].endswith(f":thing/{name}")
    assert iot.describe_thing(thingName=name)["attributes"] == {"room": "k1"}
    iot.update_thing(thingName=name, attributePayload={"attributes": {"floor": "2"}, "merge": True})
    described = iot.describe_thing(thingName=name)
    assert described["attributes"] == {"room": "k1", "floor": "2"}
    assert described["version"] == 2
    listed = iot.list_things(attributeName="floor", attributeValue="2")["things"]
    assert name in [t["thingName"] for t in listed]
    prefixed = iot.list_things(
        attributeName="room", attributeValue="k", usePrefixAttributeValue=True
    )["things"]
    assert name in [t["thingName"] for t in prefixed]
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing(thingName=name, expectedVersion=1)
    iot.delete_thing(thingName=name, expectedVersion=2)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=name)


def test_list_things_pages_with_max_results_and_next_token(iot: Any, name: str) -> None:
    for index in range(3):
        iot.create_thing(thingName=f"{name}-{index}", attributePayload={"attributes": {"p": name}})
    pages = list(
        iot.get_paginator("list_things").paginate(
            attributeName="p", attributeValue=name, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["things"]) for page in pages] == [2, 1]
    assert "nextToken" in pages[0]


def test_thing_types(iot: Any, name: str) -> None:
    created = iot.create_thing_type(
        thingTypeName=name,
        thingTypeProperties={"thingTypeDescription": "lamps", "searchableAttributes": ["w"]},
        tags=[{"Key": "k", "Value": "v"}],
    )
    described = iot.describe_thing_type(thingTypeName=name)
    assert described["thingTypeId"] == created["thingTypeId"]
    assert described["thingTypeProperties"]["thingTypeDescription"] == "lamps"
    assert described["thingTypeMetadata"]["deprecated"] is False
    listed = iot.list_thing_types(thingTypeName=name)["thingTypes"]
    assert [t["thingTypeName"] for t in listed] == [name]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName=name)  # not deprecated yet
    iot.deprecate_thing_type(thingTypeName=name)
    assert iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]["deprecated"]
    iot.delete_thing_type(thingTypeName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=name)


def test_thing_principals(iot: Any, name: str) -> None:
    certificate = iot.create_keys_and_certificate()
    arn = certificate["certificateArn"]
    iot.create_thing(thingName=name)
    iot.attach_thing_principal(thingName=name, principal=arn)
    assert iot.list_thing_principals(thingName=name)["principals"] == [arn]
    assert iot.list_principal_things(principal=arn)["things"] == [name]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing(thingName=name)  # a principal is attached
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_certificate(certificateId=certificate["certificateId"])
    iot.detach_thing_principal(thingName=name, principal=arn)
    assert iot.list_thing_principals(thingName=name)["principals"] == []
    iot.delete_thing(thingName=name)
    iot.delete_certificate(certificateId=certificate["certificateId"])


# --- policies ------------------------------------------------------------------------------


def test_policies_and_versions(iot: Any, name: str) -> None:
    created = iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    assert created["policyVersionId"] == "1"
    assert iot.get_policy(policyName=name)["policyDocument"] == ALLOW_ALL
    assert name in [p["policyName"] for p in iot.list_policies()["policies"]]
    version = iot.create_policy_version(
        policyName=name, policyDocument=DENY_PUBLISH, setAsDefault=True
    )
    assert version == version | {"policyVersionId": "2", "isDefaultVersion": True}
    got = iot.get_policy_version(policyName=name, policyVersionId="1")
    assert got["isDefaultVersion"] is False
    assert got["generationId"]
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions] == [
        ("1", False),
        ("2", True),
    ]
    iot.set_default_policy_version(policyName=name, policyVersionId="1")
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy_version(policyName=name, policyVersionId="1")  # the default
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=name)  # a non-default version exists
    iot.delete_policy_version(policyName=name, policyVersionId="2")
    iot.delete_policy(policyName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.get_policy(policyName=name)


def test_policy_attachments(iot: Any, name: str) -> None:
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    certificate = iot.create_keys_and_certificate()
    arn = certificate["certificateArn"]
    iot.attach_policy(policyName=name, target=arn)
    assert [p["policyName"] for p in iot.list_attached_policies(target=arn)["policies"]] == [name]
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [arn]
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=name)
    iot.detach_policy(policyName=name, target=arn)
    assert iot.list_attached_policies(target=arn)["policies"] == []
    # The deprecated principal-policy verbs are the same attachments.
    iot.attach_principal_policy(policyName=name, principal=arn)
    assert [p["policyName"] for p in iot.list_principal_policies(principal=arn)["policies"]] == [
        name
    ]
    assert iot.list_policy_principals(policyName=name)["principals"] == [arn]
    iot.detach_principal_policy(policyName=name, principal=arn)
    iot.delete_policy(policyName=name)


def test_test_authorization_and_effective_policies(iot: Any, name: str) -> None:
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    arn = certificate["certificateArn"]
    topic = "arn:aws:iot:us-east-1:123456789012:topic/t"
    denied = iot.test_authorization(
        principal=arn, authInfos=[{"actionType": "PUBLISH", "resources": [topic]}]
    )["authResults"][0]
    assert denied["authDecision"] == "IMPLICIT_DENY"
    iot.attach_policy(policyName=name, target=arn)
    allowed = iot.test_authorization(
        principal=arn, authInfos=[{"actionType": "PUBLISH", "resources": [topic]}]
    )["authResults"][0]
    assert allowed["authDecision"] == "ALLOWED"
    assert [p["policyName"] for p in allowed["allowed"]["policies"]] == [name]
    effective = iot.get_effective_policies(principal=arn)["effectivePolicies"]
    assert [(p["policyName"], p["policyDocument"]) for p in effective] == [(name, ALLOW_ALL)]


@pytest.mark.parametrize(
    "endpoint_type", ["iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs"]
)
def test_describe_endpoint_for_every_endpoint_type(
    iot: Any, broker: IotBrokerThread, endpoint_type: str
) -> None:
    assert iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"] == broker.endpoint


def test_describe_endpoint_refuses_an_unknown_type(iot: Any) -> None:
    with pytest.raises(iot.exceptions.InvalidRequestException, match="endpointType"):
        iot.describe_endpoint(endpointType="iot:Nope")


# --- thing groups and tags -----------------------------------------------------------------


def test_thing_groups(iot: Any, name: str) -> None:
    parent = iot.create_thing_group(
        thingGroupName=f"{name}-p",
        thingGroupProperties={
            "thingGroupDescription": "site",
            "attributePayload": {"attributes": {"city": "Oslo"}},
        },
        tags=[{"Key": "env", "Value": "test"}],
    )
    child = iot.create_thing_group(thingGroupName=f"{name}-c", parentGroupName=f"{name}-p")
    described = iot.describe_thing_group(thingGroupName=f"{name}-c")
    assert described["thingGroupMetadata"]["parentGroupName"] == f"{name}-p"
    assert described["thingGroupMetadata"]["rootToParentThingGroups"] == [
        {"groupName": f"{name}-p", "groupArn": parent["thingGroupArn"]}
    ]
    children = iot.list_thing_groups(parentGroup=f"{name}-p")["thingGroups"]
    assert children == [{"groupName": f"{name}-c", "groupArn": child["thingGroupArn"]}]
    prefixed = iot.list_thing_groups(namePrefixFilter=name)["thingGroups"]
    assert [g["groupName"] for g in prefixed] == [f"{name}-c", f"{name}-p"]

    iot.create_thing(thingName=name)
    iot.add_thing_to_thing_group(thingGroupName=f"{name}-c", thingName=name)
    assert iot.list_things_in_thing_group(thingGroupName=f"{name}-c")["things"] == [name]
    assert iot.list_things_in_thing_group(thingGroupName=f"{name}-p")["things"] == []
    assert iot.list_things_in_thing_group(thingGroupName=f"{name}-p", recursive=True)["things"] == [
        name
    ]
    assert iot.list_thing_groups_for_thing(thingName=name)["thingGroups"] == children
    with pytest.raises(iot.exceptions.InvalidRequestException, match="same hierarchy"):
        iot.add_thing_to_thing_group(thingGroupArn=parent["thingGroupArn"], thingName=name)

    updated = iot.update_thing_group(
        thingGroupName=f"{name}-p",
        thingGroupProperties={"attributePayload": {"attributes": {"zip": "0150"}, "merge": True}},
        expectedVersion=1,
    )
    assert updated["version"] == 2
    properties = iot.describe_thing_group(thingGroupName=f"{name}-p")["thingGroupProperties"]
    assert properties["attributePayload"]["attributes"] == {"city": "Oslo", "zip": "0150"}
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing_group(
            thingGroupName=f"{name}-p", thingGroupProperties={}, expectedVersion=1
        )
    with pytest.raises(iot.exceptions.InvalidRequestException, match="child groups"):
        iot.delete_thing_group(thingGroupName=f"{name}-p")

    iot.remove_thing_from_thing_group(thingGroupName=f"{name}-c", thingName=name)
    assert iot.list_thing_groups_for_thing(thingName=name)["thingGroups"] == []
    iot.delete_thing_group(thingGroupName=f"{name}-c")
    iot.delete_thing_group(thingGroupName=f"{name}-p")
    iot.delete_thing_group(thingGroupName=f"{name}-p")  # already gone: no error, as on AWS
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=f"{name}-p")


def test_policies_attach_to_thing_groups(iot: Any, name: str) -> None:
    group = iot.create_thing_group(thingGroupName=f"{name}-p")
    iot.create_thing_group(thingGroupName=f"{name}-c", parentGroupName=f"{name}-p")
    child_arn = iot.describe_thing_group(thingGroupName=f"{name}-c")["thingGroupArn"]
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    iot.attach_policy(policyName=name, target=group["thingGroupArn"])
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [group["thingGroupArn"]]
    assert iot.list_attached_policies(target=child_arn)["policies"] == []
    inherited = iot.list_attached_policies(target=child_arn, recursive=True)["policies"]
    assert [p["policyName"] for p in inherited] == [name]

    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName=name)
    iot.attach_thing_principal(thingName=name, principal=certificate["certificateArn"])
    iot.add_thing_to_thing_group(thingGroupName=f"{name}-c", thingName=name)
    as_thing = iot.get_effective_policies(principal=certificate["certificateArn"], thingName=name)[
        "effectivePolicies"
    ]
    assert [p["policyName"] for p in as_thing] == [name]
    as_certificate = iot.get_effective_policies(principal=certificate["certificateArn"])
    assert as_certificate["effectivePolicies"] == []


def test_tags(iot: Any, name: str) -> None:
    arn = iot.create_policy(
        policyName=name, policyDocument=ALLOW_ALL, tags=[{"Key": "a", "Value": "1"}]
    )["policyArn"]
    iot.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    iot.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iot.exceptions.InvalidRequestException, match="aws: prefix"):
        iot.tag_resource(resourceArn=arn, tags=[{"Key": "aws:x", "Value": "1"}])
    missing = arn.replace(f"policy/{name}", "policy/nope")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=missing)
    with pytest.raises(iot.exceptions.LimitExceededException):
        iot.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])


# --- one test per error class --------------------------------------------------------------


def test_resource_not_found_and_its_twin(iot: Any, name: str) -> None:
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as info:
        iot.describe_thing(thingName=name)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    iot.create_thing(thingName=name)
    assert iot.describe_thing(thingName=name)["thingName"] == name


def test_resource_already_exists_and_its_twin(iot: Any, name: str) -> None:
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    # The same configuration again succeeds (API_CreateThing) ...
    iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    # ... another one is refused.
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as info:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "2"}})
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_delete_conflict_and_its_twin(iot: Any, name: str) -> None:
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    certificate = iot.create_keys_and_certificate()
    iot.attach_policy(policyName=name, target=certificate["certificateArn"])
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_policy(policyName=name)
    iot.detach_policy(policyName=name, target=certificate["certificateArn"])
    iot.delete_policy(policyName=name)


def test_invalid_request_and_its_twin(iot: Any, name: str) -> None:
    with pytest.raises(iot.exceptions.InvalidRequestException) as info:
        iot.create_thing(thingName="has spaces")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    iot.create_thing(thingName=name)


def test_version_conflict_and_its_twin(iot: Any, name: str) -> None:
    iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {}}, expectedVersion=7)
    iot.update_thing(thingName=name, attributePayload={"attributes": {}}, expectedVersion=1)


def test_versions_limit_exceeded_and_its_twin(iot: Any, name: str) -> None:
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    for _ in range(4):
        iot.create_policy_version(policyName=name, policyDocument=ALLOW_ALL)
    with pytest.raises(iot.exceptions.VersionsLimitExceededException):
        iot.create_policy_version(policyName=name, policyDocument=ALLOW_ALL)
    iot.delete_policy_version(policyName=name, policyVersionId="2")
    iot.create_policy_version(policyName=name, policyDocument=ALLOW_ALL)


def test_malformed_policy_and_its_twin(iot: Any, name: str) -> None:
    with pytest.raises(iot.exceptions.MalformedPolicyException):
        iot.create_policy(policyName=name, policyDocument='{"Statement": "nope"}')
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)


def test_certificate_state_and_its_twin(iot: Any) -> None:
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    with pytest.raises(iot.exceptions.CertificateStateException) as info:
        iot.delete_certificate(certificateId=certificate["certificateId"])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 406
    iot.update_certificate(certificateId=certificate["certificateId"], newStatus="INACTIVE")
    iot.delete_certificate(certificateId=certificate["certificateId"])


def test_certificate_validation_and_its_twin(iot: Any, broker: IotBrokerThread) -> None:
    stranger = pki.issue_device_certificate(pki.create_root_ca())
    with pytest.raises(iot.exceptions.CertificateValidationException):
        iot.register_certificate(certificatePem=stranger.certificate_pem.decode())
    ours = pki.issue_device_certificate(_certs(broker).ensure_root_ca())
    iot.register_certificate(certificatePem=ours.certificate_pem.decode())


def test_limit_exceeded_and_its_twin(iot: Any, name: str) -> None:
    certificate = iot.create_keys_and_certificate()
    for index in range(10):
        iot.create_policy(policyName=f"{name}-{index}", policyDocument=ALLOW_ALL)
        iot.attach_policy(policyName=f"{name}-{index}", target=certificate["certificateArn"])
    iot.create_policy(policyName=f"{name}-x", policyDocument=ALLOW_ALL)
    with pytest.raises(iot.exceptions.LimitExceededException):
        iot.attach_policy(policyName=f"{name}-x", target=certificate["certificateArn"])
    iot.detach_policy(policyName=f"{name}-0", target=certificate["certificateArn"])
    iot.attach_policy(policyName=f"{name}-x", target=certificate["certificateArn"])


# --- authentication ------------------------------------------------------------------------


def test_an_unsigned_request_is_refused_and_a_signed_one_answered(broker: IotBrokerThread) -> None:
    unsigned = iot_client(
        broker, config=BotoConfig(signature_version=botocore.UNSIGNED, retries={"max_attempts": 1})
    )
    with pytest.raises(botocore.exceptions.ClientError) as info:
        unsigned.list_things()
    assert error_code(info) == "MissingAuthenticationTokenException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    refusal = broker.wait_for_refusal(Reason.CONTROL_PLANE_AUTHENTICATION_FAILED)
    assert str(refusal["details"]).startswith("SIGV4_MISSING_AUTHENTICATION")
    assert "things" in iot_client(broker).list_things()


def test_a_known_key_is_verified_even_when_not_strict(broker: IotBrokerThread) -> None:
    with IamStore.open(broker.config.state_dir, account_id=broker.config.account_id) as iam:
        iam.create_user("tester")
        key = iam.create_access_key("tester")
    wrong = boto3.client(
        "iot",
        endpoint_url=broker.api_endpoint_url,
        verify=str(broker.root_ca_path),
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key="0" * 40,
    )
    with pytest.raises(botocore.exceptions.ClientError) as info:
        wrong.list_things()
    assert error_code(info) == "InvalidSignatureException"
    right = boto3.client(
        "iot",
        endpoint_url=broker.api_endpoint_url,
        verify=str(broker.root_ca_path),
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )
    assert "things" in right.list_things()


def test_strict_sigv4_refuses_unknown_keys_and_accepts_local_iam_keys() -> None:
    with IotBrokerThread(aws_quotas=False, strict_sigv4=True) as strict:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            iot_client(strict).list_things()
        assert error_code(info) == "UnrecognizedClientException"
        refusal = strict.wait_for_refusal(Reason.CONTROL_PLANE_AUTHENTICATION_FAILED)
        assert str(refusal["details"]).startswith("SIGV4_UNKNOWN_ACCESS_KEY")
        with IamStore.open(strict.config.state_dir, account_id=strict.config.account_id) as iam:
            iam.create_user("ci")
            key = iam.create_access_key("ci")
        client = boto3.client(
            "iot",
            endpoint_url=strict.api_endpoint_url,
            verify=str(strict.root_ca_path),
            region_name="us-east-1",
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
        )
        assert client.list_things()["things"] == []


# --- the door: HTTPS, and plain HTTP on loopback only ------------------------------------


def test_plain_http_on_loopback(broker: IotBrokerThread) -> None:
    plain = boto3.client(
        "iot",
        endpoint_url=f"http://127.0.0.1:{broker.ports['api']}",
        region_name="us-east-1",
        aws_access_key_id="AKIDPLAIN",
        aws_secret_access_key="secret",
    )
    assert plain.describe_endpoint()["endpointAddress"] == broker.endpoint


def test_plain_bytes_on_a_data_door_are_still_refused(broker: IotBrokerThread) -> None:
    with socket.create_connection(("127.0.0.1", broker.ports["https"]), timeout=5) as raw:
        raw.sendall(b"GET /things HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.settimeout(5)
        assert raw.recv(100) == b""  # closed, no HTTP answer
    refusal = broker.wait_for_refusal(Reason.HANDSHAKE_FAILED)
    assert "TLS" in str(refusal["details"]) or "handshake" in str(refusal["details"]).lower()


def test_a_built_in_service_adds_its_operations_and_cannot_take_a_served_one(
    broker: IotBrokerThread,
) -> None:
    service = IotControlPlane(broker.registry, broker.config, certs=_certs(broker))
    with pytest.raises(AwsApiError) as info:
        service.call("ListTopicRules", {})
    assert info.value.code == "NotImplementedException"
    service.add_operations({"ListTopicRules": lambda request: {"rules": [], "seen": request}})
    assert service.call("ListTopicRules", {"maxResults": 1}) == {
        "rules": [],
        "seen": {"maxResults": 1},
    }
    with pytest.raises(ValueError, match="ListThings"):
        service.add_operations({"ListThings": lambda request: {}})


# --- the response shapes are the model's -----------------------------------------------------


def test_service_responses_have_the_models_shapes(broker: IotBrokerThread, name: str) -> None:
    service = IotControlPlane(broker.registry, broker.config, certs=_certs(broker))

    def call(operation: str, **request: Any) -> dict[str, Any]:
        result = service.call(operation, request)
        assert_shape("iot", operation, json.loads(json.dumps(result, default=epoch_json)))
        return result

    certificate = call("CreateKeysAndCertificate", setAsActive=True)
    call("DescribeCertificate", certificateId=certificate["certificateId"])
    call("ListCertificates", pageSize=1)
    call("CreateThingType", thingTypeName=name)
    call("DescribeThingType", thingTypeName=name)
    call("ListThingTypes")
    call("CreateThing", thingName=name, thingTypeName=name)
    call("DescribeThing", thingName=name)
    call("ListThings")
    call("CreateThingGroup", thingGroupName=name)
    call("DescribeThingGroup", thingGroupName=name)
    call("ListThingGroups")
    call("CreatePolicy", policyName=name, policyDocument=ALLOW_ALL)
    call("GetPolicy", policyName=name)
    call("GetPolicyVersion", policyName=name, policyVersionId="1")
    call("ListPolicyVersions", policyName=name)
    call("ListPolicies")
    call("CreateDomainConfiguration", domainConfigurationName=name, domainName=f"{name}.example")
    call("DescribeDomainConfiguration", domainConfigurationName=name)
    call("ListDomainConfigurations")
    call("DescribeDomainConfiguration", domainConfigurationName="iot:Data-ATS")
    call(
        "TestAuthorization",
        principal=certificate["certificateArn"],
        authInfos=[{"actionType": "CONNECT", "resources": ["*"]}],
    )


def _certs(broker: IotBrokerThread) -> CertsDirectory:
    return CertsDirectory(broker.certs_dir)


# --- live effects --------------------------------------------------------------------------


def device_from_api(
    broker: IotBrokerThread, iot: Any, thing_name: str, directory: Path, *, active: bool = True
) -> DeviceFiles:
    """A thing and an ACTIVE certificate made with boto3, as files a client can use."""
    keys = iot.create_keys_and_certificate(setAsActive=active)
    iot.create_thing(thingName=thing_name)
    iot.attach_thing_principal(thingName=thing_name, principal=keys["certificateArn"])
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    write_public_file(cert_path, keys["certificatePem"].encode())
    write_private_key(key_path, keys["keyPair"]["PrivateKey"].encode())
    return DeviceFiles(
        client_id=thing_name,
        cert_path=cert_path,
        key_path=key_path,
        root_ca_path=broker.root_ca_path,
        certificate_id=keys["certificateId"],
        certificate_arn=keys["certificateArn"],
        thing_name=thing_name,
        policy_name="",
        endpoint=broker.endpoint,
        port=broker.port,
    )


def test_attach_policy_through_boto3_lets_a_denied_device_in(
    broker: IotBrokerThread, iot: Any, tmp_path: Path, name: str
) -> None:
    device = device_from_api(broker, iot, name, tmp_path)
    with pytest.raises(DeviceRefusedError):
        paho_client(device)
    broker.wait_for_refusal(Reason.AUTHORIZATION_FAILURE, client_id=name)
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    iot.attach_policy(policyName=name, target=device.certificate_arn)
    client = paho_client(device)  # the next attempt is let in
    client.disconnect()
    client.loop_stop()


def test_the_device_sdk_connects_with_the_certificate_boto3_created(
    broker: IotBrokerThread, iot: Any, tmp_path: Path, name: str
) -> None:
    device = device_from_api(broker, iot, name, tmp_path)
    iot.create_policy(
        policyName=name,
        policyDocument=connect_as_thing(broker.config.region, broker.config.account_id),
    )
    iot.attach_policy(policyName=name, target=device.certificate_arn)
    connection = awsiot_connection(device)
    connection.disconnect().result(5.0)


def test_update_certificate_revoked_through_boto3_drops_the_live_connection(
    broker: IotBrokerThread, iot: Any, tmp_path: Path, name: str
) -> None:
    device = device_from_api(broker, iot, name, tmp_path)
    iot.create_policy(policyName=name, policyDocument=ALLOW_ALL)
    iot.attach_policy(policyName=name, target=device.certificate_arn)
    client = paho_client(device)
    dropped = threading.Event()
    client.on_disconnect = lambda *args: dropped.set()
    iot.update_certificate(certificateId=device.certificate_id, newStatus="REVOKED")
    assert dropped.wait(5.0), "the live connection was not dropped within 5 s"
    broker.wait_for_refusal(Reason.CERTIFICATE_STATUS_CHANGED, client_id=name)
    client.loop_stop()


def test_a_thing_group_policy_reaches_the_certificates_of_its_things(
    broker: IotBrokerThread, iot: Any, tmp_path: Path, name: str
) -> None:
    config = broker.config
    device = device_from_api(broker, iot, name, tmp_path)
    iot.create_thing_group(thingGroupName=name)
    iot.add_thing_to_thing_group(thingGroupName=name, thingName=name)
    with pytest.raises(DeviceRefusedError):
        paho_client(device)
    iot.create_policy(
        policyName=name, policyDocument=connect_as_thing(config.region, config.account_id)
    )
    group_arn = iot.describe_thing_group(thingGroupName=name)["thingGroupArn"]
    iot.attach_policy(policyName=name, target=group_arn)
    client = paho_client(device)  # client ID = the thing name: inherits the group's policy
    client.disconnect()
    client.loop_stop()
    # Another client ID is not the thing, so the group's policy does not apply to it.
    with pytest.raises(DeviceRefusedError):
        paho_client(device, client_id=f"{name}-other")
    # Out of the group: the policy is gone for the thing too.
    iot.remove_thing_from_thing_group(thingGroupName=name, thingName=name)
    with pytest.raises(DeviceRefusedError):
        paho_client(device)


def _handshake(port: int, server_name: str, device: DeviceFiles, **options: Any) -> str:
    """Mutual TLS to ``port`` with SNI ``server_name``; the negotiated version, or raise."""
    context = ssl.create_default_context(cafile=str(device.root_ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    for key, value in options.items():
        setattr(context, key, value)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return str(tls.version())


def _wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("not within the deadline")
        time.sleep(0.05)


def _accepted(port: int, server_name: str, device: DeviceFiles, **options: Any) -> bool:
    try:
        _handshake(port, server_name, device, **options)
    except (ssl.SSLError, OSError):
        return False
    return True


def test_a_domain_configuration_is_served_live_with_its_own_policy_and_refused_when_disabled(
    broker: IotBrokerThread, iot: Any, name: str
) -> None:
    domain = f"{name}.devices.example.com".lower()
    device = broker.create_device(name)
    https = broker.ports["https"]
    assert not _accepted(https, domain, device)
    broker.wait_for_refusal(Reason.SNI_MISMATCH)
    iot.create_domain_configuration(
        domainConfigurationName=name,
        domainName=domain,
        tlsConfig={"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"},
        authorizerConfig={"defaultAuthorizerName": "none", "allowAuthorizerOverride": False},
    )
    # Served within the broker's one-second registry poll; the server certificate carries the
    # new name (the client verifies it), and the policy is the domain's own: TLS 1.3 only.
    _wait_until(lambda: _accepted(https, domain, device))
    assert _handshake(https, domain, device) == "TLSv1.3"
    assert not _accepted(https, domain, device, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert _accepted(https, broker.endpoint, device, maximum_version=ssl.TLSVersion.TLSv1_2)
    described = iot.describe_domain_configuration(domainConfigurationName=name)
    assert described["domainConfigurationStatus"] == "ENABLED"
    assert described["authorizerConfig"] == {
        "defaultAuthorizerName": "none",
        "allowAuthorizerOverride": False,
    }
    assert described["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}
    names = [
        d["domainConfigurationName"]
        for d in iot.list_domain_configurations()["domainConfigurations"]
    ]
    assert "iot:Data-ATS" in names and name in names

    with pytest.raises(iot.exceptions.InvalidRequestException, match="ENABLED"):
        iot.delete_domain_configuration(domainConfigurationName=name)
    iot.update_domain_configuration(
        domainConfigurationName=name, domainConfigurationStatus="DISABLED"
    )
    _wait_until(lambda: not _accepted(https, domain, device))
    refusal = broker.wait_for_refusal(Reason.DOMAIN_CONFIGURATION_DISABLED)
    assert name in str(refusal["details"])
    iot.delete_domain_configuration(domainConfigurationName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_domain_configuration(domainConfigurationName=name)


def test_domain_configuration_refusals(iot: Any, broker: IotBrokerThread, name: str) -> None:
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_domain_configuration(domainConfigurationName=name, domainName=broker.endpoint)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="securityPolicy"):
        iot.create_domain_configuration(
            domainConfigurationName=name,
            domainName=f"{name}.example",
            tlsConfig={"securityPolicy": "Custom"},
        )
    with pytest.raises(iot.exceptions.InvalidRequestException, match="IP address"):
        iot.create_domain_configuration(domainConfigurationName=name, domainName="10.0.0.1")
    with pytest.raises(iot.exceptions.InvalidRequestException, match="cannot be updated"):
        iot.update_domain_configuration(
            domainConfigurationName="iot:Data-ATS", domainConfigurationStatus="DISABLED"
        )


def test_the_reference_lists_every_operation_as_served_or_not() -> None:
    text = (
        Path(__file__).resolve().parent.parent / "docs" / "control-plane-reference.md"
    ).read_text(encoding="utf-8")
    served_part = text[text.index("## Served operations") : text.index("## Not served")]
    not_served_part = text[text.index("## Not served") : text.index("## Behaviour")]
    every = [line.split()[0] for line in IOT_ROUTE_TABLE.splitlines() if line.strip()]
    for operation in every:
        where = served_part if operation in SERVED_BY_THE_BROKER else not_served_part
        assert f"`{operation}`" in where, operation
    assert f"## Served operations ({len(SERVED_BY_THE_BROKER)})" in text
    assert f"## Not served ({len(every) - len(SERVED_BY_THE_BROKER)})" in text


def test_the_broker_serves_the_registry_and_its_built_in_services_operations(
    broker: IotBrokerThread,
) -> None:
    assert broker._running_broker().control_plane.operations == SERVED_BY_THE_BROKER


def _rsa_device(ca: pki.CertificateAuthority, key_size: int) -> str:
    """A device certificate of ``ca`` for an RSA key of ``key_size`` bits, as a rig makes one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"rsa-{key_size}")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca.private_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )


def test_register_certificate_refuses_an_rsa_key_under_2048_bits(iot: Any) -> None:
    # AWS: "an RSA key with a length of at least 2048 bits" (CreateCertificateFromCsr); the
    # register operations answer CertificateValidationException for a weaker key.
    ca = pki.create_root_ca()
    ca_pem = ca.certificate_pem.decode()
    iot.register_ca_certificate(caCertificate=ca_pem, setAsActive=True)
    weak = _rsa_device(ca, 1024)
    with pytest.raises(iot.exceptions.CertificateValidationException) as with_ca:
        iot.register_certificate(certificatePem=weak, caCertificatePem=ca_pem)
    assert "The key in the certificate is not valid" in str(with_ca.value)
    with pytest.raises(iot.exceptions.CertificateValidationException) as without_ca:
        iot.register_certificate_without_ca(certificatePem=weak)
    assert "at least 2048 bits, got 1024" in str(without_ca.value)
    # The twins: 2048 bits register both ways.
    registered = iot.register_certificate(
        certificatePem=_rsa_device(ca, 2048), caCertificatePem=ca_pem
    )
    assert registered["certificateId"]
    assert iot.register_certificate_without_ca(certificatePem=_rsa_device(ca, 2048))[
        "certificateId"
    ]
