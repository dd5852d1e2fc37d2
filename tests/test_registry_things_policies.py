"""Tests for the registry's things, thing types, policies, attachments and CA certificates."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aws_iot_mock import pki
from aws_iot_mock.errors import BrokerError, CertificateError, ResourceNotFoundError
from aws_iot_mock.registry import (
    CertificateRegistry,
    CertificateStatus,
    CertificateValidationError,
    DeleteConflictError,
    InvalidRequestError,
    LimitExceededError,
    MalformedPolicyError,
    Registry,
    ResourceAlreadyExistsError,
    VersionConflictError,
    VersionsLimitExceededError,
    aws_error_code,
)
from aws_iot_mock.registry.certificates import SCHEMA_MIGRATIONS

NOW = datetime(2026, 11, 26, 8, 20, 0, 123000, tzinfo=UTC)
REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}"


def _document(action: str = "iot:Connect") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        }
    )


DOC_1 = _document("iot:Connect")
DOC_2 = _document("iot:Publish")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_ca() -> pki.CertificateAuthority:
    """The broker's own root CA."""
    return pki.create_root_ca(now=NOW)


@pytest.fixture(scope="module")
def user_ca() -> pki.CertificateAuthority:
    """A CA of the user's own, registered with RegisterCACertificate in the tests."""
    return pki.create_root_ca(common_name="User CA", now=NOW)


@pytest.fixture(scope="module")
def impostor_ca() -> pki.CertificateAuthority:
    """Same subject as ``user_ca`` but another key: never registered."""
    return pki.create_root_ca(common_name="User CA", now=NOW)


@pytest.fixture(scope="module")
def public_key() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@pytest.fixture(scope="module")
def device_pems(own_ca: pki.CertificateAuthority, public_key: bytes) -> list[bytes]:
    """Three device certificates signed by the broker's own CA."""
    return [
        pki.issue_device_certificate(own_ca, public_key_pem=public_key, now=NOW).certificate_pem
        for _ in range(3)
    ]


def _open(state_dir: Path) -> CertificateRegistry:
    return CertificateRegistry.open(state_dir, region=REGION, account_id=ACCOUNT)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[CertificateRegistry]:
    with _open(tmp_path / "state") as reg:
        yield reg


@pytest.fixture
def cert_arn(registry: CertificateRegistry, device_pems: list[bytes]) -> str:
    """The ARN of a registered, ACTIVE device certificate."""
    return registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE).certificate_arn


@pytest.fixture
def cert_arn_2(registry: CertificateRegistry, device_pems: list[bytes]) -> str:
    return registry.register_certificate(device_pems[1], CertificateStatus.ACTIVE).certificate_arn


def _cert_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


# --- schema -----------------------------------------------------------------------------------


def test_registry_alias_is_the_same_class() -> None:
    assert Registry is CertificateRegistry


def test_version_1_database_is_migrated(tmp_path: Path, device_pems: list[bytes]) -> None:
    connection = sqlite3.connect(tmp_path / "registry.sqlite3")
    for statement in SCHEMA_MIGRATIONS[0].split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()

    with _open(tmp_path) as registry:
        assert registry.generation() == 0
        record = registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE)
        registry.create_thing("migrated")
        registry.attach_thing_principal("migrated", record.certificate_arn)
        assert registry.generation() == 3

    connection = sqlite3.connect(tmp_path / "registry.sqlite3")
    try:
        assert connection.execute("PRAGMA user_version").fetchone() == (len(SCHEMA_MIGRATIONS),)
    finally:
        connection.close()


def test_foreign_keys_are_enforced(registry: CertificateRegistry, cert_arn: str) -> None:
    registry.create_thing("t")
    registry.attach_thing_principal("t", cert_arn)
    connection = registry._connection  # white box: the constraint itself
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute("DELETE FROM certificates")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidRequestError("x"), "InvalidRequestException"),
        (ResourceAlreadyExistsError("x"), "ResourceAlreadyExistsException"),
        (DeleteConflictError("x"), "DeleteConflictException"),
        (VersionsLimitExceededError("x"), "VersionsLimitExceededException"),
        (VersionConflictError("x"), "VersionConflictException"),
        (MalformedPolicyError("x"), "MalformedPolicyException"),
        (LimitExceededError("x"), "LimitExceededException"),
        (CertificateValidationError("x"), "CertificateValidationException"),
        (ResourceNotFoundError("ResourceNotFoundException: x"), "ResourceNotFoundException"),
        (CertificateError("InvalidRequestException: x"), "InvalidRequestException"),
        (BrokerError("plain"), None),
    ],
)
def test_error_codes(error: BrokerError, code: str | None) -> None:
    assert aws_error_code(error) == code
    if code is not None:
        assert str(error).startswith(f"{code}: ")
        assert not str(error).startswith(f"{code}: {code}")
    if isinstance(error, InvalidRequestError):
        assert isinstance(error, CertificateError)


# --- things -----------------------------------------------------------------------------------


def test_create_and_describe_thing(registry: CertificateRegistry) -> None:
    registry.create_thing_type("sensor")

    created = registry.create_thing(
        "thermo-1", thing_type_name="sensor", attributes={"room": "kitchen", "floor": "1"}
    )

    assert created.thing_arn == f"{ARN}:thing/thermo-1"
    assert uuid.UUID(created.thing_id).version == 4
    assert created.version == 1
    described = registry.describe_thing("thermo-1")
    assert described == created
    assert described.to_description() == {
        "defaultClientId": "thermo-1",
        "thingName": "thermo-1",
        "thingId": created.thing_id,
        "thingArn": f"{ARN}:thing/thermo-1",
        "thingTypeName": "sensor",
        "attributes": {"floor": "1", "room": "kitchen"},
        "version": 1,
    }
    assert described.to_summary() == {
        "thingName": "thermo-1",
        "thingTypeName": "sensor",
        "thingArn": f"{ARN}:thing/thermo-1",
        "attributes": {"floor": "1", "room": "kitchen"},
        "version": 1,
    }


def test_untyped_thing_description_omits_type(registry: CertificateRegistry) -> None:
    thing = registry.create_thing("plain")

    assert "thingTypeName" not in thing.to_description()
    assert "thingTypeName" not in thing.to_summary()
    assert thing.to_description()["attributes"] == {}


