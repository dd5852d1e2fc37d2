"""The broker's health endpoint on the api door: ``GET /_aws-iot-mock/health`` (pure).

AWS IoT has no such endpoint; it is the mock's own, for container health checks and harnesses
that wait for readiness. It lives under a path prefix that no AWS ``iot`` operation uses (every
path in botocore's ``iot`` model starts with a letter), as LocalStack keeps its own endpoints
under ``/_localstack`` (https://docs.localstack.cloud/references/internal-endpoints/).

A probe touches no device state: it is not a device, opens no MQTT session, publishes no
lifecycle event, needs no SigV4 signature and writes no log record (plain HTTP on loopback is
not logged at all; an accepted TLS handshake only at DEBUG). The answer lists every configured
door with its state: ``listening`` with its port, or ``off`` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aws_iot_mock.http.messages import HttpRequest, HttpResponse

__all__ = ["HEALTH_PATH", "DoorState", "health_document", "health_response", "is_health_path"]

HEALTH_PATH = "/_aws-iot-mock/health"

_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))


@dataclass(frozen=True)
class DoorState:
    """One configured door as the health endpoint reports it.

    Attributes:
        door: ``mqtt``, ``https``, ``alpn`` or ``api``.
        host: the configured bind address.
        port: the bound port, or None when the door is off.
        off_reason: why an optional door is off; None when it listens.
    """

    door: str
    host: str
    port: int | None
    off_reason: str | None = None


def is_health_path(path: str) -> bool:
    """Whether a request path (without its query) is the health endpoint's."""
    return path == HEALTH_PATH


def health_document(
    doors: Iterable[DoorState], *, endpoint: str, version: str
) -> dict[str, object]:
    """The health endpoint's JSON document.

    Returns:
        ``{"status": "ok", "version", "endpoint", "doors": {door: {"state": "listening",
        "host", "port"} or {"state": "off", "host", "reason"}}}``.
    """
    states: dict[str, Mapping[str, object]] = {}
    for door in doors:
        if door.port is None:
            states[door.door] = {"state": "off", "host": door.host, "reason": door.off_reason}
        else:
            states[door.door] = {"state": "listening", "host": door.host, "port": door.port}
    return {"status": "ok", "version": version, "endpoint": endpoint, "doors": states}


def health_response(request: HttpRequest, document: Mapping[str, object]) -> HttpResponse:
    """Answer a request for the health endpoint: 200 with ``document`` to GET (HEAD: no body).

    Any other method gets 405 with an ``Allow`` header (RFC 9110 section 15.5.6).
    """
    if request.method not in ("GET", "HEAD"):
        refusal = {"message": f"{request.method} is not allowed: GET {HEALTH_PATH}"}
        allow = ("Allow", "GET, HEAD")
        return HttpResponse(405, (*_HEADERS, allow), json.dumps(refusal).encode("utf-8"))
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    return HttpResponse(200, _HEADERS, b"" if request.method == "HEAD" else body)
