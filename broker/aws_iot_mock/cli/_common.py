"""What the verb modules of the command line share.

Exit codes, the parser, the common flags, configuration loading, and the AWS CLI's parameter
syntaxes (JSON, shorthand, ``file://``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from aws_iot_mock.cli.global_options import add_global_options
from aws_iot_mock.cli.output import EXIT_CONFIG, EXIT_SERVICE, EXIT_USAGE, print_response
from aws_iot_mock.config import DOOR_FLAGS, Config, load_config
from aws_iot_mock.errors import BrokerError

__all__ = [
    "CONFIG_ENV",
    "EXIT_CONFIG",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "_SHORTHAND_BOOLEANS",
    "_ParamError",
    "_Parser",
    "_Verbs",
    "_add_common",
    "_bool_value",
    "_iso_timestamp",
    "_load",
    "_only_keys",
    "_open_registry",
    "_param_type_error",
    "_print_json",
    "_read_file_argument",
    "_shorthand",
    "_shorthand_booleans",
    "_shorthand_value",
    "_split_top_level",
    "_status",
    "_str_list",
    "_structure",
    "_tag_list",
    "_verb",
]


class _ParamError(BrokerError):
    """A structure argument does not parse (the AWS CLI's "Error parsing parameter"; exit 252)."""


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS``, else standard output's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):  # not a terminal, closed, replaced
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter, its width found without importing ``shutil``.

    argparse builds a formatter for every argument added (to check its metavar), and the
    default one imports ``shutil`` for the terminal's width; ``shutil`` imports ``zlib``,
    ``bz2`` and ``lzma``: about 4 ms of CPU before serve's first handshake.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}{self._did_you_mean(message)}\n")

    def _did_you_mean(self, message: str) -> str:
        """A suggestion for a mistyped verb or flag, as the AWS CLI and git make one."""
        verb = re.match(r"argument VERB: invalid choice: '([^']*)'", message)
        if verb is not None:
            choices = next(
                (
                    list(action.choices)
                    for action in self._actions
                    if isinstance(action, argparse._SubParsersAction) and action.choices
                ),
                [],
            )
            wrong = verb.group(1)
        else:
            flags = re.match(r"unrecognized arguments: (--[\w-]+)", message)
            if flags is None:
                return ""
            # Reported by the top parser: the verbs' flags are in their own parsers.
            parsers = [self] + [
                sub
                for action in self._actions
                if isinstance(action, argparse._SubParsersAction)
                for sub in action.choices.values()
            ]
            choices = sorted(
                {
                    flag
                    for parser in parsers
                    for action in parser._actions
                    for flag in action.option_strings
                }
            )
            wrong = flags.group(1)
        import difflib  # noqa: PLC0415 (a suggestion for a mistake: not at every start)

        close = difflib.get_close_matches(wrong, choices, n=1)
        return f"\n\nDid you mean {close[0]!r}?" if close else ""


# The config file a verb reads when --config is not given (the Docker image sets it, so that
# `docker exec CONTAINER aws-iot-mock iot list-things` reads the image's config).
CONFIG_ENV = "AWS_IOT_MOCK_CONFIG"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help=f"YAML configuration file (default: ${CONFIG_ENV} if set)"
    )
    parser.add_argument("--certs-dir", type=Path, help="certificate directory (default: certs/)")
    parser.add_argument("--state-dir", type=Path, help="state directory (default: .state/)")
    # --output, --query, --cli-input-json, --region ...: what AWS CLI users type by habit.
    add_global_options(parser)


if TYPE_CHECKING:
    from aws_iot_mock.registry import CertificateRegistry, CertificateStatus

    _Verbs = argparse._SubParsersAction[_Parser]  # what add_subparsers returns


def _verb(
    verbs: _Verbs, name: str, run: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    """Register verb ``name`` once: its parser (with the common flags) and its runner."""
    parser: argparse.ArgumentParser = verbs.add_parser(name, help=help_text)
    _add_common(parser)
    parser.set_defaults(run=run)
    return parser


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

    from aws_iot_mock.registry._util import iso  # noqa: PLC0415 (see _open_registry)

    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _load(args: argparse.Namespace) -> Config:
    """The configuration a verb runs with, then the command line's overrides.

    The file is --config, else $AWS_IOT_MOCK_CONFIG, else the embedded defaults.
    """
    path = args.config
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    config = load_config(path)
    return config.with_overrides(
        certs_dir=args.certs_dir,
        state_dir=args.state_dir,
        host=getattr(args, "host", None),
        ports={
            door: getattr(args, flag[2:].replace("-", "_"), None)
            for door, flag in DOOR_FLAGS.items()
        },
        endpoint=getattr(args, "endpoint", None),
        log_level=getattr(args, "log_level", None),
    )


def _print_json(data: object) -> None:
    """Print a response as the AWS CLI would, with the command line's --output and --query."""
    print_response(data)


def _open_registry(config: Config) -> CertificateRegistry:
    # Imported here: serve reads the registry before its package is loaded (server.app).
    from aws_iot_mock.registry import CertificateRegistry  # noqa: PLC0415

    return CertificateRegistry.open(
        config.state_dir, region=config.region, account_id=config.account_id
    )


def _status(set_as_active: bool) -> CertificateStatus:
    # AWS: "--set-as-active | --no-set-as-active ... Specifies whether the certificate is
    # active"; without it a new certificate is INACTIVE.
    from aws_iot_mock.registry import CertificateStatus  # noqa: PLC0415 (see _open_registry)

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
