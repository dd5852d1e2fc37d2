"""The topic-rule operations of the ``iot`` control plane, as one service layer.

CreateTopicRule, GetTopicRule, ListTopicRules, ReplaceTopicRule, DeleteTopicRule,
EnableTopicRule and DisableTopicRule take their request members by the names of botocore's
``iot`` model (``ruleName``, ``topicRulePayload``, ``tags``, ``topic``, ``maxResults``,
``nextToken``, ``ruleDisabled``) and return the response members (``createdAt`` as a
timezone-aware ``datetime``), raising :class:`~aws_iot_mock.aws.api_errors.AwsApiError` with the
model's exception names. The CLI (``aws_iot_mock.cli_rules``) and the ``iot`` REST door call the
same methods; :data:`RULES_OPERATIONS` maps each operation name to its method.

Sources: the AWS IoT API reference (https://docs.aws.amazon.com/iot/latest/apireference/
API_CreateTopicRule.html and its siblings) and botocore's ``iot`` 2015-05-28 model (shapes
``TopicRulePayload``, ``TopicRule``, ``TopicRuleListItem``, ``Action``; ``RuleName`` pattern
``^[a-zA-Z0-9_]+$``, 1-128; ``ActionList`` 0-10; ``TopicRuleMaxResults`` 1-10000).

Choices where AWS's behaviour is not documented (see docs/rules-engine.md):

* A rule name that does not exist: ``UnauthorizedException`` "Access to topic rule 'NAME' was
  denied", which is what GetTopicRule answers on AWS (terraform-provider-aws's IoT topic rule
  resource works around exactly this answer); the other operations answer the same.
* Validation messages follow AWS's generic form ("1 validation error detected: Value ... at
  'ruleName' failed to satisfy constraint: ...").
* SQL that does not parse: ``SqlParseException`` with the parser's ``Line l:c: reason``.
* Actions that the engine does not emulate are accepted (AWS accepts them); they fail when they
  run, and the rule's errorAction runs.
* ``ListTopicRules``'s ``topic`` lists the rules whose FROM topic filter is exactly that string.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.api_pages import page
from aws_iot_mock.rules.sql import (
    DEFAULT_SQL_VERSION,
    SqlNotEmulatedError,
    SqlParseError,
    SqlVersion,
    Statement,
    parse,
)
from aws_iot_mock.state.topic_rules import StoredTopicRule, TopicRuleStore

__all__ = [
    "ACTION_REQUIRED_MEMBERS",
    "MAX_ACTIONS",
    "MAX_TOPIC_RULES",
    "RULES_OPERATIONS",
    "TopicRuleService",
    "compile_statement",
    "rule_arn",
]

Operation = Callable[[dict[str, Any]], dict[str, Any]]

# botocore iot model: RuleName.
_RULE_NAME = re.compile(r"[a-zA-Z0-9_]{1,128}")
# ActionList: "max": 10 ("A maximum of 10 actions can be defined per rule").
MAX_ACTIONS: Final = 10
# "Maximum number of rules per AWS account: 1000" (AWS IoT quotas, 2019 edition of
# https://docs.aws.amazon.com/general/latest/gr/iot-core.html; adjustable on AWS today). The
# store stays bounded; the error a full account gets is not documented (LimitExceededException,
# as the registry's quotas answer, is this emulator's choice).
MAX_TOPIC_RULES: Final = 1000
# ListTopicRules maxResults: TopicRuleMaxResults, 1..10000.
_LIST_LIMIT: Final = 10000
# The members of botocore's ``Action`` and the required members of each one's shape.
ACTION_REQUIRED_MEMBERS: Final[Mapping[str, tuple[str, ...]]] = {
    "dynamoDB": ("tableName", "roleArn", "hashKeyField", "hashKeyValue"),
    "dynamoDBv2": ("roleArn", "putItem"),
    "lambda": ("functionArn",),
    "sns": ("targetArn", "roleArn"),
    "sqs": ("roleArn", "queueUrl"),
    "kinesis": ("roleArn", "streamName"),
    "republish": ("roleArn", "topic"),
    "s3": ("roleArn", "bucketName", "key"),
    "firehose": ("roleArn", "deliveryStreamName"),
    "cloudwatchMetric": ("roleArn", "metricNamespace", "metricName", "metricValue", "metricUnit"),
    "cloudwatchAlarm": ("roleArn", "alarmName", "stateReason", "stateValue"),
    "cloudwatchLogs": ("roleArn", "logGroupName"),
    "elasticsearch": ("roleArn", "endpoint", "index", "type", "id"),
    "salesforce": ("token", "url"),
    "iotAnalytics": (),
    "iotEvents": ("inputName", "roleArn"),
    "iotSiteWise": ("putAssetPropertyValueEntries", "roleArn"),
    "stepFunctions": ("stateMachineName", "roleArn"),
    "timestream": ("roleArn", "databaseName", "tableName", "dimensions"),
    "http": ("url",),
    "kafka": ("destinationArn", "topic", "clientProperties"),
    "openSearch": ("roleArn", "endpoint", "index", "type", "id"),
    "location": ("roleArn", "trackerName", "deviceId", "latitude", "longitude"),
    "influxDB": ("destinationArn", "roleArn", "databaseName", "tableName"),
}
_PAYLOAD_MEMBERS: Final = frozenset(
    {"sql", "description", "actions", "ruleDisabled", "awsIotSqlVersion", "errorAction"}
)


def rule_arn(region: str, account_id: str, rule_name: str) -> str:
    """``arn:aws:iot:<region>:<account>:rule/<name>`` (lambda-rule-action.html's source ARN)."""
    return f"arn:aws:iot:{region}:{account_id}:rule/{rule_name}"


def compile_statement(payload: Mapping[str, Any]) -> Statement:
    """Parse a stored payload's SQL with its SQL version (the default: 2015-10-08).

    Raises:
        SqlParseError: the SQL does not parse.
        SqlNotEmulatedError: it calls a function the emulator does not provide.
    """
    version = payload.get("awsIotSqlVersion") or DEFAULT_SQL_VERSION
    return _parse(str(payload["sql"]), str(version))


@functools.lru_cache(maxsize=1024)
def _parse(sql: str, version: str) -> Statement:
    # Statements are immutable; the engine reloads every rule when any changes.
    return parse(sql, version)


def _invalid(message: str) -> AwsApiError:
    return AwsApiError("InvalidRequestException", message)


def _constraint(value: object, member: str, constraint: str) -> AwsApiError:
    # AWS's generic validation message (the form every AWS JSON service answers).
    return _invalid(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _rule_name(request: Mapping[str, Any]) -> str:
    name = request.get("ruleName")
    if not isinstance(name, str) or not name:
        raise _invalid("ruleName is required")
    if not _RULE_NAME.fullmatch(name):
        if len(name) > 128:
            raise _constraint(name, "ruleName", "Member must have length less than or equal to 128")
        raise _constraint(
            name, "ruleName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_]+$"
        )
    return name


def _check_action(action: object, where: str) -> None:
    if not isinstance(action, Mapping):
        raise _invalid(f'{where} must be an object with one action, e.g. {{"sqs": {{...}}}}')
    present = [name for name, value in action.items() if value is not None]
    unknown = [name for name in present if name not in ACTION_REQUIRED_MEMBERS]
    if unknown:
        raise _invalid(f"{where}: unknown action type {unknown[0]!r}")
    if len(present) != 1:
        raise _invalid(f"{where} must set exactly one action type, got {len(present)}")
    kind = present[0]
    parameters = action[kind]
    if not isinstance(parameters, Mapping):
        raise _invalid(f"{where}.{kind} must be an object")
    for member in ACTION_REQUIRED_MEMBERS[kind]:
        if parameters.get(member) is None:
            raise _invalid(f"{where}.{kind}.{member} is required")
    if kind == "republish" and parameters.get("qos", 0) not in (0, 1):
        raise _constraint(parameters.get("qos"), f"{where}.republish.qos", "Member must be 0 or 1")


def _checked_payload(request: Mapping[str, Any]) -> tuple[dict[str, Any], Statement]:
    """The request's TopicRulePayload, validated, and its parsed statement."""
    payload = request.get("topicRulePayload")
    if not isinstance(payload, Mapping):
        raise _invalid("topicRulePayload is required")
    unknown = sorted(set(payload) - _PAYLOAD_MEMBERS)
    if unknown:
        raise _invalid(f"topicRulePayload: unknown member {unknown[0]!r}")
    sql = payload.get("sql")
    if not isinstance(sql, str) or not sql:
        raise _invalid("topicRulePayload.sql is required")
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise _invalid("topicRulePayload.actions is required (a list, possibly empty)")
    if len(actions) > MAX_ACTIONS:
        raise _constraint(
            f"[{len(actions)} actions]",
            "topicRulePayload.actions",
            f"Member must have length less than or equal to {MAX_ACTIONS}",
        )
    for index, action in enumerate(actions):
        _check_action(action, f"topicRulePayload.actions[{index}]")
    if payload.get("errorAction") is not None:
        _check_action(payload["errorAction"], "topicRulePayload.errorAction")
    description = payload.get("description")
    if description is not None and not isinstance(description, str):
        raise _invalid("topicRulePayload.description must be a string")
    disabled = payload.get("ruleDisabled")
    if disabled is not None and not isinstance(disabled, bool):
        raise _invalid("topicRulePayload.ruleDisabled must be a boolean")
    version = payload.get("awsIotSqlVersion")
    if version is not None and version not in tuple(SqlVersion):
        raise _invalid(
            f"Invalid awsIotSqlVersion {version!r}; valid versions: "
            + ", ".join(v.value for v in SqlVersion)
        )
    clean = {key: value for key, value in payload.items() if value is not None}
    try:
        statement = compile_statement(clean)
    except SqlParseError as exc:
        raise AwsApiError("SqlParseException", exc.message) from None
    except SqlNotEmulatedError as exc:
        raise _invalid(str(exc)) from None
    return clean, statement


def _tags(text: object) -> tuple[tuple[str, str], ...]:
    """CreateTopicRule's ``tags``: "key1=value1&key2=value2" (URL query form)."""
    if text is None:
        return ()
    if not isinstance(text, str):
        raise _invalid('tags must be a string "key1=value1&key2=value2"')
    try:
        return tuple(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise _invalid(f'tags {text!r} is not of the form "key1=value1&key2=value2"') from None


@dataclass(frozen=True, slots=True)
class _Listed:
    stored: StoredTopicRule
    topic_pattern: str | None


class TopicRuleService:
    """The topic-rule operations over one store.

    Args:
        store: where rules live (shared with the running broker and the CLI).
        region: the region of rule ARNs.
        account_id: the account of rule ARNs.
        clock: the current time (timezone-aware), for ``createdAt``.
        on_change: called after every write (the broker reloads its rules at once; other
            processes see the change through the store's generation within a second).
    """

    def __init__(
        self,
        store: TopicRuleStore,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._region = region
        self._account_id = account_id
        self._clock = clock
        self._on_change = on_change

    def operations(self) -> dict[str, Operation]:
        """Operation name -> bound handler, for an operation table (``register(name, h)``)."""
        return {
            name: functools.partial(handler, self) for name, handler in RULES_OPERATIONS.items()
        }

    def _arn(self, rule_name: str) -> str:
        return rule_arn(self._region, self._account_id, rule_name)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _existing(self, rule_name: str) -> StoredTopicRule:
        stored = self._store.get(rule_name)
        if stored is None:
            raise AwsApiError(
                "UnauthorizedException", f"Access to topic rule '{rule_name}' was denied"
            )
        return stored

    # -- operations ------------------------------------------------------------------------

    def create_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateTopicRule: ``ruleName``, ``topicRulePayload``, ``tags``; no output members.

        Raises:
            AwsApiError: InvalidRequestException, SqlParseException,
                ResourceAlreadyExistsException, LimitExceededException (MAX_TOPIC_RULES).
        """
        name = _rule_name(request)
        payload, _statement = _checked_payload(request)
        tags = _tags(request.get("tags"))
        if len(self._store.all()) >= MAX_TOPIC_RULES and self._store.get(name) is None:
            raise AwsApiError(
                "LimitExceededException",
                f"The account has {MAX_TOPIC_RULES} topic rules, the most AWS IoT allows",
            )
        stored = StoredTopicRule(name, payload, self._clock(), tags)
        if not self._store.create(stored):
            raise AwsApiError(
                "ResourceAlreadyExistsException", f"Topic rule '{name}' already exists"
            )
        self._changed()
        return {}

    def get_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """GetTopicRule: ``{"ruleArn", "rule": TopicRule}``."""
        stored = self._existing(_rule_name(request))
        payload = stored.payload
        rule: dict[str, Any] = {"ruleName": stored.rule_name, "sql": payload["sql"]}
        if "description" in payload:
            rule["description"] = payload["description"]
        rule["createdAt"] = stored.created_at
        rule["actions"] = list(payload.get("actions", []))
        rule["ruleDisabled"] = stored.disabled
        rule["awsIotSqlVersion"] = payload.get("awsIotSqlVersion", DEFAULT_SQL_VERSION.value)
        if "errorAction" in payload:
            rule["errorAction"] = payload["errorAction"]
        return {"ruleArn": self._arn(stored.rule_name), "rule": rule}

    def list_topic_rules(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListTopicRules: ``topic``, ``maxResults``, ``nextToken``, ``ruleDisabled``."""
        topic = request.get("topic")
        disabled = request.get("ruleDisabled")
        listed: list[_Listed] = []
        for stored in self._store.all():
            pattern = _topic_pattern(stored)
            if topic is not None and pattern != topic:
                continue
            if disabled is not None and stored.disabled != bool(disabled):
                continue
            listed.append(_Listed(stored, pattern))
        items, token = page(
            listed, request.get("maxResults"), request.get("nextToken"), limit=_LIST_LIMIT
        )
        rules = []
        for item in items:
            entry: dict[str, Any] = {
                "ruleArn": self._arn(item.stored.rule_name),
                "ruleName": item.stored.rule_name,
            }
            if item.topic_pattern is not None:
                entry["topicPattern"] = item.topic_pattern
            entry["createdAt"] = item.stored.created_at
            entry["ruleDisabled"] = item.stored.disabled
            rules.append(entry)
        response: dict[str, Any] = {"rules": rules}
        if token is not None:
            response["nextToken"] = token
        return response

    def replace_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """ReplaceTopicRule: ``ruleName``, ``topicRulePayload``; no output members."""
        name = _rule_name(request)
        self._existing(name)
        payload, _statement = _checked_payload(request)
        if not self._store.replace_payload(name, payload):
            raise AwsApiError("UnauthorizedException", f"Access to topic rule '{name}' was denied")
        self._changed()
        return {}

    def delete_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteTopicRule: ``ruleName``; no output members."""
        name = _rule_name(request)
        if not self._store.delete(name):
            raise AwsApiError("UnauthorizedException", f"Access to topic rule '{name}' was denied")
        self._changed()
        return {}

    def enable_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """EnableTopicRule: ``ruleName``; no output members."""
        return self._set_disabled(request, disabled=False)

    def disable_topic_rule(self, request: dict[str, Any]) -> dict[str, Any]:
        """DisableTopicRule: ``ruleName``; no output members."""
        return self._set_disabled(request, disabled=True)

    def _set_disabled(self, request: dict[str, Any], *, disabled: bool) -> dict[str, Any]:
        name = _rule_name(request)
        stored = self._existing(name)
        if stored.disabled != disabled:
            payload = {**stored.payload, "ruleDisabled": disabled}
            if not self._store.replace_payload(name, payload):
                raise AwsApiError(
                    "UnauthorizedException", f"Access to topic rule '{name}' was denied"
                )
            self._changed()
        return {}


def _topic_pattern(stored: StoredTopicRule) -> str | None:
    """The FROM topic filter of a stored rule (None without FROM, or if it no longer parses)."""
    try:
        return compile_statement(stored.payload).topic_filter
    except (SqlParseError, SqlNotEmulatedError):
        return None


# botocore operation name -> its handler (a TopicRuleService method: service, request -> response).
RULES_OPERATIONS: Final[
    Mapping[str, Callable[[TopicRuleService, dict[str, Any]], dict[str, Any]]]
] = {
    "CreateTopicRule": TopicRuleService.create_topic_rule,
    "GetTopicRule": TopicRuleService.get_topic_rule,
    "ListTopicRules": TopicRuleService.list_topic_rules,
    "ReplaceTopicRule": TopicRuleService.replace_topic_rule,
    "DeleteTopicRule": TopicRuleService.delete_topic_rule,
    "EnableTopicRule": TopicRuleService.enable_topic_rule,
    "DisableTopicRule": TopicRuleService.disable_topic_rule,
}
