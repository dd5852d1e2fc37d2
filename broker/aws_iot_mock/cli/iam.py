"""The local IAM on the command line: verbs named, flagged and printed as ``aws iam`` / ``aws sts``.

SigV4 callers of the data endpoint on 443 (HTTPS iot-data, MQTT over WebSocket) sign with the
keys of local IAM users, kept in ``<state_dir>/iam.sqlite3`` (mode 0600: it holds the secrets the
broker checks signatures with). The broker reads it on every request, so a key or policy made
here while ``serve`` runs applies at once.

Verbs and flags are the AWS CLI's (IAM API Reference, https://docs.aws.amazon.com/IAM/latest/
APIReference/, and ``aws sts get-session-token``): ``create-user``, ``create-access-key
--user-name`` (prints ``{"AccessKey": {...}}`` with the secret, the only time it is shown),
``put-user-policy --user-name --policy-name --policy-document`` (JSON or ``file://PATH``),
``delete-access-key``, ``get-session-token`` and their ``get``/``list``/``delete`` companions.
``get-session-token`` acts, as the real command does, as the caller: the user named by
``--user-name`` (an addition of this CLI) or, without it, the owner of the key in
``AWS_ACCESS_KEY_ID``. An error prints what the AWS CLI prints, ``An error occurred (<Code>)
when calling the <Operation> operation: <message>``, and exits 254.

``ensure_demo_user`` makes the user ``make run`` prints keys for.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_iot_mock.cli.output import EXIT_SERVICE, print_response, print_service_error
from aws_iot_mock.config import Config
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.iam import service
from aws_iot_mock.iam.authorization import ALLOW_ALL_IOT
from aws_iot_mock.iam.errors import IamRequestError, NoSuchEntityError
from aws_iot_mock.iam.store import ACTIVE, IamStore

__all__ = [
    "DEMO_USER",
    "DEMO_USER_POLICY",
    "DemoUser",
    "add_iam_verbs",
    "demo_user_hints",
    "ensure_demo_user",
]

DEMO_USER: Final = "demo-user"
DEMO_USER_POLICY: Final = "demo-user-iot-full-access"


Load = Callable[[argparse.Namespace], Config]
_Run = Callable[[IamStore, argparse.Namespace], Any]


@dataclass(frozen=True)
class _Verb:
    """One verb: its AWS operation name, flags (name, required) and what it runs."""

    operation: str
    help: str
    flags: tuple[tuple[str, bool], ...]
    run: _Run


def _user_name(args: argparse.Namespace) -> str:
    return str(args.user_name)


def _get_session_token(store: IamStore, args: argparse.Namespace) -> Any:
    user_name = args.user_name
    access_key_id = None
    if user_name is None:
        access_key_id = os.environ.get("AWS_ACCESS_KEY_ID")
        if not access_key_id:
            raise BrokerError(
                "get-session-token acts as the caller: pass --user-name, or set "
                "AWS_ACCESS_KEY_ID to one of the user's keys"
            )
    return service.get_session_token(
        store,
        user_name=user_name,
        access_key_id=access_key_id,
        duration_seconds=args.duration_seconds,
    )


def _policy_document(value: str) -> str:
    """``--policy-document``: the JSON itself or ``file://PATH``, as the AWS CLI reads it."""
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BrokerError(f"cannot read {path}: {exc}") from exc
    return value


