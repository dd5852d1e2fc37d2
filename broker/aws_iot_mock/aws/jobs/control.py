"""The AWS IoT Jobs control plane (the ``iot`` service's job verbs) over `JobsState`. Pure.

Each verb takes the request members botocore's ``iot`` model defines (path, query and body
members alike, by their model names), returns the response document and an `Outcome` (changes to
commit first, notifications to publish after), and raises `AwsApiError` with the model's
exception names. Thing groups belong to the registry: verbs that need a group's members take a
``group_members`` callable.

Sources: the AWS IoT API reference pages of each verb (e.g.
https://docs.aws.amazon.com/iot/latest/apireference/API_CreateJob.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_CancelJob.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_CancelJobExecution.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteJob.html,
https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteJobExecution.html), the same text
in botocore's ``iot`` model, and "Jobs and job execution states",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-jobs-lifecycle.html ([LIFE]).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.api_pages import page
from aws_iot_mock.aws.jobs.effects import Outcome, settle
from aws_iot_mock.aws.jobs.model import (
    JOB_DOCUMENT_MAX,
    JOB_ID_PATTERN,
    STEP_TIMEOUT_MAX_MINUTES,
    THING_NAME_PATTERN,
    Changes,
    ExecutionStatus,
    Job,
    JobExecution,
    JobsBehaviour,
    JobsState,
    JobStatus,
    TargetSelection,
    arn_prefix,
    check_status_details,
)

__all__ = [
    "ASSOCIATE_TARGETS_MAX",
    "GroupMembers",
    "associate_targets_with_job",
    "cancel_job",
    "cancel_job_execution",
    "create_job",
    "delete_job",
    "delete_job_execution",
    "describe_job",
    "describe_job_execution",
    "list_job_executions_for_job",
    "list_job_executions_for_thing",
    "list_jobs",
    "thing_added_to_thing_group",
    "thing_removed_from_thing_group",
]

GroupMembers = Callable[[str], Collection[str] | None]
"""Resolves a thing-group ARN to the names of its member things; None if no such group."""

# "AssociateTargetsWithJob ... No more than 100 targets can be associated with a job"
# (API_AssociateTargetsWithJob).
ASSOCIATE_TARGETS_MAX: Final = 100
# "targets ... Array Members: Minimum number of 1 item", each "Maximum length of 2048"
# (API_CreateJob; botocore TargetArn).
_TARGET_ARN_MAX: Final = 2048
_TARGET_ARN: Final = re.compile(
    r"arn:aws:iot:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>thing|thinggroup)/(?P<name>.+)"
)
# "description ... Maximum length of 2028. Pattern: [^\p{C}]+" (API_CreateJob).
_DESCRIPTION_MAX: Final = 2028
# "reasonCode ... Maximum length of 128. Pattern: [\p{Upper}\p{Digit}_]+" (API_CancelJob).
_REASON_CODE: Final = re.compile(r"[A-Z0-9_]{1,128}")
# Members CreateJob accepts and DescribeJob echoes, but that the emulator does not act on: roll
# out all at once, never abort, never retry, never presign (see docs/jobs-reference.md).
_STORED_MEMBERS: Final = (
    "presignedUrlConfig",
    "jobExecutionsRolloutConfig",
    "abortConfig",
    "jobExecutionsRetryConfig",
    "namespaceId",
    "jobTemplateArn",
    "documentParameters",
    "schedulingConfig",
    "destinationPackageVersions",
    "tags",
)
# Which of them DescribeJob's Job shape has (botocore iot ``Job``): all but the tags.
_ECHOED_MEMBERS: Final = tuple(name for name in _STORED_MEMBERS if name != "tags")


def create_job(
    state: JobsState,
    request: Mapping[str, Any],
    *,
    region: str,
    account_id: str,
    group_members: GroupMembers,
    thing_exists: Callable[[str], bool] | None = None,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[dict[str, Any], Outcome]:
    """CreateJob: store the job and queue one execution per target thing.

    Executions are all queued at once (rollout configuration is stored, not emulated), with
    ``versionNumber`` 1 (AWS's examples show both 0 and 1 for a new execution; UNCONFIRMED) and
    ``executionNumber`` 1. A thing that is targeted twice (directly and through a group) gets
    one execution. The job document must be a JSON object: devices receive it parsed over MQTT.

    Args:
        state: the current state.
        request: CreateJobRequest members (``jobId``, ``targets``, ``document``, ...).
        region: this endpoint's region, for the job ARN and to check target ARNs.
        account_id: the account, likewise.
        group_members: resolves a thing-group target.
        thing_exists: says whether a thing target exists (None: do not check).
        now: epoch seconds.
        behaviour: the configurable choices and limits.

    Returns:
        ``{"jobArn", "jobId", "description"}`` and the outcome.

    Raises:
        AwsApiError: InvalidRequestException, ResourceAlreadyExistsException,
            ResourceNotFoundException (a target that does not exist), LimitExceededException.
    """
    job_id = _job_id(request.get("jobId"))
    if state.job(job_id) is not None:
        raise AwsApiError("ResourceAlreadyExistsException", f"Job {job_id} already exists")
    if len(state) >= behaviour.max_jobs:
        raise AwsApiError(
            "LimitExceededException", f"This emulator holds at most {behaviour.max_jobs} jobs"
        )
    active = sum(1 for job in state.jobs() if job.status == JobStatus.IN_PROGRESS)
    if active >= behaviour.max_active_jobs:
        raise AwsApiError(
            "LimitExceededException",
            f"At most {behaviour.max_active_jobs} jobs can be in progress",
        )
    if request.get("documentSource") is not None:
        raise AwsApiError(
            "InvalidRequestException",
            "aws-iot-mock does not fetch job documents from S3 (documentSource); "
            "pass the document inline",
        )
    document = request.get("document")
    if document is None:
        raise AwsApiError(
            "InvalidRequestException", "document is required when documentSource is not given"
        )
    _check_document(document)
    description = _description(request.get("description"))
    selection = request.get("targetSelection", TargetSelection.SNAPSHOT.value)
    if selection not in TargetSelection.__members__:
        raise AwsApiError(
            "InvalidRequestException", "targetSelection must be SNAPSHOT or CONTINUOUS"
        )
    timeout = _in_progress_timeout(request.get("timeoutConfig"))
    targets = _targets(request.get("targets"), region=region, account_id=account_id)
    things = _resolve_targets(targets, group_members, thing_exists)
    job = Job(
        job_id=job_id,
        job_arn=f"arn:aws:iot:{region}:{account_id}:job/{job_id}",
        document=document,
        targets=targets,
        target_selection=TargetSelection(selection),
        status=JobStatus.IN_PROGRESS,
        created_at=now,
        last_updated_at=now,
        description=description,
        in_progress_timeout_minutes=timeout,
        stored_config={
            name: request[name] for name in _STORED_MEMBERS if request.get(name) is not None
        },
    )
    sequences = state.allocate_sequences(len(things))
    executions = tuple(
        _queued(job_id, thing, 1, now, sequence)
        for thing, sequence in zip(things, sequences, strict=True)
    )
    changes = Changes(jobs=(job,), executions=executions)
    if not executions and job.target_selection == TargetSelection.SNAPSHOT:
        # A snapshot job with nothing to run has all (none) of its executions terminal [LIFE].
        changes = Changes(
            jobs=(replace(job, status=JobStatus.COMPLETED, completed_at=now),),
        )
    return _job_reply(job), settle(state, changes, now, behaviour)


def describe_job(state: JobsState, job_id: str) -> dict[str, Any]:
    """DescribeJob: ``{"job": Job}`` with ``jobProcessDetails`` counted from the executions.

    Raises:
        AwsApiError: ResourceNotFoundException.
    """
    job = _job(state, job_id)
    counts = dict.fromkeys(_COUNT_NAMES.values(), 0)
    for execution in state.executions_of_job(job_id):
        counts[_COUNT_NAMES[execution.status]] += 1
    body: dict[str, Any] = {
        "jobArn": job.job_arn,
        "jobId": job.job_id,
        "targetSelection": job.target_selection.value,
        "status": job.status.value,
        "targets": list(job.targets),
        "createdAt": job.created_at,
        "lastUpdatedAt": job.last_updated_at,
        "jobProcessDetails": counts,
        "isConcurrent": False,
    }
    if job.force_canceled is not None:
        body["forceCanceled"] = job.force_canceled
    for name, value in (
        ("reasonCode", job.reason_code),
        ("comment", job.comment),
        ("description", job.description),
        ("completedAt", job.completed_at),
    ):
        if value is not None:
            body[name] = value
    if job.in_progress_timeout_minutes is not None:
        body["timeoutConfig"] = {"inProgressTimeoutInMinutes": job.in_progress_timeout_minutes}
    for name in _ECHOED_MEMBERS:
        if name in job.stored_config:
            body[name] = job.stored_config[name]
    return {"job": body}


def list_jobs(
    state: JobsState,
    *,
    status: str | None = None,
    target_selection: str | None = None,
    thing_group_name: str | None = None,
    thing_group_id: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListJobs: JobSummary items in creation order, paginated with ``nextToken``.

    Raises:
        AwsApiError: InvalidRequestException (bad filter or token; ``thingGroupId``, which the
            emulator cannot resolve without the registry's group IDs).
    """
    if thing_group_id is not None:
        raise AwsApiError(
            "InvalidRequestException",
            "aws-iot-mock filters jobs by thingGroupName only, not thingGroupId",
        )
    if status is not None and status not in JobStatus.__members__:
        raise AwsApiError("InvalidRequestException", f"Invalid status: {status[:40]}")
    if target_selection is not None and target_selection not in TargetSelection.__members__:
        raise AwsApiError(
            "InvalidRequestException", "targetSelection must be SNAPSHOT or CONTINUOUS"
        )
    jobs = [
        job
        for job in state.jobs()
        if (status is None or job.status == status)
        and (target_selection is None or job.target_selection == target_selection)
        and (
            thing_group_name is None
            or any(t.endswith(f":thinggroup/{thing_group_name}") for t in job.targets)
        )
    ]
    items_page, token = page(jobs, max_results, next_token)
    summaries = []
    for job in items_page:
        summary: dict[str, Any] = {
            "jobArn": job.job_arn,
            "jobId": job.job_id,
            "targetSelection": job.target_selection.value,
            "status": job.status.value,
            "createdAt": job.created_at,
            "lastUpdatedAt": job.last_updated_at,
            "isConcurrent": False,
        }
        if job.completed_at is not None:
            summary["completedAt"] = job.completed_at
        summaries.append(summary)
    return _with_token({"jobs": summaries}, token)


def cancel_job(
    state: JobsState,
    job_id: str,
    *,
    force: bool = False,
    reason_code: str | None = None,
    comment: str | None = None,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[dict[str, Any], Outcome]:
    """CancelJob: the job becomes CANCELED, and so do its QUEUED executions.

    "If true job executions with status "IN_PROGRESS" and "QUEUED" are canceled, otherwise only
    job executions with status "QUEUED" are canceled" (API_CancelJob ``force``). A COMPLETED job
    cannot be canceled (InvalidRequestException: CancelJob lists no InvalidStateTransition); a
    CANCELED one can be canceled again, so ``force`` can follow a plain cancel (UNCONFIRMED).

    Returns:
        ``{"jobArn", "jobId", "description"}`` and the outcome.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException.
    """
    job = _job(state, job_id)
    if job.status == JobStatus.COMPLETED:
        raise AwsApiError(
            "InvalidRequestException", f"Job {job_id} is COMPLETED and cannot be canceled"
        )
    if reason_code is not None and not _REASON_CODE.fullmatch(reason_code):
        raise AwsApiError(
            "InvalidRequestException", "reasonCode must be 1-128 characters of [A-Z0-9_]"
        )
    if comment is not None:
        _description(comment, name="comment")
    forced = bool(force) or bool(job.force_canceled)
    canceled = replace(
        job,
        status=JobStatus.CANCELED,
        force_canceled=forced,
        reason_code=reason_code if reason_code is not None else job.reason_code,
        comment=comment if comment is not None else job.comment,
        last_updated_at=now,
        completed_at=job.completed_at if job.completed_at is not None else now,
    )
    stopped = tuple(
        _cancel(execution, now, forced=execution.status == ExecutionStatus.IN_PROGRESS)
        for execution in state.executions_of_job(job_id)
        if execution.status == ExecutionStatus.QUEUED
        or (force and execution.status == ExecutionStatus.IN_PROGRESS)
    )
    outcome = settle(state, Changes(jobs=(canceled,), executions=stopped), now, behaviour)
    return _job_reply(canceled), outcome


def delete_job(
    state: JobsState, job_id: str, *, force: bool = False, now: float, behaviour: JobsBehaviour
) -> Outcome:
    """DeleteJob: the job and all its executions go at once.

    "When true, you can delete a job which is "IN_PROGRESS". Otherwise, you can only delete a job
    which is in a terminal state ("COMPLETED" or "CANCELED") or an exception will occur"
    (API_DeleteJob ``force``); the exception is InvalidStateTransitionException. AWS passes
    through DELETION_IN_PROGRESS; locally deletion is immediate.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidStateTransitionException.
    """
    job = _job(state, job_id)
    if job.status == JobStatus.IN_PROGRESS and not force:
        raise AwsApiError(
            "InvalidStateTransitionException",
            f"Job {job_id} is IN_PROGRESS; cancel it first or delete it with force",
        )
    return settle(state, Changes(deleted_jobs=(job_id,)), now, behaviour)


def describe_job_execution(
    state: JobsState, job_id: str, thing_name: str, *, execution_number: int | None = None
) -> dict[str, Any]:
    """DescribeJobExecution (control plane): ``{"execution": JobExecution}`` (``iot`` shape).

    Unlike the device API's shape it has ``thingArn`` and ``forceCanceled``, wraps the details
    as ``statusDetails.detailsMap``, and has no document.

    Raises:
        AwsApiError: ResourceNotFoundException.
    """
    execution = _execution(state, job_id, thing_name, execution_number)
    job = state.job(job_id)
    prefix = arn_prefix(job.job_arn) if job is not None else ""
    body: dict[str, Any] = {
        "jobId": execution.job_id,
        "status": execution.status.value,
        "forceCanceled": execution.force_canceled,
        "statusDetails": {"detailsMap": dict(execution.status_details)},
        "thingArn": f"{prefix}thing/{execution.thing_name}",
        "queuedAt": execution.queued_at,
        "lastUpdatedAt": execution.last_updated_at,
        "executionNumber": execution.execution_number,
        "versionNumber": execution.version_number,
    }
    if execution.started_at is not None:
        body["startedAt"] = execution.started_at
    return {"execution": body}


def list_job_executions_for_job(
    state: JobsState,
    job_id: str,
    *,
    status: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListJobExecutionsForJob: ``{"executionSummaries": [{thingArn, jobExecutionSummary}]}``.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException.
    """
    job = _job(state, job_id)
    executions = _filter_status(state.executions_of_job(job_id), status)
    items_page, token = page(executions, max_results, next_token)
    prefix = arn_prefix(job.job_arn)
    items = [
        {"thingArn": f"{prefix}thing/{e.thing_name}", "jobExecutionSummary": _summary(e)}
        for e in items_page
    ]
    return _with_token({"executionSummaries": items}, token)


def list_job_executions_for_thing(
    state: JobsState,
    thing_name: str,
    *,
    status: str | None = None,
    job_id: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> dict[str, Any]:
    """ListJobExecutionsForThing: ``{"executionSummaries": [{jobId, jobExecutionSummary}]}``.

    Raises:
        AwsApiError: InvalidRequestException.
    """
    if not THING_NAME_PATTERN.fullmatch(thing_name):
        raise AwsApiError(
            "InvalidRequestException", "thingName must be 1-128 characters of [a-zA-Z0-9:_-]"
        )
    executions = [
        e
        for e in _filter_status(state.executions_of_thing(thing_name), status)
        if job_id is None or e.job_id == job_id
    ]
    items_page, token = page(executions, max_results, next_token)
    items = [{"jobId": e.job_id, "jobExecutionSummary": _summary(e)} for e in items_page]
    return _with_token({"executionSummaries": items}, token)


def cancel_job_execution(
    state: JobsState,
    job_id: str,
    thing_name: str,
    *,
    force: bool = False,
    expected_version: int | None = None,
    status_details: Mapping[str, Any] | None = None,
    now: float,
    behaviour: JobsBehaviour,
) -> Outcome:
    """CancelJobExecution: the thing's latest execution of the job becomes CANCELED.

    "If you attempt to cancel a job execution that is IN_PROGRESS, and you do not set force to
    true, then an InvalidStateTransitionException will be thrown" (API_CancelJobExecution);
    a terminal execution cannot be canceled either. ``expectedVersion`` is checked first
    (VersionConflictException, the model's name for the "VersionMismatch" the text describes).
    ``statusDetails`` holds "at most 10 name/value pairs".

    Raises:
        AwsApiError: ResourceNotFoundException, VersionConflictException,
            InvalidStateTransitionException, InvalidRequestException.
    """
    execution = _execution(state, job_id, thing_name, None)
    details: dict[str, str] | None = None
    if status_details is not None:
        try:
            details = check_status_details(status_details, max_pairs=10)
        except ValueError as exc:
            raise AwsApiError("InvalidRequestException", str(exc)) from None
    if expected_version is not None and expected_version != execution.version_number:
        raise AwsApiError(
            "VersionConflictException",
            f"The expected version {expected_version} does not match the job execution's "
            f"version {execution.version_number}",
        )
    if execution.terminal or (execution.status == ExecutionStatus.IN_PROGRESS and not force):
        raise AwsApiError(
            "InvalidStateTransitionException",
            f"Job execution {job_id} for thing {thing_name} is {execution.status.value}"
            + ("; cancel it with force" if not execution.terminal else ""),
        )
    canceled = _cancel(execution, now, forced=execution.status == ExecutionStatus.IN_PROGRESS)
    if details is not None:
        merged = {**execution.status_details, **details}
        canceled = replace(
            canceled, status_details=merged if behaviour.merge_status_details else details
        )
    return settle(state, Changes(executions=(canceled,)), now, behaviour)


def delete_job_execution(
    state: JobsState,
    job_id: str,
    thing_name: str,
    execution_number: int,
    *,
    force: bool = False,
    now: float,
    behaviour: JobsBehaviour,
) -> Outcome:
    """DeleteJobExecution: remove one execution.

    "When true, you can delete a job execution which is "IN_PROGRESS". Otherwise, you can only
    delete a job execution which is in a terminal state" (API_DeleteJobExecution ``force``); so
    a QUEUED execution also needs ``force``.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidStateTransitionException.
    """
    execution = _execution(state, job_id, thing_name, execution_number)
    if not execution.terminal and not force:
        raise AwsApiError(
            "InvalidStateTransitionException",
            f"Job execution {job_id} for thing {thing_name} is {execution.status.value}; "
            "only a terminal execution can be deleted without force",
        )
    return settle(state, Changes(deleted_executions=(execution.key,)), now, behaviour)


def associate_targets_with_job(
    state: JobsState,
    job_id: str,
    targets: Sequence[str],
    *,
    comment: str | None = None,
    group_members: GroupMembers,
    thing_exists: Callable[[str], bool] | None = None,
    now: float,
    behaviour: JobsBehaviour,
) -> tuple[dict[str, Any], Outcome]:
    """AssociateTargetsWithJob: add targets to a continuous job and queue their things.

    "The job must have been created with the targetSelection field set to "CONTINUOUS"", "The job
    status must currently be "IN_PROGRESS"", "No more than 100 targets can be associated with a
    job" (API_AssociateTargetsWithJob). Things that already have a pending execution of the job
    are left alone.

    Raises:
        AwsApiError: ResourceNotFoundException, InvalidRequestException, LimitExceededException.
    """
    job = _job(state, job_id)
    if job.target_selection != TargetSelection.CONTINUOUS or job.status != JobStatus.IN_PROGRESS:
        raise AwsApiError(
            "InvalidRequestException",
            "Targets can only be associated with a CONTINUOUS job that is IN_PROGRESS",
        )
    if comment is not None:
        _description(comment, name="comment")
    prefix = arn_prefix(job.job_arn).split(":")
    added = _targets(targets, region=prefix[3], account_id=prefix[4])
    merged = tuple(dict.fromkeys(job.targets + added))
    if len(merged) > ASSOCIATE_TARGETS_MAX:
        raise AwsApiError(
            "LimitExceededException",
            f"No more than {ASSOCIATE_TARGETS_MAX} targets can be associated with a job",
        )
    things = _resolve_targets(added, group_members, thing_exists)
    updated = replace(job, targets=merged, last_updated_at=now)
    executions = _queue_for(state, job, things, now)
    outcome = settle(state, Changes(jobs=(updated,), executions=executions), now, behaviour)
    return _job_reply(updated), outcome


def thing_added_to_thing_group(
    state: JobsState, thing_name: str, group_arn: str, *, now: float, behaviour: JobsBehaviour
) -> Outcome:
    """Queue the continuous jobs that target ``group_arn`` for a thing that just joined it.

    "If continuous, the job may also be run on a thing when a change is detected in a target.
    For example, a job will run on a thing when the thing is added to a target group"
    (API_CreateJob ``targetSelection``). Only IN_PROGRESS continuous jobs run. A thing that
    already has an execution of the job gets a new one only if its latest was REMOVED ("You can
    re-attach the thing to your target group and restart the job execution" [LIFE]); the new
    one has the next ``executionNumber``.

    The shell calls this after the registry added the thing to the group.
    """
    jobs = [
        job
        for job in state.jobs()
        if job.target_selection == TargetSelection.CONTINUOUS
        and job.status == JobStatus.IN_PROGRESS
        and group_arn in job.targets
    ]
    executions: list[JobExecution] = []
    for job in jobs:
        executions.extend(_queue_for(state, job, [thing_name], now, first=len(executions)))
    return settle(state, Changes(executions=tuple(executions)), now, behaviour)


def thing_removed_from_thing_group(
    state: JobsState,
    thing_name: str,
    group_arn: str,
    *,
    group_members: GroupMembers,
    now: float,
    behaviour: JobsBehaviour,
) -> Outcome:
    """Mark REMOVED the QUEUED executions a thing no longer qualifies for after leaving a group.

    "When your device is no longer a valid target for the job execution, such as when it's
    detached from a dynamic thing group, AWS IoT Jobs sets the job execution status to REMOVED"
    [LIFE]; the lifecycle lists the move only from QUEUED. Executions stay when the thing is still
    a target directly or through another group. The shell calls this after the registry change,
    so ``group_members`` already reflects it.
    """
    removed: list[JobExecution] = []
    for job in state.jobs():
        if job.target_selection != TargetSelection.CONTINUOUS or group_arn not in job.targets:
            continue
        execution = state.latest_execution(thing_name, job.job_id)
        if execution is None or execution.status != ExecutionStatus.QUEUED:
            continue
        if _still_targeted(job, thing_name, group_members):
            continue
        removed.append(
            replace(
                execution,
                status=ExecutionStatus.REMOVED,
                version_number=execution.version_number + 1,
                last_updated_at=now,
            )
        )
    return settle(state, Changes(executions=tuple(removed)), now, behaviour)


# -- helpers -------------------------------------------------------------------------------------

_COUNT_NAMES: Final = {
    ExecutionStatus.CANCELED: "numberOfCanceledThings",
    ExecutionStatus.SUCCEEDED: "numberOfSucceededThings",
    ExecutionStatus.FAILED: "numberOfFailedThings",
    ExecutionStatus.REJECTED: "numberOfRejectedThings",
    ExecutionStatus.QUEUED: "numberOfQueuedThings",
    ExecutionStatus.IN_PROGRESS: "numberOfInProgressThings",
    ExecutionStatus.REMOVED: "numberOfRemovedThings",
    ExecutionStatus.TIMED_OUT: "numberOfTimedOutThings",
}


def _job(state: JobsState, job_id: str) -> Job:
    job = state.job(job_id) if isinstance(job_id, str) else None
    if job is None:
        raise AwsApiError("ResourceNotFoundException", f"Job {str(job_id)[:64]} does not exist")
    return job


def _execution(
    state: JobsState, job_id: str, thing_name: str, execution_number: int | None
) -> JobExecution:
    execution = (
        state.latest_execution(thing_name, job_id)
        if execution_number is None
        else state.execution((thing_name, job_id, execution_number))
    )
    if execution is None:
        raise AwsApiError(
            "ResourceNotFoundException",
            f"Job execution {str(job_id)[:64]} for thing {str(thing_name)[:128]} does not exist",
        )
    return execution


def _job_reply(job: Job) -> dict[str, Any]:
    reply: dict[str, Any] = {"jobArn": job.job_arn, "jobId": job.job_id}
    if job.description is not None:
        reply["description"] = job.description
    return reply


def _queued(job_id: str, thing: str, number: int, now: float, sequence: int) -> JobExecution:
    return JobExecution(
        job_id=job_id,
        thing_name=thing,
        execution_number=number,
        status=ExecutionStatus.QUEUED,
        queued_at=now,
        last_updated_at=now,
        version_number=1,
        sequence=sequence,
    )


def _queue_for(
    state: JobsState, job: Job, things: Sequence[str], now: float, *, first: int = 0
) -> tuple[JobExecution, ...]:
    """New QUEUED executions of ``job`` for those ``things`` that have none, or a REMOVED one."""
    wanted: list[tuple[str, int]] = []
    for thing in things:
        latest = state.latest_execution(thing, job.job_id)
        if latest is None:
            wanted.append((thing, 1))
        elif latest.status == ExecutionStatus.REMOVED:
            wanted.append((thing, latest.execution_number + 1))
    sequences = state.allocate_sequences(first + len(wanted))[first:]
    return tuple(
        _queued(job.job_id, thing, number, now, sequence)
        for (thing, number), sequence in zip(wanted, sequences, strict=True)
    )


def _cancel(execution: JobExecution, now: float, *, forced: bool) -> JobExecution:
    return replace(
        execution,
        status=ExecutionStatus.CANCELED,
        force_canceled=forced,
        version_number=execution.version_number + 1,
        last_updated_at=now,
        step_timeout_at=None,
        in_progress_timeout_at=None,
    )


def _summary(execution: JobExecution) -> dict[str, Any]:
    """The control plane's JobExecutionSummary (botocore iot): it has ``status``."""
    summary: dict[str, Any] = {
        "status": execution.status.value,
        "queuedAt": execution.queued_at,
        "lastUpdatedAt": execution.last_updated_at,
        "executionNumber": execution.execution_number,
        "retryAttempt": 0,
    }
    if execution.started_at is not None:
        summary["startedAt"] = execution.started_at
    return summary


def _filter_status(executions: list[JobExecution], status: str | None) -> list[JobExecution]:
    if status is None:
        return executions
    if status not in ExecutionStatus.__members__:
        raise AwsApiError("InvalidRequestException", f"Invalid status: {status[:40]}")
    return [e for e in executions if e.status == status]


def _still_targeted(job: Job, thing_name: str, group_members: GroupMembers) -> bool:
    for target in job.targets:
        match = _TARGET_ARN.fullmatch(target)
        if match is None:
            continue
        if match["kind"] == "thing" and match["name"] == thing_name:
            return True
        if match["kind"] == "thinggroup":
            members = group_members(target)
            if members is not None and thing_name in members:
                return True
    return False


def _job_id(value: object) -> str:
    if not isinstance(value, str) or not JOB_ID_PATTERN.fullmatch(value):
        raise AwsApiError(
            "InvalidRequestException", "jobId must be 1-64 characters of [a-zA-Z0-9_-]"
        )
    return value


def _check_document(document: object) -> None:
    if not isinstance(document, str) or len(document) > JOB_DOCUMENT_MAX:
        raise AwsApiError(
            "InvalidRequestException",
            f"document must be a string of at most {JOB_DOCUMENT_MAX} characters",
        )
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # Devices receive the document as a JSON object over MQTT (jobs-comm-notifications.html
        # examples; the Device SDK types it as a dict).
        raise AwsApiError("InvalidRequestException", "The job document must be a JSON object")


def _description(value: object, *, name: str = "description") -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= _DESCRIPTION_MAX
        or any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value)
    ):
        raise AwsApiError(
            "InvalidRequestException",
            f"{name} must be 1-{_DESCRIPTION_MAX} characters without control characters",
        )
    return value


def _in_progress_timeout(config: object) -> int | None:
    if config is None:
        return None
    minutes = config.get("inProgressTimeoutInMinutes") if isinstance(config, dict) else False
    if minutes is None:
        return None
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not 1 <= minutes <= STEP_TIMEOUT_MAX_MINUTES
    ):
        # "between 1 minute and 7 days (1 to 10080 minutes)" (API_TimeoutConfig).
        raise AwsApiError(
            "InvalidRequestException",
            f"timeoutConfig.inProgressTimeoutInMinutes must be 1-{STEP_TIMEOUT_MAX_MINUTES}",
        )
    return minutes


def _targets(value: object, *, region: str, account_id: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise AwsApiError("InvalidRequestException", "targets must list at least one ARN")
    targets: list[str] = []
    for target in value:
        match = _TARGET_ARN.fullmatch(target) if isinstance(target, str) else None
        if match is None or len(target) > _TARGET_ARN_MAX:
            raise AwsApiError(
                "InvalidRequestException",
                f"Invalid target {str(target)[:100]!r}: expected "
                "arn:aws:iot:<region>:<account>:thing/<name> or .../thinggroup/<name>",
            )
        if match["region"] != region or match["account"] != account_id:
            raise AwsApiError(
                "InvalidRequestException",
                f"Target {target[:100]} is not in region {region} of account {account_id}",
            )
        targets.append(target)
    return tuple(dict.fromkeys(targets))


def _resolve_targets(
    targets: Sequence[str],
    group_members: GroupMembers,
    thing_exists: Callable[[str], bool] | None,
) -> list[str]:
    things: dict[str, None] = {}
    for target in targets:
        match = _TARGET_ARN.fullmatch(target)
        assert match is not None  # _targets checked every target
        if match["kind"] == "thing":
            name = match["name"]
            if thing_exists is not None and not thing_exists(name):
                raise AwsApiError("ResourceNotFoundException", f"Thing {name} does not exist")
            things[name] = None
        else:
            members = group_members(target)
            if members is None:
                raise AwsApiError(
                    "ResourceNotFoundException", f"Thing group {match['name']} does not exist"
                )
            things.update(dict.fromkeys(sorted(members)))
    return list(things)


def _with_token(body: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        body["nextToken"] = token
    return body
