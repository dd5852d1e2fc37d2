"""Tests for aws_iot_mock.registry: the SQLite certificate registry and the status check."""

from __future__ import annotations

import json
import sqlite3
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aws_iot_mock import pki
from aws_iot_mock.authz.registry_permissions import Authorizer
from aws_iot_mock.core.permissions import PUBLISH
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.errors import BrokerError, CertificateError, ResourceNotFoundError
from aws_iot_mock.registry import (
    CertificateRecord,
    CertificateRegistry,
    CertificateStatus,
    check_certificate_status,
)
from aws_iot_mock.registry.certificates import SCHEMA_MIGRATIONS

NOW = datetime(2026, 11, 26, 8, 20, 0, 123000, tzinfo=UTC)
REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.create_root_ca(now=NOW)


@pytest.fixture(scope="module")
def device_pems(ca: pki.CertificateAuthority) -> list[bytes]:
    """Five device certificates; the keys come from one EC key to keep the suite fast."""
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return [
        pki.issue_device_certificate(ca, public_key_pem=public, now=NOW).certificate_pem
        for _ in range(5)
    ]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[CertificateRegistry]:
    with CertificateRegistry.open(tmp_path / "state", region=REGION, account_id=ACCOUNT) as reg:
        yield reg


def _open(state_dir: Path) -> CertificateRegistry:
    return CertificateRegistry.open(state_dir, region=REGION, account_id=ACCOUNT)


# --- opening ----------------------------------------------------------------------------------


def test_open_creates_private_state_dir_and_wal_database(tmp_path: Path) -> None:
    state_dir = tmp_path / "nested" / "state"

    with _open(state_dir):
        pass

    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    connection = sqlite3.connect(state_dir / "registry.sqlite3")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA user_version").fetchone() == (len(SCHEMA_MIGRATIONS),)
    finally:
        connection.close()


def test_reopen_does_not_migrate_twice(tmp_path: Path) -> None:
    _open(tmp_path).close()
    _open(tmp_path).close()  # a second CREATE TABLE would raise


def test_open_refuses_newer_schema(tmp_path: Path) -> None:
    _open(tmp_path).close()
    connection = sqlite3.connect(tmp_path / "registry.sqlite3")
    connection.execute(f"PRAGMA user_version = {len(SCHEMA_MIGRATIONS) + 1}")
    connection.close()

    with pytest.raises(BrokerError, match="newer than this"):
        _open(tmp_path)


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    registry = _open(tmp_path)
    registry.close()
    registry.close()


# --- register / get / describe ----------------------------------------------------------------


@pytest.mark.parametrize("as_str", [False, True])
def test_register_roundtrip(
    registry: CertificateRegistry, device_pems: list[bytes], as_str: bool
) -> None:
    pem = device_pems[0]
    cert_id = pki.certificate_id(pem)

    record = registry.register_certificate(
        pem.decode() if as_str else pem, CertificateStatus.ACTIVE, now=NOW
    )

    assert record.certificate_id == cert_id
    assert record.certificate_arn == f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}"
    assert record.certificate_pem == pem.decode()
    assert record.status is CertificateStatus.ACTIVE
    assert record.creation_date == record.last_modified_date == NOW
    assert record.ca_certificate_id is None
    assert registry.get_certificate(cert_id) == record
    assert registry.get_certificate(cert_id.upper()) == record
    assert registry.describe_certificate(cert_id) == record


