"""The provisioning template engine: a template body and parameters in, a plan out. Pure.

`parse_template` checks a template body (CreateProvisioningTemplate refuses a bad one);
`evaluate` resolves it for one RegisterThing call into a `ProvisioningPlan`: the thing to create
or update, the certificate's status, the policies to create or attach, the attachments and the
``deviceConfiguration`` to return. The shell applies the plan to the registry; nothing here
touches it.

Sources:

- [TPL] "Provisioning templates",
  https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html
  (sections, resource types and properties, OverrideSettings, Mappings, DeviceConfiguration, the
  intrinsic functions Fn::Join, Fn::Select, Fn::FindInMap, Fn::Split, Fn::Sub).
- [JITP] "Just-in-time provisioning" (the ``AWS::IoT::Certificate::*`` parameters),
  https://docs.aws.amazon.com/iot/latest/developerguide/jit-provisioning.html
- [CFN] AWS CloudFormation's intrinsic-function and condition-function reference, whose
  syntax the template language follows: ``Ref``, ``Fn::Join``, ``Fn::Sub`` (both forms),
  ``Fn::GetAtt``, ``Fn::Base64``, and the ``Conditions`` section with ``Fn::If``,
  ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
  and .../intrinsic-function-reference-conditions.html.

[TPL] lists five functions; the condition functions, ``Fn::GetAtt`` and ``Fn::Base64`` are not
documented for AWS IoT templates (UNCONFIRMED). They are evaluated with CloudFormation's
semantics unless ``EngineOptions.cloudformation_extensions`` is off, in which case a template
that uses them is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CERTIFICATE_PARAMETERS",
    "CertificatePlan",
    "EngineOptions",
    "ParsedTemplate",
    "PolicyPlan",
    "ProvisioningPlan",
    "TemplateError",
    "ThingPlan",
    "evaluate",
    "parse_template",
]

# "AWS::IoT::Certificate::Id" (fleet provisioning, [TPL] examples) and the subject fields JITP
# fills in ([JITP]); the emulator fills all of them from the new certificate (for fleet
# provisioning AWS documents only the Id: UNCONFIRMED).
CERTIFICATE_PARAMETERS: Final = (
    "AWS::IoT::Certificate::Id",
    "AWS::IoT::Certificate::CommonName",
    "AWS::IoT::Certificate::Country",
    "AWS::IoT::Certificate::Organization",
    "AWS::IoT::Certificate::OrganizationalUnit",
    "AWS::IoT::Certificate::DistinguishedNameQualifier",
    "AWS::IoT::Certificate::StateName",
    "AWS::IoT::Certificate::SerialNumber",
)
_NO_VALUE: Final = "AWS::NoValue"
_SECTIONS: Final = frozenset(
    {
        "AWSTemplateFormatVersion",
        "Description",
        "Parameters",
        "Mappings",
        "Conditions",
        "Resources",
        "DeviceConfiguration",
    }
)
_TYPES: Final = frozenset({"AWS::IoT::Thing", "AWS::IoT::Certificate", "AWS::IoT::Policy"})
_DOCUMENTED: Final = frozenset(
    {"Ref", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::FindInMap", "Fn::Sub"}
)
_EXTENSIONS: Final = frozenset(
    {
        "Fn::If",
        "Fn::Equals",
        "Fn::Not",
        "Fn::And",
        "Fn::Or",
        "Fn::GetAtt",
        "Fn::Base64",
        "Condition",
    }
)
_OVERRIDES: Final = frozenset({"DO_NOTHING", "REPLACE", "FAIL", "MERGE"})
# OverrideSettings keys: the property names AWS's examples use, and the upper-case names [TPL]'s
# text uses (aliases, UNCONFIRMED).
_THING_OVERRIDE_KEYS: Final = {
    "AttributePayload": "AttributePayload",
    "ATTRIBUTE_PAYLOAD": "AttributePayload",
    "ThingTypeName": "ThingTypeName",
    "THING_TYPE_NAME": "ThingTypeName",
    "ThingGroups": "ThingGroups",
    "THING_GROUPS": "ThingGroups",
}
_MERGEABLE: Final = frozenset({"AttributePayload", "ThingGroups"})
_THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
_POLICY_NAME: Final = re.compile(r"[\w+=,.@-]{1,128}")
_SUB_VARIABLE: Final = re.compile(r"\$\{(!?)([^}]*)\}")


class TemplateError(ValueError):
    """A template body that cannot be used, or parameters it cannot be evaluated with.

    The message says what is wrong and where (``Resources.thing.Properties.ThingName``).
    """


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Choices where AWS is silent.

    Attributes:
        cloudformation_extensions: accept ``Conditions``, ``Fn::If``, ``Fn::Equals``,
            ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Fn::GetAtt`` and ``Fn::Base64`` with
            CloudFormation's semantics (default) instead of refusing them.
        default_override: the action for a property of an existing resource that has no
            OverrideSettings entry ([TPL] gives no default; DO_NOTHING, the least destructive,
            is the default here).
    """

    cloudformation_extensions: bool = True
    default_override: str = "DO_NOTHING"


