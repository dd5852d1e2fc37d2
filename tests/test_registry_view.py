"""Tests for aws_iot_mock.server.registry_view: the doors' reads before the registry is loaded.

The view must answer exactly as the registry does (it serves the first handshakes of ``serve``),
and step aside whenever the database is not the one it was written for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aws_iot_mock import pki
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus
from aws_iot_mock.registry.cas import CA_ACTIVE
from aws_iot_mock.registry.certificates import DATABASE_NAME, SCHEMA_MIGRATIONS
from aws_iot_mock.registry.domain_configurations import DOMAIN_ENABLED
from aws_iot_mock.server import domains as served_domains_module
from aws_iot_mock.server import registry_view
from aws_iot_mock.server.registry_view import (
    REGISTRY_DATABASE,
    REGISTRY_SCHEMA_VERSION,
    DomainRow,
    RegistryView,
)

NOW = datetime(2026, 11, 26, 8, 20, tzinfo=UTC)


def _open(state_dir: Path) -> CertificateRegistry:
    return CertificateRegistry.open(state_dir, region="us-east-1", account_id="123456789012")


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A registry with a certificate of each status, two CAs and two domain configurations."""
    root = pki.create_root_ca(now=NOW)
    with _open(tmp_path) as registry:
        for status in CertificateStatus:
            issued = pki.issue_device_certificate(root, now=NOW)
            registry.register_certificate(issued.certificate_pem, status=status, now=NOW)
        for index, active in enumerate((True, False, True)):
            ca = pki.create_root_ca(common_name=f"CA {index}", now=NOW)
            registry.register_ca_certificate(ca.certificate_pem, set_as_active=active, now=NOW)
        registry.create_domain_configuration(
            "b-domain", "b.example.com", security_policy="IoTSecurityPolicy_TLS13_1_3_2022_10"
        )
        registry.create_domain_configuration(
            "a-domain", "a.example.com", security_policy="IoTSecurityPolicy_TLS13_1_2_2022_10"
        )
        registry.update_domain_configuration("a-domain", status="DISABLED")
    yield tmp_path


def test_the_views_constants_are_the_registrys() -> None:
    assert REGISTRY_DATABASE == DATABASE_NAME
    assert len(SCHEMA_MIGRATIONS) == REGISTRY_SCHEMA_VERSION
    assert registry_view._CA_ACTIVE == CA_ACTIVE
    assert served_domains_module._DOMAIN_ENABLED == DOMAIN_ENABLED


def test_the_view_answers_as_the_registry(state_dir: Path) -> None:
    view = RegistryView.open(state_dir)
    assert view is not None
    try:
        with _open(state_dir) as registry:
            assert view.active_ca_certificates_pem() == registry.active_ca_certificates_pem()
            assert len(view.active_ca_certificates_pem()) == 2
            assert view.domain_configurations() == [
                DomainRow(r.name, r.domain_name, r.status, r.security_policy)
                for r in registry.list_domain_configurations()
            ]
            records = registry.list_certificates()
            assert len(records) == len(CertificateStatus)
            for record in records:
                expected = record.status.value
                assert view.certificate_status(record.certificate_id) == expected
                assert view.certificate_status(record.certificate_id.upper()) == expected
            assert view.certificate_status("0" * 64) is None
            assert registry.get_certificate("0" * 64) is None
    finally:
        view.close()
        view.close()  # idempotent


def test_the_view_sees_changes_made_while_it_is_open(state_dir: Path) -> None:
    view = RegistryView.open(state_dir)
    assert view is not None
    try:
        with _open(state_dir) as registry:
            record = registry.list_certificates()[0]
            registry.update_certificate_status(record.certificate_id, CertificateStatus.REVOKED)
        assert view.certificate_status(record.certificate_id) == "REVOKED"
    finally:
        view.close()


def test_no_database_means_no_view(tmp_path: Path) -> None:
    assert RegistryView.open(tmp_path) is None
    assert not (tmp_path / REGISTRY_DATABASE).exists()  # a view never creates one


@pytest.mark.parametrize("version", [0, REGISTRY_SCHEMA_VERSION - 1, REGISTRY_SCHEMA_VERSION + 1])
def test_another_schema_version_means_no_view(state_dir: Path, version: int) -> None:
    connection = sqlite3.connect(state_dir / REGISTRY_DATABASE)
    try:
        connection.execute(f"PRAGMA user_version = {version}")
        connection.commit()
    finally:
        connection.close()

    assert RegistryView.open(state_dir) is None


def test_a_file_that_is_not_a_database_means_no_view(tmp_path: Path) -> None:
    (tmp_path / REGISTRY_DATABASE).write_bytes(b"not a database" * 100)

    assert RegistryView.open(tmp_path) is None
