"""The front door's accept/refuse rules, as tables; handshake errors are real OpenSSL errors."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.tls.context import ServerCredentials, create_server_context
from aws_iot_mock.tls.security_policies import get_security_policy
from aws_iot_mock.tls.verdicts import (
    ALERT_ACCESS_DENIED,
    ALERT_CERTIFICATE_REVOKED,
    ALERT_CERTIFICATE_UNKNOWN,
    Refusal,
    check_registration,
    check_sni,
    classify_handshake_error,
    plaintext_alert_record,
    sni_alert,
)

ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
DOMAIN = "iot.example.com"
ACCEPTED = frozenset({ENDPOINT, DOMAIN})
CERT_ID = "ab" * 32

TLS12 = "IoTSecurityPolicy_TLS12_1_2_2022_10"
TLS13_ONLY = "IoTSecurityPolicy_TLS13_1_3_2022_10"
TLS13_AND_12 = "IoTSecurityPolicy_TLS13_1_2_2022_10"


# --- SNI -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_name", "require_sni", "expected"),
    [
        (None, True, Reason.SNI_MISSING),
        (None, False, None),
        (ENDPOINT, True, None),
        (ENDPOINT, False, None),
        (DOMAIN, True, None),
        (ENDPOINT.upper(), True, None),
        ("IoT.Example.COM", True, None),
        ("wrong.example.com", True, Reason.SNI_MISMATCH),
        ("wrong.example.com", False, Reason.SNI_MISMATCH),
        (ENDPOINT + ".", True, Reason.SNI_MISMATCH),
        ("", True, Reason.SNI_MISMATCH),
    ],
)
def test_check_sni(server_name: str | None, require_sni: bool, expected: Reason | None) -> None:
    refusal = check_sni(server_name, ACCEPTED, require_sni=require_sni)
    if expected is None:
        assert refusal is None
        assert sni_alert(server_name, ACCEPTED, require_sni=require_sni) is None
    else:
        assert refusal is not None
        assert refusal.reason is expected
        assert sni_alert(server_name, ACCEPTED, require_sni=require_sni) == (
            ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        )


def test_sni_mismatch_details_name_the_sent_and_expected_names() -> None:
    refusal = check_sni("Wrong.Example.com", ACCEPTED, require_sni=True)
    assert refusal is not None
    assert "'Wrong.Example.com'" in refusal.details  # as sent, not lower-cased
    assert ENDPOINT in refusal.details
    assert DOMAIN in refusal.details


def test_sni_missing_details_name_the_endpoint() -> None:
    refusal = check_sni(None, ACCEPTED, require_sni=True)
    assert refusal is not None
    assert ENDPOINT in refusal.details


def test_sni_alert_is_unrecognized_name() -> None:
    assert int(ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME) == 112
    assert sni_alert("nope", ACCEPTED, require_sni=False) == 112


# --- registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "alert"),
    [
        (None, Reason.CERTIFICATE_NOT_REGISTERED, ALERT_CERTIFICATE_UNKNOWN),
        ("INACTIVE", Reason.CERTIFICATE_NOT_ACTIVE, ALERT_ACCESS_DENIED),
        ("REVOKED", Reason.CERTIFICATE_NOT_ACTIVE, ALERT_CERTIFICATE_REVOKED),
        ("PENDING_ACTIVATION", Reason.CERTIFICATE_NOT_ACTIVE, ALERT_ACCESS_DENIED),
        ("PENDING_TRANSFER", Reason.CERTIFICATE_NOT_ACTIVE, ALERT_ACCESS_DENIED),
    ],
)
def test_check_registration_refusals(status: str | None, reason: Reason, alert: int) -> None:
    verdict = check_registration(CERT_ID, status)
    assert verdict is not None
    assert verdict.refusal.reason is reason
    assert verdict.alert == alert
    assert CERT_ID in verdict.refusal.details
    if status is not None:
        assert status in verdict.refusal.details


def test_check_registration_active_is_accepted() -> None:
    assert check_registration(CERT_ID, "ACTIVE") is None


def test_alert_numbers_are_rfc_values() -> None:
    assert (ALERT_CERTIFICATE_UNKNOWN, ALERT_CERTIFICATE_REVOKED, ALERT_ACCESS_DENIED) == (
        46,
        44,
        49,
    )


@pytest.mark.parametrize(
    ("description", "record"),
    [
        (44, b"\x15\x03\x03\x00\x02\x02\x2c"),
        (46, b"\x15\x03\x03\x00\x02\x02\x2e"),
        (49, b"\x15\x03\x03\x00\x02\x02\x31"),
    ],
)
def test_plaintext_alert_record(description: int, record: bytes) -> None:
    assert plaintext_alert_record(description) == record


# --- classify_handshake_error: synthetic errors for the table's less reachable rows -----------


def _ssl_error(reason: str | None) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] synthetic")
    # OpenSSL-raised errors carry reason None when OpenSSL names none; typeshed says str.
    exc.reason = reason  # type: ignore[assignment]
    return exc


@pytest.mark.parametrize(
    ("openssl_reason", "expected"),
    [
        ("NO_SHARED_CIPHER", Reason.NO_SHARED_CIPHER),
        ("UNSUPPORTED_PROTOCOL", Reason.TLS_VERSION_NOT_SUPPORTED),
        ("VERSION_TOO_LOW", Reason.TLS_VERSION_NOT_SUPPORTED),
        ("PEER_DID_NOT_RETURN_A_CERTIFICATE", Reason.CLIENT_CERTIFICATE_MISSING),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", Reason.CLIENT_CERTIFICATE_MISSING),
        ("WRONG_VERSION_NUMBER", Reason.HANDSHAKE_FAILED),
        (None, Reason.HANDSHAKE_FAILED),
    ],
)
def test_classify_synthetic(openssl_reason: str | None, expected: Reason) -> None:
    refusal = classify_handshake_error(_ssl_error(openssl_reason))
    assert refusal.reason is expected
    assert f"OpenSSL: {openssl_reason or 'SSLError'}" in refusal.details


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (9, Reason.CLIENT_CERTIFICATE_EXPIRED),  # X509_V_ERR_CERT_NOT_YET_VALID
        (10, Reason.CLIENT_CERTIFICATE_EXPIRED),  # X509_V_ERR_CERT_HAS_EXPIRED
        (20, Reason.CLIENT_CERTIFICATE_UNTRUSTED),  # unable to get local issuer certificate
        (18, Reason.CLIENT_CERTIFICATE_UNTRUSTED),  # self-signed certificate
    ],
)
def test_classify_synthetic_verify_errors(code: int, expected: Reason) -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.reason = "CERTIFICATE_VERIFY_FAILED"
    exc.verify_code = code
    exc.verify_message = "some message"
    refusal = classify_handshake_error(exc)
    assert refusal.reason is expected
    assert "some message" in refusal.details


# --- classify_handshake_error: real OpenSSL errors over MemoryBIO -----------------------------


@dataclass(frozen=True)
class Pki:
    certs: CertsDirectory
    credentials: ServerCredentials
    device_cert: Path
    device_key: Path
    foreign_cert: Path
    foreign_key: Path
    expired_cert: Path
    expired_key: Path
    not_yet_valid_cert: Path


def _write_pair(directory: Path, name: str, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    cert_path = directory / f"{name}.cert.pem"
    key_path = directory / f"{name}.private.key"
    write_public_file(cert_path, cert_pem)
    write_private_key(key_path, key_pem)
    return cert_path, key_path


def _cert_with_validity(
    ca: pki.CertificateAuthority,
    key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> bytes:
    """A client certificate signed by ``ca`` with the given validity, built directly."""
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("verdict-pki")
    certs = CertsDirectory(directory / "certs")
    ca = certs.ensure_root_ca()
    certs.ensure_server_certificates(["localhost"])
    credentials = ServerCredentials(
        rsa_cert_path=certs.server_rsa_cert_path,
        rsa_key_path=certs.server_rsa_key_path,
        ecdsa_cert_path=certs.server_ecdsa_cert_path,
        ecdsa_key_path=certs.server_ecdsa_key_path,
        client_ca_path=certs.root_ca_path,
    )
    device = pki.issue_device_certificate(ca)
    assert device.private_key_pem is not None
    device_cert, device_key = _write_pair(
        directory, "device", device.certificate_pem, device.private_key_pem
    )

    other_ca = pki.create_root_ca(common_name="Some Other CA")
    foreign = pki.issue_device_certificate(other_ca)
    assert foreign.private_key_pem is not None
    foreign_cert, foreign_key = _write_pair(
        directory, "foreign", foreign.certificate_pem, foreign.private_key_pem
    )

    key = ec.generate_private_key(ec.SECP256R1())
    utc = dt.UTC
    expired_pem = _cert_with_validity(
        ca, key, dt.datetime(2000, 1, 1, tzinfo=utc), dt.datetime(2001, 1, 1, tzinfo=utc)
    )
    expired_cert, expired_key = _write_pair(directory, "expired", expired_pem, _key_pem(key))
    future_pem = _cert_with_validity(
        ca, key, dt.datetime(2090, 1, 1, tzinfo=utc), dt.datetime(2091, 1, 1, tzinfo=utc)
    )
    not_yet_valid_cert, _ = _write_pair(directory, "future", future_pem, _key_pem(key))
    return Pki(
        certs,
        credentials,
        device_cert,
        device_key,
        foreign_cert,
        foreign_key,
        expired_cert,
        expired_key,
        not_yet_valid_cert,
    )


def _client(
    cert: Path | None = None,
    key: Path | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The server's certificate is not what these tests judge.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def server_handshake_error(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> ssl.SSLError | None:
    """Run a full handshake over MemoryBIOs; return the server's error, or None on success."""
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(client_in, client_out, server_hostname=ENDPOINT)
    server = server_ctx.wrap_bio(server_in, server_out, server_side=True)
    client_done = server_done = client_failed = False
    for _ in range(10):
        if not (client_done or client_failed):
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                client_failed = True  # its alert is in client_out, for the server to read
        server_in.write(client_out.read())
        if not server_done:
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return exc
        client_in.write(server_out.read())
        if client_done and server_done:
            return None
    raise AssertionError("the handshake neither finished nor failed")


