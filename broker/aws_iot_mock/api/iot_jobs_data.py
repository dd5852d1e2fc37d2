"""The ``iot-jobs-data`` REST API (AWS IoT Jobs data plane) for certificate holders over HTTPS.

Paths and shapes from botocore's ``iot-jobs-data`` 2017-09-29 model
(https://docs.aws.amazon.com/iot/latest/apireference/API_Operations_AWS_IoT_Jobs_Data_Plane.html):

- GetPendingJobExecutions: ``GET /things/{thingName}/jobs``;
- StartNextPendingJobExecution: ``PUT /things/{thingName}/jobs/$next``;
- DescribeJobExecution: ``GET /things/{thingName}/jobs/{jobId}`` (``includeJobDocument``,
  ``executionNumber`` in the query);
- UpdateJobExecution: ``POST /things/{thingName}/jobs/{jobId}``.

Each is authorized with the IoT policy action ``iotjobsdata:<Operation>`` on
``arn:aws:iot:<region>:<account>:thing/<thingName>``: "These job execution policy actions apply
only to the HTTP TLS endpoint" (https://docs.aws.amazon.com/iot/latest/developerguide/
iot-data-plane-jobs.html). A refusal is ``403 ForbiddenException`` ("Forbidden"), as the
iot-data API answers. The operation itself is the Jobs service's (``JobsService.handle_https``),
so an update made here notifies MQTT subscribers exactly as one made over MQTT.

AWS serves this API under its own endpoint prefix (``data.jobs.iot``, the ``iot:Jobs`` endpoint
type), but its paths do not collide with iot-data's, and AWS's "Devices and jobs" page has
devices use their ``iot:Data-ATS`` endpoint for HTTP TLS too
(https://docs.aws.amazon.com/iot/latest/developerguide/jobs-devices.html); so the HTTPS X.509
doors answer it by path, whatever host name the client sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final

from aws_iot_mock.api.iot_data import ApiCaller
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response
from aws_iot_mock.logs.cloudwatch import EventType, Reason, event_failure, service_record
from aws_iot_mock.services.jobs import JobsService

__all__ = ["IotJobsDataApi", "is_jobs_data_path"]

Emit = Callable[[Mapping[str, object]], None]

_EVENTS: Final = {
    "GetPendingJobExecutions": EventType.GET_PENDING_JOB_EXECUTIONS,
    "StartNextPendingJobExecution": EventType.START_NEXT_PENDING_JOB_EXECUTION,
    "DescribeJobExecution": EventType.DESCRIBE_JOB_EXECUTION,
    "UpdateJobExecution": EventType.UPDATE_JOB_EXECUTION,
}


def is_jobs_data_path(segments: list[str]) -> bool:
    """Whether a request path (decoded segments) is ``/things/{thingName}/jobs[/...]``."""
    return len(segments) >= 3 and segments[0] == "things" and segments[2] == "jobs"


def _operation(method: str, segments: list[str]) -> str | None:
    """The modelled operation at ``method`` and ``segments``, or None."""
    if len(segments) == 3:
        return "GetPendingJobExecutions" if method == "GET" else None
    if len(segments) != 4:
        return None
    if method == "PUT" and segments[3] == "$next":
        return "StartNextPendingJobExecution"
    return {"GET": "DescribeJobExecution", "POST": "UpdateJobExecution"}.get(method)


class IotJobsDataApi:
    """Answers iot-jobs-data requests for authenticated callers.

    Args:
        jobs: the Jobs service.
        emit: writes an AWSIotLogsV2 record.
        log_successes: whether INFO records are written.
    """

    def __init__(self, jobs: JobsService, *, emit: Emit, log_successes: bool = True) -> None:
        self._jobs = jobs
        self._emit = emit
        self._log_successes = log_successes

    async def handle(
        self, request: HttpRequest, caller: ApiCaller, request_id: str
    ) -> HttpResponse:
        """Answer one request (never raises for anything a client can send)."""
        try:
            segments = request.path_segments()
        except UnicodeDecodeError:
            error = AwsApiError("InvalidRequestException", "The path is not valid UTF-8")
            return error_response(error, request_id)
        operation = _operation(request.method, segments)
        thing_name = segments[1]
        if operation is not None:
            decision = caller.permissions.check(f"iotjobsdata:{operation}", "thing", thing_name)
            if not decision.allowed:
                self._emit(
                    event_failure(
                        _EVENTS[operation],
                        Reason.AUTHORIZATION_FAILURE,
                        f"Authorization Failure: {decision.details}",
                        caller.facts,
                        topic_name=request.path,
                        trace_id=request_id,
                    )
                )
                return error_response(AwsApiError("ForbiddenException", "Forbidden"), request_id)
        outcome = self._jobs.handle_https(
            request.method, request.path, request.query(), request.body
        )
        if outcome.status != 200 or self._log_successes:
            failure = None
            if outcome.status != 200:
                headers = dict(outcome.headers)
                message = json.loads(outcome.body).get("message", "")
                failure = (headers.get("x-amzn-ErrorType", ""), str(message))
            self._emit(
                service_record(
                    _EVENTS.get(operation or "", EventType.DESCRIBE_JOB_EXECUTION),
                    caller.facts,
                    attributes={"thingName": thing_name},
                    failure=failure,
                    trace_id=request_id,
                )
            )
        return HttpResponse(
            outcome.status, (*outcome.headers, ("x-amzn-RequestId", request_id)), outcome.body
        )
