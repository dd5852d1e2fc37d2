"""AWS IoT's TLS security policy table, written out literally, against the code's data and contexts.

The expected values below are transcribed from AWS's "Transport security in AWS IoT Core" table,
independently of ``aws_iot_mock.tls.security_policies``: a typo in either shows up here.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from aws_iot_mock.certs_dir import CertsDirectory
from aws_iot_mock.tls.context import ServerCredentials, create_server_context
from aws_iot_mock.tls.security_policies import (
    DEFAULT_SECURITY_POLICY,
    SECURITY_POLICIES,
    TLS13_SUITES,
    TlsVersion,
    get_security_policy,
)

# The 18 TLS 1.2 suites of IoTSecurityPolicy_TLS12_1_2_2022_10, in AWS's table order.
AWS_TLS12_SUITES: tuple[str, ...] = (
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
AWS_TLS12_SUITES_2016_MQTT: tuple[str, ...] = tuple(
    s for s in AWS_TLS12_SUITES if s != "AES128-SHA256"
)
AWS_TLS12_SUITES_2015: tuple[str, ...] = (*AWS_TLS12_SUITES, "DHE-RSA-AES256-SHA")
AWS_TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)

V12 = TlsVersion.TLS1_2
V13 = TlsVersion.TLS1_3
PORTS = (443, 8443, 8883)


@dataclass(frozen=True)
class Expected:
    """One row of AWS's table: versions, and TLS 1.2 suites per port."""

    versions: frozenset[TlsVersion]
    suites_by_port: dict[int, frozenset[str]]


def _same_on_all_ports(suites: tuple[str, ...]) -> dict[int, frozenset[str]]:
    return dict.fromkeys(PORTS, frozenset(suites))


EXPECTED: dict[str, Expected] = {
    "IoTSecurityPolicy_TLS13_1_3_2022_10": Expected(frozenset({V13}), _same_on_all_ports(())),
    "IoTSecurityPolicy_TLS13_1_2_2022_10": Expected(
        frozenset({V12, V13}), _same_on_all_ports(AWS_TLS12_SUITES)
    ),
    "IoTSecurityPolicy_TLS12_1_2_2022_10": Expected(
        frozenset({V12}), _same_on_all_ports(AWS_TLS12_SUITES)
    ),
    "IoTSecurityPolicy_TLS12_1_0_2016_01": Expected(
        frozenset({V12}),
        {
            443: frozenset(AWS_TLS12_SUITES),
            8443: frozenset(AWS_TLS12_SUITES_2016_MQTT),
            8883: frozenset(AWS_TLS12_SUITES_2016_MQTT),
        },
    ),
    "IoTSecurityPolicy_TLS12_1_0_2015_01": Expected(
        frozenset({V12}), _same_on_all_ports(AWS_TLS12_SUITES_2015)
    ),
}

POLICY_PORTS = [(name, port) for name in EXPECTED for port in PORTS]


def test_expected_table_sizes() -> None:
    # Guards the literal table itself against an edit that drops a line.
    assert len(AWS_TLS12_SUITES) == len(set(AWS_TLS12_SUITES)) == 18
    assert len(AWS_TLS12_SUITES_2016_MQTT) == 17
    assert len(AWS_TLS12_SUITES_2015) == 19


def test_policy_names_are_exactly_aws_names() -> None:
    assert set(SECURITY_POLICIES) == set(EXPECTED)
    assert DEFAULT_SECURITY_POLICY in SECURITY_POLICIES


def test_unknown_policy_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        get_security_policy("IoTSecurityPolicy_Custom")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_policy_versions(name: str) -> None:
    policy = get_security_policy(name)
    assert policy.name == name
    assert policy.versions == EXPECTED[name].versions


@pytest.mark.parametrize(("name", "port"), POLICY_PORTS)
def test_policy_suites_for_port(name: str, port: int) -> None:
    policy = get_security_policy(name)
    suites = policy.suites_for_port(port)
    assert len(suites) == len(set(suites)), "duplicate suite"
    assert frozenset(suites) == EXPECTED[name].suites_by_port[port]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_policy_tls13_suites(name: str) -> None:
    policy = get_security_policy(name)
    expected = AWS_TLS13_SUITES if V13 in EXPECTED[name].versions else frozenset()
    assert frozenset(policy.tls13_suites) == expected
    assert frozenset(TLS13_SUITES) == AWS_TLS13_SUITES


@pytest.mark.parametrize("name", ["IoTSecurityPolicy_TLS13_1_2_2022_10", DEFAULT_SECURITY_POLICY])
def test_current_policies_keep_table_order(name: str) -> None:
    # The server prefers suites in the table's order (the first two are AWS's "recommended").
    assert get_security_policy(name).suites_for_port(8883) == AWS_TLS12_SUITES


def test_legacy_flag() -> None:
    legacy = {name for name, policy in SECURITY_POLICIES.items() if policy.legacy}
    assert legacy == {"IoTSecurityPolicy_TLS12_1_0_2016_01", "IoTSecurityPolicy_TLS12_1_0_2015_01"}


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> ServerCredentials:
    path: Path = tmp_path_factory.mktemp("policy-certs")
    certs = CertsDirectory(path)
    certs.ensure_root_ca()
    certs.ensure_server_certificates(["localhost"])
    return ServerCredentials(
        rsa_cert_path=certs.server_rsa_cert_path,
        rsa_key_path=certs.server_rsa_key_path,
        ecdsa_cert_path=certs.server_ecdsa_cert_path,
        ecdsa_key_path=certs.server_ecdsa_key_path,
        client_ca_path=certs.root_ca_path,
    )


@pytest.mark.parametrize(("name", "port"), POLICY_PORTS)
def test_server_context_matches_table(name: str, port: int, credentials: ServerCredentials) -> None:
    expected = EXPECTED[name]
    ctx = create_server_context(get_security_policy(name), port, credentials)

    ciphers = ctx.get_ciphers()
    # get_ciphers() reports the version a suite was introduced in (AES128-SHA says "SSLv3"):
    # everything that is not a TLS 1.3 suite is a TLS 1.2 suite here.
    tls13_names = {c["name"] for c in ciphers if c["protocol"] == "TLSv1.3"}
    tls12_names = {c["name"] for c in ciphers if c["protocol"] != "TLSv1.3"}
    if V12 in expected.versions:
        assert tls12_names == expected.suites_by_port[port]
    # OpenSSL always lists its TLS 1.3 suites; they are exactly AWS's three.
    assert tls13_names == AWS_TLS13_SUITES

    assert ctx.minimum_version == (
        ssl.TLSVersion.TLSv1_2 if V12 in expected.versions else ssl.TLSVersion.TLSv1_3
    )
    assert ctx.maximum_version == (
        ssl.TLSVersion.TLSv1_3 if V13 in expected.versions else ssl.TLSVersion.TLSv1_2
    )
    assert ctx.options & ssl.OP_NO_TICKET
    assert ctx.num_tickets == 0
    assert ctx.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("name", list(EXPECTED))
def test_server_context_sni_callback_is_installed_only_when_asked(
    name: str, credentials: ServerCredentials
) -> None:
    policy = get_security_policy(name)
    assert create_server_context(policy, 8883, credentials).sni_callback is None
    ctx = create_server_context(policy, 8883, credentials, sni_check=lambda _name: None)
    assert ctx.sni_callback is not None
