"""The on-disk layout of the certs directory, and creating what is missing in it.

Layout (all files in one directory, created 0700):

* ``root-ca.pem``: the local root CA certificate. This is THE stable path devices are told to
  trust, the mock's counterpart of AmazonRootCA1.pem. It never changes once created, unless
  someone deletes it.
* ``root-ca.key``: its private key (0600).
* ``server-rsa.pem`` / ``server-rsa.key``: the RSA 2048 TLS server certificate and key.
* ``server-ecdsa.pem`` / ``server-ecdsa.key``: the ECDSA P-256 TLS server certificate and key.
  AWS IoT Core serves both kinds and picks by the client's signature algorithms
  ("Server authentication", https://docs.aws.amazon.com/iot/latest/developerguide/server-authentication.html).
* ``server-names.json``: the names the server certificates were issued for, so a changed
  configuration re-issues them.
* ``.checked.json``: the digest of the CA and server files the last full check accepted, and
  when the server certificates are due for renewal. While the files still have that digest the
  check's verdict stands, and ``serve`` starts without parsing a certificate (``cryptography``
  is not even imported: a tenth of a second before the first device can connect).
* ``.lock``: an empty file for the advisory lock that serializes creation across processes.

Every file is written atomically (temporary file in the same directory, then ``os.replace``), so
a crash never leaves a half-written key or certificate. Key material is never logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aws_iot_mock.errors import CertificateError
from aws_iot_mock.hosts import normalize_server_names, server_name_set

if TYPE_CHECKING:
    # Imported where certificates are parsed or issued: see ``.checked.json`` above.
    from aws_iot_mock import pki

__all__ = ["CertsDirectory", "private_directory", "write_private_key", "write_public_file"]

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
_DIR_MODE = 0o700
# Re-issue server certificates this long before they expire, so a long-running install never
# serves an expired certificate after a restart.
_RENEW_BEFORE = timedelta(days=30)
# The record of the last full check of the CA and server files (see the module docstring).
_CHECKED_FILE = ".checked.json"


def private_directory(directory: Path) -> None:
    """Create ``directory`` (and parents) if missing and make it mode 0700, also if it existed.

    Private keys, state and logs live in such directories; one made by an older version, by
    hand or by Docker for a volume (0755) is tightened too.

    Raises:
        OSError: it cannot be created or its mode cannot be set.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    if stat.S_IMODE(directory.stat().st_mode) != _DIR_MODE:
        directory.chmod(_DIR_MODE)  # mkdir's mode is filtered by the umask


def write_private_key(path: str | os.PathLike[str], pem: bytes) -> None:
    """Write a private key atomically with mode 0600.

    The file is created 0600 from the start (never briefly world-readable), then renamed into
    place, so readers see either the old key or the whole new one.

    Args:
        path: the destination; its directory must exist.
        pem: the key, PEM.

    Raises:
        OSError: the file cannot be written.
    """
    _atomic_write(path, pem, _PRIVATE_MODE)


