"""Tests for aws_iot_mock.cli: every verb through ``main(argv)``, as a user would type it.

Each test passes ``--certs-dir`` and ``--state-dir`` under ``tmp_path`` and runs from ``tmp_path``
(``monkeypatch.chdir``), so nothing touches the repository's own ``certs/`` or ``.state/``. Output
is parsed as the JSON the AWS CLI prints; certificate facts are checked independently with
``cryptography`` rather than with the PKI module under test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.metadata
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from aws_iot_mock.cli import _build_parser, main
from aws_iot_mock.cli import local as cli_local
from aws_iot_mock.cli._common import _load
from aws_iot_mock.config import Config
from tests.conftest import (
    ENDPOINT,
    MQTT311_CONNACK_ACCEPTED,
    MQTT311_CONNECT,
    Device,
    RunningBroker,
    blocking_handshake,
    client_context,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXIT_USAGE = 252
EXIT_CONFIG = 253
EXIT_SERVICE = 254
ARN_PREFIX = "arn:aws:iot:us-east-1:123456789012:cert/"
UNKNOWN_ID = "0" * 64


@dataclass(frozen=True)
class Result:
    """What one ``main(argv)`` call returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    def one_line_error(self) -> str:
        """Assert stderr is exactly one line (no traceback) and return it.

        A service error may come after a blank line, as the AWS CLI writes it.
        """
        assert self.err.endswith("\n"), repr(self.err)
        line = self.err.removeprefix("\n").removesuffix("\n")
        assert line, "stderr is empty"
        assert "\n" not in line, f"more than one line on stderr: {self.err!r}"
        assert "Traceback" not in line
        return line


