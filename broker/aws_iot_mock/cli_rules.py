"""The ``aws iot`` topic-rule verbs: create, get, list, replace, delete, enable, disable.

Flags and output follow the AWS CLI (``aws iot create-topic-rule --rule-name NAME
--topic-rule-payload file://rule.json``): the operations that return nothing print nothing, the
others print the response as JSON with ISO 8601 timestamps; a refused request prints ``An error
occurred (<Name>) when calling the <Operation> operation: <message>`` and exits 254. Every verb
runs the service layer's operation (``aws_iot_mock.rules.topic_rules``) on the state directory's
rule store; a running broker on the same directory picks the change up within a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.config import Config
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.rules.topic_rules import RULES_OPERATIONS, TopicRuleService
from aws_iot_mock.state.topic_rules import TopicRuleStore

__all__ = ["add_rule_verbs", "rule_verbs"]

EXIT_USAGE = 252
EXIT_SERVICE = 254

# verb -> operation name, help text.
_VERBS: dict[str, tuple[str, str]] = {
    "create-topic-rule": ("CreateTopicRule", "create a topic rule (rules engine)"),
    "get-topic-rule": ("GetTopicRule", "show a topic rule"),
    "list-topic-rules": ("ListTopicRules", "list the topic rules"),
    "replace-topic-rule": ("ReplaceTopicRule", "replace a topic rule's definition"),
    "delete-topic-rule": ("DeleteTopicRule", "delete a topic rule"),
    "enable-topic-rule": ("EnableTopicRule", "enable a topic rule"),
    "disable-topic-rule": ("DisableTopicRule", "disable a topic rule"),
}


class _ParameterError(BrokerError):
    """A structure argument does not parse (the AWS CLI's "Error parsing parameter")."""


def add_rule_verbs(
    verbs: argparse._SubParsersAction[Any],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Register the topic-rule verbs; ``add_common`` adds --config/--certs-dir/--state-dir."""
    for verb, (_operation, help_text) in _VERBS.items():
        parser = verbs.add_parser(verb, help=help_text)
        add_common(parser)
        if verb == "list-topic-rules":
            parser.add_argument("--topic", help="only the rules whose FROM filter is this")
            parser.add_argument(
                "--rule-disabled",
                action=argparse.BooleanOptionalAction,
                default=None,
                help="only the disabled (or, with --no-rule-disabled, the enabled) rules",
            )
            continue
        parser.add_argument("--rule-name", required=True)
        if verb in ("create-topic-rule", "replace-topic-rule"):
            parser.add_argument(
                "--topic-rule-payload",
                required=True,
                help="the TopicRulePayload: JSON, or file://PATH",
            )
        if verb == "create-topic-rule":
            parser.add_argument("--tags", help='"key1=value1&key2=value2"')


def rule_verbs(
    load: Callable[[argparse.Namespace], Config],
) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Verb -> handler (exit code), with ``load`` turning the common flags into a Config."""

    def handler(verb: str) -> Callable[[argparse.Namespace], int]:
        def run(args: argparse.Namespace) -> int:
            return _run(verb, load(args), args)

        return run

    return {verb: handler(verb) for verb in _VERBS}


def _run(verb: str, config: Config, args: argparse.Namespace) -> int:
    operation = _VERBS[verb][0]
    try:
        request = _request(verb, args)
    except _ParameterError as exc:
        print(f"aws-iot-mock: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with TopicRuleStore.open(config.state_dir) as store:
        service = TopicRuleService(store, region=config.region, account_id=config.account_id)
        try:
            response = _all_pages(service, operation, request)
        except AwsApiError as exc:
            print(
                f"An error occurred ({exc.code}) when calling the {operation} operation: "
                f"{exc.message}",
                file=sys.stderr,
            )
            return EXIT_SERVICE
    if response:
        print(json.dumps(response, indent=4, default=_json_default))
    return 0


def _all_pages(service: TopicRuleService, operation: str, request: dict[str, Any]) -> Any:
    """The response; for ListTopicRules every page, as the AWS CLI paginates by itself."""
    handler = RULES_OPERATIONS[operation]
    response = handler(service, request)
    if operation != "ListTopicRules":
        return response
    rules = list(response["rules"])
    while "nextToken" in response:
        response = handler(service, {**request, "nextToken": response["nextToken"]})
        rules.extend(response["rules"])
    return {"rules": rules}


def _request(verb: str, args: argparse.Namespace) -> dict[str, Any]:
    if verb == "list-topic-rules":
        request: dict[str, Any] = {}
        if args.topic is not None:
            request["topic"] = args.topic
        if args.rule_disabled is not None:
            request["ruleDisabled"] = args.rule_disabled
        return request
    request = {"ruleName": args.rule_name}
    if verb in ("create-topic-rule", "replace-topic-rule"):
        request["topicRulePayload"] = _json_argument(
            "--topic-rule-payload", args.topic_rule_payload
        )
    if verb == "create-topic-rule" and args.tags is not None:
        request["tags"] = args.tags
    return request


def _json_argument(flag: str, value: str) -> Any:
    """A JSON structure argument: the JSON itself, or ``file://PATH``."""
    text = value
    if value.startswith("file://"):
        path = Path(value.removeprefix("file://"))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _ParameterError(
                f"Error parsing parameter '{flag}': cannot read {path}: {exc}"
            ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _ParameterError(
            f"Error parsing parameter '{flag}': Invalid JSON: {exc}\nJSON received: {text}"
        ) from None


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
