"""Real SigV4 clients for tests, their requests captured as ``SignedRequest`` values.

No signing is written here: boto3/botocore and the AWS IoT Device SDK sign, and these helpers
only read what they would have put on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

import awscrt.auth
import awscrt.http
import pytest
from awsiot import mqtt_connection_builder
from botocore.awsrequest import AWSResponse

from aws_iot_mock.auth.sigv4 import SignedRequest

__all__ = [
    "amz_date_of",
    "capture_requests",
    "device_sdk_handshake",
    "from_botocore",
    "isolated_aws_config",
]


def _text(value: str | bytes) -> str:
    # A prepared request's header values are bytes.
    return value.decode() if isinstance(value, bytes) else value


def from_botocore(request: Any, body: bytes | str | None = None) -> SignedRequest:
    """A botocore request as it goes on the wire: the HTTP layer adds Host if it is absent."""
    url = urlsplit(cast(str, request.url))
    headers = [(_text(k), _text(v)) for k, v in request.headers.items()]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", url.netloc))
    payload = request.body if body is None else body
    payload = payload or b""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    return SignedRequest(str(request.method), url.path, url.query, tuple(headers), data)


class _Body:
    def stream(self, **_kwargs: object) -> Iterator[bytes]:
        yield b"{}"


def capture_requests(client: Any) -> list[SignedRequest]:
    """Make a boto3 client record each signed request instead of sending it (answer: 200 {})."""
    sent: list[SignedRequest] = []

    def capture(request: Any, **_kwargs: object) -> Any:
        sent.append(from_botocore(request))
        return AWSResponse(request.url, 200, {}, _Body())

    client.meta.events.register("before-send", capture)
    return sent


@pytest.fixture
def isolated_aws_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No profile, config file or instance metadata from the machine running the tests."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class _HandshakeTransform:
    """The argument awscrt passes a websocket_handshake_transform (http_request, set_done)."""

    def __init__(self, request: Any) -> None:
        self.http_request = request
        self.error: BaseException | None = None
        self.done = False

    def set_done(self, error: BaseException | None = None) -> None:
        self.error, self.done = error, True


def device_sdk_handshake(
    *, host: str, region: str, key: str, secret: str, token: str | None = None
) -> SignedRequest:
    """The WebSocket upgrade request the AWS IoT Device SDK signs for ``wss://host/mqtt``.

    Uses the SDK's own signing function (``websockets_with_default_aws_signing``), called as
    awscrt calls it before sending the upgrade request; nothing is connected.
    """
    provider = awscrt.auth.AwsCredentialsProvider.new_static(key, secret, token)
    connection = mqtt_connection_builder.websockets_with_default_aws_signing(
        region=region, credentials_provider=provider, endpoint=host, client_id="sdk-client"
    )
    headers = awscrt.http.HttpHeaders(
        [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "mqtt"),
        ]
    )
    transform = _HandshakeTransform(awscrt.http.HttpRequest("GET", "/mqtt", headers))
    connection._ws_handshake_transform_cb(transform_args=transform)
    assert transform.done
    assert transform.error is None
    signed = transform.http_request
    return SignedRequest.from_target("GET", signed.path, list(signed.headers))


def amz_date_of(request: SignedRequest) -> datetime:
    """The request's X-Amz-Date (header or presigned query parameter)."""
    values = request.header_values("X-Amz-Date")
    if not values:
        values = [
            pair.split("=", 1)[1]
            for pair in request.query.split("&")
            if pair.startswith("X-Amz-Date=")
        ]
    return datetime.strptime(values[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
