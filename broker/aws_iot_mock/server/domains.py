"""Which host names the doors serve, and with which TLS security policy. Pure.

The endpoint and the config file's ``domain_configurations`` are fixed for the broker's life;
domain configurations created through the API (CreateDomainConfiguration) live in the registry
and change while it runs. ``served_domains`` merges both into one value the broker swaps in when
the registry generation moves: an ENABLED registry domain is accepted in SNI with its own
security policy; a DISABLED one is refused with ``DOMAIN_CONFIGURATION_DISABLED`` ("AWS IoT Core
uses the server name indication (SNI) TLS extension to apply domain configurations",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-custom-endpoints-configurable.html).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from aws_iot_mock.config import Config

__all__ = ["RegistryDomain", "ServedDomains", "served_domains"]

# registry.domain_configurations.DOMAIN_ENABLED (not imported: the doors read the registry
# before its package is loaded, see server.registry_view).
_DOMAIN_ENABLED = "ENABLED"


class RegistryDomain(Protocol):
    """What is read of a registry domain configuration.

    A ``DomainConfigurationRecord``, or a ``server.registry_view.DomainRow``.
    """

    @property
    def name(self) -> str:
        """``domainConfigurationName``."""

    @property
    def domain_name(self) -> str:
        """The host name devices send in SNI."""

    @property
    def status(self) -> str:
        """``ENABLED`` or ``DISABLED``."""

    @property
    def security_policy(self) -> str:
        """``tlsConfig.securityPolicy``."""


@dataclass(frozen=True)
class ServedDomains:
    """The names the doors serve.

    Attributes:
        accepted: lower-case names accepted in SNI.
        disabled: lower-case name -> domain configuration name, for DISABLED ones.
        policies: lower-case name -> security policy, for every accepted custom domain.
        default_policy: the policy of the endpoint (and of a missing or unknown SNI).
        server_names: the names the server certificates carry (every registry domain, enabled
            or not, so that toggling one does not re-issue them).
    """

    accepted: frozenset[str]
    disabled: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    policies: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    default_policy: str = ""
    server_names: tuple[str, ...] = ()

    def policy_for(self, sni: str | None) -> str:
        """The security policy of a handshake with this SNI (the default for none or unknown)."""
        if sni is None:
            return self.default_policy
        return self.policies.get(sni.lower(), self.default_policy)

    @property
    def policies_in_use(self) -> frozenset[str]:
        """Every policy an SSL context is needed for."""
        return frozenset({self.default_policy, *self.policies.values()})


def served_domains(config: Config, registry_domains: Iterable[RegistryDomain]) -> ServedDomains:
    """Merge the configuration's names with the registry's domain configurations.

    A registry domain that repeats a configured name is ignored (the API refuses to create
    one; this only guards against a config file edited afterwards).
    """
    accepted = set(config.accepted_sni_names)
    policies = {
        domain.domain_name.lower(): domain.security_policy
        for domain in config.domain_configurations
    }
    disabled: dict[str, str] = {}
    names = list(config.server_names)
    for record in registry_domains:
        name = record.domain_name.lower()
        if name in config.accepted_sni_names:
            continue
        if all(name != existing.lower() for existing in names):
            names.append(record.domain_name)
        if record.status == _DOMAIN_ENABLED:
            accepted.add(name)
            policies[name] = record.security_policy
        else:
            disabled[name] = record.name
    return ServedDomains(
        accepted=frozenset(accepted),
        disabled=MappingProxyType(disabled),
        policies=MappingProxyType(policies),
        default_policy=config.tls.security_policy,
        server_names=tuple(names),
    )
