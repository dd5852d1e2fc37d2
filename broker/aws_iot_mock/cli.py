"""The ``aws-iot-mock`` command line: ``serve``, and verbs named and shaped as ``aws iot``'s.

Every verb takes ``--config``, ``--certs-dir`` and ``--state-dir`` and works while ``serve`` runs
against the same directories (the registry is SQLite in WAL mode). Output is the JSON the AWS CLI
prints. Exit codes follow the AWS CLI's: 252 for a command line that does not parse, 253 for a
bad configuration, 254 for an error the service would return (unknown certificate, bad CSR).

The registry verbs (things, thing types, policies and their versions, attachments, CA
certificates, ``register-certificate`` and ``test-authorization``) take the flags the AWS CLI
reference gives for ``aws iot <verb>`` and print the response AWS documents. Structure arguments
(``--attribute-payload``, ``--thing-type-properties``, ``--auth-infos``) accept JSON, the AWS
CLI's shorthand syntax (``attributes={room=kitchen},merge=true``) or ``file://PATH``; one that
does not parse exits 252, as the AWS CLI's "Error parsing parameter" does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from aws_iot_mock import pki
from aws_iot_mock.authz.iot_policy_evaluation import (
    resource_arn,
)
from aws_iot_mock.certs_dir import (
    CertsDirectory,
    private_directory,
    write_private_key,
    write_public_file,
)
from aws_iot_mock.cli_iam import add_iam_verbs, demo_user_hints, ensure_demo_user
from aws_iot_mock.cli_jobs import BUILT_IN_VERBS, built_in_operations
from aws_iot_mock.cli_shadows import add_shadow_verbs
from aws_iot_mock.config import DOOR_FLAGS, Config, load_config
from aws_iot_mock.errors import BrokerError, ConfigError, ListenerBindError
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus
from aws_iot_mock.registry._util import iso
from aws_iot_mock.resources import (
    apply_config_resources,
    ensure_policy,
    ensure_policy_attached,
    ensure_thing_principal,
    thing_exists,
)
from aws_iot_mock.state.instance_lock import StateDirectoryInUseError

__all__ = ["main", "main_entry"]

EXIT_USAGE = 252  # AWS CLI: "The command entered on the command line failed to be parsed."
EXIT_CONFIG = 253  # AWS CLI: "The system environment or configuration was invalid."
EXIT_SERVICE = 254  # AWS CLI: "The command ... returned an error" (a service-side error).

DEMO_DEVICE = "demo-device"
# API_DescribeEndpoint's endpoint types; the mock serves every API under its one endpoint name.
ENDPOINT_TYPES = ("iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs")

# The demo device's things. AWS IoT lets one MQTT client ID be connected once: a second CONNECT
# with the same ID disconnects the first (session takeover). The demo policy, like AWS's
# recommended least-privilege policies, only lets a client connect with a client ID equal to the
# name of a thing its certificate is attached to (client/${iot:Connection.Thing.ThingName} with
# the iot:Connection.Thing.IsAttached condition). So that the subscriber, the publisher and the
# health check can be connected at the same time with the one demo certificate, the certificate
# is attached (non-exclusively, as AWS allows) to three things, one per client ID:
#   demo-device              the subscriber of the printed hints (the "device" itself)
#   demo-device-publisher    the publisher of the printed hints
#   demo-device-healthcheck  `aws-iot-mock healthcheck`, which never takes over the other two
DEMO_PUBLISHER = f"{DEMO_DEVICE}-publisher"
DEMO_HEALTHCHECK = f"{DEMO_DEVICE}-healthcheck"
DEMO_THINGS = (DEMO_DEVICE, DEMO_PUBLISHER, DEMO_HEALTHCHECK)
DEMO_POLICY = f"{DEMO_DEVICE}-policy"


class _ParamError(BrokerError):
    """A structure argument does not parse (the AWS CLI's "Error parsing parameter"; exit 252)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--certs-dir", type=Path, help="certificate directory (default: certs/)")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: .state/)")


# serve's port flags: which door each sets (0 picks a free port, "off" serves without the door).
_DOOR_FLAGS = (
    ("--port", "MQTT over TLS with a client certificate (AWS: 8883)"),
    ("--https-port", "HTTPS with a client certificate (AWS: 8443)"),
    ("--alpn-port", "AWS's 443: MQTT or HTTPS with a client certificate by ALPN, or SigV4"),
    ("--api-port", "the control-plane API for boto3 and the aws CLI"),
)
_DOOR_NAMES = {
    "mqtt": "--port",
    "https": "--https-port",
    "alpn": "--alpn-port",
    "api": "--api-port",
}
_DOOR_LABELS = {
    "mqtt": "MQTT over TLS, X.509 (AWS: 8883)",
    "https": "HTTPS, X.509 (AWS: 8443)",
    "alpn": "443 by ALPN: MQTT or HTTPS with X.509, or SigV4 (AWS: 443)",
    "api": "control plane: boto3 / aws iot --endpoint-url",
}


def _port_value(text: str) -> int | str:
    """A door's port on the command line: a number (0 for a free port) or ``off``."""
    if text == "off":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}: a number (0 picks a free one) or off"
        ) from None


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aws-iot-mock",
        description="An offline stand-in for the AWS IoT Core device endpoint.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    serve = verbs.add_parser("serve", help="run the broker in the foreground")
    _add_common(serve)
    serve.set_defaults(run=_cmd_serve)
    serve.add_argument("--host", help="bind address of every door (default 127.0.0.1)")
    for flag, door in _DOOR_FLAGS:
        serve.add_argument(flag, type=_port_value, metavar="PORT|off", help=door)
    serve.add_argument("--endpoint", help="endpoint host name devices send as SNI")
    serve.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="once every door is bound, write {endpoint, root_ca, ports} there as JSON",
    )
    serve.add_argument(
        "--demo-device",
        action="store_true",
        help=f"create an ACTIVE '{DEMO_DEVICE}' certificate on first run and print how to use it",
    )

    init = verbs.add_parser(
        "init", help="create the root CA, server certificates (and demo device)"
    )
    _add_common(init)
    init.set_defaults(run=_cmd_init)
    init.add_argument("--demo-device", action="store_true")

    endpoint = verbs.add_parser("describe-endpoint", help="print the device data endpoint")
    _add_common(endpoint)
    endpoint.set_defaults(run=_cmd_describe_endpoint)
    endpoint.add_argument("--endpoint-type", default="iot:Data-ATS", choices=ENDPOINT_TYPES)

    create = verbs.add_parser(
        "create-keys-and-certificate", help="create a key pair and a certificate signed by the CA"
    )
    _add_common(create)
    create.set_defaults(run=_cmd_create_keys_and_certificate)
    create.add_argument("--set-as-active", action="store_true")
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
    from_csr.add_argument("--set-as-active", action="store_true")

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

    health = verbs.add_parser(
        "healthcheck",
        help="connect as the demo device (mutual TLS + MQTT CONNECT); exit 0 if accepted",
    )
    _add_common(health)
    health.set_defaults(run=_cmd_healthcheck)
    health.add_argument("--host", help="address to connect to (default: the listener's)")
    health.add_argument("--port", type=int, help="port (default: the listener's)")
    health.add_argument("--timeout", type=float, default=5.0)

    _add_thing_verbs(verbs)
    _add_policy_verbs(verbs)
    _add_ca_verbs(verbs)
    _add_service_verbs(verbs)
    add_shadow_verbs(verbs, _add_common, _load)
    add_iam_verbs(verbs, _add_common, _load)
    return parser


