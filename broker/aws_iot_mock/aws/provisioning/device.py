"""Fleet provisioning by claim, device side: topics, payloads (JSON and CBOR), errors, tokens. Pure.

Three MQTT APIs ([API] "Device provisioning MQTT API"): CreateKeysAndCertificate
(``$aws/certificates/create/<fmt>``), CreateCertificateFromCsr
(``$aws/certificates/create-from-csr/<fmt>``) and RegisterThing
(``$aws/provisioning-templates/<templateName>/provision/<fmt>``), each answered on
``<topic>/accepted`` or ``<topic>/rejected``, in the topic's payload format: "This API supports
response buffers in Concise Binary Object Representation (CBOR) format and JavaScript Object
Notation (JSON), depending on the payload-format of the topic." The shell generates keys and signs
certificates (``aws_iot_mock.pki``) and applies the template plan to the registry; this module
parses requests, builds replies and issues and checks certificate ownership tokens.

Sources:

- [API] https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
- [CLAIM] "Provisioning by claim",
  https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html
- [HOOK] "Pre-provisioning hooks",
  https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html
- The AWS IoT Device SDK v2's ``awsiot/iotidentity.py``: the request and response members its
  ``IotIdentityClientV2`` sends and parses, and ``ErrorResponse``
  (``statusCode``, ``errorCode``, ``errorMessage``).
- A rejection observed from AWS: ``statusCode=400 errorCode=InvalidCertificateOwnershipToken
  errorMessage=Certificate ownership token cannot be empty.``
  (https://github.com/aws/aws-iot-device-sdk-js-v2/issues/69).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import cbor2

__all__ = [
    "OWNERSHIP_TOKEN_SECONDS",
    "OwnershipClaim",
    "PayloadFormat",
    "ProvisioningError",
    "ProvisioningTopic",
    "create_certificate_from_csr_accepted",
    "create_keys_and_certificate_accepted",
    "decode_payload",
    "encode_payload",
    "issue_ownership_token",
    "parse_create_certificate_from_csr",
    "parse_register_thing",
    "parse_topic",
    "register_thing_accepted",
    "rejected_payload",
    "verify_ownership_token",
]

# "the certificateOwnershipToken returned by CreateKeysAndCertificate expires after one hour.
# RegisterThing must be called before the certificateOwnershipToken expires." [API]
OWNERSHIP_TOKEN_SECONDS: Final = 3600
_TEMPLATE_NAME: Final = re.compile(r"[0-9A-Za-z_-]{1,36}")
_TOKEN_VERSION: Final = 1


class PayloadFormat(enum.StrEnum):
    """The ``<fmt>`` level of the topics: ``json`` or ``cbor`` [API]."""

    JSON = "json"
    CBOR = "cbor"


class ProvisioningError(Exception):
    """A refused request; becomes ``{"statusCode", "errorCode", "errorMessage"}`` [API].

    AWS documents no error codes for these APIs. The ones used here: ``InvalidPayload`` (400,
    the payload does not decode), ``InvalidCertificateOwnershipToken`` (400, observed from AWS),
    ``InvalidCertificateSigningRequest`` (400), ``InvalidParameters`` (400, template evaluation
    failed), ``ResourceNotFound`` (404, no such template), ``TemplateDisabled`` (400),
    ``AccessDenied`` (403: [HOOK] "the provisioning request fails with ACCESS_DENIED"; also a
    template naming a pre-provisioning hook, which the emulator does not run),
    ``ResourceConflictsException`` (409: OverrideSettings FAIL, provision-template.html),
    ``Throttling`` (429), ``InternalFailure`` (500). All but the observed one are emulator
    choices (UNCONFIRMED).

    Attributes:
        status_code: ``statusCode``.
        error_code: ``errorCode``.
        message: ``errorMessage``.
    """

    def __init__(self, status_code: int, error_code: str, message: str) -> None:
        super().__init__(status_code, error_code, message)
        self.status_code = status_code
        self.error_code = error_code
        self.message = message

    def __str__(self) -> str:
        return f"{self.status_code} {self.error_code}: {self.message}"


@dataclass(frozen=True, slots=True)
class ProvisioningTopic:
    """A fleet-provisioning request topic.

    Attributes:
        operation: ``create_keys_and_certificate``, ``create_certificate_from_csr`` or
            ``register_thing``.
        payload_format: JSON or CBOR, from the topic.
        template_name: the template, for RegisterThing.
    """

    operation: str
    payload_format: PayloadFormat
    template_name: str | None = None

    def reply_topic(self, request_topic: str, *, accepted: bool) -> str:
        """``<request topic>/accepted`` or ``/rejected`` [API]."""
        return f"{request_topic}/{'accepted' if accepted else 'rejected'}"


@dataclass(frozen=True, slots=True)
class OwnershipClaim:
    """What a valid certificate ownership token proves.

    Attributes:
        certificate_id: the certificate the token was issued for.
        expires_at: epoch seconds.
        claim_certificate_id: the claim certificate of the connection that asked for it, if the
            shell recorded one (the pre-provisioning hook's ``claimCertificateId`` [HOOK]).
    """

    certificate_id: str
    expires_at: float
    claim_certificate_id: str | None = None


def parse_topic(topic: str) -> ProvisioningTopic | None:
    """Map a request topic to its operation; None for any other topic (reply topics included)."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["$aws", "certificates"]:
        operation = {
            "create": "create_keys_and_certificate",
            "create-from-csr": "create_certificate_from_csr",
        }.get(parts[2])
        if operation is not None and parts[3] in PayloadFormat.__members__.values():
            return ProvisioningTopic(operation, PayloadFormat(parts[3]))
        return None
    if (
        len(parts) == 5
        and parts[:2] == ["$aws", "provisioning-templates"]
        and parts[3] == "provision"
        and parts[4] in PayloadFormat.__members__.values()
        and _TEMPLATE_NAME.fullmatch(parts[2])
    ):
        return ProvisioningTopic("register_thing", PayloadFormat(parts[4]), parts[2])
    return None


def decode_payload(payload: bytes, payload_format: PayloadFormat) -> dict[str, Any]:
    """Decode a request in the topic's format.

    An empty payload is ``{}`` (CreateKeysAndCertificate: "with an empty message payload" [API];
    the SDK sends ``{}``).

    Raises:
        ProvisioningError: 400 InvalidPayload.
    """
    if not payload.strip():
        return {}
    try:
        if payload_format == PayloadFormat.CBOR:
            value = cbor2.loads(payload)
        else:
            value = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, cbor2.CBORDecodeError, EOFError):
        raise ProvisioningError(
            400, "InvalidPayload", f"The payload is not valid {payload_format.value.upper()}"
        ) from None
    if not isinstance(value, dict):
        raise ProvisioningError(400, "InvalidPayload", "The payload must be an object")
    return value


