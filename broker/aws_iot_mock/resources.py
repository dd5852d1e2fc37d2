"""Registry resources declared in the config (``resources:``), applied when ``serve`` starts.

Demo rigs declare their things, policies and device certificates in YAML instead of a script of
CLI calls; see ``config/examples/demo-rig.yaml``. Applying is idempotent: applying the same config
twice changes nothing the second time. The rules:

* a thing is created if missing; an existing one gets the configured thing type and attributes
  (replacing its attributes) when they differ. A thing type that does not exist yet is created.
* a policy is created if missing; when its default version's document differs (as JSON, so
  whitespace and key order do not count) the configured document becomes a new default version.
  AWS keeps at most five versions, so the oldest non-default one is deleted first if needed.
* a certificate is registered ACTIVE if it is not registered; an existing registration keeps its
  status (so ``update-certificate --new-status REVOKED`` survives a restart).
* attachments (certificate to thing, policy to certificate) are made if missing; attachments that
  the config does not mention are never removed.

Every problem becomes a :class:`~broker.errors.ConfigError` that names the config file and the
key path of the entry, e.g. ``demo.yaml: resources.certificates[0].policies[1]: ...``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from aws_iot_mock import pki
from aws_iot_mock.config import CertificateResource, Config, ThingResource
from aws_iot_mock.errors import BrokerError, ConfigError
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus, Thing
from aws_iot_mock.registry.iot_policies import MAX_POLICY_VERSIONS

__all__ = [
    "apply_config_resources",
    "ensure_policy",
    "ensure_policy_attached",
    "ensure_thing",
    "ensure_thing_principal",
    "is_aws_error",
    "thing_exists",
]


def is_aws_error(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is the registry's rendering of AWS exception ``name``.

    Registry errors are ``BrokerError`` subclasses whose message starts with the AWS exception
    name (``ResourceNotFoundException: ...``).
    """
    return isinstance(exc, BrokerError) and str(exc).startswith(name)


def apply_config_resources(
    config: Config, registry: CertificateRegistry, own_ca_pem: bytes | str
) -> list[str]:
    """Create (or bring in line) the things, policies and certificates ``config`` declares.

    Args:
        config: the configuration; ``config.resources`` is applied, ``config.source`` is named in
            errors.
        registry: the open registry to write to.
        own_ca_pem: the local root CA certificate; device certificates it signed may be
            registered without registering the CA first.

    Returns:
        One line per change made, e.g. ``created thing 'sensor-1'``; empty when the registry
        already matched the config.

    Raises:
        ConfigError: an entry cannot be applied (unreadable certificate file, malformed policy
            document, unknown thing or policy name, ...); the message names the file and the
            entry's key path. Entries before it have been applied.
    """
    changes: list[str] = []
    resources = config.resources
    for index, thing in enumerate(resources.things):
        with _located(config, f"resources.things[{index}]"):
            changes += ensure_thing(registry, thing)
    for index, policy in enumerate(resources.policies):
        with _located(config, f"resources.policies[{index}]"):
            changes += ensure_policy(registry, policy.policy_name, policy.document)
    for index, certificate in enumerate(resources.certificates):
        changes += _apply_certificate(
            config, registry, certificate, f"resources.certificates[{index}]", own_ca_pem
        )
    return changes


@contextlib.contextmanager
def _located(config: Config, path: str) -> Iterator[None]:
    """Turn a registry error into a ConfigError naming the config file and ``path``."""
    try:
        yield
    except ConfigError:
        raise
    except BrokerError as exc:
        raise ConfigError(f"{config.source}: {path}: {exc}") from exc


def ensure_thing(registry: CertificateRegistry, thing: ThingResource) -> list[str]:
    """Create ``thing`` if missing, else give it the declared type and attributes.

    Returns:
        The changes made (at most one line).

    Raises:
        BrokerError: the registry refused (e.g. InvalidRequestException).
    """
    wanted = dict(thing.attributes)
    current = _describe_thing(registry, thing.thing_name)
    if current is not None:
        same_type = current.thing_type_name == thing.thing_type_name
        if same_type and dict(current.attributes) == wanted:
            return []
        if thing.thing_type_name is not None and not same_type:
            _ensure_thing_type(registry, thing.thing_type_name)
        registry.update_thing(
            thing.thing_name,
            thing_type_name=None if same_type else thing.thing_type_name,
            remove_thing_type=thing.thing_type_name is None and current.thing_type_name is not None,
            attributes=wanted,
            merge=False,
        )
        return [f"updated thing {thing.thing_name!r}"]
    if thing.thing_type_name is not None:
        _ensure_thing_type(registry, thing.thing_type_name)
    registry.create_thing(
        thing.thing_name, thing_type_name=thing.thing_type_name, attributes=wanted
    )
    return [f"created thing {thing.thing_name!r}"]


