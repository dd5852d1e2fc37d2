"""The ``aws iot`` verbs: the control plane, with AWS's flags and output.

Certificates, CA certificates, things, thing types and groups, policies, domain configurations,
tags, topic rules, jobs and provisioning templates (``iot_jobs``), each run through the control
plane's one service layer or the registry.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_iot_mock import pki
from aws_iot_mock.certs_dir import (
    CertsDirectory,
    write_private_key,
    write_public_file,
)
from aws_iot_mock.cli._common import (
    _add_common,
    _bool_value,
    _load,
    _only_keys,
    _open_registry,
    _param_type_error,
    _ParamError,
    _print_json,
    _read_file_argument,
    _shorthand_booleans,
    _status,
    _str_list,
    _structure,
    _tag_list,
    _verb,
)
from aws_iot_mock.cli.iot_jobs import BUILT_IN_VERBS, built_in_operations
from aws_iot_mock.cli.output import all_pages
from aws_iot_mock.config import Config
from aws_iot_mock.registry import CertificateStatus

if TYPE_CHECKING:
    from aws_iot_mock.cli._common import _Verbs

__all__ = ["register"]
# API_DescribeEndpoint's endpoint types; the mock serves every API under its one endpoint name.
ENDPOINT_TYPES = ("iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs")


def _add_thing_verbs(verbs: _Verbs) -> None:
    payload_help = (
        'JSON {"attributes": {"k": "v"}, "merge": false}, shorthand'
        " attributes={k=v},merge=false, or file://PATH"
    )
    create = _verb(verbs, "create-thing", _cmd_create_thing, "create a thing")
    create.add_argument("--thing-name", required=True)
    create.add_argument("--thing-type-name")
    create.add_argument("--attribute-payload", help=payload_help)

    describe = _verb(verbs, "describe-thing", _cmd_describe_thing, "show one thing")
    describe.add_argument("--thing-name", required=True)

    listing = _verb(
        verbs, "list-things", _cmd_list_things, "list things, optionally by attribute or type"
    )
    listing.add_argument("--attribute-name")
    listing.add_argument("--attribute-value")
    listing.add_argument("--thing-type-name")

    update = _verb(verbs, "update-thing", _cmd_update_thing, "change a thing's type or attributes")
    update.add_argument("--thing-name", required=True)
    update.add_argument("--thing-type-name")
    update.add_argument("--remove-thing-type", action=argparse.BooleanOptionalAction, default=False)
    update.add_argument("--attribute-payload", help=payload_help)
    update.add_argument("--expected-version", type=int)

    delete = _verb(verbs, "delete-thing", _cmd_delete_thing, "delete a thing")
    delete.add_argument("--thing-name", required=True)
    delete.add_argument("--expected-version", type=int)

    thing_type = _verb(verbs, "create-thing-type", _cmd_create_thing_type, "create a thing type")
    thing_type.add_argument("--thing-type-name", required=True)
    thing_type.add_argument(
        "--thing-type-properties",
        help='JSON {"thingTypeDescription": "...", "searchableAttributes": ["a"]} or shorthand',
    )

    for name, run, help_text in (
        (
            "attach-thing-principal",
            _cmd_attach_thing_principal,
            "attach a certificate (by ARN) to a thing",
        ),
        (
            "detach-thing-principal",
            _cmd_detach_thing_principal,
            "detach a certificate (by ARN) from a thing",
        ),
    ):
        attach = _verb(verbs, name, run, help_text)
        attach.add_argument("--thing-name", required=True)
        attach.add_argument("--principal", required=True, help="the certificate ARN")

    principals = _verb(
        verbs,
        "list-thing-principals",
        _cmd_list_thing_principals,
        "list the certificates of a thing",
    )
    principals.add_argument("--thing-name", required=True)

    things = _verb(
        verbs,
        "list-principal-things",
        _cmd_list_principal_things,
        "list the things of a certificate",
    )
    things.add_argument("--principal", required=True, help="the certificate ARN")


def _add_policy_verbs(verbs: _Verbs) -> None:
    document_help = "the policy document: JSON, or file://PATH"
    create = _verb(verbs, "create-policy", _cmd_create_policy, "create an IoT policy")
    create.add_argument("--policy-name", required=True)
    create.add_argument("--policy-document", required=True, help=document_help)

    for name, run, help_text in (
        ("get-policy", _cmd_get_policy, "show a policy and its default version's document"),
        ("delete-policy", _cmd_delete_policy, "delete a policy (detach it first)"),
        (
            "list-targets-for-policy",
            _cmd_list_targets_for_policy,
            "list the certificates a policy is attached to",
        ),
        ("list-policy-versions", _cmd_list_policy_versions, "list a policy's versions"),
    ):
        _verb(verbs, name, run, help_text).add_argument("--policy-name", required=True)

    _verb(verbs, "list-policies", _cmd_list_policies, "list the policies")

    version = _verb(
        verbs, "create-policy-version", _cmd_create_policy_version, "add a version to a policy"
    )
    version.add_argument("--policy-name", required=True)
    version.add_argument("--policy-document", required=True, help=document_help)
    version.add_argument("--set-as-default", action=argparse.BooleanOptionalAction, default=False)

    for name, run, help_text in (
        ("get-policy-version", _cmd_get_policy_version, "show one version of a policy"),
        (
            "set-default-policy-version",
            _cmd_set_default_policy_version,
            "make a version the policy's default",
        ),
        ("delete-policy-version", _cmd_delete_policy_version, "delete a non-default version"),
    ):
        parser = _verb(verbs, name, run, help_text)
        parser.add_argument("--policy-name", required=True)
        parser.add_argument("--policy-version-id", required=True)

    for name, run, help_text in (
        ("attach-policy", _cmd_attach_policy, "attach a policy to a certificate (by ARN)"),
        ("detach-policy", _cmd_detach_policy, "detach a policy from a certificate (by ARN)"),
    ):
        attach = _verb(verbs, name, run, help_text)
        attach.add_argument("--policy-name", required=True)
        attach.add_argument("--target", required=True, help="the certificate ARN")

    attached = _verb(
        verbs,
        "list-attached-policies",
        _cmd_list_attached_policies,
        "list the policies attached to a target",
    )
    attached.add_argument("--target", required=True, help="the certificate ARN")

    test = _verb(
        verbs,
        "test-authorization",
        _cmd_test_authorization,
        "evaluate the policies of a certificate for some requests",
    )
    test.add_argument("--principal", help="the certificate ARN (or certificate ID)")
    test.add_argument("--client-id", help="the MQTT client ID to evaluate with")
    test.add_argument(
        "--auth-infos",
        required=True,
        nargs="+",
        action="extend",
        help="actionType=PUBLISH,resources=ARN[,ARN...] (repeatable) or a JSON list",
    )
    test.add_argument("--policy-names-to-add", nargs="+", action="extend", default=[])
    test.add_argument("--policy-names-to-skip", nargs="+", action="extend", default=[])


def _add_ca_verbs(verbs: _Verbs) -> None:
    register_ca = _verb(
        verbs, "register-ca-certificate", _cmd_register_ca_certificate, "register a CA certificate"
    )
    register_ca.add_argument("--ca-certificate", required=True, help="file://PATH or the PEM")
    register_ca.add_argument(
        "--verification-certificate",
        help="accepted for compatibility and ignored (no proof of possession is needed here)",
    )
    register_ca.add_argument(
        "--set-as-active", action=argparse.BooleanOptionalAction, default=False
    )
    register_ca.add_argument(
        "--allow-auto-registration", action=argparse.BooleanOptionalAction, default=False
    )

    for name, run, help_text in (
        ("describe-ca-certificate", _cmd_describe_ca_certificate, "show one CA certificate"),
        (
            "update-ca-certificate",
            _cmd_update_ca_certificate,
            "change a CA certificate's status or auto-registration",
        ),
    ):
        parser = _verb(verbs, name, run, help_text)
        parser.add_argument("--certificate-id", required=True)
        if name == "update-ca-certificate":
            parser.add_argument("--new-status", choices=("ACTIVE", "INACTIVE"))
            parser.add_argument("--new-auto-registration-status", choices=("ENABLE", "DISABLE"))

    _verb(
        verbs,
        "list-ca-certificates",
        _cmd_list_ca_certificates,
        "list the registered CA certificates",
    )

    register = _verb(
        verbs,
        "register-certificate",
        _cmd_register_certificate,
        "register a device certificate signed by a known CA",
    )
    register.add_argument("--certificate-pem", required=True, help="file://PATH or the PEM")
    register.add_argument("--ca-certificate-pem", help="file://PATH or the PEM of its CA")
    status = register.add_mutually_exclusive_group()
    status.add_argument("--set-as-active", action=argparse.BooleanOptionalAction, default=None)
    status.add_argument("--status", choices=[s.value for s in CertificateStatus])


# Verbs answered by the control plane's service layer (``aws_iot_mock.api.iot_control``), the one
# the api door serves to boto3 and the aws CLI: verb -> (operation, help, flags). Each flag is
# (flag, request member, kind, required); kinds: str, int, bool (--x/--no-x), struct (JSON,
# shorthand or file://), strs (one or more values), tags (Key=k,Value=v ... or a JSON list),
# text (a string or file://PATH). The job and provisioning-template verbs are in ``iot_jobs``.
_ServiceFlag = tuple[str, str, str, bool]
_THING_GROUP = ("--thing-group-name", "thingGroupName", "str", True)
_DOMAIN = ("--domain-configuration-name", "domainConfigurationName", "str", True)
_RESOURCE = ("--resource-arn", "resourceArn", "str", True)
_RULE = ("--rule-name", "ruleName", "str", True)
_RULE_PAYLOAD = ("--topic-rule-payload", "topicRulePayload", "struct", True)
_GROUP_AND_THING: tuple[_ServiceFlag, ...] = (
    ("--thing-group-name", "thingGroupName", "str", False),
    ("--thing-group-arn", "thingGroupArn", "str", False),
    ("--thing-name", "thingName", "str", False),
    ("--thing-arn", "thingArn", "str", False),
)
_SERVICE_VERBS: dict[str, tuple[str, str, tuple[_ServiceFlag, ...]]] = {
    "delete-certificate": (
        "DeleteCertificate",
        "delete an INACTIVE or REVOKED certificate",
        (
            ("--certificate-id", "certificateId", "str", True),
            ("--force-delete", "forceDelete", "bool", False),
        ),
    ),
    "create-thing-group": (
        "CreateThingGroup",
        "create a static thing group",
        (
            _THING_GROUP,
            ("--parent-group-name", "parentGroupName", "str", False),
            ("--thing-group-properties", "thingGroupProperties", "struct", False),
            ("--tags", "tags", "tags", False),
        ),
    ),
    "describe-thing-group": ("DescribeThingGroup", "show one thing group", (_THING_GROUP,)),
    "list-thing-groups": (
        "ListThingGroups",
        "list thing groups",
        (
            ("--parent-group", "parentGroup", "str", False),
            ("--name-prefix-filter", "namePrefixFilter", "str", False),
            ("--recursive", "recursive", "bool", False),
        ),
    ),
    "update-thing-group": (
        "UpdateThingGroup",
        "change a thing group's description or attributes",
        (
            _THING_GROUP,
            ("--thing-group-properties", "thingGroupProperties", "struct", True),
            ("--expected-version", "expectedVersion", "int", False),
        ),
    ),
    "delete-thing-group": (
        "DeleteThingGroup",
        "delete a thing group (its things stay)",
        (_THING_GROUP, ("--expected-version", "expectedVersion", "int", False)),
    ),
    "add-thing-to-thing-group": (
        "AddThingToThingGroup",
        "add a thing to a static thing group",
        _GROUP_AND_THING,
    ),
    "remove-thing-from-thing-group": (
        "RemoveThingFromThingGroup",
        "remove a thing from a thing group",
        _GROUP_AND_THING,
    ),
    "list-things-in-thing-group": (
        "ListThingsInThingGroup",
        "list the things of a thing group",
        (_THING_GROUP, ("--recursive", "recursive", "bool", False)),
    ),
    "list-thing-groups-for-thing": (
        "ListThingGroupsForThing",
        "list the thing groups of a thing",
        (("--thing-name", "thingName", "str", True),),
    ),
    "create-domain-configuration": (
        "CreateDomainConfiguration",
        "serve another host name (SNI) with its own TLS security policy",
        (
            _DOMAIN,
            ("--domain-name", "domainName", "str", True),
            ("--server-certificate-arns", "serverCertificateArns", "strs", False),
            ("--service-type", "serviceType", "str", False),
            ("--tls-config", "tlsConfig", "struct", False),
            ("--authorizer-config", "authorizerConfig", "struct", False),
            ("--server-certificate-config", "serverCertificateConfig", "struct", False),
            ("--authentication-type", "authenticationType", "str", False),
            ("--application-protocol", "applicationProtocol", "str", False),
            ("--tags", "tags", "tags", False),
        ),
    ),
    "describe-domain-configuration": (
        "DescribeDomainConfiguration",
        "show one domain configuration",
        (_DOMAIN,),
    ),
    "list-domain-configurations": (
        "ListDomainConfigurations",
        "list domain configurations (the endpoint and the config file's too)",
        (("--service-type", "serviceType", "str", False),),
    ),
    "update-domain-configuration": (
        "UpdateDomainConfiguration",
        "enable or disable a domain configuration, or change its TLS or authorizer settings",
        (
            _DOMAIN,
            ("--domain-configuration-status", "domainConfigurationStatus", "str", False),
            ("--tls-config", "tlsConfig", "struct", False),
            ("--authorizer-config", "authorizerConfig", "struct", False),
            ("--remove-authorizer-config", "removeAuthorizerConfig", "bool", False),
            ("--server-certificate-config", "serverCertificateConfig", "struct", False),
            ("--authentication-type", "authenticationType", "str", False),
            ("--application-protocol", "applicationProtocol", "str", False),
        ),
    ),
    "delete-domain-configuration": (
        "DeleteDomainConfiguration",
        "delete a DISABLED domain configuration",
        (_DOMAIN,),
    ),
    "tag-resource": (
        "TagResource",
        "tag a policy, thing type, thing group, CA certificate or domain configuration",
        (_RESOURCE, ("--tags", "tags", "tags", True)),
    ),
    "untag-resource": (
        "UntagResource",
        "remove tags by key",
        (_RESOURCE, ("--tag-keys", "tagKeys", "strs", True)),
    ),
    "list-tags-for-resource": ("ListTagsForResource", "list a resource's tags", (_RESOURCE,)),
    # The rules engine's topic rules (aws_iot_mock.rules.topic_rules); a running broker on the
    # same state directory picks a change up within a second.
    "create-topic-rule": (
        "CreateTopicRule",
        "create a topic rule (rules engine)",
        (_RULE, _RULE_PAYLOAD, ("--tags", "tags", "str", False)),
    ),
    "get-topic-rule": ("GetTopicRule", "show a topic rule", (_RULE,)),
    "list-topic-rules": (
        "ListTopicRules",
        "list the topic rules",
        (
            ("--topic", "topic", "str", False),
            ("--rule-disabled", "ruleDisabled", "bool", False),
        ),
    ),
    "replace-topic-rule": (
        "ReplaceTopicRule",
        "replace a topic rule's definition",
        (_RULE, _RULE_PAYLOAD),
    ),
    "delete-topic-rule": ("DeleteTopicRule", "delete a topic rule", (_RULE,)),
    "enable-topic-rule": ("EnableTopicRule", "enable a topic rule", (_RULE,)),
    "disable-topic-rule": ("DisableTopicRule", "disable a topic rule", (_RULE,)),
}


def _add_service_verbs(verbs: _Verbs) -> None:
    for verb, (_, help_text, flags) in _SERVICE_VERBS.items():
        parser = _verb(verbs, verb, _cmd_service, help_text)
        for flag, _member, kind, required in flags:
            if kind == "bool":
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
            elif kind in ("strs", "tags"):
                parser.add_argument(flag, nargs="+", action="extend", required=required)
            else:
                parser.add_argument(flag, type=int if kind == "int" else str, required=required)


def _cmd_service(args: argparse.Namespace) -> int:
    """Run a verb of ``_SERVICE_VERBS`` through the control plane's service layer."""
    operation, _, flags = _SERVICE_VERBS[args.verb]
    request: dict[str, object] = {}
    for flag, member, kind, _required in flags:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        if kind == "struct":
            value = _shorthand_booleans(_structure(flag, value))
        elif kind == "tags":
            value = _tag_list(flag, value)
        elif kind == "text":
            value = _read_file_argument(value)
        request[member] = value
    config = _load(args)
    _print_json(_call_service(config, operation, request))
    return 0


