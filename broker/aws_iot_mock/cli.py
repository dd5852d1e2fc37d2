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
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from aws_iot_mock import pki
from aws_iot_mock.authz.iot_policy_evaluation import (
    EXPLICIT_DENY,
    Decision,
    NamedPolicy,
    RequestContext,
    certificate_context,
    evaluate,
    parse_policy_document,
    resource_arn,
)
from aws_iot_mock.certs_dir import CertsDirectory, write_private_key, write_public_file
from aws_iot_mock.cli_rules import add_rule_verbs, rule_verbs
from aws_iot_mock.cli_shadows import add_shadow_verbs, cmd_list_named_shadows, cmd_shadow_operation
from aws_iot_mock.config import DOOR_FLAGS, Config, load_config
from aws_iot_mock.errors import BrokerError, ConfigError, ListenerBindError
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus
from aws_iot_mock.resources import (
    apply_config_resources,
    ensure_policy,
    ensure_policy_attached,
    ensure_thing_principal,
    thing_exists,
)

__all__ = ["main", "main_entry"]

EXIT_USAGE = 252  # AWS CLI: "The command entered on the command line failed to be parsed."
EXIT_CONFIG = 253  # AWS CLI: "The system environment or configuration was invalid."
EXIT_SERVICE = 254  # AWS CLI: "The command ... returned an error" (a service-side error).

DEMO_DEVICE = "demo-device"
ENDPOINT_TYPES = ("iot:Data-ATS", "iot:Data")

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

# TestAuthorization's actionType values and the IoT policy actions they stand for.
_AUTH_ACTIONS = {
    "CONNECT": "iot:Connect",
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
}


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
    init.add_argument("--demo-device", action="store_true")

    endpoint = verbs.add_parser("describe-endpoint", help="print the device data endpoint")
    _add_common(endpoint)
    endpoint.add_argument("--endpoint-type", default="iot:Data-ATS", choices=ENDPOINT_TYPES)

    create = verbs.add_parser(
        "create-keys-and-certificate", help="create a key pair and a certificate signed by the CA"
    )
    _add_common(create)
    create.add_argument("--set-as-active", action="store_true")
    create.add_argument("--certificate-pem-outfile", type=Path)
    create.add_argument("--public-key-outfile", type=Path)
    create.add_argument("--private-key-outfile", type=Path)

    from_csr = verbs.add_parser(
        "create-certificate-from-csr", help="sign a CSR's own public key with the CA"
    )
    _add_common(from_csr)
    from_csr.add_argument(
        "--certificate-signing-request", required=True, help="file://PATH or the PEM itself"
    )
    from_csr.add_argument("--set-as-active", action="store_true")

    update = verbs.add_parser("update-certificate", help="change a certificate's status")
    _add_common(update)
    update.add_argument("--certificate-id", required=True)
    update.add_argument(
        "--new-status",
        required=True,
        choices=[status.value for status in CertificateStatus],
    )

    describe = verbs.add_parser("describe-certificate", help="show one certificate")
    _add_common(describe)
    describe.add_argument("--certificate-id", required=True)

    listing = verbs.add_parser("list-certificates", help="list the registered certificates")
    _add_common(listing)

    health = verbs.add_parser(
        "healthcheck",
        help="connect as the demo device (mutual TLS + MQTT CONNECT); exit 0 if accepted",
    )
    _add_common(health)
    health.add_argument("--host", help="address to connect to (default: the listener's)")
    health.add_argument("--port", type=int, help="port (default: the listener's)")
    health.add_argument("--timeout", type=float, default=5.0)

    _add_thing_verbs(verbs)
    _add_policy_verbs(verbs)
    _add_ca_verbs(verbs)
    add_shadow_verbs(verbs, _add_common)
    add_rule_verbs(verbs, _add_common)
    return parser


if TYPE_CHECKING:
    _Verbs = argparse._SubParsersAction[_Parser]  # what add_subparsers returns


