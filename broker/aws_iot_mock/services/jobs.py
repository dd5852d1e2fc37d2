"""The AWS IoT Jobs service: device requests over MQTT and HTTPS, timers, and the control verbs.

A built-in service of the device core (``aws_iot_mock.core.services``): a device publishes to
``$aws/things/<thing>/jobs/get``, ``/start-next``, ``/<jobId>/get`` or ``/<jobId>/update``; the
request goes through the ingress like any publish (so ``iot:Publish`` on it was checked), then
the core hands it here. The pure Jobs package (``aws_iot_mock.aws.jobs``) decides; this shell
commits the changes to ``jobs.sqlite3`` **before** it answers (so ``kill -9`` after an answer
loses nothing), sends ``/accepted`` or ``/rejected`` to the requesting client only, whether or not
it subscribed ("These response messages do not pass through the message broker and they cannot
be subscribed to by other clients or rules",
https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html), and then publishes
``jobs/notify`` and ``jobs/notify-next`` through the broker to whoever subscribed.

The same class serves the ``iot-jobs-data`` HTTPS API (``handle_https``), runs the in-progress and
step timers and CONTINUOUS jobs' group membership (``tick``, once a second with the injected
clock), and is the service layer of the control-plane verbs: each takes the request members of
botocore's ``iot`` model (a dict) and returns the response members, raising ``AwsApiError``
(`JOBS_OPERATIONS` maps operation names to them; the broker adds them to its control plane,
``IotControlPlane.add_operations``). The CLI reaches a running broker's instance through the jobs
store's mailbox, answered through that same control plane.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.jobs import control, device
from aws_iot_mock.aws.jobs.effects import Notification, Outcome
from aws_iot_mock.aws.jobs.model import (
    Changes,
    ExecutionStatus,
    JobsBehaviour,
    JobStatus,
    TargetSelection,
)
from aws_iot_mock.aws.reserved_topics import JOBS
from aws_iot_mock.core.services import ServiceRequest
from aws_iot_mock.logs.cloudwatch import EventType, service_record
from aws_iot_mock.state.jobs import JobStore

__all__ = ["JOBS_OPERATIONS", "JobsService", "Operation"]

logger = logging.getLogger("aws_iot_mock.jobs")

Operation = Callable[[dict[str, Any]], dict[str, Any]]
Publish = Callable[[str, bytes], None]
# (client ID, topic, payload): the answer to one client (``DeviceCore.reply_as_service``).
Reply = Callable[[str, str, bytes], object]
Emit = Callable[[Mapping[str, object]], None]

_EVENT_TYPES: Final = {
    "get_pending": EventType.GET_PENDING_JOB_EXECUTIONS,
    "start_next": EventType.START_NEXT_PENDING_JOB_EXECUTION,
    "describe": EventType.DESCRIBE_JOB_EXECUTION,
    "update": EventType.UPDATE_JOB_EXECUTION,
    "invalid": EventType.DESCRIBE_JOB_EXECUTION,
}
_THING_GROUP_ARN: Final = re.compile(r"arn:aws:iot:[^:]*:[^:]*:thinggroup/(?P<name>.+)")
_INTERNAL = "There was an internal error during the processing of the request."


class JobsService:
    """Jobs: one in-memory state, committed to the store before every answer.

    Args:
        store: ``jobs.sqlite3``; its state is loaded now.
        region: for ARNs.
        account_id: for ARNs.
        publish: publishes a broker-made message to subscribers (``notify``, ``notify-next``);
            None where nobody is connected (the CLI without a broker).
        reply: sends an answer to the requesting MQTT client only; None likewise.
        emit: writes an AWSIotLogsV2 record.
        clock: epoch seconds (tests inject a fake one; timers follow it).
        behaviour: the choices where AWS is silent (see ``JobsBehaviour``).
        group_members: a thing group's things (its descendants' too) by group ARN, None when
            no such group (``CertificateRegistry.thing_group_members``); for group targets and
            CONTINUOUS jobs. None: no thing groups, so a group target is refused.
        thing_exists: whether a thing target exists (None: not checked).
        log_successes: whether INFO records are written.
    """

    name = JOBS
    # Every topic under jobs/ a client may publish: the four requests, and any other topic the
    # reserved-topic table gives to Jobs, answered with InvalidTopic.
    request_filters = ("$aws/things/+/jobs/#",)

    def __init__(
        self,
        store: JobStore,
        *,
        region: str,
        account_id: str,
        publish: Publish | None,
        reply: Reply | None,
        emit: Emit,
        clock: Callable[[], float],
        behaviour: JobsBehaviour | None = None,
        group_members: Callable[[str], Collection[str] | None] | None = None,
        thing_exists: Callable[[str], bool] | None = None,
        log_successes: bool = True,
    ) -> None:
        self.store = store
        self.state = store.load()
        self.behaviour = behaviour or JobsBehaviour()
        self._region = region
        self._account_id = account_id
        self._publish = publish
        self._reply = reply
        self._emit = emit
        self._clock = clock
        self._groups = group_members
        self._thing_exists = thing_exists
        self._log_successes = log_successes

    # -- the device MQTT API -----------------------------------------------------------------

    def handle(self, request: ServiceRequest) -> None:
        """Answer a publish on a Jobs request topic (a built-in service of the core)."""
        parsed = device.parse_request_topic(request.topic)
        if parsed is None:
            return
        now = self._clock()
        outcome = device.handle_mqtt_request(
            self.state, request.topic, request.payload, now=now, behaviour=self.behaviour
        )
        reply, notifications = outcome.reply, outcome.notifications
        try:
            self._commit(outcome.changes)
        except sqlite3.Error:
            # The store's failure, not the device's: answer InternalError, keep the connection.
            logger.exception("jobs store failed for %s", request.topic)
            payload = device.rejected_payload(
                device.RejectedCode.INTERNAL_ERROR,
                _INTERNAL,
                client_token=_client_token(request.payload),
                now=now,
            )
            reply = device.DeviceReply(f"{request.topic}/rejected", payload, False)
            notifications = ()
        if self._reply is not None and request.client_id is not None:
            self._reply(request.client_id, reply.topic, reply.encode())
        self._notify(notifications)
        self._log(request, parsed, reply)

    def _log(
        self, request: ServiceRequest, parsed: device.JobsTopic, reply: device.DeviceReply
    ) -> None:
        if reply.accepted and not self._log_successes:
            return
        attributes = {"topicName": request.topic, "thingName": parsed.thing_name}
        if parsed.job_id is not None:
            attributes["jobId"] = parsed.job_id
        failure = None
        if not reply.accepted:
            failure = (str(reply.payload["code"]), str(reply.payload["message"]))
        self._emit(
            service_record(
                _EVENT_TYPES[parsed.operation],
                request.facts,
                attributes=attributes,
                failure=failure,
            )
        )

    # -- the device HTTPS API (iot-jobs-data) ------------------------------------------------

    def handle_https(
        self, method: str, path: str, query: Mapping[str, str], body: bytes
    ) -> device.HttpsOutcome:
        """Answer one ``iot-jobs-data`` request; committed and notified before it returns.

        Returns:
            The HTTP answer (status, headers, body); a store failure is 503
            ``ServiceUnavailableException``.
        """
        now = self._clock()
        outcome = device.handle_https_request(
            self.state, method, path, query, body, now=now, behaviour=self.behaviour
        )
        try:
            self._commit(outcome.changes)
        except sqlite3.Error:
            logger.exception("jobs store failed for %s %s", method, path)
            status, headers, error_body = AwsApiError(
                "ServiceUnavailableException", _INTERNAL
            ).rest_response()
            return device.HttpsOutcome(status, tuple(headers), error_body)
        self._notify(outcome.notifications)
        return outcome

    # -- timers and CONTINUOUS jobs ----------------------------------------------------------

    def tick(self) -> None:
        """Time out what is due, and follow thing-group changes of CONTINUOUS jobs.

        Called once a second by the broker (AWS allows itself up to 60 s of slack on a timeout;
        here it fires within a second of the clock passing the deadline).
        """
        now = self._clock()
        due = device.next_timeout(self.state)
        try:
            if due is not None and due <= now:
                self._settle(device.due_timeouts(self.state, now, self.behaviour))
            self._follow_thing_groups(now)
        except AwsApiError:
            pass  # the store failed (logged by _settle); the next tick tries again

    def _follow_thing_groups(self, now: float) -> None:
        """Queue CONTINUOUS jobs for things that joined a target group; REMOVE those that left.

        "a job will run on a thing when the thing is added to a target group" (API_CreateJob
        ``targetSelection``); "When your device is no longer a valid target for the job execution,
        such as when it's detached from a dynamic thing group, AWS IoT Jobs sets the job
        execution status to REMOVED" (iot-jobs-lifecycle.html). Membership is read from the
        registry, so a change made by any process (CLI, API) is seen within a tick.
        """
        watched: dict[str, list[str]] = {}  # group ARN -> the jobs that target it
        for job in self.state.jobs():
            if (
                job.target_selection == TargetSelection.CONTINUOUS
                and job.status == JobStatus.IN_PROGRESS
            ):
                for target in job.targets:
                    if _THING_GROUP_ARN.fullmatch(target):
                        watched.setdefault(target, []).append(job.job_id)
        for target, job_ids in watched.items():
            members = self._group_members(target) or ()
            for thing in members:
                if any(self._may_join(thing, job_id) for job_id in job_ids):
                    self._settle(
                        control.thing_added_to_thing_group(
                            self.state, thing, target, now=now, behaviour=self.behaviour
                        )
                    )
            left = {
                execution.thing_name
                for job_id in job_ids
                for execution in self.state.executions_of_job(job_id)
                if execution.status == ExecutionStatus.QUEUED
                and execution.thing_name not in members
            }
            for thing in sorted(left):
                self._settle(
                    control.thing_removed_from_thing_group(
                        self.state,
                        thing,
                        target,
                        group_members=self._group_members,
                        now=now,
                        behaviour=self.behaviour,
                    )
                )

    def _may_join(self, thing: str, job_id: str) -> bool:
        """Whether a group member gets an execution of the job: none yet, or its last REMOVED."""
        latest = self.state.latest_execution(thing, job_id)
        return latest is None or latest.status == ExecutionStatus.REMOVED

    def _group_members(self, group_arn: str) -> Collection[str] | None:
        if self._groups is None or _THING_GROUP_ARN.fullmatch(group_arn) is None:
            return None
        return self._groups(group_arn)

    # -- the control plane (service layer) ---------------------------------------------------

    def operations(self) -> dict[str, Operation]:
        """Operation name -> this instance's handler (for the API door's operation table)."""
        return {name: functools.partial(handler, self) for name, handler in JOBS_OPERATIONS.items()}

    def create_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """CreateJob: ``{jobArn, jobId, description}``; queues and notifies every target."""
        reply, outcome = control.create_job(
            self.state,
            request,
            region=self._region,
            account_id=self._account_id,
            group_members=self._group_members,
            thing_exists=self._thing_exists,
            now=self._clock(),
            behaviour=self.behaviour,
        )
        self._settle(outcome)
        return reply

    def describe_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeJob: ``{job}`` with ``jobProcessDetails``."""
        return control.describe_job(self.state, _required(request, "jobId"))

    def list_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListJobs: ``{jobs, nextToken}``."""
        return control.list_jobs(
            self.state,
            status=request.get("status"),
            target_selection=request.get("targetSelection"),
            thing_group_name=request.get("thingGroupName"),
            thing_group_id=request.get("thingGroupId"),
            max_results=request.get("maxResults"),
            next_token=request.get("nextToken"),
        )

    def cancel_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """CancelJob (``force`` cancels IN_PROGRESS executions too): ``{jobArn, jobId}``."""
        reply, outcome = control.cancel_job(
            self.state,
            _required(request, "jobId"),
            force=request.get("force") is True,
            reason_code=request.get("reasonCode"),
            comment=request.get("comment"),
            now=self._clock(),
            behaviour=self.behaviour,
        )
        self._settle(outcome)
        return reply

    def delete_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteJob: no output."""
        self._settle(
            control.delete_job(
                self.state,
                _required(request, "jobId"),
                force=request.get("force") is True,
                now=self._clock(),
                behaviour=self.behaviour,
            )
        )
        return {}

    def describe_job_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        """DescribeJobExecution (control plane): ``{execution}``."""
        return control.describe_job_execution(
            self.state,
            _required(request, "jobId"),
            _required(request, "thingName"),
            execution_number=request.get("executionNumber"),
        )

    def list_job_executions_for_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListJobExecutionsForJob: ``{executionSummaries, nextToken}``."""
        return control.list_job_executions_for_job(
            self.state,
            _required(request, "jobId"),
            status=request.get("status"),
            max_results=request.get("maxResults"),
            next_token=request.get("nextToken"),
        )

    def list_job_executions_for_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        """ListJobExecutionsForThing: ``{executionSummaries, nextToken}``."""
        return control.list_job_executions_for_thing(
            self.state,
            _required(request, "thingName"),
            status=request.get("status"),
            job_id=request.get("jobId"),
            max_results=request.get("maxResults"),
            next_token=request.get("nextToken"),
        )

    def cancel_job_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        """CancelJobExecution: no output."""
        self._settle(
            control.cancel_job_execution(
                self.state,
                _required(request, "jobId"),
                _required(request, "thingName"),
                force=request.get("force") is True,
                expected_version=request.get("expectedVersion"),
                status_details=request.get("statusDetails"),
                now=self._clock(),
                behaviour=self.behaviour,
            )
        )
        return {}

    def delete_job_execution(self, request: dict[str, Any]) -> dict[str, Any]:
        """DeleteJobExecution: no output."""
        number = request.get("executionNumber")
        if isinstance(number, bool) or not isinstance(number, int):
            raise AwsApiError("InvalidRequestException", "executionNumber is required")
        self._settle(
            control.delete_job_execution(
                self.state,
                _required(request, "jobId"),
                _required(request, "thingName"),
                number,
                force=request.get("force") is True,
                now=self._clock(),
                behaviour=self.behaviour,
            )
        )
        return {}

    def associate_targets_with_job(self, request: dict[str, Any]) -> dict[str, Any]:
        """AssociateTargetsWithJob (CONTINUOUS jobs): ``{jobArn, jobId, description}``."""
        targets = request.get("targets")
        reply, outcome = control.associate_targets_with_job(
            self.state,
            _required(request, "jobId"),
            targets if isinstance(targets, list) else [],
            comment=request.get("comment"),
            group_members=self._group_members,
            thing_exists=self._thing_exists,
            now=self._clock(),
            behaviour=self.behaviour,
        )
        self._settle(outcome)
        return reply

    # -- committing and notifying ------------------------------------------------------------

    def _settle(self, outcome: Outcome) -> None:
        """Commit a control-plane or timer outcome, then publish its notifications.

        Raises:
            AwsApiError: ServiceUnavailableException when the store fails (nothing changed).
        """
        try:
            self._commit(outcome.changes)
        except sqlite3.Error as exc:
            logger.exception("jobs store failed")
            raise AwsApiError("ServiceUnavailableException", _INTERNAL) from exc
        self._notify(outcome.notifications)

    def _commit(self, changes: Changes) -> None:
        """On disk first (one transaction), then in memory."""
        if changes:
            self.store.apply(changes)
            self.state.apply(changes)

    def _notify(self, notifications: tuple[Notification, ...]) -> None:
        if self._publish is None:
            return
        for notification in notifications:
            self._publish(notification.topic, notification.encode())


JOBS_OPERATIONS: Final[Mapping[str, Callable[[JobsService, dict[str, Any]], dict[str, Any]]]] = {
    "CreateJob": JobsService.create_job,
    "DescribeJob": JobsService.describe_job,
    "ListJobs": JobsService.list_jobs,
    "CancelJob": JobsService.cancel_job,
    "DeleteJob": JobsService.delete_job,
    "DescribeJobExecution": JobsService.describe_job_execution,
    "ListJobExecutionsForJob": JobsService.list_job_executions_for_job,
    "ListJobExecutionsForThing": JobsService.list_job_executions_for_thing,
    "CancelJobExecution": JobsService.cancel_job_execution,
    "DeleteJobExecution": JobsService.delete_job_execution,
    "AssociateTargetsWithJob": JobsService.associate_targets_with_job,
}
"""botocore ``iot`` operation name -> the `JobsService` method that serves it."""


def _required(request: Mapping[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise AwsApiError("InvalidRequestException", f"{name} is required")
    return value


def _client_token(payload: bytes) -> str | None:
    """Best effort: the request's clientToken, echoed even on an InternalError."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    token = data.get("clientToken") if isinstance(data, dict) else None
    ok = isinstance(token, str) and 1 <= len(token) <= device.CLIENT_TOKEN_MAX
    return token if ok else None
