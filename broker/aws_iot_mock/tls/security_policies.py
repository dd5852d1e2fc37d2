"""AWS IoT Core's predefined TLS security policies, as data.

Every rule about which TLS versions and cipher suites a domain configuration accepts lives in this
file and nowhere else. The table is transcribed from the AWS IoT developer guide, "Transport
security in AWS IoT Core" (https://docs.aws.amazon.com/iot/latest/developerguide/transport-security.html).
Suite names are OpenSSL's, as AWS prints them.

AWS does not support custom security policies, so neither do we: a policy is chosen by name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SECURITY_POLICY",
    "SECURITY_POLICIES",
    "TLS13_SUITES",
    "SecurityPolicy",
    "TlsVersion",
    "get_security_policy",
]


class TlsVersion(enum.Enum):
    """A TLS protocol version, named as AWS's table names it."""

    TLS1_2 = "TLSv1.2"
    TLS1_3 = "TLSv1.3"


# The three TLS 1.3 suites AWS lists. OpenSSL 3's default TLS 1.3 suite list is exactly these
# three, and CPython (3.11) offers no way to change it, so every context gets them when 1.3 is on.
TLS13_SUITES: tuple[str, ...] = (
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
)

# The 18 TLS 1.2 suites of IoTSecurityPolicy_TLS12_1_2_2022_10 / TLS13_1_2_2022_10, in the order
# the server prefers them. AWS's 2021 page marked the first two "(recommended)".
_TLS12_SUITES: tuple[str, ...] = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "AES128-GCM-SHA256",
    "AES128-SHA256",
    "AES128-SHA",
    "AES256-GCM-SHA384",
    "AES256-SHA256",
    "AES256-SHA",
)

# Legacy 2016 policy on ports 8443/8883: the table has no tick for AES128-SHA256 there.
_TLS12_SUITES_2016_MQTT = tuple(s for s in _TLS12_SUITES if s != "AES128-SHA256")
# Legacy 2015 policy: every 2022 suite plus DHE-RSA-AES256-SHA, on every port.
_TLS12_SUITES_2015 = (*_TLS12_SUITES, "DHE-RSA-AES256-SHA")

# Ports that use the "8443/8883" column of the legacy policies; any other port (443, or a port
# the user picks for a local listener) uses the 443 column. Our MQTT listener is 8883 by default.
_MQTT_AND_HTTPS_PORTS = frozenset({8443, 8883})


@dataclass(frozen=True)
class SecurityPolicy:
    """One named AWS IoT TLS security policy.

    Attributes:
        name: the AWS name, e.g. ``IoTSecurityPolicy_TLS12_1_2_2022_10``.
        versions: the TLS versions the policy accepts.
        tls12_suites: OpenSSL names of the TLS 1.2 suites, in server preference order, for the
            443 column of the table.
        tls12_suites_mqtt_ports: the same for ports 8443/8883 where a legacy policy differs.
        legacy: True for the two 2015/2016 policies AWS keeps only in some regions.
    """

    name: str
    versions: frozenset[TlsVersion]
    tls12_suites: tuple[str, ...]
    tls12_suites_mqtt_ports: tuple[str, ...]
    legacy: bool = False

    def suites_for_port(self, port: int) -> tuple[str, ...]:
        """Return the TLS 1.2 suites this policy accepts on ``port`` (empty if 1.2 is off)."""
        if TlsVersion.TLS1_2 not in self.versions:
            return ()
        if port in _MQTT_AND_HTTPS_PORTS:
            return self.tls12_suites_mqtt_ports
        return self.tls12_suites

    @property
    def tls13_suites(self) -> tuple[str, ...]:
        """The TLS 1.3 suites this policy accepts (empty if 1.3 is off)."""
        return TLS13_SUITES if TlsVersion.TLS1_3 in self.versions else ()


_BOTH = frozenset({TlsVersion.TLS1_2, TlsVersion.TLS1_3})
_ONLY_12 = frozenset({TlsVersion.TLS1_2})
_ONLY_13 = frozenset({TlsVersion.TLS1_3})

SECURITY_POLICIES: dict[str, SecurityPolicy] = {
    policy.name: policy
    for policy in (
        SecurityPolicy("IoTSecurityPolicy_TLS13_1_3_2022_10", _ONLY_13, (), ()),
        SecurityPolicy("IoTSecurityPolicy_TLS13_1_2_2022_10", _BOTH, _TLS12_SUITES, _TLS12_SUITES),
        SecurityPolicy(
            "IoTSecurityPolicy_TLS12_1_2_2022_10", _ONLY_12, _TLS12_SUITES, _TLS12_SUITES
        ),
        # "Despite the 1_0 in their names, the current table ticks only TLS 1.2 for them."
        SecurityPolicy(
            "IoTSecurityPolicy_TLS12_1_0_2016_01",
            _ONLY_12,
            _TLS12_SUITES,
            _TLS12_SUITES_2016_MQTT,
            legacy=True,
        ),
        SecurityPolicy(
            "IoTSecurityPolicy_TLS12_1_0_2015_01",
            _ONLY_12,
            _TLS12_SUITES_2015,
            _TLS12_SUITES_2015,
            legacy=True,
        ),
    )
}

# AWS's own default for new domain configurations is IoTSecurityPolicy_TLS13_1_2_2022_10; this
# project's brief makes the strict TLS 1.2-only policy the default. The config can pick any.
DEFAULT_SECURITY_POLICY = "IoTSecurityPolicy_TLS12_1_2_2022_10"


def get_security_policy(name: str) -> SecurityPolicy:
    """Return the policy called ``name``.

    Raises:
        KeyError: if AWS has no policy of that name (AWS rejects custom policies too).
    """
    return SECURITY_POLICIES[name]