def _call_service(config: Config, operation: str, request: dict[str, object]) -> dict[str, Any]:
    """One operation of the control plane's service layer on the registry.

    Raises:
        AwsApiError: the error the api door would answer.
    """
    # Imported here so that the other verbs start without the API modules.
    from aws_iot_mock.api.iot_control import IotControlPlane  # noqa: PLC0415
    from aws_iot_mock.rules.topic_rules import RULES_OPERATIONS, TopicRuleService  # noqa: PLC0415
    from aws_iot_mock.state.topic_rules import TopicRuleStore  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        registry = stack.enter_context(_open_registry(config))
        service = IotControlPlane(registry, config, certs=CertsDirectory(config.certs_dir))
        # The built-in services' operations join the same layer, as in the broker: jobs and
        # provisioning templates, and topic rules.
        service.add_operations(
            stack.enter_context(built_in_operations(config, registry, operation))
        )
        if operation in RULES_OPERATIONS:
            store = stack.enter_context(TopicRuleStore.open(config.state_dir))
            rules = TopicRuleService(store, region=config.region, account_id=config.account_id)
            service.add_operations(rules.operations())
        # An AwsApiError reaches main(), which prints it as the AWS CLI does.
        return all_pages(service.call, operation, request)


def _cmd_describe_endpoint(args: argparse.Namespace) -> int:
    config = _load(args)
    _print_json({"endpointAddress": config.endpoint})
    return 0