def test_thing_attributes_are_read_only(registry: CertificateRegistry) -> None:
    thing = registry.create_thing("t", attributes={"a": "1"})

    with pytest.raises(TypeError):
        thing.attributes["a"] = "2"  # type: ignore[index]


def test_create_thing_is_idempotent_for_the_same_configuration(
    registry: CertificateRegistry,
) -> None:
    registry.create_thing_type("sensor")
    first = registry.create_thing("t", thing_type_name="sensor", attributes={"a": "1"})
    generation = registry.generation()

    again = registry.create_thing("t", thing_type_name="sensor", attributes={"a": "1"})

    assert again == first
    assert registry.generation() == generation  # nothing changed, nothing to re-evaluate


@pytest.mark.parametrize(
    ("type_name", "attributes"),
    [("sensor", {"a": "2"}), (None, {"a": "1"}), ("sensor", {})],
)
def test_create_thing_with_other_configuration_already_exists(
    registry: CertificateRegistry, type_name: str | None, attributes: dict[str, str]
) -> None:
    registry.create_thing_type("sensor")
    registry.create_thing("t", thing_type_name="sensor", attributes={"a": "1"})

    with pytest.raises(ResourceAlreadyExistsError, match="ResourceAlreadyExistsException"):
        registry.create_thing("t", thing_type_name=type_name, attributes=attributes)


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("", None),
        ("x" * 129, None),
        ("has space", None),
        ("slash/name", None),
        ("caf\u00e9", None),
        ("ok", {"bad name": "v"}),
        ("ok", {"": "v"}),
        ("ok", {"k" * 129: "v"}),
        ("ok", {"k": "bad value"}),
        ("ok", {"k": "v" * 801}),
        ("ok", {f"k{i}": "v" for i in range(51)}),
    ],
)
def test_create_thing_invalid_input(
    registry: CertificateRegistry, name: str, attributes: dict[str, str] | None
) -> None:
    with pytest.raises(InvalidRequestError, match=r"^InvalidRequestException: "):
        registry.create_thing(name, attributes=attributes)
    assert registry.list_things() == []


def test_create_thing_accepts_the_limits(registry: CertificateRegistry) -> None:
    attributes = {f"k{i}": "v" for i in range(48)}
    attributes["k" * 128] = "a-Z_0.9,@/:#=[]" + "v" * 785
    attributes["empty"] = ""

    thing = registry.create_thing("N:a_m-e" + "x" * 121, attributes=attributes)

    assert thing.attributes == attributes


def test_create_thing_with_unknown_or_deprecated_type(registry: CertificateRegistry) -> None:
    with pytest.raises(ResourceNotFoundError, match="ResourceNotFoundException"):
        registry.create_thing("t", thing_type_name="missing")
    registry.create_thing_type("old")
    registry.deprecate_thing_type("old")

    with pytest.raises(InvalidRequestError, match="deprecated"):
        registry.create_thing("t", thing_type_name="old")


def test_describe_unknown_thing(registry: CertificateRegistry) -> None:
    with pytest.raises(ResourceNotFoundError, match="ResourceNotFoundException: Thing nope"):
        registry.describe_thing("nope")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["a", "b", "c", "d"]),
        ({"thing_type_name": "sensor"}, ["a", "b"]),
        ({"thing_type_name": "missing"}, []),
        ({"attribute_name": "room"}, ["a", "c"]),
        ({"attribute_name": "room", "attribute_value": "kitchen"}, ["a"]),
        ({"attribute_name": "room", "attribute_value": "cellar"}, []),
        ({"attribute_name": "room", "thing_type_name": "sensor"}, ["a"]),
    ],
)
def test_list_things(
    registry: CertificateRegistry, filters: dict[str, str], expected: list[str]
) -> None:
    registry.create_thing_type("sensor")
    registry.create_thing("d")
    registry.create_thing("c", attributes={"room": "hall"})
    registry.create_thing("b", thing_type_name="sensor")
    registry.create_thing("a", thing_type_name="sensor", attributes={"room": "kitchen"})

    assert [thing.thing_name for thing in registry.list_things(**filters)] == expected


def test_list_things_value_needs_name(registry: CertificateRegistry) -> None:
    with pytest.raises(InvalidRequestError):
        registry.list_things(attribute_value="x")


@pytest.mark.parametrize(
    ("update", "expected_type", "expected_attributes"),
    [
        ({}, "sensor", {"a": "1", "b": "2"}),
        ({"attributes": {"c": "3"}}, "sensor", {"c": "3"}),
        ({"attributes": {}}, "sensor", {}),
        ({"attributes": {"c": "3"}, "merge": True}, "sensor", {"a": "1", "b": "2", "c": "3"}),
        ({"attributes": {"a": "9", "b": ""}, "merge": True}, "sensor", {"a": "9"}),
        ({"attributes": {"a": "", "c": "3"}}, "sensor", {"c": "3"}),
        ({"thing_type_name": "gateway"}, "gateway", {"a": "1", "b": "2"}),
        ({"thing_type_name": "sensor"}, "sensor", {"a": "1", "b": "2"}),
        ({"remove_thing_type": True}, None, {"a": "1", "b": "2"}),
        ({"expected_version": 1, "attributes": {"x": "y"}}, "sensor", {"x": "y"}),
    ],
)
def test_update_thing(
    registry: CertificateRegistry,
    update: dict[str, Any],
    expected_type: str | None,
    expected_attributes: Mapping[str, str],
) -> None:
    registry.create_thing_type("sensor")
    registry.create_thing_type("gateway")
    created = registry.create_thing("t", thing_type_name="sensor", attributes={"a": "1", "b": "2"})

    updated = registry.update_thing("t", **update)

    assert updated.thing_type_name == expected_type
    assert updated.attributes == expected_attributes
    assert updated.version == 2
    assert updated.thing_id == created.thing_id
    assert registry.describe_thing("t") == updated


