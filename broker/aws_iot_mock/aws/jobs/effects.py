"""What follows from a change to job executions: snapshot jobs completing, notifications. Pure.

Every operation that changes executions ends with `settle`, which adds the job-status changes
the execution changes imply and works out the ``jobs/notify`` and ``jobs/notify-next`` messages
from the thing's pending list before and after.

Sources: "Jobs notifications",
https://docs.aws.amazon.com/iot/latest/developerguide/jobs-comm-notifications.html ([NOTIFY]);
"Jobs and job execution states",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-jobs-lifecycle.html ([LIFE]).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aws_iot_mock.aws.jobs.model import (
    NOTIFY_LIST_MAX,
    Changes,
    ExecutionKey,
    ExecutionStatus,
    Job,
    JobExecution,
    JobsBehaviour,
    JobsState,
    JobStatus,
    TargetSelection,
    execution_summary,
    job_document_object,
    pending_order,
    seconds,
)

__all__ = [
    "Notification",
    "Outcome",
    "next_execution_document",
    "notifications",
    "notify_payload",
    "settle",
]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message the Jobs service publishes to a thing's reserved topic.

    Attributes:
        thing_name: the thing it is for.
        topic: ``$aws/things/<thing>/jobs/notify`` or ``.../notify-next``.
        payload: the JSON document.
    """

    thing_name: str
    topic: str
    payload: Mapping[str, Any]

    def encode(self) -> bytes:
        """The payload as compact UTF-8 JSON."""
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Outcome:
    """Changes to commit, then notifications to publish (in this order).

    Attributes:
        changes: what to store.
        notifications: what to publish once stored, in order.
    """

    changes: Changes
    notifications: tuple[Notification, ...] = ()


def settle(state: JobsState, changes: Changes, now: float, behaviour: JobsBehaviour) -> Outcome:
    """Complete the snapshot jobs ``changes`` finish, and work out the notifications.

    "For a snapshot job, the job status changes to COMPLETED when all its job executions enter a
    terminal state" [LIFE]; a continuous job stays IN_PROGRESS.

    Args:
        state: the state before ``changes``.
        changes: what an operation changes.
        now: epoch seconds.
        behaviour: the configurable choices (``notify_on_start``).

    Returns:
        The changes, plus job completions, and the notifications they cause.
    """
    touched = {execution.job_id for execution in changes.executions}
    touched.update(key[1] for key in changes.deleted_executions)
    touched.difference_update(changes.deleted_jobs)
    upserted = {job.job_id: job for job in changes.jobs}
    completed: list[Job] = []
    for job_id in sorted(touched):
        job = upserted.get(job_id) or state.job(job_id)
        if (
            job is None
            or job.status != JobStatus.IN_PROGRESS
            or job.target_selection != TargetSelection.SNAPSHOT
        ):
            continue
        after = _executions_after(state.executions_of_job(job_id), changes, job=job_id)
        if all(execution.terminal for execution in after):
            completed.append(
                replace(job, status=JobStatus.COMPLETED, completed_at=now, last_updated_at=now)
            )
    if completed:
        done = {job.job_id for job in completed}
        changes = replace(
            changes,
            jobs=tuple(job for job in changes.jobs if job.job_id not in done) + tuple(completed),
        )
    return Outcome(changes, notifications(state, changes, now, behaviour))