_VERBS: Final[dict[str, _Verb]] = {
    "create-user": _Verb(
        "CreateUser",
        "create a local IAM user (aws iam create-user)",
        (("--user-name", True), ("--path", False)),
        lambda store, a: service.create_user(store, user_name=a.user_name, path=a.path),
    ),
    "get-user": _Verb(
        "GetUser",
        "show a local IAM user",
        (("--user-name", True),),
        lambda store, a: service.get_user(store, user_name=a.user_name),
    ),
    "list-users": _Verb(
        "ListUsers", "list the local IAM users", (), lambda store, a: service.list_users(store)
    ),
    "delete-user": _Verb(
        "DeleteUser",
        "delete a local IAM user (it must have no keys or policies)",
        (("--user-name", True),),
        lambda store, a: service.delete_user(store, user_name=a.user_name),
    ),
    "create-access-key": _Verb(
        "CreateAccessKey",
        "create an access key; prints its secret, once (aws iam create-access-key)",
        (("--user-name", True),),
        lambda store, a: service.create_access_key(store, user_name=a.user_name),
    ),
    "list-access-keys": _Verb(
        "ListAccessKeys",
        "list a user's access keys (no secrets)",
        (("--user-name", True),),
        lambda store, a: service.list_access_keys(store, user_name=a.user_name),
    ),
    "update-access-key": _Verb(
        "UpdateAccessKey",
        "make an access key Active or Inactive",
        (("--access-key-id", True), ("--status", True), ("--user-name", False)),
        lambda store, a: service.update_access_key(
            store, access_key_id=a.access_key_id, status=a.status, user_name=a.user_name
        ),
    ),
    "delete-access-key": _Verb(
        "DeleteAccessKey",
        "delete an access key (aws iam delete-access-key)",
        (("--access-key-id", True), ("--user-name", False)),
        lambda store, a: service.delete_access_key(
            store, access_key_id=a.access_key_id, user_name=a.user_name
        ),
    ),
    "put-user-policy": _Verb(
        "PutUserPolicy",
        "add or replace a user's inline policy (aws iam put-user-policy)",
        (("--user-name", True), ("--policy-name", True), ("--policy-document", True)),
        lambda store, a: service.put_user_policy(
            store,
            user_name=a.user_name,
            policy_name=a.policy_name,
            policy_document=_policy_document(a.policy_document),
        ),
    ),
    "get-user-policy": _Verb(
        "GetUserPolicy",
        "show a user's inline policy",
        (("--user-name", True), ("--policy-name", True)),
        lambda store, a: service.get_user_policy(
            store, user_name=a.user_name, policy_name=a.policy_name
        ),
    ),
    "list-user-policies": _Verb(
        "ListUserPolicies",
        "list a user's inline policies",
        (("--user-name", True),),
        lambda store, a: service.list_user_policies(store, user_name=a.user_name),
    ),
    "delete-user-policy": _Verb(
        "DeleteUserPolicy",
        "delete a user's inline policy",
        (("--user-name", True), ("--policy-name", True)),
        lambda store, a: service.delete_user_policy(
            store, user_name=a.user_name, policy_name=a.policy_name
        ),
    ),
    "get-session-token": _Verb(
        "GetSessionToken",
        "temporary credentials with a session token and an expiry (aws sts get-session-token)",
        (("--user-name", False), ("--duration-seconds", False)),
        _get_session_token,
    ),
}


def add_iam_verbs(
    verbs: argparse._SubParsersAction[Any],
    add_common: Callable[[argparse.ArgumentParser], None],
    load: Load,
) -> None:
    """Register the IAM and STS verbs; each parser's ``run(args)`` runs its verb.

    Args:
        verbs: the CLI's sub-parsers.
        add_common: adds ``--config``, ``--certs-dir`` and ``--state-dir``.
        load: reads the configuration those flags name.
    """
    for name, verb in _VERBS.items():
        parser = verbs.add_parser(name, help=verb.help)
        add_common(parser)
        for flag, required in verb.flags:
            if flag == "--duration-seconds":
                parser.add_argument(flag, type=int, help="900..129600 (default 43200)")
            elif flag == "--status":
                parser.add_argument(flag, required=required, choices=("Active", "Inactive"))
            else:
                parser.add_argument(flag, required=required)
        parser.set_defaults(run=_runner(verb, load))


