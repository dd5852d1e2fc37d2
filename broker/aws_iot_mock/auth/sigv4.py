"""AWS Signature Version 4 verification for the HTTPS, WebSocket and control-plane doors.

Pure: no sockets, no event loop, no logging; the clock (``now``) and the credential lookup are
arguments. A door builds a ``SignedRequest`` from what came off the wire and calls ``verify``,
which returns a ``Verified`` identity or a ``Refused`` value carrying AWS's error and a log reason.

How a signature is checked: this module parses the ``Authorization`` header (or the presigned
``X-Amz-*`` query parameters), checks the credential scope, the clock and the access key, and
then *re-signs* the request with a maintained signer at the request's own timestamp, restricted
to the headers the client listed in ``SignedHeaders``, and compares the two signatures in
constant time. The canonicalisation (double URI-encoding of the path, strict re-encoding and
sorting of the query, header folding, the signing-key derivation) is the signer's, never ours
("Create a signed AWS API request",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).

The signer is ``awscrt.auth.aws_sign_request`` (the AWS Common Runtime, the library the AWS IoT
Device SDK signs its WebSocket handshakes with, and botocore's own signer when it is installed).
It is imported on the first verification, never at module import, so a broker that receives no
signed request never loads it. Its limits, which this module reports rather than hides:

* it never signs ``user-agent``, ``x-amzn-trace-id``, ``expect``, ``transfer-encoding``,
  ``upgrade`` and the ``sec-websocket-*`` headers (awscrt 0.36). A client that listed one of them
  in ``SignedHeaders`` (the AWS SDK for Java v1 signs ``user-agent``; current SDKs sign none) cannot
  be verified; the refusal says so (``SIGV4_UNSUPPORTED_SIGNED_HEADER``). This is detected by
  comparing the signer's ``SignedHeaders`` with the client's, not from a list kept here;
* it always signs ``x-amz-date``, so a request signed with only ``Date`` is refused the same way.

AWS IoT specifics (the AWS IoT Developer Guide, "IAM users, groups, and roles",
https://docs.aws.amazon.com/iot/latest/developerguide/iam-users-groups-roles.html): in a presigned
WebSocket URL the ``X-Amz-Security-Token`` parameter is "append[ed] ... after the signature has been
computed", so it is not in the canonical query string (awscrt's ``omit_session_token=True``, which
the Device SDK sets). A presigned URL whose signature *does* cover the token (botocore's
``SigV4QueryAuth``) is what real AWS IoT rejects; ``QueryTokenSigning`` chooses.

Error codes and messages are the ones AWS's JSON and REST-JSON services return ("Common Errors",
https://docs.aws.amazon.com/iot/latest/apireference/CommonErrors.html, and the wording AWS services
are seen to send). AWS IoT's *data* endpoint turns every authentication failure into
``ForbiddenException`` / 403 / ``Forbidden`` (boto3 issue 1447, aws-sdk-js-v3 issue 5562), which
``Refused.iot_data_error`` gives. The exact text of the scope, date and presign messages on AWS IoT
itself is UNCONFIRMED.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from aws_iot_mock.auth.credentials import CredentialLookup, IamIdentity, SigningCredential
from aws_iot_mock.auth.sigv4_reasons import SigV4Reason

__all__ = [
    "ALGORITHM",
    "DEFAULT_MAX_SKEW",
    "EMPTY_PAYLOAD_SHA256",
    "FORBIDDEN",
    "IOT_CONTROL_PLANE_SERVICES",
    "IOT_DATA_SERVICES",
    "MAX_PRESIGN_EXPIRES",
    "UNSIGNED_PAYLOAD",
    "AwsError",
    "QueryTokenSigning",
    "Refused",
    "SigV4Reason",
    "SignatureForm",
    "SignedRequest",
    "Verified",
    "verify",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
EMPTY_PAYLOAD_SHA256: Final = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
# The 5-minute window AWS services quote in "Signature expired: ... (<now> - 5 min.)".
DEFAULT_MAX_SKEW: Final = timedelta(minutes=5)
# SigV4 presigned URLs: X-Amz-Expires is 1..604800 seconds ("Authenticating Requests: Using
# Query Parameters", https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
MAX_PRESIGN_EXPIRES: Final = timedelta(seconds=604800)

# Scope service names. The data endpoint is signed as "iotdata" by boto3 (the iot-data model's
# signingName) and as "iotdevicegateway" by the Device SDK's WebSocket handshake and the Device
# Shadow REST docs ("you must use iotdevicegateway as the service name",
# https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-rest-api.html); AWS IoT
# accepts both. The control plane is "iot".
IOT_DATA_SERVICES: Final = frozenset({"iotdata", "iotdevicegateway"})
IOT_CONTROL_PLANE_SERVICES: Final = frozenset({"iot"})

# Query parameters that carry the signature; matched case-insensitively, as awscrt does.
_Q_ALGORITHM: Final = "x-amz-algorithm"
_Q_CREDENTIAL: Final = "x-amz-credential"
_Q_DATE: Final = "x-amz-date"
_Q_SIGNED_HEADERS: Final = "x-amz-signedheaders"
_Q_SIGNATURE: Final = "x-amz-signature"
_Q_EXPIRES: Final = "x-amz-expires"
_Q_TOKEN: Final = "x-amz-security-token"
_Q_REGION_SET: Final = "x-amz-region-set"
_AUTH_PARAMS: Final = frozenset(
    {
        _Q_ALGORITHM,
        _Q_CREDENTIAL,
        _Q_DATE,
        _Q_SIGNED_HEADERS,
        _Q_SIGNATURE,
        _Q_EXPIRES,
        _Q_TOKEN,
        _Q_REGION_SET,
    }
)
_REQUIRED_PARAMS: Final = (_Q_ALGORITHM, _Q_CREDENTIAL, _Q_SIGNATURE, _Q_DATE, _Q_SIGNED_HEADERS)

_H_AUTHORIZATION: Final = "authorization"
_H_DATE: Final = "x-amz-date"
_H_TOKEN: Final = "x-amz-security-token"
_H_CONTENT_SHA256: Final = "x-amz-content-sha256"
# Headers the signer adds itself and refuses to find on the request it signs.
_SIGNER_HEADERS: Final = frozenset(
    {
        _H_AUTHORIZATION,
        _H_DATE,
        _H_TOKEN,
        _H_CONTENT_SHA256,
        "x-amz-region-set",
        "x-amz-s3session-token",
    }
)

_AMZ_DATE: Final = re.compile(r"\d{8}T\d{6}Z")
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_HEX_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_DIGITS: Final = re.compile(r"[0-9]{1,10}")
_TERMINATOR: Final = "aws4_request"
# Bounds on what is parsed, so a hostile request costs little.
_MAX_SIGNED_HEADERS: Final = 64
_MAX_AUTHORIZATION_CHARS: Final = 8192
_SIGNING_TIMEOUT_SECONDS: Final = 5.0


class SignatureForm(enum.Enum):
    """Where the signature travelled."""

    HEADER = "header"  # Authorization: AWS4-HMAC-SHA256 ... (boto3, the aws CLI)
    QUERY = "query"  # presigned X-Amz-* query parameters (MQTT over WebSocket)


class QueryTokenSigning(enum.Enum):
    """Whether a presigned URL's ``X-Amz-Security-Token`` must be covered by its signature."""

    # AWS IoT's rule: the token is appended after signing, outside the canonical query
    # (awscrt omit_session_token=True; the AWS IoT Device SDKs).
    APPENDED = "appended"
    # General SigV4: the token is a signed parameter (botocore SigV4QueryAuth).
    SIGNED = "signed"
    # Accept either (more lenient than AWS IoT is documented to be).
    EITHER = "either"


