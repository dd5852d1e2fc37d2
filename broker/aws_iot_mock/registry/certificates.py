"""The device registry: AWS IoT's certificates, things, policies and CAs, kept in SQLite.

The database lives at ``<state_dir>/registry.sqlite3``. It runs in WAL journal mode with a busy
timeout so that the CLI (``aws-iot-mock create-keys-and-certificate`` and friends) and a running
server can use the same file at once (https://www.sqlite.org/wal.html: readers do not block the
writer and the writer does not block readers).

The schema is versioned with ``PRAGMA user_version``; ``SCHEMA_MIGRATIONS`` lists the steps.
Later features append steps, never edit them.

``CertificateRegistry`` is assembled from mixins: things and thing types
(``aws_iot_mock.registry.things``), policies (``aws_iot_mock.registry.iot_policies``) and CA
certificates (``aws_iot_mock.registry.cas``). Every write runs in one ``BEGIN IMMEDIATE``
transaction that also bumps a generation counter stored in the database, so that a running broker in
another process can poll ``generation()`` cheaply and re-read ``principal_snapshot()`` for its live
connections.

Field names and status values follow the AWS IoT API reference for DescribeCertificate,
ListCertificates and UpdateCertificate
(https://docs.aws.amazon.com/iot/latest/apireference/API_CertificateDescription.html).
"""

from __future__ import annotations

import enum
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from aws_iot_mock.errors import CertificateError, ResourceNotFoundError
from aws_iot_mock.registry._util import iso as _iso
from aws_iot_mock.registry._util import normalize_certificate_id
from aws_iot_mock.registry._util import utc as _utc
from aws_iot_mock.registry.cas import CaCertificatesMixin
from aws_iot_mock.registry.domain_configurations import DomainConfigurationsMixin
from aws_iot_mock.registry.errors import (
    CertificateStateError,
    CertificateValidationError,
    DeleteConflictError,
    InvalidRequestError,
    ResourceAlreadyExistsError,
)
from aws_iot_mock.registry.iot_policies import PoliciesMixin
from aws_iot_mock.registry.tags import TagsMixin
from aws_iot_mock.registry.thing_groups import ThingGroupsMixin, thing_group_policies_for
from aws_iot_mock.registry.things import THING_COLUMNS, Thing, ThingsMixin, thing_from_row
from aws_iot_mock.state.sqlite import SqliteResource, apply_migrations, open_database

__all__ = [
    "DATABASE_NAME",
    "SCHEMA_MIGRATIONS",
    "CertificateRecord",
    "CertificateRegistry",
    "CertificateStatus",
    "PrincipalSnapshot",
    "check_certificate_status",
    "normalize_certificate_id",
]

DATABASE_NAME = "registry.sqlite3"

# How long a connection waits for another process's write lock before failing
# (https://www.sqlite.org/pragma.html#pragma_busy_timeout).

