"""Tests for the registry verbs of broker.cli (things, policies, CAs, test-authorization), the
demo device's things and policy, and config-declared resources, all through ``main(argv)``.

Like tests/test_cli.py: every call gets ``--certs-dir``/``--state-dir`` under ``tmp_path`` and
runs from ``tmp_path``; outputs are parsed as the JSON the AWS CLI prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_public_file
from aws_iot_mock.cli import local as cli_module
from tests.test_cli import Cli, Result

EXIT_USAGE = 252
EXIT_CONFIG = 253
EXIT_SERVICE = 254
ARN = "arn:aws:iot:us-east-1:123456789012"

ALLOW_ALL_DEMO = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/demo/*",
        }
    ],
}
DENY_SECRET = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "NoSecrets",
            "Effect": "Deny",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/demo/secret",
        }
    ],
}


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    monkeypatch.chdir(tmp_path)
    yield Cli(capsys, tmp_path)


def _ok(result: Result) -> None:
    """Assert success with no output (AWS's Update*/Attach*/Delete* print nothing)."""
    assert result.code == 0, result.err
    assert result.out == ""


def _service_error(result: Result, exception: str) -> str:
    assert result.code == EXIT_SERVICE, (result.code, result.err)
    line = result.one_line_error()
    # The AWS CLI's text for a service error (botocore's ClientError).
    assert re.match(rf"An error occurred \({exception}\) when calling the \w+ operation: ", line), (
        line
    )
    return line


def _certificate(cli: Cli, *extra: str) -> tuple[str, str]:
    """Create an ACTIVE certificate; return (certificateId, certificateArn)."""
    data = cli.create("--set-as-active", *extra)
    return data["certificateId"], data["certificateArn"]


def _policy(cli: Cli, name: str, document: object) -> dict[str, Any]:
    data: dict[str, Any] = cli(
        "create-policy", "--policy-name", name, "--policy-document", json.dumps(document)
    ).json()
    return data


# --- things --------------------------------------------------------------------------------------


def test_create_thing_output_shape(cli: Cli) -> None:
    data = cli("create-thing", "--thing-name", "sensor-1").json()

    assert set(data) == {"thingName", "thingArn", "thingId"}
    assert data["thingName"] == "sensor-1"
    assert data["thingArn"] == f"{ARN}:thing/sensor-1"
    assert len(data["thingId"]) == 36


@pytest.mark.parametrize(
    "payload",
    [
        '{"attributes": {"room": "kitchen", "floor": "1"}, "merge": false}',
        "attributes={room=kitchen,floor=1}",
        "file://payload.json",
    ],
    ids=["json", "shorthand", "file"],
)
def test_create_thing_with_attribute_payload(cli: Cli, tmp_path: Path, payload: str) -> None:
    (tmp_path / "payload.json").write_text(
        '{"attributes": {"room": "kitchen", "floor": "1"}}', encoding="utf-8"
    )
    cli("create-thing", "--thing-name", "sensor-1", "--attribute-payload", payload).json()

    described = cli("describe-thing", "--thing-name", "sensor-1").json()

    assert described["attributes"] == {"room": "kitchen", "floor": "1"}


def test_describe_thing_shape(cli: Cli) -> None:
    created = cli("create-thing", "--thing-name", "t1").json()

    data = cli("describe-thing", "--thing-name", "t1").json()

    assert data == {
        "defaultClientId": "t1",
        "thingName": "t1",
        "thingId": created["thingId"],
        "thingArn": created["thingArn"],
        "attributes": {},
        "version": 1,
    }


def test_describe_unknown_thing(cli: Cli) -> None:
    _service_error(cli("describe-thing", "--thing-name", "nope"), "ResourceNotFoundException")


def test_list_things_and_filters(cli: Cli) -> None:
    _ok_json = cli("create-thing-type", "--thing-type-name", "lamp").json()
    assert _ok_json["thingTypeName"] == "lamp"
    cli(
        "create-thing",
        "--thing-name",
        "a",
        "--attribute-payload",
        "attributes={room=kitchen}",
    ).json()
    cli("create-thing", "--thing-name", "b", "--thing-type-name", "lamp").json()
    cli("create-thing", "--thing-name", "c", "--attribute-payload", "attributes={room=hall}").json()

    def names(*flags: str) -> list[str]:
        return [t["thingName"] for t in cli("list-things", *flags).json()["things"]]

    assert names() == ["a", "b", "c"]
    assert names("--attribute-name", "room") == ["a", "c"]
    assert names("--attribute-name", "room", "--attribute-value", "hall") == ["c"]
    assert names("--thing-type-name", "lamp") == ["b"]
    summary = cli("list-things", "--thing-type-name", "lamp").json()["things"][0]
    assert summary == {
        "thingName": "b",
        "thingTypeName": "lamp",
        "thingArn": f"{ARN}:thing/b",
        "attributes": {},
        "version": 1,
    }


def test_update_thing_replace_merge_and_remove(cli: Cli) -> None:
    cli(
        "create-thing",
        "--thing-name",
        "t",
        "--attribute-payload",
        '{"attributes": {"a": "1", "b": "2"}}',
    ).json()

    _ok(
        cli(
            "update-thing",
            "--thing-name",
            "t",
            "--attribute-payload",
            '{"attributes": {"c": "3"}, "merge": true}',
        )
    )
    assert cli("describe-thing", "--thing-name", "t").json()["attributes"] == {
        "a": "1",
        "b": "2",
        "c": "3",
    }

    _ok(cli("update-thing", "--thing-name", "t", "--attribute-payload", "attributes={z=9}"))
    described = cli("describe-thing", "--thing-name", "t").json()
    assert described["attributes"] == {"z": "9"}
    assert described["version"] == 3


def test_update_thing_type_and_remove_type(cli: Cli) -> None:
    cli("create-thing-type", "--thing-type-name", "lamp").json()
    cli("create-thing", "--thing-name", "t").json()

    _ok(cli("update-thing", "--thing-name", "t", "--thing-type-name", "lamp"))
    assert cli("describe-thing", "--thing-name", "t").json()["thingTypeName"] == "lamp"

    _ok(cli("update-thing", "--thing-name", "t", "--remove-thing-type"))
    assert "thingTypeName" not in cli("describe-thing", "--thing-name", "t").json()


def test_update_thing_expected_version_conflict(cli: Cli) -> None:
    cli("create-thing", "--thing-name", "t").json()

    result = cli(
        "update-thing",
        "--thing-name",
        "t",
        "--attribute-payload",
        "attributes={a=1}",
        "--expected-version",
        "7",
    )

    _service_error(result, "VersionConflictException")
    _ok(
        cli(
            "update-thing",
            "--thing-name",
            "t",
            "--attribute-payload",
            "attributes={a=1}",
            "--expected-version",
            "1",
        )
    )


@pytest.mark.parametrize(
    "payload",
    ['{"attributes": ', "attributes={a=1", '{"attributes": {"a": 1}}', '{"attrs": {}}', "merge"],
)
def test_bad_attribute_payload_is_a_parse_error(cli: Cli, payload: str) -> None:
    result = cli("create-thing", "--thing-name", "t", "--attribute-payload", payload)

    assert result.code == EXIT_USAGE
    assert "--attribute-payload" in result.one_line_error()
    assert cli("list-things").json() == {"things": []}


def test_delete_thing(cli: Cli) -> None:
    cli("create-thing", "--thing-name", "t").json()

    _service_error(
        cli("delete-thing", "--thing-name", "t", "--expected-version", "2"),
        "VersionConflictException",
    )
    _ok(cli("delete-thing", "--thing-name", "t"))
    assert cli("list-things").json() == {"things": []}
    # AWS: deleting a thing that does not exist succeeds.
    _ok(cli("delete-thing", "--thing-name", "t"))


def test_create_thing_type_output_and_properties(cli: Cli) -> None:
    data = cli(
        "create-thing-type",
        "--thing-type-name",
        "lamp",
        "--thing-type-properties",
        "thingTypeDescription=desk lamps,searchableAttributes=room,floor",
    ).json()

    assert set(data) == {"thingTypeName", "thingTypeArn", "thingTypeId"}
    assert data["thingTypeName"] == "lamp"
    assert data["thingTypeArn"] == f"{ARN}:thingtype/lamp"

    json_form = cli(
        "create-thing-type",
        "--thing-type-name",
        "fan",
        "--thing-type-properties",
        '{"thingTypeDescription": "fans", "searchableAttributes": ["room"]}',
    )
    assert json_form.json()["thingTypeName"] == "fan"


def test_create_thing_with_unknown_type(cli: Cli) -> None:
    result = cli("create-thing", "--thing-name", "t", "--thing-type-name", "nope")

    _service_error(result, "ResourceNotFoundException")


def test_thing_principals(cli: Cli) -> None:
    _, arn = _certificate(cli)
    cli("create-thing", "--thing-name", "t1").json()
    cli("create-thing", "--thing-name", "t2").json()

    _ok(cli("attach-thing-principal", "--thing-name", "t1", "--principal", arn))
    _ok(cli("attach-thing-principal", "--thing-name", "t2", "--principal", arn))

    assert cli("list-thing-principals", "--thing-name", "t1").json() == {"principals": [arn]}
    things = cli("list-principal-things", "--principal", arn).json()
    assert sorted(things["things"]) == ["t1", "t2"]

    _ok(cli("detach-thing-principal", "--thing-name", "t1", "--principal", arn))
    assert cli("list-thing-principals", "--thing-name", "t1").json() == {"principals": []}
    assert cli("list-principal-things", "--principal", arn).json() == {"things": ["t2"]}


def test_attach_thing_principal_needs_a_certificate_arn(cli: Cli) -> None:
    cert_id, _ = _certificate(cli)
    cli("create-thing", "--thing-name", "t1").json()

    result = cli("attach-thing-principal", "--thing-name", "t1", "--principal", cert_id)

    _service_error(result, "InvalidRequestException")


def test_missing_required_flag_is_a_usage_error(cli: Cli) -> None:
    result = cli("create-thing")

    assert result.code == EXIT_USAGE
    assert "--thing-name" in result.err


# --- policies ------------------------------------------------------------------------------------


def test_create_policy_output_shape(cli: Cli) -> None:
    document = json.dumps(ALLOW_ALL_DEMO)

    data = cli("create-policy", "--policy-name", "p", "--policy-document", document).json()

    assert data == {
        "policyName": "p",
        "policyArn": f"{ARN}:policy/p",
        "policyDocument": document,
        "policyVersionId": "1",
    }


def test_create_policy_from_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(ALLOW_ALL_DEMO, indent=2), encoding="utf-8")

    data = cli("create-policy", "--policy-name", "p", "--policy-document", "file://p.json").json()

    assert json.loads(data["policyDocument"]) == ALLOW_ALL_DEMO


