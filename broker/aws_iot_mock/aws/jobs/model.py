"""AWS IoT Jobs: jobs, job executions, the state they live in, and changes to it. Pure.

Every operation in this package reads a `JobsState` and returns a `Changes` value; nothing here
mutates state. The shell commits the changes (``state.jobs.JobStore.apply``) *before* it answers
the caller, then applies them to its in-memory `JobsState` (``JobsState.apply``) and publishes the
notifications that came with them. So an answered request survives ``kill -9``.

Sources:

- [LIFE] "Jobs and job execution states",
  https://docs.aws.amazon.com/iot/latest/developerguide/iot-jobs-lifecycle.html
- [MQTT] "Jobs device MQTT API",
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html
- [TYPES] "Jobs device MQTT and HTTPS APIs and data types",
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-https-api.html
- [NOTIFY] "Jobs notifications",
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-comm-notifications.html
- [CONF] "Job configurations" (timeouts),
  https://docs.aws.amazon.com/iot/latest/developerguide/jobs-configurations-details.html
- [API] the AWS IoT API reference, e.g.
  https://docs.aws.amazon.com/iot/latest/apireference/API_CreateJob.html, and botocore's
  ``iot`` / ``iot-jobs-data`` models (shapes, patterns, limits).
"""

from __future__ import annotations

import enum
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "DEVICE_SETTABLE",
    "JOB_DOCUMENT_MAX",
    "JOB_ID_PATTERN",
    "NOTIFY_LIST_MAX",
    "STATUS_DETAILS_VALUE_MAX",
    "STEP_TIMEOUT_MAX_MINUTES",
    "TERMINAL",
    "THING_NAME_PATTERN",
    "Changes",
    "ExecutionKey",
    "ExecutionStatus",
    "Job",
    "JobExecution",
    "JobStatus",
    "JobsBehaviour",
    "JobsState",
    "TargetSelection",
    "arn_prefix",
    "check_status_details",
    "execution_summary",
    "job_document_object",
    "pending_order",
    "seconds",
]

# "jobId ... Length Constraints: Minimum length of 1. Maximum length of 64. Pattern:
# [a-zA-Z0-9_-]+" (API_CreateJob; botocore iot JobId).
JOB_ID_PATTERN: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# "thingName ... Minimum length of 1. Maximum length of 128. Pattern: [a-zA-Z0-9:_-]+"
# (API_iot-jobs-data_UpdateJobExecution).
THING_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
# "document ... Maximum length of 32768" (API_CreateJob).
JOB_DOCUMENT_MAX: Final = 32768
# "Valid values for this parameter range from 1 to 10080 (1 minute to 7 days)"
# (API_iot-jobs-data_UpdateJobExecution stepTimeoutInMinutes; the same bound for
# timeoutConfig.inProgressTimeoutInMinutes, API_TimeoutConfig).
STEP_TIMEOUT_MAX_MINUTES: Final = 10080
# statusDetails: "DetailsKey ... Minimum length of 1. Maximum length of 128. Pattern:
# [a-zA-Z0-9:_-]+"; "DetailsValue ... Minimum length of 1. Pattern: [^\p{C}]+"; "The maximum length
# of the value in the name/value pair is 1,024 characters" (API_iot-jobs-data_UpdateJobExecution).
STATUS_DETAILS_KEY_PATTERN: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
STATUS_DETAILS_VALUE_MAX: Final = 1024
# "A ListNotification contains a list of no more than 10 pending job executions" [NOTIFY].
NOTIFY_LIST_MAX: Final = 10


class ExecutionStatus(enum.StrEnum):
    """A job execution's status [LIFE]."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"
    REMOVED = "REMOVED"
    CANCELED = "CANCELED"


class JobStatus(enum.StrEnum):
    """A job's status (botocore iot ``JobStatus``; SCHEDULED is never produced here)."""

    IN_PROGRESS = "IN_PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"
    DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
    SCHEDULED = "SCHEDULED"


class TargetSelection(enum.StrEnum):
    """SNAPSHOT jobs end; CONTINUOUS jobs also run on things added to a target group later."""

    SNAPSHOT = "SNAPSHOT"
    CONTINUOUS = "CONTINUOUS"


