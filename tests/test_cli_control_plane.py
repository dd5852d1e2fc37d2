"""The CLI's thing-group, domain-configuration, tag and delete-certificate verbs.

They call the same service layer as the api door (``aws_iot_mock.api.iot_control``), so their
output is the JSON AWS returns (timestamps in ISO-8601, as the CLI prints them elsewhere) and
their errors the AWS exception with its message, exit code 254.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import Cli

EXIT_SERVICE = 254


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    monkeypatch.chdir(tmp_path)
    yield Cli(capsys, tmp_path)


def test_thing_group_verbs(cli: Cli) -> None:
    created = cli(
        "create-thing-group",
        "--thing-group-name",
        "site",
        "--thing-group-properties",
        '{"thingGroupDescription": "Oslo", "attributePayload": {"attributes": {"k": "v"}}}',
        "--tags",
        "Key=env,Value=test",
    ).json()
    assert created["thingGroupArn"].endswith(":thinggroup/site")
    cli("create-thing-group", "--thing-group-name", "floor", "--parent-group-name", "site").json()
    described = cli("describe-thing-group", "--thing-group-name", "floor").json()
    assert described["thingGroupMetadata"]["parentGroupName"] == "site"
    assert described["thingGroupMetadata"]["creationDate"].endswith("+00:00")
    cli("create-thing", "--thing-name", "lamp").json()
    assert (
        cli("add-thing-to-thing-group", "--thing-group-name", "floor", "--thing-name", "lamp").out
        == ""
    )
    things = cli("list-things-in-thing-group", "--thing-group-name", "site", "--recursive").json()
    assert things == {"things": ["lamp"]}
    groups = cli("list-thing-groups-for-thing", "--thing-name", "lamp").json()["thingGroups"]
    assert [g["groupName"] for g in groups] == ["floor"]
    children = cli("list-thing-groups", "--parent-group", "site").json()["thingGroups"]
    assert [g["groupName"] for g in children] == ["floor"]
    updated = cli(
        "update-thing-group",
        "--thing-group-name",
        "site",
        "--thing-group-properties",
        "attributePayload={attributes={k=w},merge=true}",
    ).json()
    assert updated == {"version": 2}
    tags = cli("list-tags-for-resource", "--resource-arn", created["thingGroupArn"]).json()
    assert tags == {"tags": [{"Key": "env", "Value": "test"}]}
    refused = cli("delete-thing-group", "--thing-group-name", "site")
    assert refused.code == EXIT_SERVICE
    assert refused.one_line_error().startswith(
        "An error occurred (InvalidRequestException) when calling the "
    )
    cli("remove-thing-from-thing-group", "--thing-group-name", "floor", "--thing-name", "lamp")
    assert cli("delete-thing-group", "--thing-group-name", "floor").code == 0
    assert cli("delete-thing-group", "--thing-group-name", "site").code == 0


def test_domain_configuration_verbs(cli: Cli) -> None:
    created = cli(
        "create-domain-configuration",
        "--domain-configuration-name",
        "factory",
        "--domain-name",
        "factory.example.com",
        "--tls-config",
        "securityPolicy=IoTSecurityPolicy_TLS13_1_3_2022_10",
    ).json()
    assert created["domainConfigurationName"] == "factory"
    described = cli(
        "describe-domain-configuration", "--domain-configuration-name", "factory"
    ).json()
    assert described["domainConfigurationStatus"] == "ENABLED"
    assert described["tlsConfig"] == {"securityPolicy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}
    listed = cli("list-domain-configurations").json()["domainConfigurations"]
    assert [d["domainConfigurationName"] for d in listed] == ["iot:Data-ATS", "factory"]
    refused = cli("delete-domain-configuration", "--domain-configuration-name", "factory")
    assert refused.code == EXIT_SERVICE
    assert "ENABLED" in refused.one_line_error()
    cli(
        "update-domain-configuration",
        "--domain-configuration-name",
        "factory",
        "--domain-configuration-status",
        "DISABLED",
    ).json()
    assert cli("delete-domain-configuration", "--domain-configuration-name", "factory").code == 0
    missing = cli("describe-domain-configuration", "--domain-configuration-name", "factory")
    assert missing.code == EXIT_SERVICE
    assert missing.one_line_error().startswith(
        "An error occurred (ResourceNotFoundException) when calling the "
    )


def test_tag_verbs_and_delete_certificate(cli: Cli) -> None:
    policy = cli(
        "create-policy",
        "--policy-name",
        "p",
        "--policy-document",
        '{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}',
    ).json()
    arn = policy["policyArn"]
    assert (
        cli("tag-resource", "--resource-arn", arn, "--tags", "Key=a,Value=1", "Key=b,Value=2").code
        == 0
    )
    assert cli("untag-resource", "--resource-arn", arn, "--tag-keys", "a").code == 0
    assert cli("list-tags-for-resource", "--resource-arn", arn).json() == {
        "tags": [{"Key": "b", "Value": "2"}]
    }
    certificate = cli.create("--set-as-active")
    active = cli("delete-certificate", "--certificate-id", certificate["certificateId"])
    assert active.code == EXIT_SERVICE
    assert active.one_line_error().startswith(
        "An error occurred (CertificateStateException) when calling the "
    )
    cli(
        "update-certificate",
        "--certificate-id",
        certificate["certificateId"],
        "--new-status",
        "REVOKED",
    )
    assert cli("delete-certificate", "--certificate-id", certificate["certificateId"]).code == 0
