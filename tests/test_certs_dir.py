"""Tests for broker.certs_dir: layout, idempotent creation, file modes, and a real TLS handshake."""

from __future__ import annotations

import json
import os
import ssl
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.errors import CertificateError

NOW = datetime(2026, 11, 26, 8, 20, tzinfo=UTC)
NAMES = ["localhost", "127.0.0.1", "::1"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def certs(tmp_path: Path) -> CertsDirectory:
    return CertsDirectory(tmp_path / "certs")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _server_files(certs: CertsDirectory) -> dict[str, bytes]:
    paths = (
        certs.server_rsa_cert_path,
        certs.server_rsa_key_path,
        certs.server_ecdsa_cert_path,
        certs.server_ecdsa_key_path,
    )
    return {path.name: path.read_bytes() for path in paths}


def test_layout(tmp_path: Path) -> None:
    certs = CertsDirectory(tmp_path)

    assert certs.path == tmp_path
    assert certs.root_ca_path == tmp_path / "root-ca.pem"
    assert certs.root_ca_key_path == tmp_path / "root-ca.key"
    assert certs.server_rsa_cert_path == tmp_path / "server-rsa.pem"
    assert certs.server_rsa_key_path == tmp_path / "server-rsa.key"
    assert certs.server_ecdsa_cert_path == tmp_path / "server-ecdsa.pem"
    assert certs.server_ecdsa_key_path == tmp_path / "server-ecdsa.key"
    assert certs.server_names_path == tmp_path / "server-names.json"


# --- root CA ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_ensure_root_ca_creates_files(certs: CertsDirectory) -> None:
    ca = certs.ensure_root_ca(now=NOW)

    assert _mode(certs.path) == 0o700
    assert _mode(certs.root_ca_key_path) == 0o600
    assert _mode(certs.root_ca_path) == 0o644
    assert certs.root_ca_path.read_bytes() == ca.certificate_pem
    assert certs.root_ca_key_path.read_bytes() == ca.private_key_pem
    assert not [p.name for p in certs.path.iterdir() if p.name.endswith(".tmp")]


def test_ensure_root_ca_is_stable(certs: CertsDirectory) -> None:
    first = certs.ensure_root_ca(now=NOW)
    pem = certs.root_ca_path.read_bytes()
    key = certs.root_ca_key_path.read_bytes()

    second = certs.ensure_root_ca(now=NOW + timedelta(days=400))

    assert second == first
    assert certs.root_ca_path.read_bytes() == pem
    assert certs.root_ca_key_path.read_bytes() == key


@pytest.mark.parametrize("deleted", ["root-ca.pem", "root-ca.key"])
def test_ensure_root_ca_refuses_half_a_ca(certs: CertsDirectory, deleted: str) -> None:
    certs.ensure_root_ca(now=NOW)
    (certs.path / deleted).unlink()

    with pytest.raises(CertificateError, match=deleted):
        certs.ensure_root_ca(now=NOW)


def test_ensure_root_ca_refuses_mismatched_key(certs: CertsDirectory) -> None:
    certs.ensure_root_ca(now=NOW)
    write_private_key(certs.root_ca_key_path, pki.create_root_ca(now=NOW).private_key_pem)

    with pytest.raises(CertificateError, match="does not match"):
        certs.ensure_root_ca(now=NOW)


def test_an_existing_directory_is_made_private(tmp_path: Path) -> None:
    # It holds the root CA's private key: 0700 even if it was made 0755 (a Docker volume, mkdir).
    tmp_path.chmod(0o755)

    CertsDirectory(tmp_path).ensure_root_ca(now=NOW)

    assert _mode(tmp_path) == 0o700


# --- server certificates ----------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_ensure_server_certificates_creates_everything(certs: CertsDirectory) -> None:
    assert certs.ensure_server_certificates(NAMES, now=NOW) is True

    ca = certs.ensure_root_ca(now=NOW)
    for cert_path, key_path in (
        (certs.server_rsa_cert_path, certs.server_rsa_key_path),
        (certs.server_ecdsa_cert_path, certs.server_ecdsa_key_path),
    ):
        assert _mode(key_path) == 0o600
        assert _mode(cert_path) == 0o644
        certificate = pki.load_certificate(cert_path.read_bytes())
        certificate.verify_directly_issued_by(ca.certificate)
        assert pki.key_matches_certificate(key_path.read_bytes(), certificate)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
        assert len(san.value.get_values_for_type(x509.IPAddress)) == 2
    assert _mode(certs.root_ca_key_path) == 0o600
    assert json.loads(certs.server_names_path.read_text()) == {"names": NAMES}


@pytest.mark.parametrize(
    ("second_names", "reissued"),
    [
        (NAMES, False),
        (["LOCALHOST", "::1", "127.0.0.1", "localhost"], False),  # same set: case, order, dups
        (["0:0::1", "localhost", "127.0.0.1"], False),  # same IPv6 address, other spelling
        (["localhost", "127.0.0.1"], True),  # one fewer
        ([*NAMES, "iot.local"], True),  # one more
        (["example.com"], True),
    ],
)
def test_server_certificates_reissued_only_when_names_change(
    certs: CertsDirectory, second_names: list[str], reissued: bool
) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    before = _server_files(certs)

    assert certs.ensure_server_certificates(second_names, now=NOW) is reissued

    after = _server_files(certs)
    if reissued:
        assert all(after[name] != before[name] for name in before)
        assert json.loads(certs.server_names_path.read_text()) == {"names": second_names}
    else:
        assert after == before


@pytest.mark.parametrize(
    "damaged",
    [
        "server-rsa.pem",
        "server-rsa.key",
        "server-ecdsa.pem",
        "server-ecdsa.key",
        "server-names.json",
    ],
)
@pytest.mark.parametrize("how", ["delete", "corrupt"])
def test_server_certificates_reissued_when_files_damaged(
    certs: CertsDirectory, damaged: str, how: str
) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    path = certs.path / damaged
    if how == "delete":
        path.unlink()
    else:
        path.write_bytes(b"garbage")

    assert certs.ensure_server_certificates(NAMES, now=NOW) is True
    assert certs.ensure_server_certificates(NAMES, now=NOW) is False


def test_server_certificates_reissued_when_keys_swapped(certs: CertsDirectory) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    other = pki.issue_server_certificate(certs.ensure_root_ca(), NAMES, pki.KeyType.RSA, now=NOW)
    assert other.private_key_pem is not None
    write_private_key(certs.server_rsa_key_path, other.private_key_pem)

    assert certs.ensure_server_certificates(NAMES, now=NOW) is True


def test_server_certificates_reissued_for_new_root_ca(certs: CertsDirectory) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    old_root = certs.root_ca_path.read_bytes()
    certs.root_ca_path.unlink()
    certs.root_ca_key_path.unlink()

    assert certs.ensure_server_certificates(NAMES, now=NOW) is True

    assert certs.root_ca_path.read_bytes() != old_root
    new_root = pki.load_certificate(certs.root_ca_path.read_bytes())
    for path in (certs.server_rsa_cert_path, certs.server_ecdsa_cert_path):
        pki.load_certificate(path.read_bytes()).verify_directly_issued_by(new_root)


@pytest.mark.parametrize(
    ("later", "reissued"),
    [(timedelta(days=700), False), (timedelta(days=800), True), (timedelta(days=900), True)],
)
def test_server_certificates_renewed_before_expiry(
    certs: CertsDirectory, later: timedelta, reissued: bool
) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)

    assert certs.ensure_server_certificates(NAMES, now=NOW + later) is reissued


