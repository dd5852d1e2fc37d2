"""The configuration's optional sections: classes defined when a configuration uses them.

``aws_iot_mock.config`` exports these names (its ``__getattr__`` imports this module on first
use): a dataclass costs about 1.5 ms of CPU to define (the dataclass decorator compiles its
generated methods), and a configuration without custom domains, a CloudWatch sink or
``resources:`` (the default, and every benchmark's) never needs these five. ``serve`` defines
them only when the file it loads has those sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from aws_iot_mock.config import AWS_IOT_LOG_GROUP

__all__ = [
    "CertificateResource",
    "CloudWatchConfig",
    "DomainConfiguration",
    "PolicyResource",
    "ThingResource",
]


@dataclass(frozen=True)
class DomainConfiguration:
    """A custom domain (AWS "domain configuration"): its own host name and TLS policy.

    Attributes:
        domain_name: the DNS name devices put in SNI to reach this domain; a valid DNS name,
            distinct (case-insensitively) from the endpoint and every other domain name.
        security_policy: a key of ``SECURITY_POLICIES``, applied to handshakes naming this domain.
    """

    domain_name: str
    security_policy: str


@dataclass(frozen=True)
class CloudWatchConfig:
    """Where the optional CloudWatch Logs sink sends the AWSIotLogsV2 records (needs boto3).

    Attributes:
        endpoint_url: the CloudWatch Logs endpoint (a moto server, LocalStack); None for AWS's
            own, with the credentials boto3 finds.
        region: the region of the ``logs`` client; None for the configuration's ``region``.
        log_group: the log group, created when missing (AWS IoT's is ``AWSIotLogsV2``).
        log_stream: the log stream, created when missing; None for a new one per broker start.
        queue_bytes: bytes of records that may wait for the endpoint; past that, records are
            dropped and counted (64 KiB .. 1 GiB).
    """

    endpoint_url: str | None = None
    region: str | None = None
    log_group: str = AWS_IOT_LOG_GROUP
    log_stream: str | None = None
    queue_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class ThingResource:
    """A thing the broker creates at start (``resources.things[]``).

    Attributes:
        thing_name: AWS's thingName (``[a-zA-Z0-9:_-]``, 1..128 characters).
        thing_type_name: its thing type, created too if it does not exist; None for none.
        attributes: attribute name to value (strings, AWS's attribute patterns).
    """

    thing_name: str
    thing_type_name: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)


@dataclass(frozen=True)
class PolicyResource:
    """An IoT policy the broker creates at start (``resources.policies[]``).

    Attributes:
        policy_name: AWS's policyName (letters, digits and ``+=,.@_-``, 1..128 characters).
        document: the policy document, JSON text (the inline mapping serialized, or the text
            of ``document_file``). Only its JSON syntax is checked when the config loads; the
            policy grammar is checked when the policy is created.
    """

    policy_name: str
    document: str


@dataclass(frozen=True)
class CertificateResource:
    """A device certificate the broker registers at start (``resources.certificates[]``).

    Attributes:
        certificate_file: PEM file; registered ACTIVE if it is not registered yet. It must be
            signed by the local root CA or by a registered CA certificate.
        things: names of things to attach the certificate to (AttachThingPrincipal).
        policies: names of policies to attach to the certificate (AttachPolicy).
    """

    certificate_file: Path
    things: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
