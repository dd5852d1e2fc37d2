"""The WebSocket upgrade of MQTT over WebSocket (``wss://ENDPOINT/mqtt``), decided. Pure.

AWS IoT serves MQTT over WebSocket at the path ``/mqtt`` on 443 ("Protocols, port mappings, and
authentication", https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html), with the
subprotocol ``mqtt`` the MQTT specifications register for it (MQTT 3.1.1 section 6, MQTT 5.0
section 6: "the Client MUST include mqtt in the list of WebSocket Sub Protocols it offers"); the
Device SDKs send it, and clients that offered ``mqttv3.1`` instead are seen failing on AWS. What
status AWS answers to a bad path or a missing subprotocol is not documented; this module answers
400 (404 for another path) and never upgrades.

The handshake itself (``Sec-WebSocket-Key``, version 13, ``Connection: Upgrade``, the
``Sec-WebSocket-Accept`` answer; RFC 6455 section 4.2) is wsproto's: the door has already parsed
the request with h11, and wsproto's ``H11Handshake.initiate_upgrade_connection`` takes it from
there. ``prepare`` checks the request and ``PendingUpgrade.accept`` produces the
``101 Switching Protocols`` bytes and the wsproto ``Connection`` that frames what follows; the
door calls ``accept`` only once the request's signature and the caller are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wsproto.connection import Connection, ConnectionType
from wsproto.events import AcceptConnection, RejectConnection, Request
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from aws_iot_mock.http.messages import HttpRequest

__all__ = [
    "MQTT_PATH",
    "MQTT_SUBPROTOCOL",
    "PendingUpgrade",
    "UpgradeRefused",
    "is_websocket_upgrade",
    "prepare",
]

MQTT_PATH: Final = "/mqtt"
MQTT_SUBPROTOCOL: Final = "mqtt"


@dataclass(frozen=True, slots=True)
class UpgradeRefused:
    """An upgrade request this endpoint does not serve.

    Attributes:
        status: the HTTP status to answer.
        details: why, for the log.
    """

    status: int
    details: str


class PendingUpgrade:
    """A valid upgrade request for MQTT over WebSocket, not yet answered.

    Args:
        handshake: wsproto's server handshake, having read the request.
        subprotocols: the subprotocols the client offered.
    """

    def __init__(self, handshake: H11Handshake, subprotocols: tuple[str, ...]) -> None:
        self._handshake = handshake
        self.subprotocols = subprotocols

    def accept(self) -> tuple[bytes, Connection]:
        """The ``101 Switching Protocols`` response (subprotocol ``mqtt``) and the connection.

        The connection is a server-side wsproto ``Connection``; feed it the bytes that follow
        the request.
        """
        response = self._handshake.send(AcceptConnection(subprotocol=MQTT_SUBPROTOCOL))
        connection = self._handshake.connection
        assert connection is not None  # set by accepting
        return response, connection


def is_websocket_upgrade(request: HttpRequest) -> bool:
    """Whether the request asks to switch to WebSocket (``Upgrade: websocket``)."""
    upgrade = request.header("upgrade")
    return upgrade is not None and "websocket" in upgrade.lower()


def prepare(request: HttpRequest) -> PendingUpgrade | UpgradeRefused:
    """Check an upgrade request's path, handshake and subprotocol (not its signature)."""
    if request.path != MQTT_PATH:
        return UpgradeRefused(
            404,
            f"A WebSocket upgrade to {request.path[:128]!r}: AWS IoT serves MQTT over WebSocket "
            f"at {MQTT_PATH} only",
        )
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        if request.method != "GET":
            raise RemoteProtocolError("Request method must be GET", event_hint=RejectConnection())
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in request.headers
        ]
        handshake.initiate_upgrade_connection(headers, request.target)
        events = list(handshake.events())
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        status = hint.status_code if isinstance(hint, RejectConnection) else 400
        return UpgradeRefused(status, f"Not a valid WebSocket handshake (RFC 6455): {exc}")
    offered: tuple[str, ...] = ()
    for event in events:
        if isinstance(event, Request):
            offered = tuple(event.subprotocols)
    if MQTT_SUBPROTOCOL not in offered:
        what = ", ".join(offered) if offered else "none"
        return UpgradeRefused(
            400,
            f"The WebSocket upgrade offers the subprotocols {what}; MQTT over WebSocket needs "
            f"'{MQTT_SUBPROTOCOL}' (Sec-WebSocket-Protocol: {MQTT_SUBPROTOCOL})",
        )
    return PendingUpgrade(handshake, offered)
