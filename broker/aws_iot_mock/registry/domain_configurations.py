"""Domain configurations created through the API (CreateDomainConfiguration and siblings).

A domain configuration gives the data endpoint another host name with its own TLS security
policy: "AWS IoT Core uses the server name indication (SNI) TLS extension to apply domain
configurations" (https://docs.aws.amazon.com/iot/latest/developerguide/iot-custom-endpoints-configurable.html).
The running broker re-reads them when the registry generation moves: an ENABLED one is accepted
in SNI with its policy, a DISABLED one is refused (``aws_iot_mock.server.domains``).

Stored and echoed as sent, not acted on: ``serverCertificateArns`` (there is no ACM here; the
broker serves its local CA's server certificates, re-issued to carry the new name),
``authorizerConfig`` (custom authorizers are not emulated), ``serverCertificateConfig``,
``authenticationType``, ``applicationProtocol`` and ``clientCertificateConfig``.

Shapes follow API_CreateDomainConfiguration, API_DescribeDomainConfiguration,
API_UpdateDomainConfiguration, API_ListDomainConfigurations and API_DeleteDomainConfiguration
(https://docs.aws.amazon.com/iot/latest/apireference/).
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry._store import Store
from aws_iot_mock.registry._util import from_iso, iso, utc
from aws_iot_mock.registry.errors import (
    InvalidRequestError,
    LimitExceededError,
    ResourceAlreadyExistsError,
)

__all__ = [
    "DOMAIN_DISABLED",
    "DOMAIN_ENABLED",
    "MAX_DOMAIN_CONFIGURATIONS",
    "DomainConfigurationRecord",
    "DomainConfigurationsMixin",
]

DOMAIN_ENABLED = "ENABLED"
DOMAIN_DISABLED = "DISABLED"
# API_CreateDomainConfiguration, domainConfigurationName: "Minimum length of 1. Maximum length
# of 128. Pattern: [\w.-]+" (Java's \w: ASCII letters, digits, underscore).
_NAME = re.compile(r"[\w.-]{1,128}", re.ASCII)
# AWS IoT Core quotas, "Domain configurations per account": 10.
MAX_DOMAIN_CONFIGURATIONS = 10
_SERVICE_TYPES = ("DATA", "CREDENTIAL_PROVIDER", "JOBS")
_COLUMNS = (
    "domain_configuration_name, domain_name, status, service_type, security_policy, settings,"
    " creation_date, last_status_change_date"
)


@dataclass(frozen=True)
class DomainConfigurationRecord:
    """One domain configuration.

    Attributes:
        name: ``domainConfigurationName``.
        domain_name: the host name devices send in SNI.
        status: ``ENABLED`` or ``DISABLED``.
        service_type: ``DATA``, ``CREDENTIAL_PROVIDER`` or ``JOBS``.
        security_policy: ``tlsConfig.securityPolicy``.
        settings: the other members as sent (and ``arn``, ``domainType``), read-only.
        creation_date: when it was created (UTC).
        last_status_change_date: when its status last changed (UTC).
    """

    name: str
    domain_name: str
    status: str
    service_type: str
    security_policy: str
    settings: Mapping[str, Any]
    creation_date: datetime
    last_status_change_date: datetime

    @property
    def arn(self) -> str:
        """``arn:aws:iot:<region>:<account>:domainconfiguration/<name>/<id>``."""
        return str(self.settings["arn"])

    def to_description(self) -> dict[str, Any]:
        """DescribeDomainConfiguration's response (timestamps as ``datetime``)."""
        settings = self.settings
        description: dict[str, Any] = {
            "domainConfigurationName": self.name,
            "domainConfigurationArn": self.arn,
            "domainName": self.domain_name,
            "serverCertificates": [
                {"serverCertificateArn": arn, "serverCertificateStatus": "VALID"}
                for arn in settings.get("serverCertificateArns", ())
            ],
        }
        if "authorizerConfig" in settings:
            description["authorizerConfig"] = settings["authorizerConfig"]
        description.update(
            {
                "domainConfigurationStatus": self.status,
                "serviceType": self.service_type,
                "domainType": settings.get("domainType", "CUSTOMER_MANAGED"),
                "lastStatusChangeDate": self.last_status_change_date,
                "tlsConfig": {"securityPolicy": self.security_policy},
            }
        )
        for member in (
            "serverCertificateConfig",
            "authenticationType",
            "applicationProtocol",
            "clientCertificateConfig",
        ):
            if member in settings:
                description[member] = settings[member]
        return description

    def to_summary(self) -> dict[str, str]:
        """One element of ListDomainConfigurations' ``domainConfigurations``."""
        return {
            "domainConfigurationName": self.name,
            "domainConfigurationArn": self.arn,
            "serviceType": self.service_type,
        }