@pytest.mark.parametrize(
    "document",
    ["not json", '{"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]}'],
)
def test_create_malformed_policy(cli: Cli, document: str) -> None:
    result = cli("create-policy", "--policy-name", "p", "--policy-document", document)

    _service_error(result, "MalformedPolicyException")
    assert cli("list-policies").json() == {"policies": []}


def test_create_policy_twice(cli: Cli) -> None:
    _policy(cli, "p", ALLOW_ALL_DEMO)

    result = cli(
        "create-policy", "--policy-name", "p", "--policy-document", json.dumps(ALLOW_ALL_DEMO)
    )

    _service_error(result, "ResourceAlreadyExistsException")


def test_get_and_list_policies(cli: Cli) -> None:
    _policy(cli, "b", ALLOW_ALL_DEMO)
    _policy(cli, "a", DENY_SECRET)

    got = cli("get-policy", "--policy-name", "a").json()
    listing = cli("list-policies").json()

    assert set(got) == {
        "policyName",
        "policyArn",
        "policyDocument",
        "defaultVersionId",
        "creationDate",
        "lastModifiedDate",
        "generationId",
    }
    assert got["defaultVersionId"] == "1"
    assert json.loads(got["policyDocument"]) == DENY_SECRET
    assert listing == {
        "policies": [
            {"policyName": "a", "policyArn": f"{ARN}:policy/a"},
            {"policyName": "b", "policyArn": f"{ARN}:policy/b"},
        ]
    }
    _service_error(cli("get-policy", "--policy-name", "zz"), "ResourceNotFoundException")


