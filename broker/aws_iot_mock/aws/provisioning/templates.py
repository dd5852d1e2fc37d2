"""Provisioning templates: the control-plane verbs and RegisterThing's template lookup. Pure.

A template is a value (`ProvisioningTemplate`, with its versions); each verb takes the current
templates (a mapping name -> template) and the request members by their botocore ``iot`` model
names, and returns the response and the template to store (or the name to delete). Errors are
`AwsApiError` with the model's exception names.

Sources: the AWS IoT API reference, e.g.
https://docs.aws.amazon.com/iot/latest/apireference/API_CreateProvisioningTemplate.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_CreateProvisioningTemplateVersion.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteProvisioningTemplateVersion.html,
and botocore's ``iot`` model (patterns, lengths, exceptions); "Provisioning templates",
https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html; "Pre-provisioning
hooks", https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.api_pages import page
from aws_iot_mock.aws.provisioning.device import ProvisioningError
from aws_iot_mock.aws.provisioning.engine import (
    EngineOptions,
    ParsedTemplate,
    TemplateError,
    parse_template,
)

__all__ = [
    "MAX_TEMPLATE_VERSIONS",
    "ProvisioningTemplate",
    "TemplateVersion",
    "create_provisioning_template",
    "create_provisioning_template_version",
    "delete_provisioning_template",
    "delete_provisioning_template_version",
    "describe_provisioning_template",
    "describe_provisioning_template_version",
    "list_provisioning_template_versions",
    "list_provisioning_templates",
    "template_for_register_thing",
    "update_provisioning_template",
]

# "You can have up to five versions of a fleet provisioning template" (AWS IoT quotas,
# https://docs.aws.amazon.com/general/latest/gr/iot_device_management.html); beyond it
# CreateProvisioningTemplateVersion raises VersionsLimitExceededException.
MAX_TEMPLATE_VERSIONS: Final = 5
_NAME: Final = re.compile(r"[0-9A-Za-z_-]{1,36}")
_BODY_MAX: Final = 10240
_DESCRIPTION_MAX: Final = 500
_PAYLOAD_VERSION: Final = re.compile(r"[0-9-]{10,32}")


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """One version of a template's body.

    Attributes:
        version_id: 1, 2, ... in creation order.
        template_body: the JSON text.
        created_at: epoch seconds.
    """

    version_id: int
    template_body: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ProvisioningTemplate:
    """A provisioning template, as stored.

    Attributes:
        template_name: the name.
        template_arn: ``arn:aws:iot:<region>:<account>:provisioningtemplate/<name>``.
        provisioning_role_arn: stored; the emulator assumes no roles.
        enabled: RegisterThing refuses a disabled template.
        template_type: FLEET_PROVISIONING or JITP.
        versions: every version, oldest first.
        default_version_id: the version RegisterThing uses.
        created_at: epoch seconds.
        last_modified_at: epoch seconds.
        description: the description, if any.
        pre_provisioning_hook: ``{"targetArn", "payloadVersion"}`` as given, or None.
        tags: as given.
    """

    template_name: str
    template_arn: str
    provisioning_role_arn: str
    enabled: bool
    template_type: str
    versions: tuple[TemplateVersion, ...]
    default_version_id: int
    created_at: float
    last_modified_at: float
    description: str | None = None
    pre_provisioning_hook: Mapping[str, Any] | None = None
    tags: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    @property
    def default_version(self) -> TemplateVersion:
        """The version RegisterThing evaluates."""
        return next(v for v in self.versions if v.version_id == self.default_version_id)


def create_provisioning_template(
    templates: Mapping[str, ProvisioningTemplate],
    request: Mapping[str, Any],
    *,
    region: str,
    account_id: str,
    now: float,
    options: EngineOptions | None = None,
) -> tuple[dict[str, Any], ProvisioningTemplate]:
    """CreateProvisioningTemplate: ``{templateArn, templateName, defaultVersionId}``.

    Raises:
        AwsApiError: InvalidRequestException (bad member or template body),
            ResourceAlreadyExistsException.
    """
    name = _name(request.get("templateName"))
    if name in templates:
        raise AwsApiError("ResourceAlreadyExistsException", f"Template {name} already exists")
    body = _body(request.get("templateBody"), options)
    role = _role(request.get("provisioningRoleArn"), required=True)
    template_type = request.get("type", "FLEET_PROVISIONING")
    if template_type not in ("FLEET_PROVISIONING", "JITP"):
        raise AwsApiError("InvalidRequestException", "type must be FLEET_PROVISIONING or JITP")
    hook = _hook(request.get("preProvisioningHook"))
    if hook is not None and template_type != "FLEET_PROVISIONING":
        # "Only supports template of type FLEET_PROVISIONING" (API_ProvisioningHook).
        raise AwsApiError(
            "InvalidRequestException",
            "A pre-provisioning hook is only supported by FLEET_PROVISIONING templates",
        )
    tags = request.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
        raise AwsApiError("InvalidRequestException", "tags must be a list of {Key, Value}")
    enabled = request.get("enabled", False)
    if not isinstance(enabled, bool):
        raise AwsApiError("InvalidRequestException", "enabled must be true or false")
    template = ProvisioningTemplate(
        template_name=name,
        template_arn=f"arn:aws:iot:{region}:{account_id}:provisioningtemplate/{name}",
        provisioning_role_arn=role or "",
        enabled=enabled,
        template_type=template_type,
        versions=(TemplateVersion(1, body, now),),
        default_version_id=1,
        created_at=now,
        last_modified_at=now,
        description=_description(request.get("description")),
        pre_provisioning_hook=hook,
        tags=tuple(tags),
    )
    reply = {"templateArn": template.template_arn, "templateName": name, "defaultVersionId": 1}
    return reply, template


def describe_provisioning_template(
    templates: Mapping[str, ProvisioningTemplate], template_name: str
) -> dict[str, Any]:
    """DescribeProvisioningTemplate (the default version's body).

    Raises:
        AwsApiError: ResourceNotFoundException.
    """
    template = _get(templates, template_name)
    reply: dict[str, Any] = {
        "templateArn": template.template_arn,
        "templateName": template.template_name,
        "creationDate": template.created_at,
        "lastModifiedDate": template.last_modified_at,
        "defaultVersionId": template.default_version_id,
        "templateBody": template.default_version.template_body,
        "enabled": template.enabled,
        "provisioningRoleArn": template.provisioning_role_arn,
        "type": template.template_type,
    }
    if template.description is not None:
        reply["description"] = template.description
    if template.pre_provisioning_hook is not None:
        reply["preProvisioningHook"] = dict(template.pre_provisioning_hook)
    return reply


def list_provisioning_templates(
    templates: Mapping[str, ProvisioningTemplate],
    *,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListProvisioningTemplates, by name, paginated.

    Raises:
        AwsApiError: InvalidRequestException (bad page size or token).
    """
    names = sorted(templates)
    items_page, token = page(names, max_results, next_token)
    items = []
    for name in items_page:
        template = templates[name]
        item: dict[str, Any] = {
            "templateArn": template.template_arn,
            "templateName": name,
            "creationDate": template.created_at,
            "lastModifiedDate": template.last_modified_at,
            "enabled": template.enabled,
            "type": template.template_type,
        }
        if template.description is not None:
            item["description"] = template.description
        items.append(item)
    reply: dict[str, Any] = {"templates": items}
    if token is not None:
        reply["nextToken"] = token
    return reply


def update_provisioning_template(
    templates: Mapping[str, ProvisioningTemplate],
    template_name: str,
    request: Mapping[str, Any],
    *,
    now: float,
) -> ProvisioningTemplate:
    """UpdateProvisioningTemplate: description, enabled, defaultVersionId, role, hook.

    Returns:
        The template to store (the response is empty).

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException.
    """
    template = _get(templates, template_name)
    changes: dict[str, Any] = {"last_modified_at": now}
    if request.get("description") is not None:
        changes["description"] = _description(request["description"])
    if request.get("enabled") is not None:
        if not isinstance(request["enabled"], bool):
            raise AwsApiError("InvalidRequestException", "enabled must be true or false")
        changes["enabled"] = request["enabled"]
    if request.get("defaultVersionId") is not None:
        version = request["defaultVersionId"]
        if version not in {v.version_id for v in template.versions}:
            raise AwsApiError(
                "InvalidRequestException", f"Template {template_name} has no version {version}"
            )
        changes["default_version_id"] = version
    if request.get("provisioningRoleArn") is not None:
        changes["provisioning_role_arn"] = _role(request["provisioningRoleArn"], required=True)
    hook = _hook(request.get("preProvisioningHook"))
    remove = request.get("removePreProvisioningHook") is True
    if hook is not None and remove:
        raise AwsApiError(
            "InvalidRequestException",
            "preProvisioningHook and removePreProvisioningHook cannot be given together",
        )
    if hook is not None:
        if template.template_type != "FLEET_PROVISIONING":
            raise AwsApiError(
                "InvalidRequestException",
                "A pre-provisioning hook is only supported by FLEET_PROVISIONING templates",
            )
        changes["pre_provisioning_hook"] = hook
    if remove:
        changes["pre_provisioning_hook"] = None
    return replace(template, **changes)


def delete_provisioning_template(
    templates: Mapping[str, ProvisioningTemplate], template_name: str
) -> str:
    """DeleteProvisioningTemplate: the name to delete (the response is empty).

    Raises:
        AwsApiError: ResourceNotFoundException.
    """
    return _get(templates, template_name).template_name


def create_provisioning_template_version(
    templates: Mapping[str, ProvisioningTemplate],
    template_name: str,
    template_body: object,
    *,
    set_as_default: bool = False,
    now: float,
    options: EngineOptions | None = None,
) -> tuple[dict[str, Any], ProvisioningTemplate]:
    """CreateProvisioningTemplateVersion.

    Returns:
        ``{templateArn, templateName, versionId, isDefaultVersion}`` and the template to store.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException,
            VersionsLimitExceededException.
    """
    template = _get(templates, template_name)
    body = _body(template_body, options)
    if len(template.versions) >= MAX_TEMPLATE_VERSIONS:
        raise AwsApiError(
            "VersionsLimitExceededException",
            f"Template {template_name} already has {MAX_TEMPLATE_VERSIONS} versions",
        )
    version_id = max(v.version_id for v in template.versions) + 1
    updated = replace(
        template,
        versions=(*template.versions, TemplateVersion(version_id, body, now)),
        default_version_id=version_id if set_as_default else template.default_version_id,
        last_modified_at=now,
    )
    reply = {
        "templateArn": template.template_arn,
        "templateName": template.template_name,
        "versionId": version_id,
        "isDefaultVersion": bool(set_as_default),
    }
    return reply, updated


def describe_provisioning_template_version(
    templates: Mapping[str, ProvisioningTemplate], template_name: str, version_id: int
) -> dict[str, Any]:
    """DescribeProvisioningTemplateVersion.

    Raises:
        AwsApiError: ResourceNotFoundException.
    """
    template = _get(templates, template_name)
    version = _version(template, version_id)
    return {
        "versionId": version.version_id,
        "creationDate": version.created_at,
        "templateBody": version.template_body,
        "isDefaultVersion": version.version_id == template.default_version_id,
    }


def list_provisioning_template_versions(
    templates: Mapping[str, ProvisioningTemplate],
    template_name: str,
    *,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListProvisioningTemplateVersions, oldest first.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException.
    """
    template = _get(templates, template_name)
    items_page, token = page(list(template.versions), max_results, next_token)
    reply: dict[str, Any] = {
        "versions": [
            {
                "versionId": v.version_id,
                "creationDate": v.created_at,
                "isDefaultVersion": v.version_id == template.default_version_id,
            }
            for v in items_page
        ]
    }
    if token is not None:
        reply["nextToken"] = token
    return reply


def delete_provisioning_template_version(
    templates: Mapping[str, ProvisioningTemplate], template_name: str, version_id: int
) -> ProvisioningTemplate:
    """DeleteProvisioningTemplateVersion; the default version cannot be deleted.

    Raises:
        AwsApiError: ResourceNotFoundException, DeleteConflictException (the default version;
            the model lists DeleteConflictException for this verb).
    """
    template = _get(templates, template_name)
    version = _version(template, version_id)
    if version.version_id == template.default_version_id:
        raise AwsApiError(
            "DeleteConflictException",
            f"Version {version_id} is the default version of template {template_name}",
        )
    return replace(
        template, versions=tuple(v for v in template.versions if v.version_id != version_id)
    )


def template_for_register_thing(
    templates: Mapping[str, ProvisioningTemplate],
    template_name: str,
    *,
    options: EngineOptions | None = None,
) -> ParsedTemplate:
    """The checked default version RegisterThing evaluates, or the device-side refusal.

    Raises:
        ProvisioningError: 404 ResourceNotFound (no such template), 400 TemplateDisabled,
            400 InvalidRequest (a JITP template), 403 AccessDenied (the template names a
            pre-provisioning hook, which the emulator does not run: AWS would call the Lambda
            function, whose failure is ACCESS_DENIED).
    """
    template = templates.get(template_name)
    if template is None:
        raise ProvisioningError(404, "ResourceNotFound", f"Template {template_name} not found")
    if not template.enabled:
        raise ProvisioningError(400, "TemplateDisabled", f"Template {template_name} is disabled")
    if template.template_type != "FLEET_PROVISIONING":
        raise ProvisioningError(
            400, "InvalidRequest", f"Template {template_name} is not a fleet provisioning template"
        )
    if template.pre_provisioning_hook is not None:
        raise ProvisioningError(
            403,
            "AccessDenied",
            f"Template {template_name} names a pre-provisioning hook "
            f"({template.pre_provisioning_hook.get('targetArn')}); aws-iot-mock does not run "
            "pre-provisioning hooks. Remove it (update-provisioning-template "
            "--remove-pre-provisioning-hook) to provision with this template.",
        )
    return parse_template(template.default_version.template_body, options=options)


# -- helpers ---------------------------------------------------------------------------------------


def _get(templates: Mapping[str, ProvisioningTemplate], name: object) -> ProvisioningTemplate:
    template = templates.get(name) if isinstance(name, str) else None
    if template is None:
        raise AwsApiError("ResourceNotFoundException", f"Template {str(name)[:36]} not found")
    return template


def _version(template: ProvisioningTemplate, version_id: object) -> TemplateVersion:
    for version in template.versions:
        if version.version_id == version_id:
            return version
    raise AwsApiError(
        "ResourceNotFoundException",
        f"Template {template.template_name} has no version {str(version_id)[:12]}",
    )


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise AwsApiError(
            "InvalidRequestException", "templateName must be 1-36 characters of [0-9A-Za-z_-]"
        )
    return value


def _body(value: object, options: EngineOptions | None) -> str:
    if not isinstance(value, str) or len(value) > _BODY_MAX:
        raise AwsApiError(
            "InvalidRequestException", f"templateBody must be a string of at most {_BODY_MAX}"
        )
    try:
        parse_template(value, options=options)
    except TemplateError as exc:
        raise AwsApiError("InvalidRequestException", str(exc)) from None
    return value


def _role(value: object, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 20 <= len(value) <= 2048:
        raise AwsApiError(
            "InvalidRequestException", "provisioningRoleArn must be an ARN of 20-2048 characters"
        )
    return value


def _hook(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("targetArn"), str):
        raise AwsApiError("InvalidRequestException", "preProvisioningHook needs a targetArn")
    if len(value["targetArn"]) > 2048:
        raise AwsApiError("InvalidRequestException", "targetArn is longer than 2048 characters")
    version = value.get("payloadVersion")
    if version is not None and (
        not isinstance(version, str) or not _PAYLOAD_VERSION.fullmatch(version)
    ):
        raise AwsApiError("InvalidRequestException", "payloadVersion must look like 2020-04-01")
    return dict(value)


def _description(value: object) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or len(value) > _DESCRIPTION_MAX
        or any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value)
    ):
        raise AwsApiError(
            "InvalidRequestException",
            f"description must be at most {_DESCRIPTION_MAX} characters without control characters",
        )
    return value
