"""The AWS IoT Jobs device API: MQTT request topics, HTTPS ``iot-jobs-data``, timers. Pure.

Both device APIs share one implementation per operation (`get_pending_job_executions`,
`start_next_pending_job_execution`, `describe_job_execution`, `update_job_execution`); the MQTT
front end (`handle_mqtt_request`) and the HTTPS one (`handle_https_request`) only parse requests
and format replies. `due_timeouts` applies the in-progress and step timers.

Sources:

- [MQTT] "Jobs device MQTT API",
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html
- [ERR] "AWS IoT jobs APIs" (ErrorResponse and its codes),
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-api.html
- [TYPES] "Jobs device MQTT and HTTPS APIs and data types",
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-https-api.html
- [CONF] "Job configurations" (timers),
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-configurations-details.html
- [HTTPS] the iot-jobs-data API reference, e.g.
  https://docs.aws.amazon.com/iot/latest/apireference/API_iot-jobs-data_UpdateJobExecution.html,
  and botocore's ``iot-jobs-data`` model (paths, shapes, exceptions and their statuses).
- The AWS IoT Device SDK v2's ``awsiot/iotjobs.py``: the JSON names its clients send and parse.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final
from urllib.parse import unquote

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.jobs.effects import Notification, Outcome, settle
from aws_iot_mock.aws.jobs.model import (
    DEVICE_SETTABLE,
    JOB_ID_PATTERN,
    STEP_TIMEOUT_MAX_MINUTES,
    THING_NAME_PATTERN,
    Changes,
    ExecutionStatus,
    JobExecution,
    JobsBehaviour,
    JobsState,
    check_status_details,
    execution_summary,
    job_document_object,
    seconds,
)

__all__ = [
    "CLIENT_TOKEN_MAX",
    "NEXT",
    "DeviceOutcome",
    "DeviceReply",
    "HttpsOutcome",
    "JobsRequestError",
    "JobsTopic",
    "RejectedCode",
    "UpdateRequest",
    "describe_job_execution",
    "due_timeouts",
    "execution_state",
    "get_pending_job_executions",
    "handle_https_request",
    "handle_mqtt_request",
    "https_error",
    "next_timeout",
    "parse_request_topic",
    "rejected_payload",
    "start_next_pending_job_execution",
    "update_job_execution",
]

NEXT: Final = "$next"
# The Jobs pages give no limit; the Device Shadow service's "can be no longer than 64 bytes"
# (device-shadow-document.html) is used so that an echoed token stays bounded. UNCONFIRMED.
CLIENT_TOKEN_MAX: Final = 64


class RejectedCode(enum.StrEnum):
    """The ``code`` of a Jobs ``/rejected`` ErrorResponse [ERR]."""

    INVALID_TOPIC = "InvalidTopic"
    INVALID_JSON = "InvalidJson"
    INVALID_REQUEST = "InvalidRequest"
    INVALID_STATE_TRANSITION = "InvalidStateTransition"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    VERSION_MISMATCH = "VersionMismatch"
    INTERNAL_ERROR = "InternalError"
    REQUEST_THROTTLED = "RequestThrottled"
    TERMINAL_STATE_REACHED = "TerminalStateReached"


# How each MQTT code reads over HTTPS: the exceptions botocore's iot-jobs-data model lists, with
# their statuses. The model has no VersionMismatch exception; a version conflict is a 409 like the
# only other conflict it has (InvalidStateTransitionException). UNCONFIRMED.
_HTTPS_ERRORS: Final[dict[RejectedCode, tuple[str, int]]] = {
    RejectedCode.INVALID_TOPIC: ("InvalidRequestException", 400),
    RejectedCode.INVALID_JSON: ("InvalidRequestException", 400),
    RejectedCode.INVALID_REQUEST: ("InvalidRequestException", 400),
    RejectedCode.INVALID_STATE_TRANSITION: ("InvalidStateTransitionException", 409),
    RejectedCode.RESOURCE_NOT_FOUND: ("ResourceNotFoundException", 404),
    RejectedCode.VERSION_MISMATCH: ("InvalidStateTransitionException", 409),
    RejectedCode.INTERNAL_ERROR: ("ServiceUnavailableException", 503),
    RejectedCode.REQUEST_THROTTLED: ("ThrottlingException", 429),
    RejectedCode.TERMINAL_STATE_REACHED: ("TerminalStateException", 410),
}


class JobsRequestError(Exception):
    """A refused device request; becomes a ``/rejected`` ErrorResponse or an HTTPS error.

    Attributes:
        code: the ErrorResponse ``code``.
        message: the ``message``.
        execution: the execution whose state goes into ``executionState`` (only for
            InvalidStateTransition and VersionMismatch, as [ERR] says).
    """

    def __init__(
        self, code: RejectedCode, message: str, *, execution: JobExecution | None = None
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.execution = execution


@dataclass(frozen=True, slots=True)
class JobsTopic:
    """A request topic under ``$aws/things/<thing>/jobs/``.

    Attributes:
        thing_name: the thing named in the topic.
        operation: ``get_pending``, ``start_next``, ``describe``, ``update``, or ``invalid``
            (a topic in the Jobs namespace that maps to no API: ``InvalidTopic``).
        job_id: the job ID (or ``$next``) for ``describe`` and ``update``.
    """

    thing_name: str
    operation: str
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceReply:
    """The reply to one MQTT request.

    Attributes:
        topic: ``<request topic>/accepted`` or ``<request topic>/rejected``.
        payload: the JSON document.
        accepted: which of the two.
    """

    topic: str
    payload: Mapping[str, Any]
    accepted: bool

    def encode(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """What the shell does for one MQTT request: commit, reply, then notify.

    Attributes:
        reply: the ``/accepted`` or ``/rejected`` message, for the requesting client only
            ("These response messages do not pass through the message broker" [MQTT]).
        changes: to commit before the reply is sent.
        notifications: to publish after the reply.
    """

    reply: DeviceReply
    changes: Changes
    notifications: tuple[Notification, ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """The members of an UpdateJobExecution request [MQTT; HTTPS], validated.

    Attributes:
        status: the new status.
        status_details: new details, or None to leave them unchanged.
        expected_version: the version the device expects, or None for no check.
        execution_number: which execution, or None for the latest.
        include_job_execution_state: reply with ``executionState``.
        include_job_document: reply with ``jobDocument``.
        step_timeout_minutes: a new step timer (1-10080), -1 to cancel it, None to keep it.
    """

    status: ExecutionStatus
    status_details: Mapping[str, str] | None = None
    expected_version: int | None = None
    execution_number: int | None = None
    include_job_execution_state: bool = False
    include_job_document: bool = False
    step_timeout_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class HttpsOutcome:
    """What the shell does for one ``iot-jobs-data`` request: commit, answer, then notify.

    Attributes:
        status: the HTTP status.
        headers: response headers.
        body: the response body (JSON).
        changes: to commit before answering.
        notifications: MQTT notifications to publish after answering (HTTPS clients get none,
            but MQTT subscribers of the same thing do).
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    changes: Changes = field(default_factory=Changes)
    notifications: tuple[Notification, ...] = ()


