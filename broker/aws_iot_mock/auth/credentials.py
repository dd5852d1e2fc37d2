"""What a SigV4 verifier needs to know about an access key: its secret and whose it is.

Pure values. The local IAM (``aws_iot_mock.iam``) produces them; ``aws_iot_mock.auth.sigv4``
consumes them through a ``CredentialLookup``. Keeping them here lets the verifier stay free of
SQLite, and lets tests hand it credentials directly.

Principal identifiers (a decision where AWS is silent for IAM users): AWS IoT writes
``principalIdentifier`` in lifecycle events as "the credential used to authenticate ... For other
connections [than certificates], this is IAM credentials"
(https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html). What AWS IoT
actually sends for SigV4 callers, as captured from the real service, is the caller's IAM unique
ID, CloudTrail's ``userIdentity.principalId`` (IAM's ``aws:userid``): ``AROA...:<session>`` for
a role session, in a ``connected`` event of the console's MQTT client and in customers'
AWSIotLogsV2 ``principalId`` (``AROA...:CognitoIdentityCredentials``). The guide's one example,
``<account>/<id>:<session>/<id>:<session>``, is not what the captures show. For an IAM user the
unique ID is its ``AIDA...`` user ID
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html),
and a ``GetSessionToken`` session acts as the user itself, so both are ``AIDA...``. Roles are
not emulated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = ["CredentialLookup", "IamIdentity", "SigningCredential"]


@dataclass(frozen=True, slots=True)
class IamIdentity:
    """The IAM user an access key belongs to.

    Attributes:
        account_id: the 12-digit account ID.
        user_name: the user's name as created (IAM compares names case-insensitively).
        user_id: the user's unique ID, ``AIDA`` + 17 characters.
        arn: ``arn:aws:iam::<account>:user<path><name>``.
    """

    account_id: str
    user_name: str
    user_id: str
    arn: str

    @property
    def principal_id(self) -> str:
        """The ``principalId`` / ``principalIdentifier`` logs and lifecycle events carry.

        The user ID (``AIDA...``); see the module docstring for why.
        """
        return self.user_id


@dataclass(frozen=True, slots=True)
class SigningCredential:
    """An access key as the verifier sees it. ``repr`` never shows the secret.

    Attributes:
        access_key_id: ``AKIA...`` (long-term) or ``ASIA...`` (temporary).
        secret_access_key: the 40-character secret; the HMAC key.
        identity: the IAM user the key belongs to (for a temporary key: the user who called
            ``GetSessionToken``).
        active: False for a long-term key whose status is ``Inactive``.
        session_token_sha256: for a temporary key, the lower-hex SHA-256 of its session token
            (the token itself need not be stored); None for a long-term key.
        expiration: for a temporary key, when it stops working (timezone-aware); None otherwise.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    identity: IamIdentity
    active: bool = True
    session_token_sha256: str | None = field(default=None, repr=False)
    expiration: datetime | None = None

    @property
    def temporary(self) -> bool:
        """Whether this is a session (STS) credential, which requires a session token."""
        return self.session_token_sha256 is not None


class CredentialLookup(Protocol):
    """Finds the credential of an access key ID; None when there is no such key."""

    def __call__(self, access_key_id: str, /) -> SigningCredential | None:
        """Return the key's credential, or None when it does not exist (deleted or never made)."""
        ...