def server_error_from_bytes(server_ctx: ssl.SSLContext, data: bytes) -> ssl.SSLError:
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(server_in, server_out, server_side=True)
    server_in.write(data)
    server_in.write_eof()
    with pytest.raises(ssl.SSLError) as info:
        server.do_handshake()
    return info.value


def _server(test_pki: Pki, policy: str) -> ssl.SSLContext:
    return create_server_context(get_security_policy(policy), 8883, test_pki.credentials)


@pytest.mark.parametrize("policy", [TLS12, TLS13_ONLY, TLS13_AND_12])
def test_good_device_handshake_succeeds(test_pki: Pki, policy: str) -> None:
    client = _client(test_pki.device_cert, test_pki.device_key)
    assert server_handshake_error(_server(test_pki, policy), client) is None


@dataclass(frozen=True)
class Case:
    policy: str
    client: str
    expected: Reason


HANDSHAKE_CASES = [
    Case(TLS12, "no cert", Reason.CLIENT_CERTIFICATE_MISSING),
    Case(TLS13_ONLY, "no cert", Reason.CLIENT_CERTIFICATE_MISSING),
    Case(TLS13_AND_12, "no cert", Reason.CLIENT_CERTIFICATE_MISSING),
    Case(TLS12, "tls1.3 only", Reason.TLS_VERSION_NOT_SUPPORTED),
    Case(TLS13_ONLY, "tls1.2 only", Reason.TLS_VERSION_NOT_SUPPORTED),
    Case(TLS12, "tls1.1 only", Reason.TLS_VERSION_NOT_SUPPORTED),
    Case(TLS12, "camellia/aria only", Reason.NO_SHARED_CIPHER),
    Case(TLS13_AND_12, "camellia/aria only", Reason.NO_SHARED_CIPHER),
    Case(TLS12, "foreign CA", Reason.CLIENT_CERTIFICATE_UNTRUSTED),
    Case(TLS13_ONLY, "foreign CA", Reason.CLIENT_CERTIFICATE_UNTRUSTED),
    Case(TLS12, "expired", Reason.CLIENT_CERTIFICATE_EXPIRED),
    Case(TLS13_ONLY, "expired", Reason.CLIENT_CERTIFICATE_EXPIRED),
    Case(TLS12, "not yet valid", Reason.CLIENT_CERTIFICATE_EXPIRED),
]