# -- the operations -------------------------------------------------------------------------------


def get_pending_job_executions(
    state: JobsState, thing_name: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """GetPendingJobExecutions: the thing's non-terminal executions as summaries [MQTT].

    Returns:
        ``(inProgressJobs, queuedJobs)``, each in queue order.
    """
    pending = state.pending(thing_name)
    in_progress = [execution_summary(e) for e in pending if e.status == ExecutionStatus.IN_PROGRESS]
    queued = [execution_summary(e) for e in pending if e.status == ExecutionStatus.QUEUED]
    return in_progress, queued


def start_next_pending_job_execution(
    state: JobsState,
    thing_name: str,
    *,
    status_details: Mapping[str, str] | None,
    step_timeout_minutes: int | None,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[JobExecution | None, Outcome]:
    """StartNextPendingJobExecution [MQTT].

    "If the next pending job execution is QUEUED, its state changes to IN_PROGRESS and the job
    execution's status details are set as specified. If the next pending job execution is
    already IN_PROGRESS, its status details are not changed. If no job executions are pending,
    the response does not include the execution field." The already-IN_PROGRESS case changes
    nothing at all here (no version bump, no new step timer): UNCONFIRMED.

    Returns:
        The execution to return (None when nothing is pending) and the outcome.
    """
    pending = state.pending(thing_name)
    if not pending:
        return None, Outcome(Changes())
    execution = pending[0]
    if execution.status == ExecutionStatus.IN_PROGRESS:
        return execution, Outcome(Changes())
    started = _start(state, execution, now)
    started = replace(
        started,
        status_details=_details(execution.status_details, status_details, behaviour),
        step_timeout_at=_step_deadline(step_timeout_minutes, now, None),
    )
    outcome = settle(state, Changes(executions=(started,)), now, behaviour)
    return started, outcome


def describe_job_execution(
    state: JobsState,
    thing_name: str,
    job_id: str,
    *,
    execution_number: int | None,
    behaviour: JobsBehaviour,
) -> JobExecution | None:
    """DescribeJobExecution [MQTT]; ``job_id`` may be ``$next``.

    Returns:
        The execution; None only for ``$next`` with nothing pending (answered as an accepted
        reply without ``execution``, like StartNext's: UNCONFIRMED).

    Raises:
        JobsRequestError: ResourceNotFound; TerminalStateReached when
            ``behaviour.terminal_state_reached_on_describe`` and the execution is terminal.
    """
    if job_id == NEXT:
        pending = state.pending(thing_name)
        return pending[0] if pending else None
    execution = _find(state, thing_name, job_id, execution_number)
    if behaviour.terminal_state_reached_on_describe and execution.terminal:
        raise JobsRequestError(
            RejectedCode.TERMINAL_STATE_REACHED,
            f"Job execution {job_id} for thing {thing_name} is in terminal state "
            f"{execution.status.value}",
        )
    return execution


def update_job_execution(
    state: JobsState,
    thing_name: str,
    job_id: str,
    request: UpdateRequest,
    *,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[JobExecution, Outcome]:
    """UpdateJobExecution [MQTT]: the execution state machine as devices drive it.

    Checks, in order: the execution exists (ResourceNotFound); ``expectedVersion`` matches
    (VersionMismatch); the transition is legal (InvalidStateTransition). Legal moves
    ("Job execution states and source", iot-jobs-lifecycle.html): QUEUED -> IN_PROGRESS;
    IN_PROGRESS -> IN_PROGRESS ("can be invoked multiple times with a status of IN_PROGRESS");
    IN_PROGRESS -> SUCCEEDED, FAILED, REJECTED; QUEUED -> SUCCEEDED, FAILED, REJECTED unless
    ``behaviour.allow_queued_to_terminal`` is off. Nothing leaves a terminal state ("an attempt
    to change a request in state SUCCEEDED to state IN_PROGRESS" [ERR]).

    Every accepted update adds 1 to ``versionNumber`` ("Each time you update the job execution,
    its version is incremented" [MQTT]) and sets ``lastUpdatedAt``.

    Returns:
        The updated execution and the outcome.

    Raises:
        JobsRequestError: as above.
    """
    execution = _find(state, thing_name, job_id, request.execution_number)
    if request.expected_version is not None and request.expected_version != (
        execution.version_number
    ):
        raise JobsRequestError(
            RejectedCode.VERSION_MISMATCH,
            f"The expected version {request.expected_version} does not match the job "
            f"execution's version {execution.version_number}",
            execution=execution,
        )
    current, target = execution.status, request.status
    legal = not execution.terminal and (
        ExecutionStatus.IN_PROGRESS in (target, current) or behaviour.allow_queued_to_terminal
    )
    if not legal:
        raise JobsRequestError(
            RejectedCode.INVALID_STATE_TRANSITION,
            f"Job execution {job_id} for thing {thing_name} cannot change from "
            f"{current.value} to {target.value}",
            execution=execution,
        )
    updated = execution
    if current == ExecutionStatus.QUEUED and target == ExecutionStatus.IN_PROGRESS:
        updated = _start(state, execution, now)
    else:
        updated = replace(
            execution,
            version_number=execution.version_number + 1,
            last_updated_at=now,
        )
    updated = replace(
        updated,
        status=target,
        status_details=_details(execution.status_details, request.status_details, behaviour),
    )
    if target == ExecutionStatus.IN_PROGRESS:
        updated = replace(
            updated,
            step_timeout_at=_step_deadline(request.step_timeout_minutes, now, updated),
        )
    else:
        updated = replace(updated, step_timeout_at=None, in_progress_timeout_at=None)
    return updated, settle(state, Changes(executions=(updated,)), now, behaviour)


def due_timeouts(state: JobsState, now: float, behaviour: JobsBehaviour) -> Outcome:
    """Time out every IN_PROGRESS execution whose step or in-progress timer has expired.

    "Whenever a job execution remains in the IN_PROGRESS status for longer than this interval,
    the job execution will fail and switch to the terminal TIMED_OUT status" [CONF]. AWS allows
    itself 60 seconds of slack ("can occur up to 60 seconds later", API_iot-jobs-data_JobExecution
    approximateSecondsBeforeTimedOut); the shell calls this at `next_timeout`, so here it is exact.
    A timeout bumps ``versionNumber`` like every other change (UNCONFIRMED for service-side
    changes).

    Returns:
        The TIMED_OUT executions, completed snapshot jobs and notifications.
    """
    expired = [
        replace(
            e,
            status=ExecutionStatus.TIMED_OUT,
            version_number=e.version_number + 1,
            last_updated_at=now,
            step_timeout_at=None,
            in_progress_timeout_at=None,
        )
        for e in state.timed_executions()
        if e.status == ExecutionStatus.IN_PROGRESS
        and e.timeout_at is not None
        and e.timeout_at <= now
    ]
    if not expired:
        return Outcome(Changes())
    return settle(state, Changes(executions=tuple(expired)), now, behaviour)


def next_timeout(state: JobsState) -> float | None:
    """When `due_timeouts` next has something to do (epoch seconds), or None."""
    deadlines = [
        e.timeout_at
        for e in state.timed_executions()
        if e.status == ExecutionStatus.IN_PROGRESS and e.timeout_at is not None
    ]
    return min(deadlines) if deadlines else None


# -- MQTT ----------------------------------------------------------------------------------------


def parse_request_topic(topic: str) -> JobsTopic | None:
    """Map a topic under ``$aws/things/<thing>/jobs/`` to its operation [MQTT "Topics"].

    Returns:
        None for topics outside the Jobs namespace; ``operation="invalid"`` for topics inside
        it that name no API (answered with ``InvalidTopic`` [ERR]).
    """
    parts = topic.split("/")
    if len(parts) < 5 or parts[:2] != ["$aws", "things"] or parts[3] != "jobs":
        return None
    thing, rest = parts[2], parts[4:]
    if rest == ["get"]:
        return JobsTopic(thing, "get_pending")
    if rest == ["start-next"]:
        return JobsTopic(thing, "start_next")
    if len(rest) == 2 and rest[1] == "get":
        return JobsTopic(thing, "describe", rest[0])
    if len(rest) == 2 and rest[1] == "update":
        return JobsTopic(thing, "update", rest[0])
    return JobsTopic(thing, "invalid")


def handle_mqtt_request(
    state: JobsState,
    topic: str,
    payload: bytes,
    *,
    now: float,
    behaviour: JobsBehaviour,
) -> DeviceOutcome:
    """Answer one MQTT request published to a Jobs topic.

    The reply goes to ``<topic>/accepted`` or ``<topic>/rejected`` and echoes ``clientToken``;
    every reply carries ``timestamp`` (epoch seconds) [MQTT]. An empty payload is read as ``{}``
    (the Device SDKs always send JSON; AWS's answer to an empty one is UNCONFIRMED).

    Args:
        state: the current state (not changed).
        topic: the request topic; must be a Jobs topic (`parse_request_topic` not None).
        payload: the request payload.
        now: epoch seconds.
        behaviour: the configurable choices.

    Returns:
        The reply, the changes to commit before sending it, and the notifications to publish.

    Raises:
        ValueError: ``topic`` is not under ``$aws/things/<thing>/jobs/``.
    """
    parsed = parse_request_topic(topic)
    if parsed is None:
        raise ValueError(f"not a Jobs request topic: {topic!r}")
    token: str | None = None
    try:
        request = _json_object(payload)
        token = _client_token(request)
        _check_thing_name(parsed.thing_name)
        body, outcome = _mqtt_operation(state, parsed, request, now, behaviour)
    except JobsRequestError as exc:
        reply = rejected_payload(exc.code, exc.message, client_token=token, now=now)
        if exc.execution is not None:
            reply["executionState"] = execution_state(exc.execution)
        return DeviceOutcome(DeviceReply(f"{topic}/rejected", reply, False), Changes())
    body["timestamp"] = seconds(now)
    if token is not None:
        body["clientToken"] = token
    return DeviceOutcome(
        DeviceReply(f"{topic}/accepted", body, True), outcome.changes, outcome.notifications
    )


def rejected_payload(
    code: RejectedCode, message: str, *, client_token: str | None, now: float
) -> dict[str, Any]:
    """An ErrorResponse ``{"code", "message", "clientToken", "timestamp"}`` [ERR].

    The shell uses it directly for ``RequestThrottled`` and ``InternalError``, which no pure
    operation produces.
    """
    payload: dict[str, Any] = {"code": code.value, "message": message}
    if client_token is not None:
        payload["clientToken"] = client_token
    payload["timestamp"] = seconds(now)
    return payload


def execution_state(execution: JobExecution) -> dict[str, Any]:
    """A JobExecutionState ``{"status", "statusDetails", "versionNumber"}`` [TYPES]."""
    state: dict[str, Any] = {"status": execution.status.value}
    if execution.status_details:
        state["statusDetails"] = dict(execution.status_details)
    state["versionNumber"] = execution.version_number
    return state


def _mqtt_operation(
    state: JobsState,
    topic: JobsTopic,
    request: dict[str, Any],
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[dict[str, Any], Outcome]:
    thing = topic.thing_name
    if topic.operation == "get_pending":
        in_progress, queued = get_pending_job_executions(state, thing)
        return {"inProgressJobs": in_progress, "queuedJobs": queued}, Outcome(Changes())
    if topic.operation == "start_next":
        details = _optional_details(request)
        step = _step_timeout(request.get("stepTimeoutInMinutes"))
        execution, outcome = start_next_pending_job_execution(
            state,
            thing,
            status_details=details,
            step_timeout_minutes=step,
            now=now,
            behaviour=behaviour,
        )
        body: dict[str, Any] = {}
        if execution is not None:
            body["execution"] = _mqtt_execution(state, execution, include_document=True)
        return body, outcome
    if topic.operation == "describe":
        job_id = _job_id(topic.job_id, allow_next=True)
        number = _optional_int(request, "executionNumber", minimum=1)
        include = _optional_bool(request, "includeJobDocument")
        found = describe_job_execution(
            state, thing, job_id, execution_number=number, behaviour=behaviour
        )
        body = {}
        if found is not None:
            body["execution"] = _mqtt_execution(state, found, include_document=include is not False)
        return body, Outcome(Changes())
    if topic.operation == "update":
        job_id = _job_id(topic.job_id, allow_next=False)
        update = _update_request(request)
        execution, outcome = update_job_execution(
            state, thing, job_id, update, now=now, behaviour=behaviour
        )
        body = {}
        if update.include_job_execution_state:
            body["executionState"] = execution_state(execution)
        if update.include_job_document:
            body["jobDocument"] = job_document_object(_document(state, execution))
        return body, outcome
    raise JobsRequestError(
        RejectedCode.INVALID_TOPIC,
        "The request was sent to a topic in the AWS IoT Jobs namespace that does not map to "
        "any API",
    )


def _mqtt_execution(
    state: JobsState, execution: JobExecution, *, include_document: bool
) -> dict[str, Any]:
    """JobExecutionData as the SDK parses it: the document as JSON [TYPES; NOTIFY examples]."""
    body = _execution_fields(execution)
    if include_document:
        body["jobDocument"] = job_document_object(_document(state, execution))
    return body


# -- HTTPS ---------------------------------------------------------------------------------------


def handle_https_request(
    state: JobsState,
    method: str,
    path: str,
    query: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    behaviour: JobsBehaviour,
) -> HttpsOutcome:
    """Answer one ``iot-jobs-data`` request (rest-json) [HTTPS].

    Routes, from botocore's model: ``GET /things/{thingName}/jobs`` (GetPendingJobExecutions),
    ``PUT /things/{thingName}/jobs/$next`` (StartNextPendingJobExecution),
    ``GET /things/{thingName}/jobs/{jobId}`` (DescribeJobExecution, query ``includeJobDocument``
    and ``executionNumber``), ``POST /things/{thingName}/jobs/{jobId}`` (UpdateJobExecution).
    Replies have no ``clientToken`` or ``timestamp``; ``jobDocument`` is a string (the model's
    JobDocument type); ``approximateSecondsBeforeTimedOut`` appears while a timer runs.

    Args:
        state: the current state (not changed).
        method: the HTTP method.
        path: the request path, percent-encoded as sent (``%24next`` is ``$next``), no query.
        query: the query parameters.
        body: the request body.
        now: epoch seconds.
        behaviour: the configurable choices.

    Returns:
        The HTTP answer, the changes to commit first and the MQTT notifications to publish.
    """
    segments = [unquote(s) for s in path.strip("/").split("/")]
    try:
        if len(segments) < 3 or segments[0] != "things" or segments[2] != "jobs":
            raise JobsRequestError(RejectedCode.INVALID_TOPIC, f"No such operation: {path}")
        thing = segments[1]
        _check_thing_name(thing)
        job_id = segments[3] if len(segments) == 4 else None
        if len(segments) > 4:
            raise JobsRequestError(RejectedCode.INVALID_TOPIC, f"No such operation: {path}")
        answer, outcome = _https_operation(
            state,
            method.upper(),
            thing,
            job_id,
            query=query,
            body=body,
            now=now,
            behaviour=behaviour,
        )
    except JobsRequestError as exc:
        status, headers, error_body = https_error(exc).rest_response()
        return HttpsOutcome(status, tuple(headers), error_body)
    return HttpsOutcome(
        200,
        (("Content-Type", "application/json"),),
        json.dumps(answer, separators=(",", ":")).encode(),
        outcome.changes,
        outcome.notifications,
    )


def https_error(error: JobsRequestError) -> AwsApiError:
    """The ``iot-jobs-data`` exception for an MQTT rejection (see ``_HTTPS_ERRORS``)."""
    code, status = _HTTPS_ERRORS[error.code]
    return AwsApiError(code, error.message, status=status)


def _https_operation(
    state: JobsState,
    method: str,
    thing: str,
    job_id: str | None,
    *,
    query: Mapping[str, str],
    body: bytes,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[dict[str, Any], Outcome]:
    if method == "GET" and job_id is None:
        in_progress, queued = get_pending_job_executions(state, thing)
        return {"inProgressJobs": in_progress, "queuedJobs": queued}, Outcome(Changes())
    if method == "PUT" and job_id == NEXT:
        request = _json_object(body)
        execution, outcome = start_next_pending_job_execution(
            state,
            thing,
            status_details=_optional_details(request),
            step_timeout_minutes=_step_timeout(request.get("stepTimeoutInMinutes")),
            now=now,
            behaviour=behaviour,
        )
        answer: dict[str, Any] = {}
        if execution is not None:
            answer["execution"] = _https_execution(state, execution, now, include_document=True)
        return answer, outcome
    if method == "GET" and job_id is not None:
        job_id = _job_id(job_id, allow_next=True)
        number = _query_int(query, "executionNumber")
        include = _query_bool(query, "includeJobDocument")
        found = describe_job_execution(
            state, thing, job_id, execution_number=number, behaviour=behaviour
        )
        answer = {}
        if found is not None:
            answer["execution"] = _https_execution(
                state, found, now, include_document=include is not False
            )
        return answer, Outcome(Changes())
    if method == "POST" and job_id is not None:
        job_id = _job_id(job_id, allow_next=False)
        update = _update_request(_json_object(body))
        execution, outcome = update_job_execution(
            state, thing, job_id, update, now=now, behaviour=behaviour
        )
        answer = {}
        if update.include_job_execution_state:
            answer["executionState"] = execution_state(execution)
        if update.include_job_document:
            answer["jobDocument"] = _document(state, execution)
        return answer, outcome
    raise JobsRequestError(RejectedCode.INVALID_TOPIC, f"No such operation: {method}")


def _https_execution(
    state: JobsState, execution: JobExecution, now: float, *, include_document: bool
) -> dict[str, Any]:
    body = _execution_fields(execution)
    deadline = execution.timeout_at
    if deadline is not None and execution.status == ExecutionStatus.IN_PROGRESS:
        body["approximateSecondsBeforeTimedOut"] = max(0, math.ceil(deadline - now))
    if include_document:
        body["jobDocument"] = _document(state, execution)
    return body


def _query_int(query: Mapping[str, str], name: str) -> int | None:
    text = query.get(name)
    value: object = text
    if text is not None and text.lstrip("-").isdigit():
        value = int(text)
    return _optional_int({name: value}, name, minimum=1)


def _query_bool(query: Mapping[str, str], name: str) -> bool | None:
    text = query.get(name)
    value: object = text
    if text is not None and text.lower() in ("true", "false"):
        value = text.lower() == "true"
    return _optional_bool({name: value}, name)


# -- shared helpers ------------------------------------------------------------------------------


def _execution_fields(execution: JobExecution) -> dict[str, Any]:
    """The JobExecution members both APIs share [TYPES]."""
    body: dict[str, Any] = {
        "jobId": execution.job_id,
        "thingName": execution.thing_name,
        "status": execution.status.value,
    }
    if execution.status_details:
        body["statusDetails"] = dict(execution.status_details)
    body["queuedAt"] = seconds(execution.queued_at)
    if execution.started_at is not None:
        body["startedAt"] = seconds(execution.started_at)
    body["lastUpdatedAt"] = seconds(execution.last_updated_at)
    body["versionNumber"] = execution.version_number
    body["executionNumber"] = execution.execution_number
    return body


def _document(state: JobsState, execution: JobExecution) -> str:
    job = state.job(execution.job_id)
    return job.document if job is not None else "{}"


def _find(
    state: JobsState, thing_name: str, job_id: str, execution_number: int | None
) -> JobExecution:
    if execution_number is None:
        execution = state.latest_execution(thing_name, job_id)
    else:
        execution = state.execution((thing_name, job_id, execution_number))
    if execution is None:
        # "The JobExecution specified by the request topic does not exist." [ERR]
        raise JobsRequestError(
            RejectedCode.RESOURCE_NOT_FOUND,
            f"Job execution {job_id} for thing {thing_name} does not exist",
        )
    return execution


def _start(state: JobsState, execution: JobExecution, now: float) -> JobExecution:
    """QUEUED -> IN_PROGRESS: ``startedAt``, the in-progress timer, a new version.

    "The timer is started when the job execution status is set to IN_PROGRESS."
    (API_CreateJob timeoutConfig).
    """
    job = state.job(execution.job_id)
    minutes = job.in_progress_timeout_minutes if job is not None else None
    return replace(
        execution,
        status=ExecutionStatus.IN_PROGRESS,
        started_at=now,
        last_updated_at=now,
        version_number=execution.version_number + 1,
        in_progress_timeout_at=None if minutes is None else now + minutes * 60,
    )


def _step_deadline(minutes: int | None, now: float, execution: JobExecution | None) -> float | None:
    """The new step deadline.

    "When a new step timer is created, the previous step timer is discarded" [CONF]; -1 "will
    cancel the current step timer" [HTTPS]; none given keeps the current one.
    """
    if minutes is None:
        return execution.step_timeout_at if execution is not None else None
    if minutes == -1:
        return None
    return now + minutes * 60


def _details(
    current: Mapping[str, str], given: Mapping[str, str] | None, behaviour: JobsBehaviour
) -> Mapping[str, str]:
    if given is None:
        return current  # "If not specified, the statusDetails are unchanged." [MQTT]
    if behaviour.merge_status_details:
        return {**current, **given}
    return dict(given)


def _json_object(payload: bytes) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise JobsRequestError(
            RejectedCode.INVALID_JSON,
            "The contents of the request could not be interpreted as valid UTF-8-encoded JSON",
        ) from None
    if not isinstance(value, dict):
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, "The request must be a JSON object")
    return value


def _client_token(request: Mapping[str, Any]) -> str | None:
    token = request.get("clientToken")
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= CLIENT_TOKEN_MAX:
        raise JobsRequestError(
            RejectedCode.INVALID_REQUEST,
            f"clientToken must be a string of 1-{CLIENT_TOKEN_MAX} characters",
        )
    return token


def _check_thing_name(thing_name: str) -> None:
    if not THING_NAME_PATTERN.fullmatch(thing_name):
        raise JobsRequestError(
            RejectedCode.INVALID_REQUEST,
            "thingName must be 1-128 characters of [a-zA-Z0-9:_-]",
        )


def _job_id(job_id: str | None, *, allow_next: bool) -> str:
    if job_id == NEXT and allow_next:
        return job_id
    if job_id is None or not JOB_ID_PATTERN.fullmatch(job_id):
        raise JobsRequestError(
            RejectedCode.INVALID_REQUEST,
            f"jobId {str(job_id)[:70]!r} must be 1-64 characters of [a-zA-Z0-9_-]",
        )
    return job_id


def _optional_details(request: Mapping[str, Any]) -> dict[str, str] | None:
    if request.get("statusDetails") is None:
        return None
    try:
        return check_status_details(request["statusDetails"])
    except ValueError as exc:
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, str(exc)) from None


def _optional_int(request: Mapping[str, Any], name: str, *, minimum: int) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, f"{name} must be an integer")
    if value < minimum:
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, f"{name} must be at least {minimum}")
    return value


def _optional_bool(request: Mapping[str, Any], name: str) -> bool | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, f"{name} must be true or false")
    return value


