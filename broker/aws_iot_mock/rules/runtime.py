"""The rules engine as a built-in service of the broker: queues, worker threads, publishing.

It sees every message the broker routes, and every Basic Ingest message (which reaches no
subscriber), as an observer of the device core's router. On the event loop it only looks up the
rules a message triggers (a trie walk) and appends a job to each rule's queue; the SQL and the
actions run in a thread pool, so a slow action (an HTTP endpoint that stalls) never delays
message delivery. Each rule's queue holds at most ``rules.queue_max`` jobs; past that, messages
for the rule are dropped, counted and logged (``RuleMessageThrottled`` with reason
``RuleExecutionThrottled``, once when drops start and once with the count when the queue has
drained). One worker at a time drains a rule's queue, in order; different rules run in
parallel, up to ``rules.workers``.

Results go back to the event loop in batches: there the log records are written and the
republish actions' messages are published through the device core's one ingress
(``DeviceCore.publish``) as a trusted publisher, so AWS's reserved-topic and topic rules apply to
them as to any client's publish (a refused republish is an action failure). A message whose
actions failed gets one errorAction job on the same queue (rule-error-handling.html).

Rules are read from the topic rule store at start, at once after an in-process change, and when
the store's generation moves (checked every second by ``poll``: the CLI in another process).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from aws_iot_mock.config import RulesConfig
from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.ingress import Publisher, PublishRequest
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, EventType, LogLevel, Reason, rule_record
from aws_iot_mock.mqtt.codec import EMPTY_PROPERTIES, Properties
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.rules.actions import ActionRunner, ActionsConfig, RepublishRequest
from aws_iot_mock.rules.engine import (
    CompiledRule,
    Execution,
    LogSettings,
    RuleJob,
    RuleSet,
    complete_republish,
    error_job,
    execute,
    route,
)
from aws_iot_mock.rules.sql import EvaluationContext, SqlNotEmulatedError, SqlParseError
from aws_iot_mock.rules.topic_rules import compile_statement
from aws_iot_mock.state.topic_rules import StoredTopicRule, TopicRuleStore

__all__ = ["RulesEngine", "actions_config"]

logger = logging.getLogger("aws_iot_mock.rules")

# Jobs one worker runs for a rule before giving other rules' queues a turn.
_DRAIN_BATCH: Final = 64
# Results handed to the event loop in one call (fewer wake-ups under load).
_COMPLETION_BATCH: Final = 32
Emit = Callable[[Mapping[str, object]], None]


def actions_config(rules: RulesConfig, region: str) -> ActionsConfig:
    """The action runner's settings from the ``rules:`` configuration."""
    context = None
    if rules.http_ca_file is not None:
        context = ssl.create_default_context(cafile=str(rules.http_ca_file))
    return ActionsConfig(
        aws_endpoint_url=rules.aws_endpoint_url,
        aws_region=rules.aws_region or region,
        aws_access_key_id=rules.aws_access_key_id,
        aws_secret_access_key=rules.aws_secret_access_key,
        lambda_endpoint_url=rules.lambda_endpoint_url,
        lambda_commands=rules.lambda_commands,
        http_confirmed_destinations=rules.http_confirmed_destinations,
        http_allow_loopback=rules.http_allow_loopback,
        http_ssl_context=context,
        timeout_s=rules.action_timeout,
    )


@dataclass(slots=True)
class _RuleQueue:
    """One rule's pending jobs. ``lock`` guards every field (the loop appends, a worker pops)."""

    jobs: deque[RuleJob] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A worker is draining it, or a drain is submitted.
    scheduled: bool = False
    # Jobs dropped in the current episode (see the module docstring), and the topic of the
    # first one (for the episode's closing log entry).
    dropped: int = 0
    drop_topic: str = ""


