"""CA certificates registered by the user (RegisterCACertificate and friends).

A registered, ACTIVE CA is one more trust anchor for device certificates: the TLS front door adds
``active_ca_certificates_pem()`` to its own root CA, and RegisterCertificate accepts device
certificates signed by it. Shapes follow the AWS IoT API reference: RegisterCACertificate,
DescribeCACertificate, ListCACertificates and UpdateCACertificate
(https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterCACertificate.html and siblings).

AWS's proof of possession (a verification certificate signed by the CA's key for a subject of the
account's registration code, API_GetRegistrationCode) is skipped: this mock is a single-user local
tool, so whoever can write the state directory is trusted to own the CA.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry._store import Store
from aws_iot_mock.registry._util import from_iso, iso, normalize_certificate_id, utc
from aws_iot_mock.registry.errors import (
    CertificateStateError,
    CertificateValidationError,
    InvalidRequestError,
    ResourceAlreadyExistsError,
)

if TYPE_CHECKING:
    # Imported where a certificate is parsed: the broker opens the registry (and the TLS door
    # reads the CAs' PEM) before the first handshake, which must not wait for cryptography.
    from cryptography import x509

__all__ = [
    "AUTO_REGISTRATION_DISABLE",
    "AUTO_REGISTRATION_ENABLE",
    "CA_ACTIVE",
    "CA_INACTIVE",
    "CaCertificateRecord",
    "CaCertificatesMixin",
    "IssuingCa",
]

# API_CACertificateDescription: "status ... Valid Values: ACTIVE | INACTIVE" and
# "autoRegistrationStatus ... Valid Values: ENABLE | DISABLE".
CA_ACTIVE = "ACTIVE"
CA_INACTIVE = "INACTIVE"
AUTO_REGISTRATION_ENABLE = "ENABLE"
AUTO_REGISTRATION_DISABLE = "DISABLE"
_CA_STATUSES = (CA_ACTIVE, CA_INACTIVE)
_AUTO_REGISTRATION_STATUSES = (AUTO_REGISTRATION_ENABLE, AUTO_REGISTRATION_DISABLE)

_CA_COLUMNS = (
    "certificate_id, certificate_arn, certificate_pem, status, auto_registration_status,"
    " creation_date, last_modified_date, generation_id, customer_version"
)


@dataclass(frozen=True)
class CaCertificateRecord:
    """One registered CA certificate (DescribeCACertificate).

    Attributes:
        certificate_id: 64 lowercase hex digits (SHA-256 of the DER certificate).
        certificate_arn: ``arn:aws:iot:<region>:<account>:cacert/<id>``.
        certificate_pem: the CA certificate, PEM.
        status: ``"ACTIVE"`` or ``"INACTIVE"``.
        auto_registration_status: ``"ENABLE"`` or ``"DISABLE"``.
        creation_date: when it was registered (UTC).
        last_modified_date: when it last changed (UTC).
        generation_id: an opaque UUID, AWS's ``generationId``; changes on every update.
        customer_version: AWS's ``customerVersion``: 1, +1 on every update.
    """

    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    status: str
    auto_registration_status: str
    creation_date: datetime
    last_modified_date: datetime = field(default_factory=lambda: utc(None))
    generation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    customer_version: int = 1

    @property
    def owned_by(self) -> str:
        """The owning account ID, taken from the ARN (its fifth field)."""
        parts = self.certificate_arn.split(":")
        return parts[4] if len(parts) > 4 else ""

    def to_description(self) -> dict[str, Any]:
        """Return DescribeCACertificate's ``certificateDescription``.

        See API_CACertificateDescription.

        Returns:
            A JSON-ready dict; dates are ISO-8601 strings with a UTC offset.
        """
        from aws_iot_mock import pki  # noqa: PLC0415 (see the imports)

        certificate = pki.load_certificate(self.certificate_pem.encode("ascii"))
        return {
            "certificateArn": self.certificate_arn,
            "certificateId": self.certificate_id,
            "status": self.status,
            "certificatePem": self.certificate_pem,
            "ownedBy": self.owned_by,
            "creationDate": iso(self.creation_date),
            "autoRegistrationStatus": self.auto_registration_status,
            "lastModifiedDate": iso(self.last_modified_date),
            "customerVersion": self.customer_version,
            "generationId": self.generation_id,
            "validity": {
                "notBefore": iso(certificate.not_valid_before_utc),
                "notAfter": iso(certificate.not_valid_after_utc),
            },
            "certificateMode": "DEFAULT",
        }

    def to_summary(self) -> dict[str, Any]:
        """Return one element of ListCACertificates' ``certificates`` (API_CACertificate)."""
        return {
            "certificateArn": self.certificate_arn,
            "certificateId": self.certificate_id,
            "status": self.status,
            "creationDate": iso(self.creation_date),
        }