@pytest.mark.parametrize(
    ("update", "error", "match"),
    [
        ({"expected_version": 2}, VersionConflictError, "VersionConflictException"),
        ({"thing_type_name": "missing"}, ResourceNotFoundError, "ResourceNotFoundException"),
        ({"thing_type_name": "old"}, InvalidRequestError, "deprecated"),
        (
            {"thing_type_name": "sensor", "remove_thing_type": True},
            InvalidRequestError,
            "removeThingType",
        ),
        ({"attributes": {"bad key": "v"}}, InvalidRequestError, "attribute name"),
        (
            {"attributes": {f"k{i}": "v" for i in range(50)}, "merge": True},
            InvalidRequestError,
            "at most 50",
        ),
    ],
)
def test_update_thing_refused(
    registry: CertificateRegistry,
    update: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    registry.create_thing_type("sensor")
    registry.create_thing_type("old")
    registry.deprecate_thing_type("old")
    thing = registry.create_thing("t", thing_type_name="sensor", attributes={"a": "1"})

    with pytest.raises(error, match=match):
        registry.update_thing("t", **update)
    assert registry.describe_thing("t") == thing


def test_update_thing_keeps_a_deprecated_type_it_already_has(
    registry: CertificateRegistry,
) -> None:
    registry.create_thing_type("old")
    registry.create_thing("t", thing_type_name="old")
    registry.deprecate_thing_type("old")

    updated = registry.update_thing("t", thing_type_name="old", attributes={"a": "1"})

    assert updated.thing_type_name == "old"


def test_update_unknown_thing(registry: CertificateRegistry) -> None:
    with pytest.raises(ResourceNotFoundError):
        registry.update_thing("nope", attributes={"a": "1"})


def test_update_thing_versions_count_up(registry: CertificateRegistry) -> None:
    registry.create_thing("t")
    for expected in range(2, 5):
        assert registry.update_thing("t", expected_version=expected - 1).version == expected


def test_delete_thing(registry: CertificateRegistry) -> None:
    registry.create_thing("t")

    with pytest.raises(VersionConflictError):
        registry.delete_thing("t", expected_version=7)
    registry.delete_thing("t", expected_version=1)

    assert registry.list_things() == []
    registry.delete_thing("t")  # AWS: deleting a missing thing succeeds
    with pytest.raises(InvalidRequestError):
        registry.delete_thing("bad name")


def test_delete_thing_with_principal_is_refused(
    registry: CertificateRegistry, cert_arn: str
) -> None:
    registry.create_thing("t")
    registry.attach_thing_principal("t", cert_arn)

    with pytest.raises(InvalidRequestError, match="still attached to one or more principals"):
        registry.delete_thing("t")

    registry.detach_thing_principal("t", cert_arn)
    registry.delete_thing("t")
    assert registry.list_principal_things(cert_arn) == []


def test_recreated_thing_gets_a_new_id(registry: CertificateRegistry) -> None:
    first = registry.create_thing("t")
    registry.delete_thing("t")

    assert registry.create_thing("t").thing_id != first.thing_id


# --- thing types ------------------------------------------------------------------------------


def test_thing_type_lifecycle(registry: CertificateRegistry) -> None:
    created = registry.create_thing_type(
        "sensor",
        description="Temperature sensors",
        searchable_attributes=("room", "floor"),
        now=NOW,
    )

    assert created.thing_type_arn == f"{ARN}:thingtype/sensor"
    assert uuid.UUID(created.thing_type_id).version == 4
    assert registry.describe_thing_type("sensor") == created
    assert created.to_description() == {
        "thingTypeName": "sensor",
        "thingTypeId": created.thing_type_id,
        "thingTypeArn": f"{ARN}:thingtype/sensor",
        "thingTypeProperties": {
            "thingTypeDescription": "Temperature sensors",
            "searchableAttributes": ["room", "floor"],
        },
        "thingTypeMetadata": {
            "deprecated": False,
            "creationDate": "2026-11-26T08:20:00.123000+00:00",
        },
    }

    later = NOW + timedelta(minutes=1)
    deprecated = registry.deprecate_thing_type("sensor", now=later)
    assert deprecated.deprecated
    assert deprecated.deprecation_date == later
    assert deprecated.to_description()["thingTypeMetadata"]["deprecationDate"] == (
        "2026-11-26T08:21:00.123000+00:00"
    )
    restored = registry.deprecate_thing_type("sensor", undo=True)
    assert not restored.deprecated
    assert restored.deprecation_date is None

    with pytest.raises(InvalidRequestError, match="must be deprecated"):
        registry.delete_thing_type("sensor")
    registry.deprecate_thing_type("sensor")
    registry.delete_thing_type("sensor")
    assert registry.list_thing_types() == []
    with pytest.raises(ResourceNotFoundError):
        registry.describe_thing_type("sensor")


def test_thing_type_without_description(registry: CertificateRegistry) -> None:
    properties = registry.create_thing_type("bare").to_description()["thingTypeProperties"]

    assert properties == {"searchableAttributes": []}


def test_thing_type_in_use_cannot_be_deleted(registry: CertificateRegistry) -> None:
    registry.create_thing_type("sensor")
    registry.create_thing("t", thing_type_name="sensor")
    registry.deprecate_thing_type("sensor")

    with pytest.raises(InvalidRequestError, match="things are still associated"):
        registry.delete_thing_type("sensor")

    registry.update_thing("t", remove_thing_type=True)
    registry.delete_thing_type("sensor")


def test_thing_type_create_is_idempotent_and_conflicts(registry: CertificateRegistry) -> None:
    first = registry.create_thing_type("sensor", description="d", searchable_attributes=["a"])

    assert registry.create_thing_type("sensor", description="d", searchable_attributes=["a"]) == (
        first
    )
    with pytest.raises(ResourceAlreadyExistsError):
        registry.create_thing_type("sensor", description="other")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thing_type_name": "has space"},
        {"thing_type_name": ""},
        {"thing_type_name": "t", "description": "x" * 2029},
        {"thing_type_name": "t", "description": "tab\there"},
        {"thing_type_name": "t", "searchable_attributes": ("a", "b", "c", "d")},
        {"thing_type_name": "t", "searchable_attributes": ("bad name",)},
        {"thing_type_name": "t", "searchable_attributes": ("a", "a")},
        {"thing_type_name": "t", "searchable_attributes": "abc"},
    ],
)
def test_thing_type_invalid_input(registry: CertificateRegistry, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        registry.create_thing_type(**kwargs)


def test_thing_type_unknown(registry: CertificateRegistry) -> None:
    for call in (
        registry.describe_thing_type,
        registry.deprecate_thing_type,
        registry.delete_thing_type,
    ):
        with pytest.raises(ResourceNotFoundError, match="Thing type nope"):
            call("nope")


def test_list_thing_types(registry: CertificateRegistry) -> None:
    for name in ("b", "a", "c"):
        registry.create_thing_type(name)

    assert [t.thing_type_name for t in registry.list_thing_types()] == ["a", "b", "c"]
    assert [t.thing_type_name for t in registry.list_thing_types(thing_type_name="b")] == ["b"]


# --- thing principals -------------------------------------------------------------------------


def test_attach_and_detach_thing_principals(
    registry: CertificateRegistry, cert_arn: str, cert_arn_2: str
) -> None:
    registry.create_thing("t1")
    registry.create_thing("t2")

    registry.attach_thing_principal("t1", cert_arn)
    registry.attach_thing_principal("t1", cert_arn)  # idempotent
    registry.attach_thing_principal("t1", cert_arn_2)
    registry.attach_thing_principal("t2", cert_arn)

    assert registry.list_thing_principals("t1") == [cert_arn, cert_arn_2]
    assert registry.list_thing_principals("t2") == [cert_arn]
    assert registry.list_principal_things(cert_arn) == ["t1", "t2"]
    assert registry.list_principal_things(cert_arn_2) == ["t1"]

    registry.detach_thing_principal("t1", cert_arn)
    registry.detach_thing_principal("t1", cert_arn)  # not attached: no-op

    assert registry.list_thing_principals("t1") == [cert_arn_2]
    assert registry.list_principal_things(cert_arn) == ["t2"]


def test_principal_arn_is_case_insensitive_in_the_id(
    registry: CertificateRegistry, cert_arn: str
) -> None:
    registry.create_thing("t")
    prefix, cert_id = cert_arn.rsplit("/", 1)

    registry.attach_thing_principal("t", f"{prefix}/{cert_id.upper()}")

    assert registry.list_thing_principals("t") == [cert_arn]


@pytest.mark.parametrize(
    ("principal", "error", "match"),
    [
        (f"{ARN}:cert/{'0' * 64}", ResourceNotFoundError, "ResourceNotFoundException"),
        ("OTHER_ACCOUNT", ResourceNotFoundError, "ResourceNotFoundException"),
        ("OTHER_REGION", ResourceNotFoundError, "ResourceNotFoundException"),
        ("us-east-1:3f2c7a6e-1a2b-4c3d-9e8f-0a1b2c3d4e5f", InvalidRequestError, "Cognito"),
        (f"{ARN}:cert/abc", InvalidRequestError, "not a certificate ARN"),
        (f"{ARN}:thing/t", InvalidRequestError, "not a certificate ARN"),
        ("garbage", InvalidRequestError, "not a certificate ARN"),
        ("", InvalidRequestError, "certificate ARN"),
    ],
)
def test_bad_principals(
    registry: CertificateRegistry,
    cert_arn: str,
    principal: str,
    error: type[Exception],
    match: str,
) -> None:
    registry.create_thing("t")
    registry.create_policy("p", DOC_1)
    if principal == "OTHER_ACCOUNT":
        principal = cert_arn.replace(ACCOUNT, "210987654321")
    elif principal == "OTHER_REGION":
        principal = cert_arn.replace(REGION, "eu-west-1")
    generation = registry.generation()

    for call in (
        lambda: registry.attach_thing_principal("t", principal),
        lambda: registry.detach_thing_principal("t", principal),
        lambda: registry.list_principal_things(principal),
        lambda: registry.attach_policy("p", principal),
        lambda: registry.detach_policy("p", principal),
        lambda: registry.list_attached_policies(principal),
    ):
        with pytest.raises(error, match=match):
            call()
    assert registry.generation() == generation


def test_thing_group_is_a_policy_target_but_not_a_thing_principal(
    registry: CertificateRegistry,
) -> None:
    """AttachPolicy takes thing group ARNs (API_AttachPolicy); AttachThingPrincipal does not."""
    registry.create_thing("t")
    registry.create_policy("p", DOC_1)
    group = f"{ARN}:thinggroup/fleet"
    with pytest.raises(InvalidRequestError, match="thing group"):
        registry.attach_thing_principal("t", group)
    with pytest.raises(ResourceNotFoundError, match="thing group"):
        registry.attach_policy("p", group)
    registry.create_thing_group("fleet")
    registry.attach_policy("p", group)
    assert [p.policy_name for p in registry.list_attached_policies(group)] == ["p"]
    assert registry.list_targets_for_policy("p") == [group]


def test_thing_principal_unknown_thing(registry: CertificateRegistry, cert_arn: str) -> None:
    for call in (registry.attach_thing_principal, registry.detach_thing_principal):
        with pytest.raises(ResourceNotFoundError, match="Thing nope"):
            call("nope", cert_arn)
    with pytest.raises(ResourceNotFoundError):
        registry.list_thing_principals("nope")


# --- policies ---------------------------------------------------------------------------------


def test_create_and_get_policy(registry: CertificateRegistry) -> None:
    created = registry.create_policy("dev-policy", DOC_1, now=NOW)

    assert created.policy_arn == f"{ARN}:policy/dev-policy"
    assert created.default_version_id == "1"
    assert created.document == DOC_1
    assert registry.get_policy("dev-policy") == created
    response = created.to_get_policy()
    assert uuid.UUID(response.pop("generationId"))
    assert response == {
        "policyName": "dev-policy",
        "policyArn": f"{ARN}:policy/dev-policy",
        "policyDocument": DOC_1,
        "defaultVersionId": "1",
        "creationDate": "2026-11-26T08:20:00.123000+00:00",
        "lastModifiedDate": "2026-11-26T08:20:00.123000+00:00",
    }
    assert created.to_summary() == {
        "policyName": "dev-policy",
        "policyArn": f"{ARN}:policy/dev-policy",
    }
    [version] = registry.list_policy_versions("dev-policy")
    assert version.is_default
    assert version.to_summary() == {
        "versionId": "1",
        "isDefaultVersion": True,
        "createDate": "2026-11-26T08:20:00.123000+00:00",
    }


def test_policy_document_is_stored_verbatim(registry: CertificateRegistry) -> None:
    document = '{\n  "Version": "2012-10-17",\n  "Statement": {"Effect": "Deny", "Action": "*",'
    document += ' "Resource": "*"}\n}'

    assert registry.create_policy("p", document).document == document


def test_create_policy_duplicate(registry: CertificateRegistry) -> None:
    registry.create_policy("p", DOC_1)

    with pytest.raises(ResourceAlreadyExistsError, match="already exists"):
        registry.create_policy("p", DOC_2)
    assert registry.get_policy("p").document == DOC_1


@pytest.mark.parametrize("name", ["", "x" * 129, "has space", "slash/", "caf\u00e9", "a*"])
def test_policy_name_invalid(registry: CertificateRegistry, name: str) -> None:
    with pytest.raises(InvalidRequestError, match="policyName"):
        registry.create_policy(name, DOC_1)


def test_policy_name_limits(registry: CertificateRegistry) -> None:
    name = "Aa0_+=,.@-" + "x" * 118

    assert registry.create_policy(name, DOC_1).policy_name == name


@pytest.mark.parametrize(
    "document",
    [
        "",
        "   ",
        "not json",
        "[]",
        '{"Version": "2012-10-17"}',
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*",'
        ' "Resource": "*"}]}',
        _document("iot:" + "x" * 2100),
    ],
)
def test_malformed_policy(registry: CertificateRegistry, document: str) -> None:
    registry.create_policy("existing", DOC_1)

    with pytest.raises(MalformedPolicyError, match=r"^MalformedPolicyException: "):
        registry.create_policy("p", document)
    with pytest.raises(MalformedPolicyError):
        registry.create_policy_version("existing", document)
    with pytest.raises(ResourceNotFoundError):
        registry.get_policy("p")
    assert len(registry.list_policy_versions("existing")) == 1


def test_list_policies(registry: CertificateRegistry) -> None:
    registry.create_policy("b", DOC_1)
    registry.create_policy("a", DOC_1)
    registry.create_policy_version("a", DOC_2, set_as_default=True)

    policies = registry.list_policies()

    assert [(p.policy_name, p.document, p.default_version_id) for p in policies] == [
        ("a", DOC_2, "2"),
        ("b", DOC_1, "1"),
    ]


def test_unknown_policy(registry: CertificateRegistry, cert_arn: str) -> None:
    calls: list[Any] = [
        lambda: registry.get_policy("nope"),
        lambda: registry.delete_policy("nope"),
        lambda: registry.create_policy_version("nope", DOC_1),
        lambda: registry.list_policy_versions("nope"),
        lambda: registry.get_policy_version("nope", "1"),
        lambda: registry.set_default_policy_version("nope", "1"),
        lambda: registry.delete_policy_version("nope", "1"),
        lambda: registry.attach_policy("nope", cert_arn),
        lambda: registry.detach_policy("nope", cert_arn),
        lambda: registry.list_targets_for_policy("nope"),
    ]
    for call in calls:
        with pytest.raises(ResourceNotFoundError, match=r"Policy not found \(name=nope\)"):
            call()


def test_policy_versions(registry: CertificateRegistry) -> None:
    registry.create_policy("p", DOC_1, now=NOW)
    later = NOW + timedelta(hours=1)

    v2 = registry.create_policy_version("p", DOC_2, now=later)
    assert (v2.version_id, v2.is_default, v2.document) == ("2", False, DOC_2)
    assert v2.policy_arn == f"{ARN}:policy/p"
    assert v2.to_description() == {
        "policyArn": f"{ARN}:policy/p",
        "policyName": "p",
        "policyDocument": DOC_2,
        "policyVersionId": "2",
        "isDefaultVersion": False,
        "creationDate": "2026-11-26T09:20:00.123000+00:00",
        "lastModifiedDate": "2026-11-26T09:20:00.123000+00:00",
    }
    assert registry.get_policy("p").document == DOC_1

    before = registry.get_policy("p")
    v3 = registry.create_policy_version("p", _document("iot:Subscribe"), set_as_default=True)
    after = registry.get_policy("p")
    assert v3.is_default
    assert after.default_version_id == "3"
    assert after.document == _document("iot:Subscribe")
    assert after.generation_id != before.generation_id
    assert after.last_modified_date > before.last_modified_date
    assert after.creation_date == before.creation_date

    policy = registry.set_default_policy_version("p", "2")
    assert (policy.default_version_id, policy.document) == ("2", DOC_2)
    assert registry.get_policy_version("p", "2").is_default
    assert not registry.get_policy_version("p", "3").is_default
    assert [(v.version_id, v.is_default) for v in registry.list_policy_versions("p")] == [
        ("1", False),
        ("2", True),
        ("3", False),
    ]


def test_policy_versions_limit_and_ids_never_reused(registry: CertificateRegistry) -> None:
    registry.create_policy("p", DOC_1)
    for _ in range(4):
        registry.create_policy_version("p", DOC_2)

    with pytest.raises(VersionsLimitExceededError, match=r"maximum number of versions \(5\)"):
        registry.create_policy_version("p", DOC_2)

    registry.delete_policy_version("p", "5")
    registry.delete_policy_version("p", "2")
    assert registry.create_policy_version("p", DOC_2).version_id == "6"
    assert [v.version_id for v in registry.list_policy_versions("p")] == ["1", "3", "4", "6"]
    with pytest.raises(ResourceNotFoundError, match="version 5"):
        registry.get_policy_version("p", "5")


def test_default_version_cannot_be_deleted(registry: CertificateRegistry) -> None:
    registry.create_policy("p", DOC_1)
    registry.create_policy_version("p", DOC_2, set_as_default=True)

    with pytest.raises(DeleteConflictError, match="default version"):
        registry.delete_policy_version("p", "2")
    registry.delete_policy_version("p", "1")

    assert [v.version_id for v in registry.list_policy_versions("p")] == ["2"]
    registry.delete_policy("p")


@pytest.mark.parametrize("version_id", ["", "one", "-1", "1.0", " 1"])
def test_invalid_version_id(registry: CertificateRegistry, version_id: str) -> None:
    registry.create_policy("p", DOC_1)

    with pytest.raises(InvalidRequestError, match="policyVersionId"):
        registry.get_policy_version("p", version_id)


def test_unknown_version(registry: CertificateRegistry) -> None:
    registry.create_policy("p", DOC_1)

    for call in (
        registry.get_policy_version,
        registry.set_default_policy_version,
        registry.delete_policy_version,
    ):
        with pytest.raises(ResourceNotFoundError, match="policy version 9 of policy p"):
            call("p", "9")


def test_delete_policy_conflicts(registry: CertificateRegistry, cert_arn: str) -> None:
    registry.create_policy("p", DOC_1)
    registry.create_policy_version("p", DOC_2)
    registry.attach_policy("p", cert_arn)

    with pytest.raises(DeleteConflictError, match="attached to one or more principals"):
        registry.delete_policy("p")
    registry.detach_policy("p", cert_arn)
    with pytest.raises(DeleteConflictError, match="versions other than the default"):
        registry.delete_policy("p")
    registry.delete_policy_version("p", "2")

    registry.delete_policy("p")

    assert registry.list_policies() == []
    with pytest.raises(ResourceNotFoundError):
        registry.get_policy_version("p", "1")
    # The name is free again, and versions start over for the new policy.
    assert registry.create_policy("p", DOC_2).default_version_id == "1"


def test_attach_policies(registry: CertificateRegistry, cert_arn: str, cert_arn_2: str) -> None:
    registry.create_policy("b", DOC_1)
    registry.create_policy("a", DOC_2)

    registry.attach_policy("b", cert_arn)
    registry.attach_policy("b", cert_arn)  # idempotent
    registry.attach_policy("a", cert_arn)
    registry.attach_policy("b", cert_arn_2)

    assert [p.policy_name for p in registry.list_attached_policies(cert_arn)] == ["a", "b"]
    assert registry.list_attached_policies(cert_arn)[0] == registry.get_policy("a")
    assert registry.list_targets_for_policy("b") == [cert_arn, cert_arn_2]
    assert registry.list_targets_for_policy("a") == [cert_arn]

    registry.detach_policy("b", cert_arn)
    registry.detach_policy("b", cert_arn)  # not attached: no-op

    assert [p.policy_name for p in registry.list_attached_policies(cert_arn)] == ["a"]
    assert registry.list_targets_for_policy("b") == [cert_arn_2]


def test_attached_policies_limit(registry: CertificateRegistry, cert_arn: str) -> None:
    for index in range(11):
        registry.create_policy(f"p{index:02}", DOC_1)
    for index in range(10):
        registry.attach_policy(f"p{index:02}", cert_arn)

    registry.attach_policy("p00", cert_arn)  # already attached: still fine
    with pytest.raises(LimitExceededError, match=r"maximum number of attached policies \(10\)"):
        registry.attach_policy("p10", cert_arn)


# --- CA certificates --------------------------------------------------------------------------


def test_register_and_describe_ca(
    registry: CertificateRegistry, user_ca: pki.CertificateAuthority
) -> None:
    record = registry.register_ca_certificate(user_ca.certificate_pem, now=NOW)

    ca_id = user_ca.certificate_id
    assert record.certificate_id == ca_id
    assert record.certificate_arn == f"{ARN}:cacert/{ca_id}"
    assert record.certificate_pem == user_ca.certificate_pem.decode()
    assert (record.status, record.auto_registration_status) == ("INACTIVE", "DISABLE")
    assert registry.describe_ca_certificate(ca_id.upper()) == record
    description = record.to_description()
    assert uuid.UUID(description.pop("generationId"))
    assert description == {
        "certificateArn": f"{ARN}:cacert/{ca_id}",
        "certificateId": ca_id,
        "status": "INACTIVE",
        "certificatePem": user_ca.certificate_pem.decode(),
        "ownedBy": ACCOUNT,
        "creationDate": "2026-11-26T08:20:00.123000+00:00",
        "autoRegistrationStatus": "DISABLE",
        "lastModifiedDate": "2026-11-26T08:20:00.123000+00:00",
        "customerVersion": 1,
        "validity": {
            "notBefore": "2026-11-26T07:20:00.000000+00:00",
            "notAfter": user_ca.certificate.not_valid_after_utc.isoformat(timespec="microseconds"),
        },
        "certificateMode": "DEFAULT",
    }
    assert record.to_summary() == {
        "certificateArn": f"{ARN}:cacert/{ca_id}",
        "certificateId": ca_id,
        "status": "INACTIVE",
        "creationDate": "2026-11-26T08:20:00.123000+00:00",
    }
    assert registry.active_ca_certificates_pem() == []


def test_register_active_ca_and_update(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    own_ca: pki.CertificateAuthority,
) -> None:
    registry.register_ca_certificate(
        user_ca.certificate_pem.decode(), set_as_active=True, allow_auto_registration=True
    )
    registry.register_ca_certificate(own_ca.certificate_pem)
    ca_id = user_ca.certificate_id

    assert registry.active_ca_certificates_pem() == [user_ca.certificate_pem.decode()]
    assert registry.describe_ca_certificate(ca_id).auto_registration_status == "ENABLE"

    updated = registry.update_ca_certificate(ca_id, new_status="INACTIVE")
    assert (updated.status, updated.auto_registration_status) == ("INACTIVE", "ENABLE")
    assert updated.customer_version == 2
    assert registry.active_ca_certificates_pem() == []
    updated = registry.update_ca_certificate(ca_id, new_auto_registration_status="DISABLE")
    assert (updated.status, updated.auto_registration_status) == ("INACTIVE", "DISABLE")
    assert registry.describe_ca_certificate(ca_id) == updated
    assert {r.certificate_id for r in registry.list_ca_certificates()} == {
        ca_id,
        own_ca.certificate_id,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"new_status": "REVOKED"}, "newStatus"),
        ({"new_status": "active"}, "newStatus"),
        ({"new_auto_registration_status": "YES"}, "newAutoRegistrationStatus"),
    ],
)
def test_update_ca_invalid(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    kwargs: dict[str, Any],
    match: str,
) -> None:
    registry.register_ca_certificate(user_ca.certificate_pem)

    with pytest.raises(InvalidRequestError, match=match):
        registry.update_ca_certificate(user_ca.certificate_id, **kwargs)