# Step i upgrades user_version i to i + 1, in one transaction. Append only: a database that has
# run a step never runs it again, so editing a published step changes nothing for existing files.
SCHEMA_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: certificates. Dates are ISO-8601 UTC with microseconds, which sort as text.
    """
    CREATE TABLE certificates (
        certificate_id     TEXT PRIMARY KEY NOT NULL,
        certificate_arn    TEXT NOT NULL,
        certificate_pem    TEXT NOT NULL,
        status             TEXT NOT NULL,
        ca_certificate_id  TEXT,
        owned_by           TEXT NOT NULL,
        creation_date      TEXT NOT NULL,
        last_modified_date TEXT NOT NULL,
        customer_version   INTEGER NOT NULL DEFAULT 1,
        generation_id      TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX certificates_by_creation ON certificates (creation_date);
    """,
    # 1 -> 2: the generation counter, things, thing types, policies and their versions,
    # attachments, CA certificates. Attachments reference certificates by ID (the ARN is the
    # certificates row's); they go away with their thing or policy (ON DELETE CASCADE), while a
    # certificate cannot be deleted under them (no action: AWS's DeleteCertificate refuses with
    # DeleteConflictException while things or policies are attached). Searchable attribute
    # names are joined with newlines (the names' pattern excludes them); thing attributes are a
    # JSON object.
    """
    CREATE TABLE registry_generation (
        id         INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO registry_generation (id, generation) VALUES (1, 0);
    CREATE TABLE thing_types (
        thing_type_name       TEXT PRIMARY KEY NOT NULL,
        thing_type_id         TEXT NOT NULL UNIQUE,
        searchable_attributes TEXT NOT NULL,
        description           TEXT,
        deprecated            INTEGER NOT NULL DEFAULT 0,
        deprecation_date      TEXT,
        creation_date         TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE things (
        thing_name      TEXT PRIMARY KEY NOT NULL,
        thing_id        TEXT NOT NULL UNIQUE,
        thing_type_name TEXT REFERENCES thing_types (thing_type_name),
        attributes      TEXT NOT NULL,
        version         INTEGER NOT NULL,
        creation_date   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX things_by_type ON things (thing_type_name);
    CREATE TABLE thing_principals (
        thing_name     TEXT NOT NULL REFERENCES things (thing_name) ON DELETE CASCADE,
        certificate_id TEXT NOT NULL REFERENCES certificates (certificate_id),
        attached_date  TEXT NOT NULL,
        PRIMARY KEY (thing_name, certificate_id)
    ) WITHOUT ROWID;
    CREATE INDEX thing_principals_by_certificate ON thing_principals (certificate_id);
    CREATE TABLE policies (
        policy_name        TEXT PRIMARY KEY NOT NULL,
        default_version_id INTEGER NOT NULL,
        next_version_id    INTEGER NOT NULL,
        creation_date      TEXT NOT NULL,
        last_modified_date TEXT NOT NULL,
        generation_id      TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE policy_versions (
        policy_name TEXT NOT NULL REFERENCES policies (policy_name) ON DELETE CASCADE,
        version_id  INTEGER NOT NULL,
        document    TEXT NOT NULL,
        create_date TEXT NOT NULL,
        PRIMARY KEY (policy_name, version_id)
    ) WITHOUT ROWID;
    CREATE TABLE policy_targets (
        policy_name    TEXT NOT NULL REFERENCES policies (policy_name) ON DELETE CASCADE,
        certificate_id TEXT NOT NULL REFERENCES certificates (certificate_id),
        attached_date  TEXT NOT NULL,
        PRIMARY KEY (policy_name, certificate_id)
    ) WITHOUT ROWID;
    CREATE INDEX policy_targets_by_certificate ON policy_targets (certificate_id);
    CREATE TABLE ca_certificates (
        certificate_id           TEXT PRIMARY KEY NOT NULL,
        certificate_arn          TEXT NOT NULL,
        certificate_pem          TEXT NOT NULL,
        status                   TEXT NOT NULL,
        auto_registration_status TEXT NOT NULL,
        owned_by                 TEXT NOT NULL,
        creation_date            TEXT NOT NULL,
        last_modified_date       TEXT NOT NULL,
        generation_id            TEXT NOT NULL,
        customer_version         INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
    """,
    # 2 -> 3: static thing groups (a tree by parent), their members, policies attached to them
    # (AttachPolicy with a thing group ARN), domain configurations and resource tags. Members
    # and group policies go away with their group, thing or policy; a group cannot be deleted
    # while it has children (the registry checks; AWS refuses the same). Tags are keyed by
    # resource ARN and removed by the registry with their resource. JSON columns hold the
    # domain configuration's optional structures as sent.
    """
    CREATE TABLE thing_groups (
        thing_group_name  TEXT PRIMARY KEY NOT NULL,
        thing_group_id    TEXT NOT NULL UNIQUE,
        parent_group_name TEXT REFERENCES thing_groups (thing_group_name),
        description       TEXT,
        attributes        TEXT NOT NULL,
        version           INTEGER NOT NULL,
        creation_date     TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX thing_groups_by_parent ON thing_groups (parent_group_name);
    CREATE TABLE thing_group_members (
        thing_group_name TEXT NOT NULL REFERENCES thing_groups (thing_group_name)
            ON DELETE CASCADE,
        thing_name       TEXT NOT NULL REFERENCES things (thing_name) ON DELETE CASCADE,
        added_date       TEXT NOT NULL,
        PRIMARY KEY (thing_group_name, thing_name)
    ) WITHOUT ROWID;
    CREATE INDEX thing_group_members_by_thing ON thing_group_members (thing_name);
    CREATE TABLE thing_group_policies (
        policy_name      TEXT NOT NULL REFERENCES policies (policy_name) ON DELETE CASCADE,
        thing_group_name TEXT NOT NULL REFERENCES thing_groups (thing_group_name)
            ON DELETE CASCADE,
        attached_date    TEXT NOT NULL,
        PRIMARY KEY (policy_name, thing_group_name)
    ) WITHOUT ROWID;
    CREATE INDEX thing_group_policies_by_group ON thing_group_policies (thing_group_name);
    CREATE TABLE domain_configurations (
        domain_configuration_name TEXT PRIMARY KEY NOT NULL,
        domain_name               TEXT NOT NULL UNIQUE COLLATE NOCASE,
        status                    TEXT NOT NULL,
        service_type              TEXT NOT NULL,
        security_policy           TEXT NOT NULL,
        settings                  TEXT NOT NULL,
        creation_date             TEXT NOT NULL,
        last_status_change_date   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE resource_tags (
        resource_arn TEXT NOT NULL,
        tag_key      TEXT NOT NULL,
        tag_value    TEXT NOT NULL,
        PRIMARY KEY (resource_arn, tag_key)
    ) WITHOUT ROWID;
    """,
)