class DomainConfigurationsMixin(Store):
    """Domain configurations (mixed into CertificateRegistry)."""

    def create_domain_configuration(
        self,
        name: str,
        domain_name: str,
        *,
        security_policy: str,
        service_type: str = "DATA",
        settings: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> DomainConfigurationRecord:
        """Create an ENABLED domain configuration, like CreateDomainConfiguration.

        The caller has checked ``domain_name`` (a DNS name, not the endpoint or a configured
        domain) and ``security_policy`` (one of AWS's).

        Raises:
            InvalidRequestError: a malformed name or service type.
            LimitExceededError: ten domain configurations exist already.
            ResourceAlreadyExistsError: the name, or the domain name, is taken.
        """
        check_domain_configuration_name(name)
        if service_type not in _SERVICE_TYPES:
            raise InvalidRequestError(
                f"serviceType {service_type!r} is not one of {', '.join(_SERVICE_TYPES)}"
            )
        moment = iso(utc(now))
        stored = dict(settings or {})
        stored["arn"] = self._arn(f"domainconfiguration/{name}/{secrets.token_hex(3)[:5]}")
        with self._write() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM domain_configurations").fetchone()
            if connection.execute(
                "SELECT 1 FROM domain_configurations WHERE domain_configuration_name = ?", (name,)
            ).fetchone():
                raise ResourceAlreadyExistsError(
                    f"Domain configuration with name {name} already exists"
                )
            if connection.execute(
                "SELECT 1 FROM domain_configurations WHERE domain_name = ?", (domain_name,)
            ).fetchone():
                raise ResourceAlreadyExistsError(
                    f"Domain name {domain_name} is already used by another domain configuration"
                )
            if count >= MAX_DOMAIN_CONFIGURATIONS:
                raise LimitExceededError(
                    f"An account can have at most {MAX_DOMAIN_CONFIGURATIONS} domain configurations"
                )
            connection.execute(
                f"INSERT INTO domain_configurations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    domain_name,
                    DOMAIN_ENABLED,
                    service_type,
                    security_policy,
                    json.dumps(stored, sort_keys=True),
                    moment,
                    moment,
                ),
            )
            return _select(connection, name)

    def describe_domain_configuration(self, name: str) -> DomainConfigurationRecord:
        """Return a domain configuration, like DescribeDomainConfiguration.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such domain configuration.
        """
        check_domain_configuration_name(name)
        with self._read() as connection:
            return _select(connection, name)

    def list_domain_configurations(
        self, *, service_type: str | None = None
    ) -> list[DomainConfigurationRecord]:
        """Every domain configuration, by name (ListDomainConfigurations), optionally by type."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM domain_configurations ORDER BY domain_configuration_name"
            ).fetchall()
        records = [_record(row) for row in rows]
        if service_type is not None:
            records = [record for record in records if record.service_type == service_type]
        return records

    def update_domain_configuration(
        self,
        name: str,
        *,
        status: str | None = None,
        security_policy: str | None = None,
        settings: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
        now: datetime | None = None,
    ) -> DomainConfigurationRecord:
        """Change a domain configuration, like UpdateDomainConfiguration.

        Args:
            name: the domain configuration.
            status: ``ENABLED`` or ``DISABLED``; a change sets ``lastStatusChangeDate``.
            security_policy: a new TLS security policy (checked by the caller).
            settings: members to replace (``authorizerConfig``, ``serverCertificateConfig``...).
            remove: members to remove (``authorizerConfig`` for ``removeAuthorizerConfig``).
            now: the modification time (timezone-aware); defaults to the system clock.

        Raises:
            InvalidRequestError: a malformed name or status.
            ResourceNotFoundError: no such domain configuration.
        """
        check_domain_configuration_name(name)
        if status is not None and status not in (DOMAIN_ENABLED, DOMAIN_DISABLED):
            raise InvalidRequestError(
                f"domainConfigurationStatus {status!r} is not one of ENABLED, DISABLED"
            )
        moment = iso(utc(now))
        with self._write() as connection:
            current = _select(connection, name)
            stored = dict(current.settings)
            stored.update(settings or {})
            for member in remove:
                stored.pop(member, None)
            changed = status is not None and status != current.status
            connection.execute(
                "UPDATE domain_configurations SET status = ?, security_policy = ?, settings = ?,"
                " last_status_change_date = ? WHERE domain_configuration_name = ?",
                (
                    status if status is not None else current.status,
                    security_policy if security_policy is not None else current.security_policy,
                    json.dumps(stored, sort_keys=True),
                    moment if changed else iso(current.last_status_change_date),
                    name,
                ),
            )
            return _select(connection, name)

    def delete_domain_configuration(self, name: str) -> None:
        """Delete a DISABLED domain configuration, like DeleteDomainConfiguration.

        AWS asks for the configuration to be disabled first ("Before you can delete a domain
        configuration, you must first disable it", iot-custom-endpoints-configurable.html).

        Raises:
            InvalidRequestError: the name is malformed, or the configuration is ENABLED.
            ResourceNotFoundError: no such domain configuration.
        """
        check_domain_configuration_name(name)
        with self._write() as connection:
            current = _select(connection, name)
            if current.status == DOMAIN_ENABLED:
                raise InvalidRequestError(
                    f"Domain configuration {name} is ENABLED; disable it "
                    "(update-domain-configuration --domain-configuration-status DISABLED) "
                    "before deleting it"
                )
            connection.execute(
                "DELETE FROM domain_configurations WHERE domain_configuration_name = ?", (name,)
            )
            connection.execute("DELETE FROM resource_tags WHERE resource_arn = ?", (current.arn,))


def check_domain_configuration_name(name: str) -> None:
    """Raise InvalidRequestError unless ``name`` is 1-128 letters, digits and ``_.-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            f"domainConfigurationName {name!r} is invalid: 1-128 characters of [a-zA-Z0-9_.-]"
        )


def _select(connection: sqlite3.Connection, name: str) -> DomainConfigurationRecord:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM domain_configurations WHERE domain_configuration_name = ?",
        (name,),
    ).fetchone()
    if row is None:
        raise ResourceNotFoundError(
            f"ResourceNotFoundException: Domain configuration {name} does not exist"
        )
    return _record(row)


def _record(row: Sequence[Any]) -> DomainConfigurationRecord:
    name, domain_name, status, service_type, policy, settings, created, changed = row
    return DomainConfigurationRecord(
        name=name,
        domain_name=domain_name,
        status=status,
        service_type=service_type,
        security_policy=policy,
        settings=MappingProxyType(json.loads(settings)),
        creation_date=from_iso(created),
        last_status_change_date=from_iso(changed),
    )
