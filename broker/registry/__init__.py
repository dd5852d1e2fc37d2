"""The device registry: AWS IoT's certificates (and, later, things, policies and CAs) in SQLite.

Everything is stored in ``<state_dir>/registry.sqlite3``; see ``broker.registry.certificates``.
"""

from broker.registry.certificates import (
    DATABASE_NAME,
    CertificateRecord,
    CertificateRegistry,
    CertificateStatus,
    check_certificate_status,
    normalize_certificate_id,
)

__all__ = [
    "DATABASE_NAME",
    "CertificateRecord",
    "CertificateRegistry",
    "CertificateStatus",
    "check_certificate_status",
    "normalize_certificate_id",
]
