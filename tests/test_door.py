"""The TLS front door over real sockets: every refusal reason, each with its passing twin.

Each refusal test asserts two things: what the client saw (the TLS alert, as OpenSSL on the client
side names it) and the one AWSIotLogsV2 line the broker wrote (in memory and in the JSON-lines
file). Each passing twin changes exactly the one thing the refusal is about.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import socket
import ssl
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.config import Config, DomainConfiguration, TlsConfig
from aws_iot_mock.registry import CertificateStatus
from aws_iot_mock.server.app import Broker
from tests.conftest import (
    ALLOW_ALL_POLICY,
    ENDPOINT,
    MQTT311_CONNACK_ACCEPTED,
    MQTT311_CONNECT,
    Device,
    RunningBroker,
    blocking_handshake,
    client_context,
    make_config,
)

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the client observed: the bytes read after sending a CONNECT, or the error."""

    received: bytes = b""
    error: str | None = None  # ssl.SSLError.reason, or "EOF"


def _attempt(
    port: int, ctx: ssl.SSLContext, sni: str | None, payload: bytes = MQTT311_CONNECT
) -> Outcome:
    try:
        tls = blocking_handshake(port, ctx, sni)
    except ssl.SSLError as exc:
        return Outcome(error=exc.reason)
    with tls:
        try:
            if payload:
                tls.sendall(payload)
            data = tls.recv(4)
        except ssl.SSLZeroReturnError:
            return Outcome(error="EOF")
        except ssl.SSLError as exc:
            return Outcome(error=exc.reason)
        except ConnectionResetError:
            return Outcome(error="EOF")
        return Outcome(received=data) if data else Outcome(error="EOF")


async def attempt(
    running: RunningBroker,
    device: Device | None,
    sni: str | None = ENDPOINT,
    *,
    payload: bytes = MQTT311_CONNECT,
    **client: object,
) -> Outcome:
    ctx = client_context(running.root_ca_path, device, **client)  # type: ignore[arg-type]
    return await asyncio.to_thread(_attempt, running.port, ctx, sni, payload)


async def assert_refused(
    running: RunningBroker, reason: str, *, principal_id: str | None = None
) -> dict[str, object]:
    """Wait for the refusal's record and check it is exactly one well-formed AWSIotLogsV2 line."""
    record = await running.wait_for_record(lambda r: r.get("reason") == reason)
    assert record["logLevel"] == "ERROR"
    assert record["status"] == "Failure"
    assert record["eventType"] == "Connect"
    assert record["protocol"] == "MQTT"
    assert record["accountId"] == running.config.account_id
    assert record["sourceIp"] == "127.0.0.1"
    assert isinstance(record["sourcePort"], int)
    assert TIMESTAMP.match(str(record["timestamp"]))
    uuid.UUID(str(record["traceId"]))
    assert str(record["details"]).strip()
    if principal_id is not None:
        assert record["principalId"] == principal_id
    assert [r for r in running.records if r.get("reason") == reason] == [record]
    # The same line is in the JSON-lines file, byte-for-byte the same fields.
    assert record in running.file_records()
    return record


async def assert_accepted(running: RunningBroker, outcome: Outcome, device: Device) -> None:
    assert outcome == Outcome(received=MQTT311_CONNACK_ACCEPTED)
    record = await running.wait_for_record(
        lambda r: (
            r["eventType"] == "Connect"
            and r.get("clientId") == "dev-1"
            and r["principalId"] == device.certificate_id
        )
    )
    assert record["status"] == "Success"
    assert record["logLevel"] == "INFO"
    assert running.failures() == []


async def start(config: Config) -> RunningBroker:
    broker = Broker(config)
    running = RunningBroker(broker, config)
    broker.sink.add_listener(running._on_record)
    await broker.start()
    return running


# -- the happy path ------------------------------------------------------------------------


