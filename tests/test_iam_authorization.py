"""IAM authorization of SigV4 callers, and the whole path: IAM store -> signed request -> verify
-> permissions, with requests signed by boto3 and by the AWS IoT Device SDK's handshake signer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws_iot_mock.auth.credentials import IamIdentity
from aws_iot_mock.auth.sigv4 import (
    IOT_DATA_SERVICES,
    Refused,
    SignedRequest,
    SigV4Reason,
    Verified,
    verify,
)
from aws_iot_mock.authz.iot_policy_evaluation import (
    ALLOWED,
    EXPLICIT_DENY,
    NO_MATCHING_STATEMENT,
    NO_POLICY_ATTACHED,
    NamedPolicy,
    parse_policy_document,
)
from aws_iot_mock.iam import service
from aws_iot_mock.iam.authorization import (
    IamAuthorizer,
    Permission,
    iam_permissions,
    required_permissions,
)
from aws_iot_mock.iam.store import IamStore
from tests.sigv4_clients import (
    amz_date_of,
    capture_requests,
    device_sdk_handshake,
    isolated_aws_config,
)

__all__ = ["isolated_aws_config"]  # a fixture, used by name

REGION = "us-east-1"
ACCOUNT = "123456789012"
HOST = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"
ALICE = IamIdentity(ACCOUNT, "alice", "AIDAJQABLZS4A3QDU576Q", f"arn:aws:iam::{ACCOUNT}:user/alice")


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def permissions_of(*documents: str, client_id: str | None = None) -> Any:
    policies = [
        NamedPolicy(f"p{i}", parse_policy_document(document))
        for i, document in enumerate(documents)
    ]
    return iam_permissions(ALICE, policies, region=REGION, client_id=client_id)


# ---------------------------------------------------------------------------------------------
# Pure: decisions with a passing twin


@dataclass(frozen=True)
class Case:
    name: str
    document: str
    allowed: tuple[Permission, ...]
    denied: tuple[Permission, ...]
    reason: str = NO_MATCHING_STATEMENT
    client_id: str | None = None


CASES = [
    Case(
        "publish-own-prefix-by-username",
        policy(allow("iot:Publish", f"{ARN}:topic/${{aws:username}}/*")),
        required_permissions("Publish", topic="alice/telemetry"),
        required_permissions("Publish", topic="bob/telemetry"),
    ),
    Case(
        "userid-variable",
        policy(allow("iot:Publish", f"{ARN}:topic/${{aws:userid}}")),
        required_permissions("Publish", topic="AIDAJQABLZS4A3QDU576Q"),
        required_permissions("Publish", topic="alice"),
    ),
    Case(
        "explicit-deny-wins",
        policy(
            allow("iot:*", "*"),
            deny("iot:Publish", f"{ARN}:topic/secret/*"),
        ),
        required_permissions("Publish", topic="open/x"),
        required_permissions("Publish", topic="secret/x"),
        EXPLICIT_DENY,
    ),
    Case(
        "retain-needs-retain-publish",
        policy(allow("iot:Publish", f"{ARN}:topic/t")),
        required_permissions("Publish", topic="t", retain=False),
        required_permissions("Publish", topic="t", retain=True),
    ),
    Case(
        "retain-publish-granted",
        policy(allow(["iot:Publish", "iot:RetainPublish"], f"{ARN}:topic/t")),
        required_permissions("Publish", topic="t", retain=True),
        required_permissions("Publish", topic="u", retain=True),
    ),
    Case(
        "named-shadow-resource",
        policy(allow("iot:UpdateThingShadow", f"{ARN}:thing/thing-1/config")),
        required_permissions("UpdateThingShadow", thing_name="thing-1", shadow_name="config"),
        required_permissions("UpdateThingShadow", thing_name="thing-1"),
    ),
    Case(
        "classic-shadow-resource",
        policy(allow("iot:GetThingShadow", f"{ARN}:thing/thing-1")),
        required_permissions("GetThingShadow", thing_name="thing-1"),
        required_permissions("DeleteThingShadow", thing_name="thing-1"),
    ),
    Case(
        "list-retained-messages-needs-star",
        policy(allow("iot:ListRetainedMessages", "*")),
        required_permissions("ListRetainedMessages"),
        required_permissions("GetRetainedMessage", topic="t"),
    ),
    Case(
        "topic-arn-does-not-cover-star-resources",
        policy(allow("iot:*", f"{ARN}:topic/*")),
        required_permissions("GetRetainedMessage", topic="a/b"),
        required_permissions("ListRetainedMessages"),
    ),
    Case(
        "mqtt-wildcards-are-literal",
        policy(allow("iot:Subscribe", f"{ARN}:topicfilter/a/+/c")),
        (Permission("iot:Subscribe", "topicfilter", "a/+/c"),),
        (Permission("iot:Subscribe", "topicfilter", "a/b/c"),),
    ),
    Case(
        "connect-with-client-id-variable",
        policy(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}")),
        (Permission("iot:Connect", "client", "sensor-1"),),
        (Permission("iot:Connect", "client", "sensor-2"),),
        client_id="sensor-1",
    ),
    Case(
        "certificate-variables-resolve-to-nothing",
        policy(
            allow("iot:Publish", f"{ARN}:topic/${{iot:Certificate.Subject.CommonName}}"),
            allow("iot:Publish", f"{ARN}:topic/plain"),
        ),
        required_permissions("Publish", topic="plain"),
        required_permissions("Publish", topic=""),
    ),
    Case(
        "condition-on-principal-type",
        policy(
            allow(
                "iot:Publish",
                "*",
                Condition={"StringEquals": {"aws:PrincipalType": "User"}},
            ),
            allow(
                "iot:Receive",
                "*",
                Condition={"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::1:user/x"}},
            ),
        ),
        required_permissions("Publish", topic="t"),
        (Permission("iot:Receive", "topic", "t"),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_decision_and_its_twin(case: Case) -> None:
    permissions = permissions_of(case.document, client_id=case.client_id)
    allowed = permissions.check_all(case.allowed)
    assert allowed.allowed, allowed.details
    assert allowed.reason == ALLOWED
    denied = permissions.check_all(case.denied)
    assert not denied.allowed
    assert denied.reason == case.reason, denied.details


def test_resource_arns_are_the_ones_aws_writes() -> None:
    permissions = permissions_of(policy(allow("iot:*", "*")))
    decision = permissions.check("iot:Publish", "topic", "a/b c+#/ü")
    assert decision.details.startswith(f"iot:Publish on {ARN}:topic/a/b c+#/ü allowed")
    named = permissions.check_all(
        required_permissions("GetThingShadow", thing_name="t", shadow_name="s")
    )
    assert f"{ARN}:thing/t/s" in named.details
    assert (
        "iot:ListNamedShadowsForThing on * allowed"
        in permissions.check_all(
            required_permissions("ListNamedShadowsForThing", thing_name="t")
        ).details
    )


def test_no_policy_names_the_user() -> None:
    decision = permissions_of().check("iot:Publish", "topic", "t")
    assert (decision.allowed, decision.reason) == (False, NO_POLICY_ATTACHED)
    assert decision.details == (
        f"iot:Publish on {ARN}:topic/t denied: the IAM user 'alice' has no policy"
    )


def test_may_receive_and_principal_id() -> None:
    permissions = permissions_of(policy(allow("iot:Receive", f"{ARN}:topic/in/*")))
    assert permissions.may_receive("in/x")
    assert not permissions.may_receive("out/x")
    assert permissions.principal_id == "AIDAJQABLZS4A3QDU576Q"


@pytest.mark.parametrize(
    ("operation", "arguments"),
    [
        ("Publish", {}),
        ("GetThingShadow", {"topic": "t"}),
        ("SendDirectMessage", {}),
    ],
)
def test_required_permissions_refuses_bad_input(operation: str, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=operation):
        required_permissions(operation, **arguments)


# ---------------------------------------------------------------------------------------------
# The whole path, with real signers


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IamStore]:
    with IamStore.open(tmp_path / "state", account_id=ACCOUNT) as opened:
        yield opened


def boto3_publish(
    credentials: dict[str, str], topic: str, *, retain: bool = False
) -> SignedRequest:
    """The request a boto3 iot-data client sends for publish(), captured before sending."""
    client = boto3.client(
        "iot-data",
        region_name=REGION,
        endpoint_url=f"https://{HOST}",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
    )
    sent = capture_requests(client)
    client.publish(topic=topic, qos=1, retain=retain, payload=b"hello")
    (request,) = sent
    return request


def check(store: IamStore, request: SignedRequest, now: datetime | None = None) -> Any:
    return verify(
        request,
        credentials=store.credential_for,
        now=now or amz_date_of(request),
        services=IOT_DATA_SERVICES,
        region=REGION,
    )


@pytest.mark.usefixtures("isolated_aws_config")
def test_boto3_publish_with_an_iam_user(store: IamStore) -> None:
    service.create_user(store, user_name="alice")
    credentials = service.create_access_key(store, user_name="alice")["AccessKey"]
    service.put_user_policy(
        store,
        user_name="alice",
        policy_name="telemetry",
        policy_document=policy(allow("iot:Publish", f"{ARN}:topic/${{aws:username}}/*")),
    )
    authorizer = IamAuthorizer(store, region=REGION)

    request = boto3_publish(credentials, "alice/temp")
    verified = check(store, request)
    assert isinstance(verified, Verified)
    assert verified.identity == store.get_user("alice").identity
    assert verified.principal_id == verified.identity.user_id
    permissions = authorizer.permissions_for(verified.identity)
    assert permissions.check_all(required_permissions("Publish", topic="alice/temp")).allowed
    assert not permissions.check_all(
        required_permissions("Publish", topic="alice/temp", retain=True)
    ).allowed

    # A policy change shows up at once.
    assert not authorizer.changed()
    service.delete_user_policy(store, user_name="alice", policy_name="telemetry")
    assert authorizer.changed()
    after = authorizer.permissions_for(verified.identity)
    assert after.check("iot:Publish", "topic", "alice/temp").reason == NO_POLICY_ATTACHED


@pytest.mark.usefixtures("isolated_aws_config")
def test_boto3_publish_with_session_credentials(store: IamStore) -> None:
    service.create_user(store, user_name="alice")
    service.put_user_policy(
        store,
        user_name="alice",
        policy_name="all",
        policy_document=policy(allow("iot:*", "*")),
    )
    session = service.get_session_token(store, user_name="alice")["Credentials"]
    request = boto3_publish(session, "any/topic", retain=True)
    verified = check(store, request)
    assert isinstance(verified, Verified)
    assert verified.temporary
    assert verified.access_key_id == session["AccessKeyId"]
    # Session credentials act with the policies of the user they came from.
    permissions = IamAuthorizer(store, region=REGION).permissions_for(verified.identity)
    assert permissions.check_all(
        required_permissions("Publish", topic="any/topic", retain=True)
    ).allowed
    # Credentials issued 13 hours ago have expired: ExpiredTokenException.
    old = service.get_session_token(
        store, user_name="alice", now=datetime.now(UTC) - timedelta(hours=13)
    )["Credentials"]
    expired = check(store, boto3_publish(old, "any/topic"))
    assert isinstance(expired, Refused)
    assert (expired.reason, expired.code) == (
        SigV4Reason.SIGV4_EXPIRED_CREDENTIALS,
        "ExpiredTokenException",
    )


@pytest.mark.usefixtures("isolated_aws_config")
def test_deleted_and_inactive_keys_are_refused(store: IamStore) -> None:
    service.create_user(store, user_name="alice")
    credentials = service.create_access_key(store, user_name="alice")["AccessKey"]
    request = boto3_publish(credentials, "t")
    assert isinstance(check(store, request), Verified)
    service.update_access_key(store, access_key_id=credentials["AccessKeyId"], status="Inactive")
    inactive = check(store, request)
    assert isinstance(inactive, Refused)
    assert inactive.reason is SigV4Reason.SIGV4_INACTIVE_ACCESS_KEY
    service.delete_access_key(store, access_key_id=credentials["AccessKeyId"])
    deleted = check(store, request)
    assert isinstance(deleted, Refused)
    assert (deleted.reason, deleted.code) == (
        SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY,
        "UnrecognizedClientException",
    )


def test_a_recreated_user_is_a_new_principal(store: IamStore) -> None:
    service.create_user(store, user_name="alice")
    old = store.get_user("alice").identity
    service.delete_user(store, user_name="alice")
    service.create_user(store, user_name="alice")
    service.put_user_policy(
        store, user_name="alice", policy_name="all", policy_document=policy(allow("iot:*", "*"))
    )
    authorizer = IamAuthorizer(store, region=REGION)
    assert not authorizer.permissions_for(old).check("iot:Publish", "topic", "t").allowed
    new = store.get_user("alice").identity
    assert authorizer.permissions_for(new).check("iot:Publish", "topic", "t").allowed


def test_device_sdk_websocket_with_session_credentials(store: IamStore) -> None:
    """The Device SDK's handshake, signed with GetSessionToken credentials, then iot:Connect."""
    service.create_user(store, user_name="device-user")
    service.put_user_policy(
        store,
        user_name="device-user",
        policy_name="connect",
        policy_document=policy(allow("iot:Connect", f"{ARN}:client/${{aws:username}}-*")),
    )
    session = service.get_session_token(store, user_name="device-user")["Credentials"]
    request = device_sdk_handshake(
        host=HOST,
        region=REGION,
        key=session["AccessKeyId"],
        secret=session["SecretAccessKey"],
        token=session["SessionToken"],
    )
    verified = check(store, request)
    assert isinstance(verified, Verified)
    assert verified.service == "iotdevicegateway"
    authorizer = IamAuthorizer(store, region=REGION)
    permissions = authorizer.permissions_for(verified.identity, client_id="device-user-1")
    assert permissions.check("iot:Connect", "client", "device-user-1").allowed
    assert not permissions.check("iot:Connect", "client", "other-1").allowed