def test_unknown_ca(registry: CertificateRegistry) -> None:
    unknown = "ab" * 32
    with pytest.raises(ResourceNotFoundError, match=unknown):
        registry.describe_ca_certificate(unknown)
    with pytest.raises(ResourceNotFoundError, match=unknown):
        registry.update_ca_certificate(unknown, new_status="ACTIVE")
    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.describe_ca_certificate("xyz")


def test_register_ca_refusals(
    registry: CertificateRegistry, user_ca: pki.CertificateAuthority, device_pems: list[bytes]
) -> None:
    registry.register_ca_certificate(user_ca.certificate_pem)

    with pytest.raises(ResourceAlreadyExistsError):
        registry.register_ca_certificate(user_ca.certificate_pem)
    with pytest.raises(CertificateValidationError, match="not a CA certificate"):
        registry.register_ca_certificate(device_pems[0])
    other = pki.create_root_ca(common_name="Other", now=NOW).certificate_pem
    for moment in (NOW - timedelta(days=1), datetime(2070, 1, 1, tzinfo=UTC)):
        with pytest.raises(CertificateValidationError, match="expired or not yet valid"):
            registry.register_ca_certificate(other, now=moment)
    with pytest.raises(CertificateError):
        registry.register_ca_certificate(b"garbage")
    assert len(registry.list_ca_certificates()) == 1