def _client_for(test_pki: Pki, kind: str) -> ssl.SSLContext:
    device = (test_pki.device_cert, test_pki.device_key)
    if kind == "no cert":
        return _client()
    if kind == "tls1.3 only":
        return _client(*device, minimum=ssl.TLSVersion.TLSv1_3)
    if kind == "tls1.2 only":
        return _client(*device, maximum=ssl.TLSVersion.TLSv1_2)
    if kind == "tls1.1 only":
        ctx = _client(*device, ciphers="DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        return ctx
    if kind == "camellia/aria only":
        return _client(*device, maximum=ssl.TLSVersion.TLSv1_2, ciphers="CAMELLIA:ARIA")
    if kind == "foreign CA":
        return _client(test_pki.foreign_cert, test_pki.foreign_key)
    if kind == "expired":
        return _client(test_pki.expired_cert, test_pki.expired_key)
    if kind == "not yet valid":
        return _client(test_pki.not_yet_valid_cert, test_pki.expired_key)
    raise AssertionError(kind)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    "case", HANDSHAKE_CASES, ids=[f"{c.policy[18:]}-{c.client}" for c in HANDSHAKE_CASES]
)
def test_classify_real_handshake_errors(test_pki: Pki, case: Case) -> None:
    exc = server_handshake_error(_server(test_pki, case.policy), _client_for(test_pki, case.client))
    assert exc is not None, "the handshake unexpectedly succeeded"
    refusal = classify_handshake_error(exc)
    assert refusal == Refusal(case.expected, refusal.details)
    assert refusal.details, refusal


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
        b"\x17\x03\x03\x00\x05hello",
        bytes(range(200)),
        b"\x16\x03\x01",
    ],
)
def test_classify_garbage_is_handshake_failed(test_pki: Pki, garbage: bytes) -> None:
    exc = server_error_from_bytes(_server(test_pki, TLS12), garbage)
    refusal = classify_handshake_error(exc)
    assert refusal.reason is Reason.HANDSHAKE_FAILED
    assert "OpenSSL:" in refusal.details