@dataclass(frozen=True)
class IssuingCa:
    """The CA that signed a device certificate being registered.

    Attributes:
        ca_certificate_id: the registered CA's ID, or None for the broker's own root CA.
    """

    ca_certificate_id: str | None


class CaCertificatesMixin(Store):
    """Registered CA certificates (mixed into CertificateRegistry)."""

    def register_ca_certificate(
        self,
        ca_pem: str | bytes,
        *,
        set_as_active: bool = False,
        allow_auto_registration: bool = False,
        now: datetime | None = None,
    ) -> CaCertificateRecord:
        """Register a CA certificate, like RegisterCACertificate.

        The certificate must be a CA (BasicConstraints ``ca=True``) and valid at ``now``; it
        may be a root (self-signed) or an intermediate. AWS's verification certificate (proof
        of possession of the CA key) is not asked for; see the module docstring.

        Args:
            ca_pem: the CA certificate, PEM (only the first certificate is used).
            set_as_active: register it ACTIVE (AWS's ``setAsActive``); else INACTIVE.
            allow_auto_registration: AWS's ``allowAutoRegistration``: ENABLE, else DISABLE.
            now: the registration time (timezone-aware); defaults to the system clock.

        Returns:
            The new record.

        Raises:
            CertificateError: the PEM does not parse.
            CertificateValidationError: not a CA certificate, or not valid at ``now``.
            ResourceAlreadyExistsError: this CA is registered already.
            ValueError: ``now`` is naive.
        """
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 (see the imports)

        from aws_iot_mock import pki  # noqa: PLC0415 (see the imports)

        certificate = _load(ca_pem)
        moment = utc(now)
        _check_is_ca(certificate)
        if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
            raise CertificateValidationError(
                "The CA certificate is expired or not yet valid "
                f"(valid {iso(certificate.not_valid_before_utc)} to "
                f"{iso(certificate.not_valid_after_utc)})"
            )
        ca_id = pki.certificate_id(certificate)
        record = CaCertificateRecord(
            certificate_id=ca_id,
            certificate_arn=self._arn(f"cacert/{ca_id}"),
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            status=CA_ACTIVE if set_as_active else CA_INACTIVE,
            auto_registration_status=(
                AUTO_REGISTRATION_ENABLE if allow_auto_registration else AUTO_REGISTRATION_DISABLE
            ),
            creation_date=moment,
            last_modified_date=moment,
        )
        with self._write() as connection:
            try:
                connection.execute(
                    f"INSERT INTO ca_certificates ({_CA_COLUMNS}, owned_by)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.certificate_id,
                        record.certificate_arn,
                        record.certificate_pem,
                        record.status,
                        record.auto_registration_status,
                        iso(record.creation_date),
                        iso(record.last_modified_date),
                        record.generation_id,
                        record.customer_version,
                        self._account_id,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsError(
                    f"The CA certificate is already registered (certificateId {ca_id})"
                ) from None
        return record

    def describe_ca_certificate(self, certificate_id: str) -> CaCertificateRecord:
        """Return a registered CA, like DescribeCACertificate.

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
            ResourceNotFoundError: no such CA is registered.
        """
        ca_id = normalize_certificate_id(certificate_id)
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_CA_COLUMNS} FROM ca_certificates WHERE certificate_id = ?", (ca_id,)
            ).fetchone()
        if row is None:
            raise ResourceNotFoundError(_ca_not_found(ca_id))
        return _ca_record(row)

    def list_ca_certificates(self) -> list[CaCertificateRecord]:
        """Return every registered CA, newest first (ListCACertificates)."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_CA_COLUMNS} FROM ca_certificates "
                "ORDER BY creation_date DESC, certificate_id ASC"
            ).fetchall()
        return [_ca_record(row) for row in rows]

    def update_ca_certificate(
        self,
        certificate_id: str,
        *,
        new_status: str | None = None,
        new_auto_registration_status: str | None = None,
        now: datetime | None = None,
    ) -> CaCertificateRecord:
        """Change a CA's status or auto-registration status, like UpdateCACertificate.

        Args:
            certificate_id: the CA's ID.
            new_status: ``"ACTIVE"`` or ``"INACTIVE"``; None keeps it.
            new_auto_registration_status: ``"ENABLE"`` or ``"DISABLE"``; None keeps it.
            now: the modification time (timezone-aware); defaults to the system clock.

        Returns:
            The updated record (AWS returns an empty body).

        Raises:
            CertificateError: the ID or a status is invalid (InvalidRequestException).
            ResourceNotFoundError: no such CA is registered.
            ValueError: ``now`` is naive.
        """
        ca_id = normalize_certificate_id(certificate_id)
        if new_status is not None and new_status not in _CA_STATUSES:
            raise InvalidRequestError(
                f"newStatus {new_status!r} is invalid; expected one of {', '.join(_CA_STATUSES)}"
            )
        if (
            new_auto_registration_status is not None
            and new_auto_registration_status not in _AUTO_REGISTRATION_STATUSES
        ):
            raise InvalidRequestError(
                f"newAutoRegistrationStatus {new_auto_registration_status!r} is invalid; "
                f"expected one of {', '.join(_AUTO_REGISTRATION_STATUSES)}"
            )
        with self._write() as connection:
            row = connection.execute(
                "UPDATE ca_certificates SET status = COALESCE(?, status),"
                " auto_registration_status = COALESCE(?, auto_registration_status),"
                " last_modified_date = ?, generation_id = ?,"
                " customer_version = customer_version + 1"
                f" WHERE certificate_id = ? RETURNING {_CA_COLUMNS}",
                (
                    new_status,
                    new_auto_registration_status,
                    iso(utc(now)),
                    str(uuid.uuid4()),
                    ca_id,
                ),
            ).fetchone()
        if row is None:
            raise ResourceNotFoundError(_ca_not_found(ca_id))
        return _ca_record(row)

    def delete_ca_certificate(self, certificate_id: str) -> None:
        """Delete a registered CA certificate, like DeleteCACertificate.

        AWS refuses while it is ACTIVE ("CertificateStateException", API_DeleteCACertificate);
        device certificates registered with it stay registered.

        Raises:
            CertificateError: the ID is malformed (InvalidRequestException).
            CertificateStateError: the CA is ACTIVE.
            ResourceNotFoundError: no such CA.
        """
        ca_id = normalize_certificate_id(certificate_id)
        with self._write() as connection:
            row = connection.execute(
                "SELECT status, certificate_arn FROM ca_certificates WHERE certificate_id = ?",
                (ca_id,),
            ).fetchone()
            if row is None:
                raise ResourceNotFoundError(_ca_not_found(ca_id))
            if row[0] == CA_ACTIVE:
                raise CertificateStateError(
                    f"CA certificate {ca_id} is ACTIVE; set it INACTIVE before deleting it"
                )
            connection.execute("DELETE FROM ca_certificates WHERE certificate_id = ?", (ca_id,))
            connection.execute("DELETE FROM resource_tags WHERE resource_arn = ?", (row[1],))

    def active_ca_certificates_pem(self) -> list[str]:
        """Return the PEMs of the ACTIVE registered CAs, oldest first.

        These are what the TLS front door must trust for client certificates in addition to
        the broker's own root CA.
        """
        with self._lock:
            rows = self._connection.execute(
                "SELECT certificate_pem FROM ca_certificates WHERE status = ? "
                "ORDER BY creation_date, certificate_id",
                (CA_ACTIVE,),
            ).fetchall()
        return [pem for (pem,) in rows]

    def _issuing_ca(
        self,
        connection: sqlite3.Connection,
        certificate: x509.Certificate,
        ca_pem: str | bytes | None,
        own_ca_pem: str | bytes | None,
    ) -> IssuingCa | None:
        """Find the registered CA, or the broker's own root CA, that signed ``certificate``.

        With ``ca_pem`` only that CA is tried; it must be registered or be ``own_ca_pem``.
        Without it, every registered CA whose subject is the certificate's issuer is tried,
        then ``own_ca_pem``. Only direct issuance is checked (the device certificate's
        signature verifies with the CA's key and its issuer is the CA's subject).

        Returns:
            The issuer, or None if none of the candidates signed the certificate.

        Raises:
            CertificateError: ``ca_pem`` or ``own_ca_pem`` does not parse.
            ResourceNotFoundError: ``ca_pem`` is neither registered nor the broker's root CA.
        """
        from aws_iot_mock import pki  # noqa: PLC0415 (see the imports)

        own = _load(own_ca_pem) if own_ca_pem is not None else None
        candidates: list[tuple[str | None, x509.Certificate]] = []
        if ca_pem is not None:
            given = _load(ca_pem)
            given_id = pki.certificate_id(given)
            row = connection.execute(
                "SELECT 1 FROM ca_certificates WHERE certificate_id = ?", (given_id,)
            ).fetchone()
            if row is not None:
                candidates.append((given_id, given))
            elif own is not None and pki.certificate_id(own) == given_id:
                candidates.append((None, own))
            else:
                raise ResourceNotFoundError(_ca_not_found(given_id))
        else:
            rows = connection.execute(
                "SELECT certificate_id, certificate_pem FROM ca_certificates "
                "ORDER BY creation_date, certificate_id"
            ).fetchall()
            for ca_id, pem in rows:
                registered = _load(pem)
                if registered.subject == certificate.issuer:
                    candidates.append((ca_id, registered))
            if own is not None:
                candidates.append((None, own))
        for ca_id, issuer in candidates:
            if _signed_by(certificate, issuer):
                return IssuingCa(ca_certificate_id=ca_id)
        return None


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 (see the imports)

    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_is_ca(certificate: x509.Certificate) -> None:
    from cryptography import x509  # noqa: PLC0415 (see the imports)

    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        raise CertificateValidationError(
            "The certificate is not a CA certificate (it has no BasicConstraints extension)"
        ) from None
    if not constraints.value.ca:
        raise CertificateValidationError(
            "The certificate is not a CA certificate (BasicConstraints ca=False)"
        )


def _load(pem: str | bytes) -> x509.Certificate:
    from aws_iot_mock import pki  # noqa: PLC0415 (see the imports)

    raw = pem.encode("ascii", errors="replace") if isinstance(pem, str) else pem
    return pki.load_certificate(raw)


def _ca_record(row: Sequence[Any]) -> CaCertificateRecord:
    (ca_id, arn, pem, status, auto, created, modified, generation_id, customer_version) = row
    return CaCertificateRecord(
        certificate_id=ca_id,
        certificate_arn=arn,
        certificate_pem=pem,
        status=status,
        auto_registration_status=auto,
        creation_date=from_iso(created),
        last_modified_date=from_iso(modified),
        generation_id=generation_id,
        customer_version=int(customer_version),
    )


def _ca_not_found(ca_id: str) -> str:
    return (
        f"ResourceNotFoundException: The CA certificate given in the resource id ({ca_id}) was "
        "not found"
    )