def write_public_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a public file (certificate, JSON) atomically with mode 0644.

    Args:
        path: the destination; its directory must exist.
        data: the content.

    Raises:
        OSError: the file cannot be written.
    """
    _atomic_write(path, data, _PUBLIC_MODE)


def _atomic_write(path: str | os.PathLike[str], data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file created with ``mode``, fsync it, rename it over ``path``.

    Raises:
        OSError: the file cannot be written; the temporary file is removed.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            # os.open's mode is filtered by the umask; force the exact mode we promise.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class CertsDirectory:
    """The certs directory: paths of its files, and creation of the CA and server certificates.

    Creation is serialized across processes with an advisory lock on ``<dir>/.lock`` (the CLI's
    ``init`` and a starting server may run at the same time), so two processes never write
    mismatched certificate and key files.
    """

    def __init__(self, path: Path) -> None:
        """Describe the certs directory at ``path``; nothing is read or created yet.

        Args:
            path: the directory.
        """
        self._path = path

    @property
    def path(self) -> Path:
        """The directory."""
        return self._path

    @property
    def root_ca_path(self) -> Path:
        """``<dir>/root-ca.pem``: the root CA certificate devices trust (stable path)."""
        return self._path / "root-ca.pem"

    @property
    def root_ca_key_path(self) -> Path:
        """``<dir>/root-ca.key``: the root CA private key (0600)."""
        return self._path / "root-ca.key"

    @property
    def server_rsa_cert_path(self) -> Path:
        """``<dir>/server-rsa.pem``: the RSA TLS server certificate."""
        return self._path / "server-rsa.pem"

    @property
    def server_rsa_key_path(self) -> Path:
        """``<dir>/server-rsa.key``: the RSA TLS server private key (0600)."""
        return self._path / "server-rsa.key"

    @property
    def server_ecdsa_cert_path(self) -> Path:
        """``<dir>/server-ecdsa.pem``: the ECDSA TLS server certificate."""
        return self._path / "server-ecdsa.pem"

    @property
    def server_ecdsa_key_path(self) -> Path:
        """``<dir>/server-ecdsa.key``: the ECDSA TLS server private key (0600)."""
        return self._path / "server-ecdsa.key"

    @property
    def server_names_path(self) -> Path:
        """``<dir>/server-names.json``: the names the server certificates were issued for."""
        return self._path / "server-names.json"

    def ensure_root_ca(self, now: datetime | None = None) -> pki.CertificateAuthority:
        """Load the root CA, creating it (and the directory) on first use.

        Args:
            now: the current time (timezone-aware); defaults to the system clock.

        Returns:
            The root CA.

        Raises:
            CertificateError: only one of ``root-ca.pem`` / ``root-ca.key`` exists (the message
                names the missing one), or the files do not hold a matching CA and key.
            OSError: the directory or files cannot be created or read.
        """
        with self._locked():
            return self._ensure_root_ca_locked(now)

    def ensure_server_certificates(self, names: Sequence[str], now: datetime | None = None) -> bool:
        """Make sure RSA and ECDSA server certificates exist for exactly ``names``.

        Both are (re)issued together when a file is missing or unreadable, the name set differs
        from ``server-names.json`` (case-insensitively), a certificate is not signed by the
        current root CA, its key does not match, or it expires within 30 days. The root CA is
        created first if needed.

        Args:
            names: host names and IP literals the server answers to.
            now: the current time (timezone-aware); defaults to the system clock.

        The verdict of a full check is recorded in ``.checked.json`` (see the module docstring):
        while the files keep the digest it records and renewal is not due, it stands.

        Returns:
            True if the certificates were (re)issued, False if the existing ones were kept.

        Raises:
            CertificateError: ``names`` is invalid, or the root CA files are inconsistent.
            OSError: the files cannot be written.
        """
        wanted = normalize_server_names(names)
        with self._locked():
            moment = now if now is not None else datetime.now(UTC)
            if self._recorded_names_match(wanted) and self._checked_still_valid(moment):
                return False
            from aws_iot_mock import pki  # noqa: PLC0415 (see .checked.json in the docstring)

            checked_digest = self._file_digest()
            ca = self._ensure_root_ca_locked(now)
            renew_at = self._server_certificates_renew_at(ca, wanted, moment)
            if renew_at is not None:
                self._record_check(renew_at, checked_digest)
                return False
            pairs = (
                (pki.KeyType.RSA, self.server_rsa_cert_path, self.server_rsa_key_path),
                (pki.KeyType.ECDSA, self.server_ecdsa_cert_path, self.server_ecdsa_key_path),
            )
            renew_times = []
            for key_type, cert_path, key_path in pairs:
                issued = pki.issue_server_certificate(ca, wanted, key_type, now=now)
                assert issued.private_key_pem is not None  # always generated for servers
                # Key before certificate: a reader that sees the new certificate finds its key.
                write_private_key(key_path, issued.private_key_pem)
                write_public_file(cert_path, issued.certificate_pem)
                certificate = pki.load_certificate(issued.certificate_pem)
                renew_times.append(certificate.not_valid_after_utc - _RENEW_BEFORE)
            # Written last: it records a completed issue, so a crash above re-issues next time.
            names_json = json.dumps({"names": list(wanted)}, indent=2) + "\n"
            write_public_file(self.server_names_path, names_json.encode())
            self._record_check(min(renew_times), self._file_digest())
            return True

    def _ensure_root_ca_locked(self, now: datetime | None) -> pki.CertificateAuthority:
        """``ensure_root_ca`` body; the caller holds the lock."""
        cert_exists = self.root_ca_path.exists()
        key_exists = self.root_ca_key_path.exists()
        if cert_exists and key_exists:
            from aws_iot_mock import pki  # noqa: PLC0415 (see .checked.json in the docstring)

            return pki.CertificateAuthority.from_pem(
                self.root_ca_path.read_bytes(), self.root_ca_key_path.read_bytes()
            )
        if cert_exists or key_exists:
            missing = self.root_ca_key_path if cert_exists else self.root_ca_path
            present = self.root_ca_path if cert_exists else self.root_ca_key_path
            raise CertificateError(
                f"{missing} is missing but {present} exists; restore it, or delete {present} to "
                "create a new root CA (devices must then trust the new root-ca.pem)"
            )
        from aws_iot_mock import pki  # noqa: PLC0415 (see .checked.json in the docstring)

        ca = pki.create_root_ca(now=now)
        # Key first: root-ca.pem existing is what marks the CA as complete.
        write_private_key(self.root_ca_key_path, ca.private_key_pem)
        write_public_file(self.root_ca_path, ca.certificate_pem)
        return ca

    def _recorded_names_match(self, wanted: Sequence[str]) -> bool:
        """Whether ``server-names.json`` records the same name set as ``wanted``."""
        try:
            recorded = json.loads(self.server_names_path.read_text(encoding="utf-8"))
            recorded_names = recorded["names"]
            if not isinstance(recorded_names, list) or not all(
                isinstance(name, str) for name in recorded_names
            ):
                return False
            return server_name_set(recorded_names) == server_name_set(wanted)
        except (OSError, ValueError, KeyError, TypeError, CertificateError):
            # Missing or corrupt files are not errors here: they are the reason to re-issue.
            return False

    def _server_certificates_renew_at(
        self, ca: pki.CertificateAuthority, wanted: Sequence[str], now: datetime
    ) -> datetime | None:
        """When the server files are due for renewal, if they are current; else None.

        Current: they exist, match ``wanted`` and ``ca``, and are not expiring (due after ``now``).
        """
        if not self._recorded_names_match(wanted):
            return None
        try:
            renew_times = [
                _server_pair_renew_at(ca, cert_path.read_bytes(), key_path.read_bytes())
                for cert_path, key_path in (
                    (self.server_rsa_cert_path, self.server_rsa_key_path),
                    (self.server_ecdsa_cert_path, self.server_ecdsa_key_path),
                )
            ]
        except (OSError, ValueError, TypeError, CertificateError):
            # Missing or corrupt files are not errors here: they are the reason to re-issue.
            return None
        if any(renew_at is None or renew_at <= now for renew_at in renew_times):
            return None
        return min(renew_at for renew_at in renew_times if renew_at is not None)

    def _file_digest(self) -> str | None:
        """SHA-256 over the CA and server files' names and contents; None if one is unreadable."""
        digest = hashlib.sha256()
        for path in (
            self.root_ca_path,
            self.root_ca_key_path,
            self.server_rsa_cert_path,
            self.server_rsa_key_path,
            self.server_ecdsa_cert_path,
            self.server_ecdsa_key_path,
        ):
            try:
                data = path.read_bytes()
            except OSError:
                return None
            digest.update(f"{path.name}\0{len(data)}\0".encode())
            digest.update(data)
        return digest.hexdigest()

    def _checked_still_valid(self, now: datetime) -> bool:
        """Whether ``.checked.json`` vouches for the files as they are, and renewal is not due."""
        try:
            checked = json.loads((self._path / _CHECKED_FILE).read_text(encoding="utf-8"))
            renew_at = datetime.fromisoformat(checked["renew_at"])
            digest = checked["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if renew_at.tzinfo is None or renew_at <= now:
            return False
        return isinstance(digest, str) and digest == self._file_digest()

    def _record_check(self, renew_at: datetime, digest: str | None) -> None:
        """Record that the files with ``digest`` passed the full check, until ``renew_at``.

        Nothing is recorded if the files no longer have that digest (changed during the check).
        """
        if digest is None or digest != self._file_digest():
            return
        document = {"digest": digest, "renew_at": renew_at.isoformat()}
        # Not written (a read-only directory): the next start makes the full check again.
        with contextlib.suppress(OSError):
            # 0600: the digest covers the private keys.
            write_private_key(self._path / _CHECKED_FILE, json.dumps(document).encode())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Create the directory if needed and hold an exclusive advisory lock on it."""
        private_directory(self._path)  # it holds private keys
        fd = os.open(self._path / ".lock", os.O_RDWR | os.O_CREAT, _PRIVATE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _server_pair_renew_at(
    ca: pki.CertificateAuthority, cert_pem: bytes, key_pem: bytes
) -> datetime | None:
    """When a server certificate is due for renewal; None if not signed by ``ca`` or not its key.

    Raises:
        CertificateError: the certificate or key does not parse.
    """
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 (see .checked.json)

    from aws_iot_mock import pki  # noqa: PLC0415 (see .checked.json)

    certificate = pki.load_certificate(cert_pem)
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return None
    if not pki.key_matches_certificate(key_pem, certificate):
        return None
    return certificate.not_valid_after_utc - _RENEW_BEFORE
