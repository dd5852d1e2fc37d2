"""The rules engine's logic: which rules a message triggers, and what running one produces.

No threads, no event loop, no clock: :func:`route` runs on the publish path (a trie lookup, as
the router's), :func:`execute` in a worker with an injected :class:`ActionRunner`, and
:func:`complete_republish` back where messages are published. The shell that queues, runs and
publishes is :mod:`aws_iot_mock.rules.runtime`.

AWS's rules, with sources (AWS IoT developer guide,
https://docs.aws.amazon.com/iot/latest/developerguide/):

* A rule is triggered by every message whose topic matches its FROM topic filter, whoever
  published it (devices, the broker's services, other rules' republish actions) - iot-rules.html.
* Basic Ingest: a message on ``$aws/rules/<rule>/<topic>`` goes to that rule only, never to a
  subscriber, and "the initial prefix of a Basic Ingest topic (``$aws/rules/rule_name``) isn't
  available to the topic(Decimal) function" - iot-basic-ingest.html. The FROM filter, when the
  rule has one, is matched against ``<topic>`` (configurable).
* A disabled rule is not triggered (``ruleDisabled``, API_TopicRulePayload).
* The actions receive the SQL result; "If a problem occurs when triggering an action, the rules
  engine triggers an error action", with one message per rule and message holding every
  failure - rule-error-handling.html. SQL problems do not trigger it.
* Log entries: ``RuleMatch`` (INFO), ``StartingRuleExecution`` (DEBUG), ``RuleExecution`` (INFO,
  ERROR on failure with ``details``), ``RuleNotFound`` (ERROR, ``reason: RuleNotFound``,
  ``details: "Rule <name> not found"``), ``RuleMessageThrottled`` (ERROR,
  ``reason: RuleExecutionThrottled``) - cwl-format.html, "Rules engine log entries", and
  diagnosing-rules.html (a ``RuleExecution`` failure example).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aws_iot_mock.logs.cloudwatch import EventType, LogLevel, Reason, rule_record
from aws_iot_mock.mqtt.topics import SubscriptionIndex, is_event_topic
from aws_iot_mock.rules.actions import (
    ActionFailure,
    ActionInput,
    ActionRunner,
    RepublishRequest,
    action_type,
)
from aws_iot_mock.rules.error_action import error_action_document, failed_action_name
from aws_iot_mock.rules.sql import EvaluationContext, SqlResult, Statement
from aws_iot_mock.rules.sql_values import parse_json_document

__all__ = [
    "BASIC_INGEST_PREFIX",
    "CompiledRule",
    "Execution",
    "LogSettings",
    "Route",
    "RuleJob",
    "RuleSet",
    "complete_republish",
    "error_job",
    "execute",
    "route",
]

# "$aws/rules/<rule_name>/..." (iot-basic-ingest.html).
BASIC_INGEST_PREFIX: Final = "$aws/rules/"


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A stored topic rule, ready to run.

    Attributes:
        name: the rule's name.
        statement: its parsed SQL.
        actions: its ``actions`` (botocore ``Action`` objects).
        error_action: its ``errorAction``, or None.
        disabled: ``ruleDisabled``.
    """

    name: str
    statement: Statement
    actions: tuple[Mapping[str, Any], ...]
    error_action: Mapping[str, Any] | None = None
    disabled: bool = False


class RuleSet:
    """Every rule, with the enabled ones indexed by FROM topic filter.

    Not thread-safe: built and matched on the event loop; a new set replaces the old on reload.
    """

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self._by_name: dict[str, CompiledRule] = {}
        self._index: SubscriptionIndex[CompiledRule] = SubscriptionIndex()
        # (topic, basic_ingest_checks_from) -> what ``route`` answered: every routed message asks,
        # and the answer only changes with the rules (a new set replaces this one). Bounded.
        self.routes: dict[tuple[str, bool], Route] = {}
        for rule in rules:
            self._by_name[rule.name] = rule
            topic_filter = rule.statement.topic_filter
            if not rule.disabled and topic_filter is not None:
                self._index.add(rule.name, topic_filter, rule)
        # Whether any enabled rule has a FROM filter (else only Basic Ingest triggers rules).
        self.reads_topics = bool(len(self._index))
        # The last topic ``route`` found no rule for (compared by identity: a run of messages
        # shares one topic string), for the observer's fast way out.
        self.quiet_topic: str | None = None

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> frozenset[str]:
        """The names of every rule, enabled or not."""
        return frozenset(self._by_name)

    def get(self, name: str) -> CompiledRule | None:
        """The rule named ``name`` (enabled or not), or None."""
        return self._by_name.get(name)

    def matching(self, topic: str) -> list[CompiledRule]:
        """The enabled rules whose FROM filter matches ``topic`` (each once)."""
        if not len(self._index):
            return []
        return [rule for _name, _filter, rule in self._index.match(topic).direct]


