"""Why a SigV4-signed request was refused: ``SigV4Reason``, re-exported by ``auth.sigv4``.

A module of its own so that the log records' reason catalogue (``logs.cloudwatch``), which every
door imports at start-up, does not import the verifier with it.
"""

from __future__ import annotations

import enum

__all__ = ["SigV4Reason"]


class SigV4Reason(enum.Enum):
    """Why a signed request was refused; the member name is the log ``reason``.

    Each value is the one-line meaning, for a reason catalogue.
    """

    SIGV4_MISSING_AUTHENTICATION = (
        "No Authorization header and no X-Amz-Signature query parameter: the request is unsigned."
    )
    SIGV4_INCOMPLETE_SIGNATURE = (
        "The Authorization header or the X-Amz-* query parameters are malformed or incomplete "
        "(missing Credential, SignedHeaders or Signature, an unsupported algorithm, host not "
        "signed, both forms at once)."
    )
    SIGV4_MALFORMED_DATE = "X-Amz-Date is not an ISO 8601 basic-format UTC time (yyyymmddTHHMMSSZ)."
    SIGV4_INVALID_CREDENTIAL_SCOPE = (
        "The credential scope names another region or service, a date other than X-Amz-Date's, "
        "or a terminator other than aws4_request."
    )
    SIGV4_CLOCK_SKEW = (
        "X-Amz-Date is more than the allowed skew (5 minutes) before or after the broker's clock."
    )
    SIGV4_REQUEST_EXPIRED = "A presigned URL was used after X-Amz-Date + X-Amz-Expires."
    SIGV4_UNKNOWN_ACCESS_KEY = "The access key ID does not exist (never created, or deleted)."
    SIGV4_INACTIVE_ACCESS_KEY = "The access key exists but its status is Inactive."
    SIGV4_INVALID_SESSION_TOKEN = (
        "A temporary (ASIA) key came without its session token or with another one, or a "
        "long-term key came with a session token."
    )
    SIGV4_EXPIRED_CREDENTIALS = "The temporary credentials (GetSessionToken) have expired."
    SIGV4_PAYLOAD_HASH_MISMATCH = "X-Amz-Content-SHA256 is not the SHA-256 of the body."
    SIGV4_SIGNATURE_MISMATCH = (
        "The signature does not match the request re-signed with the key's secret (wrong "
        "secret, a changed request, or a signed header missing from the request)."
    )
    SIGV4_UNSUPPORTED_SIGNED_HEADER = (
        "The client signed a header the mock's signer (awscrt) cannot sign, such as user-agent, "
        "or used Date instead of X-Amz-Date; the signature cannot be checked."
    )