def test_server_certificates_refuse_empty_names(certs: CertsDirectory) -> None:
    with pytest.raises(CertificateError):
        certs.ensure_server_certificates([], now=NOW)


def test_a_full_check_is_recorded_and_trusted_while_the_files_are_unchanged(
    certs: CertsDirectory,
) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    checked = certs.path / ".checked.json"
    record = json.loads(checked.read_text())

    # Renewal is due 30 days before the server certificates (825 days) expire.
    assert datetime.fromisoformat(record["renew_at"]) == NOW + timedelta(days=825 - 30)
    assert _mode(checked) == 0o600
    checked.unlink()
    # The files are checked again (kept: they are current), and the verdict recorded again.
    assert certs.ensure_server_certificates(NAMES, now=NOW) is False
    assert json.loads(checked.read_text()) == record


@pytest.mark.parametrize(
    "record",
    [
        {"digest": "0" * 64, "renew_at": (NOW + timedelta(days=700)).isoformat()},
        {"digest": None, "renew_at": (NOW + timedelta(days=700)).isoformat()},
        {"renew_at": (NOW + timedelta(days=700)).isoformat()},
        "garbage",
    ],
)
def test_a_record_that_does_not_vouch_for_the_files_is_not_trusted(
    certs: CertsDirectory, record: object
) -> None:
    # A CA key that no longer matches its certificate is refused even if the record is stale.
    certs.ensure_server_certificates(NAMES, now=NOW)
    write_private_key(certs.root_ca_key_path, pki.create_root_ca(now=NOW).private_key_pem)
    (certs.path / ".checked.json").write_text(json.dumps(record))

    with pytest.raises(CertificateError, match="does not match"):
        certs.ensure_server_certificates(NAMES, now=NOW)


def test_a_record_is_not_trusted_past_its_renewal_time(certs: CertsDirectory) -> None:
    certs.ensure_server_certificates(NAMES, now=NOW)
    checked = certs.path / ".checked.json"
    record = json.loads(checked.read_text())
    record["renew_at"] = NOW.isoformat()  # says renewal is due now
    checked.write_text(json.dumps(record))

    # The full check finds the certificates current (renewal due in 795 days) and records that.
    assert certs.ensure_server_certificates(NAMES, now=NOW) is False
    assert json.loads(checked.read_text())["renew_at"] != NOW.isoformat()


