"""Tests for broker.pki: root CA, server and device certificates, CSRs, certificate IDs."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aws_iot_mock import pki
from aws_iot_mock.errors import CertificateError

NOW = datetime(2026, 11, 26, 8, 20, 0, 123456, tzinfo=UTC)
AWS_NOT_AFTER = datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
_T = TypeVar("_T", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.create_root_ca(now=NOW)


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _spki(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ext(certificate: x509.Certificate, kind: type[_T]) -> x509.Extension[_T]:
    return certificate.extensions.get_extension_for_class(kind)


def _csr(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, subject: x509.Name
) -> x509.CertificateSigningRequest:
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def _pem(der: bytes, label: str) -> bytes:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode("ascii")


# --- certificate IDs and ARNs -----------------------------------------------------------------


@pytest.mark.parametrize("form", ["pem", "der", "object"])
def test_certificate_id_is_sha256_of_der(ca: pki.CertificateAuthority, form: str) -> None:
    issued = pki.issue_device_certificate(ca, now=NOW)
    certificate = _cert(issued.certificate_pem)
    der = certificate.public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest()
    arguments: dict[str, bytes | x509.Certificate] = {
        "pem": issued.certificate_pem,
        "der": der,
        "object": certificate,
    }
    argument = arguments[form]

    assert pki.certificate_id(argument) == expected
    assert issued.certificate_id == expected
    # Not the hash of the PEM text (moto#6858).
    assert expected != hashlib.sha256(issued.certificate_pem).hexdigest()


@pytest.mark.parametrize("garbage", [b"", b"hello", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_certificate_id_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(CertificateError):
        pki.certificate_id(garbage)


def test_certificate_arn() -> None:
    assert (
        pki.certificate_arn("eu-west-1", "123456789012", "ab" * 32)
        == f"arn:aws:iot:eu-west-1:123456789012:cert/{'ab' * 32}"
    )


@pytest.mark.parametrize("garbage", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----"])
def test_load_certificate_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(CertificateError, match=r"not a PEM X\.509 certificate"):
        pki.load_certificate(garbage)


# --- root CA ----------------------------------------------------------------------------------


def test_root_ca_shape(ca: pki.CertificateAuthority) -> None:
    certificate = _cert(ca.certificate_pem)
    public_key = certificate.public_key()

    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
    assert certificate.subject == certificate.issuer
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "aws-iot-mock Local Root CA"
    )
    assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "aws-iot-mock"
    )
    constraints = _ext(certificate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length is None
    usage = _ext(certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert _ext(certificate, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(public_key)
    )
    assert certificate.not_valid_before_utc == (NOW - timedelta(hours=1)).replace(microsecond=0)
    assert certificate.not_valid_after_utc >= AWS_NOT_AFTER
    certificate.verify_directly_issued_by(certificate)
    assert ca.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_root_ca_common_name_and_late_now() -> None:
    late = datetime(2040, 1, 1, tzinfo=UTC)
    certificate = _cert(pki.create_root_ca(common_name="Test CA", now=late).certificate_pem)

    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test CA"
    # Still 20+ years of life when created close to 2049.
    assert certificate.not_valid_after_utc >= late + timedelta(days=20 * 365)


def test_from_pem_roundtrip(ca: pki.CertificateAuthority) -> None:
    loaded = pki.CertificateAuthority.from_pem(ca.certificate_pem, ca.private_key_pem)

    assert loaded == ca
    assert loaded.certificate_id == pki.certificate_id(ca.certificate_pem)


def test_from_pem_rejects_mismatched_key(ca: pki.CertificateAuthority) -> None:
    other = pki.create_root_ca(now=NOW)

    with pytest.raises(CertificateError, match="does not match"):
        pki.CertificateAuthority.from_pem(ca.certificate_pem, other.private_key_pem)


def test_from_pem_rejects_non_ca(ca: pki.CertificateAuthority) -> None:
    leaf = pki.issue_device_certificate(ca, now=NOW)
    assert leaf.private_key_pem is not None

    with pytest.raises(CertificateError, match="not a CA"):
        pki.CertificateAuthority.from_pem(leaf.certificate_pem, leaf.private_key_pem)


@pytest.mark.parametrize(
    ("certificate_pem", "key_pem", "message"),
    [
        (b"junk", None, "not a PEM X.509 certificate"),
        (None, b"junk", "not an unencrypted PEM private key"),
    ],
)
def test_from_pem_rejects_garbage(
    ca: pki.CertificateAuthority, certificate_pem: bytes | None, key_pem: bytes | None, message: str
) -> None:
    with pytest.raises(CertificateError, match=message):
        pki.CertificateAuthority.from_pem(
            certificate_pem or ca.certificate_pem, key_pem or ca.private_key_pem
        )


def test_naive_now_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pki.create_root_ca(now=datetime(2026, 1, 1))  # naive on purpose


# --- server certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "key_class", "key_encipherment"),
    [
        (pki.KeyType.RSA, rsa.RSAPublicKey, True),
        (pki.KeyType.ECDSA, ec.EllipticCurvePublicKey, False),
    ],
)
def test_server_certificate(
    ca: pki.CertificateAuthority,
    key_type: pki.KeyType,
    key_class: type[object],
    key_encipherment: bool,
) -> None:
    names = ["localhost", "iot.local", "127.0.0.1", "::1", "LocalHost", "0:0::1"]
    issued = pki.issue_server_certificate(ca, names, key_type, now=NOW)
    certificate = _cert(issued.certificate_pem)
    ca_certificate = _cert(ca.certificate_pem)

    certificate.verify_directly_issued_by(ca_certificate)
    assert isinstance(certificate.public_key(), key_class)
    if key_type is pki.KeyType.RSA:
        assert certificate.public_key().key_size == 2048  # type: ignore[union-attr]
    else:
        assert certificate.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    san = _ext(certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "iot.local"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    assert list(_ext(certificate, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    constraints = _ext(certificate, x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    assert _ext(certificate, x509.KeyUsage).value.key_encipherment is key_encipherment
    assert _ext(certificate, x509.AuthorityKeyIdentifier).value.key_identifier == (
        _ext(ca_certificate, x509.SubjectKeyIdentifier).value.digest
    )
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert timedelta(days=824) < lifetime <= timedelta(days=826)
    assert issued.private_key_pem is not None
    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pki.key_matches_certificate(issued.private_key_pem, certificate)
    assert issued.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["localhost"], ("localhost",)),
        (["Localhost", "localhost", "LOCALHOST"], ("Localhost",)),
        ([" a.example ", "b.example", "A.EXAMPLE"], ("a.example", "b.example")),
        (["::1", "0:0:0::1", "127.0.0.1"], ("::1", "127.0.0.1")),
        (["*.iot.local", "iot.local"], ("*.iot.local", "iot.local")),
    ],
)
def test_normalize_server_names(names: list[str], expected: tuple[str, ...]) -> None:
    assert pki.normalize_server_names(names) == expected


@pytest.mark.parametrize("names", [[], [""], ["  "], ["bücher.example"]])
def test_normalize_server_names_refuses(names: list[str]) -> None:
    with pytest.raises(CertificateError):
        pki.normalize_server_names(names)


def test_server_name_set_is_case_insensitive() -> None:
    assert pki.server_name_set(["A", "b", "::1"]) == pki.server_name_set(["0::1", "B", "a", "a"])
    assert pki.server_name_set(["a"]) != pki.server_name_set(["a", "b"])


# --- device certificates ----------------------------------------------------------------------


def _check_device_certificate(
    ca: pki.CertificateAuthority, certificate: x509.Certificate, subject: x509.Name | None = None
) -> None:
    certificate.verify_directly_issued_by(_cert(ca.certificate_pem))
    assert certificate.not_valid_after_utc == AWS_NOT_AFTER
    assert certificate.not_valid_before_utc == (NOW - timedelta(minutes=1)).replace(microsecond=0)
    expected_subject = subject or x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")]
    )
    assert certificate.subject == expected_subject
    assert list(_ext(certificate, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not _ext(certificate, x509.BasicConstraints).value.ca
    assert _ext(certificate, x509.AuthorityKeyIdentifier).value.key_identifier is not None


def test_device_certificate_generated_key(ca: pki.CertificateAuthority) -> None:
    issued = pki.issue_device_certificate(ca, now=NOW)
    certificate = _cert(issued.certificate_pem)

    _check_device_certificate(ca, certificate)
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
    assert issued.private_key_pem is not None
    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pki.key_matches_certificate(issued.private_key_pem, certificate)
    assert serialization.load_pem_public_key(issued.public_key_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == _spki(public_key)


def test_device_serials_are_random(ca: pki.CertificateAuthority) -> None:
    first = _cert(pki.issue_device_certificate(ca, now=NOW).certificate_pem)
    second = _cert(pki.issue_device_certificate(ca, now=NOW).certificate_pem)

    assert first.serial_number != second.serial_number
    assert first.serial_number.bit_length() > 64


@pytest.mark.parametrize(
    "private_key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rsa2048"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="p256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="p384"),
    ],
)
def test_device_certificate_given_public_key(
    ca: pki.CertificateAuthority, private_key: object
) -> None:
    key = private_key()  # type: ignore[operator]
    given = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    issued = pki.issue_device_certificate(ca, public_key_pem=given, now=NOW)
    certificate = _cert(issued.certificate_pem)

    _check_device_certificate(ca, certificate)
    assert issued.private_key_pem is None
    assert issued.public_key_pem == given
    assert _spki(certificate.public_key()) == _spki(key.public_key())


@pytest.mark.parametrize(
    ("public_key_pem", "message"),
    [
        (b"junk", "not a PEM public key"),
        (
            rsa.generate_private_key(65537, 1024)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "at least 2048 bits",
        ),
        (
            ec.generate_private_key(ec.SECP256K1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "P-256, P-384 or P-521",
        ),
    ],
)
def test_device_certificate_refuses_bad_public_key(
    ca: pki.CertificateAuthority, public_key_pem: bytes, message: str
) -> None:
    with pytest.raises(CertificateError, match=message):
        pki.issue_device_certificate(ca, public_key_pem=public_key_pem, now=NOW)


# --- CSRs -------------------------------------------------------------------------------------

_DEVICE_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp"),
        x509.NameAttribute(NameOID.COMMON_NAME, "sensor-42"),
    ]
)


@pytest.mark.parametrize(
    ("private_key", "subject"),
    [
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP256R1()), _DEVICE_SUBJECT, id="ec-subject"
        ),
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), _DEVICE_SUBJECT, id="rsa"),
        pytest.param(
            lambda: ec.generate_private_key(ec.SECP256R1()), x509.Name([]), id="empty-subject"
        ),
    ],
)
def test_sign_csr_uses_csr_key(
    ca: pki.CertificateAuthority, private_key: object, subject: x509.Name
) -> None:
    key = private_key()  # type: ignore[operator]
    csr = _csr(key, subject)

    issued = pki.sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM), now=NOW)
    certificate = _cert(issued.certificate_pem)

    _check_device_certificate(ca, certificate, subject if len(subject) else None)
    assert _spki(certificate.public_key()) == _spki(csr.public_key())
    assert _spki(certificate.public_key()) == _spki(key.public_key())
    assert issued.private_key_pem is None
    assert issued.certificate_id == pki.certificate_id(certificate)


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"junk",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_sign_csr_refuses_garbage(ca: pki.CertificateAuthority, garbage: bytes) -> None:
    with pytest.raises(CertificateError, match="is not a PEM certificate signing request"):
        pki.sign_csr(ca, garbage, now=NOW)


def test_sign_csr_refuses_certificate_pem(ca: pki.CertificateAuthority) -> None:
    with pytest.raises(CertificateError, match="is not a PEM certificate signing request"):
        pki.sign_csr(ca, ca.certificate_pem, now=NOW)


def test_sign_csr_refuses_bad_signature(ca: pki.CertificateAuthority) -> None:
    key = rsa.generate_private_key(65537, 2048)
    der = bytearray(_csr(key, _DEVICE_SUBJECT).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the RSA signature
    tampered = _pem(bytes(der), "CERTIFICATE REQUEST")
    assert not x509.load_pem_x509_csr(tampered).is_signature_valid

    with pytest.raises(CertificateError, match="signature is invalid"):
        pki.sign_csr(ca, tampered, now=NOW)


def test_sign_csr_refuses_weak_key(ca: pki.CertificateAuthority) -> None:
    csr = _csr(rsa.generate_private_key(65537, 1024), _DEVICE_SUBJECT)

    with pytest.raises(CertificateError, match="at least 2048 bits"):
        pki.sign_csr(ca, csr.public_bytes(serialization.Encoding.PEM), now=NOW)


def test_ca_methods_delegate(ca: pki.CertificateAuthority) -> None:
    csr = _csr(ec.generate_private_key(ec.SECP256R1()), _DEVICE_SUBJECT)

    server = ca.issue_server_certificate(["localhost"], pki.KeyType.ECDSA, now=NOW)
    device = ca.issue_device_certificate(now=NOW)
    signed = ca.sign_csr(csr.public_bytes(serialization.Encoding.PEM), now=NOW)

    for issued in (server, device, signed):
        _cert(issued.certificate_pem).verify_directly_issued_by(_cert(ca.certificate_pem))
