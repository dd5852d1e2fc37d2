"""AWS REST (rest-json) API errors as values the HTTP shell can send unchanged. Pure.

The AWS IoT control plane (``iot``) and the Jobs device API (``iot-jobs-data``) are rest-json
services: an error is an HTTP status, the exception name in the ``x-amzn-ErrorType`` header and a
JSON body ``{"message": ...}``; botocore reads the name from that header
(https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html#operation-error-serialization).
Each exception's status is the ``httpStatusCode`` botocore's service model gives it.
"""

from __future__ import annotations

import json
from typing import Final

__all__ = ["HTTP_STATUS", "AwsApiError"]

# The statuses of the exceptions these services raise, from botocore's ``iot`` (2015-05-28),
# ``iot-data`` (2015-05-28) and ``iot-jobs-data`` (2017-09-29) models. Where they disagree
# (ThrottlingException: 400 in ``iot``, 429 in ``iot-data`` and ``iot-jobs-data``) the caller
# passes the status explicitly.
HTTP_STATUS: Final[dict[str, int]] = {
    "InvalidRequestException": 400,
    "CertificateValidationException": 400,
    "MalformedPolicyException": 400,
    "ThrottlingException": 400,
    "UnauthorizedException": 401,
    "ForbiddenException": 403,
    "ResourceNotFoundException": 404,
    "MethodNotAllowedException": 405,
    "CertificateStateException": 406,
    "CertificateConflictException": 409,
    "ResourceAlreadyExistsException": 409,
    "VersionConflictException": 409,
    "InvalidStateTransitionException": 409,
    "DeleteConflictException": 409,
    "ConflictingResourceUpdateException": 409,
    "ConflictException": 409,
    "VersionsLimitExceededException": 409,
    "LimitExceededException": 410,
    "TerminalStateException": 410,
    "RequestEntityTooLargeException": 413,
    "UnsupportedDocumentEncodingException": 415,
    "InternalFailureException": 500,
    "ServiceUnavailableException": 503,
    "GatewayTimeoutException": 504,
}


class AwsApiError(Exception):
    """A refused AWS API call: the exception name, its HTTP status and the message.

    Attributes:
        code: the AWS exception name, e.g. ``ResourceNotFoundException``.
        message: the human-readable message (the ``message`` member of the error shape).
        status: the HTTP status code.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status if status is not None else HTTP_STATUS.get(code, 400)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def rest_response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """The HTTP response AWS sends for this error: status, headers, body."""
        body = json.dumps({"message": self.message}, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", self.code)]
        return self.status, headers, body