def notifications(
    state: JobsState, changes: Changes, now: float, behaviour: JobsBehaviour
) -> tuple[Notification, ...]:
    """The ``notify`` / ``notify-next`` messages ``changes`` cause, thing by thing.

    - ``jobs/notify`` (ListNotification) when an execution enters or leaves the thing's pending
      list: "Sent whenever a job execution is added to or removed from the list of pending job
      executions" (jobs-mqtt-api.html); with ``behaviour.notify_on_start`` also when a pending
      execution goes QUEUED -> IN_PROGRESS (see `JobsBehaviour`).
    - ``jobs/notify-next`` (NextNotification) when the first execution of the list is another
      one: "whenever the first job execution in the list changes" [NOTIFY], "not sent when the
      next job's execution details change" (jobs-mqtt-api.html). An empty list gives a payload
      with only ``timestamp`` [NOTIFY, after a force delete].

    Args:
        state: the state before ``changes``.
        changes: the changes (after `settle` added job completions).
        now: epoch seconds, the messages' ``timestamp``.
        behaviour: the configurable choices.

    Returns:
        Per thing (sorted by name): ``notify`` first, then ``notify-next``.
    """
    things = changes.things()
    for job_id in changes.deleted_jobs:
        things.update(execution.thing_name for execution in state.executions_of_job(job_id))
    documents = {job.job_id: job.document for job in changes.jobs}
    out: list[Notification] = []
    for thing in sorted(things):
        before = state.pending(thing)
        after = pending_order(
            _executions_after(state.executions_of_thing(thing), changes, thing=thing)
        )
        before_keys = {e.key: e.status for e in before}
        after_keys = {e.key: e.status for e in after}
        list_changed = before_keys.keys() != after_keys.keys()
        started = behaviour.notify_on_start and any(
            before_keys[key] == ExecutionStatus.QUEUED and status == ExecutionStatus.IN_PROGRESS
            for key, status in after_keys.items()
            if key in before_keys
        )
        prefix = f"$aws/things/{thing}/jobs"
        if list_changed or started:
            out.append(Notification(thing, f"{prefix}/notify", notify_payload(after, now)))
        head_before = before[0].key if before else None
        head_after = after[0].key if after else None
        if head_before != head_after:
            payload: dict[str, Any] = {"timestamp": seconds(now)}
            if after:
                head = after[0]
                document = documents.get(head.job_id)
                if document is None:
                    job = state.job(head.job_id)
                    document = job.document if job is not None else "{}"
                payload["execution"] = next_execution_document(head, document)
            out.append(Notification(thing, f"{prefix}/notify-next", payload))
    return tuple(out)


def notify_payload(pending: list[JobExecution], now: float) -> dict[str, Any]:
    """A ListNotification: ``{"timestamp", "jobs": {status: [JobExecutionSummary]}}`` [NOTIFY].

    At most ten executions, IN_PROGRESS before QUEUED; a status with none is left out, so an
    empty list gives ``"jobs": {}`` as in [NOTIFY]'s force-delete example.
    """
    jobs: dict[str, list[dict[str, Any]]] = {}
    for execution in pending_order(pending)[:NOTIFY_LIST_MAX]:
        jobs.setdefault(execution.status.value, []).append(execution_summary(execution))
    return {"timestamp": seconds(now), "jobs": jobs}


def next_execution_document(execution: JobExecution, document: str) -> dict[str, Any]:
    """The ``execution`` of a NextNotification, as [NOTIFY]'s examples write it.

    jobId, status, queuedAt, startedAt (once started), lastUpdatedAt, versionNumber,
    executionNumber and the job document as JSON; ``statusDetails`` when some are set (the
    examples have none, so whether AWS includes them is not shown). No ``thingName``: the topic
    names the thing.
    """
    payload: dict[str, Any] = {
        "jobId": execution.job_id,
        "status": execution.status.value,
        "queuedAt": seconds(execution.queued_at),
    }
    if execution.started_at is not None:
        payload["startedAt"] = seconds(execution.started_at)
    payload["lastUpdatedAt"] = seconds(execution.last_updated_at)
    payload["versionNumber"] = execution.version_number
    payload["executionNumber"] = execution.execution_number
    if execution.status_details:
        payload["statusDetails"] = dict(execution.status_details)
    payload["jobDocument"] = job_document_object(document)
    return payload


def _executions_after(
    current: list[JobExecution],
    changes: Changes,
    *,
    thing: str | None = None,
    job: str | None = None,
) -> list[JobExecution]:
    """One thing's (or one job's) executions ``current`` with ``changes`` applied."""
    deleted: set[ExecutionKey] = set(changes.deleted_executions)
    by_key = {
        e.key: e for e in current if e.key not in deleted and e.job_id not in changes.deleted_jobs
    }
    for execution in changes.executions:
        if (thing is None or execution.thing_name == thing) and (
            job is None or execution.job_id == job
        ):
            by_key[execution.key] = execution
    return sorted(by_key.values(), key=lambda e: e.sequence)
