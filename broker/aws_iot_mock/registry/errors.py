"""The AWS IoT exceptions the registry raises, as distinct types.

Each class names its AWS exception in ``aws_code`` and starts its message with it, e.g.
``DeleteConflictException: The policy cannot be deleted as ...``, so that a caller can either
catch the type or print the message the AWS CLI would print
(https://docs.aws.amazon.com/iot/latest/apireference/CommonErrors.html and the "Errors" section
of each action's page).

All of them are ``aws_iot_mock.errors.CertificateError`` subclasses ("bad input"), so existing
``except CertificateError`` / ``except BrokerError`` handlers (the CLI's exit code 254) keep
working. A missing resource is the existing ``aws_iot_mock.errors.ResourceNotFoundError`` with a
``ResourceNotFoundException: `` message prefix.
"""

from __future__ import annotations

import re
from typing import ClassVar

from aws_iot_mock.errors import CertificateError, ResourceNotFoundError

__all__ = [
    "CertificateStateError",
    "CertificateValidationError",
    "DeleteConflictError",
    "InvalidRequestError",
    "LimitExceededError",
    "MalformedPolicyError",
    "RegistryRequestError",
    "ResourceAlreadyExistsError",
    "VersionConflictError",
    "VersionsLimitExceededError",
    "aws_error_code",
]

_PREFIX = re.compile(r"([A-Za-z]+Exception): ")


class RegistryRequestError(CertificateError):
    """A registry request that AWS IoT would refuse; ``aws_code`` is the AWS exception name.

    The message is prefixed with ``"<aws_code>: "`` unless it already starts with it.
    """

    aws_code: ClassVar[str] = "InvalidRequestException"

    def __init__(self, message: str) -> None:
        prefix = f"{self.aws_code}: "
        super().__init__(message if message.startswith(prefix) else prefix + message)


class InvalidRequestError(RegistryRequestError):
    """A malformed or disallowed request (AWS's InvalidRequestException, HTTP 400)."""

    aws_code: ClassVar[str] = "InvalidRequestException"


class ResourceAlreadyExistsError(RegistryRequestError):
    """The resource exists already (ResourceAlreadyExistsException, HTTP 409)."""

    aws_code: ClassVar[str] = "ResourceAlreadyExistsException"


class DeleteConflictError(RegistryRequestError):
    """A delete that other resources still depend on (DeleteConflictException, HTTP 409)."""

    aws_code: ClassVar[str] = "DeleteConflictException"


class VersionsLimitExceededError(RegistryRequestError):
    """A policy already has five versions (VersionsLimitExceededException, HTTP 409)."""

    aws_code: ClassVar[str] = "VersionsLimitExceededException"


class VersionConflictError(RegistryRequestError):
    """``expectedVersion`` differs from the thing's version (VersionConflictException, 409)."""

    aws_code: ClassVar[str] = "VersionConflictException"


class MalformedPolicyError(RegistryRequestError):
    """The policy document is not a valid AWS IoT policy (MalformedPolicyException, HTTP 400)."""

    aws_code: ClassVar[str] = "MalformedPolicyException"


class LimitExceededError(RegistryRequestError):
    """A per-resource quota is reached (LimitExceededException, HTTP 410)."""

    aws_code: ClassVar[str] = "LimitExceededException"


class CertificateStateError(RegistryRequestError):
    """The certificate's status forbids the operation (CertificateStateException, HTTP 406)."""

    aws_code: ClassVar[str] = "CertificateStateException"


class CertificateValidationError(RegistryRequestError):
    """A certificate fails validation (CertificateValidationException, HTTP 400)."""

    aws_code: ClassVar[str] = "CertificateValidationException"


def aws_error_code(error: BaseException) -> str | None:
    """Return the AWS exception name for a registry error, for printing like the AWS CLI.

    Args:
        error: any exception.

    Returns:
        ``aws_code`` for a ``RegistryRequestError`` or any other error class that names one (the
        IAM errors, whose codes have no ``Exception`` suffix), ``ResourceNotFoundException`` for
        a ``ResourceNotFoundError``, else the ``...Exception`` prefix of the message, else None.
    """
    code = getattr(type(error), "aws_code", None)
    if isinstance(code, str):
        return code
    if isinstance(error, ResourceNotFoundError):
        return "ResourceNotFoundException"
    match = _PREFIX.match(str(error))
    return match.group(1) if match else None