def test_policy_versions(cli: Cli) -> None:
    _policy(cli, "p", ALLOW_ALL_DEMO)

    created = cli(
        "create-policy-version",
        "--policy-name",
        "p",
        "--policy-document",
        json.dumps(DENY_SECRET),
    ).json()
    assert created == {
        "policyArn": f"{ARN}:policy/p",
        "policyDocument": json.dumps(DENY_SECRET),
        "policyVersionId": "2",
        "isDefaultVersion": False,
    }
    default = cli(
        "create-policy-version",
        "--policy-name",
        "p",
        "--policy-document",
        json.dumps(DENY_SECRET),
        "--set-as-default",
    ).json()
    assert default["isDefaultVersion"] is True
    assert cli("get-policy", "--policy-name", "p").json()["defaultVersionId"] == "3"

    version = cli("get-policy-version", "--policy-name", "p", "--policy-version-id", "1").json()
    assert version["policyVersionId"] == "1"
    assert version["isDefaultVersion"] is False
    assert version["policyName"] == "p"
    assert {"policyArn", "policyDocument", "creationDate", "generationId"} <= set(version)

    versions = cli("list-policy-versions", "--policy-name", "p").json()["policyVersions"]
    assert sorted(v["versionId"] for v in versions) == ["1", "2", "3"]
    assert all(set(v) == {"versionId", "isDefaultVersion", "createDate"} for v in versions)
    assert [v["versionId"] for v in versions if v["isDefaultVersion"]] == ["3"]

    _ok(cli("set-default-policy-version", "--policy-name", "p", "--policy-version-id", "1"))
    assert cli("get-policy", "--policy-name", "p").json()["defaultVersionId"] == "1"

    _ok(cli("delete-policy-version", "--policy-name", "p", "--policy-version-id", "3"))
    _service_error(
        cli("delete-policy-version", "--policy-name", "p", "--policy-version-id", "1"),
        "DeleteConflictException",
    )
    _service_error(cli("delete-policy", "--policy-name", "p"), "DeleteConflictException")
    _ok(cli("delete-policy-version", "--policy-name", "p", "--policy-version-id", "2"))
    _ok(cli("delete-policy", "--policy-name", "p"))
    assert cli("list-policies").json() == {"policies": []}


def test_attach_and_detach_policy(cli: Cli) -> None:
    _, arn = _certificate(cli)
    _policy(cli, "p", ALLOW_ALL_DEMO)

    _ok(cli("attach-policy", "--policy-name", "p", "--target", arn))

    assert cli("list-attached-policies", "--target", arn).json() == {
        "policies": [{"policyName": "p", "policyArn": f"{ARN}:policy/p"}]
    }
    assert cli("list-targets-for-policy", "--policy-name", "p").json() == {"targets": [arn]}
    _service_error(cli("delete-policy", "--policy-name", "p"), "DeleteConflictException")

    _ok(cli("detach-policy", "--policy-name", "p", "--target", arn))
    assert cli("list-attached-policies", "--target", arn).json() == {"policies": []}
    assert cli("list-targets-for-policy", "--policy-name", "p").json() == {"targets": []}


def test_attach_unknown_policy(cli: Cli) -> None:
    _, arn = _certificate(cli)

    result = cli("attach-policy", "--policy-name", "nope", "--target", arn)

    _service_error(result, "ResourceNotFoundException")


# --- CA certificates and register-certificate ----------------------------------------------------


@pytest.fixture
def other_ca(tmp_path: Path) -> pki.CertificateAuthority:
    ca = pki.create_root_ca(common_name="Rig CA")
    write_public_file(tmp_path / "rig-ca.pem", ca.certificate_pem)
    return ca


def _device_of(ca: pki.CertificateAuthority, path: Path) -> str:
    issued = pki.issue_device_certificate(ca)
    write_public_file(path, issued.certificate_pem)
    return issued.certificate_id