def encode_payload(document: Mapping[str, Any], payload_format: PayloadFormat) -> bytes:
    """Encode a reply in the topic's format (CBOR with ``cbor2``, JSON compact UTF-8)."""
    if payload_format == PayloadFormat.CBOR:
        return cbor2.dumps(dict(document))
    return json.dumps(document, separators=(",", ":")).encode()


def parse_create_certificate_from_csr(request: Mapping[str, Any]) -> str:
    """The CSR of a CreateCertificateFromCsr request: ``{"certificateSigningRequest": PEM}``.

    The shell signs it with ``aws_iot_mock.pki.sign_csr``, which checks the PEM and its
    signature; a ``CertificateError`` from there becomes 400 InvalidCertificateSigningRequest.

    Raises:
        ProvisioningError: the member is missing or not a string.
    """
    csr = request.get("certificateSigningRequest")
    if not isinstance(csr, str) or not csr.strip():
        raise ProvisioningError(
            400, "InvalidCertificateSigningRequest", "certificateSigningRequest is required"
        )
    return csr


def parse_register_thing(request: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """``(certificateOwnershipToken, parameters)`` of a RegisterThing request [API].

    Raises:
        ProvisioningError: no token ("Certificate ownership token cannot be empty.", as AWS
            answers), or parameters that are not a map of strings.
    """
    token = request.get("certificateOwnershipToken")
    if not isinstance(token, str) or not token:
        raise ProvisioningError(
            400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty."
        )
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
    ):
        raise ProvisioningError(
            400, "InvalidParameters", "parameters must map parameter names to string values"
        )
    return token, dict(parameters)


