"""The device registry: AWS IoT's certificates, things, thing types, policies and CAs in SQLite.

Everything is stored in ``<state_dir>/registry.sqlite3``; see ``broker.registry.certificates``.
``Registry`` is the same class as ``CertificateRegistry``, under a name that fits what it holds.
"""

from broker.registry.cas import CaCertificateRecord
from broker.registry.certificates import (
    DATABASE_NAME,
    CertificateRecord,
    CertificateRegistry,
    CertificateStatus,
    PrincipalSnapshot,
    check_certificate_status,
    normalize_certificate_id,
)
from broker.registry.errors import (
    CertificateValidationError,
    DeleteConflictError,
    InvalidRequestError,
    LimitExceededError,
    MalformedPolicyError,
    RegistryRequestError,
    ResourceAlreadyExistsError,
    VersionConflictError,
    VersionsLimitExceededError,
    aws_error_code,
)
from broker.registry.policies import Policy, PolicyVersion
from broker.registry.things import Thing, ThingType

Registry = CertificateRegistry

__all__ = [
    "DATABASE_NAME",
    "CaCertificateRecord",
    "CertificateRecord",
    "CertificateRegistry",
    "CertificateStatus",
    "CertificateValidationError",
    "DeleteConflictError",
    "InvalidRequestError",
    "LimitExceededError",
    "MalformedPolicyError",
    "Policy",
    "PolicyVersion",
    "PrincipalSnapshot",
    "Registry",
    "RegistryRequestError",
    "ResourceAlreadyExistsError",
    "Thing",
    "ThingType",
    "VersionConflictError",
    "VersionsLimitExceededError",
    "aws_error_code",
    "check_certificate_status",
    "normalize_certificate_id",
]