if TYPE_CHECKING:
    _Verbs = argparse._SubParsersAction[_Parser]  # what add_subparsers returns


def _verb(
    verbs: _Verbs, name: str, run: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    """Register verb ``name`` once: its parser (with the common flags) and its runner."""
    parser: argparse.ArgumentParser = verbs.add_parser(name, help=help_text)
    _add_common(parser)
    parser.set_defaults(run=run)
    return parser


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
# text (a string or file://PATH). The job and provisioning-template verbs are in cli_jobs.
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


_SERVICE_VERBS.update(BUILT_IN_VERBS)


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
    result = _call_service(config, operation, request)
    if result:
        print(json.dumps(result, indent=4, default=_iso_timestamp))
    return 0


# Boolean members of the structures these verbs take; shorthand gives them as text.
_SHORTHAND_BOOLEANS = frozenset({"merge", "allowAuthorizerOverride", "enableOCSPCheck"})


def _shorthand_booleans(value: object) -> object:
    """``merge=true`` in shorthand is the text "true"; the model's member is a boolean."""
    if isinstance(value, dict):
        return {
            key: (
                item.lower() == "true"
                if key in _SHORTHAND_BOOLEANS
                and isinstance(item, str)
                and item.lower() in ("true", "false")
                else _shorthand_booleans(item)
            )
            for key, item in value.items()
        }
    return value


def _call_service(config: Config, operation: str, request: dict[str, object]) -> dict[str, Any]:
    """One operation of the control plane's service layer on the registry; AWS's error text."""
    # Imported here so that the other verbs start without the API modules.
    from aws_iot_mock.api.iot_control import IotControlPlane  # noqa: PLC0415
    from aws_iot_mock.aws.api_errors import AwsApiError  # noqa: PLC0415
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
        try:
            return service.call(operation, request)
        except AwsApiError as exc:
            raise BrokerError(f"{exc.code}: {exc.message}") from None


def _tag_list(flag: str, values: Sequence[str]) -> list[object]:
    """``--tags Key=a,Value=1 Key=b,Value=2`` (or one JSON list) as ``[{Key, Value}]``."""
    tags: list[object] = []
    for value in values:
        data = _structure(flag, value)
        tags += data if isinstance(data, list) else [data]
    return tags


def _iso_timestamp(value: object) -> str:
    """Timestamps as the CLI prints them elsewhere: ISO-8601 UTC with microseconds."""
    from datetime import datetime  # noqa: PLC0415

    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _load(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    return config.with_overrides(
        certs_dir=args.certs_dir,
        state_dir=args.state_dir,
        host=getattr(args, "host", None),
        ports={
            door: getattr(args, flag[2:].replace("-", "_"), None)
            for door, flag in DOOR_FLAGS.items()
        },
        endpoint=getattr(args, "endpoint", None),
    )


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=4))