def test_register_ca_certificate(
    cli: Cli, tmp_path: Path, other_ca: pki.CertificateAuthority
) -> None:
    result = cli(
        "register-ca-certificate",
        "--ca-certificate",
        "file://rig-ca.pem",
        "--verification-certificate",
        "file://rig-ca.pem",
        "--set-as-active",
    )

    data = result.json()
    assert set(data) == {"certificateArn", "certificateId"}
    assert data["certificateId"] == other_ca.certificate_id
    assert data["certificateArn"] == f"{ARN}:cacert/{other_ca.certificate_id}"
    assert "--verification-certificate" in result.one_line_error()
    assert "ignored" in result.err

    described = cli("describe-ca-certificate", "--certificate-id", data["certificateId"]).json()
    description = described["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["autoRegistrationStatus"] == "DISABLE"
    assert description["certificateId"] == other_ca.certificate_id

    listing = cli("list-ca-certificates").json()["certificates"]
    assert [c["certificateId"] for c in listing] == [other_ca.certificate_id]
    assert set(listing[0]) == {"certificateArn", "certificateId", "status", "creationDate"}

    _ok(
        cli(
            "update-ca-certificate",
            "--certificate-id",
            other_ca.certificate_id,
            "--new-status",
            "INACTIVE",
            "--new-auto-registration-status",
            "ENABLE",
        )
    )
    updated = cli("describe-ca-certificate", "--certificate-id", other_ca.certificate_id).json()
    assert updated["certificateDescription"]["status"] == "INACTIVE"
    assert updated["certificateDescription"]["autoRegistrationStatus"] == "ENABLE"


def test_register_ca_certificate_twice(cli: Cli, other_ca: pki.CertificateAuthority) -> None:
    cli("register-ca-certificate", "--ca-certificate", "file://rig-ca.pem").json()

    result = cli("register-ca-certificate", "--ca-certificate", "file://rig-ca.pem")

    _service_error(result, "ResourceAlreadyExistsException")


def test_describe_unknown_ca(cli: Cli) -> None:
    result = cli("describe-ca-certificate", "--certificate-id", "0" * 64)

    _service_error(result, "ResourceNotFoundException")


def test_register_certificate_signed_by_registered_ca(
    cli: Cli, tmp_path: Path, other_ca: pki.CertificateAuthority
) -> None:
    cli(
        "register-ca-certificate", "--ca-certificate", "file://rig-ca.pem", "--set-as-active"
    ).json()
    device_id = _device_of(other_ca, tmp_path / "device.pem")

    data = cli(
        "register-certificate",
        "--certificate-pem",
        "file://device.pem",
        "--ca-certificate-pem",
        "file://rig-ca.pem",
        "--set-as-active",
    ).json()

    assert data == {"certificateArn": f"{ARN}:cert/{device_id}", "certificateId": device_id}
    description = cli.describe(device_id)["certificateDescription"]
    assert description["status"] == "ACTIVE"
    assert description["caCertificateId"] == other_ca.certificate_id


def test_register_certificate_status_flag(cli: Cli, tmp_path: Path) -> None:
    ca = CertsDirectory(cli.certs_dir).ensure_root_ca()
    device_id = _device_of(ca, tmp_path / "device.pem")

    data = cli(
        "register-certificate", "--certificate-pem", "file://device.pem", "--status", "REVOKED"
    ).json()

    assert data["certificateId"] == device_id
    assert cli.status(device_id) == "REVOKED"


def test_register_certificate_default_is_inactive(cli: Cli, tmp_path: Path) -> None:
    ca = CertsDirectory(cli.certs_dir).ensure_root_ca()
    device_id = _device_of(ca, tmp_path / "device.pem")

    cli("register-certificate", "--certificate-pem", "file://device.pem").json()

    assert cli.status(device_id) == "INACTIVE"


def test_register_certificate_of_unknown_ca_is_refused(
    cli: Cli, tmp_path: Path, other_ca: pki.CertificateAuthority
) -> None:
    _device_of(other_ca, tmp_path / "device.pem")

    result = cli("register-certificate", "--certificate-pem", "file://device.pem")

    assert result.code == EXIT_SERVICE
    result.one_line_error()
    assert cli("list-certificates").json() == {"certificates": []}


def test_register_certificate_set_as_active_and_status_exclusive(cli: Cli) -> None:
    result = cli(
        "register-certificate",
        "--certificate-pem",
        "x",
        "--set-as-active",
        "--status",
        "ACTIVE",
    )

    assert result.code == EXIT_USAGE


# --- test-authorization --------------------------------------------------------------------------


def _authorize(cli: Cli, *argv: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = cli("test-authorization", *argv).json()["authResults"]
    return results


def _names(section: dict[str, Any]) -> list[str]:
    return [p["policyName"] for p in section["policies"]]


def test_test_authorization_allowed_output_shape(cli: Cli) -> None:
    _, arn = _certificate(cli)
    _policy(cli, "demo-publish", ALLOW_ALL_DEMO)
    cli("attach-policy", "--policy-name", "demo-publish", "--target", arn)
    resource = f"{ARN}:topic/demo/hello"

    results = _authorize(
        cli, "--principal", arn, "--auth-infos", f"actionType=PUBLISH,resources={resource}"
    )

    assert results == [
        {
            "authInfo": {"actionType": "PUBLISH", "resources": [resource]},
            "allowed": {
                "policies": [
                    {"policyName": "demo-publish", "policyArn": f"{ARN}:policy/demo-publish"}
                ]
            },
            "denied": {"implicitDeny": {"policies": []}, "explicitDeny": {"policies": []}},
            "authDecision": "ALLOWED",
            "missingContextValues": [],
        }
    ]


def test_test_authorization_implicit_and_explicit_deny(cli: Cli) -> None:
    cert_id, arn = _certificate(cli)
    _policy(cli, "demo-publish", ALLOW_ALL_DEMO)
    _policy(cli, "no-secrets", DENY_SECRET)
    for name in ("demo-publish", "no-secrets"):
        cli("attach-policy", "--policy-name", name, "--target", arn)

    # The bare certificate ID is accepted as well as the ARN; several --auth-infos items.
    results = _authorize(
        cli,
        "--principal",
        cert_id,
        "--auth-infos",
        f"actionType=PUBLISH,resources={ARN}:topic/other",
        f"actionType=PUBLISH,resources={ARN}:topic/demo/secret",
        "--auth-infos",
        f"actionType=SUBSCRIBE,resources={ARN}:topicfilter/demo/#",
    )

    implicit, explicit, subscribe = results
    assert implicit["authDecision"] == "IMPLICIT_DENY"
    assert _names(implicit["allowed"]) == []
    assert sorted(_names(implicit["denied"]["implicitDeny"])) == ["demo-publish", "no-secrets"]
    assert _names(implicit["denied"]["explicitDeny"]) == []
    assert explicit["authDecision"] == "EXPLICIT_DENY"
    assert _names(explicit["denied"]["explicitDeny"]) == ["no-secrets"]
    assert _names(explicit["allowed"]) == []
    assert subscribe["authDecision"] == "IMPLICIT_DENY"
    assert subscribe["authInfo"] == {
        "actionType": "SUBSCRIBE",
        "resources": [f"{ARN}:topicfilter/demo/#"],
    }


def test_test_authorization_policies_to_add_and_skip(cli: Cli) -> None:
    _, arn = _certificate(cli)
    _policy(cli, "demo-publish", ALLOW_ALL_DEMO)
    _policy(cli, "no-secrets", DENY_SECRET)
    cli("attach-policy", "--policy-name", "no-secrets", "--target", arn)
    secret = f"actionType=PUBLISH,resources={ARN}:topic/demo/secret"
    hello = f"actionType=PUBLISH,resources={ARN}:topic/demo/hello"

    added = _authorize(
        cli, "--principal", arn, "--auth-infos", hello, "--policy-names-to-add", "demo-publish"
    )
    skipped = _authorize(
        cli,
        "--principal",
        arn,
        "--auth-infos",
        secret,
        "--policy-names-to-add",
        "demo-publish",
        "--policy-names-to-skip",
        "no-secrets",
    )

    assert added[0]["authDecision"] == "ALLOWED"
    assert _names(added[0]["allowed"]) == ["demo-publish"]
    assert skipped[0]["authDecision"] == "ALLOWED"


def test_test_authorization_json_auth_infos_and_several_resources(cli: Cli) -> None:
    _, arn = _certificate(cli)
    _policy(cli, "demo-publish", ALLOW_ALL_DEMO)
    cli("attach-policy", "--policy-name", "demo-publish", "--target", arn)
    infos = [
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/demo/a", f"{ARN}:topic/demo/b"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/demo/a", f"{ARN}:topic/x"]},
    ]

    results = _authorize(cli, "--principal", arn, "--auth-infos", json.dumps(infos))

    assert [r["authDecision"] for r in results] == ["ALLOWED", "IMPLICIT_DENY"]
    assert results[0]["authInfo"]["resources"] == infos[0]["resources"]


