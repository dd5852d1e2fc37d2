"""The console's registry page: its forms as control-plane requests, its answers as JSON. Pure.

The registry page (things, certificates, policies) is a client of ``IotControlPlane``: every
form becomes the members of one ``iot`` operation, by the names of botocore's model, exactly
what boto3 would send (``UpdateCertificate``'s ``certificateId`` and ``newStatus``,
``TestAuthorization``'s ``authInfos``...). This module builds those members from the page's
JSON and turns the answers (which carry ``datetime`` values) into JSON documents; it also packs
the device bundle a new certificate is downloaded in. Nothing here reads a clock or a socket.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_iot_mock.api.iot_control import AUTH_ACTIONS
from aws_iot_mock.console.views import ConsoleRequestError

__all__ = [
    "CERTIFICATE_STATUSES",
    "CreateCertificate",
    "DeviceBundle",
    "authorization_test_request",
    "bundle_names",
    "create_certificate_request",
    "device_bundle",
    "jsonable",
    "update_certificate_request",
]

# The statuses UpdateCertificate accepts from a caller; PENDING_TRANSFER and
# PENDING_ACTIVATION are AWS's own (https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html).
CERTIFICATE_STATUSES = ("ACTIVE", "INACTIVE", "REVOKED")
# TestAuthorization takes 1-10 authInfos, each naming 1-100 resources (API_AuthInfo).
_RESOURCES_MAX = 100
# A certificate ID is 64 hex digits; a thing or policy name at most 128 characters.
_NAME_MAX = 128
_ARN_MAX = 2048


def jsonable(value: object) -> Any:
    """An operation's answer as JSON values: ``datetime`` becomes ISO 8601 text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def _text(body: Mapping[str, Any], key: str, *, limit: int = _NAME_MAX) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ConsoleRequestError(f"{key} must be text of at most {limit} characters")
    return value.strip()


def _required(body: Mapping[str, Any], key: str, *, limit: int = _NAME_MAX) -> str:
    value = _text(body, key, limit=limit)
    if not value:
        raise ConsoleRequestError(f"{key} is required")
    return value


def update_certificate_request(body: Mapping[str, Any]) -> dict[str, str]:
    """The status form as ``UpdateCertificate`` members (``certificateId``, ``newStatus``).

    Raises:
        ConsoleRequestError: no certificate ID, or a status outside ACTIVE/INACTIVE/REVOKED.
    """
    certificate_id = _required(body, "certificateId")
    status = body.get("newStatus")
    if status not in CERTIFICATE_STATUSES:
        raise ConsoleRequestError(f"newStatus is one of {', '.join(CERTIFICATE_STATUSES)}")
    return {"certificateId": certificate_id, "newStatus": str(status)}


@dataclass(frozen=True)
class CreateCertificate:
    """The create form: what to attach to the new certificate.

    Attributes:
        set_as_active: ``CreateKeysAndCertificate``'s ``setAsActive``.
        thing_name: a thing to attach it to (``AttachThingPrincipal``), or None.
        policy_name: a policy to attach to it (``AttachPolicy``), or None.
    """

    set_as_active: bool
    thing_name: str | None
    policy_name: str | None


def create_certificate_request(body: Mapping[str, Any]) -> CreateCertificate:
    """The create-certificate form.

    Raises:
        ConsoleRequestError: ``setAsActive`` is not a boolean, or a name is not text.
    """
    active = body.get("setAsActive", True)
    if not isinstance(active, bool):
        raise ConsoleRequestError("setAsActive must be true or false")
    return CreateCertificate(active, _text(body, "thingName"), _text(body, "policyName"))