def _open_registry(config: Config) -> CertificateRegistry:
    return CertificateRegistry.open(
        config.state_dir, region=config.region, account_id=config.account_id
    )


def _status(set_as_active: bool) -> CertificateStatus:
    # AWS: "--set-as-active | --no-set-as-active ... Specifies whether the certificate is
    # active"; without it a new certificate is INACTIVE.
    return CertificateStatus.ACTIVE if set_as_active else CertificateStatus.INACTIVE


def _read_file_argument(value: str) -> str:
    """Read an AWS CLI blob argument: ``file://PATH`` means the file's text."""
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BrokerError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise BrokerError(f"{path} is not a text file (a PEM file is ASCII)") from None
    return value


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
    config = _load(args)
    with _open_registry(config) as registry:
        record = registry.describe_certificate(args.certificate_id)
    _print_json({"certificateDescription": record.to_description()})
    return 0


def _cmd_list_certificates(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        records = registry.list_certificates()
    _print_json({"certificates": [record.to_summary() for record in records]})
    return 0


# --- structure arguments (JSON, shorthand or file://) ------------------------------------------


def _structure(flag: str, value: str) -> object:
    """Parse a structure or list argument as the AWS CLI does: JSON, else shorthand syntax."""
    text = _read_file_argument(value).strip()
    if text.startswith(("{", "[")):
        try:
            parsed: object = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _ParamError(f"Error parsing parameter '{flag}': Invalid JSON: {exc}") from None
        return parsed
    try:
        return _shorthand(text)
    except ValueError as exc:
        raise _ParamError(f"Error parsing parameter '{flag}': {exc}") from None


def _split_top_level(text: str) -> list[str]:
    """Split shorthand at the commas that are not inside ``{}`` or ``[]``."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {char!r} in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise ValueError(f"unbalanced brackets in {text!r}")
    parts.append("".join(current))
    return parts


def _shorthand(text: str) -> dict[str, object]:
    """Parse AWS CLI shorthand: ``k=v,k2={a=b},k3=[x,y]``; ``k=x,y`` makes k the list [x, y]."""
    result: dict[str, object] = {}
    last: str | None = None
    for token in _split_top_level(text):
        key, equals, value = token.partition("=")
        if equals and not any(c in key for c in "{}[]"):
            key = key.strip()
            if not key:
                raise ValueError(f"expected key=value, got {token!r}")
            result[key] = _shorthand_value(value.strip())
            last = key
        elif last is not None and token.strip() and not isinstance(result[last], dict):
            previous = result[last]
            items = previous if isinstance(previous, list) else [previous]
            result[last] = [*items, token.strip()]
        else:
            raise ValueError(f"expected key=value, got {token!r}")
    return result


def _shorthand_value(value: str) -> object:
    if value.startswith("{") and value.endswith("}"):
        inner = value[1:-1].strip()
        return _shorthand(inner) if inner else {}
    if value.startswith("[") and value.endswith("]"):
        return [item.strip() for item in _split_top_level(value[1:-1]) if item.strip()]
    return value


def _param_type_error(flag: str, where: str, value: object, expected: str) -> _ParamError:
    return _ParamError(
        f"Parameter validation failed: Invalid type for parameter {flag} {where}, value:"
        f" {value!r}, valid types: {expected}"
    )


def _bool_value(flag: str, where: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _param_type_error(flag, where, value, "boolean")


def _str_list(flag: str, where: str, value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            raise _param_type_error(flag, where, item, "string")
    return [str(item) for item in items]


def _only_keys(flag: str, data: dict[str, object], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise _ParamError(
                f'Parameter validation failed: Unknown parameter in {flag}: "{key}", must be one'
                f" of: {', '.join(allowed)}"
            )


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
    config = _load(args)
    with _open_registry(config) as registry:
        policy = registry.get_policy(args.policy_name)
    _print_json(policy.to_get_policy())
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
    config = _load(args)
    with _open_registry(config) as registry:
        version = registry.get_policy_version(args.policy_name, args.policy_version_id)
        policy = registry.get_policy(args.policy_name)
    # AWS's GetPolicyVersion also returns the policy's generationId.
    _print_json({**version.to_description(), "generationId": policy.generation_id})
    return 0


def _cmd_list_policy_versions(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        versions = registry.list_policy_versions(args.policy_name)
    _print_json({"policyVersions": [version.to_summary() for version in versions]})
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
    config = _load(args)
    with _open_registry(config) as registry:
        record = registry.describe_ca_certificate(args.certificate_id)
    _print_json({"certificateDescription": record.to_description()})
    return 0


def _cmd_list_ca_certificates(args: argparse.Namespace) -> int:
    config = _load(args)
    with _open_registry(config) as registry:
        records = registry.list_ca_certificates()
    _print_json({"certificates": [record.to_summary() for record in records]})
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


# --- the demo device ---------------------------------------------------------------------------


def _demo_device_paths(certs: CertsDirectory) -> tuple[Path, Path, Path]:
    directory = certs.path / DEMO_DEVICE
    return (
        directory / f"{DEMO_DEVICE}.cert.pem",
        directory / f"{DEMO_DEVICE}.private.key",
        directory / f"{DEMO_DEVICE}.public.key",
    )


def ensure_demo_device(config: Config) -> tuple[Path, Path]:
    """Create the demo device once and bring its registry resources in line; return (cert, key).

    The demo device is an ACTIVE certificate and key under ``certs/demo-device/``, the things
    ``DEMO_THINGS`` with that certificate attached as their principal, and the policy
    ``demo-device-policy`` (see :func:`demo_policy_document`) attached to the certificate. On
    later runs the existing files are reused and only what is missing is created: a certificate
    the registry lost (the state directory was deleted) is registered again as ACTIVE, a missing
    thing or attachment is re-created, and a policy whose document differs (e.g. after the region
    changed) gets the current document as its new default version. Nothing else is touched.
    """
    certs = CertsDirectory(config.certs_dir)
    ca = certs.ensure_root_ca()
    cert_path, key_path, public_path = _demo_device_paths(certs)
    with _open_registry(config) as registry:
        if cert_path.exists() and key_path.exists():
            pem = cert_path.read_bytes()
            record = registry.get_certificate(pki.certificate_id(pem))
            if record is None:
                record = registry.register_certificate(pem, status=CertificateStatus.ACTIVE)
        else:
            issued = pki.issue_device_certificate(ca)
            assert issued.private_key_pem is not None
            record = registry.register_certificate(
                issued.certificate_pem, status=CertificateStatus.ACTIVE
            )
            private_directory(cert_path.parent)  # it holds the device's private key
            write_private_key(key_path, issued.private_key_pem)
            write_public_file(public_path, issued.public_key_pem)
            write_public_file(cert_path, issued.certificate_pem)
        # The ARN in the configured region and account, which may differ from the stored one if
        # the config changed since the certificate was registered.
        arn = pki.certificate_arn(config.region, config.account_id, record.certificate_id)
        for thing_name in DEMO_THINGS:
            if not thing_exists(registry, thing_name):
                registry.create_thing(thing_name)
            ensure_thing_principal(registry, thing_name, arn)
        ensure_policy(registry, DEMO_POLICY, demo_policy_document(config))
        ensure_policy_attached(registry, DEMO_POLICY, arn)
    return cert_path, key_path


def demo_policy_document(config: Config) -> str:
    """The demo device's policy: least privilege, scoped to the connecting thing.

    A client may connect only with a client ID equal to the name of a thing the certificate is
    attached to, and may publish, receive and subscribe on ``demo/...`` and on its own thing's
    reserved topics (``$aws/things/<thing name>/...``: shadows, jobs). Not ``iot:*`` on ``*``.

    ``demo/...`` has statements of its own: thing policy variables resolve on MQTT and MQTT over
    WebSocket only (https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html),
    and a statement with an unresolved variable matches nothing, so the certificate can also
    publish on ``demo/...`` over HTTPS (AWS's curl example).
    """
    thing = "${iot:Connection.Thing.ThingName}"

    def arn(kind: str, name: str) -> str:
        return resource_arn(config.region, config.account_id, kind, name)

    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectAsAnAttachedThing",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": arn("client", thing),
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Sid": "PublishAndReceive",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": arn("topic", "demo/*"),
            },
            {
                "Sid": "Subscribe",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn("topicfilter", "demo/*"),
            },
            {
                "Sid": "ItsThingsReservedTopics",
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": arn("topic", f"$aws/things/{thing}/*"),
            },
            {
                "Sid": "SubscribeToItsThingsReservedTopics",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": arn("topicfilter", f"$aws/things/{thing}/*"),
            },
        ],
    }
    return json.dumps(document, indent=2)


def _cmd_init(args: argparse.Namespace) -> int:
    config = _load(args)
    certs = CertsDirectory(config.certs_dir)
    certs.ensure_root_ca()
    certs.ensure_server_certificates(config.server_names)
    print(f"root CA:     {certs.root_ca_path}")
    if args.demo_device:
        cert_path, key_path = ensure_demo_device(config)
        print(f"demo device: {cert_path} {key_path}")
    return 0


def _client_hints(config: Config, port: int, cert: Path, key: Path, ca: Path) -> list[str]:
    """Ready-to-paste commands for the demo device: subscribe, then publish (mosquitto-clients)."""
    tls = (
        f"-h {config.endpoint} -p {port} --cafile {shlex.quote(str(ca))} "
        f"--cert {shlex.quote(str(cert))} --key {shlex.quote(str(key))}"
    )
    # Two client IDs, two attached things: see DEMO_THINGS. Both may be connected at once.
    return [
        f"mosquitto_sub {tls} -i {DEMO_DEVICE} -q 1 -t 'demo/#' -v",
        f"mosquitto_pub {tls} -i {DEMO_PUBLISHER} -q 1 -t demo/hello -m 'hello from the mock'",
    ]


def _cmd_serve(args: argparse.Namespace) -> int:
    # Imported here so that the other verbs start without the asyncio server modules.
    from aws_iot_mock.server.app import Broker  # noqa: PLC0415

    config = _load(args)
    _raise_open_files_limit()
    demo = ensure_demo_device(config) if args.demo_device else None
    demo_user = ensure_demo_user(config) if args.demo_device else None
    for change in _apply_resources(config):
        print(f"resources:   {change}", file=sys.stderr)

    async def serve() -> None:
        broker = Broker(config)
        # Handlers first: "ready" promises that SIGINT/SIGTERM now stop the broker cleanly.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await broker.start()
        # Everything built so far (modules, config, certificates, contexts) lives as long as
        # the process: move it out of the collector's sight, so that full collections stay
        # short and do not show up as latency spikes (gc.freeze, Python 3.7+).
        gc.freeze()
        print(f"endpoint:    {broker.endpoint}", file=sys.stderr)
        for listener in broker.listeners:
            label = f"{listener.door}:"
            if listener.port is None:
                print(f"{label:<12} off: {listener.off_reason}", file=sys.stderr)
            else:
                where = f"{listener.port} on {listener.host}"
                print(f"{label:<12} {where} ({_DOOR_LABELS[listener.door]})", file=sys.stderr)
                if listener.door == "api":
                    print(
                        f"{'api url:':<12} {api_url(listener.host, listener.port)} "
                        f"(aws iot --endpoint-url URL --ca-bundle {broker.root_ca_path}; "
                        "plain http:// too on loopback)",
                        file=sys.stderr,
                    )
                    if broker.console_url is not None:
                        print(f"{'console:':<12} {broker.console_url}", file=sys.stderr)
        print(f"root CA:     {broker.root_ca_path}", file=sys.stderr)
        mqtt_port = broker.ports.get("mqtt")
        if demo is not None and mqtt_port is not None:
            cert_path, key_path = demo
            print(f"demo device: {cert_path} (key {key_path})", file=sys.stderr)
            hints = _client_hints(config, mqtt_port, cert_path, key_path, broker.root_ca_path)
            for label, hint in zip(("subscribe:", "publish:"), hints, strict=True):
                print(f"{label:<12} {hint}", file=sys.stderr)
        if demo_user is not None:
            alpn_port = broker.ports.get("alpn")
            for label, hint in demo_user_hints(config, alpn_port, demo_user, broker.root_ca_path):
                print(f"{label:<12} {hint}", file=sys.stderr)
        if args.ready_file is not None:
            _write_ready_file(args.ready_file, broker.endpoint, broker.root_ca_path, broker.ports)
        print("ready (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await broker.stop()

    _run_event_loop(serve())
    return 0


def api_url(host: str, port: int) -> str:
    """The control plane's URL to paste into ``--endpoint-url`` (``localhost`` for loopback)."""
    if host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _write_ready_file(path: Path, endpoint: str, root_ca: Path, ports: dict[str, int]) -> None:
    """Write what a harness needs to connect, atomically (a reader never sees half of it)."""
    document = {"endpoint": endpoint, "root_ca": str(root_ca.resolve()), "ports": ports}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document) + "\n", encoding="utf-8")
    temporary.replace(path)