def create_keys_and_certificate_accepted(
    *, certificate_id: str, certificate_pem: str, private_key: str, ownership_token: str
) -> dict[str, Any]:
    """``{certificateId, certificatePem, privateKey, certificateOwnershipToken}`` [API]."""
    return {
        "certificateId": certificate_id,
        "certificatePem": certificate_pem,
        "privateKey": private_key,
        "certificateOwnershipToken": ownership_token,
    }


def create_certificate_from_csr_accepted(
    *, certificate_id: str, certificate_pem: str, ownership_token: str
) -> dict[str, Any]:
    """``{certificateOwnershipToken, certificateId, certificatePem}`` [API]."""
    return {
        "certificateOwnershipToken": ownership_token,
        "certificateId": certificate_id,
        "certificatePem": certificate_pem,
    }


def register_thing_accepted(
    *, thing_name: str | None, device_configuration: Mapping[str, Any]
) -> dict[str, Any]:
    """``{"deviceConfiguration", "thingName"}`` [API].

    A template without a thing resource leaves ``thingName`` out (what AWS sends then is
    UNCONFIRMED; aws-iot-device-sdk-embedded-C#1821 reports a missing name).
    """
    reply: dict[str, Any] = {"deviceConfiguration": dict(device_configuration)}
    if thing_name is not None:
        reply["thingName"] = thing_name
    return reply


def rejected_payload(error: ProvisioningError) -> dict[str, Any]:
    """``{"statusCode", "errorCode", "errorMessage"}`` [API; SDK ErrorResponse]."""
    return {
        "statusCode": error.status_code,
        "errorCode": error.error_code,
        "errorMessage": error.message,
    }


def issue_ownership_token(
    certificate_id: str,
    *,
    key: bytes,
    now: float,
    claim_certificate_id: str | None = None,
) -> str:
    """An opaque token proving ownership of ``certificate_id`` for one hour [API].

    Format (the emulator's own; AWS's is opaque): URL-safe base64 of a CBOR map
    ``{v, cid, exp, claim}`` followed by an HMAC-SHA256 over it with ``key``. Nothing secret is
    inside; the MAC makes it unforgeable without the key.

    Args:
        certificate_id: the new certificate.
        key: the shell's secret (32 random bytes, kept 0600 in the state directory).
        now: epoch seconds.
        claim_certificate_id: the claim certificate of the requesting connection, if known.
    """
    body = cbor2.dumps(
        {
            "v": _TOKEN_VERSION,
            "cid": certificate_id,
            "exp": int(now) + OWNERSHIP_TOKEN_SECONDS,
            "claim": claim_certificate_id,
        }
    )
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def verify_ownership_token(token: str, *, key: bytes, now: float) -> OwnershipClaim:
    """Check a token from `issue_ownership_token`: its MAC, then its expiry.

    Whether AWS binds the token to the claim certificate or connection that asked for it is
    UNCONFIRMED; it is not checked here (the claim ID is returned for the shell's use).

    Raises:
        ProvisioningError: 400 InvalidCertificateOwnershipToken (malformed, forged or expired).
    """
    if not token:
        raise ProvisioningError(
            400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty."
        )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    body, mac = raw[:-32], raw[-32:]
    if len(raw) <= 32 or not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise ProvisioningError(
            400, "InvalidCertificateOwnershipToken", "Certificate ownership token is invalid."
        )
    claims = cbor2.loads(body)
    if claims.get("v") != _TOKEN_VERSION:
        raise ProvisioningError(
            400, "InvalidCertificateOwnershipToken", "Certificate ownership token is invalid."
        )
    if now >= claims["exp"]:
        raise ProvisioningError(
            400, "InvalidCertificateOwnershipToken", "Certificate ownership token has expired."
        )
    return OwnershipClaim(claims["cid"], float(claims["exp"]), claims.get("claim"))