@dataclass(frozen=True, slots=True)
class Route:
    """What one routed message triggers.

    Attributes:
        rules: ``(rule, topic)`` pairs; the topic is what the rule's SQL sees (a Basic Ingest
            topic without its ``$aws/rules/<rule>/`` prefix).
        not_found: for a Basic Ingest message to a rule that does not exist or is disabled, why
            (the ``RuleNotFound`` entry's ``details``); else None.
        rule_name: the rule a Basic Ingest message names, else None.
    """

    rules: tuple[tuple[CompiledRule, str], ...] = ()
    not_found: str | None = None
    rule_name: str | None = None


_NOTHING: Final = Route()


def route(rule_set: RuleSet, topic: str, *, basic_ingest_checks_from: bool = True) -> Route:
    """The rules a message on ``topic`` triggers (on the publish path: cheap).

    Args:
        rule_set: the current rules.
        topic: the topic the message was published to.
        basic_ingest_checks_from: a Basic Ingest message also needs the rule's FROM filter (if
            any) to match the topic after the prefix.
    """
    key = (topic, basic_ingest_checks_from)
    routes = rule_set.routes
    found = routes.get(key)
    if found is None:
        found = _route(rule_set, topic, basic_ingest_checks_from)
        if found is _NOTHING and is_event_topic(topic):
            # Not remembered: a lifecycle event's topic is one per client ID (is_event_topic).
            return found
        if len(routes) >= _ROUTES_CACHED:
            routes.clear()
        routes[key] = found
    return found


# Topics whose route a RuleSet remembers.
_ROUTES_CACHED: Final = 4096