def _apply_resources(config: Config) -> list[str]:
    """Apply the config's ``resources:`` (nothing to do, nothing opened, when there are none)."""
    resources = config.resources
    if not (resources.things or resources.policies or resources.certificates):
        return []
    ca = CertsDirectory(config.certs_dir).ensure_root_ca()
    with _open_registry(config) as registry:
        return apply_config_resources(config, registry, ca.certificate_pem)


def _raise_open_files_limit() -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every connection takes a descriptor.

    The usual soft limit (1024) caps a broker near a thousand devices; the hard limit is what
    the system allows without privileges. Past it, accept failures are logged with reason
    ``TOO_MANY_OPEN_FILES``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20  # Linux's default nr_open; "unlimited" is not accepted as a soft limit
    if soft != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _run_event_loop(main_coroutine: Coroutine[None, None, None]) -> None:
    """Run ``main_coroutine`` on uvloop when it is installed (faster I/O), else asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415 (optional dependency)
    except ImportError:
        asyncio.run(main_coroutine)
    else:
        uvloop.run(main_coroutine)


# MQTT 3.1.1 CONNECT (clean session, keep-alive 30 s) and DISCONNECT, for the health check. Its
# client ID is a thing of its own (see DEMO_THINGS): the demo policy admits it, and it never
# takes over the session of a demo client that is connected at the time.
_HEALTH_CLIENT_ID = DEMO_HEALTHCHECK.encode("ascii")
_HEALTH_CONNECT = (
    bytes((0x10, 12 + len(_HEALTH_CLIENT_ID), 0, 4))
    + b"MQTT\x04\x02\x00\x1e"
    + len(_HEALTH_CLIENT_ID).to_bytes(2, "big")
    + _HEALTH_CLIENT_ID
)
_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    config = _load(args)
    certs = CertsDirectory(config.certs_dir)
    cert_path, key_path, _ = _demo_device_paths(certs)
    listener = config.listener_for("mqtt")
    host = args.host or (listener.host if listener else "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = args.port or (listener.port if listener else 8883)
    ctx = ssl.create_default_context(cafile=str(certs.root_ca_path))
    ctx.load_cert_chain(str(cert_path), str(key_path))
    # Connect to the address but verify and send SNI for the endpoint name, as a device does.
    try:
        with (
            socket.create_connection((host, port), timeout=args.timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=config.endpoint) as tls,
        ):
            tls.sendall(_HEALTH_CONNECT)
            answer = tls.recv(4)
            tls.sendall(b"\xe0\x00")
    except (OSError, ssl.SSLError) as exc:
        print(f"aws-iot-mock: unhealthy: {host}:{port}: {exc}", file=sys.stderr)
        return 1
    if answer != _CONNACK_ACCEPTED:
        print(f"aws-iot-mock: unhealthy: CONNACK {answer.hex()}", file=sys.stderr)
        return 1
    print(f"healthy: {host}:{port} accepted the demo device")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        # Every verb's parser carries its runner (set_defaults(run=...)): one registration.
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except (ConfigError, ListenerBindError, StateDirectoryInUseError) as exc:
        # A port that cannot be bound is the environment's problem, as a bad config is.
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except _ParamError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokerError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    except OSError as exc:
        # e.g. the port is in use: one line, no traceback.
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def main_entry() -> None:
    """Console-script entry point."""
    with contextlib.suppress(BrokenPipeError):
        code = main()
        sys.stdout.flush()
        sys.exit(code)
    # stdout was closed early (e.g. piped into head): exit quietly, as the AWS CLI does.
    os._exit(0)