async def test_active_certificate_with_endpoint_sni_connects(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    outcome = await attempt(running_broker, device)
    await assert_accepted(running_broker, outcome, device)
    handshake = running_broker.records[0]
    assert handshake["status"] == "Success"
    assert "TLSv1.2" in str(handshake["details"])
    assert "IoTSecurityPolicy_TLS12_1_2_2022_10" in str(handshake["details"])


# -- SNI -----------------------------------------------------------------------------------


async def test_wrong_sni_is_refused_with_unrecognized_name(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    outcome = await attempt(running_broker, device, sni="wrong.example.com")
    assert outcome.error == "TLSV1_UNRECOGNIZED_NAME"
    record = await assert_refused(running_broker, "SNI_MISMATCH")
    assert "wrong.example.com" in str(record["details"])


async def test_sni_compares_case_insensitively(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    outcome = await attempt(running_broker, device, sni=ENDPOINT.upper())
    await assert_accepted(running_broker, outcome, device)


async def test_missing_sni_is_refused_by_default(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    outcome = await attempt(running_broker, device, sni=None)
    assert outcome.error == "TLSV1_UNRECOGNIZED_NAME"
    await assert_refused(running_broker, "SNI_MISSING")


async def test_missing_sni_is_accepted_when_configured(tmp_path: Path) -> None:
    running = await start(make_config(tmp_path, require_sni=False))
    try:
        device = running.create_device()
        outcome = await attempt(running, device, sni=None)
        await assert_accepted(running, outcome, device)
        # A wrong name is still refused even then.
        refused = await attempt(running, device, sni="wrong.example.com")
        assert refused.error == "TLSV1_UNRECOGNIZED_NAME"
        await assert_refused(running, "SNI_MISMATCH")
    finally:
        await running.broker.stop()


# -- versions and suites -------------------------------------------------------------------


async def test_tls13_only_client_is_refused_by_tls12_policy(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    outcome = await attempt(running_broker, device, minimum=TLS13)
    assert outcome.error == "TLSV1_ALERT_PROTOCOL_VERSION"
    await assert_refused(running_broker, "TLS_VERSION_NOT_SUPPORTED")


async def test_tls13_client_is_accepted_by_tls13_policy(tmp_path: Path) -> None:
    policy = "IoTSecurityPolicy_TLS13_1_2_2022_10"
    running = await start(make_config(tmp_path, security_policy=policy))
    try:
        device = running.create_device()
        outcome = await attempt(running, device, minimum=TLS13)
        await assert_accepted(running, outcome, device)
        assert "TLSv1.3" in str(running.records[0]["details"])
    finally:
        await running.broker.stop()


async def test_cipher_outside_the_policy_is_refused(running_broker: RunningBroker) -> None:
    device = running_broker.create_device()
    # ChaCha20 for TLS 1.2 is a fine suite, but not in AWS's list.
    chacha = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    outcome = await attempt(running_broker, device, maximum=TLS12, ciphers=chacha)
    assert outcome.error == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    await assert_refused(running_broker, "NO_SHARED_CIPHER")


@pytest.mark.parametrize(
    ("suite", "key_type"),
    [("ECDHE-ECDSA-AES128-GCM-SHA256", "EC"), ("ECDHE-RSA-AES256-GCM-SHA384", "RSA")],
)
async def test_suite_in_the_policy_negotiates_with_the_matching_certificate(
    running_broker: RunningBroker, suite: str, key_type: str
) -> None:
    device = running_broker.create_device()
    ctx = client_context(running_broker.root_ca_path, device, maximum=TLS12, ciphers=suite)

    def handshake() -> tuple[str, bytes]:
        with blocking_handshake(running_broker.port, ctx, ENDPOINT) as tls:
            cipher = tls.cipher()
            der = tls.getpeercert(binary_form=True)
            assert cipher is not None and der is not None
            return cipher[0], der

    negotiated, der = await asyncio.to_thread(handshake)
    assert negotiated == suite
    public_key = x509.load_der_x509_certificate(der).public_key()
    expected = ec.EllipticCurvePublicKey if key_type == "EC" else rsa.RSAPublicKey
    assert isinstance(public_key, expected)


async def test_domain_configuration_selects_its_own_policy(tmp_path: Path) -> None:
    config = dataclasses.replace(
        make_config(tmp_path),
        domain_configurations=(
            DomainConfiguration("iot.example.com", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
        ),
    )
    running = await start(config)
    try:
        device = running.create_device()
        # TLS 1.2 on the custom domain (a TLS 1.3-only policy): refused.
        refused = await attempt(running, device, sni="iot.example.com", maximum=TLS12)
        assert refused.error == "TLSV1_ALERT_PROTOCOL_VERSION"
        await assert_refused(running, "TLS_VERSION_NOT_SUPPORTED")
        # Its twin: TLS 1.3 on the custom domain, and TLS 1.2 on the default endpoint.
        twins: list[tuple[str, ssl.TLSVersion | None]] = [
            ("iot.example.com", TLS13),
            (ENDPOINT, None),
        ]
        for sni, minimum in twins:
            running.records.clear()
            outcome = await attempt(running, device, sni=sni, minimum=minimum)
            await assert_accepted(running, outcome, device)
    finally:
        await running.broker.stop()


# -- client certificates -------------------------------------------------------------------


async def test_missing_client_certificate_is_refused(running_broker: RunningBroker) -> None:
    outcome = await attempt(running_broker, None)
    assert outcome.error == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    await assert_refused(running_broker, "CLIENT_CERTIFICATE_MISSING")


async def test_missing_client_certificate_under_tls13(tmp_path: Path) -> None:
    running = await start(
        make_config(tmp_path, security_policy="IoTSecurityPolicy_TLS13_1_3_2022_10")
    )
    try:
        outcome = await attempt(running, None)
        # TLS 1.3: the client's handshake ends first; the alert arrives on the first read.
        assert outcome.error == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
        await assert_refused(running, "CLIENT_CERTIFICATE_MISSING")
    finally:
        await running.broker.stop()


def _foreign_device(directory: Path) -> Device:
    other_ca = pki.create_root_ca(common_name="Someone else's CA")
    issued = pki.issue_device_certificate(other_ca)
    assert issued.private_key_pem is not None
    cert_path, key_path = directory / "foreign.pem", directory / "foreign.key"
    write_public_file(cert_path, issued.certificate_pem)
    write_private_key(key_path, issued.private_key_pem)
    return Device(issued.certificate_id, cert_path, key_path)


async def test_certificate_from_another_ca_is_refused(
    running_broker: RunningBroker, tmp_path: Path
) -> None:
    device = _foreign_device(tmp_path)
    # Registered or not, a chain to an unknown CA fails first.
    running_broker.broker.registry.register_certificate(
        device.cert_path.read_bytes(), CertificateStatus.ACTIVE
    )
    outcome = await attempt(running_broker, device)
    assert outcome.error == "TLSV1_ALERT_UNKNOWN_CA"
    await assert_refused(running_broker, "CLIENT_CERTIFICATE_UNTRUSTED")


def _device_with_validity(
    config: Config, not_before: dt.datetime, not_after: dt.datetime, directory: Path
) -> tuple[Device, bytes]:
    """A device certificate signed by the broker's CA with the given validity."""
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    ca_key = serialization.load_pem_private_key(ca.private_key_pem, password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = directory / f"{not_before.year}.pem", directory / f"{not_before.year}.key"
    write_public_file(cert_path, pem)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_key(key_path, key_pem)
    return Device(pki.certificate_id(pem), cert_path, key_path), pem


@pytest.mark.parametrize(
    ("when", "alert"),
    [
        ("expired", "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
        # OpenSSL's server maps X509_V_ERR_CERT_NOT_YET_VALID to bad_certificate.
        ("not-yet-valid", "SSLV3_ALERT_BAD_CERTIFICATE"),
    ],
)
async def test_certificate_outside_its_validity_is_refused(
    running_broker: RunningBroker, tmp_path: Path, when: str, alert: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    year = dt.timedelta(days=365)
    window = (now - 2 * year, now - year) if when == "expired" else (now + year, now + 2 * year)
    device, pem = _device_with_validity(running_broker.config, *window, tmp_path)
    running_broker.broker.registry.register_certificate(pem, CertificateStatus.ACTIVE)
    outcome = await attempt(running_broker, device)
    assert outcome.error == alert
    await assert_refused(running_broker, "CLIENT_CERTIFICATE_EXPIRED")
    # The twin: the same CA, a window around now, registered the same way.
    running_broker.records.clear()
    fresh, fresh_pem = _device_with_validity(
        running_broker.config, now - dt.timedelta(minutes=1), now + year, tmp_path
    )
    record = running_broker.broker.registry.register_certificate(
        fresh_pem, CertificateStatus.ACTIVE
    )
    running_broker.broker.registry.create_policy("allow-all", ALLOW_ALL_POLICY)
    running_broker.broker.registry.attach_policy("allow-all", record.certificate_arn)
    await assert_accepted(running_broker, await attempt(running_broker, fresh), fresh)


async def test_client_that_does_not_trust_the_root_ca_is_explained(
    running_broker: RunningBroker, tmp_path: Path
) -> None:
    device = running_broker.create_device()
    stranger = pki.create_root_ca(common_name="Not the broker's CA")
    wrong_ca = tmp_path / "wrong-ca.pem"
    write_public_file(wrong_ca, stranger.certificate_pem)
    ctx = client_context(wrong_ca, device)
    outcome = await asyncio.to_thread(_attempt, running_broker.port, ctx, ENDPOINT)
    assert outcome.error == "CERTIFICATE_VERIFY_FAILED"  # the client's own verdict
    record = await assert_refused(running_broker, "SERVER_CERTIFICATE_REJECTED")
    assert "unknown_ca" in str(record["details"])
    assert "root-ca.pem" in str(record["details"])
    # The twin, trusting the right CA, is test_active_certificate_with_endpoint_sni_connects.


def _connect_then(port: int, ctx: ssl.SSLContext, goodbye: bytes) -> None:
    with blocking_handshake(port, ctx, ENDPOINT) as tls:
        tls.sendall(MQTT311_CONNECT)
        assert tls.recv(4) == MQTT311_CONNACK_ACCEPTED
        if goodbye:
            tls.sendall(goodbye)
            assert tls.recv(1) == b""  # the broker closes after DISCONNECT
        else:
            # Drop the TCP connection without DISCONNECT or close_notify.
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)


@pytest.mark.parametrize(
    ("goodbye", "reason"),
    [(b"\xe0\x00", "CLIENT_INITIATED_DISCONNECT"), (b"", "CONNECTION_LOST")],
    ids=["disconnect", "dropped"],
)
async def test_disconnects_are_logged(
    running_broker: RunningBroker, goodbye: bytes, reason: str
) -> None:
    device = running_broker.create_device()
    ctx = client_context(running_broker.root_ca_path, device)
    await asyncio.to_thread(_connect_then, running_broker.port, ctx, goodbye)
    record = await running_broker.wait_for_record(lambda r: r["eventType"] == "Disconnect")
    assert record["reason"] == reason
    assert record["clientId"] == "dev-1"
    assert record["principalId"] == device.certificate_id
    assert (record["status"], record["logLevel"]) == ("Success", "INFO")
    assert running_broker.failures() == []


# -- the registry --------------------------------------------------------------------------


async def test_unregistered_certificate_is_refused(running_broker: RunningBroker) -> None:
    device = running_broker.create_device(register=False)
    outcome = await attempt(running_broker, device)
    assert outcome.error == "SSLV3_ALERT_CERTIFICATE_UNKNOWN"
    await assert_refused(
        running_broker, "CERTIFICATE_NOT_REGISTERED", principal_id=device.certificate_id
    )


@pytest.mark.parametrize(
    ("status", "alert"),
    [
        (CertificateStatus.INACTIVE, "TLSV1_ALERT_ACCESS_DENIED"),
        (CertificateStatus.REVOKED, "SSLV3_ALERT_CERTIFICATE_REVOKED"),
        (CertificateStatus.PENDING_ACTIVATION, "TLSV1_ALERT_ACCESS_DENIED"),
    ],
)
async def test_certificate_that_is_not_active_is_refused(
    running_broker: RunningBroker, status: CertificateStatus, alert: str
) -> None:
    device = running_broker.create_device(status)
    outcome = await attempt(running_broker, device)
    assert outcome.error == alert
    record = await assert_refused(
        running_broker, "CERTIFICATE_NOT_ACTIVE", principal_id=device.certificate_id
    )
    assert status.value in str(record["details"])
    # The twin: the same certificate, activated, connects (the registry is read per handshake).
    running_broker.records.clear()
    running_broker.broker.registry.update_certificate_status(
        device.certificate_id, CertificateStatus.ACTIVE
    )
    await assert_accepted(running_broker, await attempt(running_broker, device), device)


async def test_inactive_certificate_under_tls13_gets_close_notify(tmp_path: Path) -> None:
    running = await start(
        make_config(tmp_path, security_policy="IoTSecurityPolicy_TLS13_1_3_2022_10")
    )
    try:
        device = running.create_device(CertificateStatus.INACTIVE)
        outcome = await attempt(running, device)
        assert outcome.error == "EOF"
        await assert_refused(running, "CERTIFICATE_NOT_ACTIVE", principal_id=device.certificate_id)
    finally:
        await running.broker.stop()


# -- deadlines -----------------------------------------------------------------------------


def _stall(port: int, first_bytes: bytes) -> bytes:
    """Connect, send ``first_bytes`` (maybe nothing), then wait for the server to close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        if first_bytes:
            raw.sendall(first_bytes)
        chunks = []
        while chunk := raw.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def _partial_client_hello() -> bytes:
    ctx = ssl.create_default_context()
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=ENDPOINT)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()[:20]


@pytest.mark.parametrize("first_bytes", [b"", _partial_client_hello()], ids=["silent", "partial"])
async def test_stalled_handshake_is_dropped_at_the_deadline(
    tmp_path: Path, first_bytes: bytes
) -> None:
    running = await start(make_config(tmp_path, handshake_timeout=0.2))
    try:
        received = await asyncio.to_thread(_stall, running.port, first_bytes)
        assert received == b""  # nothing was negotiated, so there is nothing to alert
        record = await assert_refused(running, "HANDSHAKE_TIMEOUT")
        assert "0.2 s" in str(record["details"])
    finally:
        await running.broker.stop()


async def test_no_connect_after_handshake_is_dropped_at_the_deadline(tmp_path: Path) -> None:
    running = await start(make_config(tmp_path, connect_timeout=0.2))
    try:
        device = running.create_device()
        outcome = await attempt(running, device, payload=b"")
        assert outcome.error == "EOF"  # close_notify
        await assert_refused(running, "CONNECT_TIMEOUT", principal_id=device.certificate_id)
        # The twin: a CONNECT in time is accepted and no deadline fires.
        running.records.clear()
        await assert_accepted(running, await attempt(running, device), device)
    finally:
        await running.broker.stop()


# -- not TLS at all ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_bytes", "phrase"),
    [
        (MQTT311_CONNECT, "plaintext MQTT CONNECT"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "plaintext HTTP"),
        (b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", "first handshake message has type 2"),
    ],
)
async def test_bytes_that_are_not_a_client_hello_are_refused(
    running_broker: RunningBroker, first_bytes: bytes, phrase: str
) -> None:
    received = await asyncio.to_thread(_stall, running_broker.port, first_bytes)
    assert received == b""
    record = await assert_refused(running_broker, "HANDSHAKE_FAILED")
    assert phrase in str(record["details"])


async def test_a_refused_client_does_not_disturb_a_connected_one(
    running_broker: RunningBroker,
) -> None:
    device = running_broker.create_device()
    ctx = client_context(running_broker.root_ca_path, device)
    tls = await asyncio.to_thread(blocking_handshake, running_broker.port, ctx, ENDPOINT)
    with tls:
        await asyncio.to_thread(tls.sendall, MQTT311_CONNECT)
        assert await asyncio.to_thread(tls.recv, 4) == MQTT311_CONNACK_ACCEPTED
        refused = await attempt(running_broker, device, sni="wrong.example.com")
        assert refused.error == "TLSV1_UNRECOGNIZED_NAME"
        # PINGREQ -> PINGRESP still works on the first connection.
        await asyncio.to_thread(tls.sendall, b"\xc0\x00")
        assert await asyncio.to_thread(tls.recv, 2) == b"\xd0\x00"


async def test_stop_closes_open_connections_with_close_notify(tmp_path: Path) -> None:
    running = await start(make_config(tmp_path))
    device = running.create_device()
    ctx = client_context(running.root_ca_path, device)
    tls = await asyncio.to_thread(blocking_handshake, running.port, ctx, ENDPOINT)
    with tls:
        await asyncio.to_thread(tls.sendall, MQTT311_CONNECT)
        assert await asyncio.to_thread(tls.recv, 4) == MQTT311_CONNACK_ACCEPTED
        await running.broker.stop()
        assert await asyncio.to_thread(tls.recv, 1) == b""  # close_notify read as EOF
    disconnect = [r for r in running.records if r["eventType"] == "Disconnect"]
    assert disconnect and disconnect[0]["reason"] == "SERVER_INITIATED_DISCONNECT"


def test_tls_config_defaults_match_the_issue() -> None:
    tls = TlsConfig()
    assert (tls.require_sni, tls.handshake_timeout) == (True, 10.0)
    assert tls.security_policy == "IoTSecurityPolicy_TLS12_1_2_2022_10"