def _cmd_create_keys_and_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    issued = pki.issue_device_certificate(ca)
    assert issued.private_key_pem is not None
    with _open_registry(config) as registry:
        record = registry.register_certificate(
            issued.certificate_pem, status=_status(args.set_as_active)
        )
    if args.certificate_pem_outfile:
        write_public_file(args.certificate_pem_outfile, issued.certificate_pem)
    if args.public_key_outfile:
        write_public_file(args.public_key_outfile, issued.public_key_pem)
    if args.private_key_outfile:
        write_private_key(args.private_key_outfile, issued.private_key_pem)
    _print_json(
        {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
            "keyPair": {
                "PublicKey": issued.public_key_pem.decode(),
                "PrivateKey": issued.private_key_pem.decode(),
            },
        }
    )
    return 0


def _cmd_create_certificate_from_csr(args: argparse.Namespace) -> int:
    config = _load(args)
    csr_pem = _read_file_argument(args.certificate_signing_request).encode()
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    issued = pki.sign_csr(ca, csr_pem)
    with _open_registry(config) as registry:
        record = registry.register_certificate(
            issued.certificate_pem, status=_status(args.set_as_active)
        )
    _print_json(
        {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
        }
    )
    return 0


def _cmd_update_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.update_certificate_status(args.certificate_id, CertificateStatus(args.new_status))
    return 0  # AWS's UpdateCertificate returns no output


