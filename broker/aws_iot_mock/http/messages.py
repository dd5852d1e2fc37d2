"""HTTP requests and responses as values, and AWS's REST-JSON response shapes. Pure.

The HTTPS doors parse bytes with h11 (``aws_iot_mock.doors.http_door``) into ``HttpRequest``
values; the APIs (``iot-data``, ``iot-jobs-data``, ``iot``) answer with ``HttpResponse`` values.
AWS's REST-JSON services answer an error with its HTTP status, the exception name in the
``x-amzn-ErrorType`` header and a JSON body whose ``message`` member is the text; botocore reads
the name from that header ("AWS restJson1 protocol", error serialization,
https://smithy.io/2.0/aws/protocols/aws-restjson1-protocol.html), so a boto3 call raises the
modelled exception class. Every response carries ``x-amzn-RequestId``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from aws_iot_mock.aws.api_errors import AwsApiError

__all__ = ["HttpRequest", "HttpResponse", "error_response", "json_response", "new_request_id"]


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request as received.

    Attributes:
        method: upper-case, e.g. ``POST``.
        target: the request target exactly as sent (path and query, still percent-encoded):
            SigV4 signs it in this form.
        headers: ``(name, value)`` pairs in order, names lower-case.
        body: the body (already bounded by the door).
        http_version: ``1.1`` or ``1.0``.
    """

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    http_version: str = "1.1"

    @property
    def path(self) -> str:
        """The path as sent (percent-encoded), without the query."""
        return self.target.split("?", 1)[0]

    @property
    def query_string(self) -> str:
        """The raw query string (may be empty)."""
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def path_segments(self) -> list[str]:
        """The path's segments, percent-decoded: ``/topics/a%2Fb`` -> ``["topics", "a/b"]``."""
        return [unquote(part, errors="strict") for part in self.path.split("/")[1:]]

    def query(self) -> dict[str, str]:
        """The query parameters, decoded; a repeated name keeps its last value."""
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass(frozen=True)
class HttpResponse:
    """One HTTP response to send.

    Attributes:
        status: the status code.
        headers: ``(name, value)`` pairs; the door adds ``Content-Length``, ``Date`` and
            ``Connection`` as needed.
        body: the body.
        stream: a body sent as it is produced, after ``body`` (server-sent events): the door
            sends it without ``Content-Length`` (chunked on HTTP/1.1), writes each chunk when
            the client reads, and ends the response when the iterator ends. None for none.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = field(default=())
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


def new_request_id() -> str:
    """A fresh ``x-amzn-RequestId`` (AWS uses a UUID; it doubles as the log ``traceId``)."""
    return str(uuid.uuid4())


def json_response(document: object, request_id: str, status: int = 200) -> HttpResponse:
    """A JSON success response with the request ID header."""
    return HttpResponse(
        status,
        (("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)),
        json.dumps(document, separators=(",", ":")).encode("utf-8"),
    )


def error_response(error: AwsApiError, request_id: str) -> HttpResponse:
    """The REST-JSON error response: status, ``x-amzn-ErrorType``, ``{"message": ...}``."""
    status, headers, body = error.rest_response()
    return HttpResponse(status, (*headers, ("x-amzn-RequestId", request_id)), body)