@dataclass(frozen=True, slots=True)
class AwsError:
    """An error as an AWS service returns it.

    Attributes:
        code: the error code (``x-amzn-ErrorType`` / ``__type``), e.g.
            ``InvalidSignatureException``.
        status: the HTTP status.
        message: the ``message`` AWS writes.
    """

    code: str
    status: int
    message: str


# What AWS IoT's data endpoint answers to every authentication or authorization failure.
FORBIDDEN: Final = AwsError("ForbiddenException", 403, "Forbidden")

_SIGNATURE_MISMATCH_MESSAGE: Final = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_INVALID_TOKEN: Final = AwsError(
    "UnrecognizedClientException", 403, "The security token included in the request is invalid."
)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """One HTTP request as it came off the wire.

    Attributes:
        method: the request method, e.g. ``"POST"``.
        path: the path exactly as on the wire, still percent-encoded, without the query
            (``/topics/a%2Fb%20c``). Decode wire bytes as UTF-8; clients send ASCII.
        query: the raw query string without the ``?`` (``""`` for none).
        headers: the header fields as (name, value) pairs in wire order, repeats included;
            values decoded as UTF-8 (the signer hashes their UTF-8 bytes).
        payload: the body (ignored when ``payload_sha256`` is given).
        payload_sha256: the lower-hex SHA-256 of the body, for a door that hashed it while
            streaming; None to hash ``payload``.
    """

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    payload: bytes = b""
    payload_sha256: str | None = None

    @classmethod
    def from_target(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        payload: bytes = b"",
        *,
        payload_sha256: str | None = None,
    ) -> SignedRequest:
        """Build a request from the HTTP request-target (``/path?query``)."""
        path, _, query = target.partition("?")
        return cls(method, path, query, tuple(headers), payload, payload_sha256)

    def header_values(self, name: str) -> list[str]:
        """Every value of the header ``name`` (case-insensitive), in wire order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def body_sha256(self) -> str:
        """The lower-hex SHA-256 of the body."""
        if self.payload_sha256 is not None:
            return self.payload_sha256
        return hashlib.sha256(self.payload).hexdigest()


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose signature checked out.

    Attributes:
        access_key_id: the access key that signed it.
        identity: the IAM user the key belongs to.
        service: the scope's service name (``iotdata``, ``iotdevicegateway``, ``iot``).
        region: the scope's region.
        form: header or presigned query.
        signed_at: ``X-Amz-Date``, timezone-aware UTC.
        temporary: True for session (``ASIA``) credentials.
        credential_expiration: when temporary credentials expire; None for long-term keys.
    """

    access_key_id: str
    identity: IamIdentity
    service: str
    region: str
    form: SignatureForm
    signed_at: datetime
    temporary: bool = False
    credential_expiration: datetime | None = None

    @property
    def principal_id(self) -> str:
        """The principal ID for logs and lifecycle events (the user ID, ``AIDA...``)."""
        return self.identity.principal_id