def _cmd_describe_certificate(args: argparse.Namespace) -> int:
    request = {"certificateId": args.certificate_id}
    _print_json(_call_service(_load(args), "DescribeCertificate", request))
    return 0


def _cmd_list_certificates(args: argparse.Namespace) -> int:
    _print_json(_call_service(_load(args), "ListCertificates", {}))
    return 0


def _attribute_payload(value: str | None) -> tuple[dict[str, str] | None, bool]:
    """Parse ``--attribute-payload`` into (attributes or None, merge)."""
    flag = "--attribute-payload"
    if value is None:
        return None, False
    data = _structure(flag, value)
    if not isinstance(data, dict):
        raise _param_type_error(flag, "", data, "structure")
    _only_keys(flag, data, ("attributes", "merge"))
    raw = data.get("attributes", {})
    if not isinstance(raw, dict):
        raise _param_type_error(flag, "attributes", raw, "map")
    attributes: dict[str, str] = {}
    for key, item in raw.items():
        if not isinstance(item, str):
            raise _param_type_error(flag, f"attributes.{key}", item, "string")
        attributes[str(key)] = item
    merge = _bool_value(flag, "merge", data.get("merge", False))
    return attributes, merge


def _thing_type_properties(value: str | None) -> tuple[str | None, list[str]]:
    """Parse ``--thing-type-properties`` into (description, searchable attributes)."""
    flag = "--thing-type-properties"
    if value is None:
        return None, []
    data = _structure(flag, value)
    if not isinstance(data, dict):
        raise _param_type_error(flag, "", data, "structure")
    _only_keys(flag, data, ("thingTypeDescription", "searchableAttributes"))
    description = data.get("thingTypeDescription")
    if description is not None and not isinstance(description, str):
        raise _param_type_error(flag, "thingTypeDescription", description, "string")
    searchable = _str_list(flag, "searchableAttributes", data.get("searchableAttributes", []))
    return description, searchable