@dataclass(frozen=True, slots=True)
class ParsedTemplate:
    """A checked template body.

    Attributes:
        body: the decoded JSON object.
    """

    body: Mapping[str, Any]

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The ``Parameters`` section."""
        return self.body.get("Parameters") or {}


@dataclass(frozen=True, slots=True)
class ThingPlan:
    """The ``AWS::IoT::Thing`` resource, resolved.

    Attributes:
        thing_name: the thing's name.
        attributes: ``AttributePayload`` (name -> value), or None when not given.
        thing_type_name: ``ThingTypeName`` or None.
        thing_groups: ``ThingGroups`` or None.
        billing_group: ``BillingGroup`` or None.
        overrides: for an existing thing, property -> DO_NOTHING / REPLACE / FAIL / MERGE for
            ``AttributePayload``, ``ThingTypeName`` and ``ThingGroups`` ("FAIL: Cause the
            request to fail with a ResourceConflictsException" [TPL]).
    """

    thing_name: str
    attributes: Mapping[str, str] | None = None
    thing_type_name: str | None = None
    thing_groups: tuple[str, ...] | None = None
    billing_group: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CertificatePlan:
    """The ``AWS::IoT::Certificate`` resource, resolved.

    Attributes:
        certificate_id: the certificate (the one the ownership token proves).
        status: ACTIVE or INACTIVE ("Defaults to ACTIVE" [TPL]).
        status_override: the OverrideSettings action for ``Status``.
    """

    certificate_id: str
    status: str = "ACTIVE"
    status_override: str = "DO_NOTHING"


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """One ``AWS::IoT::Policy`` resource, resolved.

    Attributes:
        logical_name: the resource's name in the template.
        policy_name: the policy to attach: the given ``PolicyName``, or for an inline document
            a name derived from it ("Defaults to a hash of the policy document" [TPL]; here the
            SHA-256 hex digest of the compact document, UNCONFIRMED).
        policy_document: the inline document as JSON text (create the policy if it does not
            exist), or None for an existing policy.
    """

    logical_name: str
    policy_name: str
    policy_document: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisioningPlan:
    """What one RegisterThing does to the registry, in order, and what it answers.

    The shell creates or updates the thing (honouring ``thing.overrides``), sets the
    certificate's status, creates the inline policies that do not exist, attaches every policy
    to the certificate, attaches the certificate to the thing, adds the thing to its groups, and
    answers ``{"thingName": thing.thing_name, "deviceConfiguration": device_configuration}``.

    Attributes:
        thing: the thing resource, or None if the template has none.
        certificate: the certificate resource, or None if the template has none.
        policies: the policy resources, in template order.
        device_configuration: the resolved ``DeviceConfiguration`` section.
    """

    thing: ThingPlan | None
    certificate: CertificatePlan | None
    policies: tuple[PolicyPlan, ...]
    device_configuration: Mapping[str, Any]


def parse_template(text: str, *, options: EngineOptions | None = None) -> ParsedTemplate:
    """Check a template body: JSON object, known sections, resource types, functions.

    Raises:
        TemplateError: the body cannot be used (CreateProvisioningTemplate answers
            InvalidRequestException with the message).
    """
    options = options or EngineOptions()
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise TemplateError(f"The template body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise TemplateError("The template body must be a JSON object")
    unknown = set(body) - _SECTIONS
    if unknown:
        raise TemplateError(f"Unknown template section(s): {', '.join(sorted(unknown))}")
    if "Conditions" in body and not options.cloudformation_extensions:
        raise TemplateError("The Conditions section is not supported in provisioning templates")
    for section in ("Parameters", "Mappings", "Conditions", "Resources", "DeviceConfiguration"):
        if section in body and not isinstance(body[section], dict):
            raise TemplateError(f"{section} must be an object")
    for name, declaration in (body.get("Parameters") or {}).items():
        _check_parameter(name, declaration)
    for name, mapping in (body.get("Mappings") or {}).items():
        _check_mapping(name, mapping)
    _check_resources(body.get("Resources") or {}, options)
    _check_functions(body, "", options, in_mappings=False)
    return ParsedTemplate(body)


def _check_resources(resources: Mapping[str, Any], options: EngineOptions) -> None:
    kinds = [r.get("Type") if isinstance(r, dict) else None for r in resources.values()]
    for logical, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") not in _TYPES:
            raise TemplateError(
                f"Resources.{logical}: Type must be one of {', '.join(sorted(_TYPES))}"
            )
        if "Properties" in resource and not isinstance(resource["Properties"], dict):
            raise TemplateError(f"Resources.{logical}.Properties must be an object")
        if "Condition" in resource and not options.cloudformation_extensions:
            raise TemplateError(f"Resources.{logical}: Condition is not supported")
    for kind in ("AWS::IoT::Thing", "AWS::IoT::Certificate"):
        # [TPL] describes "a thing, a certificate, and one or more IoT policies".
        if kinds.count(kind) > 1:
            raise TemplateError(f"A template can declare at most one {kind} resource")


def evaluate(
    template: ParsedTemplate,
    parameters: Mapping[str, Any],
    *,
    certificate_id: str,
    certificate_subject: Mapping[str, str] | None = None,
    region: str,
    account_id: str,
    options: EngineOptions | None = None,
) -> ProvisioningPlan:
    """Resolve a checked template for one RegisterThing call.

    Args:
        template: from `parse_template`.
        parameters: RegisterThing ``parameters`` (name -> string).
        certificate_id: the certificate the ownership token proves; ``AWS::IoT::Certificate::Id``.
        certificate_subject: the certificate's subject fields for the other
            ``AWS::IoT::Certificate::*`` parameters, by their suffix (``CommonName``, ...).
        region: for ARNs (``Fn::GetAtt ... Arn``).
        account_id: likewise.
        options: the engine's choices.

    Returns:
        The plan.

    Raises:
        TemplateError: a parameter is missing or invalid, a function fails (``Fn::Select`` out
            of bounds "result[s] in a provisioning error" [TPL]), or a resource is malformed.
    """
    options = options or EngineOptions()
    for name, value in parameters.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TemplateError(f"Parameter {str(name)[:64]!r} must be a string value")
    values = _parameter_values(template, parameters, certificate_id, certificate_subject or {})
    context = _Context(template.body, values, region, account_id)
    resources: Mapping[str, Any] = template.body.get("Resources") or {}
    thing: ThingPlan | None = None
    certificate: CertificatePlan | None = None
    policies: list[PolicyPlan] = []
    for logical, resource in resources.items():
        if "Condition" in resource and not context.condition(resource["Condition"]):
            continue
        path = f"Resources.{logical}"
        properties = context.resolve(resource.get("Properties") or {}, f"{path}.Properties")
        overrides = resource.get("OverrideSettings") or {}
        if resource["Type"] == "AWS::IoT::Thing":
            thing = _thing(properties, overrides, path, options)
        elif resource["Type"] == "AWS::IoT::Certificate":
            certificate = _certificate(properties, overrides, path, certificate_id, options)
        else:
            if overrides:
                raise TemplateError(f"{path}: OverrideSettings are not available for policies")
            policies.append(_policy(logical, properties, path))
    configuration = context.resolve(
        template.body.get("DeviceConfiguration") or {}, "DeviceConfiguration"
    )
    for key, value in configuration.items():
        if isinstance(value, dict):
            # "The DeviceConfiguration section doesn't support nested JSON objects." [TPL]
            raise TemplateError(f"DeviceConfiguration.{key}: nested objects are not supported")
    return ProvisioningPlan(thing, certificate, tuple(policies), configuration)


# -- parameters ------------------------------------------------------------------------------------


def _check_parameter(name: str, declaration: object) -> None:
    if not isinstance(declaration, dict):
        raise TemplateError(f"Parameters.{name} must be an object")
    kind = declaration.get("Type", "String")
    if kind not in ("String", "Number", "CommaDelimitedList", "List<Number>"):
        raise TemplateError(f"Parameters.{name}: unsupported Type {str(kind)[:40]}")
    default = declaration.get("Default")
    if default is not None and not isinstance(default, str | int | float):
        raise TemplateError(f"Parameters.{name}: Default must be a string")


def _parameter_values(
    template: ParsedTemplate,
    given: Mapping[str, str],
    certificate_id: str,
    subject: Mapping[str, str],
) -> dict[str, Any]:
    """Parameter name -> value: given, else default; pseudo-parameters from the certificate."""
    values: dict[str, Any] = {"AWS::IoT::Certificate::Id": certificate_id}
    for suffix, value in subject.items():
        values[f"AWS::IoT::Certificate::{suffix}"] = value
    for name, declaration in template.parameters.items():
        if name in CERTIFICATE_PARAMETERS:
            continue
        if name in given:
            raw: Any = given[name]
        elif "Default" in declaration:
            # "The default value is used when the dictionary passed in with the template does
            # not contain a value for the parameter." [TPL]
            raw = str(declaration["Default"])
        else:
            raise TemplateError(f"Parameter {name} is required and has no default value")
        values[name] = _typed(name, declaration, raw)
    return values


def _typed(name: str, declaration: Mapping[str, Any], raw: str) -> Any:
    """Check a value against its declaration (CloudFormation's parameter constraints [CFN])."""
    kind = declaration.get("Type", "String")
    items = [item.strip() for item in raw.split(",")] if "List" in kind else [raw]
    for item in items:
        if kind in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                raise TemplateError(f"Parameter {name} must be a number") from None
            low, high = declaration.get("MinValue"), declaration.get("MaxValue")
            if (low is not None and number < float(low)) or (
                high is not None and number > float(high)
            ):
                raise TemplateError(f"Parameter {name} is out of its allowed range")
        allowed = declaration.get("AllowedValues")
        if allowed is not None and item not in [str(a) for a in allowed]:
            raise TemplateError(f"Parameter {name} must be one of the AllowedValues")
        pattern = declaration.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(str(pattern), item):
            raise TemplateError(f"Parameter {name} must match its AllowedPattern")
        low, high = declaration.get("MinLength"), declaration.get("MaxLength")
        if (low is not None and len(item) < int(low)) or (
            high is not None and len(item) > int(high)
        ):
            raise TemplateError(f"Parameter {name} has a length outside its MinLength/MaxLength")
    return items if "List" in kind else raw


def _check_mapping(name: str, mapping: object) -> None:
    """Mappings are two-level maps of literals.

    "You cannot include parameters, pseudo parameters, or call intrinsic functions in the
    Mappings section" [TPL] (`_check_functions` refuses functions there).
    """
    if not isinstance(mapping, dict) or not all(isinstance(v, dict) for v in mapping.values()):
        raise TemplateError(f"Mappings.{name} must be a two-level map")


# -- resources -------------------------------------------------------------------------------------


def _thing(
    properties: Mapping[str, Any], overrides: object, path: str, options: EngineOptions
) -> ThingPlan:
    name = properties.get("ThingName")
    if not isinstance(name, str) or not _THING_NAME.fullmatch(name):
        raise TemplateError(
            f"{path}.Properties.ThingName must be 1-128 characters of [a-zA-Z0-9:_-]"
        )
    attributes = properties.get("AttributePayload")
    if attributes is not None and (
        not isinstance(attributes, dict)
        or not all(isinstance(v, str | int | float) for v in attributes.values())
    ):
        raise TemplateError(f"{path}.Properties.AttributePayload must map names to strings")
    groups = properties.get("ThingGroups")
    if groups is not None and (
        not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)
    ):
        raise TemplateError(f"{path}.Properties.ThingGroups must be a list of group names")
    for key in ("ThingTypeName", "BillingGroup"):
        if properties.get(key) is not None and not isinstance(properties[key], str):
            raise TemplateError(f"{path}.Properties.{key} must be a string")
    actions = dict.fromkeys(
        ("AttributePayload", "ThingTypeName", "ThingGroups"), options.default_override
    )
    if not isinstance(overrides, dict):
        raise TemplateError(f"{path}.OverrideSettings must be an object")
    for key, action in overrides.items():
        prop = _THING_OVERRIDE_KEYS.get(key)
        if prop is None or action not in _OVERRIDES:
            raise TemplateError(
                f"{path}.OverrideSettings.{key}: invalid setting {str(action)[:20]}"
            )
        if action == "MERGE" and prop not in _MERGEABLE:
            # "MERGE: Valid only for the ThingGroups and AttributePayload properties" [TPL]
            raise TemplateError(f"{path}.OverrideSettings.{key}: MERGE is not valid for {prop}")
        actions[prop] = action
    return ThingPlan(
        thing_name=name,
        attributes=None if attributes is None else {k: str(v) for k, v in attributes.items()},
        thing_type_name=properties.get("ThingTypeName"),
        thing_groups=None if groups is None else tuple(groups),
        billing_group=properties.get("BillingGroup"),
        overrides=actions,
    )


def _certificate(
    properties: Mapping[str, Any],
    overrides: object,
    path: str,
    certificate_id: str,
    options: EngineOptions,
) -> CertificatePlan:
    for other in ("CertificateSigningRequest", "CertificatePem", "CACertificatePem"):
        if other in properties:
            # "Only certificate IDs can be used with a fleet provisioning template." [TPL]
            raise TemplateError(
                f"{path}.Properties.{other}: only CertificateId can be used with fleet provisioning"
            )
    given = properties.get("CertificateId")
    if given != certificate_id:
        raise TemplateError(
            f"{path}.Properties.CertificateId must be the certificate of the ownership token "
            '({"Ref": "AWS::IoT::Certificate::Id"})'
        )
    status = properties.get("Status", "ACTIVE")
    # [TPL]'s text says ACTIVE/INACTIVE; its fleet example writes "Active".
    if not isinstance(status, str) or status.upper() not in ("ACTIVE", "INACTIVE"):
        raise TemplateError(f"{path}.Properties.Status must be ACTIVE or INACTIVE")
    action = options.default_override
    if not isinstance(overrides, dict) or set(overrides) - {"Status"}:
        raise TemplateError(f"{path}.OverrideSettings: only Status can be overridden")
    if "Status" in overrides:
        action = overrides["Status"]
        if action not in _OVERRIDES - {"MERGE"}:
            raise TemplateError(
                f"{path}.OverrideSettings.Status: invalid setting {str(action)[:20]}"
            )
    return CertificatePlan(certificate_id, status.upper(), action)


def _policy(logical: str, properties: Mapping[str, Any], path: str) -> PolicyPlan:
    name, document = properties.get("PolicyName"), properties.get("PolicyDocument")
    if (name is None) == (document is None):
        # "If a Policy section is present, PolicyName or PolicyDocument, but not both, must be
        # specified." [TPL]
        raise TemplateError(f"{path}: give PolicyName or PolicyDocument, not both or neither")
    if document is None:
        if not isinstance(name, str) or not _POLICY_NAME.fullmatch(name):
            raise TemplateError(f"{path}.Properties.PolicyName is not a valid policy name")
        return PolicyPlan(logical, name)
    # "A JSON object specified as an escaped string" [TPL]; the fleet example gives an object.
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise TemplateError(f"{path}.Properties.PolicyDocument is not valid JSON") from None
    if not isinstance(document, dict):
        raise TemplateError(f"{path}.Properties.PolicyDocument must be a JSON object")
    text = json.dumps(document, separators=(",", ":"), sort_keys=True)
    return PolicyPlan(logical, hashlib.sha256(text.encode()).hexdigest(), text)


# -- intrinsic functions ---------------------------------------------------------------------------


def _check_functions(node: Any, path: str, options: EngineOptions, *, in_mappings: bool) -> None:
    """Refuse unknown functions, functions in Mappings, and extensions when they are off."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_functions(item, f"{path}[{index}]", options, in_mappings=in_mappings)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        (key,) = node
        if key == "Ref" or key.startswith("Fn::"):
            if in_mappings:
                raise TemplateError(f"{path}: intrinsic functions cannot be used in Mappings")
            known = _DOCUMENTED | (_EXTENSIONS if options.cloudformation_extensions else set())
            if key not in known:
                raise TemplateError(f"{path}: unsupported intrinsic function {key}")
    for key, value in node.items():
        child = f"{path}.{key}" if path else key
        _check_functions(value, child, options, in_mappings=in_mappings or child == "Mappings")


class _Context:
    """Evaluates intrinsic functions for one RegisterThing call."""

    def __init__(
        self, body: Mapping[str, Any], values: Mapping[str, Any], region: str, account_id: str
    ) -> None:
        self._body = body
        self._values = values
        self._region = region
        self._account = account_id
        self._conditions: dict[str, bool] = {}

    def resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, list):
            resolved = [self.resolve(item, f"{path}[{i}]") for i, item in enumerate(node)]
            return [item for item in resolved if item is not _REMOVED]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._call(key, argument, path)
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value, f"{path}.{key}")
            if resolved is not _REMOVED:
                out[key] = resolved
        return out

    def condition(self, name: object) -> bool:
        """Evaluate a named condition of the ``Conditions`` section (memoized) [CFN]."""
        if not isinstance(name, str):
            raise TemplateError("A condition must be named by a string")
        if name not in self._conditions:
            conditions = self._body.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"Condition {name} is not defined in Conditions")
            self._conditions[name] = False  # a cycle evaluates to a refusal below
            self._conditions[name] = self._truth(conditions[name], f"Conditions.{name}")
        return self._conditions[name]

    def _truth(self, node: Any, path: str) -> bool:
        if isinstance(node, dict) and set(node) == {"Condition"}:
            return self.condition(node["Condition"])
        value = self.resolve(node, path)
        if not isinstance(value, bool):
            raise TemplateError(f"{path}: a condition must evaluate to true or false")
        return value

    def _call(self, name: str, argument: Any, path: str) -> Any:
        where = f"{path}.{name}"
        handler = {
            "Ref": self._ref,
            "Fn::Join": self._join,
            "Fn::Split": self._split,
            "Fn::Select": self._select,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Sub": self._sub,
            "Fn::Base64": self._base64,
            "Fn::GetAtt": self._get_att,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": self._and_or,
            "Fn::Or": self._and_or,
        }.get(name)
        if handler is None:
            raise TemplateError(f"{where}: unsupported intrinsic function")
        return handler(argument, where)

    def _join(self, argument: Any, where: str) -> str:
        delimiter, items = _pair(argument, where)
        items = self.resolve(items, where)
        if not isinstance(delimiter, str) or not isinstance(items, list):
            raise TemplateError(f"{where} takes [delimiter, [values]]")
        return delimiter.join(_text(item, where) for item in items)

    def _split(self, argument: Any, where: str) -> list[str]:
        delimiter, text = _pair(argument, where)
        text = self.resolve(text, where)
        if not isinstance(delimiter, str) or not delimiter or not isinstance(text, str):
            raise TemplateError(f"{where} takes [delimiter, string]")
        return text.split(delimiter)

    def _select(self, argument: Any, where: str) -> Any:
        index, items = _pair(argument, where)
        index, items = self.resolve(index, where), self.resolve(items, where)
        try:
            position = int(index)
            if position < 0 or not isinstance(items, list):
                raise IndexError
            selected = items[position]
        except (ValueError, TypeError, IndexError):
            # "Fn::Select does not check for null values or if the index is out of bounds of
            # the array. Both conditions result in a provisioning error" [TPL]
            raise TemplateError(f"{where}: index {index!r} is out of bounds") from None
        if selected is None:
            raise TemplateError(f"{where}: the selected value is null")
        return selected

    def _find_in_map(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            raise TemplateError(f"{where} takes [map, top-level key, second-level key]")
        keys = [_text(self.resolve(k, where), where) for k in argument]
        try:
            return self._body["Mappings"][keys[0]][keys[1]][keys[2]]
        except (KeyError, TypeError):
            raise TemplateError(f"{where}: no value for {'/'.join(keys)}") from None

    def _base64(self, argument: Any, where: str) -> str:
        return base64.b64encode(_text(self.resolve(argument, where), where).encode()).decode()

    def _if(self, argument: Any, where: str) -> Any:
        if not isinstance(argument, list) or len(argument) != 3:
            raise TemplateError(f"{where} takes [condition, value if true, value if false]")
        branch = argument[1] if self.condition(argument[0]) else argument[2]
        return self.resolve(branch, where)

    def _equals(self, argument: Any, where: str) -> bool:
        left, right = _pair(argument, where)
        return bool(self.resolve(left, where) == self.resolve(right, where))

    def _not(self, argument: Any, where: str) -> bool:
        if not isinstance(argument, list) or len(argument) != 1:
            raise TemplateError(f"{where} takes [condition]")
        return not self._truth(argument[0], where)

    def _and_or(self, argument: Any, where: str) -> bool:
        # "You can include a minimum of 2 and a maximum of 10 conditions." [CFN]
        if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
            raise TemplateError(f"{where} takes 2 to 10 conditions")
        truths = [self._truth(item, where) for item in argument]
        return all(truths) if where.endswith("Fn::And") else any(truths)

    def _ref(self, name: Any, where: str) -> Any:
        if name == _NO_VALUE:
            return _REMOVED
        if isinstance(name, str) and name in self._values:
            return self._values[name]
        if isinstance(name, str) and name in (self._body.get("Resources") or {}):
            return self._logical_value(name, where)
        raise TemplateError(f"{where}: {str(name)[:64]} is not a parameter or a resource")

    def _sub(self, argument: Any, where: str) -> str:
        variables: Mapping[str, Any] = {}
        if isinstance(argument, list):
            if len(argument) != 2 or not isinstance(argument[1], dict):
                raise TemplateError(f"{where} takes a string or [string, {{variables}}]")
            argument, variables = argument[0], self.resolve(argument[1], where)
        if not isinstance(argument, str):
            raise TemplateError(f"{where} takes a string")

        def replace(match: re.Match[str]) -> str:
            literal, name = match.group(1), match.group(2)
            if literal:
                return "${" + name + "}"  # "${!Literal}" writes "${Literal}" [CFN]
            if name in variables:
                return _text(variables[name], where)
            if "." in name and name.split(".", 1)[0] in (self._body.get("Resources") or {}):
                return _text(self._get_att(name.split(".", 1), where), where)
            return _text(self._ref(name, where), where)

        return _SUB_VARIABLE.sub(replace, argument)

    def _get_att(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not isinstance(argument, list) or len(argument) != 2:
            raise TemplateError(f"{where} takes [logical name, attribute]")
        logical, attribute = argument
        resource = (self._body.get("Resources") or {}).get(logical)
        if not isinstance(resource, dict):
            raise TemplateError(f"{where}: no resource {str(logical)[:64]}")
        value = self._logical_value(logical, where)
        kind = {"AWS::IoT::Thing": "thing", "AWS::IoT::Certificate": "cert"}.get(
            resource["Type"], "policy"
        )
        known = {
            "thing": ("ThingName", "Arn"),
            "cert": ("CertificateId", "Arn"),
            "policy": ("PolicyName", "Arn"),
        }[kind]
        if attribute not in known:
            raise TemplateError(
                f"{where}: {kind} resources have no attribute {str(attribute)[:40]}"
            )
        if attribute == "Arn":
            return f"arn:aws:iot:{self._region}:{self._account}:{kind}/{value}"
        return value

    def _logical_value(self, logical: str, where: str) -> str:
        """What ``Ref`` of a resource gives: thing name, certificate ID, policy name [CFN]."""
        resource = self._body["Resources"][logical]
        properties = resource.get("Properties") or {}
        key = {
            "AWS::IoT::Thing": "ThingName",
            "AWS::IoT::Certificate": "CertificateId",
            "AWS::IoT::Policy": "PolicyName",
        }[resource["Type"]]
        if key == "PolicyName" and "PolicyName" not in properties:
            return _policy(logical, self.resolve(properties, where), where).policy_name
        return _text(self.resolve(properties.get(key), where), where)


_REMOVED: Final[Any] = object()  # ``{"Ref": "AWS::NoValue"}``: drop the property [CFN]


def _pair(argument: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(argument, list) or len(argument) != 2:
        raise TemplateError(f"{where} takes two arguments")
    return argument[0], argument[1]


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {type(value).__name__}")