@dataclass(frozen=True, slots=True)
class Refused:
    """A request refused before any authorization: a value, never an exception.

    Attributes:
        reason: the log reason (``reason.name``, e.g. ``SIGV4_SIGNATURE_MISMATCH``).
        error: what a general AWS JSON service answers (code, HTTP status, message).
        details: one human sentence for the log; never contains a secret.
        access_key_id: the access key the request named, when it got that far.
    """

    reason: SigV4Reason
    error: AwsError
    details: str
    access_key_id: str | None = None

    @property
    def code(self) -> str:
        """``error.code``."""
        return self.error.code

    @property
    def status(self) -> int:
        """``error.status``."""
        return self.error.status

    @property
    def message(self) -> str:
        """``error.message``."""
        return self.error.message

    @property
    def iot_data_error(self) -> AwsError:
        """What AWS IoT's data endpoint (HTTPS, WebSocket handshake) answers: 403 Forbidden."""
        return FORBIDDEN


@dataclass(frozen=True, slots=True)
class _Signature:
    """The parts of a signature, whichever form carried them."""

    form: SignatureForm
    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    expires: str | None
    session_token: str | None
    # The query without the signature parameters, raw pairs as sent (query form only).
    unsigned_query: str


def verify(
    request: SignedRequest,
    *,
    credentials: CredentialLookup,
    now: datetime,
    services: frozenset[str],
    region: str | None,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    query_token: QueryTokenSigning = QueryTokenSigning.APPENDED,
) -> Verified | Refused:
    """Check a request's SigV4 signature, header or presigned-query form.

    Checks, in order: a signature is present and well-formed; ``X-Amz-Date``; the credential
    scope (date, ``region``, one of ``services``, ``aws4_request``); the clock; the access key
    and session token; ``X-Amz-Content-SHA256`` against the body; the signature itself.

    Time rules: the header form, and a presigned URL without ``X-Amz-Expires`` (as the AWS IoT
    Device SDK sends), must be within ``max_skew`` of ``now``. A presigned URL with
    ``X-Amz-Expires`` (1..604800) is valid from ``X-Amz-Date - max_skew`` until
    ``X-Amz-Date + X-Amz-Expires``. Temporary credentials must not have expired, whatever
    ``X-Amz-Expires`` says.

    Args:
        request: the request as received.
        credentials: finds an access key's credential.
        now: the broker's clock, timezone-aware.
        services: the scope service names this door accepts (see ``IOT_DATA_SERVICES``).
        region: the region the scope must name; None accepts any.
        max_skew: the allowed clock difference.
        query_token: whether a presigned URL's session token must be outside the signature
            (AWS IoT's rule, the default), inside it, or either.

    Returns:
        ``Verified`` or ``Refused``. Never raises for any request content.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    parsed = _parse(request)
    if isinstance(parsed, Refused):
        return parsed
    signed_at = _check_scope_and_date(parsed, services, region)
    if isinstance(signed_at, Refused):
        return signed_at
    timing = _check_time(parsed, signed_at, now, max_skew)
    if timing is not None:
        return timing
    credential = _check_credential(parsed, credentials, now)
    if isinstance(credential, Refused):
        return credential
    return _check_signature(request, parsed, credential, signed_at, query_token)


# ---------------------------------------------------------------------------------------------
# Parsing


def _refuse(
    reason: SigV4Reason, error: AwsError, details: str, access_key_id: str | None = None
) -> Refused:
    return Refused(reason, error, details, access_key_id)


def _incomplete(message: str, details: str) -> Refused:
    return _refuse(
        SigV4Reason.SIGV4_INCOMPLETE_SIGNATURE,
        AwsError("IncompleteSignatureException", 403, message),
        details,
    )


def _query_pairs(query: str) -> list[tuple[str, str, str]]:
    """(decoded lower-case name, decoded value, raw pair) for every ``&``-separated pair."""
    pairs = []
    for raw in query.split("&"):
        if not raw:
            continue
        name, _, value = raw.partition("=")
        pairs.append((unquote(name).lower(), unquote(value), raw))
    return pairs


def _parse(request: SignedRequest) -> _Signature | Refused:
    authorizations = request.header_values(_H_AUTHORIZATION)
    pairs = _query_pairs(request.query)
    in_query = {name for name, _, _ in pairs} & {_Q_ALGORITHM, _Q_SIGNATURE, _Q_CREDENTIAL}
    if not authorizations and not in_query:
        return _refuse(
            SigV4Reason.SIGV4_MISSING_AUTHENTICATION,
            AwsError("MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
            "the request carries neither an Authorization header nor X-Amz-Signature",
        )
    if authorizations and in_query:
        return _incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified",
            "the request is signed both in the Authorization header and in the query string",
        )
    if authorizations:
        return _parse_header_form(request, authorizations)
    return _parse_query_form(request, pairs)


def _parse_header_form(request: SignedRequest, authorizations: list[str]) -> _Signature | Refused:
    if len(authorizations) > 1:
        return _incomplete(
            "Authorization header must be specified once.",
            f"the request has {len(authorizations)} Authorization headers",
        )
    value = authorizations[0].strip()
    if len(value) > _MAX_AUTHORIZATION_CHARS:
        return _incomplete(
            "Authorization header is too long.",
            f"the Authorization header has {len(value)} characters",
        )
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        return _incomplete(
            f"Unsupported AWS 'algorithm': '{algorithm[:64]}'.",
            f"the Authorization header's algorithm is {algorithm[:64]!r}, not {ALGORITHM}",
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, equals, field_value = item.strip().partition("=")
        if not equals or key in fields:
            return _incomplete(
                f"Invalid key=value pair in Authorization header: '{item.strip()[:128]}'.",
                "the Authorization header has a malformed or repeated key=value pair",
            )
        fields[key] = field_value
    dates = request.header_values(_H_DATE)
    missing = [
        f"Authorization header requires '{key}' parameter."
        for key in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(key)
    ]
    if not dates and not request.header_values("date"):
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        return _incomplete(" ".join(missing), "the Authorization header is incomplete")
    if not dates:
        return _refuse(
            SigV4Reason.SIGV4_UNSUPPORTED_SIGNED_HEADER,
            AwsError("InvalidSignatureException", 403, _SIGNATURE_MISMATCH_MESSAGE),
            "the request is dated by the Date header, not X-Amz-Date; this mock's signer "
            "(awscrt) can only reproduce X-Amz-Date signatures",
        )
    if len(dates) > 1:
        return _incomplete(
            "X-Amz-Date header must be specified once.",
            "the request has several X-Amz-Date headers",
        )
    tokens = request.header_values(_H_TOKEN)
    if len(tokens) > 1:
        return _incomplete(
            "X-Amz-Security-Token header must be specified once.",
            "the request has several X-Amz-Security-Token headers",
        )
    return _signature_parts(
        form=SignatureForm.HEADER,
        credential=fields["Credential"],
        signed_headers=fields["SignedHeaders"],
        signature=fields["Signature"],
        amz_date=dates[0].strip(),
        expires=None,
        session_token=tokens[0].strip() if tokens else None,
        unsigned_query=request.query,
    )


def _parse_query_form(
    request: SignedRequest, pairs: list[tuple[str, str, str]]
) -> _Signature | Refused:
    auth: dict[str, str] = {}
    kept: list[str] = []
    for name, value, raw in pairs:
        if name not in _AUTH_PARAMS:
            kept.append(raw)
        elif name in auth:
            return _incomplete(
                f"Query-string parameter '{name}' must be specified once.",
                f"the query string repeats {name}",
            )
        else:
            auth[name] = value
    missing = [name for name in _REQUIRED_PARAMS if not auth.get(name)]
    if missing:
        return _incomplete(
            "AWS query-string parameters must include 'X-Amz-Algorithm', 'X-Amz-Credential', "
            "'X-Amz-Signature', 'X-Amz-Date', 'X-Amz-SignedHeaders'. Re-examine the query-string "
            "parameters.",
            f"the presigned query lacks {', '.join(missing)}",
        )
    if auth[_Q_ALGORITHM] != ALGORITHM:
        return _incomplete(
            f"Unsupported AWS 'algorithm': '{auth[_Q_ALGORITHM][:64]}'.",
            f"X-Amz-Algorithm is {auth[_Q_ALGORITHM][:64]!r}, not {ALGORITHM}",
        )
    return _signature_parts(
        form=SignatureForm.QUERY,
        credential=auth[_Q_CREDENTIAL],
        signed_headers=auth[_Q_SIGNED_HEADERS],
        signature=auth[_Q_SIGNATURE],
        amz_date=auth[_Q_DATE],
        expires=auth.get(_Q_EXPIRES),
        session_token=auth.get(_Q_TOKEN),
        unsigned_query="&".join(kept),
    )


def _signature_parts(
    *,
    form: SignatureForm,
    credential: str,
    signed_headers: str,
    signature: str,
    amz_date: str,
    expires: str | None,
    session_token: str | None,
    unsigned_query: str,
) -> _Signature | Refused:
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        return _incomplete(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential[:256]}'",
            "the credential is not <key>/<date>/<region>/<service>/aws4_request",
        )
    names = tuple(name.strip().lower() for name in signed_headers.split(";"))
    if len(names) > _MAX_SIGNED_HEADERS:
        return _incomplete("Too many signed headers.", f"SignedHeaders lists {len(names)} headers")
    if "host" not in names:
        return _incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            "SignedHeaders does not list host",
        )
    return _Signature(
        form=form,
        access_key_id=parts[0],
        scope_date=parts[1],
        scope_region=parts[2],
        scope_service=parts[3],
        terminator=parts[4],
        signed_headers=names,
        signature=signature.strip(),
        amz_date=amz_date,
        expires=expires,
        session_token=session_token,
        unsigned_query=unsigned_query,
    )


# ---------------------------------------------------------------------------------------------
# Scope, time and credential checks


def _check_scope_and_date(
    parsed: _Signature, services: frozenset[str], region: str | None
) -> datetime | Refused:
    try:
        if not _AMZ_DATE.fullmatch(parsed.amz_date):
            raise ValueError(parsed.amz_date)
        signed_at = datetime.strptime(parsed.amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return _refuse(
            SigV4Reason.SIGV4_MALFORMED_DATE,
            AwsError(
                "IncompleteSignatureException",
                403,
                f"Date must be in ISO-8601 'basic format'. Got '{parsed.amz_date[:64]}'. See "
                "http://en.wikipedia.org/wiki/ISO_8601",
            ),
            f"X-Amz-Date {parsed.amz_date[:64]!r} is not yyyymmddTHHMMSSZ",
            parsed.access_key_id,
        )

    def scope(message: str, details: str) -> Refused:
        return _refuse(
            SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE,
            AwsError("InvalidSignatureException", 403, message),
            details,
            parsed.access_key_id,
        )

    if parsed.terminator != _TERMINATOR:
        return scope(
            "Credential should be scoped with a valid terminator: 'aws4_request', not "
            f"'{parsed.terminator[:64]}'. ",
            f"the credential scope ends in {parsed.terminator[:64]!r}, not aws4_request",
        )
    if parsed.scope_date != parsed.amz_date[:8]:
        return scope(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{parsed.scope_date[:16]}' != '{parsed.amz_date[:8]}', from "
            f"'{parsed.amz_date}'.",
            f"the credential scope date {parsed.scope_date[:16]!r} is not X-Amz-Date's day",
        )
    if region is not None and parsed.scope_region != region:
        return scope(
            f"Credential should be scoped to a valid region, not '{parsed.scope_region[:64]}'. ",
            f"the credential scope names region {parsed.scope_region[:64]!r}; this endpoint "
            f"is in {region}",
        )
    if parsed.scope_service not in services:
        expected = sorted(services)[0] if services else ""
        return scope(
            f"Credential should be scoped to correct service: '{expected}'. ",
            f"the credential scope names service {parsed.scope_service[:64]!r}; this door "
            f"accepts {', '.join(sorted(services))}",
        )
    return signed_at


def _stamp(moment: datetime) -> str:
    return moment.strftime(_AMZ_DATE_FORMAT)


def _check_time(
    parsed: _Signature, signed_at: datetime, now: datetime, max_skew: timedelta
) -> Refused | None:
    skew_minutes = f"{max_skew.total_seconds() / 60:g}"
    if signed_at > now + max_skew:
        return _refuse(
            SigV4Reason.SIGV4_CLOCK_SKEW,
            AwsError(
                "InvalidSignatureException",
                403,
                f"Signature not yet current: {parsed.amz_date} is still later than "
                f"{_stamp(now + max_skew)} ({_stamp(now)} + {skew_minutes} min.)",
            ),
            f"X-Amz-Date {parsed.amz_date} is more than {skew_minutes} min after the broker's "
            f"clock ({_stamp(now)})",
            parsed.access_key_id,
        )
    if parsed.expires is None:
        if signed_at < now - max_skew:
            return _refuse(
                SigV4Reason.SIGV4_CLOCK_SKEW,
                AwsError(
                    "InvalidSignatureException",
                    403,
                    f"Signature expired: {parsed.amz_date} is now earlier than "
                    f"{_stamp(now - max_skew)} ({_stamp(now)} - {skew_minutes} min.)",
                ),
                f"X-Amz-Date {parsed.amz_date} is more than {skew_minutes} min before the "
                f"broker's clock ({_stamp(now)})",
                parsed.access_key_id,
            )
        return None
    if not _DIGITS.fullmatch(parsed.expires):
        return _incomplete(
            "X-Amz-Expires should be a number", f"X-Amz-Expires {parsed.expires[:32]!r}"
        )
    expires = timedelta(seconds=int(parsed.expires))
    if expires > MAX_PRESIGN_EXPIRES or expires <= timedelta(0):
        return _incomplete(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800"
            if expires
            else "X-Amz-Expires must be non-negative",
            f"X-Amz-Expires {parsed.expires} is outside 1..604800",
        )
    if now > signed_at + expires:
        return _refuse(
            SigV4Reason.SIGV4_REQUEST_EXPIRED,
            AwsError("InvalidSignatureException", 403, "Request has expired"),
            f"the presigned URL expired at {_stamp(signed_at + expires)} (X-Amz-Date "
            f"{parsed.amz_date} + {parsed.expires} s); the broker's clock is {_stamp(now)}",
            parsed.access_key_id,
        )
    return None


def _check_credential(
    parsed: _Signature, credentials: CredentialLookup, now: datetime
) -> SigningCredential | Refused:
    key = parsed.access_key_id
    credential = credentials(key)
    if credential is None:
        return _refuse(
            SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY,
            _INVALID_TOKEN,
            f"no access key {key!r} exists",
            key,
        )
    if not credential.active:
        return _refuse(
            SigV4Reason.SIGV4_INACTIVE_ACCESS_KEY,
            _INVALID_TOKEN,
            f"access key {key} is Inactive",
            key,
        )
    token = parsed.session_token
    if credential.session_token_sha256 is None:
        if token:
            return _refuse(
                SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
                _INVALID_TOKEN,
                f"access key {key} is a long-term key but the request carries a session token",
                key,
            )
        return credential
    if not token:
        return _refuse(
            SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
            _INVALID_TOKEN,
            f"access key {key} is temporary but the request carries no X-Amz-Security-Token",
            key,
        )
    presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    if not hmac.compare_digest(presented, credential.session_token_sha256):
        return _refuse(
            SigV4Reason.SIGV4_INVALID_SESSION_TOKEN,
            _INVALID_TOKEN,
            f"the session token is not the one issued with access key {key}",
            key,
        )
    if credential.expiration is not None and now >= credential.expiration:
        return _refuse(
            SigV4Reason.SIGV4_EXPIRED_CREDENTIALS,
            AwsError(
                "ExpiredTokenException",
                403,
                "The security token included in the request is expired",
            ),
            f"the temporary credentials of {key} expired at {_stamp(credential.expiration)}",
            key,
        )
    return credential


# ---------------------------------------------------------------------------------------------
# The signature


def _check_signature(
    request: SignedRequest,
    parsed: _Signature,
    credential: SigningCredential,
    signed_at: datetime,
    query_token: QueryTokenSigning,
) -> Verified | Refused:
    key = parsed.access_key_id

    def mismatch(details: str) -> Refused:
        return _refuse(
            SigV4Reason.SIGV4_SIGNATURE_MISMATCH,
            AwsError("InvalidSignatureException", 403, _SIGNATURE_MISMATCH_MESSAGE),
            details,
            key,
        )

    body_hash = request.body_sha256()
    content_hashes = request.header_values(_H_CONTENT_SHA256)
    payload_hash = content_hashes[0].strip() if content_hashes else body_hash
    if _HEX_SHA256.fullmatch(payload_hash) and payload_hash != body_hash:
        return _refuse(
            SigV4Reason.SIGV4_PAYLOAD_HASH_MISMATCH,
            AwsError(
                "XAmzContentSHA256Mismatch",
                400,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            "X-Amz-Content-SHA256 is not the SHA-256 of the body",
            key,
        )
    present = {name.lower() for name, _ in request.headers}
    absent = [name for name in parsed.signed_headers if name not in present]
    if absent:
        return mismatch(f"signed header {absent[0]!r} is not in the request")

    if parsed.form is SignatureForm.HEADER:
        variants = [_H_TOKEN not in parsed.signed_headers]
    elif parsed.session_token is None or query_token is QueryTokenSigning.APPENDED:
        variants = [True]
    elif query_token is QueryTokenSigning.SIGNED:
        variants = [False]
    else:
        variants = [True, False]
    listed = frozenset(parsed.signed_headers)
    for omit_token in variants:
        result = _resign(
            request,
            parsed,
            credential=credential,
            signed_at=signed_at,
            payload_hash=payload_hash,
            omit_token=omit_token,
        )
        if isinstance(result, str):
            return mismatch(f"the signer could not re-sign the request: {result}")
        signature, signed = result
        if signed != listed:
            return _refuse(
                SigV4Reason.SIGV4_UNSUPPORTED_SIGNED_HEADER,
                AwsError("InvalidSignatureException", 403, _SIGNATURE_MISMATCH_MESSAGE),
                "the client signed "
                f"{';'.join(sorted(listed))} but this mock's signer (awscrt) signs "
                f"{';'.join(sorted(signed))}; it cannot check this signature",
                key,
            )
        if hmac.compare_digest(signature.encode("ascii"), parsed.signature.encode("utf-8")):
            return Verified(
                access_key_id=key,
                identity=credential.identity,
                service=parsed.scope_service,
                region=parsed.scope_region,
                form=parsed.form,
                signed_at=signed_at,
                temporary=credential.temporary,
                credential_expiration=credential.expiration,
            )
    details = "the signature does not match the request signed with the access key's secret"
    if parsed.form is SignatureForm.QUERY and variants == [True] and parsed.session_token:
        result = _resign(
            request,
            parsed,
            credential=credential,
            signed_at=signed_at,
            payload_hash=payload_hash,
            omit_token=False,
        )
        if not isinstance(result, str) and hmac.compare_digest(
            result[0].encode("ascii"), parsed.signature.encode("utf-8")
        ):
            details = (
                "the presigned URL's signature covers X-Amz-Security-Token; AWS IoT requires the "
                "token to be appended after signing (awscrt omit_session_token=True)"
            )
    return mismatch(details)


def _resign(
    request: SignedRequest,
    parsed: _Signature,
    *,
    credential: SigningCredential,
    signed_at: datetime,
    payload_hash: str,
    omit_token: bool,
) -> tuple[str, frozenset[str]] | str:
    """Sign the request as its client should have; (signature, signed headers) or an error.

    The request given to the signer has only the headers the client listed (minus those the
    signer adds itself: X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-SHA256) and, for the
    query form, the query without the signature parameters.
    """
    # Imported here, not at module level: loading the native library costs ~0.1 s, which a
    # broker start-up that may never see a signed request should not pay.
    from awscrt import auth, http  # noqa: PLC0415
    from awscrt.exceptions import AwsCrtError  # noqa: PLC0415

    listed = set(parsed.signed_headers)
    headers = [
        (name, value)
        for name, value in request.headers
        if name.lower() in listed and name.lower() not in _SIGNER_HEADERS
    ]
    target = request.path or "/"
    if parsed.unsigned_query:
        target = f"{target}?{parsed.unsigned_query}"
    header_form = parsed.form is SignatureForm.HEADER
    config: Any = auth.AwsSigningConfig(
        algorithm=auth.AwsSigningAlgorithm.V4,
        signature_type=(
            auth.AwsSignatureType.HTTP_REQUEST_HEADERS
            if header_form
            else auth.AwsSignatureType.HTTP_REQUEST_QUERY_PARAMS
        ),
        credentials_provider=auth.AwsCredentialsProvider.new_static(
            credential.access_key_id, credential.secret_access_key, parsed.session_token
        ),
        region=parsed.scope_region,
        service=parsed.scope_service,
        date=signed_at,
        use_double_uri_encode=True,
        should_normalize_uri_path=True,
        signed_body_value=payload_hash,
        signed_body_header_type=(
            auth.AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256
            if _H_CONTENT_SHA256 in listed
            else auth.AwsSignedBodyHeaderType.NONE
        ),
        expiration_in_seconds=int(parsed.expires) if parsed.expires else None,
        omit_session_token=omit_token,
    )
    try:
        # Static credentials sign synchronously; the timeout only guards against a hang.
        signed: Any = auth.aws_sign_request(
            http.HttpRequest(request.method, target, http.HttpHeaders(headers)), config
        ).result(timeout=_SIGNING_TIMEOUT_SECONDS)
    except (AwsCrtError, ValueError, TypeError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if header_form:
        fields = _authorization_fields(signed.headers.get("Authorization") or "")
        return fields.get("Signature", ""), _names(fields.get("SignedHeaders", ""))
    _, _, query = str(signed.path).partition("?")
    produced = {name: value for name, value, _ in _query_pairs(query)}
    return produced.get(_Q_SIGNATURE, ""), _names(produced.get(_Q_SIGNED_HEADERS, ""))


def _authorization_fields(value: str) -> dict[str, str]:
    _, _, rest = value.partition(" ")
    fields = {}
    for item in rest.split(","):
        key, _, field_value = item.strip().partition("=")
        fields[key] = field_value
    return fields


def _names(signed_headers: str) -> frozenset[str]:
    return frozenset(name for name in signed_headers.split(";") if name)