def thing_exists(registry: CertificateRegistry, thing_name: str) -> bool:
    """Whether the registry has a thing called ``thing_name``."""
    return _describe_thing(registry, thing_name) is not None


def _describe_thing(registry: CertificateRegistry, thing_name: str) -> Thing | None:
    try:
        return registry.describe_thing(thing_name)
    except BrokerError as exc:
        if is_aws_error(exc, "ResourceNotFoundException"):
            return None
        raise


def _ensure_thing_type(registry: CertificateRegistry, thing_type_name: str) -> None:
    try:
        registry.create_thing_type(thing_type_name)
    except BrokerError as exc:
        if not is_aws_error(exc, "ResourceAlreadyExistsException"):
            raise


def ensure_policy(registry: CertificateRegistry, policy_name: str, document: str) -> list[str]:
    """Create policy ``policy_name`` with ``document``, or make ``document`` its default version.

    Documents are compared as parsed JSON, so reformatting alone never makes a new version.

    Returns:
        The changes made (at most one line).

    Raises:
        BrokerError: the registry refused (MalformedPolicyException for a bad document).
    """
    try:
        current = registry.get_policy(policy_name)
    except BrokerError as exc:
        if not is_aws_error(exc, "ResourceNotFoundException"):
            raise
        registry.create_policy(policy_name, document)
        return [f"created policy {policy_name!r}"]
    if _same_json(current.document, document):
        return []
    versions = registry.list_policy_versions(policy_name)
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min(
            (v for v in versions if not v.is_default),
            key=lambda v: (v.create_date, int(v.version_id)),
        )
        registry.delete_policy_version(policy_name, oldest.version_id)
    version = registry.create_policy_version(policy_name, document, set_as_default=True)
    return [f"set policy {policy_name!r} to version {version.version_id}"]


def _same_json(left: str, right: str) -> bool:
    try:
        return bool(json.loads(left) == json.loads(right))
    except ValueError:
        return left == right


def ensure_thing_principal(
    registry: CertificateRegistry, thing_name: str, principal_arn: str
) -> list[str]:
    """Attach ``principal_arn`` to ``thing_name`` unless it is attached already."""
    if principal_arn in registry.list_thing_principals(thing_name):
        return []
    registry.attach_thing_principal(thing_name, principal_arn)
    return [f"attached {_short(principal_arn)} to thing {thing_name!r}"]


def ensure_policy_attached(
    registry: CertificateRegistry, policy_name: str, target_arn: str
) -> list[str]:
    """Attach policy ``policy_name`` to ``target_arn`` unless it is attached already."""
    attached = {policy.policy_name for policy in registry.list_attached_policies(target_arn)}
    if policy_name in attached:
        return []
    registry.attach_policy(policy_name, target_arn)
    return [f"attached policy {policy_name!r} to {_short(target_arn)}"]


def _short(arn: str) -> str:
    """``cert/<first 12 hex digits>`` for a certificate ARN; other ARNs unchanged."""
    _, _, resource = arn.rpartition(":")
    kind, _, name = resource.partition("/")
    return f"{kind}/{name[:12]}" if kind == "cert" else arn


def _apply_certificate(
    config: Config,
    registry: CertificateRegistry,
    certificate: CertificateResource,
    path: str,
    own_ca_pem: bytes | str,
) -> list[str]:
    changes: list[str] = []
    with _located(config, f"{path}.certificate_file"):
        pem = _read_certificate(certificate)
        cert_id = pki.certificate_id(pem)
        record = registry.get_certificate(cert_id)
        if record is None:
            record = registry.register_certificate(
                pem, status=CertificateStatus.ACTIVE, own_ca_pem=_bytes(own_ca_pem)
            )
            changes.append(f"registered certificate {cert_id[:12]} ACTIVE")
    # The ARN in the configured region and account (a stored ARN may predate a config change).
    arn = pki.certificate_arn(config.region, config.account_id, record.certificate_id)
    for index, thing_name in enumerate(certificate.things):
        with _located(config, f"{path}.things[{index}]"):
            changes += ensure_thing_principal(registry, thing_name, arn)
    for index, policy_name in enumerate(certificate.policies):
        with _located(config, f"{path}.policies[{index}]"):
            changes += ensure_policy_attached(registry, policy_name, arn)
    return changes


def _read_certificate(certificate: CertificateResource) -> bytes:
    path = certificate.certificate_file
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BrokerError(f"{path}: file not found") from None
    except OSError as exc:
        raise BrokerError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _bytes(pem: bytes | str) -> bytes:
    return pem.encode("ascii") if isinstance(pem, str) else pem
