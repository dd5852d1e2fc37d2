"""Which protocol a TLS connection speaks, by door, ALPN and client certificate. Pure.

AWS IoT's data endpoint is one name with several doors ("Protocols, port mappings, and
authentication", https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html):

| door (port) | ALPN | client certificate | protocol |
|---|---|---|---|
| ``mqtt`` (8883) | any or none | required | MQTT, X.509 |
| ``https`` (8443) | any or none | required | HTTPS, X.509 |
| ``alpn`` (443) | ``x-amzn-mqtt-ca`` | yes | MQTT, X.509 |
| ``alpn`` (443) | ``x-amzn-http-ca`` | yes | HTTPS, X.509 |
| ``alpn`` (443) | none, ``http/1.1`` | no | HTTPS or MQTT over WebSocket, SigV4 |
| ``alpn`` (443) | ``mqtt`` | any | MQTT with custom authentication: not emulated |
| ``api`` (ours) | any or none | optional | the ``iot`` control-plane API, SigV4 |

"Clients that connect on port 443 with X.509 client certificate authentication must implement
the ALPN TLS extension and use the ALPN protocol name listed" (same page): a certificate on 443
without one of the two X.509 names is refused, and so is one of those names without a
certificate. Every rule of this table lives in ``choose_route``.
"""

from __future__ import annotations

import enum

from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.tls.verdicts import Refusal

__all__ = [
    "ALPN_HTTP_X509",
    "ALPN_MQTT_CUSTOM_AUTH",
    "ALPN_MQTT_X509",
    "DoorKind",
    "Route",
    "alpn_protocols_offered",
    "choose_route",
]

ALPN_MQTT_X509 = "x-amzn-mqtt-ca"
ALPN_HTTP_X509 = "x-amzn-http-ca"
ALPN_MQTT_CUSTOM_AUTH = "mqtt"
ALPN_HTTP_1_1 = "http/1.1"


class DoorKind(enum.Enum):
    """A kind of listener (``listeners[].door`` in the configuration)."""

    MQTT = "mqtt"
    HTTPS = "https"
    ALPN = "alpn"
    API = "api"

    @property
    def requires_client_certificate(self) -> bool:
        """8883 and 8443 are X.509-only; 443 decides after the handshake."""
        return self in (DoorKind.MQTT, DoorKind.HTTPS)

    @property
    def aws_port(self) -> int:
        """The port AWS serves this door on (legacy TLS policies differ between 443 and 8883)."""
        return {DoorKind.MQTT: 8883, DoorKind.HTTPS: 8443, DoorKind.ALPN: 443, DoorKind.API: 443}[
            self
        ]


class Route(enum.Enum):
    """The protocol handler a connection goes to once its handshake is accepted."""

    MQTT_X509 = "MQTT over TLS, X.509"
    HTTPS_X509 = "HTTPS, X.509"
    SIGV4 = "HTTPS or MQTT over WebSocket, SigV4"
    CONTROL_PLANE = "the iot control-plane API, SigV4"


def alpn_protocols_offered(door: DoorKind) -> tuple[str, ...]:
    """The ALPN names the server selects from, in preference order; () to ignore ALPN.

    The MQTT door ignores ALPN (8883 "doesn't need ALPN and must not require it"); the HTTPS
    door selects ``http/1.1`` so that curl and browsers settle on HTTP/1.1.
    """
    if door is DoorKind.ALPN:
        return (ALPN_MQTT_X509, ALPN_HTTP_X509, ALPN_HTTP_1_1, ALPN_MQTT_CUSTOM_AUTH)
    if door in (DoorKind.HTTPS, DoorKind.API):
        return (ALPN_HTTP_1_1,)
    return ()


def choose_route(door: DoorKind, alpn: str | None, *, has_certificate: bool) -> Route | Refusal:
    """Decide which handler serves a connection whose TLS handshake was accepted.

    Args:
        door: the listener's door.
        alpn: the negotiated ALPN protocol, or None.
        has_certificate: whether the client presented a certificate (already verified against
            the trusted CAs and the registry by the door).
    """
    if door is DoorKind.MQTT:
        return Route.MQTT_X509
    if door is DoorKind.HTTPS:
        return Route.HTTPS_X509
    if door is DoorKind.API:
        return Route.CONTROL_PLANE
    if alpn == ALPN_MQTT_CUSTOM_AUTH:
        return Refusal(
            Reason.CUSTOM_AUTH_NOT_EMULATED,
            "ALPN 'mqtt' on port 443 is MQTT with a custom authorizer; custom authentication "
            "is not emulated (use a client certificate with ALPN 'x-amzn-mqtt-ca')",
        )
    if alpn in (ALPN_MQTT_X509, ALPN_HTTP_X509):
        if not has_certificate:
            return Refusal(
                Reason.CLIENT_CERTIFICATE_MISSING,
                f"ALPN {alpn!r} on port 443 is X.509 authentication, but the client sent no "
                "certificate",
            )
        return Route.MQTT_X509 if alpn == ALPN_MQTT_X509 else Route.HTTPS_X509
    if has_certificate:
        offered = "no ALPN" if alpn is None else f"ALPN {alpn!r}"
        return Refusal(
            Reason.ALPN_REQUIRED,
            f"A client certificate on port 443 with {offered}: AWS IoT requires ALPN "
            f"'{ALPN_MQTT_X509}' (MQTT) or '{ALPN_HTTP_X509}' (HTTPS) there; port 8883 and 8443 "
            "need no ALPN",
        )
    return Route.SIGV4