def _auth_infos(values: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Parse ``--auth-infos`` items into (actionType, resources) pairs."""
    flag = "--auth-infos"
    infos: list[tuple[str, list[str]]] = []
    for value in values:
        data = _structure(flag, value)
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict):
                raise _param_type_error(flag, "", item, "structure")
            _only_keys(flag, item, ("actionType", "resources"))
            action = item.get("actionType")
            if not isinstance(action, str):
                raise _ParamError(
                    "Parameter validation failed: Missing required parameter in authInfos:"
                    ' "actionType"'
                )
            infos.append((action, _str_list(flag, "resources", item.get("resources", []))))
    return infos


# --- things ------------------------------------------------------------------------------------


def _cmd_create_thing(args: argparse.Namespace) -> int:
    config = _load(args)
    attributes, _ = _attribute_payload(args.attribute_payload)
    with _open_registry(config) as registry:
        thing = registry.create_thing(
            args.thing_name, thing_type_name=args.thing_type_name, attributes=attributes
        )
    _print_json(
        {"thingName": thing.thing_name, "thingArn": thing.thing_arn, "thingId": thing.thing_id}
    )
    return 0


def _cmd_describe_thing(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        thing = registry.describe_thing(args.thing_name)
    _print_json(thing.to_description())
    return 0


def _cmd_list_things(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        things = registry.list_things(
            attribute_name=args.attribute_name,
            attribute_value=args.attribute_value,
            thing_type_name=args.thing_type_name,
        )
    _print_json({"things": [thing.to_summary() for thing in things]})
    return 0


def _cmd_update_thing(args: argparse.Namespace) -> int:
    config = _load(args)
    attributes, merge = _attribute_payload(args.attribute_payload)
    with _open_registry(config) as registry:
        registry.update_thing(
            args.thing_name,
            thing_type_name=args.thing_type_name,
            remove_thing_type=args.remove_thing_type,
            attributes=attributes,
            merge=merge,
            expected_version=args.expected_version,
        )
    return 0  # AWS's UpdateThing returns no output


def _cmd_delete_thing(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.delete_thing(args.thing_name, expected_version=args.expected_version)
    return 0


def _cmd_create_thing_type(args: argparse.Namespace) -> int:
    config = _load(args)
    description, searchable = _thing_type_properties(args.thing_type_properties)
    with _open_registry(config) as registry:
        thing_type = registry.create_thing_type(
            args.thing_type_name, description=description, searchable_attributes=searchable
        )
    _print_json(
        {
            "thingTypeName": thing_type.thing_type_name,
            "thingTypeArn": thing_type.thing_type_arn,
            "thingTypeId": thing_type.thing_type_id,
        }
    )
    return 0


def _cmd_attach_thing_principal(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.attach_thing_principal(args.thing_name, args.principal)
    return 0


def _cmd_detach_thing_principal(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.detach_thing_principal(args.thing_name, args.principal)
    return 0


def _cmd_list_thing_principals(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        principals = registry.list_thing_principals(args.thing_name)
    _print_json({"principals": principals})
    return 0


def _cmd_list_principal_things(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        things = registry.list_principal_things(args.principal)
    _print_json({"things": things})
    return 0


# --- policies ----------------------------------------------------------------------------------


def _cmd_create_policy(args: argparse.Namespace) -> int:
    config = _load(args)
    document = _read_file_argument(args.policy_document)
    with _open_registry(config) as registry:
        policy = registry.create_policy(args.policy_name, document)
    _print_json(
        {
            "policyName": policy.policy_name,
            "policyArn": policy.policy_arn,
            "policyDocument": policy.document,
            "policyVersionId": policy.default_version_id,
        }
    )
    return 0


def _cmd_get_policy(args: argparse.Namespace) -> int:
    request = {"policyName": args.policy_name}
    _print_json(_call_service(_load(args), "GetPolicy", request))
    return 0


def _cmd_list_policies(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        policies = registry.list_policies()
    _print_json({"policies": [policy.to_summary() for policy in policies]})
    return 0


def _cmd_delete_policy(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.delete_policy(args.policy_name)
    return 0


def _cmd_create_policy_version(args: argparse.Namespace) -> int:
    config = _load(args)
    document = _read_file_argument(args.policy_document)
    with _open_registry(config) as registry:
        version = registry.create_policy_version(
            args.policy_name, document, set_as_default=args.set_as_default
        )
    _print_json(
        {
            "policyArn": version.policy_arn,
            "policyDocument": version.document,
            "policyVersionId": version.version_id,
            "isDefaultVersion": version.is_default,
        }
    )
    return 0


def _cmd_get_policy_version(args: argparse.Namespace) -> int:
    request = {"policyName": args.policy_name, "policyVersionId": args.policy_version_id}
    _print_json(_call_service(_load(args), "GetPolicyVersion", request))
    return 0


def _cmd_list_policy_versions(args: argparse.Namespace) -> int:
    request = {"policyName": args.policy_name}
    _print_json(_call_service(_load(args), "ListPolicyVersions", request))
    return 0


def _cmd_set_default_policy_version(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.set_default_policy_version(args.policy_name, args.policy_version_id)
    return 0


def _cmd_delete_policy_version(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.delete_policy_version(args.policy_name, args.policy_version_id)
    return 0


def _cmd_attach_policy(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.attach_policy(args.policy_name, args.target)
    return 0


def _cmd_detach_policy(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.detach_policy(args.policy_name, args.target)
    return 0


def _cmd_list_attached_policies(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        policies = registry.list_attached_policies(args.target)
    _print_json({"policies": [policy.to_summary() for policy in policies]})
    return 0


def _cmd_list_targets_for_policy(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        targets = registry.list_targets_for_policy(args.policy_name)
    _print_json({"targets": targets})
    return 0


# --- test-authorization ------------------------------------------------------------------------


def _cmd_test_authorization(args: argparse.Namespace) -> int:
    """TestAuthorization through the control plane's service layer (the api door's)."""
    config = _load(args)
    request: dict[str, object] = {
        "authInfos": [
            {"actionType": action, "resources": resources}
            for action, resources in _auth_infos(args.auth_infos)
        ],
        "policyNamesToAdd": list(args.policy_names_to_add),
        "policyNamesToSkip": list(args.policy_names_to_skip),
    }
    if args.principal is not None:
        request["principal"] = args.principal
    if args.client_id is not None:
        request["clientId"] = args.client_id
    _print_json(_call_service(config, "TestAuthorization", request))
    return 0


# --- CA certificates and register-certificate --------------------------------------------------


def _cmd_register_ca_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    ca_pem = _read_file_argument(args.ca_certificate)
    if args.verification_certificate is not None:
        print(
            "aws-iot-mock: note: --verification-certificate is ignored; the mock registers CA"
            " certificates without proof of possession",
            file=sys.stderr,
        )
    with _open_registry(config) as registry:
        record = registry.register_ca_certificate(
            ca_pem,
            set_as_active=args.set_as_active,
            allow_auto_registration=args.allow_auto_registration,
        )
    _print_json({"certificateArn": record.certificate_arn, "certificateId": record.certificate_id})
    return 0


def _cmd_describe_ca_certificate(args: argparse.Namespace) -> int:
    request = {"certificateId": args.certificate_id}
    _print_json(_call_service(_load(args), "DescribeCACertificate", request))
    return 0


def _cmd_list_ca_certificates(args: argparse.Namespace) -> int:
    _print_json(_call_service(_load(args), "ListCACertificates", {}))
    return 0


def _cmd_update_ca_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        registry.update_ca_certificate(
            args.certificate_id,
            new_status=args.new_status,
            new_auto_registration_status=args.new_auto_registration_status,
        )
    return 0


def _cmd_register_certificate(args: argparse.Namespace) -> int:
    config = _load(args)
    certificate_pem = _read_file_argument(args.certificate_pem)
    ca_pem = (
        None if args.ca_certificate_pem is None else _read_file_argument(args.ca_certificate_pem)
    )
    if args.status is not None:
        status = CertificateStatus(args.status)
    else:
        status = _status(bool(args.set_as_active))
    own_ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    with _open_registry(config) as registry:
        record = registry.register_certificate(
            certificate_pem, ca_pem=ca_pem, status=status, own_ca_pem=own_ca.certificate_pem
        )
    _print_json({"certificateArn": record.certificate_arn, "certificateId": record.certificate_id})
    return 0


_SERVICE_VERBS.update(BUILT_IN_VERBS)


def register(verbs: _Verbs) -> None:
    """Register every ``aws iot`` verb, each with its runner."""
    endpoint = verbs.add_parser("describe-endpoint", help="print the device data endpoint")
    _add_common(endpoint)
    endpoint.set_defaults(run=_cmd_describe_endpoint)
    endpoint.add_argument("--endpoint-type", default="iot:Data-ATS", choices=ENDPOINT_TYPES)

    create = verbs.add_parser(
        "create-keys-and-certificate", help="create a key pair and a certificate signed by the CA"
    )
    _add_common(create)
    create.set_defaults(run=_cmd_create_keys_and_certificate)
    create.add_argument("--set-as-active", action=argparse.BooleanOptionalAction, default=False)
    create.add_argument("--certificate-pem-outfile", type=Path)
    create.add_argument("--public-key-outfile", type=Path)
    create.add_argument("--private-key-outfile", type=Path)

    from_csr = verbs.add_parser(
        "create-certificate-from-csr", help="sign a CSR's own public key with the CA"
    )
    _add_common(from_csr)
    from_csr.set_defaults(run=_cmd_create_certificate_from_csr)
    from_csr.add_argument(
        "--certificate-signing-request", required=True, help="file://PATH or the PEM itself"
    )
    from_csr.add_argument("--set-as-active", action=argparse.BooleanOptionalAction, default=False)

    update = verbs.add_parser("update-certificate", help="change a certificate's status")
    _add_common(update)
    update.set_defaults(run=_cmd_update_certificate)
    update.add_argument("--certificate-id", required=True)
    update.add_argument(
        "--new-status",
        required=True,
        choices=[status.value for status in CertificateStatus],
    )

    describe = verbs.add_parser("describe-certificate", help="show one certificate")
    _add_common(describe)
    describe.set_defaults(run=_cmd_describe_certificate)
    describe.add_argument("--certificate-id", required=True)

    listing = verbs.add_parser("list-certificates", help="list the registered certificates")
    _add_common(listing)
    listing.set_defaults(run=_cmd_list_certificates)

    _add_thing_verbs(verbs)
    _add_policy_verbs(verbs)
    _add_ca_verbs(verbs)
    _add_service_verbs(verbs)