def test_test_authorization_thing_variables_need_the_thing_as_client_id(cli: Cli) -> None:
    _, arn = _certificate(cli)
    cli("create-thing", "--thing-name", "sensor-1").json()
    cli("attach-thing-principal", "--thing-name", "sensor-1", "--principal", arn)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            }
        ],
    }
    _policy(cli, "thing-connect", document)
    cli("attach-policy", "--policy-name", "thing-connect", "--target", arn)

    def decide(client_id: str) -> str:
        results = _authorize(
            cli,
            "--principal",
            arn,
            "--client-id",
            client_id,
            "--auth-infos",
            f"actionType=CONNECT,resources={ARN}:client/{client_id}",
        )
        return str(results[0]["authDecision"])

    assert decide("sensor-1") == "ALLOWED"
    assert decide("sensor-2") == "IMPLICIT_DENY"


def test_test_authorization_certificate_variables(cli: Cli) -> None:
    _, arn = _certificate(cli)
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{ARN}:topic/by-issuer/${{iot:Certificate.Issuer.CommonName}}",
            }
        ],
    }
    _policy(cli, "issuer", document)
    cli("attach-policy", "--policy-name", "issuer", "--target", arn)
    issuer = pki.load_certificate((cli.certs_dir / "root-ca.pem").read_bytes())
    (attribute,) = issuer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(attribute.value)

    results = _authorize(
        cli,
        "--principal",
        arn,
        "--auth-infos",
        f"actionType=PUBLISH,resources={ARN}:topic/by-issuer/{common_name}",
    )

    assert results[0]["authDecision"] == "ALLOWED"


def test_test_authorization_no_policy_is_implicit_deny(cli: Cli) -> None:
    _, arn = _certificate(cli)

    results = _authorize(
        cli, "--principal", arn, "--auth-infos", f"actionType=RECEIVE,resources={ARN}:topic/a"
    )

    assert results[0]["authDecision"] == "IMPLICIT_DENY"
    assert results[0]["denied"]["implicitDeny"] == {"policies": []}