def _route(rule_set: RuleSet, topic: str, basic_ingest_checks_from: bool) -> Route:
    if not topic.startswith(BASIC_INGEST_PREFIX):
        matching = rule_set.matching(topic)
        if not matching:
            return _NOTHING
        return Route(tuple((rule, topic) for rule in matching))
    rest = topic[len(BASIC_INGEST_PREFIX) :]
    name, _, sql_topic = rest.partition("/")
    rule = rule_set.get(name)
    if rule is None:
        return Route(not_found=f"Rule {name} not found", rule_name=name)
    if rule.disabled:
        return Route(not_found=f"Rule {name} is disabled", rule_name=name)
    checked = basic_ingest_checks_from and rule.statement.topic_filter is not None
    if checked and not (sql_topic and rule.statement.matches_topic(sql_topic)):
        return Route(rule_name=name)
    return Route(((rule, sql_topic),), rule_name=name)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Which rules-engine records to build, and the account they name.

    Attributes:
        account_id: the account of every record.
        info: build INFO records (``RuleMatch``, ``RuleExecution`` successes).
        debug: build DEBUG records (``StartingRuleExecution``).
    """

    account_id: str
    info: bool = True
    debug: bool = False


@dataclass(frozen=True, slots=True)
class RuleJob:
    """One rule to run for one message (or one errorAction to perform).

    Attributes:
        rule: the rule, as it was when the message arrived.
        topic: the topic the message was published to (log entries, the errorAction
            document's ``topic``).
        sql_topic: the topic the SQL and the templates see (``topic()``).
        payload: the message payload.
        context: client ID, principal, trace ID, timestamp... of the message.
        depth: how many republish actions in a row produced this message (0: from a client).
        error_document: for an errorAction job, the document it is performed with.
    """

    rule: CompiledRule
    topic: str
    sql_topic: str
    payload: bytes
    context: EvaluationContext
    depth: int = 0
    error_document: Mapping[str, object] | None = None


@dataclass(slots=True)
class Execution:
    """What running one job produced, for the publishing side.

    Attributes:
        records: log records, in order.
        republishes: messages the republish actions ask for, not yet published.
        failures: the actions that failed so far (republish refusals are added when the
            republishes are published).
    """

    records: list[dict[str, object]] = field(default_factory=list)
    republishes: list[RepublishRequest] = field(default_factory=list)
    failures: list[ActionFailure] = field(default_factory=list)


def _record(job: RuleJob, event: EventType, logs: LogSettings, **fields: Any) -> dict[str, object]:
    return rule_record(
        event,
        account_id=logs.account_id,
        trace_id=job.context.trace_id or "",
        client_id=job.context.client_id,
        topic_name=job.topic,
        rule_name=job.rule.name,
        principal_id=job.context.principal,
        **fields,
    )


def execute(job: RuleJob, runner: ActionRunner, logs: LogSettings) -> Execution:
    """Evaluate the rule's SQL and perform its actions (or perform its errorAction).

    Runs in a worker: the actions block on the network. Republish actions are not published
    here: their messages are returned, for :func:`complete_republish` where publishing happens.
    """
    execution = Execution()
    if job.error_document is not None:
        _perform_error_action(job, runner, logs, execution)
        return execution
    rule = job.rule
    result = rule.statement.evaluate(job.payload, job.sql_topic, job.context)
    if result is None:
        return execution  # WHERE is not true
    if logs.info:
        execution.records.append(_record(job, EventType.RULE_MATCH, logs))
    given = ActionInput(
        rule.name, rule.statement.version, result, job.payload, job.sql_topic, job.context
    )
    for action in rule.actions:
        _perform(job, runner, logs, action, given, execution)
    return execution


def _perform(  # noqa: PLR0917 - private; the parts of one action run
    job: RuleJob,
    runner: ActionRunner,
    logs: LogSettings,
    action: Mapping[str, Any],
    given: ActionInput,
    execution: Execution,
) -> None:
    kind = action_type(action) or "unknown"
    rule_action = failed_action_name(kind)
    if logs.debug:
        execution.records.append(
            _record(
                job,
                EventType.STARTING_RULE_EXECUTION,
                logs,
                rule_action=rule_action,
                level=LogLevel.DEBUG,
            )
        )
    outcome = runner.run(action, given)
    if isinstance(outcome, ActionFailure):
        execution.failures.append(outcome)
        execution.records.append(
            _record(
                job,
                EventType.RULE_EXECUTION,
                logs,
                rule_action=rule_action,
                failure=(Reason.RuleActionFailed, outcome.error_message),
            )
        )
    elif outcome.republish is not None:
        execution.republishes.append(outcome.republish)
    elif logs.info:
        execution.records.append(
            _record(
                job,
                EventType.RULE_EXECUTION,
                logs,
                rule_action=rule_action,
                resources=outcome.resources,
            )
        )


def _perform_error_action(
    job: RuleJob, runner: ActionRunner, logs: LogSettings, execution: Execution
) -> None:
    """The errorAction, with the error document as the message (rule-error-handling.html)."""
    action = job.rule.error_action
    if action is None or job.error_document is None:
        return
    # The document is the message: the action delivers it, its templates read it.
    document = parse_json_document(job.payload, whole_as_int=True)
    given = ActionInput(
        job.rule.name,
        job.rule.statement.version,
        SqlResult(document),
        job.payload,
        job.sql_topic,
        job.context,
    )
    _perform(job, runner, logs, action, given, execution)


def complete_republish(
    job: RuleJob,
    request: RepublishRequest,
    refusal: tuple[Reason, str] | None,
    logs: LogSettings,
    execution: Execution,
) -> None:
    """Record how a republish went, once the broker's ingress has taken or refused it.

    A refused republish (a reserved topic, a payload over 128 KiB, a non-UTF-8 payload with
    ``UTF8_DATA``) is an action failure, as AWS reports a republish to a topic it refuses.
    """
    if refusal is None:
        if logs.info:
            execution.records.append(
                _record(
                    job,
                    EventType.RULE_EXECUTION,
                    logs,
                    rule_action="RepublishAction",
                    resources={"RepublishTopic": request.topic},
                )
            )
        return
    reason, details = refusal
    message = (
        f"Failed to republish to topic {request.topic}. The error received was {details}. "
        f"Message arrived on: {job.sql_topic}, Action: republish, Topic: {request.topic}"
    )
    execution.failures.append(ActionFailure("republish", request.topic, message))
    execution.records.append(
        _record(
            job,
            EventType.RULE_EXECUTION,
            logs,
            rule_action="RepublishAction",
            resources={"RepublishTopic": request.topic},
            failure=(reason, message),
        )
    )


def error_job(job: RuleJob, failures: list[ActionFailure]) -> RuleJob | None:
    """The errorAction job for a message whose actions failed, or None.

    None when the rule has no errorAction, or when ``job`` is itself an errorAction (its
    failures are only logged).
    """
    if not failures or job.rule.error_action is None or job.error_document is not None:
        return None
    document = error_action_document(
        rule_name=job.rule.name,
        topic=job.topic,
        trace_id=job.context.trace_id or "",
        client_id=job.context.client_id,
        payload=job.payload,
        failures=failures,
    )
    return RuleJob(
        rule=job.rule,
        topic=job.topic,
        sql_topic=job.sql_topic,
        payload=json.dumps(document, separators=(",", ":")).encode(),
        context=job.context,
        depth=job.depth,
        error_document=document,
    )