# --- register_certificate against CAs ---------------------------------------------------------


def test_register_certificate_signed_by_registered_ca(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    own_ca: pki.CertificateAuthority,
    public_key: bytes,
) -> None:
    registry.register_ca_certificate(user_ca.certificate_pem, set_as_active=True)
    with_ca = pki.issue_device_certificate(user_ca, public_key_pem=public_key).certificate_pem
    found = pki.issue_device_certificate(user_ca, public_key_pem=public_key).certificate_pem

    record = registry.register_certificate(with_ca, ca_pem=user_ca.certificate_pem)
    searched = registry.register_certificate(
        found.decode(), status=CertificateStatus.ACTIVE, own_ca_pem=own_ca.certificate_pem
    )

    assert record.status is CertificateStatus.INACTIVE  # RegisterCertificate's default
    assert record.ca_certificate_id == user_ca.certificate_id
    assert searched.ca_certificate_id == user_ca.certificate_id
    assert searched.status is CertificateStatus.ACTIVE
    assert registry.describe_certificate(record.certificate_id).to_description()[
        "caCertificateId"
    ] == (user_ca.certificate_id)


def test_register_certificate_signed_by_own_ca(
    registry: CertificateRegistry, own_ca: pki.CertificateAuthority, device_pems: list[bytes]
) -> None:
    by_own = registry.register_certificate(device_pems[0], own_ca_pem=own_ca.certificate_pem)
    given = registry.register_certificate(
        device_pems[1], ca_pem=own_ca.certificate_pem, own_ca_pem=own_ca.certificate_pem
    )

    assert by_own.ca_certificate_id is None
    assert given.ca_certificate_id is None