# [LIFE] "Job execution states and source": the terminal column.
TERMINAL: Final = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.REJECTED,
        ExecutionStatus.REMOVED,
        ExecutionStatus.CANCELED,
    }
)
# "The new status for the job execution (IN_PROGRESS, FAILED, SUCCEEDED, or REJECTED)" [MQTT
# UpdateJobExecution]; [LIFE] marks exactly these as "Initiated by device".
DEVICE_SETTABLE: Final = frozenset(
    {
        ExecutionStatus.IN_PROGRESS,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.REJECTED,
    }
)

ExecutionKey = tuple[str, str, int]
"""``(thing_name, job_id, execution_number)``: what identifies one job execution."""


@dataclass(frozen=True, slots=True)
class JobsBehaviour:
    """Choices where AWS is silent or contradicts itself (see docs/jobs-reference.md).

    Attributes:
        notify_on_start: publish ``jobs/notify`` when a pending execution goes QUEUED ->
            IN_PROGRESS. [NOTIFY]'s rule list says yes ("changes to a non-terminal status"), its
            worked example says no ("No notifications are published because the list of jobs
            and the next job in the queue have not changed"); default: the example.
        merge_status_details: merge a request's ``statusDetails`` into the stored ones (True) or
            replace them (False, default). AWS says only "If not specified, the statusDetails
            are unchanged" [MQTT].
        allow_queued_to_terminal: let a device move QUEUED straight to SUCCEEDED, FAILED or
            REJECTED (default True: [LIFE]'s figure shows QUEUED -> REJECTED, and refusing would
            break devices AWS accepts).
        terminal_state_reached_on_describe: answer DescribeJobExecution of an execution in a
            terminal state with ``TerminalStateReached`` (HTTPS: ``TerminalStateException``,
            410) instead of the execution (default False).
        max_jobs: how many jobs the state holds at most; CreateJob beyond it is refused with
            ``LimitExceededException`` (keeps the emulator bounded).
        max_active_jobs: how many IN_PROGRESS jobs at most (AWS's "active jobs" quota).
    """

    notify_on_start: bool = False
    merge_status_details: bool = False
    allow_queued_to_terminal: bool = True
    terminal_state_reached_on_describe: bool = False
    max_jobs: int = 10_000
    max_active_jobs: int = 1_000


@dataclass(frozen=True, slots=True)
class Job:
    """One job, as stored.

    Attributes:
        job_id: the job ID.
        job_arn: ``arn:aws:iot:<region>:<account>:job/<jobId>``.
        document: the job document, JSON text, as given to CreateJob.
        targets: the target ARNs (things and thing groups), as given, duplicates removed.
        target_selection: SNAPSHOT or CONTINUOUS.
        status: the job's status.
        created_at: epoch seconds.
        last_updated_at: epoch seconds.
        completed_at: epoch seconds when the job became COMPLETED or CANCELED, else None.
        description: the description, if any.
        in_progress_timeout_minutes: ``timeoutConfig.inProgressTimeoutInMinutes``, if any.
        force_canceled: whether a cancel was forced (None until canceled).
        reason_code: CancelJob's ``reasonCode``.
        comment: CancelJob's ``comment``.
        stored_config: accepted but not emulated request members (``jobExecutionsRolloutConfig``,
            ``abortConfig``, ``jobExecutionsRetryConfig``, ``presignedUrlConfig``, ``tags``,
            ``namespaceId``, ...), echoed by DescribeJob where its shape has them.
    """

    job_id: str
    job_arn: str
    document: str
    targets: tuple[str, ...]
    target_selection: TargetSelection
    status: JobStatus
    created_at: float
    last_updated_at: float
    completed_at: float | None = None
    description: str | None = None
    in_progress_timeout_minutes: int | None = None
    force_canceled: bool | None = None
    reason_code: str | None = None
    comment: str | None = None
    stored_config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobExecution:
    """One execution of a job on one thing, as stored.

    Attributes:
        job_id: the job.
        thing_name: the thing.
        execution_number: numbers the executions of this job on this thing, from 1.
        status: the execution's status.
        queued_at: epoch seconds.
        last_updated_at: epoch seconds.
        version_number: 1 when queued, +1 on every change (device or service).
        sequence: a number increasing in creation order over the whole state; orders
            executions queued within the same second.
        started_at: epoch seconds of QUEUED -> IN_PROGRESS, else None.
        status_details: the name/value pairs devices (or CancelJobExecution) set.
        force_canceled: canceled with ``force`` while IN_PROGRESS.
        step_timeout_at: when the step timer expires (epoch seconds), if one runs.
        in_progress_timeout_at: when the job's in-progress timer expires, if one runs.
    """

    job_id: str
    thing_name: str
    execution_number: int
    status: ExecutionStatus
    queued_at: float
    last_updated_at: float
    version_number: int
    sequence: int
    started_at: float | None = None
    status_details: Mapping[str, str] = field(default_factory=dict)
    force_canceled: bool = False
    step_timeout_at: float | None = None
    in_progress_timeout_at: float | None = None

    @property
    def key(self) -> ExecutionKey:
        """``(thing_name, job_id, execution_number)``."""
        return (self.thing_name, self.job_id, self.execution_number)

    @property
    def terminal(self) -> bool:
        """True once the execution can no longer change status."""
        return self.status in TERMINAL

    @property
    def timeout_at(self) -> float | None:
        """When this execution times out: the earlier of its two timers, or None.

        "The step timer can't exceed the in-progress timer's absolute bound" [CONF].
        """
        deadlines = [
            t for t in (self.step_timeout_at, self.in_progress_timeout_at) if t is not None
        ]
        return min(deadlines) if deadlines else None