class CertificateStatus(enum.StrEnum):
    """A certificate's status, with AWS's values (API_CertificateDescription, ``status``).

    A ``str`` subclass (``StrEnum``), so members compare equal to and format as their values.
    """

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"
    PENDING_TRANSFER = "PENDING_TRANSFER"
    REGISTER_INACTIVE = "REGISTER_INACTIVE"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"


# UpdateCertificate's newStatus: "Setting the status to PENDING_TRANSFER or PENDING_ACTIVATION
# will result in an exception being thrown. PENDING_TRANSFER and PENDING_ACTIVATION are statuses
# used internally by AWS IoT." (API_UpdateCertificate).
_INTERNAL_STATUSES = frozenset(
    {CertificateStatus.PENDING_TRANSFER, CertificateStatus.PENDING_ACTIVATION}
)


@dataclass(frozen=True)
class CertificateRecord:
    """One registered certificate.

    Attributes:
        certificate_id: 64 lowercase hex digits (SHA-256 of the DER certificate).
        certificate_arn: ``arn:aws:iot:<region>:<account>:cert/<id>``.
        certificate_pem: the certificate, PEM.
        status: the current status.
        creation_date: when it was registered (UTC).
        last_modified_date: when its status last changed (UTC).
        ca_certificate_id: the registered CA that issued it, if any.
        generation_id: an opaque UUID, AWS's ``generationId``.
        customer_version: AWS's ``customerVersion``; always 1 here.
    """

    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    status: CertificateStatus
    creation_date: datetime
    last_modified_date: datetime
    ca_certificate_id: str | None
    generation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    customer_version: int = 1

    @property
    def owned_by(self) -> str:
        """The owning account ID, taken from the ARN (its fifth field)."""
        parts = self.certificate_arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    def to_description(self) -> dict[str, Any]:
        """Return the ``certificateDescription`` object of AWS's DescribeCertificate response.

        Returns:
            A JSON-ready dict; dates are ISO-8601 strings with a UTC offset.

        Raises:
            CertificateError: the stored PEM no longer parses (validity cannot be read).
        """
        # Imported here: the broker opens the registry, and looks certificates up by ID, before
        # its first handshake, which must not wait for cryptography.
        from aws_iot_mock import pki  # noqa: PLC0415

        certificate = pki.load_certificate(self.certificate_pem.encode("ascii"))
        description: dict[str, Any] = {
            "certificateArn": self.certificate_arn,
            "certificateId": self.certificate_id,
        }
        if self.ca_certificate_id is not None:
            description["caCertificateId"] = self.ca_certificate_id
        description.update(
            {
                "status": self.status.value,
                "certificatePem": self.certificate_pem,
                "ownedBy": self.owned_by,
                "creationDate": _iso(self.creation_date),
                "lastModifiedDate": _iso(self.last_modified_date),
                "customerVersion": self.customer_version,
                "transferData": {},
                "generationId": self.generation_id,
                "validity": {
                    "notBefore": _iso(certificate.not_valid_before_utc),
                    "notAfter": _iso(certificate.not_valid_after_utc),
                },
                "certificateMode": "DEFAULT",
            }
        )
        return description

    def to_summary(self) -> dict[str, Any]:
        """Return one element of ListCertificates' ``certificates`` list.

        Returns:
            A JSON-ready dict with certificateArn, certificateId, status, certificateMode and
            creationDate (ISO-8601 with a UTC offset).
        """
        return {
            "certificateArn": self.certificate_arn,
            "certificateId": self.certificate_id,
            "status": self.status.value,
            "certificateMode": "DEFAULT",
            "creationDate": _iso(self.creation_date),
        }


