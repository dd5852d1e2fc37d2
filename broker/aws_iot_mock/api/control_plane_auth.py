"""Who is calling the control plane: SigV4, checked by the verifier against the local IAM. Pure.

Every ``iot`` API request is signed with SigV4, signing name ``iot`` (botocore's ``iot`` model,
``signingName``). ``ControlPlaneAuthenticator.authenticate`` hands the request to
``aws_iot_mock.auth.sigv4.verify`` (which re-signs it with awscrt's signer; nothing here
canonicalises) and decides:

- no signature at all: refused, ``MissingAuthenticationTokenException`` (403), as AWS answers
  an unsigned request;
- a signature made with an access key of the local IAM: verified like AWS does (a wrong secret,
  a stale date, a changed request are refused with AWS's error);
- a well-formed signature (scope, date and clock checked) from an access key the local IAM does
  not know: accepted by default, as moto and LocalStack accept any credentials, so tests can
  use dummy keys; the caller is the access key. With ``strict`` (config
  ``control_plane.strict_sigv4: true``) it is refused with ``UnrecognizedClientException``
  (403), as AWS refuses it.

This is the one place the control plane's authentication is decided: the strict-mode switch
and the credential lookup are its two inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from aws_iot_mock.auth.credentials import CredentialLookup, SigningCredential
from aws_iot_mock.auth.sigv4 import (
    IOT_CONTROL_PLANE_SERVICES,
    Refused,
    SignedRequest,
    SigV4Reason,
    Verified,
    verify,
)
from aws_iot_mock.http.messages import HttpRequest

__all__ = ["ControlPlaneAuthenticator", "ControlPlaneCaller", "no_credentials"]


@dataclass(frozen=True)
class ControlPlaneCaller:
    """The caller of one control-plane request.

    Attributes:
        access_key_id: the access key that signed it.
        principal_id: the IAM unique ID (``AIDA...``) for a key of the local IAM, else the
            access key.
        verified: whether the signature was checked against a known secret.
        region: the region the request was signed for.
    """

    access_key_id: str
    principal_id: str
    verified: bool
    region: str


def no_credentials(access_key_id: str, /) -> SigningCredential | None:
    """A credential lookup that knows no key (no local IAM)."""
    return None


class ControlPlaneAuthenticator:
    """Authenticates control-plane requests.

    Args:
        credentials: finds the local IAM's access keys (``IamStore.credential_for``).
        strict: refuse access keys the local IAM does not know.
        region: with ``strict``, the region every signature must name; otherwise any region
            is accepted (a test's client may be configured for another one).
        clock: the current time, timezone-aware.
    """

    def __init__(
        self,
        *,
        credentials: CredentialLookup = no_credentials,
        strict: bool = False,
        region: str | None = None,
        clock: Callable[[], datetime],
    ) -> None:
        self._credentials = credentials
        self._strict = strict
        self._region = region
        self._clock = clock

    @property
    def strict(self) -> bool:
        """Whether unknown access keys are refused."""
        return self._strict

    def authenticate(self, request: HttpRequest) -> ControlPlaneCaller | Refused:
        """Check one request's signature (see the module docstring for the rules)."""
        signed = SignedRequest.from_target(
            request.method, request.target, request.headers, request.body
        )
        result = verify(
            signed,
            credentials=self._credentials,
            now=self._clock(),
            services=IOT_CONTROL_PLANE_SERVICES,
            region=self._region if self._strict else None,
        )
        if isinstance(result, Verified):
            return ControlPlaneCaller(
                access_key_id=result.access_key_id,
                principal_id=result.principal_id,
                verified=True,
                region=result.region,
            )
        if (
            result.reason is SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY
            and not self._strict
            and result.access_key_id is not None
        ):
            return ControlPlaneCaller(
                access_key_id=result.access_key_id,
                principal_id=result.access_key_id,
                verified=False,
                region=_scope_region(request) or "",
            )
        return result


def _scope_region(request: HttpRequest) -> str | None:
    """The region of the ``Authorization`` header's credential scope (already validated)."""
    authorization = request.header("authorization") or ""
    _, _, fields = authorization.partition(" ")
    for item in fields.split(","):
        name, _, value = item.strip().partition("=")
        if name == "Credential":
            parts = value.split("/")
            return parts[2] if len(parts) == 5 else None
    return None