@dataclass(frozen=True, slots=True)
class Changes:
    """What one operation changes: upserts and deletions, applied all together.

    Attributes:
        jobs: jobs to insert or replace.
        executions: executions to insert or replace.
        deleted_jobs: job IDs to delete, with all their executions.
        deleted_executions: executions to delete.
    """

    jobs: tuple[Job, ...] = ()
    executions: tuple[JobExecution, ...] = ()
    deleted_jobs: tuple[str, ...] = ()
    deleted_executions: tuple[ExecutionKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.jobs or self.executions or self.deleted_jobs or self.deleted_executions)

    def things(self) -> set[str]:
        """The things whose executions these changes touch."""
        names = {execution.thing_name for execution in self.executions}
        names.update(key[0] for key in self.deleted_executions)
        return names


class JobsState:
    """Every job and job execution, indexed for the device and control-plane operations.

    Operations treat it as read-only; only `apply` changes it. Not thread-safe.
    """

    def __init__(self, jobs: Iterable[Job] = (), executions: Iterable[JobExecution] = ()) -> None:
        self._jobs: dict[str, Job] = {}
        self._executions: dict[ExecutionKey, JobExecution] = {}
        self._by_thing: dict[str, set[ExecutionKey]] = {}
        self._by_job: dict[str, set[ExecutionKey]] = {}
        self._next_sequence = 1
        self.apply(Changes(jobs=tuple(jobs), executions=tuple(executions)))

    # -- reading --------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job | None:
        """The job, or None."""
        return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job, in creation order (then job ID)."""
        return sorted(self._jobs.values(), key=lambda job: (job.created_at, job.job_id))

    def execution(self, key: ExecutionKey) -> JobExecution | None:
        """One execution, or None."""
        return self._executions.get(key)

    def executions_of_thing(self, thing_name: str) -> list[JobExecution]:
        """The thing's executions, in creation order."""
        keys = self._by_thing.get(thing_name, ())
        return sorted((self._executions[k] for k in keys), key=lambda e: e.sequence)

    def executions_of_job(self, job_id: str) -> list[JobExecution]:
        """The job's executions, in creation order."""
        keys = self._by_job.get(job_id, ())
        return sorted((self._executions[k] for k in keys), key=lambda e: e.sequence)

    def latest_execution(self, thing_name: str, job_id: str) -> JobExecution | None:
        """The thing's execution of the job with the highest execution number, or None."""
        best: JobExecution | None = None
        for key in self._by_thing.get(thing_name, ()):
            if key[1] == job_id and (best is None or key[2] > best.execution_number):
                best = self._executions[key]
        return best

    def pending(self, thing_name: str) -> list[JobExecution]:
        """The thing's QUEUED and IN_PROGRESS executions in ``$next`` order (`pending_order`)."""
        return pending_order(self.executions_of_thing(thing_name))

    def timed_executions(self) -> list[JobExecution]:
        """IN_PROGRESS executions with a running timer."""
        return [e for e in self._executions.values() if e.timeout_at is not None]

    def allocate_sequences(self, count: int) -> range:
        """Sequence numbers for ``count`` new executions (not reserved: apply the changes)."""
        return range(self._next_sequence, self._next_sequence + count)

    def __len__(self) -> int:
        return len(self._jobs)

    # -- writing --------------------------------------------------------------------------------

    def apply(self, changes: Changes) -> None:
        """Apply ``changes`` (the only mutation; the shell calls it after the store committed)."""
        for job_id in changes.deleted_jobs:
            self._jobs.pop(job_id, None)
            for key in list(self._by_job.get(job_id, ())):
                self._drop(key)
        for key in changes.deleted_executions:
            self._drop(key)
        for job in changes.jobs:
            self._jobs[job.job_id] = job
        for execution in changes.executions:
            key = execution.key
            self._executions[key] = execution
            self._by_thing.setdefault(execution.thing_name, set()).add(key)
            self._by_job.setdefault(execution.job_id, set()).add(key)
            self._next_sequence = max(self._next_sequence, execution.sequence + 1)

    def _drop(self, key: ExecutionKey) -> None:
        if self._executions.pop(key, None) is None:
            return
        for index, name in ((self._by_thing, key[0]), (self._by_job, key[1])):
            keys = index.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[name]


