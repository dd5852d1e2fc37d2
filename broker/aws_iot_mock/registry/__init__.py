"""The device registry: AWS IoT's certificates, things, thing types, policies and CAs in SQLite.

Everything is stored in ``<state_dir>/registry.sqlite3``; see
``aws_iot_mock.registry.certificates``.
``Registry`` is the same class as ``CertificateRegistry``, under a name that fits what it holds.
"""

from aws_iot_mock.registry.cas import CaCertificateRecord
from aws_iot_mock.registry.certificates import (
    DATABASE_NAME,
    CertificateRecord,
    CertificateRegistry,
    CertificateStatus,
    PrincipalSnapshot,
    check_certificate_status,
    normalize_certificate_id,
)
from aws_iot_mock.registry.errors import (
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
from aws_iot_mock.registry.iot_policies import Policy, PolicyVersion
from aws_iot_mock.registry.things import Thing, ThingType

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