def _verb(verbs: _Verbs, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(name, help=help_text)
    _add_common(parser)
    return parser


def _add_thing_verbs(verbs: _Verbs) -> None:
    payload_help = (
        'JSON {"attributes": {"k": "v"}, "merge": false}, shorthand'
        " attributes={k=v},merge=false, or file://PATH"
    )
    create = _verb(verbs, "create-thing", "create a thing")
    create.add_argument("--thing-name", required=True)
    create.add_argument("--thing-type-name")
    create.add_argument("--attribute-payload", help=payload_help)

    describe = _verb(verbs, "describe-thing", "show one thing")
    describe.add_argument("--thing-name", required=True)

    listing = _verb(verbs, "list-things", "list things, optionally by attribute or type")
    listing.add_argument("--attribute-name")
    listing.add_argument("--attribute-value")
    listing.add_argument("--thing-type-name")

    update = _verb(verbs, "update-thing", "change a thing's type or attributes")
    update.add_argument("--thing-name", required=True)
    update.add_argument("--thing-type-name")
    update.add_argument("--remove-thing-type", action=argparse.BooleanOptionalAction, default=False)
    update.add_argument("--attribute-payload", help=payload_help)
    update.add_argument("--expected-version", type=int)

    delete = _verb(verbs, "delete-thing", "delete a thing")
    delete.add_argument("--thing-name", required=True)
    delete.add_argument("--expected-version", type=int)

    thing_type = _verb(verbs, "create-thing-type", "create a thing type")
    thing_type.add_argument("--thing-type-name", required=True)
    thing_type.add_argument(
        "--thing-type-properties",
        help='JSON {"thingTypeDescription": "...", "searchableAttributes": ["a"]} or shorthand',
    )

    for name, help_text in (
        ("attach-thing-principal", "attach a certificate (by ARN) to a thing"),
        ("detach-thing-principal", "detach a certificate (by ARN) from a thing"),
    ):
        attach = _verb(verbs, name, help_text)
        attach.add_argument("--thing-name", required=True)
        attach.add_argument("--principal", required=True, help="the certificate ARN")

    principals = _verb(verbs, "list-thing-principals", "list the certificates of a thing")
    principals.add_argument("--thing-name", required=True)

    things = _verb(verbs, "list-principal-things", "list the things of a certificate")
    things.add_argument("--principal", required=True, help="the certificate ARN")


def _add_policy_verbs(verbs: _Verbs) -> None:
    document_help = "the policy document: JSON, or file://PATH"
    create = _verb(verbs, "create-policy", "create an IoT policy")
    create.add_argument("--policy-name", required=True)
    create.add_argument("--policy-document", required=True, help=document_help)

    for name, help_text in (
        ("get-policy", "show a policy and its default version's document"),
        ("delete-policy", "delete a policy (detach it first)"),
        ("list-targets-for-policy", "list the certificates a policy is attached to"),
        ("list-policy-versions", "list a policy's versions"),
    ):
        _verb(verbs, name, help_text).add_argument("--policy-name", required=True)

    _verb(verbs, "list-policies", "list the policies")

    version = _verb(verbs, "create-policy-version", "add a version to a policy")
    version.add_argument("--policy-name", required=True)
    version.add_argument("--policy-document", required=True, help=document_help)
    version.add_argument("--set-as-default", action=argparse.BooleanOptionalAction, default=False)

    for name, help_text in (
        ("get-policy-version", "show one version of a policy"),
        ("set-default-policy-version", "make a version the policy's default"),
        ("delete-policy-version", "delete a non-default version"),
    ):
        parser = _verb(verbs, name, help_text)
        parser.add_argument("--policy-name", required=True)
        parser.add_argument("--policy-version-id", required=True)

    for name, help_text in (
        ("attach-policy", "attach a policy to a certificate (by ARN)"),
        ("detach-policy", "detach a policy from a certificate (by ARN)"),
    ):
        attach = _verb(verbs, name, help_text)
        attach.add_argument("--policy-name", required=True)
        attach.add_argument("--target", required=True, help="the certificate ARN")

    attached = _verb(verbs, "list-attached-policies", "list the policies attached to a target")
    attached.add_argument("--target", required=True, help="the certificate ARN")

    test = _verb(
        verbs, "test-authorization", "evaluate the policies of a certificate for some requests"
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
    register_ca = _verb(verbs, "register-ca-certificate", "register a CA certificate")
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

    for name, help_text in (
        ("describe-ca-certificate", "show one CA certificate"),
        ("update-ca-certificate", "change a CA certificate's status or auto-registration"),
    ):
        parser = _verb(verbs, name, help_text)
        parser.add_argument("--certificate-id", required=True)
        if name == "update-ca-certificate":
            parser.add_argument("--new-status", choices=("ACTIVE", "INACTIVE"))
            parser.add_argument("--new-auto-registration-status", choices=("ENABLE", "DISABLE"))

    _verb(verbs, "list-ca-certificates", "list the registered CA certificates")

    register = _verb(
        verbs, "register-certificate", "register a device certificate signed by a known CA"
    )
    register.add_argument("--certificate-pem", required=True, help="file://PATH or the PEM")
    register.add_argument("--ca-certificate-pem", help="file://PATH or the PEM of its CA")
    status = register.add_mutually_exclusive_group()
    status.add_argument("--set-as-active", action=argparse.BooleanOptionalAction, default=None)
    status.add_argument("--status", choices=[s.value for s in CertificateStatus])


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


def _principal_certificate_id(principal: str) -> str:
    """The certificate ID in a certificate ARN (``arn:aws:iot:...:cert/<id>``) or a bare ID."""
    if principal.startswith("arn:"):
        parts = principal.split(":", 5)
        kind, _, cert_id = parts[-1].partition("/")
        if len(parts) != 6 or parts[2] != "iot" or kind != "cert":
            raise BrokerError(
                f"InvalidRequestException: principal {principal!r} is not a certificate ARN"
                " (arn:aws:iot:REGION:ACCOUNT:cert/CERTIFICATE_ID)"
            )
        return cert_id
    return principal


def _cmd_test_authorization(args: argparse.Namespace) -> int:
    config = _load(args)
    infos = _auth_infos(args.auth_infos)
    for action, resources in infos:
        if action not in _AUTH_ACTIONS:
            raise BrokerError(
                f"InvalidRequestException: actionType {action!r} is not one of"
                f" {', '.join(_AUTH_ACTIONS)}"
            )
        if not resources:
            raise BrokerError(f"InvalidRequestException: authInfo {action} names no resources")
    skip = set(args.policy_names_to_skip)
    context = RequestContext(
        region=config.region, account_id=config.account_id, client_id=args.client_id
    )
    policies: list[tuple[str, str]] = []  # (name, document text)
    with _open_registry(config) as registry:
        if args.principal is not None:
            cert_id = _principal_certificate_id(args.principal)
            record = registry.describe_certificate(cert_id)
            snapshot = registry.principal_snapshot(record.certificate_id)
            subject, issuer, san = certificate_context(
                pki.load_certificate(record.certificate_pem.encode("ascii"))
            )
            # Thing policy variables resolve only when the client ID names an attached thing.
            thing = next(
                (t for t in snapshot.things if t.thing_name == args.client_id),
                None,
            )
            context = RequestContext(
                region=config.region,
                account_id=config.account_id,
                client_id=args.client_id,
                thing_name=None if thing is None else thing.thing_name,
                thing_type_name=None if thing is None else thing.thing_type_name,
                thing_attributes={} if thing is None else dict(thing.attributes),
                is_attached=thing is not None,
                certificate_subject=subject,
                certificate_issuer=issuer,
                certificate_san=san,
            )
            policies += [(name, doc) for name, doc in snapshot.policies if name not in skip]
        for name in args.policy_names_to_add:
            if name not in skip and name not in {n for n, _ in policies}:
                policies.append((name, registry.get_policy(name).document))
    named = [NamedPolicy(name, parse_policy_document(document)) for name, document in policies]
    results = [
        _auth_result(config, named, action, resources, context) for action, resources in infos
    ]
    _print_json({"authResults": results})
    return 0


def _auth_result(
    config: Config,
    policies: Sequence[NamedPolicy],
    action_type: str,
    resources: Sequence[str],
    context: RequestContext,
) -> dict[str, object]:
    """One element of TestAuthorization's ``authResults``.

    Every resource of the authInfo must be allowed for ALLOWED; an explicit deny of any resource
    makes the whole authInfo EXPLICIT_DENY.
    """
    decisions = [
        evaluate(policies, _AUTH_ACTIONS[action_type], resource, context) for resource in resources
    ]
    denying = [d for d in decisions if _is_explicit_deny(d)]
    if denying:
        verdict = "EXPLICIT_DENY"
        allowed: list[str] = []
        explicit = _matched_policies(denying)
        implicit: list[str] = []
    elif all(d.allowed for d in decisions):
        verdict = "ALLOWED"
        allowed = _matched_policies(decisions)
        explicit = implicit = []
    else:
        verdict = "IMPLICIT_DENY"
        allowed = explicit = []
        # AWS: "When a policy doesn't explicitly deny or allow an action on a resource it is
        # considered an implicit deny": every policy evaluated took part.
        implicit = [policy.name for policy in policies]

    def listing(names: Sequence[str]) -> dict[str, object]:
        return {
            "policies": [
                {
                    "policyName": name,
                    "policyArn": f"arn:aws:iot:{config.region}:{config.account_id}:policy/{name}",
                }
                for name in names
            ]
        }

    return {
        "authInfo": {"actionType": action_type, "resources": list(resources)},
        "allowed": listing(allowed),
        "denied": {"implicitDeny": listing(implicit), "explicitDeny": listing(explicit)},
        "authDecision": verdict,
        "missingContextValues": [],
    }


def _is_explicit_deny(decision: Decision) -> bool:
    return decision.reason == EXPLICIT_DENY


def _matched_policies(decisions: Sequence[Decision]) -> list[str]:
    """The names of the policies whose statements decided, in first-match order, once each."""
    names: list[str] = []
    for decision in decisions:
        for policy_name, _, _ in decision.matched:
            if policy_name not in names:
                names.append(policy_name)
    return names


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
            cert_path.parent.mkdir(parents=True, exist_ok=True)
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
                "Resource": [arn("topic", "demo/*"), arn("topic", f"$aws/things/{thing}/*")],
            },
            {
                "Sid": "Subscribe",
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [
                    arn("topicfilter", "demo/*"),
                    arn("topicfilter", f"$aws/things/{thing}/*"),
                ],
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
    demo = ensure_demo_device(config) if args.demo_device else None
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
        print(f"root CA:     {broker.root_ca_path}", file=sys.stderr)
        mqtt_port = broker.ports.get("mqtt")
        if demo is not None and mqtt_port is not None:
            cert_path, key_path = demo
            print(f"demo device: {cert_path} (key {key_path})", file=sys.stderr)
            hints = _client_hints(config, mqtt_port, cert_path, key_path, broker.root_ca_path)
            for label, hint in zip(("subscribe:", "publish:"), hints, strict=True):
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


def _cmd_shadow(args: argparse.Namespace) -> int:
    return cmd_shadow_operation(_load(args), args, args.verb)


def _cmd_list_named_shadows(args: argparse.Namespace) -> int:
    return cmd_list_named_shadows(_load(args), args)


_VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "get-thing-shadow": _cmd_shadow,
    "update-thing-shadow": _cmd_shadow,
    "delete-thing-shadow": _cmd_shadow,
    "list-named-shadows-for-thing": _cmd_list_named_shadows,
    "serve": _cmd_serve,
    "init": _cmd_init,
    "describe-endpoint": _cmd_describe_endpoint,
    "create-keys-and-certificate": _cmd_create_keys_and_certificate,
    "create-certificate-from-csr": _cmd_create_certificate_from_csr,
    "update-certificate": _cmd_update_certificate,
    "describe-certificate": _cmd_describe_certificate,
    "list-certificates": _cmd_list_certificates,
    "healthcheck": _cmd_healthcheck,
    "create-thing": _cmd_create_thing,
    "describe-thing": _cmd_describe_thing,
    "list-things": _cmd_list_things,
    "update-thing": _cmd_update_thing,
    "delete-thing": _cmd_delete_thing,
    "create-thing-type": _cmd_create_thing_type,
    "attach-thing-principal": _cmd_attach_thing_principal,
    "detach-thing-principal": _cmd_detach_thing_principal,
    "list-thing-principals": _cmd_list_thing_principals,
    "list-principal-things": _cmd_list_principal_things,
    "create-policy": _cmd_create_policy,
    "get-policy": _cmd_get_policy,
    "list-policies": _cmd_list_policies,
    "delete-policy": _cmd_delete_policy,
    "create-policy-version": _cmd_create_policy_version,
    "get-policy-version": _cmd_get_policy_version,
    "list-policy-versions": _cmd_list_policy_versions,
    "set-default-policy-version": _cmd_set_default_policy_version,
    "delete-policy-version": _cmd_delete_policy_version,
    "attach-policy": _cmd_attach_policy,
    "detach-policy": _cmd_detach_policy,
    "list-attached-policies": _cmd_list_attached_policies,
    "list-targets-for-policy": _cmd_list_targets_for_policy,
    "test-authorization": _cmd_test_authorization,
    "register-ca-certificate": _cmd_register_ca_certificate,
    "describe-ca-certificate": _cmd_describe_ca_certificate,
    "list-ca-certificates": _cmd_list_ca_certificates,
    "update-ca-certificate": _cmd_update_ca_certificate,
    "register-certificate": _cmd_register_certificate,
    **rule_verbs(_load),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return _VERBS[args.verb](args)
    except (ConfigError, ListenerBindError) as exc:
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