def authorization_test_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The test-authorization form as ``TestAuthorization`` members.

    Form members: ``principal`` (certificate ID or ARN, optional), ``clientId`` (optional),
    ``actionType`` (CONNECT, PUBLISH, SUBSCRIBE, RECEIVE), ``resources`` (ARNs, a list or
    one a line), ``policyNamesToAdd`` (optional list).

    Raises:
        ConsoleRequestError: the form is not such a document.
    """
    action = body.get("actionType")
    if action not in AUTH_ACTIONS:
        raise ConsoleRequestError(f"actionType is one of {', '.join(AUTH_ACTIONS)}")
    resources = body.get("resources")
    if isinstance(resources, str):
        resources = [line.strip() for line in resources.splitlines() if line.strip()]
    if (
        not isinstance(resources, list)
        or not 1 <= len(resources) <= _RESOURCES_MAX
        or not all(isinstance(r, str) and 0 < len(r) <= _ARN_MAX for r in resources)
    ):
        raise ConsoleRequestError(f"resources: 1 to {_RESOURCES_MAX} ARNs")
    request: dict[str, Any] = {"authInfos": [{"actionType": action, "resources": resources}]}
    principal = _text(body, "principal", limit=_ARN_MAX)
    if principal:
        request["principal"] = principal
    client_id = _text(body, "clientId")
    if client_id:
        request["clientId"] = client_id
    added = body.get("policyNamesToAdd") or []
    if not isinstance(added, list) or not all(isinstance(name, str) for name in added):
        raise ConsoleRequestError("policyNamesToAdd is a list of policy names")
    if added:
        request["policyNamesToAdd"] = added
    return request


def bundle_names(certificate_id: str) -> dict[str, str]:
    """The file names in a device bundle, as the AWS console names its downloads.

    The AWS console saves ``<first 10 hex digits>-certificate.pem.crt``, ``-private.pem.key``
    and ``-public.pem.key``, and links ``AmazonRootCA1.pem``
    (https://docs.aws.amazon.com/iot/latest/developerguide/create-device-cert.html).
    """
    prefix = certificate_id[:10]
    return {
        "certificate": f"{prefix}-certificate.pem.crt",
        "privateKey": f"{prefix}-private.pem.key",
        "publicKey": f"{prefix}-public.pem.key",
        "rootCa": "AmazonRootCA1.pem",
        "zip": f"{prefix}-device-bundle.zip",
    }


@dataclass(frozen=True)
class DeviceBundle:
    """A new certificate's files in one zip.

    Attributes:
        file_name: the zip's name (``<id prefix>-device-bundle.zip``).
        data: the zip file.
    """

    file_name: str
    data: bytes


# Zip entries keep Unix permissions in the high 16 bits of external_attr (APPNOTE 4.4.15):
# the private key unpacks as 0600, the public files as 0644.
_PRIVATE = 0o100600 << 16
_PUBLIC = 0o100644 << 16


def device_bundle(
    created: Mapping[str, Any], root_ca_pem: bytes, *, thing_name: str | None = None
) -> DeviceBundle:
    """Pack ``CreateKeysAndCertificate``'s answer and the root CA into one zip.

    The private key exists only in this answer, as on AWS: the registry keeps the certificate,
    never the key, so this zip is the one chance to save it.

    Args:
        created: the operation's response members (``certificateId``, ``certificatePem``,
            ``keyPair``).
        root_ca_pem: the root CA the broker's server certificates chain to.
        thing_name: the thing the certificate was attached to, named in the README entry.
    """
    certificate_id = str(created["certificateId"])
    names = bundle_names(certificate_id)
    key_pair = created["keyPair"]
    files = (
        (names["certificate"], str(created["certificatePem"]).encode(), _PUBLIC),
        (names["privateKey"], str(key_pair["PrivateKey"]).encode(), _PRIVATE),
        (names["publicKey"], str(key_pair["PublicKey"]).encode(), _PUBLIC),
        (names["rootCa"], root_ca_pem, _PUBLIC),
    )
    readme = (
        f"certificate ID: {certificate_id}\n"
        f"certificate ARN: {created.get('certificateArn', '')}\n"
        + (f"attached to thing: {thing_name}\n" if thing_name else "")
        + "The private key is in this zip only: aws-iot-mock keeps the certificate, not the key.\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in (*files, ("README.txt", readme.encode(), _PUBLIC)):
            # A fixed date: the same answer packs to the same bytes (zip dates are local time).
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = mode
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return DeviceBundle(names["zip"], buffer.getvalue())
