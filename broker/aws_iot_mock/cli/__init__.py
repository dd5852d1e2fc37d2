"""The ``aws-iot-mock`` command line: ``serve``, and verbs named and shaped as ``aws iot``'s.

Every verb takes ``--config``, ``--certs-dir`` and ``--state-dir`` and works while ``serve`` runs
against the same directories (the registry is SQLite in WAL mode). Output is what the AWS CLI
prints, with its ``--output``/``--query`` (``cli.output``) and its global options and
``--cli-input-json`` (``cli.global_options``). Exit codes and error text are the AWS CLI's: 252
for a command line that does not parse, 253 for a bad configuration, 254 for an error the service
would return (unknown certificate, bad CSR), 130 for Ctrl-C, 255 for anything else.

The registry verbs (things, thing types, policies and their versions, attachments, CA
certificates, ``register-certificate`` and ``test-authorization``) take the flags the AWS CLI
reference gives for ``aws iot <verb>`` and print the response AWS documents. Structure arguments
(``--attribute-payload``, ``--thing-type-properties``, ``--auth-infos``) accept JSON, the AWS
CLI's shorthand syntax (``attributes={room=kitchen},merge=true``) or ``file://PATH``; one that
does not parse exits 252, as the AWS CLI's "Error parsing parameter" does.

The verbs live in one module per namespace: ``local`` (aws-iot-mock's own: serve, init,
healthcheck), ``iot`` (the control plane), ``iot_data`` (shadows), ``iam`` (local IAM and STS);
each registers its verbs once, parser and runner together.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from aws_iot_mock import startup_gc
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.cli import local
from aws_iot_mock.cli._common import _add_common, _load, _ParamError, _Parser
from aws_iot_mock.cli.global_options import CliInputError, add_global_options, expand_cli_input_json
from aws_iot_mock.cli.local import DEMO_THINGS, api_url, demo_policy_document, ensure_demo_device
from aws_iot_mock.cli.output import (
    EXIT_CONFIG,
    EXIT_OTHER,
    EXIT_SERVICE,
    EXIT_SIGINT,
    EXIT_USAGE,
    OutputOptions,
    QueryError,
    operation_name,
    print_service_error,
    using,
)
from aws_iot_mock.errors import BrokerError, ConfigError, ListenerBindError
from aws_iot_mock.state.instance_lock import StateDirectoryInUseError

__all__ = [
    "DEMO_THINGS",
    "EXIT_CONFIG",
    "EXIT_SERVICE",
    "EXIT_USAGE",
    "api_url",
    "demo_policy_document",
    "ensure_demo_device",
    "main",
    "main_entry",
]


def _version() -> str:
    import importlib.metadata  # noqa: PLC0415 (see _VersionAction)

    try:
        return importlib.metadata.version("aws-iot-mock")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout without installing
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked.

    ``importlib.metadata`` scans every installed distribution: a tenth of a second (more on a
    busy machine) that ``serve`` would pay at every start for a flag it was not given.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"aws-iot-mock {_version()}")  # on stdout, as argparse's own version action
        parser.exit()


def _build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every verb, or only ``local``'s when ``verb`` is one of them.

    ``serve`` is what a device waits for: its start-up must not pay for importing the ~200
    registry, shadow and IAM verbs' modules it never runs (about a third of a second). Any
    other first word (another verb, ``--help``, a typo that wants a suggestion) gets them all;
    ``serve`` gets only its own parser (building each subparser costs milliseconds).
    """
    parser = _Parser(
        prog="aws-iot-mock",
        description="An offline stand-in for the AWS IoT Core device endpoint.",
    )
    parser.add_argument("--version", action=_VersionAction)
    add_global_options(parser)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)
    local.register(verbs, serve_only=verb == "serve")
    if verb in local.VERBS:
        return parser
    # Imported here: see the docstring.
    from aws_iot_mock.cli import iot  # noqa: PLC0415
    from aws_iot_mock.cli.iam import add_iam_verbs  # noqa: PLC0415
    from aws_iot_mock.cli.iot_data import add_shadow_verbs  # noqa: PLC0415

    iot.register(verbs)
    add_shadow_verbs(verbs, _add_common, _load)
    add_iam_verbs(verbs, _add_common, _load)
    return parser


def _verb_parser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> _Parser | None:
    """The parser of the first verb named in ``argv``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, _Parser] = action.choices
            return next((choices[arg] for arg in argv if arg in choices), None)
    return None


def _resume_collector(verb: str) -> None:
    """Run the collector paused by the entry point again, unless ``verb`` is serve.

    Only serve's start-up is worth the pause; serve resumes it once the broker runs.
    """
    if verb != "serve":
        startup_gc.resume()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Exit codes and error text are the AWS CLI's (``aws_iot_mock.cli.output``).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(arguments[0] if arguments else None)
    verb_parser = _verb_parser(parser, arguments)
    try:
        if verb_parser is not None:
            arguments = expand_cli_input_json(verb_parser, arguments)
        args = parser.parse_args(arguments)
        _resume_collector(args.verb)
        operation = operation_name(args.verb, service=args.verb not in local.VERBS)
        options = OutputOptions.parse(
            getattr(args, "output", None), getattr(args, "query", None), operation
        )
    except (CliInputError, QueryError) as exc:
        sys.stderr.write(f"\n{exc}\n")
        return EXIT_USAGE
    try:
        # Every verb's parser carries its runner (set_defaults(run=...)): one registration.
        run: Callable[[argparse.Namespace], int] = args.run
        with using(options):
            return run(args)
    except (ConfigError, ListenerBindError, StateDirectoryInUseError) as exc:
        # A port that cannot be bound is the environment's problem, as a bad config is.
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except _ParamError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AwsApiError as exc:
        print_service_error(options.operation, exc.code, exc.message)
        return EXIT_SERVICE
    except BrokerError as exc:
        # Imported here: serve reads the registry before its package is loaded (server.app).
        from aws_iot_mock.registry.errors import aws_error_code  # noqa: PLC0415

        code = aws_error_code(exc)
        if code is None:
            print(f"aws-iot-mock: {exc}", file=sys.stderr)
        else:
            print_service_error(options.operation, code, str(exc).removeprefix(f"{code}: "))
        return EXIT_SERVICE
    except OSError as exc:
        # e.g. the port is in use: one line, no traceback.
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        # The shell's 128 + SIGINT, as the AWS CLI returns.
        sys.stdout.write("\n")
        return EXIT_SIGINT
    except Exception as exc:
        # The AWS CLI's catch-all: the error on stderr, 255; --debug shows where it came from.
        if getattr(args, "debug", False):
            traceback.print_exc()
        sys.stderr.write(f"\n{exc}\n")
        return EXIT_OTHER


def main_entry() -> None:
    """Console-script entry point."""
    with contextlib.suppress(BrokenPipeError):
        code = main()
        sys.stdout.flush()
        sys.exit(code)
    # stdout was closed early (e.g. piped into head): exit quietly, as the AWS CLI does.
    os._exit(0)
