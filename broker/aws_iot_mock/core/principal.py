"""Who is on the other end of a door, once the door has authenticated it. Pure.

AWS IoT Core authenticates a client in one of two ways on the data endpoint: an X.509 client
certificate registered with AWS IoT (ports 8883, 8443, and 443 with ALPN ``x-amzn-mqtt-ca`` or
``x-amzn-http-ca``), or an AWS Signature Version 4 signature made with IAM credentials (443,
HTTPS and MQTT over WebSocket). See "Protocols, port mappings, and authentication",
https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html. A door establishes the
principal; the device core only ever sees a ``Principal`` and never a certificate or a signature.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # An annotation only: the TLS doors import this module at start-up, the IAM model later.
    from aws_iot_mock.auth.credentials import IamIdentity

__all__ = ["Principal", "PrincipalKind"]


class PrincipalKind(enum.Enum):
    """How the principal was authenticated."""

    X509_CERTIFICATE = "x509"
    IAM = "iam"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated principal.

    Attributes:
        kind: how it was authenticated.
        principal_id: what AWS writes as ``principalId`` in logs and ``principalIdentifier`` in
            lifecycle events: the certificate ID (lowercase hex SHA-256 of the DER) for X.509,
            the IAM identity for SigV4.
        certificate_der: the client certificate (X.509 principals), when the authenticator
            keeps it; the TLS door does not (the registry holds every registered certificate).
        iam_user: the IAM user name the credentials belong to (IAM principals only).
        access_key_id: the access key that signed (IAM principals only).
        iam_identity: the IAM user the credentials belong to (IAM principals only); its IAM
            policies authorize the principal.
    """

    kind: PrincipalKind
    principal_id: str
    certificate_der: bytes | None = None
    iam_user: str | None = None
    access_key_id: str | None = None
    iam_identity: IamIdentity | None = None

    @classmethod
    def certificate(cls, certificate_id: str, certificate_der: bytes | None = None) -> Principal:
        """An X.509 principal: its ID is the certificate ID."""
        return cls(PrincipalKind.X509_CERTIFICATE, certificate_id, certificate_der=certificate_der)

    @classmethod
    def iam(cls, identity: IamIdentity, access_key_id: str) -> Principal:
        """A SigV4 principal: the IAM user whose (long-term or session) key signed."""
        return cls(
            PrincipalKind.IAM,
            identity.principal_id,
            iam_user=identity.user_name,
            access_key_id=access_key_id,
            iam_identity=identity,
        )

    @property
    def certificate_id(self) -> str | None:
        """The certificate ID of an X.509 principal, else None."""
        return self.principal_id if self.kind is PrincipalKind.X509_CERTIFICATE else None