def _runner(verb: _Verb, load: Load) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        config = load(args)
        with IamStore.open(config.state_dir, account_id=config.account_id) as store:
            try:
                document = verb.run(store, args)
            except IamRequestError as error:
                print_service_error(verb.operation, error.aws_code, error.aws_message)
                return EXIT_SERVICE
        if document is not None:
            print_response(document)
        return 0

    return run


@dataclass(frozen=True)
class DemoUser:
    """The local IAM user ``make run`` prints keys for. ``repr`` hides the secret.

    Attributes:
        user_name: ``demo-user``.
        access_key_id: its access key.
        secret_access_key: the key's secret.
    """

    user_name: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"DemoUser({self.user_name!r}, {self.access_key_id!r})"


def ensure_demo_user(config: Config) -> DemoUser:
    """Create the demo IAM user once (allow-all-IoT inline policy, one access key); return it.

    Idempotent: an existing user keeps its key (and gets its policy back if it was removed); a
    user whose keys were all deleted or made inactive gets a new one.
    """
    with IamStore.open(config.state_dir, account_id=config.account_id) as store:
        try:
            store.get_user(DEMO_USER)
        except NoSuchEntityError:
            store.create_user(DEMO_USER)
        if DEMO_USER_POLICY not in store.list_user_policies(DEMO_USER):
            store.put_user_policy(DEMO_USER, DEMO_USER_POLICY, ALLOW_ALL_IOT)
        active = [key for key in store.list_access_keys(DEMO_USER) if key.status == ACTIVE]
        key = active[0] if active else store.create_access_key(DEMO_USER)
        return DemoUser(DEMO_USER, key.access_key_id, key.secret_access_key)


def demo_user_hints(
    config: Config, port: int | None, user: DemoUser, root_ca: Path
) -> list[tuple[str, str]]:
    """The banner's SigV4 lines: the demo user's keys, then an ``aws`` and a boto3 publish.

    Args:
        config: for the endpoint and region.
        port: the ``alpn`` door's port (AWS's 443), or None when that door is off.
        user: the demo user.
        root_ca: the root CA the clients must trust.

    Returns:
        (label, line) pairs, each line ready to paste.
    """
    keys = (
        f"AWS_ACCESS_KEY_ID={user.access_key_id} "
        f"AWS_SECRET_ACCESS_KEY={shlex.quote(user.secret_access_key)}"
    )
    lines = [("demo user:", f"{user.user_name} (SigV4, region {config.region}): {keys}")]
    if port is None:
        lines.append(
            ("", "SigV4 (HTTPS, MQTT over WebSocket) is served on the alpn door: it is off")
        )
        return lines
    url = f"https://{config.endpoint}:{port}"
    ca = shlex.quote(str(root_ca))
    # The payload comes from stdin as raw bytes (fileb://): AWS CLI v1 sends --payload as given,
    # v2 reads it as base64 unless told --cli-binary-format raw-in-base64-out, an option v1
    # refuses; fileb:// means the same to both.
    lines.append(
        (
            "aws cli:",
            f'printf \'{{"hello":"SigV4"}}\' | {keys} aws iot-data publish '
            f"--endpoint-url {url} --ca-bundle {ca} --region {config.region} "
            "--topic demo/hello --payload fileb:///dev/stdin",
        )
    )

    def text(value: str) -> str:
        return json.dumps(value)  # a Python string literal in double quotes

    boto3 = (
        f"import boto3; boto3.client({text('iot-data')}, endpoint_url={text(url)}, "
        f"region_name={text(config.region)}, verify={text(str(root_ca))}, "
        f"aws_access_key_id={text(user.access_key_id)}, "
        f"aws_secret_access_key={text(user.secret_access_key)})"
        f".publish(topic={text('demo/hello')}, payload=b{text('hello from boto3')})"
    )
    quoted = f"'{boto3}'" if "'" not in boto3 else shlex.quote(boto3)
    lines.append(("boto3:", f"python3 -c {quoted}"))
    return lines