def pending_order(executions: Iterable[JobExecution]) -> list[JobExecution]:
    """The pending (QUEUED, IN_PROGRESS) executions in the order ``$next`` takes them.

    "Any job executions with status IN_PROGRESS are returned first. Job executions are returned
    in the order in which they were created." [MQTT StartNextPendingJobExecution]; the
    ListNotification is "sorted by status (IN_PROGRESS job executions before QUEUED job
    executions) and then by the times when they were queued" [NOTIFY].
    """
    pending = [e for e in executions if not e.terminal]
    return sorted(
        pending,
        key=lambda e: (e.status != ExecutionStatus.IN_PROGRESS, e.queued_at, e.sequence),
    )


def seconds(moment: float) -> int:
    """Epoch seconds as the integer AWS writes in device payloads [MQTT "timestamp"]."""
    return int(moment)


def execution_summary(execution: JobExecution) -> dict[str, Any]:
    """A JobExecutionSummary [TYPES]: no status (the list it sits in gives it), no details."""
    summary: dict[str, Any] = {
        "jobId": execution.job_id,
        "queuedAt": seconds(execution.queued_at),
        "lastUpdatedAt": seconds(execution.last_updated_at),
        "executionNumber": execution.execution_number,
        "versionNumber": execution.version_number,
    }
    if execution.started_at is not None:
        summary["startedAt"] = seconds(execution.started_at)
    return summary


def job_document_object(document: str) -> Any:
    """The job document as MQTT payloads carry it: parsed JSON ([NOTIFY] examples).

    CreateJob only accepts JSON objects (see ``control.create_job``), so this never fails for a
    stored job; a document that is not JSON (an older store) is passed on as the string.
    """
    try:
        return json.loads(document)
    except ValueError:
        return document


def arn_prefix(job_arn: str) -> str:
    """``arn:aws:iot:<region>:<account>:`` from a job ARN, to build thing ARNs alike."""
    return job_arn[: job_arn.index(":job/") + 1]


def check_status_details(details: object, *, max_pairs: int | None = None) -> dict[str, str]:
    """Validate a request's ``statusDetails``: a map of string to string within AWS's limits.

    Args:
        details: the decoded JSON value.
        max_pairs: the most pairs allowed (CancelJobExecution: "You can specify at most 10
            name/value pairs", API_CancelJobExecution), or None for no count limit.

    Returns:
        The details as a new dict.

    Raises:
        ValueError: the message says what is wrong (AWS: "InvalidRequest ... an
            UpdateJobExecution request contains invalid status details", jobs-api.html).
    """
    if not isinstance(details, dict):
        raise ValueError("statusDetails must be an object of name/value pairs")
    if max_pairs is not None and len(details) > max_pairs:
        raise ValueError(f"statusDetails can hold at most {max_pairs} name/value pairs")
    checked: dict[str, str] = {}
    for name, value in details.items():
        if not STATUS_DETAILS_KEY_PATTERN.fullmatch(name):
            raise ValueError(
                f"statusDetails name {name[:130]!r} must be 1-128 characters of [a-zA-Z0-9:_-]"
            )
        if not isinstance(value, str):
            raise ValueError(f"statusDetails value of {name!r} must be a string")
        if not 1 <= len(value) <= STATUS_DETAILS_VALUE_MAX:
            raise ValueError(
                f"statusDetails value of {name!r} must be 1-{STATUS_DETAILS_VALUE_MAX} characters"
            )
        if any(unicodedata.category(ch).startswith("C") for ch in value):
            raise ValueError(f"statusDetails value of {name!r} contains control characters")
        checked[name] = value
    return checked