def check_certificate_status(record: CertificateRecord | None) -> tuple[str, str] | None:
    """Decide whether a registered certificate may connect.

    AWS IoT Core accepts a client certificate only if it is registered and ACTIVE
    ("X.509 client certificates", https://docs.aws.amazon.com/iot/latest/developerguide/x509-client-certs.html).

    Args:
        record: the registry record for the presented certificate, or None if there is none.

    Returns:
        None if the certificate may connect, else ``(reason, details)`` with reason
        ``CERTIFICATE_NOT_REGISTERED`` or ``CERTIFICATE_NOT_ACTIVE``.
    """
    if record is None:
        return (
            "CERTIFICATE_NOT_REGISTERED",
            "The client certificate is not registered; register it and set it ACTIVE",
        )
    if record.status is not CertificateStatus.ACTIVE:
        return (
            "CERTIFICATE_NOT_ACTIVE",
            f"Certificate {record.certificate_id} is {record.status.value}; "
            "only ACTIVE certificates may connect",
        )
    return None


@dataclass(frozen=True)
class PrincipalSnapshot:
    """Everything the broker needs about a client certificate at CONNECT, read atomically.

    Attributes:
        certificate_id: the certificate's ID (lowercase).
        status: the certificate's status, or None if it is not registered.
        ca_certificate_id: the registered CA that issued it, if any.
        policies: ``(policy name, default version document)`` for every policy attached to the
            certificate, by policy name.
        things: the things the certificate is attached to, by name.
        ca_status: the status (``"ACTIVE"``/``"INACTIVE"``) of ``ca_certificate_id``, if any.
        generation: ``generation()`` as of this snapshot.
        thing_group_policies: thing name -> ``(policy name, default version document)`` that
            thing inherits from its thing groups and their ancestors, nearest group first, for
            every thing in ``things`` that inherits any.
    """

    certificate_id: str
    status: CertificateStatus | None
    ca_certificate_id: str | None
    policies: tuple[tuple[str, str], ...]
    things: tuple[Thing, ...]
    ca_status: str | None = None
    generation: int = 0
    thing_group_policies: Mapping[str, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )


class CertificateRegistry(
    SqliteResource,
    ThingsMixin,
    ThingGroupsMixin,
    PoliciesMixin,
    CaCertificatesMixin,
    DomainConfigurationsMixin,
    TagsMixin,
):
    """The registry: certificates, things, thing types and groups, policies, CAs, domains, tags.

    Each instance owns one SQLite connection, guarded by a lock so that threads may share the
    instance. Separate instances (or processes) on the same file see each other's committed
    writes: every method is its own transaction, and every write transaction that changes
    anything bumps ``generation()``.
    """

    def __init__(self, connection: sqlite3.Connection, *, region: str, account_id: str) -> None:
        """Wrap an open, migrated connection; use ``CertificateRegistry.open`` instead.

        Args:
            connection: a connection in autocommit mode (``isolation_level=None``).
            region: the AWS region for ARNs.
            account_id: the account ID for ARNs and ``ownedBy``.
        """
        super().__init__(connection)
        self._region = region
        self._account_id = account_id

    @classmethod
    def open(cls, state_dir: Path, *, region: str, account_id: str) -> CertificateRegistry:
        """Open (creating if needed) ``<state_dir>/registry.sqlite3`` and migrate its schema.

        ``state_dir`` is created with mode 0700 if it does not exist.

        Args:
            state_dir: the state directory.
            region: the AWS region for ARNs, e.g. ``us-east-1``.
            account_id: the account ID for ARNs and ``ownedBy``.

        Returns:
            The registry; close it with ``close()`` or use it as a context manager.

        Raises:
            BrokerError: the database cannot be opened, or was written by a newer version.
            OSError: the directory cannot be created.
        """
        connection = open_database(
            state_dir,
            DATABASE_NAME,
            what="the registry",
            setup=lambda connection, database: apply_migrations(
                connection, database, SCHEMA_MIGRATIONS, what="the registry database"
            ),
        )
        return cls(connection, region=region, account_id=account_id)

    def register_certificate(
        self,
        certificate_pem: str | bytes,
        status: CertificateStatus = CertificateStatus.INACTIVE,
        *,
        ca_pem: str | bytes | None = None,
        own_ca_pem: str | bytes | None = None,
        ca_certificate_id: str | None = None,
        now: datetime | None = None,
    ) -> CertificateRecord:
        """Register a certificate; its ID is the SHA-256 of its DER encoding.

        Two uses:

        * RegisterCertificate (https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCertificate.html):
          pass ``ca_pem`` and/or ``own_ca_pem``. The certificate must then be signed directly by
          ``ca_pem`` (a registered CA, or the broker's own root CA ``own_ca_pem``), or, without
          ``ca_pem``, by one of the registered CAs or by ``own_ca_pem``. A registered issuer
          is recorded as ``ca_certificate_id``; the broker's own root CA records none.
        * The broker's own issuance (CreateKeysAndCertificate, CreateCertificateFromCsr): pass
          neither; the signature is not checked. If a registered CA signed the certificate it
          is still recorded as ``ca_certificate_id``.

        Only the first certificate of ``certificate_pem`` is stored, re-encoded as PEM.

        Args:
            certificate_pem: the certificate, PEM.
            status: its initial status (RegisterCertificate's default is INACTIVE).
            ca_pem: the CA that signed it (AWS's ``caCertificatePem``).
            own_ca_pem: the broker's own root CA, trusted like a registered CA.
            ca_certificate_id: record this issuing CA without checking (legacy callers); it
                must agree with the CA found by the signature check, if any.
            now: the registration time (timezone-aware); defaults to the system clock.

        Returns:
            The new record.

        Raises:
            CertificateError: the PEM does not parse or ``ca_certificate_id`` is malformed.
            CertificateValidationError: its key is one AWS refuses (RSA under 2048 bits, EC
                off P-256/P-384/P-521), or ``ca_pem``/``own_ca_pem`` given and no candidate CA
                signed the certificate.
            InvalidRequestError: ``ca_certificate_id`` disagrees with the verified issuer.
            ResourceAlreadyExistsError: the certificate is already registered.
            ResourceNotFoundError: ``ca_pem`` is neither registered nor ``own_ca_pem``.
            ValueError: ``now`` is naive.
        """
        raw = (
            certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem
        )
        # Imported here: see to_description.
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        from aws_iot_mock import pki  # noqa: PLC0415

        certificate = pki.load_certificate(raw)
        try:
            pki.check_device_key(certificate.public_key())
        except CertificateError as exc:
            raise CertificateValidationError(
                f"The key in the certificate is not valid: {exc}"
            ) from None
        cert_id = pki.certificate_id(certificate)
        given_ca_id = (
            normalize_certificate_id(ca_certificate_id) if ca_certificate_id is not None else None
        )
        verify = ca_pem is not None or own_ca_pem is not None
        moment = _utc(now)
        with self._write() as connection:
            issuer = self._issuing_ca(connection, certificate, ca_pem, own_ca_pem)
            if issuer is None and verify:
                raise CertificateValidationError(
                    "The certificate is not signed by "
                    + ("the given CA certificate" if ca_pem is not None else "a registered CA")
                    + " or by the broker's root CA"
                )
            ca_id = given_ca_id
            if issuer is not None and issuer.ca_certificate_id is not None:
                if given_ca_id is not None and given_ca_id != issuer.ca_certificate_id:
                    raise InvalidRequestError(
                        f"caCertificateId {given_ca_id} is not the CA that signed the "
                        f"certificate ({issuer.ca_certificate_id})"
                    )
                ca_id = issuer.ca_certificate_id
            record = CertificateRecord(
                certificate_id=cert_id,
                certificate_arn=pki.certificate_arn(self._region, self._account_id, cert_id),
                certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(
                    "ascii"
                ),
                status=CertificateStatus(status),
                creation_date=moment,
                last_modified_date=moment,
                ca_certificate_id=ca_id,
            )
            try:
                connection.execute(
                    "INSERT INTO certificates (certificate_id, certificate_arn, certificate_pem,"
                    " status, ca_certificate_id, owned_by, creation_date, last_modified_date,"
                    " customer_version, generation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.certificate_id,
                        record.certificate_arn,
                        record.certificate_pem,
                        record.status.value,
                        record.ca_certificate_id,
                        self._account_id,
                        _iso(record.creation_date),
                        _iso(record.last_modified_date),
                        record.customer_version,
                        record.generation_id,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsError(
                    "ResourceAlreadyExistsException: The certificate is already provisioned or "
                    f"registered (certificateId {cert_id})"
                ) from None
        return record

    def get_certificate(self, certificate_id: str) -> CertificateRecord | None:
        """Look a certificate up by ID (one primary-key lookup; used on every TLS handshake).

        Args:
            certificate_id: 64 hex digits, any case.

        Returns:
            The record, or None if no such certificate is registered.

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
        """
        cert_id = normalize_certificate_id(certificate_id)
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE certificate_id = ?", (cert_id,)
            ).fetchone()
        return None if row is None else _record(row)

    def describe_certificate(self, certificate_id: str) -> CertificateRecord:
        """Return a certificate's record, like DescribeCertificate.

        Args:
            certificate_id: 64 hex digits, any case.

        Returns:
            The record.

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
            ResourceNotFoundError: no such certificate is registered.
        """
        record = self.get_certificate(certificate_id)
        if record is None:
            raise ResourceNotFoundError(_not_found(certificate_id))
        return record

    def update_certificate_status(
        self,
        certificate_id: str,
        new_status: CertificateStatus,
        now: datetime | None = None,
    ) -> CertificateRecord:
        """Change a certificate's status, like UpdateCertificate, and return the new record.

        Args:
            certificate_id: 64 hex digits, any case.
            new_status: the new status; PENDING_TRANSFER and PENDING_ACTIVATION are refused, as
                AWS refuses them ("statuses used internally by AWS IoT").
            now: the modification time (timezone-aware); defaults to the system clock.

        Returns:
            The updated record (``last_modified_date`` = ``now``).

        Raises:
            CertificateError: the ID is malformed or the status is internal
                (InvalidRequestException).
            ResourceNotFoundError: no such certificate is registered.
            ValueError: ``now`` is naive.
        """
        cert_id = normalize_certificate_id(certificate_id)
        status = CertificateStatus(new_status)
        if status in _INTERNAL_STATUSES:
            raise CertificateError(
                f"InvalidRequestException: newStatus {status.value} is used internally by AWS "
                "IoT and cannot be set"
            )
        moment = _iso(_utc(now))
        with self._write() as connection:
            row = connection.execute(
                f"UPDATE certificates SET status = ?, last_modified_date = ? "
                f"WHERE certificate_id = ? RETURNING {_COLUMNS}",
                (status.value, moment, cert_id),
            ).fetchone()
        if row is None:
            raise ResourceNotFoundError(_not_found(cert_id))
        return _record(row)

    def list_certificates(self) -> list[CertificateRecord]:
        """Return every certificate, newest first (ListCertificates' default order).

        Returns:
            The records, by creation date descending, then by ID.
        """
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM certificates "
                "ORDER BY creation_date DESC, certificate_id ASC"
            ).fetchall()
        return [_record(row) for row in rows]

    def list_certificates_by_ca(self, ca_certificate_id: str) -> list[CertificateRecord]:
        """Return the certificates registered with a CA, newest first (ListCertificatesByCA).

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
        """
        ca_id = normalize_certificate_id(ca_certificate_id)
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE ca_certificate_id = ? "
                "ORDER BY creation_date DESC, certificate_id ASC",
                (ca_id,),
            ).fetchall()
        return [_record(row) for row in rows]

    def delete_certificate(self, certificate_id: str, *, force_delete: bool = False) -> None:
        """Delete a certificate, like DeleteCertificate.

        AWS: "A certificate cannot be deleted if it has a policy or IoT thing attached to it or
        if its status is set to ACTIVE"; ``forceDelete`` "Forces the deletion of a certificate
        if it is inactive and is not attached to an IoT thing" (its policies are detached)
        (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html).

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
            CertificateStateError: the certificate is ACTIVE.
            DeleteConflictError: things (or, without ``force_delete``, policies) are attached.
            ResourceNotFoundError: no such certificate.
        """
        cert_id = normalize_certificate_id(certificate_id)
        with self._write() as connection:
            row = connection.execute(
                "SELECT status FROM certificates WHERE certificate_id = ?", (cert_id,)
            ).fetchone()
            if row is None:
                raise ResourceNotFoundError(_not_found(cert_id))
            if row[0] == CertificateStatus.ACTIVE:
                raise CertificateStateError(
                    f"Certificate {cert_id} is ACTIVE; deactivate it (update-certificate "
                    "--new-status INACTIVE) before deleting it"
                )
            if connection.execute(
                "SELECT 1 FROM thing_principals WHERE certificate_id = ? LIMIT 1", (cert_id,)
            ).fetchone():
                raise DeleteConflictError(
                    f"Certificate {cert_id} is attached to one or more things; detach them first"
                )
            policies = connection.execute(
                "SELECT 1 FROM policy_targets WHERE certificate_id = ? LIMIT 1", (cert_id,)
            ).fetchone()
            if policies and not force_delete:
                raise DeleteConflictError(
                    f"Certificate policies must be detached before deleting certificate {cert_id}"
                )
            connection.execute("DELETE FROM policy_targets WHERE certificate_id = ?", (cert_id,))
            connection.execute("DELETE FROM certificates WHERE certificate_id = ?", (cert_id,))

    def principal_snapshot(self, certificate_id: str) -> PrincipalSnapshot:
        """Read what the broker needs about a client certificate, in one read transaction.

        The policies are the default versions' documents of the policies attached to the
        certificate's ARN (AWS evaluates a policy's default version, API_SetDefaultPolicyVersion);
        the things are those attached with AttachThingPrincipal.

        Args:
            certificate_id: 64 hex digits, any case.

        Returns:
            The snapshot; for an unregistered certificate ``status`` is None and the tuples are
            empty.

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
        """
        cert_id = normalize_certificate_id(certificate_id)
        with self._read() as connection:
            (generation,) = connection.execute(_GENERATION_SQL).fetchone()
            row = connection.execute(
                "SELECT status, ca_certificate_id FROM certificates WHERE certificate_id = ?",
                (cert_id,),
            ).fetchone()
            if row is None:
                return PrincipalSnapshot(
                    certificate_id=cert_id,
                    status=None,
                    ca_certificate_id=None,
                    policies=(),
                    things=(),
                    generation=int(generation),
                )
            status, ca_id = row
            ca_row = (
                connection.execute(
                    "SELECT status FROM ca_certificates WHERE certificate_id = ?", (ca_id,)
                ).fetchone()
                if ca_id is not None
                else None
            )
            policies = connection.execute(
                "SELECT t.policy_name, v.document FROM policy_targets AS t "
                "JOIN policies AS p ON (p.policy_name = t.policy_name) "
                "JOIN policy_versions AS v "
                "ON (v.policy_name = p.policy_name AND v.version_id = p.default_version_id) "
                "WHERE t.certificate_id = ? ORDER BY t.policy_name",
                (cert_id,),
            ).fetchall()
            things = connection.execute(
                f"SELECT {THING_COLUMNS} FROM thing_principals "
                "JOIN things USING (thing_name) WHERE certificate_id = ? ORDER BY thing_name",
                (cert_id,),
            ).fetchall()
            inherited = {
                thing[0]: tuple(group_policies)
                for thing in things
                if (group_policies := thing_group_policies_for(connection, thing[0]))
            }
        return PrincipalSnapshot(
            certificate_id=cert_id,
            status=CertificateStatus(status),
            ca_certificate_id=ca_id,
            policies=tuple((name, document) for name, document in policies),
            things=tuple(thing_from_row(thing, self._arn) for thing in things),
            ca_status=None if ca_row is None else ca_row[0],
            generation=int(generation),
            thing_group_policies=MappingProxyType(inherited),
        )

    def generation(self) -> int:
        """Return the registry generation: a counter every changing write transaction bumps.

        It is stored in the database, so it moves for writes by any process (the CLI while the
        broker runs); a single-row primary-key read, cheap enough to poll every second.
        """
        with self._lock:
            (generation,) = self._connection.execute(_GENERATION_SQL).fetchone()
        return int(generation)


_GENERATION_SQL = "SELECT generation FROM registry_generation WHERE id = 1"

_COLUMNS = (
    "certificate_id, certificate_arn, certificate_pem, status, creation_date,"
    " last_modified_date, ca_certificate_id, generation_id, customer_version"
)


def _record(row: tuple[Any, ...]) -> CertificateRecord:
    """Build a record from a row selected with ``_COLUMNS``."""
    (cert_id, arn, pem, status, created, modified, ca_id, generation_id, customer_version) = row
    return CertificateRecord(
        certificate_id=cert_id,
        certificate_arn=arn,
        certificate_pem=pem,
        status=CertificateStatus(status),
        creation_date=datetime.fromisoformat(created),
        last_modified_date=datetime.fromisoformat(modified),
        ca_certificate_id=ca_id,
        generation_id=generation_id,
        customer_version=int(customer_version),
    )


def _not_found(certificate_id: str) -> str:
    """The ResourceNotFoundException message for an unknown certificate."""
    return (
        f"ResourceNotFoundException: The certificate given in the resource id "
        f"({certificate_id.lower()}) was not found"
    )