def test_register_stores_only_the_first_certificate(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    record = registry.register_certificate(
        b"comment line\n" + device_pems[0] + device_pems[1], CertificateStatus.INACTIVE, now=NOW
    )

    assert record.certificate_pem == device_pems[0].decode()


def test_to_description_shape(
    registry: CertificateRegistry, device_pems: list[bytes], ca: pki.CertificateAuthority
) -> None:
    ca_id = ca.certificate_id
    registry.register_certificate(
        device_pems[0], CertificateStatus.ACTIVE, ca_certificate_id=ca_id.upper(), now=NOW
    )
    cert_id = pki.certificate_id(device_pems[0])

    description = registry.describe_certificate(cert_id).to_description()

    generation_id = description.pop("generationId")
    assert len(generation_id) == 36
    assert description == {
        "certificateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:cert/{cert_id}",
        "certificateId": cert_id,
        "caCertificateId": ca_id,
        "status": "ACTIVE",
        "certificatePem": device_pems[0].decode(),
        "ownedBy": ACCOUNT,
        "creationDate": "2026-11-26T08:20:00.123000+00:00",
        "lastModifiedDate": "2026-11-26T08:20:00.123000+00:00",
        "customerVersion": 1,
        "transferData": {},
        "validity": {
            "notBefore": "2026-11-26T08:19:00.000000+00:00",
            "notAfter": "2049-12-31T23:59:59.000000+00:00",
        },
        "certificateMode": "DEFAULT",
    }


def test_to_description_omits_absent_ca_and_summary_shape(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    record = registry.register_certificate(device_pems[0], CertificateStatus.INACTIVE, now=NOW)

    assert "caCertificateId" not in record.to_description()
    assert record.to_summary() == {
        "certificateArn": record.certificate_arn,
        "certificateId": record.certificate_id,
        "status": "INACTIVE",
        "certificateMode": "DEFAULT",
        "creationDate": "2026-11-26T08:20:00.123000+00:00",
    }


def test_register_duplicate_refused(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE, now=NOW)

    with pytest.raises(CertificateError, match="ResourceAlreadyExistsException"):
        registry.register_certificate(device_pems[0], CertificateStatus.INACTIVE, now=NOW)

    assert registry.describe_certificate(pki.certificate_id(device_pems[0])).status == "ACTIVE"


@pytest.mark.parametrize("garbage", ["", "not a certificate", b"\x00\x01"])
def test_register_garbage_refused(registry: CertificateRegistry, garbage: str | bytes) -> None:
    with pytest.raises(CertificateError):
        registry.register_certificate(garbage, CertificateStatus.ACTIVE)


def test_register_refuses_naive_now(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        registry.register_certificate(
            device_pems[0],
            CertificateStatus.ACTIVE,
            now=datetime(2026, 1, 1),  # naive on purpose
        )


def test_dates_are_stored_in_utc(registry: CertificateRegistry, device_pems: list[bytes]) -> None:
    plus_two = timezone(timedelta(hours=2))
    record = registry.register_certificate(
        device_pems[0], CertificateStatus.ACTIVE, now=datetime(2026, 1, 1, 12, tzinfo=plus_two)
    )

    assert record.to_summary()["creationDate"] == "2026-01-01T10:00:00.000000+00:00"


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "abc",
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "0x" + "a" * 62,
        " " + "a" * 63,
    ],
)
def test_invalid_ids_refused(registry: CertificateRegistry, bad_id: str) -> None:
    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.get_certificate(bad_id)
    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.describe_certificate(bad_id)
    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.update_certificate_status(bad_id, CertificateStatus.ACTIVE)


def test_unknown_id(registry: CertificateRegistry) -> None:
    unknown = "ab" * 32

    assert registry.get_certificate(unknown) is None
    with pytest.raises(ResourceNotFoundError, match=unknown):
        registry.describe_certificate(unknown)
    with pytest.raises(ResourceNotFoundError, match=unknown):
        registry.update_certificate_status(unknown, CertificateStatus.INACTIVE)


# --- status updates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("initial", "new"),
    [
        (CertificateStatus.ACTIVE, CertificateStatus.INACTIVE),
        (CertificateStatus.INACTIVE, CertificateStatus.ACTIVE),
        (CertificateStatus.ACTIVE, CertificateStatus.REVOKED),
        (CertificateStatus.ACTIVE, CertificateStatus.ACTIVE),
        (CertificateStatus.PENDING_ACTIVATION, CertificateStatus.ACTIVE),
    ],
)
def test_update_status(
    registry: CertificateRegistry,
    device_pems: list[bytes],
    initial: CertificateStatus,
    new: CertificateStatus,
) -> None:
    created = registry.register_certificate(device_pems[0], initial, now=NOW)
    later = NOW + timedelta(minutes=5)

    updated = registry.update_certificate_status(created.certificate_id.upper(), new, now=later)

    assert updated.status is new
    assert updated.last_modified_date == later
    assert updated.creation_date == NOW
    assert updated.generation_id == created.generation_id
    assert registry.describe_certificate(created.certificate_id) == updated


@pytest.mark.parametrize(
    "internal", [CertificateStatus.PENDING_TRANSFER, CertificateStatus.PENDING_ACTIVATION]
)
def test_update_to_internal_status_refused(
    registry: CertificateRegistry, device_pems: list[bytes], internal: CertificateStatus
) -> None:
    created = registry.register_certificate(device_pems[0], CertificateStatus.ACTIVE, now=NOW)

    with pytest.raises(CertificateError, match="InvalidRequestException"):
        registry.update_certificate_status(created.certificate_id, internal)

    assert registry.describe_certificate(created.certificate_id).status is CertificateStatus.ACTIVE


# --- listing, persistence, concurrency --------------------------------------------------------


def test_list_newest_first(registry: CertificateRegistry, device_pems: list[bytes]) -> None:
    assert registry.list_certificates() == []
    order = [2, 0, 4, 1, 3]  # registration order differs from creation-time order
    for index in order:
        registry.register_certificate(
            device_pems[index], CertificateStatus.ACTIVE, now=NOW + timedelta(seconds=index)
        )

    listed = registry.list_certificates()

    assert [r.certificate_id for r in listed] == [
        pki.certificate_id(device_pems[i]) for i in (4, 3, 2, 1, 0)
    ]


def test_persistence_across_reopen(tmp_path: Path, device_pems: list[bytes]) -> None:
    with _open(tmp_path) as first:
        record = first.register_certificate(device_pems[0], CertificateStatus.ACTIVE, now=NOW)
        first.update_certificate_status(
            record.certificate_id, CertificateStatus.REVOKED, now=NOW + timedelta(hours=1)
        )

    with _open(tmp_path) as second:
        again = second.describe_certificate(record.certificate_id)

    assert again.status is CertificateStatus.REVOKED
    assert again.creation_date == NOW
    assert again.last_modified_date == NOW + timedelta(hours=1)
    assert again.generation_id == record.generation_id