def test_register_certificate_unknown_ca_is_refused(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    impostor_ca: pki.CertificateAuthority,
    own_ca: pki.CertificateAuthority,
    public_key: bytes,
) -> None:
    registry.register_ca_certificate(user_ca.certificate_pem, set_as_active=True)
    # Same issuer name as the registered CA, signed by another key.
    forged = pki.issue_device_certificate(impostor_ca, public_key_pem=public_key).certificate_pem
    generation = registry.generation()

    with pytest.raises(CertificateValidationError, match="not signed by a registered CA"):
        registry.register_certificate(forged, own_ca_pem=own_ca.certificate_pem)
    with pytest.raises(CertificateValidationError, match="not signed by the given CA"):
        registry.register_certificate(forged, ca_pem=user_ca.certificate_pem)
    with pytest.raises(ResourceNotFoundError, match="CA certificate"):
        registry.register_certificate(forged, ca_pem=impostor_ca.certificate_pem)

    assert registry.get_certificate(pki.certificate_id(forged)) is None
    assert registry.generation() == generation


def test_register_certificate_legacy_path_records_a_registered_ca(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    public_key: bytes,
    device_pems: list[bytes],
) -> None:
    registry.register_ca_certificate(user_ca.certificate_pem)
    by_user = pki.issue_device_certificate(user_ca, public_key_pem=public_key).certificate_pem

    assert (
        registry.register_certificate(by_user, CertificateStatus.ACTIVE).ca_certificate_id
        == user_ca.certificate_id
    )
    assert registry.register_certificate(device_pems[0]).ca_certificate_id is None
    with pytest.raises(InvalidRequestError, match="is not the CA that signed"):
        registry.register_certificate(
            pki.issue_device_certificate(user_ca, public_key_pem=public_key).certificate_pem,
            ca_certificate_id="cd" * 32,
        )


