"""The IAM and STS errors the local IAM raises, with AWS's error codes.

IAM's codes have no ``Exception`` suffix ("Common Errors" and each action's "Errors" section in
the IAM API Reference, https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html).
Each class names its code in ``aws_code`` and its HTTP status in ``http_status``, and its
message starts with ``"<aws_code>: "``, as the registry's errors do
(``aws_iot_mock.registry.errors``), so the CLI prints what the AWS CLI prints after
"An error occurred (<code>) when calling the <Operation> operation: ".
"""

from __future__ import annotations

from typing import ClassVar

from aws_iot_mock.errors import BrokerError, ResourceNotFoundError

__all__ = [
    "EntityAlreadyExistsError",
    "IamAccessDeniedError",
    "IamDeleteConflictError",
    "IamLimitExceededError",
    "IamRequestError",
    "IamValidationError",
    "MalformedPolicyDocumentError",
    "NoSuchEntityError",
]


class IamRequestError(BrokerError):
    """A request IAM or STS would refuse; ``aws_code`` is AWS's error code."""

    aws_code: ClassVar[str] = "InvalidInput"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        prefix = f"{self.aws_code}: "
        super().__init__(message if message.startswith(prefix) else prefix + message)

    @property
    def aws_message(self) -> str:
        """The message without the ``"<aws_code>: "`` prefix, as AWS sends it."""
        return str(self).removeprefix(f"{self.aws_code}: ")


class NoSuchEntityError(IamRequestError, ResourceNotFoundError):
    """The user, access key or policy does not exist (NoSuchEntity, HTTP 404)."""

    aws_code: ClassVar[str] = "NoSuchEntity"
    http_status: ClassVar[int] = 404


class EntityAlreadyExistsError(IamRequestError):
    """A user of that name exists already (EntityAlreadyExists, HTTP 409)."""

    aws_code: ClassVar[str] = "EntityAlreadyExists"
    http_status: ClassVar[int] = 409


class IamLimitExceededError(IamRequestError):
    """An IAM quota is reached, e.g. two access keys per user (LimitExceeded, HTTP 409)."""

    aws_code: ClassVar[str] = "LimitExceeded"
    http_status: ClassVar[int] = 409


class IamDeleteConflictError(IamRequestError):
    """A user still has access keys or policies (DeleteConflict, HTTP 409)."""

    aws_code: ClassVar[str] = "DeleteConflict"
    http_status: ClassVar[int] = 409


class MalformedPolicyDocumentError(IamRequestError):
    """The policy document is not valid (MalformedPolicyDocument, HTTP 400)."""

    aws_code: ClassVar[str] = "MalformedPolicyDocument"
    http_status: ClassVar[int] = 400


class IamValidationError(IamRequestError):
    """A parameter breaks its constraint (ValidationError, HTTP 400)."""

    aws_code: ClassVar[str] = "ValidationError"
    http_status: ClassVar[int] = 400


class IamAccessDeniedError(IamRequestError):
    """The caller may not do this, e.g. GetSessionToken with session credentials (AccessDenied)."""

    aws_code: ClassVar[str] = "AccessDenied"
    http_status: ClassVar[int] = 403