class Cli:
    """Runs ``main`` with the test's directories appended, capturing its output."""

    def __init__(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        self.capsys = capsys
        self.certs_dir = tmp_path / "certs"
        self.state_dir = tmp_path / "state"

    @property
    def dirs(self) -> list[str]:
        return ["--certs-dir", str(self.certs_dir), "--state-dir", str(self.state_dir)]

    def __call__(self, *argv: str) -> Result:
        self.capsys.readouterr()  # drop anything printed before this call
        try:
            code = main([*argv, *self.dirs])
        except SystemExit as exc:  # argparse exits for --help and unparsable command lines
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def create(self, *extra: str) -> dict[str, Any]:
        data: dict[str, Any] = self("create-keys-and-certificate", *extra).json()
        return data

    def describe(self, certificate_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self(
            "describe-certificate", "--certificate-id", certificate_id
        ).json()
        return data

    def status(self, certificate_id: str) -> str:
        return str(self.describe(certificate_id)["certificateDescription"]["status"])


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cli]:
    monkeypatch.chdir(tmp_path)
    yield Cli(capsys, tmp_path)


def _der_sha256(certificate_pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _spki_pem(key: object) -> bytes:
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _assert_signed_by_root_ca(certificate: x509.Certificate, certs_dir: Path) -> None:
    """Verify the certificate's signature with the root CA's public key, by hand."""
    ca = x509.load_pem_x509_certificate((certs_dir / "root-ca.pem").read_bytes())
    assert certificate.issuer == ca.subject
    ca_key = ca.public_key()
    assert isinstance(ca_key, rsa.RSAPublicKey)
    algorithm = certificate.signature_hash_algorithm
    assert algorithm is not None
    # Raises InvalidSignature if another key signed it.
    ca_key.verify(
        certificate.signature, certificate.tbs_certificate_bytes, padding.PKCS1v15(), algorithm
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _make_csr(path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr-device")]))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return key, csr


# --- describe-endpoint ---------------------------------------------------------------------------


def test_describe_endpoint_default(cli: Cli) -> None:
    result = cli("describe-endpoint")

    assert result.json() == {"endpointAddress": "localhost"}
    assert result.err == ""


def test_describe_endpoint_from_config_file(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "iot.yaml"
    config.write_text(f"endpoint: {ENDPOINT}\n", encoding="utf-8")

    assert cli("describe-endpoint", "--config", str(config)).json() == {"endpointAddress": ENDPOINT}
    # The AWS CLI's --endpoint-type is accepted; both data endpoint types name the same host.
    assert cli(
        "describe-endpoint", "--config", str(config), "--endpoint-type", "iot:Data-ATS"
    ).json() == {"endpointAddress": ENDPOINT}


def test_the_config_comes_from_the_environment_without_config(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Docker image sets AWS_IOT_MOCK_CONFIG so that `docker exec` verbs need no --config."""
    config = tmp_path / "iot.yaml"
    config.write_text(f"endpoint: {ENDPOINT}\n", encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text("endpoint: other.example.com\n", encoding="utf-8")
    monkeypatch.setenv("AWS_IOT_MOCK_CONFIG", str(config))

    assert cli("describe-endpoint").json() == {"endpointAddress": ENDPOINT}
    # --config still wins over the environment.
    assert cli("describe-endpoint", "--config", str(other)).json() == {
        "endpointAddress": "other.example.com"
    }


def test_a_missing_config_named_by_the_environment_exits_253(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_IOT_MOCK_CONFIG", str(tmp_path / "gone.yaml"))

    result = cli("describe-endpoint")

    assert result.code == EXIT_CONFIG
    assert "gone.yaml" in result.one_line_error()


# --- create-keys-and-certificate -----------------------------------------------------------------


def test_create_keys_and_certificate_output(cli: Cli) -> None:
    data = cli.create()

    assert set(data) == {"certificateArn", "certificateId", "certificatePem", "keyPair"}
    assert set(data["keyPair"]) == {"PublicKey", "PrivateKey"}
    certificate_id = data["certificateId"]
    assert certificate_id == _der_sha256(data["certificatePem"])
    assert data["certificateArn"] == f"{ARN_PREFIX}{certificate_id}"
    assert data["keyPair"]["PublicKey"].startswith("-----BEGIN PUBLIC KEY-----")
    assert data["keyPair"]["PrivateKey"].startswith("-----BEGIN PRIVATE KEY-----")

    certificate = x509.load_pem_x509_certificate(data["certificatePem"].encode())
    assert _spki_pem(certificate.public_key()).decode() == data["keyPair"]["PublicKey"]
    private_key = serialization.load_pem_private_key(
        data["keyPair"]["PrivateKey"].encode(), password=None
    )
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert _spki_pem(private_key.public_key()).decode() == data["keyPair"]["PublicKey"]
    _assert_signed_by_root_ca(certificate, cli.certs_dir)


def test_create_without_set_as_active_is_inactive(cli: Cli) -> None:
    certificate_id = cli.create()["certificateId"]

    assert cli.status(certificate_id) == "INACTIVE"


def test_create_with_set_as_active_is_active(cli: Cli) -> None:
    certificate_id = cli.create("--set-as-active")["certificateId"]

    assert cli.status(certificate_id) == "ACTIVE"


def test_create_writes_outfiles(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cert_file, public_file, private_file = out / "c.pem", out / "k.pub", out / "k.key"

    data = cli.create(
        "--certificate-pem-outfile",
        str(cert_file),
        "--public-key-outfile",
        str(public_file),
        "--private-key-outfile",
        str(private_file),
    )

    assert cert_file.read_text(encoding="ascii") == data["certificatePem"]
    assert public_file.read_text(encoding="ascii") == data["keyPair"]["PublicKey"]
    assert private_file.read_text(encoding="ascii") == data["keyPair"]["PrivateKey"]
    assert _mode(private_file) == 0o600
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert _spki_pem(certificate.public_key()).decode() == data["keyPair"]["PublicKey"]
    _assert_signed_by_root_ca(certificate, cli.certs_dir)


def test_create_relative_outfiles_are_relative_to_cwd(cli: Cli, tmp_path: Path) -> None:
    data = cli.create("--certificate-pem-outfile", "device.pem", "--private-key-outfile", "d.key")

    assert (tmp_path / "device.pem").read_text(encoding="ascii") == data["certificatePem"]
    assert _mode(tmp_path / "d.key") == 0o600


def test_create_twice_gives_distinct_certificates_from_one_ca(cli: Cli) -> None:
    first = cli.create()
    root_ca = (cli.certs_dir / "root-ca.pem").read_bytes()
    second = cli.create()

    assert first["certificateId"] != second["certificateId"]
    assert first["keyPair"]["PrivateKey"] != second["keyPair"]["PrivateKey"]
    assert (cli.certs_dir / "root-ca.pem").read_bytes() == root_ca
    for data in (first, second):
        certificate = x509.load_pem_x509_certificate(data["certificatePem"].encode())
        _assert_signed_by_root_ca(certificate, cli.certs_dir)


# --- create-certificate-from-csr -----------------------------------------------------------------


def test_create_certificate_from_csr(cli: Cli, tmp_path: Path) -> None:
    key, csr = _make_csr(tmp_path / "csr.pem")

    data = cli("create-certificate-from-csr", "--certificate-signing-request", "file://csr.pem")

    body = data.json()
    assert set(body) == {"certificateArn", "certificateId", "certificatePem"}
    certificate = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    assert _spki_pem(certificate.public_key()) == _spki_pem(csr.public_key())
    assert _spki_pem(certificate.public_key()) == _spki_pem(key.public_key())
    assert body["certificateId"] == _der_sha256(body["certificatePem"])
    assert body["certificateArn"] == f"{ARN_PREFIX}{body['certificateId']}"
    _assert_signed_by_root_ca(certificate, cli.certs_dir)
    assert cli.status(body["certificateId"]) == "INACTIVE"


def test_create_certificate_from_csr_set_as_active(cli: Cli, tmp_path: Path) -> None:
    _make_csr(tmp_path / "csr.pem")

    body = cli(
        "create-certificate-from-csr",
        "--certificate-signing-request",
        f"file://{tmp_path / 'csr.pem'}",
        "--set-as-active",
    ).json()

    assert cli.status(body["certificateId"]) == "ACTIVE"


def test_create_certificate_from_csr_accepts_inline_pem(cli: Cli, tmp_path: Path) -> None:
    _, csr = _make_csr(tmp_path / "csr.pem")
    pem = (tmp_path / "csr.pem").read_text(encoding="ascii")

    body = cli("create-certificate-from-csr", "--certificate-signing-request", pem).json()

    certificate = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    assert _spki_pem(certificate.public_key()) == _spki_pem(csr.public_key())


def test_create_certificate_from_garbage_csr(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "csr.pem").write_text("this is not a CSR\n", encoding="ascii")

    result = cli("create-certificate-from-csr", "--certificate-signing-request", "file://csr.pem")

    assert result.code == EXIT_SERVICE
    assert result.out == ""
    assert "signing request" in result.one_line_error()
    # Nothing was registered.
    assert cli("list-certificates").json() == {"certificates": []}


def test_create_certificate_from_missing_csr_file(cli: Cli) -> None:
    result = cli(
        "create-certificate-from-csr", "--certificate-signing-request", "file://missing.pem"
    )

    assert result.code != 0
    assert result.out == ""
    assert "missing.pem" in result.one_line_error()


def test_create_certificate_from_binary_csr_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "csr.der").write_bytes(b"\xff\xfe\x00binary")

    result = cli("create-certificate-from-csr", "--certificate-signing-request", "file://csr.der")

    assert result.code == EXIT_SERVICE
    assert "csr.der is not a text file" in result.one_line_error()


def test_state_dir_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-dir").write_text("", encoding="ascii")

    code = main(["list-certificates", "--state-dir", "not-a-dir", "--certs-dir", "certs"])

    result = Result(code, *capsys.readouterr())
    assert result.code == EXIT_SERVICE
    assert "not-a-dir/registry.sqlite3: cannot open the registry" in result.one_line_error()


# --- update-certificate / describe-certificate / list-certificates -------------------------------


def test_update_certificate_changes_status(cli: Cli) -> None:
    certificate_id = cli.create()["certificateId"]

    for status in ("ACTIVE", "INACTIVE", "REVOKED", "ACTIVE"):
        result = cli(
            "update-certificate", "--certificate-id", certificate_id, "--new-status", status
        )
        assert (result.code, result.out, result.err) == (0, "", "")
        assert cli.status(certificate_id) == status


def test_update_certificate_accepts_uppercase_id(cli: Cli) -> None:
    certificate_id = cli.create()["certificateId"]

    result = cli(
        "update-certificate", "--certificate-id", certificate_id.upper(), "--new-status", "ACTIVE"
    )

    assert result.code == 0, result.err
    assert cli.status(certificate_id) == "ACTIVE"


def test_update_unknown_certificate(cli: Cli) -> None:
    cli.create()  # the registry exists and is not empty

    result = cli("update-certificate", "--certificate-id", UNKNOWN_ID, "--new-status", "ACTIVE")

    assert result.code == EXIT_SERVICE
    line = result.one_line_error()
    assert "ResourceNotFoundException" in line
    assert UNKNOWN_ID in line


def test_update_certificate_invalid_status_is_a_usage_error(cli: Cli) -> None:
    certificate_id = cli.create()["certificateId"]

    result = cli("update-certificate", "--certificate-id", certificate_id, "--new-status", "BOGUS")

    assert result.code == EXIT_USAGE
    assert "invalid choice" in result.err
    assert "Traceback" not in result.err
    assert cli.status(certificate_id) == "INACTIVE"


def test_update_certificate_internal_status_refused(cli: Cli) -> None:
    certificate_id = cli.create()["certificateId"]

    result = cli(
        "update-certificate",
        "--certificate-id",
        certificate_id,
        "--new-status",
        "PENDING_TRANSFER",
    )

    assert result.code == EXIT_SERVICE
    assert "InvalidRequestException" in result.one_line_error()
    assert cli.status(certificate_id) == "INACTIVE"


@pytest.mark.parametrize("bad_id", ["not-hex", "ab" * 31, "g" * 64, "0x" + "a" * 62])
def test_update_certificate_invalid_id_format(cli: Cli, bad_id: str) -> None:
    result = cli("update-certificate", "--certificate-id", bad_id, "--new-status", "ACTIVE")

    assert result.code != 0
    assert "InvalidRequestException" in result.one_line_error()


def test_describe_unknown_certificate(cli: Cli) -> None:
    result = cli("describe-certificate", "--certificate-id", UNKNOWN_ID)

    assert result.code == EXIT_SERVICE
    assert result.out == ""
    assert "ResourceNotFoundException" in result.one_line_error()


def test_describe_certificate_shape(cli: Cli) -> None:
    created = cli.create("--set-as-active")

    description = cli.describe(created["certificateId"])["certificateDescription"]

    assert description["certificateArn"] == created["certificateArn"]
    assert description["certificateId"] == created["certificateId"]
    assert description["status"] == "ACTIVE"
    assert description["ownedBy"] == "123456789012"
    # The stored PEM is the same certificate (the ID is over the DER, so compare that way).
    assert _der_sha256(description["certificatePem"]) == created["certificateId"]
    for key in ("creationDate", "lastModifiedDate"):
        # ISO-8601 with a UTC offset.
        assert description[key].endswith("+00:00"), description[key]
    assert description["validity"]["notAfter"].startswith("2049-12-31T23:59:59")


def test_list_certificates_newest_first(cli: Cli, tmp_path: Path) -> None:
    assert cli("list-certificates").json() == {"certificates": []}
    _make_csr(tmp_path / "csr.pem")
    ids = [
        cli.create()["certificateId"],
        cli.create("--set-as-active")["certificateId"],
        cli(
            "create-certificate-from-csr", "--certificate-signing-request", "file://csr.pem"
        ).json()["certificateId"],
    ]

    listing = cli("list-certificates").json()

    assert set(listing) == {"certificates"}
    summaries = listing["certificates"]
    assert [s["certificateId"] for s in summaries] == list(reversed(ids))
    assert [s["status"] for s in summaries] == ["INACTIVE", "ACTIVE", "INACTIVE"]
    for summary in summaries:
        assert summary["certificateArn"] == f"{ARN_PREFIX}{summary['certificateId']}"
        assert "creationDate" in summary
    dates = [s["creationDate"] for s in summaries]
    assert dates == sorted(dates, reverse=True)


# --- configuration errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verb",
    [
        ["describe-endpoint"],
        ["list-certificates"],
        ["create-keys-and-certificate"],
        ["init"],
    ],
)
def test_bad_config_file_exits_253(cli: Cli, tmp_path: Path, verb: list[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("endpont: example.com\n", encoding="utf-8")

    result = cli(*verb, "--config", str(config))

    assert result.code == EXIT_CONFIG
    assert result.out == ""
    line = result.one_line_error()
    assert "endpont" in line
    assert str(config) in line
    # Nothing was created on the way to the error.
    assert not cli.certs_dir.exists()
    assert not cli.state_dir.exists()


def test_missing_config_file_exits_253(cli: Cli, tmp_path: Path) -> None:
    result = cli("describe-endpoint", "--config", str(tmp_path / "nope.yaml"))

    assert result.code == EXIT_CONFIG
    assert "nope.yaml" in result.one_line_error()


def test_no_verb_is_a_usage_error(cli: Cli) -> None:
    try:
        main([])
    except SystemExit as exc:
        assert exc.code == EXIT_USAGE
    else:
        pytest.fail("main([]) did not exit")


# --- init ----------------------------------------------------------------------------------------


def test_init_demo_device_is_idempotent(cli: Cli) -> None:
    certs = cli.certs_dir
    demo = certs / "demo-device"

    first = cli("init", "--demo-device")

    assert first.code == 0, first.err
    for name in (
        "root-ca.pem",
        "root-ca.key",
        "server-rsa.pem",
        "server-rsa.key",
        "server-ecdsa.pem",
        "server-ecdsa.key",
    ):
        assert (certs / name).is_file(), name
    cert_path = demo / "demo-device.cert.pem"
    key_path = demo / "demo-device.private.key"
    assert cert_path.is_file()
    assert key_path.is_file()
    assert (demo / "demo-device.public.key").is_file()
    assert _mode(key_path) == 0o600
    assert _mode(certs / "root-ca.key") == 0o600
    assert str(certs / "root-ca.pem") in first.out
    assert str(cert_path) in first.out
    demo_certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    _assert_signed_by_root_ca(demo_certificate, certs)
    demo_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(demo_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    assert _spki_pem(demo_key.public_key()) == _spki_pem(demo_certificate.public_key())
    demo_id = _der_sha256(cert_path.read_text(encoding="ascii"))
    assert cli.status(demo_id) == "ACTIVE"
    root_ca = (certs / "root-ca.pem").read_bytes()
    demo_cert = cert_path.read_bytes()

    second = cli("init", "--demo-device")

    assert second.code == 0, second.err
    assert (certs / "root-ca.pem").read_bytes() == root_ca
    assert cert_path.read_bytes() == demo_cert
    listing = cli("list-certificates").json()["certificates"]
    assert [s["certificateId"] for s in listing] == [demo_id]


def test_init_without_demo_device(cli: Cli) -> None:
    result = cli("init")

    assert result.code == 0, result.err
    assert (cli.certs_dir / "root-ca.pem").is_file()
    assert (cli.certs_dir / "server-ecdsa.pem").is_file()
    assert not (cli.certs_dir / "demo-device").exists()


def test_init_reregisters_demo_device_after_state_loss(cli: Cli) -> None:
    assert cli("init", "--demo-device").code == 0
    demo_id = _der_sha256(
        (cli.certs_dir / "demo-device" / "demo-device.cert.pem").read_text(encoding="ascii")
    )
    for path in cli.state_dir.iterdir():
        path.unlink()

    assert cli("init", "--demo-device").code == 0

    assert cli.status(demo_id) == "ACTIVE"


# --- the verbs against a running broker ----------------------------------------------------------


def _connect_and_read_connack(port: int, ctx: ssl.SSLContext) -> bytes:
    with blocking_handshake(port, ctx, ENDPOINT, MQTT311_CONNECT) as tls:
        return _recv_exactly(tls, 4)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def test_verbs_work_while_broker_runs(
    running_broker: RunningBroker,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dirs = ["--certs-dir", str(config.certs_dir), "--state-dir", str(config.state_dir)]

    async def run(*argv: str) -> Result:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, *dirs])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    cert_path, key_path = tmp_path / "live.cert.pem", tmp_path / "live.private.key"
    created = (
        await run(
            "create-keys-and-certificate",
            "--set-as-active",
            "--certificate-pem-outfile",
            str(cert_path),
            "--private-key-outfile",
            str(key_path),
        )
    ).json()
    certificate_id = created["certificateId"]
    device = Device(certificate_id, cert_path, key_path)
    port = running_broker.port
    ctx = client_context(running_broker.root_ca_path, device)

    # ACTIVE but without a policy: AWS closes an MQTT 3.1.1 CONNECT with no CONNACK.
    assert await asyncio.to_thread(_connect_and_read_connack, port, ctx) == b""
    denied = await running_broker.wait_for_record(
        lambda r: (
            r.get("reason") == "AUTHORIZATION_FAILURE" and r.get("principalId") == certificate_id
        )
    )
    assert "iot:Connect" in str(denied["details"])
    document = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect",'
        '"Resource":"arn:aws:iot:us-east-1:123456789012:client/dev-1"}]}'
    )
    assert (
        await run("create-policy", "--policy-name", "live", "--policy-document", document)
    ).code == 0
    attached = await run(
        "attach-policy", "--policy-name", "live", "--target", created["certificateArn"]
    )
    assert attached.code == 0, attached.err

    # The broker reads the CLI's writes: the ACTIVE certificate with a policy connects.
    connack = await asyncio.to_thread(_connect_and_read_connack, port, ctx)
    assert connack == MQTT311_CONNACK_ACCEPTED
    accepted = await running_broker.wait_for_record(
        lambda r: r.get("status") == "Success" and r.get("principalId") == certificate_id
    )
    assert accepted["eventType"] == "Connect"

    result = await run(
        "update-certificate", "--certificate-id", certificate_id, "--new-status", "REVOKED"
    )
    assert result.code == 0, result.err
    described = (await run("describe-certificate", "--certificate-id", certificate_id)).json()
    assert described["certificateDescription"]["status"] == "REVOKED"

    # TLS 1.2, so the refusal arrives as a handshake alert (in TLS 1.3 the client's handshake
    # is already complete when the server judges its certificate).
    ctx12 = client_context(running_broker.root_ca_path, device, maximum=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError) as refused:
        await asyncio.to_thread(_connect_and_read_connack, port, ctx12)
    assert refused.value.reason == "SSLV3_ALERT_CERTIFICATE_REVOKED"
    record = await running_broker.wait_for_record(
        lambda r: r.get("reason") == "CERTIFICATE_NOT_ACTIVE"
    )
    assert record["principalId"] == certificate_id
    assert record["status"] == "Failure"

    # Reactivated from the CLI, it connects again without restarting the broker.
    result = await run(
        "update-certificate", "--certificate-id", certificate_id, "--new-status", "ACTIVE"
    )
    assert result.code == 0, result.err
    connack = await asyncio.to_thread(_connect_and_read_connack, port, ctx)
    assert connack == MQTT311_CONNACK_ACCEPTED

    listing = (await run("list-certificates")).json()["certificates"]
    assert certificate_id in [s["certificateId"] for s in listing]


async def test_inactive_certificate_from_cli_is_refused(
    running_broker: RunningBroker,
    config: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cert_path, key_path = tmp_path / "off.cert.pem", tmp_path / "off.private.key"
    argv = [
        "create-keys-and-certificate",
        "--certificate-pem-outfile",
        str(cert_path),
        "--private-key-outfile",
        str(key_path),
        "--certs-dir",
        str(config.certs_dir),
        "--state-dir",
        str(config.state_dir),
    ]
    capsys.readouterr()
    assert await asyncio.to_thread(main, argv) == 0
    certificate_id = json.loads(capsys.readouterr().out)["certificateId"]
    device = Device(certificate_id, cert_path, key_path)

    ctx12 = client_context(running_broker.root_ca_path, device, maximum=ssl.TLSVersion.TLSv1_2)
    with pytest.raises(ssl.SSLError):
        await asyncio.to_thread(_connect_and_read_connack, running_broker.port, ctx12)
    record = await running_broker.wait_for_record(
        lambda r: r.get("reason") == "CERTIFICATE_NOT_ACTIVE"
    )
    assert record["principalId"] == certificate_id


# --- the console entry ---------------------------------------------------------------------------


def test_python_m_broker_help() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "aws_iot_mock", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )

    assert completed.returncode == 0, completed.stderr
    assert "usage:" in completed.stdout
    for verb in (
        "serve",
        "init",
        "describe-endpoint",
        "create-keys-and-certificate",
        "create-certificate-from-csr",
        "update-certificate",
        "describe-certificate",
        "list-certificates",
    ):
        assert verb in completed.stdout
    assert completed.stderr == ""


# --- habits of a command line (issue 18 item 5) ----------------------------------------------


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert (
        capsys.readouterr().out.strip()
        == f"aws-iot-mock {importlib.metadata.version('aws-iot-mock')}"
    )


def test_a_mistyped_verb_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["create-thng", "--thing-name", "x"])
    assert info.value.code == 252
    assert "Did you mean 'create-thing'?" in capsys.readouterr().err
    # The twin: nothing close, no guess.
    with pytest.raises(SystemExit):
        main(["zzzzqqq"])
    assert "Did you mean" not in capsys.readouterr().err


def test_a_mistyped_flag_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["list-things", "--thing-typ-name", "t"])
    assert info.value.code == 252
    assert "Did you mean '--thing-type-name'?" in capsys.readouterr().err


def test_serve_log_level_overrides_the_configuration(tmp_path: Path) -> None:
    parser = _build_parser()
    args = parser.parse_args(["serve", "--log-level", "ERROR", "--state-dir", str(tmp_path)])
    assert _load(args).logging.level == "ERROR"
    # The twin: without the flag, the configuration's level.
    args = parser.parse_args(["serve", "--state-dir", str(tmp_path)])
    assert _load(args).logging.level == "INFO"


def test_serve_builds_only_its_own_verb_and_the_rest_still_parse() -> None:
    # serve's start-up skips importing the registry, shadow and IAM verbs and building the
    # other verbs' parsers; init and healthcheck get the local verbs; every parser is built
    # for any other first word.
    def verb_names(parser: argparse.ArgumentParser) -> set[str]:
        return {
            name
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for name in action.choices
        }

    assert verb_names(_build_parser("serve")) == {"serve"}
    for verb in sorted(cli_local.VERBS - {"serve"}):
        assert verb_names(_build_parser(verb)) == set(cli_local.VERBS)
    every = verb_names(_build_parser())
    assert set(cli_local.VERBS) < every
    assert {"list-things", "get-thing-shadow", "create-user"} <= every
    assert verb_names(_build_parser("list-things")) == every
