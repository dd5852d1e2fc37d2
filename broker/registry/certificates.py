"""The certificate registry: AWS IoT's certificate records, kept in SQLite.

The database lives at ``<state_dir>/registry.sqlite3``. It runs in WAL journal mode with a busy
timeout so that the CLI (``aws-iot-mock create-keys-and-certificate`` and friends) and a running
server can use the same file at once (https://www.sqlite.org/wal.html: readers do not block the
writer and the writer does not block readers).

The schema is versioned with ``PRAGMA user_version``; ``SCHEMA_MIGRATIONS`` lists the steps.
Later features (things, policies, CA registration, attachments) append steps, never edit them.

Field names and status values follow the AWS IoT API reference for DescribeCertificate,
ListCertificates and UpdateCertificate
(https://docs.aws.amazon.com/iot/latest/apireference/API_CertificateDescription.html).
"""

from __future__ import annotations

import enum
import re
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives import serialization

from broker import pki
from broker.errors import BrokerError, CertificateError, ResourceNotFoundError

__all__ = [
    "DATABASE_NAME",
    "SCHEMA_MIGRATIONS",
    "CertificateRecord",
    "CertificateRegistry",
    "CertificateStatus",
    "check_certificate_status",
    "normalize_certificate_id",
]

DATABASE_NAME = "registry.sqlite3"

# How long a connection waits for another process's write lock before failing
# (https://www.sqlite.org/pragma.html#pragma_busy_timeout).
_BUSY_TIMEOUT_MS = 10_000

# AWS: certificateId "Length Constraints: Fixed length of 64. Pattern: (0x)?[a-fA-F0-9]+".
# With a fixed length of 64 a "0x" prefix would leave 62 digits, which no SHA-256 ID has, so we
# accept exactly 64 hex digits.
_CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}")

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


def normalize_certificate_id(certificate_id: str) -> str:
    """Validate a certificate ID and return it in lowercase.

    Args:
        certificate_id: 64 hex digits, any case.

    Returns:
        The ID in lowercase.

    Raises:
        CertificateError: not 64 hex digits (AWS answers InvalidRequestException).
    """
    if not isinstance(certificate_id, str) or not _CERTIFICATE_ID.fullmatch(certificate_id):
        raise CertificateError(
            f"InvalidRequestException: certificateId {certificate_id!r} is not a certificate ID "
            "(expected exactly 64 hexadecimal characters)"
        )
    return certificate_id.lower()


class CertificateRegistry:
    """The certificate table of the registry database.

    Each instance owns one SQLite connection, guarded by a lock so that threads may share the
    instance. Separate instances (or processes) on the same file see each other's committed
    writes: every method is its own transaction.
    """

    def __init__(self, connection: sqlite3.Connection, *, region: str, account_id: str) -> None:
        """Wrap an open, migrated connection; use ``CertificateRegistry.open`` instead.

        Args:
            connection: a connection in autocommit mode (``isolation_level=None``).
            region: the AWS region for ARNs.
            account_id: the account ID for ARNs and ``ownedBy``.
        """
        self._connection = connection
        self._region = region
        self._account_id = account_id
        self._lock = threading.Lock()

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
        if not state_dir.exists():
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            state_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; Python's implicit transactions
        # would hold read snapshots open between calls and hide other processes' writes.
        database = state_dir / DATABASE_NAME
        try:
            connection = sqlite3.connect(
                database,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise BrokerError(f"{database}: cannot open the registry: {exc}") from exc
        try:
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose
            # the last commits (https://www.sqlite.org/pragma.html#pragma_synchronous).
            connection.execute("PRAGMA synchronous = NORMAL")
            _migrate(connection)
        except sqlite3.Error as exc:
            connection.close()
            raise BrokerError(f"{database}: cannot open the registry: {exc}") from exc
        except BaseException:
            connection.close()
            raise
        return cls(connection, region=region, account_id=account_id)

    def close(self) -> None:
        """Close the connection; further calls fail. Closing twice is harmless."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def register_certificate(
        self,
        certificate_pem: str | bytes,
        status: CertificateStatus,
        *,
        ca_certificate_id: str | None = None,
        now: datetime | None = None,
    ) -> CertificateRecord:
        """Register a certificate; its ID is the SHA-256 of its DER encoding.

        Only the first certificate of ``certificate_pem`` is stored, re-encoded as PEM.

        Args:
            certificate_pem: the certificate, PEM.
            status: its initial status.
            ca_certificate_id: the registered CA that issued it, if any.
            now: the registration time (timezone-aware); defaults to the system clock.

        Returns:
            The new record.

        Raises:
            CertificateError: the PEM does not parse, ``ca_certificate_id`` is malformed, or the
                certificate is already registered (ResourceAlreadyExistsException).
            ValueError: ``now`` is naive.
        """
        raw = (
            certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem
        )
        certificate = pki.load_certificate(raw)
        cert_id = pki.certificate_id(certificate)
        ca_id = (
            normalize_certificate_id(ca_certificate_id) if ca_certificate_id is not None else None
        )
        moment = _utc(now)
        record = CertificateRecord(
            certificate_id=cert_id,
            certificate_arn=pki.certificate_arn(self._region, self._account_id, cert_id),
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            status=CertificateStatus(status),
            creation_date=moment,
            last_modified_date=moment,
            ca_certificate_id=ca_id,
        )
        with self._lock:
            try:
                self._connection.execute(
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
                raise CertificateError(
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
        with self._lock:
            row = self._connection.execute(
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


def _migrate(connection: sqlite3.Connection) -> None:
    """Apply the missing ``SCHEMA_MIGRATIONS`` steps in one write transaction.

    BEGIN IMMEDIATE takes the write lock before reading user_version, so two processes opening a
    new file at once cannot both run the same step.

    Raises:
        BrokerError: the file's schema is newer than this code knows.
    """
    latest = len(SCHEMA_MIGRATIONS)
    connection.execute("BEGIN IMMEDIATE")
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version > latest:
            raise BrokerError(
                f"the registry database has schema version {version}, newer than this "
                f"aws-iot-mock understands ({latest}); upgrade aws-iot-mock"
            )
        for step in range(version, latest):
            # Not executescript(): it COMMITs first, which would split the transaction.
            for statement in _statements(SCHEMA_MIGRATIONS[step]):
                connection.execute(statement)
        if version != latest:
            connection.execute(f"PRAGMA user_version = {latest}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (migrations contain no ';' inside literals)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def _not_found(certificate_id: str) -> str:
    """The ResourceNotFoundException message for an unknown certificate."""
    return (
        f"ResourceNotFoundException: The certificate given in the resource id "
        f"({certificate_id.lower()}) was not found"
    )


def _utc(now: datetime | None) -> datetime:
    """Return ``now`` in UTC, or the current time if None.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """Format a time as ISO-8601 UTC with microseconds, e.g. ``2026-11-26T08:20:00.123000+00:00``.

    A fixed width and zone make stored strings sort in time order.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