class RulesEngine:
    """Runs the topic rules of one broker.

    Args:
        core: the device core (its router's observers, its ingress, its live connections).
        store: the topic rule store.
        config: the ``rules:`` configuration.
        account_id: the account in log records and ``accountid()``.
        region: the region of AWS action clients when ``rules.aws_region`` is null.
        emit: writes a log record (called on the event loop only).
        log_level: the broker's log level (INFO and DEBUG records are not built below them).
        runner: performs actions (default: one built from ``config``).
        clock: epoch seconds (``timestamp()`` of messages the router did not stamp).
    """

    def __init__(
        self,
        core: DeviceCore,
        store: TopicRuleStore,
        config: RulesConfig,
        *,
        account_id: str,
        region: str,
        emit: Emit,
        log_level: LogLevel = LogLevel.INFO,
        runner: ActionRunner | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._core = core
        self._store = store
        self._config = config
        self._account_id = account_id
        self._emit = emit
        self._logs = LogSettings(
            account_id, info=log_level >= LogLevel.INFO, debug=log_level >= LogLevel.DEBUG
        )
        self._runner = runner or ActionRunner(actions_config(config, region))
        self._clock = clock
        self._rules = RuleSet()
        self._generation: int | None = None
        self._queues: dict[str, _RuleQueue] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        # The republish depth of the message being published right now (the ingress routes
        # synchronously, so the observer sees it), 0 for every other message.
        self._publishing_depth = 0
        # The rules engine publishes as a trusted service: AWS's republish action acts with
        # the rule's role, which this emulator does not check (roleArn is never evaluated).
        self._publisher = Publisher(
            ConnectionFacts(account_id, source_ip="", source_port=0), permissions=None
        )
        # Called after each reload (tests wait on it; so could a status page).
        self.reload_listeners: list[Callable[[], None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load the rules and start observing the broker's messages (on ``loop``)."""
        self._loop = loop
        self._executor = ThreadPoolExecutor(
            max_workers=self._config.workers, thread_name_prefix="aws-iot-mock-rules"
        )
        self.reload()
        self._core.router.observers.append(self.observe)

    def stop(self) -> None:
        """Stop taking messages; pending jobs are dropped, running actions end on their own.

        Worker threads are not joined: an action runs at most ``rules.action_timeout``.
        """
        self._stopped = True
        if self.observe in self._core.router.observers:
            self._core.router.observers.remove(self.observe)
        for queue in self._queues.values():
            with queue.lock:
                queue.jobs.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @property
    def rules(self) -> RuleSet:
        """The rules in force."""
        return self._rules

    def poll(self) -> None:
        """Reload the rules if the store changed (another process wrote it). Once a second."""
        if self._store.generation() != self._generation:
            self.reload()

    def reload(self) -> None:
        """Read every rule from the store and use them for the next message."""
        self._generation = self._store.generation()
        self._rules = RuleSet(self._compiled(self._store.all()))
        for name in list(self._queues):
            queue = self._queues[name]
            if name not in self._rules.names and not queue.scheduled and not queue.jobs:
                del self._queues[name]
        for listener in list(self.reload_listeners):
            listener()

    @staticmethod
    def _compiled(stored_rules: Iterable[StoredTopicRule]) -> Iterable[CompiledRule]:
        for stored in stored_rules:
            payload = stored.payload
            try:
                statement = compile_statement(payload)
            except (SqlParseError, SqlNotEmulatedError) as exc:
                # Stored by an older or newer version with another SQL dialect: skip it, loudly.
                logger.warning("topic rule %s is not loaded: %s", stored.rule_name, exc)
                continue
            yield CompiledRule(
                name=stored.rule_name,
                statement=statement,
                actions=tuple(payload.get("actions", ())),
                error_action=payload.get("errorAction"),
                disabled=stored.disabled,
            )

    # -- the publish path (event loop) -----------------------------------------------------

    def observe(self, message: Message) -> None:
        """A routed (or Basic Ingest) message: queue a job for each rule it triggers."""
        topic = message.topic
        rules = self._rules
        if topic is rules.quiet_topic:
            return  # the last message's topic (a device's run of messages), which no rule reads
        if not rules.reads_topics and not topic.startswith("$"):
            return  # no rule reads topics (route() would say so, at a cost on every message)
        checks_from = self._config.basic_ingest_checks_from
        # route()'s memory, read here first: every routed message asks.
        found = rules.routes.get((topic, checks_from))
        if found is None:
            found = route(rules, topic, basic_ingest_checks_from=checks_from)
        if not found.rules and found.not_found is None:
            rules.quiet_topic = topic
            return
        context = self._context(message)
        if found.not_found is not None:
            self._emit(
                rule_record(
                    EventType.RULE_NOT_FOUND,
                    account_id=self._account_id,
                    trace_id=context.trace_id or "",
                    client_id=context.client_id,
                    topic_name=message.topic,
                    rule_name=found.rule_name or "",
                    principal_id=context.principal,
                    failure=(Reason.RuleNotFound, found.not_found),
                )
            )
            return
        depth = self._publishing_depth
        if depth > self._config.republish_max_depth:
            for rule, _topic in found.rules:
                self._emit(
                    self._record(
                        rule.name,
                        message.topic,
                        context,
                        EventType.RULE_EXECUTION,
                        (
                            Reason.RuleRepublishLoop,
                            f"The message was republished by rules {depth - 1} times in a row "
                            f"(rules.republish_max_depth is {self._config.republish_max_depth}); "
                            "rules do not evaluate it again",
                        ),
                    )
                )
            return
        for rule, sql_topic in found.rules:
            self._enqueue(
                RuleJob(rule, message.topic, sql_topic, message.payload, context, depth=depth)
            )

    def _context(self, message: Message) -> EvaluationContext:
        """What the SQL functions know about ``message`` (clientid(), principal()...)."""
        principal = source_ip = None
        if message.sender is not None:
            connection = self._core.connection_for(message.sender)
            if connection is not None:
                principal = connection.principal.principal_id
                source_ip = connection.facts.source_ip
        received = message.published_at or self._clock()
        return EvaluationContext(
            timestamp_ms=int(received * 1000),
            client_id=message.sender,
            principal=principal,
            trace_id=str(uuid.uuid4()),
            account_id=self._account_id,
            source_ip=source_ip,
        )

    def _record(
        self,
        rule_name: str,
        topic: str,
        context: EvaluationContext,
        event: EventType,
        failure: tuple[Reason, str],
    ) -> dict[str, object]:
        return rule_record(
            event,
            account_id=self._account_id,
            trace_id=context.trace_id or "",
            client_id=context.client_id,
            topic_name=topic,
            rule_name=rule_name,
            principal_id=context.principal,
            failure=failure,
        )

    def _enqueue(self, job: RuleJob) -> None:
        executor = self._executor
        if self._stopped or executor is None:
            return
        queue = self._queues.get(job.rule.name)
        if queue is None:
            queue = self._queues[job.rule.name] = _RuleQueue()
        with queue.lock:
            if len(queue.jobs) >= self._config.queue_max:
                queue.dropped += 1
                first_drop, submit = queue.dropped == 1, False
                if first_drop:
                    queue.drop_topic = job.topic
            else:
                queue.jobs.append(job)
                first_drop, submit = False, not queue.scheduled
                queue.scheduled = True
        if submit:
            executor.submit(self._drain, job.rule.name, queue)
        elif first_drop:
            self._emit(
                self._record(
                    job.rule.name,
                    job.topic,
                    job.context,
                    EventType.RULE_MESSAGE_THROTTLED,
                    (
                        Reason.RuleExecutionThrottled,
                        f"Message for Rule {job.rule.name} throttled: its queue holds "
                        f"{self._config.queue_max} messages (rules.queue_max); messages for it "
                        "are dropped until it has drained",
                    ),
                )
            )

    # -- workers ---------------------------------------------------------------------------

    def _drain(self, rule_name: str, queue: _RuleQueue) -> None:
        """Run a rule's jobs in order (a worker thread), handing results to the loop."""
        done: list[tuple[RuleJob, Execution]] = []
        for _turn in range(_DRAIN_BATCH):
            with queue.lock:
                job = queue.jobs.popleft() if queue.jobs and not self._stopped else None
            if job is None:
                break
            try:
                execution = execute(job, self._runner, self._logs)
            except Exception:  # a bug must not stop the rule's queue
                logger.exception("topic rule %s failed on a message on %s", rule_name, job.topic)
                continue
            done.append((job, execution))
            if len(done) >= _COMPLETION_BATCH:
                self._to_loop(self._complete, done)
                done = []
        if done:
            self._to_loop(self._complete, done)
        dropped, topic = 0, ""
        with queue.lock:
            if queue.jobs and not self._stopped:
                again = True  # give other rules a turn, then carry on
            else:
                again = False
                queue.scheduled = False
                dropped, queue.dropped, topic = queue.dropped, 0, queue.drop_topic
        if dropped:
            self._to_loop(self._drops_ended, rule_name, topic, dropped)
        executor = self._executor
        if again and executor is not None:
            try:
                executor.submit(self._drain, rule_name, queue)
            except RuntimeError:  # shut down meanwhile
                return

    def _to_loop(self, callback: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is None or self._stopped:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the broker stopped
            return

    # -- results (event loop) --------------------------------------------------------------

    def _complete(self, done: list[tuple[RuleJob, Execution]]) -> None:
        """Write the records, publish the republish messages, queue the errorActions."""
        if self._stopped:
            return
        for job, execution in done:
            # Cause before effect: the rule's entries, then the republished messages' own.
            for record in execution.records:
                self._emit(record)
            execution.records.clear()
            for request in execution.republishes:
                refusal = self._republish(job, request)
                complete_republish(job, request, refusal, self._logs, execution)
            for record in execution.records:
                self._emit(record)
            follow_up = error_job(job, execution.failures)
            if follow_up is not None:
                self._enqueue(follow_up)

    def _republish(self, job: RuleJob, request: RepublishRequest) -> tuple[Reason, str] | None:
        """Publish a republish action's message through the ingress; the refusal, if any."""
        properties = EMPTY_PROPERTIES
        if (
            request.content_type is not None
            or request.response_topic is not None
            or request.correlation_data is not None
            or request.message_expiry_interval is not None
            or request.payload_format_utf8 is not None
            or request.user_properties
        ):
            properties = Properties(
                payload_format_indicator=(
                    None
                    if request.payload_format_utf8 is None
                    else int(request.payload_format_utf8)
                ),
                message_expiry_interval=request.message_expiry_interval,
                content_type=request.content_type,
                response_topic=request.response_topic,
                correlation_data=request.correlation_data,
                user_properties=request.user_properties,
            )
        publish = PublishRequest(
            topic=request.topic,
            payload=request.payload,
            qos=request.qos,
            properties=properties,
            trace_id=job.context.trace_id,
        )
        self._publishing_depth = job.depth + 1
        try:
            refusal = self._core.publish(self._publisher, publish)
        finally:
            self._publishing_depth = 0
        return None if refusal is None else (refusal.reason, refusal.details)

    def _drops_ended(self, rule_name: str, topic: str, count: int) -> None:
        context = EvaluationContext(trace_id=str(uuid.uuid4()))
        self._emit(
            self._record(
                rule_name,
                topic,
                context,
                EventType.RULE_MESSAGE_THROTTLED,
                (
                    Reason.RuleExecutionThrottled,
                    f"{count} message(s) for Rule {rule_name} were dropped while its queue was "
                    "full; it has drained",
                ),
            )
        )