@pytest.mark.parametrize(
    ("auth_info", "code"),
    [
        (f"actionType=FLY,resources={ARN}:topic/a", EXIT_SERVICE),
        ("actionType=PUBLISH", EXIT_SERVICE),
        ("resources=x", EXIT_USAGE),
        ('[{"actionType": "PUBLISH", "resources": "', EXIT_USAGE),
        ("actionType=PUBLISH,{", EXIT_USAGE),
    ],
)
def test_test_authorization_bad_auth_infos(cli: Cli, auth_info: str, code: int) -> None:
    _, arn = _certificate(cli)

    result = cli("test-authorization", "--principal", arn, "--auth-infos", auth_info)

    assert result.code == code, result.err
    result.one_line_error()


def test_test_authorization_unknown_principal(cli: Cli) -> None:
    result = cli(
        "test-authorization",
        "--principal",
        f"{ARN}:cert/{'0' * 64}",
        "--auth-infos",
        f"actionType=PUBLISH,resources={ARN}:topic/a",
    )

    _service_error(result, "ResourceNotFoundException")


def test_test_authorization_malformed_principal(cli: Cli) -> None:
    result = cli(
        "test-authorization",
        "--principal",
        f"{ARN}:thing/t",
        "--auth-infos",
        f"actionType=PUBLISH,resources={ARN}:topic/a",
    )

    _service_error(result, "InvalidRequestException")


# --- the demo device -----------------------------------------------------------------------------


def _demo_arn(cli: Cli) -> str:
    pem = (cli.certs_dir / "demo-device" / "demo-device.cert.pem").read_bytes()
    return f"{ARN}:cert/{pki.certificate_id(pem)}"


def _registry_snapshot(cli: Cli) -> dict[str, Any]:
    """Everything the demo device touches, as the CLI shows it."""
    arn = _demo_arn(cli)
    return {
        "certificates": cli("list-certificates").json(),
        "things": cli("list-things").json(),
        "principal_things": sorted(
            cli("list-principal-things", "--principal", arn).json()["things"]
        ),
        "policies": cli("list-policies").json(),
        "policy": cli("get-policy", "--policy-name", "demo-device-policy").json(),
        "versions": cli("list-policy-versions", "--policy-name", "demo-device-policy").json(),
        "attached": cli("list-attached-policies", "--target", arn).json(),
    }


def test_demo_device_things_policy_and_attachments(cli: Cli) -> None:
    assert cli("init", "--demo-device").code == 0
    arn = _demo_arn(cli)

    things = [t["thingName"] for t in cli("list-things").json()["things"]]
    assert things == ["demo-device", "demo-device-healthcheck", "demo-device-publisher"]
    for thing in things:
        assert cli("list-thing-principals", "--thing-name", thing).json() == {"principals": [arn]}
    assert cli("list-attached-policies", "--target", arn).json() == {
        "policies": [
            {"policyName": "demo-device-policy", "policyArn": f"{ARN}:policy/demo-device-policy"}
        ]
    }
    document = json.loads(
        cli("get-policy", "--policy-name", "demo-device-policy").json()["policyDocument"]
    )
    resources = [
        r
        for statement in document["Statement"]
        for r in (
            [statement["Resource"]]
            if isinstance(statement["Resource"], str)
            else statement["Resource"]
        )
    ]
    # Least privilege: no iot:* and no * resource.
    assert "*" not in resources
    assert all(statement["Action"] != "iot:*" for statement in document["Statement"])
    assert f"{ARN}:client/${{iot:Connection.Thing.ThingName}}" in resources


def test_demo_device_is_idempotent(cli: Cli) -> None:
    assert cli("init", "--demo-device").code == 0
    before = _registry_snapshot(cli)

    assert cli("init", "--demo-device").code == 0

    assert _registry_snapshot(cli) == before
    assert [v["versionId"] for v in before["versions"]["policyVersions"]] == ["1"]


def test_demo_device_restores_what_was_removed(cli: Cli) -> None:
    assert cli("init", "--demo-device").code == 0
    before = _registry_snapshot(cli)
    arn = _demo_arn(cli)
    cli("detach-policy", "--policy-name", "demo-device-policy", "--target", arn)
    cli("detach-thing-principal", "--thing-name", "demo-device-publisher", "--principal", arn)
    cli("delete-thing", "--thing-name", "demo-device-publisher")

    assert cli("init", "--demo-device").code == 0

    after = _registry_snapshot(cli)
    assert after["attached"] == before["attached"]
    assert after["principal_things"] == before["principal_things"]
    assert after["policy"] == before["policy"]