def _step_timeout(value: Any) -> int | None:
    """``stepTimeoutInMinutes``: "from 1 to 10080 ... A value of -1 is also valid" [HTTPS]."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == -1 or 1 <= value <= STEP_TIMEOUT_MAX_MINUTES)
    ):
        raise JobsRequestError(
            RejectedCode.INVALID_REQUEST,
            f"stepTimeoutInMinutes must be an integer from 1 to {STEP_TIMEOUT_MAX_MINUTES}, or -1",
        )
    return value


def _update_request(request: Mapping[str, Any]) -> UpdateRequest:
    status = request.get("status")
    if status is None:
        # "This must be specified on every update." [MQTT]
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, "status is required")
    if not isinstance(status, str) or status not in ExecutionStatus.__members__:
        raise JobsRequestError(RejectedCode.INVALID_REQUEST, f"Invalid status: {str(status)[:40]}")
    if ExecutionStatus(status) not in DEVICE_SETTABLE:
        # A device may only set "IN_PROGRESS, FAILED, SUCCEEDED, or REJECTED" [MQTT]; AWS's code
        # for the other four is UNCONFIRMED.
        raise JobsRequestError(
            RejectedCode.INVALID_REQUEST,
            f"A device cannot set status {status}; use IN_PROGRESS, SUCCEEDED, FAILED or REJECTED",
        )
    return UpdateRequest(
        status=ExecutionStatus(status),
        status_details=_optional_details(request),
        expected_version=_optional_int(request, "expectedVersion", minimum=0),
        execution_number=_optional_int(request, "executionNumber", minimum=1),
        include_job_execution_state=_optional_bool(request, "includeJobExecutionState") is True,
        include_job_document=_optional_bool(request, "includeJobDocument") is True,
        step_timeout_minutes=_step_timeout(request.get("stepTimeoutInMinutes")),
    )
