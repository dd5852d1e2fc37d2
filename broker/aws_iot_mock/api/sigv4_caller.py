"""Who signed a request on 443 without a client certificate: SigV4 against the local IAM.

AWS IoT's data endpoint takes IAM credentials on port 443: HTTPS requests signed with SigV4 in
the ``Authorization`` header (boto3, the aws CLI), and the MQTT over WebSocket upgrade signed in
its query string or headers (the Device SDKs, browsers) ("Protocols, port mappings, and
authentication", https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html). Both
sign with the scope service ``iotdata`` (botocore's signing name) or ``iotdevicegateway`` (the
Device SDKs and "Device Shadow REST API"); both are accepted. The signature is checked by
``aws_iot_mock.auth.sigv4.verify`` against the local IAM's keys, with AWS's 5 minutes of clock
skew; the principal is the IAM user the key belongs to.

Custom authentication (``x-amz-customauthorizer-name`` / ``-signature`` headers or query
parameters, "Connecting to AWS IoT Core by using custom authentication",
https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth.html) is not emulated: such a
request is refused with ``CUSTOM_AUTH_NOT_EMULATED`` rather than judged as an unsigned one.

Every refusal answers what AWS IoT's data endpoint answers to any authentication failure
(``403 ForbiddenException``, "Forbidden"); the log reason says which check failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import parse_qsl

from aws_iot_mock.auth.credentials import CredentialLookup
from aws_iot_mock.auth.sigv4 import (
    DEFAULT_MAX_SKEW,
    FORBIDDEN,
    IOT_DATA_SERVICES,
    AwsError,
    Refused,
    SignedRequest,
    Verified,
    verify,
)
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.http.messages import HttpRequest
from aws_iot_mock.logs.cloudwatch import Reason

__all__ = ["CUSTOM_AUTHORIZER_PREFIX", "CallerRefused", "SigV4Authenticator", "SigV4Caller"]

# Header and query parameter names of AWS IoT custom authentication (custom-auth.html).
CUSTOM_AUTHORIZER_PREFIX: Final = "x-amz-customauthorizer-"


@dataclass(frozen=True, slots=True)
class SigV4Caller:
    """A request whose signature checked out.

    Attributes:
        principal: the IAM principal (``Principal.iam``).
        verified: what the verifier established (key, scope, form, time).
    """

    principal: Principal
    verified: Verified

    @property
    def details(self) -> str:
        """How the caller authenticated, for the ``details`` of a ``Connect`` log line."""
        verified = self.verified
        kind = "temporary" if verified.temporary else "long-term"
        return (
            f"SigV4 ({verified.form.value}, service {verified.service}) by the IAM user "
            f"{verified.identity.user_name!r} with {kind} key {verified.access_key_id}"
        )


@dataclass(frozen=True, slots=True)
class CallerRefused:
    """A request refused before any authorization.

    Attributes:
        reason: the log reason.
        details: one sentence for the log (never a secret).
        error: what the client is answered (AWS IoT's 403 ForbiddenException).
    """

    reason: Reason
    details: str
    error: AwsError = FORBIDDEN


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SigV4Authenticator:
    """Authenticates signed requests on the data endpoint against the local IAM.

    Args:
        credentials: the access key lookup (``IamStore.credential_for``).
        region: the endpoint's region; a signature scoped to another is refused.
        clock: the current time, timezone-aware (tests inject it).
        max_skew: the clock skew allowed between ``X-Amz-Date`` and ``clock``.
    """

    def __init__(
        self,
        credentials: CredentialLookup,
        *,
        region: str,
        clock: Callable[[], datetime] = _utc_now,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._clock = clock
        self._max_skew = max_skew

    def authenticate(self, request: HttpRequest) -> SigV4Caller | CallerRefused:
        """Check ``request``'s signature (header or presigned query form).

        Never raises for anything a client can send.
        """
        custom = _custom_authorizer_field(request)
        if custom is not None:
            return CallerRefused(
                Reason.CUSTOM_AUTH_NOT_EMULATED,
                f"The request carries {custom!r}: it asks for a custom authorizer, and custom "
                "authentication is not emulated (sign it with SigV4 instead)",
            )
        outcome = verify(
            SignedRequest.from_target(
                request.method, request.target, request.headers, request.body
            ),
            credentials=self._credentials,
            now=self._clock(),
            services=IOT_DATA_SERVICES,
            region=self._region,
            max_skew=self._max_skew,
        )
        if isinstance(outcome, Refused):
            key = outcome.access_key_id
            named = f"access key {key}; " if key and key not in outcome.details else ""
            return CallerRefused(
                Reason[outcome.reason.name],
                f"{outcome.details} ({named}AWS services other than IoT's data endpoint answer "
                f"{outcome.code})",
            )
        return SigV4Caller(Principal.iam(outcome.identity, outcome.access_key_id), outcome)


def _custom_authorizer_field(request: HttpRequest) -> str | None:
    """The first custom-authentication header or query parameter name, if any."""
    for name, _ in request.headers:
        if name.lower().startswith(CUSTOM_AUTHORIZER_PREFIX):
            return name.lower()
    for name, _ in parse_qsl(request.query_string, keep_blank_values=True):
        if name.lower().startswith(CUSTOM_AUTHORIZER_PREFIX):
            return name
    return None