# --- principal snapshot -----------------------------------------------------------------------


def test_principal_snapshot(
    registry: CertificateRegistry,
    user_ca: pki.CertificateAuthority,
    public_key: bytes,
    cert_arn: str,
) -> None:
    registry.create_policy("b-policy", DOC_1)
    registry.create_policy_version("b-policy", DOC_2, set_as_default=True)
    registry.create_policy("a-policy", DOC_1)
    registry.create_policy("unattached", DOC_2)
    registry.attach_policy("b-policy", cert_arn)
    registry.attach_policy("a-policy", cert_arn)
    registry.create_thing_type("sensor")
    registry.create_thing("t2", thing_type_name="sensor", attributes={"room": "hall"})
    registry.create_thing("t1")
    registry.create_thing("t3")
    registry.attach_thing_principal("t2", cert_arn)
    registry.attach_thing_principal("t1", cert_arn)

    snapshot = registry.principal_snapshot(_cert_id(cert_arn).upper())

    assert snapshot.certificate_id == _cert_id(cert_arn)
    assert snapshot.status is CertificateStatus.ACTIVE
    assert snapshot.ca_certificate_id is None
    assert snapshot.ca_status is None
    assert snapshot.policies == (("a-policy", DOC_1), ("b-policy", DOC_2))
    assert snapshot.things == (registry.describe_thing("t1"), registry.describe_thing("t2"))
    assert snapshot.generation == registry.generation()

    registry.set_default_policy_version("b-policy", "1")
    registry.update_certificate_status(_cert_id(cert_arn), CertificateStatus.INACTIVE)
    registry.update_thing("t2", attributes={"room": "attic"})
    after = registry.principal_snapshot(_cert_id(cert_arn))
    assert after.policies == (("a-policy", DOC_1), ("b-policy", DOC_1))
    assert after.status is CertificateStatus.INACTIVE
    assert after.things[1].attributes == {"room": "attic"}
    assert after.generation == snapshot.generation + 3

    registry.register_ca_certificate(user_ca.certificate_pem, set_as_active=True)
    by_user = registry.register_certificate(
        pki.issue_device_certificate(user_ca, public_key_pem=public_key).certificate_pem,
        ca_pem=user_ca.certificate_pem,
    )
    user_snapshot = registry.principal_snapshot(by_user.certificate_id)
    assert (user_snapshot.ca_certificate_id, user_snapshot.ca_status) == (
        user_ca.certificate_id,
        "ACTIVE",
    )
    assert (user_snapshot.policies, user_snapshot.things) == ((), ())