def test_two_registries_on_one_file_see_each_others_writes(
    tmp_path: Path, device_pems: list[bytes]
) -> None:
    with _open(tmp_path) as cli, _open(tmp_path) as server:
        cert_id = pki.certificate_id(device_pems[0])
        assert server.get_certificate(cert_id) is None

        cli.register_certificate(device_pems[0], CertificateStatus.ACTIVE, now=NOW)
        assert check_certificate_status(server.get_certificate(cert_id)) is None

        cli.update_certificate_status(cert_id, CertificateStatus.REVOKED)
        refusal = check_certificate_status(server.get_certificate(cert_id))
        assert refusal is not None
        assert refusal[0] == "CERTIFICATE_NOT_ACTIVE"

        server.register_certificate(device_pems[1], CertificateStatus.INACTIVE, now=NOW)
        assert len(cli.list_certificates()) == 2


def test_threads_share_one_registry(
    registry: CertificateRegistry, device_pems: list[bytes]
) -> None:
    errors: list[BaseException] = []

    def work(pem: bytes) -> None:
        try:
            record = registry.register_certificate(pem, CertificateStatus.ACTIVE)
            for _ in range(20):
                assert registry.get_certificate(record.certificate_id) is not None
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(pem,)) for pem in device_pems]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(registry.list_certificates()) == len(device_pems)


# --- check_certificate_status -----------------------------------------------------------------


def _record(status: CertificateStatus) -> CertificateRecord:
    cert_id = "cd" * 32
    return CertificateRecord(
        certificate_id=cert_id,
        certificate_arn=pki.certificate_arn(REGION, ACCOUNT, cert_id),
        certificate_pem="",
        status=status,
        creation_date=NOW,
        last_modified_date=NOW,
        ca_certificate_id=None,
    )


@pytest.mark.parametrize(
    ("status", "expected_reason"),
    [
        (None, "CERTIFICATE_NOT_REGISTERED"),
        (CertificateStatus.ACTIVE, None),
        (CertificateStatus.INACTIVE, "CERTIFICATE_NOT_ACTIVE"),
        (CertificateStatus.REVOKED, "CERTIFICATE_NOT_ACTIVE"),
        (CertificateStatus.PENDING_TRANSFER, "CERTIFICATE_NOT_ACTIVE"),
        (CertificateStatus.REGISTER_INACTIVE, "CERTIFICATE_NOT_ACTIVE"),
        (CertificateStatus.PENDING_ACTIVATION, "CERTIFICATE_NOT_ACTIVE"),
    ],
)
def test_check_certificate_status(
    status: CertificateStatus | None, expected_reason: str | None
) -> None:
    result = check_certificate_status(None if status is None else _record(status))

    if expected_reason is None:
        assert result is None
        return
    assert result is not None
    reason, details = result
    assert reason == expected_reason
    if status is not None:
        assert details == (
            f"Certificate {'cd' * 32} is {status.value}; only ACTIVE certificates may connect"
        )


def test_owned_by_comes_from_the_arn() -> None:
    assert _record(CertificateStatus.ACTIVE).owned_by == ACCOUNT


# --- the authorizer reads a connection's certificate from here --------------------------------


@pytest.mark.parametrize("keeps_der", [False, True])
def test_certificate_variables_come_from_the_registered_certificate(
    registry: CertificateRegistry, device_pems: list[bytes], keeps_der: bool
) -> None:
    # The TLS door keeps no copy of a connection's certificate: the authorizer reads its
    # subject and issuer from the registry, and a principal that carries the DER (in-memory
    # doors) resolves the same variables.
    pem = device_pems[0]
    record = registry.register_certificate(pem, CertificateStatus.ACTIVE, now=NOW)
    registry.create_policy(
        "by-subject",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iot:Publish",
                        "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/"
                        "${iot:Certificate.Subject.CommonName}/"
                        "${iot:Certificate.Issuer.Organization}",
                    }
                ],
            }
        ),
        now=NOW,
    )
    registry.attach_policy("by-subject", record.certificate_arn)
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    principal = Principal.certificate(record.certificate_id, der if keeps_der else None)
    authorizer = Authorizer(registry, region=REGION, account_id=ACCOUNT)

    permissions = authorizer.permissions_for(principal, "device-1")

    assert permissions.check(PUBLISH, "topic", "AWS IoT Certificate/aws-iot-mock").allowed
    assert not permissions.check(PUBLISH, "topic", "AWS IoT Certificate/other").allowed


def test_a_certificate_deleted_from_the_registry_resolves_no_certificate_variables(
    registry: CertificateRegistry,
) -> None:
    authorizer = Authorizer(registry, region=REGION, account_id=ACCOUNT)

    permissions = authorizer.permissions_for(Principal.certificate("ab" * 32), "device-1")

    assert permissions.status is None
    assert permissions.context.certificate_subject == {}