# --- file helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_write_helpers_set_exact_modes(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_private_key(tmp_path / "k.key", b"secret")
        write_public_file(str(tmp_path / "c.pem"), b"public")  # str paths work too
    finally:
        os.umask(old)

    assert _mode(tmp_path / "k.key") == 0o600
    assert _mode(tmp_path / "c.pem") == 0o644
    assert (tmp_path / "k.key").read_bytes() == b"secret"
    assert (tmp_path / "c.pem").read_bytes() == b"public"


def test_write_private_key_tightens_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"old")
    path.chmod(0o644)

    write_private_key(path, b"new")

    assert _mode(path) == 0o600
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_write_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    (target / "child").mkdir(parents=True)  # os.replace cannot replace a non-empty directory

    with pytest.raises(OSError):
        write_public_file(target, b"data")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


# --- end to end: mutual TLS over memory BIOs --------------------------------------------------


def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a TLS handshake between two SSLObjects by shuttling bytes between memory BIOs."""
    client_in, client_out, server_in, server_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client_done = server_done = False
    for _ in range(10):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        if not server_done:
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
        client_in.write(server_out.read())
        if client_done and server_done:
            break
    assert client_done
    assert server_done
    # Application data both ways: with TLS 1.3 the server's verdict on the client certificate
    # reaches the client only after the handshake.
    client.write(b"ping")
    server_in.write(client_out.read())
    assert server.read(4) == b"ping"
    server.write(b"pong")
    client_in.write(server_out.read())
    assert client.read(4) == b"pong"
    return client, server


def _server_context(certs: CertsDirectory, key_type: pki.KeyType) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if key_type is pki.KeyType.RSA:
        context.load_cert_chain(certs.server_rsa_cert_path, certs.server_rsa_key_path)
    else:
        context.load_cert_chain(certs.server_ecdsa_cert_path, certs.server_ecdsa_key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=certs.root_ca_path)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _client_context(certs: CertsDirectory, version: ssl.TLSVersion) -> ssl.SSLContext:
    device_pem, device_key = certs.path / "device.pem", certs.path / "device.key"
    if not device_pem.exists():
        device = pki.issue_device_certificate(certs.ensure_root_ca())
        assert device.private_key_pem is not None
        write_private_key(device_key, device.private_key_pem)
        write_public_file(device_pem, device.certificate_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + hostname checks
    context.load_verify_locations(cafile=certs.root_ca_path)
    context.load_cert_chain(device_pem, device_key)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.minimum_version = version
    context.maximum_version = version
    return context


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> CertsDirectory:
    """A certs directory with server certificates and a device certificate, shared by the module."""
    certs = CertsDirectory(tmp_path_factory.mktemp("served") / "certs")
    certs.ensure_server_certificates(NAMES)
    return certs


@pytest.mark.parametrize("key_type", [pki.KeyType.RSA, pki.KeyType.ECDSA])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_mutual_tls_handshake(
    served: CertsDirectory,
    key_type: pki.KeyType,
    version: ssl.TLSVersion,
    server_hostname: str,
) -> None:
    certs = served
    server_context = _server_context(certs, key_type)
    client_context = _client_context(certs, version)

    client, server = _handshake(server_context, client_context, server_hostname)

    assert client.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
    client_certificate = server.getpeercert()
    assert client_certificate
    assert client_certificate["subject"] == ((("commonName", "AWS IoT Certificate"),),)
    server_der = client.getpeercert(binary_form=True)
    assert server_der is not None
    expected = (
        certs.server_rsa_cert_path if key_type is pki.KeyType.RSA else certs.server_ecdsa_cert_path
    )
    assert pki.certificate_id(server_der) == pki.certificate_id(expected.read_bytes())


def test_handshake_refuses_device_from_another_ca(served: CertsDirectory, tmp_path: Path) -> None:
    server_context = _server_context(served, pki.KeyType.ECDSA)
    stranger = CertsDirectory(tmp_path / "other")
    client_context = _client_context(stranger, ssl.TLSVersion.TLSv1_2)
    client_context.load_verify_locations(cafile=served.root_ca_path)

    with pytest.raises(ssl.SSLError, match=r"CERTIFICATE_VERIFY_FAILED|unknown ca|UNKNOWN_CA"):
        _handshake(server_context, client_context, "localhost")


def test_handshake_refuses_wrong_hostname(served: CertsDirectory) -> None:
    server_context = _server_context(served, pki.KeyType.RSA)
    client_context = _client_context(served, ssl.TLSVersion.TLSv1_3)

    with pytest.raises(
        ssl.SSLCertVerificationError, match=r"Hostname mismatch|IP address mismatch"
    ):
        _handshake(server_context, client_context, "iot.example.com")