def test_principal_snapshot_of_unregistered_certificate(registry: CertificateRegistry) -> None:
    snapshot = registry.principal_snapshot("AB" * 32)

    assert snapshot.certificate_id == "ab" * 32
    assert snapshot.status is None
    assert (snapshot.ca_certificate_id, snapshot.policies, snapshot.things) == (None, (), ())
    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.principal_snapshot("nope")


# --- generation, persistence, concurrency -----------------------------------------------------


def test_generation_moves_only_on_changes(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    start = registry.generation()
    record = registry.register_certificate(device_pems[0], CertificateStatus.INACTIVE)
    assert registry.generation() == start + 1
    registry.update_certificate_status(record.certificate_id, CertificateStatus.ACTIVE)
    assert registry.generation() == start + 2

    # Reads, failed writes and no-op writes leave it alone.
    registry.list_things()
    registry.describe_certificate(record.certificate_id)
    registry.principal_snapshot(record.certificate_id)
    with pytest.raises(ResourceNotFoundError):
        registry.update_thing("nope")
    with pytest.raises(CertificateError):
        registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE)
    registry.delete_thing("nope")
    assert registry.generation() == start + 2

    registry.create_thing("t")
    registry.create_policy("p", DOC_1)
    registry.attach_policy("p", record.certificate_arn)
    assert registry.generation() == start + 5


def test_everything_persists_across_reopen(
    tmp_path: Path, device_pems: list[bytes], user_ca: pki.CertificateAuthority
) -> None:
    with _open(tmp_path) as registry:
        arn = registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE)
        registry.create_thing_type("sensor", searchable_attributes=["room"])
        thing = registry.create_thing("t", thing_type_name="sensor", attributes={"room": "a"})
        registry.attach_thing_principal("t", arn.certificate_arn)
        registry.create_policy("p", DOC_1)
        registry.create_policy_version("p", DOC_2, set_as_default=True)
        registry.attach_policy("p", arn.certificate_arn)
        ca = registry.register_ca_certificate(user_ca.certificate_pem, set_as_active=True)
        policy = registry.get_policy("p")
        thing_type = registry.describe_thing_type("sensor")
        snapshot = registry.principal_snapshot(arn.certificate_id)
        generation = registry.generation()

    with _open(tmp_path) as reopened:
        assert reopened.describe_thing("t") == thing
        assert reopened.describe_thing_type("sensor") == thing_type
        assert reopened.get_policy("p") == policy
        assert [v.version_id for v in reopened.list_policy_versions("p")] == ["1", "2"]
        assert reopened.describe_ca_certificate(ca.certificate_id) == ca
        assert reopened.principal_snapshot(arn.certificate_id) == snapshot
        assert reopened.generation() == generation


def test_two_registries_see_each_others_writes(tmp_path: Path, device_pems: list[bytes]) -> None:
    with _open(tmp_path) as cli, _open(tmp_path) as broker:
        record = cli.register_certificate(device_pems[0], CertificateStatus.ACTIVE)
        seen = broker.generation()
        assert broker.principal_snapshot(record.certificate_id).status is CertificateStatus.ACTIVE

        cli.create_policy("p", DOC_1)
        cli.attach_policy("p", record.certificate_arn)

        assert broker.generation() == seen + 2
        assert broker.principal_snapshot(record.certificate_id).policies == (("p", DOC_1),)

        broker.create_thing("t")
        broker.attach_thing_principal("t", record.certificate_arn)
        assert cli.generation() == seen + 4
        assert cli.list_principal_things(record.certificate_arn) == ["t"]


def test_another_process_sees_writes_and_generation(tmp_path: Path) -> None:
    with _open(tmp_path) as broker:
        before = broker.generation()
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from aws_iot_mock.registry import Registry\n"
            "with Registry.open(Path(sys.argv[1]), region=sys.argv[2], account_id=sys.argv[3])"
            " as r:\n"
            "    r.create_thing('from-cli', attributes={'a': '1'})\n"
        )
        subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), REGION, ACCOUNT],
            check=True,
            timeout=60,
        )

        assert broker.generation() == before + 1
        assert broker.describe_thing("from-cli").attributes == {"a": "1"}


def test_concurrent_writers(tmp_path: Path) -> None:
    registries = [_open(tmp_path) for _ in range(4)]
    errors: list[BaseException] = []

    def work(registry: CertificateRegistry, index: int) -> None:
        try:
            for item in range(15):
                registry.create_thing(f"t{index}-{item}")
                registry.update_thing(f"t{index}-{item}", attributes={"n": str(item)})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(registry, index))
        for index, registry in enumerate(registries)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(registries[0].list_things()) == 60
        assert {registry.generation() for registry in registries} == {120}
    finally:
        for registry in registries:
            registry.close()


def test_naive_now_is_refused(registry: CertificateRegistry) -> None:
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        registry.create_policy("p", DOC_1, now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        registry.create_thing_type("t", now=naive)
