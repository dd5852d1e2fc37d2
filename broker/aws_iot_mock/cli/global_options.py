"""The AWS CLI's global options, and ``--cli-input-json``, for every verb of the command line.

Users type ``--output``, ``--query``, ``--region``, ``--profile`` and ``--endpoint-url`` by habit
(https://docs.aws.amazon.com/cli/latest/reference/#options); each verb accepts them before or after
its name. ``--output`` and ``--query`` shape what is printed (``aws_iot_mock.cli.output``);
``--debug`` prints a traceback for an unexpected error. The others are accepted so that a pasted
AWS command runs unchanged, and have no effect: a verb works on the state directory (the same
registry a running ``serve`` answers on its api door), and ARNs carry the configuration's region.

``--cli-input-json`` (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-skeleton.html)
gives the operation's request members as one JSON object (inline or ``file://PATH``); each member
becomes its flag (``thingName`` is ``--thing-name``) unless the command line gives that flag
itself, which wins, as with the AWS CLI.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from typing import Final

from aws_iot_mock.cli.output import OUTPUT_FORMATS

__all__ = [
    "CLI_INPUT_JSON",
    "CliInputError",
    "add_global_options",
    "expand_cli_input_json",
    "member_flag",
]

CLI_INPUT_JSON: Final = "--cli-input-json"

# Accepted and without effect: (flag, help); _ACCEPTED take a value, _SWITCHES none.
_ACCEPTED: Final = (
    ("--region", "accepted for AWS CLI compatibility; ARNs use the configuration's region"),
    ("--profile", "accepted for AWS CLI compatibility; no credentials are needed"),
    ("--endpoint-url", "accepted for AWS CLI compatibility; verbs work on --state-dir"),
    ("--ca-bundle", "accepted for AWS CLI compatibility"),
    ("--color", "accepted for AWS CLI compatibility (output is never colored)"),
    ("--cli-read-timeout", "accepted for AWS CLI compatibility"),
    ("--cli-connect-timeout", "accepted for AWS CLI compatibility"),
    ("--cli-binary-format", "accepted for AWS CLI compatibility (payloads are raw)"),
)
_SWITCHES: Final = (
    ("--no-verify-ssl", "accepted for AWS CLI compatibility"),
    ("--no-paginate", "accepted for AWS CLI compatibility (every list is complete)"),
    ("--no-sign-request", "accepted for AWS CLI compatibility"),
    ("--no-cli-pager", "accepted for AWS CLI compatibility (output is never paged)"),
)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Add the AWS CLI's global options to ``parser`` (the top parser, or a verb's).

    Every default is ``argparse.SUPPRESS``, so a value given before the verb survives the verb's
    parser; read them with ``getattr(args, name, None)``.
    """
    group = parser.add_argument_group("AWS CLI global options")
    suppress = argparse.SUPPRESS
    group.add_argument("--output", choices=OUTPUT_FORMATS, default=suppress, help="json (default)")
    group.add_argument("--query", default=suppress, help="a JMESPath expression on the response")
    group.add_argument(
        "--debug", action="store_true", default=suppress, help="a traceback for unexpected errors"
    )
    group.add_argument(
        CLI_INPUT_JSON,
        default=suppress,
        metavar="JSON",
        help="the request members as JSON, or file://PATH (flags given on the line win)",
    )
    for flag, help_text in _ACCEPTED:
        group.add_argument(flag, default=suppress, help=help_text)
    for flag, help_text in _SWITCHES:
        group.add_argument(flag, action="store_true", default=suppress, help=help_text)


def member_flag(member: str) -> str:
    """The flag of a request member, as the AWS CLI names it (botocore's ``xform_name``).

    ``caCertificatePem`` is ``--ca-certificate-pem``, ``thingARN`` is ``--thing-arn``.
    """
    words = re.sub(r"(.)([A-Z][a-z]+)", r"\1-\2", member)
    return "--" + re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", words).lower()


def _flag_member(flag: str) -> str:
    head, *rest = flag.removeprefix("--").split("-")
    return head + "".join(word.title() for word in rest)


class CliInputError(ValueError):
    """``--cli-input-json`` does not parse or names a member the verb does not take."""


def expand_cli_input_json(verb_parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """Replace ``--cli-input-json VALUE`` in ``argv`` with the flags its members stand for.

    Args:
        verb_parser: the parser of the verb ``argv`` runs (its flags are the known members).
        argv: the command line after the program name, verb included.

    Returns:
        ``argv`` without ``--cli-input-json`` and with one flag (and its values) per member that
        the command line does not already give.

    Raises:
        CliInputError: the value is not a JSON object, or names an unknown member (the AWS
            CLI's "Parameter validation failed" text).
    """
    args = list(argv)
    value: str | None = None
    for i, arg in enumerate(args):
        if arg == CLI_INPUT_JSON and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            break
        if arg.startswith(CLI_INPUT_JSON + "="):
            value = arg.partition("=")[2]
            del args[i]
            break
    if value is None:
        return args
    from aws_iot_mock.cli._common import _read_file_argument  # noqa: PLC0415

    try:
        members = json.loads(_read_file_argument(value))
    except json.JSONDecodeError as exc:
        raise CliInputError(
            f"Error parsing parameter '{CLI_INPUT_JSON}': Invalid JSON: {exc}"
        ) from None
    if not isinstance(members, dict):
        raise CliInputError(
            f"Error parsing parameter '{CLI_INPUT_JSON}': the value must be a JSON object"
        )
    actions = _member_actions(verb_parser)
    unknown = [member for member in members if member_flag(member) not in actions]
    if unknown:
        allowed = ", ".join(_flag_member(flag) for flag in actions)
        raise CliInputError(
            f'Parameter validation failed:\nUnknown parameter in input: "{unknown[0]}", must be'
            f" one of: {allowed}"
        )
    given = {arg.partition("=")[0] for arg in args if arg.startswith("--")}
    for member, item in members.items():
        flag = member_flag(member)
        if flag in given or "--no-" + flag[2:] in given:
            continue
        args.extend(_flag_values(flag, actions[flag], item))
    return args


# The verb's own flags that name no request member.
_NOT_MEMBERS: Final = frozenset({"--config", "--certs-dir", "--state-dir", "--help"})


def _member_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    probe = argparse.ArgumentParser(add_help=False)
    add_global_options(probe)
    globals_ = {flag for action in probe._actions for flag in action.option_strings}
    return {
        action.option_strings[0]: action
        for action in parser._actions
        if action.option_strings
        and action.option_strings[0].startswith("--")
        and action.option_strings[0] not in globals_ | _NOT_MEMBERS
    }


def _flag_values(flag: str, action: argparse.Action, item: object) -> list[str]:
    if isinstance(action, argparse.BooleanOptionalAction):
        return [flag if item else "--no-" + flag[2:]]
    if action.nargs == 0:  # store_true
        return [flag] if item else []
    if isinstance(item, bool):
        return [flag, "true" if item else "false"]
    if isinstance(item, list) and action.nargs in ("+", "*"):
        if all(isinstance(element, str | int | float) for element in item):
            return [flag, *(str(element) for element in item)]
        return [flag, json.dumps(item)]
    if isinstance(item, dict | list):
        return [flag, json.dumps(item)]
    return [flag, str(item)]
