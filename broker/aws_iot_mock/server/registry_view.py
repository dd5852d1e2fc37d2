"""The registry as the TLS doors read it while the registry package is still loading.

``serve``'s data doors listen before the device services are loaded (``server.app``). Until
then a door needs three reads from the registry: the domain configurations (the names it serves
and their security policies), the ACTIVE registered CAs (trusted for client certificates), and
a certificate's status (at every handshake). The registry package (every resource's records and
operations) took a tenth of the time to the first handshake; these reads need none of it. They
run on a read-only connection to the same database, and only when its schema is the version
they were written for: otherwise (no database yet, an older or a newer schema) the broker
opens the registry at once, which creates or migrates it (or refuses a newer one) as before.

The SQL mirrors ``registry.certificates.get_certificate``, ``registry.cas``'s
``active_ca_certificates_pem`` and ``registry.domain_configurations``'s
``list_domain_configurations``; ``tests/test_registry_view.py`` holds them to the same answers.
"""

from __future__ import annotations

import contextlib
import sqlite3
import urllib.parse
from pathlib import Path
from typing import NamedTuple

from aws_iot_mock.state.sqlite import RUNTIME_BUSY_TIMEOUT_MS

__all__ = ["REGISTRY_DATABASE", "REGISTRY_SCHEMA_VERSION", "DomainRow", "RegistryView"]

# registry.certificates: DATABASE_NAME and len(SCHEMA_MIGRATIONS) (a test keeps them equal).
REGISTRY_DATABASE = "registry.sqlite3"
REGISTRY_SCHEMA_VERSION = 3
# registry.cas.CA_ACTIVE.
_CA_ACTIVE = "ACTIVE"


class DomainRow(NamedTuple):
    """What the doors need of a domain configuration (see ``server.domains.RegistryDomain``)."""

    name: str
    domain_name: str
    status: str
    security_policy: str


class RegistryView:
    """Read-only answers from ``registry.sqlite3`` for the TLS doors (see the module docstring)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        """Wrap an open read-only connection (use :meth:`open`)."""
        self._connection = connection

    @classmethod
    def open(cls, state_dir: Path) -> RegistryView | None:
        """A view of ``<state_dir>/registry.sqlite3``, or None when the registry must be opened.

        None: the file does not exist, cannot be opened, or its schema version is not
        ``REGISTRY_SCHEMA_VERSION``. Never raises.
        """
        database = state_dir / REGISTRY_DATABASE
        if not database.is_file():
            return None
        uri = f"file:{urllib.parse.quote(str(database.absolute()))}?mode=ro"
        try:
            connection = sqlite3.connect(
                uri, uri=True, timeout=RUNTIME_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
        except sqlite3.Error:
            return None
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error:
            version = None
        if version != REGISTRY_SCHEMA_VERSION:
            connection.close()
            return None
        return cls(connection)

    def certificate_status(self, certificate_id: str) -> str | None:
        """A certificate's status (``ACTIVE``, ``REVOKED``...), or None if it is not registered.

        Args:
            certificate_id: the lowercase hex SHA-256 of the certificate's DER encoding.
        """
        row = self._connection.execute(
            "SELECT status FROM certificates WHERE certificate_id = ?", (certificate_id.lower(),)
        ).fetchone()
        return None if row is None else str(row[0])

    def active_ca_certificates_pem(self) -> list[str]:
        """The PEMs of the ACTIVE registered CAs, oldest first."""
        rows = self._connection.execute(
            "SELECT certificate_pem FROM ca_certificates WHERE status = ? "
            "ORDER BY creation_date, certificate_id",
            (_CA_ACTIVE,),
        ).fetchall()
        return [pem for (pem,) in rows]

    def domain_configurations(self) -> list[DomainRow]:
        """Every domain configuration, by name."""
        rows = self._connection.execute(
            "SELECT domain_configuration_name, domain_name, status, security_policy "
            "FROM domain_configurations ORDER BY domain_configuration_name"
        ).fetchall()
        return [DomainRow(*row) for row in rows]

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(sqlite3.Error):
            self._connection.close()
