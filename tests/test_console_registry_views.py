"""The registry page's forms as control-plane requests, and the device bundle. Pure, in memory."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from aws_iot_mock import pki
from aws_iot_mock.console.registry_views import (
    authorization_test_request,
    bundle_names,
    create_certificate_request,
    device_bundle,
    jsonable,
    update_certificate_request,
)
from aws_iot_mock.console.views import ConsoleRequestError

CERTIFICATE_ID = "ab" * 32
TOPIC = "arn:aws:iot:us-east-1:123456789012:topic/a/b"


@pytest.mark.parametrize("status", ["ACTIVE", "INACTIVE", "REVOKED"])
def test_a_status_form_is_update_certificate_s_members(status: str) -> None:
    assert update_certificate_request({"certificateId": CERTIFICATE_ID, "newStatus": status}) == {
        "certificateId": CERTIFICATE_ID,
        "newStatus": status,
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"newStatus": "ACTIVE"}, "certificateId is required"),
        ({"certificateId": CERTIFICATE_ID, "newStatus": "PENDING_TRANSFER"}, "newStatus is one"),
        ({"certificateId": CERTIFICATE_ID}, "newStatus is one"),
        ({"certificateId": 7, "newStatus": "ACTIVE"}, "certificateId must be text"),
    ],
)
def test_a_malformed_status_form_says_what_is_wrong(form: dict[str, Any], message: str) -> None:
    with pytest.raises(ConsoleRequestError, match=message):
        update_certificate_request(form)


@pytest.mark.parametrize(
    ("form", "members"),
    [
        (
            {"actionType": "PUBLISH", "resources": f"{TOPIC}\n\n  {TOPIC}/c \n"},
            {"authInfos": [{"actionType": "PUBLISH", "resources": [TOPIC, f"{TOPIC}/c"]}]},
        ),
        (
            {
                "actionType": "CONNECT",
                "resources": ["arn:aws:iot:us-east-1:123456789012:client/c1"],
                "principal": CERTIFICATE_ID,
                "clientId": "c1",
                "policyNamesToAdd": ["extra"],
            },
            {
                "authInfos": [
                    {
                        "actionType": "CONNECT",
                        "resources": ["arn:aws:iot:us-east-1:123456789012:client/c1"],
                    }
                ],
                "principal": CERTIFICATE_ID,
                "clientId": "c1",
                "policyNamesToAdd": ["extra"],
            },
        ),
        # Empty optional fields are left out, as boto3 leaves out members not given.
        (
            {"actionType": "RECEIVE", "resources": [TOPIC], "principal": "", "clientId": ""},
            {"authInfos": [{"actionType": "RECEIVE", "resources": [TOPIC]}]},
        ),
    ],
)
def test_the_test_authorization_form_is_test_authorization_s_members(
    form: dict[str, Any], members: dict[str, Any]
) -> None:
    assert authorization_test_request(form) == members


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"actionType": "DELETE", "resources": [TOPIC]}, "actionType is one of"),
        ({"actionType": "PUBLISH", "resources": "  \n"}, "resources: 1 to 100 ARNs"),
        ({"actionType": "PUBLISH", "resources": [TOPIC] * 101}, "resources: 1 to 100 ARNs"),
        ({"actionType": "PUBLISH", "resources": [7]}, "resources: 1 to 100 ARNs"),
        (
            {"actionType": "PUBLISH", "resources": [TOPIC], "policyNamesToAdd": "p"},
            "policyNamesToAdd is a list",
        ),
    ],
)
def test_a_malformed_test_authorization_form_says_what_is_wrong(
    form: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConsoleRequestError, match=message):
        authorization_test_request(form)


def test_the_create_form_names_what_to_attach() -> None:
    form = create_certificate_request(
        {"thingName": " lamp ", "policyName": "", "setAsActive": False}
    )
    assert (form.set_as_active, form.thing_name, form.policy_name) == (False, "lamp", None)
    assert create_certificate_request({}).set_as_active is True
    with pytest.raises(ConsoleRequestError, match="setAsActive must be true or false"):
        create_certificate_request({"setAsActive": "yes"})


def test_answers_become_json_values() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"a": [moment, {"b": (1, "x")}], "c": None}) == {
        "a": ["2026-01-02T03:04:05+00:00", {"b": [1, "x"]}],
        "c": None,
    }


def test_a_device_bundle_holds_the_certificate_both_keys_and_the_root_ca() -> None:
    ca = pki.create_root_ca()
    issued = pki.issue_device_certificate(ca)
    assert issued.private_key_pem is not None
    created = {
        "certificateId": issued.certificate_id,
        "certificateArn": f"arn:aws:iot:us-east-1:123456789012:cert/{issued.certificate_id}",
        "certificatePem": issued.certificate_pem.decode(),
        "keyPair": {
            "PublicKey": issued.public_key_pem.decode(),
            "PrivateKey": issued.private_key_pem.decode(),
        },
    }
    bundle = device_bundle(created, ca.certificate_pem, thing_name="lamp")
    names = bundle_names(issued.certificate_id)
    assert bundle.file_name == names["zip"] == f"{issued.certificate_id[:10]}-device-bundle.zip"
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        files = {name: archive.read(name) for name in archive.namelist()}
    assert modes == {
        f"{issued.certificate_id[:10]}-certificate.pem.crt": 0o100644,
        f"{issued.certificate_id[:10]}-private.pem.key": 0o100600,
        f"{issued.certificate_id[:10]}-public.pem.key": 0o100644,
        "AmazonRootCA1.pem": 0o100644,
        "README.txt": 0o100644,
    }
    assert files[names["certificate"]] == issued.certificate_pem
    assert files[names["privateKey"]] == issued.private_key_pem
    assert files[names["rootCa"]] == ca.certificate_pem
    assert b"attached to thing: lamp" in files["README.txt"]
    # The same answer packs to the same bytes (fixed entry dates).
    assert device_bundle(created, ca.certificate_pem, thing_name="lamp").data == bundle.data
