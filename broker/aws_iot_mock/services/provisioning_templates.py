"""The provisioning-template verbs of the ``iot`` control plane, over the provisioning store.

The service layer: each method takes the request members of botocore's ``iot`` model (a dict)
and returns the response members, raising ``AwsApiError`` with the model's exception names
(`PROVISIONING_OPERATIONS` maps operation names to them). The pure rules are in
``aws_iot_mock.aws.provisioning.templates``; here each verb reads and writes the store in one
transaction. The CLI and the broker use the store directly (RegisterThing reads the template on
every request), so no broker needs to be running for these verbs.

Sources: https://docs.aws.amazon.com/iot/latest/apireference/API_CreateProvisioningTemplate.html
and the other template verbs' pages; botocore's ``iot`` model.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.provisioning import templates
from aws_iot_mock.aws.provisioning.engine import EngineOptions
from aws_iot_mock.state.provisioning import ProvisioningStore

__all__ = ["MAX_TEMPLATES", "PROVISIONING_OPERATIONS", "ProvisioningTemplateService"]

# The most templates the store holds, so that it stays bounded: a bound of this emulator (AWS's
# quota is not in the sources used here), refused with the LimitExceededException that
# CreateProvisioningTemplate's model lists.
MAX_TEMPLATES: Final = 256

logger = logging.getLogger("aws_iot_mock.provisioning")

Operation = Callable[[dict[str, Any]], dict[str, Any]]


class ProvisioningTemplateService:
    """Create, describe, list, update and delete provisioning templates and their versions.

    Args:
        store: the provisioning store.
        region: for template ARNs.
        account_id: for template ARNs.
        clock: epoch seconds.
        options: the template engine's choices (bodies are checked at creation).
    """

    def __init__(
        self,
        store: ProvisioningStore,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float],
        options: EngineOptions | None = None,
    ) -> None:
        self._store = store
        self._region = region
        self._account_id = account_id
        self._clock = clock
        self._options = options

    def operations(self) -> dict[str, Operation]:
        """Operation name -> this instance's handler (for the API door's operation table)."""
        return {
            name: functools.partial(self._guarded, handler)
            for name, handler in PROVISIONING_OPERATIONS.items()
        }

    def _guarded(
        self,
        handler: Callable[[ProvisioningTemplateService, dict[str, Any]], dict[str, Any]],
        request: dict[str, Any],
    ) -> dict[str, Any]:
        """Run ``handler``; a store failure is the service's (InternalFailureException, 500)."""
        try:
            return handler(self, request)
        except sqlite3.Error as exc:
            logger.exception("provisioning store failed")
            raise AwsApiError(
                "InternalFailureException", "An unexpected error has occurred."
            ) from exc

    def create_provisioning_template(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateProvisioningTemplate: ``{templateArn, templateName, defaultVersionId}``."""
        with self._store.writing() as writer:
            if (
                len(writer.templates) >= MAX_TEMPLATES
                and request.get("templateName") not in writer.templates
            ):
                raise AwsApiError(
                    "LimitExceededException",
                    f"An account can have at most {MAX_TEMPLATES} provisioning templates",
                )
            reply, template = templates.create_provisioning_template(
                writer.templates,
                request,
                region=self._region,
                account_id=self._account_id,
                now=self._clock(),
                options=self._options,
            )
            writer.put(template)
        return reply

    def describe_provisioning_template(self, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeProvisioningTemplate (the default version's body)."""
        name = _name(request)
        return templates.describe_provisioning_template(self._one(name), name)

    def list_provisioning_templates(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListProvisioningTemplates: ``{templates, nextToken}``."""
        return templates.list_provisioning_templates(
            self._store.templates(),
            max_results=request.get("maxResults"),
            next_token=request.get("nextToken"),
        )

    def update_provisioning_template(self, request: dict[str, Any]) -> dict[str, Any]:
        """UpdateProvisioningTemplate: no output."""
        name = _name(request)
        with self._store.writing() as writer:
            writer.put(
                templates.update_provisioning_template(
                    writer.templates, name, request, now=self._clock()
                )
            )
        return {}

    def delete_provisioning_template(self, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteProvisioningTemplate: no output."""
        name = _name(request)
        with self._store.writing() as writer:
            writer.delete(templates.delete_provisioning_template(writer.templates, name))
        return {}

    def create_provisioning_template_version(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateProvisioningTemplateVersion: ``{templateArn, templateName, versionId, ...}``."""
        name = _name(request)
        with self._store.writing() as writer:
            reply, template = templates.create_provisioning_template_version(
                writer.templates,
                name,
                request.get("templateBody"),
                set_as_default=request.get("setAsDefault") is True,
                now=self._clock(),
                options=self._options,
            )
            writer.put(template)
        return reply

    def describe_provisioning_template_version(self, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeProvisioningTemplateVersion."""
        name = _name(request)
        return templates.describe_provisioning_template_version(
            self._one(name), name, _version_id(request)
        )

    def list_provisioning_template_versions(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListProvisioningTemplateVersions: ``{versions, nextToken}``."""
        name = _name(request)
        return templates.list_provisioning_template_versions(
            self._one(name),
            name,
            max_results=request.get("maxResults"),
            next_token=request.get("nextToken"),
        )

    def delete_provisioning_template_version(self, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteProvisioningTemplateVersion: no output (the default version cannot go)."""
        name = _name(request)
        with self._store.writing() as writer:
            writer.put(
                templates.delete_provisioning_template_version(
                    writer.templates, name, _version_id(request)
                )
            )
        return {}

    def _one(self, name: str) -> dict[str, templates.ProvisioningTemplate]:
        template = self._store.template(name)
        return {} if template is None else {name: template}


PROVISIONING_OPERATIONS: Final[
    Mapping[str, Callable[[ProvisioningTemplateService, dict[str, Any]], dict[str, Any]]]
] = {
    "CreateProvisioningTemplate": ProvisioningTemplateService.create_provisioning_template,
    "DescribeProvisioningTemplate": ProvisioningTemplateService.describe_provisioning_template,
    "ListProvisioningTemplates": ProvisioningTemplateService.list_provisioning_templates,
    "UpdateProvisioningTemplate": ProvisioningTemplateService.update_provisioning_template,
    "DeleteProvisioningTemplate": ProvisioningTemplateService.delete_provisioning_template,
    "CreateProvisioningTemplateVersion": (
        ProvisioningTemplateService.create_provisioning_template_version
    ),
    "DescribeProvisioningTemplateVersion": (
        ProvisioningTemplateService.describe_provisioning_template_version
    ),
    "ListProvisioningTemplateVersions": (
        ProvisioningTemplateService.list_provisioning_template_versions
    ),
    "DeleteProvisioningTemplateVersion": (
        ProvisioningTemplateService.delete_provisioning_template_version
    ),
}
"""botocore ``iot`` operation name -> the `ProvisioningTemplateService` method that serves it."""


def _name(request: Mapping[str, Any]) -> str:
    name = request.get("templateName")
    if not isinstance(name, str) or not name:
        raise AwsApiError("InvalidRequestException", "templateName is required")
    return name


def _version_id(request: Mapping[str, Any]) -> int:
    version = request.get("versionId")
    if isinstance(version, bool) or not isinstance(version, int):
        raise AwsApiError("InvalidRequestException", "versionId must be an integer")
    return version