def test_demo_policy_follows_the_configured_region(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--demo-device").code == 0
    config = tmp_path / "eu.yaml"
    config.write_text("region: eu-west-1\n", encoding="utf-8")

    assert cli("init", "--demo-device", "--config", str(config)).code == 0
    assert cli("init", "--demo-device", "--config", str(config)).code == 0

    policy = cli("get-policy", "--policy-name", "demo-device-policy", "--config", str(config))
    data = policy.json()
    assert data["defaultVersionId"] == "2"
    assert "arn:aws:iot:eu-west-1:123456789012:client/" in data["policyDocument"]


def test_demo_policy_allows_the_printed_hints(cli: Cli) -> None:
    assert cli("init", "--demo-device").code == 0
    arn = _demo_arn(cli)

    def decide(client_id: str, *infos: str) -> list[str]:
        results = _authorize(
            cli, "--principal", arn, "--client-id", client_id, "--auth-infos", *infos
        )
        return [r["authDecision"] for r in results]

    for client_id in ("demo-device", "demo-device-publisher", "demo-device-healthcheck"):
        assert decide(client_id, f"actionType=CONNECT,resources={ARN}:client/{client_id}") == [
            "ALLOWED"
        ]
    assert decide("demo-sub", f"actionType=CONNECT,resources={ARN}:client/demo-sub") == [
        "IMPLICIT_DENY"
    ]
    assert decide(
        "demo-device",
        f"actionType=SUBSCRIBE,resources={ARN}:topicfilter/demo/#",
        f"actionType=RECEIVE,resources={ARN}:topic/demo/hello",
        f"actionType=PUBLISH,resources={ARN}:topic/$aws/things/demo-device/shadow/update",
        f"actionType=PUBLISH,resources={ARN}:topic/$aws/things/other-thing/shadow/update",
        f"actionType=PUBLISH,resources={ARN}:topic/elsewhere",
    ) == ["ALLOWED", "ALLOWED", "ALLOWED", "IMPLICIT_DENY", "IMPLICIT_DENY"]
    assert decide(
        "demo-device-publisher", f"actionType=PUBLISH,resources={ARN}:topic/demo/hello"
    ) == ["ALLOWED"]


def test_client_hints_use_two_attached_things(tmp_path: Path) -> None:
    from aws_iot_mock.config import Config  # noqa: PLC0415

    hints = cli_module._client_hints(
        Config(), 8883, tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    )

    subscribe, publish = hints
    assert subscribe.startswith("mosquitto_sub ") and " -i demo-device " in subscribe
    assert publish.startswith("mosquitto_pub ") and " -i demo-device-publisher " in publish
    # The health check connects as a third thing: it never takes over a demo client's session.
    assert cli_module._HEALTH_CLIENT_ID.decode() in cli_module.DEMO_THINGS
    assert len({*cli_module.DEMO_THINGS}) == 3


# --- config-declared resources -------------------------------------------------------------------


@pytest.fixture
def no_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``serve`` return right after its setup instead of serving forever."""

    def close(coroutine: Coroutine[None, None, None]) -> None:
        coroutine.close()

    monkeypatch.setattr(cli_module, "_run_event_loop", close)


def _rig(tmp_path: Path, certs_dir: Path, resources: str) -> Path:
    """A config file with ``resources`` and a device certificate of the local CA at dev.pem."""
    ca = CertsDirectory(certs_dir).ensure_root_ca()
    _device_of(ca, tmp_path / "dev.pem")
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "deny.json").write_text(json.dumps(DENY_SECRET), encoding="utf-8")
    path = tmp_path / "rig.yaml"
    path.write_text(resources, encoding="utf-8")
    return path


RIG = f"""\
resources:
  things:
    - thing_name: sensor-1
      thing_type_name: thermometer
      attributes: {{room: kitchen, floor: 1}}
  policies:
    - policy_name: demo-publish
      document: {json.dumps(ALLOW_ALL_DEMO)}
    - policy_name: no-secrets
      document_file: policies/deny.json
  certificates:
    - certificate_file: dev.pem
      things: [sensor-1]
      policies: [demo-publish, no-secrets]
"""


def test_serve_applies_config_resources_idempotently(
    cli: Cli, tmp_path: Path, no_event_loop: None
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)
    device_id = pki.certificate_id((tmp_path / "dev.pem").read_bytes())
    arn = f"{ARN}:cert/{device_id}"

    first = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert first.code == 0, first.err
    assert "resources:" in first.err
    assert cli.status(device_id) == "ACTIVE"
    thing = cli("describe-thing", "--thing-name", "sensor-1").json()
    assert thing["attributes"] == {"room": "kitchen", "floor": "1"}
    assert thing["thingTypeName"] == "thermometer"
    assert cli("list-thing-principals", "--thing-name", "sensor-1").json() == {"principals": [arn]}
    attached = cli("list-attached-policies", "--target", arn).json()["policies"]
    assert sorted(p["policyName"] for p in attached) == ["demo-publish", "no-secrets"]
    no_secrets = cli("get-policy", "--policy-name", "no-secrets").json()
    assert json.loads(no_secrets["policyDocument"]) == DENY_SECRET
    snapshot = (
        cli("describe-thing", "--thing-name", "sensor-1").json(),
        cli("get-policy", "--policy-name", "demo-publish").json(),
        no_secrets,
        cli.describe(device_id),
    )

    second = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert second.code == 0, second.err
    assert "resources:" not in second.err
    assert snapshot == (
        cli("describe-thing", "--thing-name", "sensor-1").json(),
        cli("get-policy", "--policy-name", "demo-publish").json(),
        cli("get-policy", "--policy-name", "no-secrets").json(),
        cli.describe(device_id),
    )


def test_config_resources_follow_edits(cli: Cli, tmp_path: Path, no_event_loop: None) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)
    assert (
        cli(
            "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
        ).code
        == 0
    )
    device_id = pki.certificate_id((tmp_path / "dev.pem").read_bytes())
    cli("update-certificate", "--certificate-id", device_id, "--new-status", "REVOKED")
    edited = RIG.replace("{room: kitchen, floor: 1}", "{room: hall}").replace(
        "topic/demo/*", "topic/demo/hello"
    )
    config.write_text(edited, encoding="utf-8")

    result = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert result.code == 0, result.err
    thing = cli("describe-thing", "--thing-name", "sensor-1").json()
    assert thing["attributes"] == {"room": "hall"}
    policy = cli("get-policy", "--policy-name", "demo-publish").json()
    assert policy["defaultVersionId"] == "2"
    assert "topic/demo/hello" in policy["policyDocument"]
    # An existing registration keeps its status.
    assert cli.status(device_id) == "REVOKED"


def test_config_policy_edits_keep_at_most_five_versions(
    cli: Cli, tmp_path: Path, no_event_loop: None
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)
    for index in range(7):
        config.write_text(RIG.replace("topic/demo/*", f"topic/demo/{index}/*"), encoding="utf-8")
        result = cli(
            "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
        )
        assert result.code == 0, result.err

    versions = cli("list-policy-versions", "--policy-name", "demo-publish").json()
    policy = cli("get-policy", "--policy-name", "demo-publish").json()

    assert sorted(int(v["versionId"]) for v in versions["policyVersions"]) == [3, 4, 5, 6, 7]
    assert policy["defaultVersionId"] == "7"
    assert "topic/demo/6/*" in policy["policyDocument"]


@pytest.mark.parametrize(
    ("edit", "key_path", "detail"),
    [
        (("dev.pem", "missing.pem"), "resources.certificates[0].certificate_file", "not found"),
        (
            ("things: [sensor-1]", "things: [sensor-2]"),
            "resources.certificates[0].things[0]",
            "ResourceNotFoundException",
        ),
        (
            ("demo-publish, no-secrets]", "demo-publish, nope]"),
            "resources.certificates[0].policies[1]",
            "ResourceNotFoundException",
        ),
        (
            ('"Effect": "Allow"', '"Effect": "Perhaps"'),
            "resources.policies[0]",
            "MalformedPolicyException",
        ),
        (
            ("- thing_name: sensor-1", "- thing_name: sensor 1"),
            "resources.things[0].thing_name",
            "invalid name 'sensor 1'",
        ),
        (("floor: 1", "floor: [1]"), "resources.things[0].attributes.floor", "expected a string"),
        (
            ("document_file: policies/deny.json", "document_file: none.json"),
            "resources.policies[1].document_file",
            "not found",
        ),
    ],
)
@pytest.mark.usefixtures("no_event_loop")
def test_broken_config_resource_is_refused(
    cli: Cli,
    tmp_path: Path,
    edit: tuple[str, str],
    key_path: str,
    detail: str,
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG.replace(*edit))

    result = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert result.code == EXIT_CONFIG, result.err
    line = result.one_line_error()
    assert line.startswith(f"aws-iot-mock: {config}: {key_path}: "), line
    assert detail in line


def test_config_certificate_of_an_unknown_ca_is_refused(
    cli: Cli, tmp_path: Path, no_event_loop: None, other_ca: pki.CertificateAuthority
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)
    _device_of(other_ca, tmp_path / "dev.pem")

    result = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert result.code == EXIT_CONFIG
    line = result.one_line_error()
    assert f"{config}: resources.certificates[0].certificate_file: " in line
    assert cli("list-certificates").json() == {"certificates": []}


def test_config_certificate_of_a_registered_ca(
    cli: Cli, tmp_path: Path, no_event_loop: None, other_ca: pki.CertificateAuthority
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)
    device_id = _device_of(other_ca, tmp_path / "dev.pem")
    cli(
        "register-ca-certificate", "--ca-certificate", "file://rig-ca.pem", "--set-as-active"
    ).json()

    result = cli(
        "serve", "--config", str(config), "--port", "0", "--https-port", "0", "--alpn-port", "0"
    )

    assert result.code == 0, result.err
    assert cli.status(device_id) == "ACTIVE"


def test_serve_with_demo_device_and_resources(
    cli: Cli, tmp_path: Path, no_event_loop: None
) -> None:
    config = _rig(tmp_path, cli.certs_dir, RIG)

    result = cli(
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        "--https-port",
        "0",
        "--alpn-port",
        "0",
        "--demo-device",
    )

    assert result.code == 0, result.err
    names = [t["thingName"] for t in cli("list-things").json()["things"]]
    assert names == [
        "demo-device",
        "demo-device-healthcheck",
        "demo-device-publisher",
        "sensor-1",
    ]


def _device_with_rsa_key(ca: pki.CertificateAuthority, path: Path, key_size: int) -> str:
    """A device certificate of ``ca`` for an RSA key of ``key_size`` bits, as a rig makes one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-device")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca.private_key, hashes.SHA256())
    )
    write_public_file(path, certificate.public_bytes(serialization.Encoding.PEM))
    return pki.certificate_id(certificate)


def test_register_certificate_refuses_an_rsa_key_under_2048_bits_as_the_csr_path_does(
    cli: Cli, tmp_path: Path
) -> None:
    ca = CertsDirectory(cli.certs_dir).ensure_root_ca()
    _device_with_rsa_key(ca, tmp_path / "weak.pem", 1024)

    result = cli("register-certificate", "--certificate-pem", "file://weak.pem", "--set-as-active")

    line = _service_error(result, "CertificateValidationException")
    assert "The key in the certificate is not valid" in line
    assert "at least 2048 bits, got 1024" in line
    assert cli("list-certificates").json() == {"certificates": []}
    # The twin: the same certificate with a 2048-bit key registers and is ACTIVE.
    device_id = _device_with_rsa_key(ca, tmp_path / "strong.pem", 2048)
    cli("register-certificate", "--certificate-pem", "file://strong.pem", "--set-as-active").json()
    assert cli.status(device_id) == "ACTIVE"
