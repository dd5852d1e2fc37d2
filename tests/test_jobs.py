"""AWS IoT Jobs, pure: the device API (MQTT and HTTPS), notifications, timers, control plane.

Each case cites the AWS page it comes from:

- [MQTT] https://docs.aws.amazon.com/iot/latest/developerguide/jobs-mqtt-api.html
- [ERR] https://docs.aws.amazon.com/iot/latest/developerguide/jobs-api.html
- [NOTIFY] https://docs.aws.amazon.com/iot/latest/developerguide/jobs-comm-notifications.html
- [LIFE] https://docs.aws.amazon.com/iot/latest/developerguide/iot-jobs-lifecycle.html
- [CONF] https://docs.aws.amazon.com/iot/latest/developerguide/jobs-configurations-details.html
- [API] the API reference page of each verb, and botocore's ``iot`` / ``iot-jobs-data`` models.

The replies are also read back with the AWS IoT Device SDK v2's own models (``awsiot.iotjobs``)
and botocore's parser, so field names and types are the clients' own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import pytest
from awsiot import iotjobs

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.jobs import control, device
from aws_iot_mock.aws.jobs.effects import Notification, Outcome
from aws_iot_mock.aws.jobs.model import (
    Changes,
    ExecutionStatus,
    JobsBehaviour,
    JobsState,
    JobStatus,
)
from tests._aws_models import assert_shape, parse_response, serialize_request

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
T0 = 1517016947.0
DOC = '{"operation":"test"}'


def thing_arn(name: str) -> str:
    return f"{PREFIX}thing/{name}"


def group_arn(name: str) -> str:
    return f"{PREFIX}thinggroup/{name}"


class Rig:
    """A minimal shell: applies outcomes to the state and records what it would publish."""

    def __init__(self, behaviour: JobsBehaviour | None = None) -> None:
        self.state = JobsState()
        self.behaviour = behaviour or JobsBehaviour()
        self.groups: dict[str, set[str]] = {}
        self.published: list[Notification] = []

    def members(self, arn: str) -> Collection[str] | None:
        return self.groups.get(arn)

    def commit(self, changes: Changes, notifications: tuple[Notification, ...] = ()) -> None:
        self.state.apply(changes)
        self.published.extend(notifications)

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        out = [(n.topic, json.loads(n.encode())) for n in self.published]
        self.published.clear()
        return out

    def create(self, job_id: str, *targets: str, now: float = T0, **extra: Any) -> dict[str, Any]:
        request = {"jobId": job_id, "targets": list(targets), "document": DOC, **extra}
        reply, outcome = control.create_job(
            self.state,
            request,
            region=REGION,
            account_id=ACCOUNT,
            group_members=self.members,
            now=now,
            behaviour=self.behaviour,
        )
        self.commit(outcome.changes, outcome.notifications)
        return reply

    def mqtt(self, topic: str, request: Any, now: float = T0) -> tuple[str, dict[str, Any]]:
        payload = request if isinstance(request, bytes) else json.dumps(request).encode()
        outcome = device.handle_mqtt_request(
            self.state, topic, payload, now=now, behaviour=self.behaviour
        )
        self.commit(outcome.changes, outcome.notifications)
        return outcome.reply.topic, json.loads(outcome.reply.encode())

    def apply(self, outcome: Outcome) -> None:
        self.commit(outcome.changes, outcome.notifications)

    def https(
        self, operation: str, params: dict[str, Any], now: float = T0
    ) -> tuple[int, dict[str, Any]]:
        request = serialize_request("iot-jobs-data", operation, params)
        outcome = device.handle_https_request(
            self.state,
            request["method"],
            request["url_path"],
            request["query_string"],
            request["body"],
            now=now,
            behaviour=self.behaviour,
        )
        self.commit(outcome.changes, outcome.notifications)
        parsed = parse_response(
            "iot-jobs-data", operation, outcome.status, outcome.headers, outcome.body
        )
        if outcome.status == 200:
            assert_shape("iot-jobs-data", operation, json.loads(outcome.body))
        return outcome.status, parsed


def status_of(rig: Rig, thing: str, job: str) -> ExecutionStatus:
    execution = rig.state.latest_execution(thing, job)
    assert execution is not None
    return execution.status


# -- the worked example of [NOTIFY], message for message ------------------------------------------


def test_notifications_follow_the_worked_example_of_the_jobs_notifications_page() -> None:
    rig = Rig()
    t = "$aws/things/thing1/jobs"
    rig.create("job1", thing_arn("thing1"), now=1517016947)
    assert rig.take() == [
        (
            f"{t}/notify",
            {
                "timestamp": 1517016947,
                "jobs": {
                    "QUEUED": [
                        {
                            "jobId": "job1",
                            "queuedAt": 1517016947,
                            "lastUpdatedAt": 1517016947,
                            "executionNumber": 1,
                            "versionNumber": 1,
                        }
                    ]
                },
            },
        ),
        (
            f"{t}/notify-next",
            {
                "timestamp": 1517016947,
                "execution": {
                    "jobId": "job1",
                    "status": "QUEUED",
                    "queuedAt": 1517016947,
                    "lastUpdatedAt": 1517016947,
                    "versionNumber": 1,
                    "executionNumber": 1,
                    "jobDocument": {"operation": "test"},
                },
            },
        ),
    ]
    # "A notification is not published to the jobs/notify-next topic because the next job in the
    # queue (job1) has not changed."
    rig.create("job2", thing_arn("thing1"), now=1517017191)
    assert [topic for topic, _ in rig.take()] == [f"{t}/notify"]
    # "When job1 starts to execute ... No notifications are published"
    topic, _ = rig.mqtt(f"{t}/start-next", {}, now=1517017472)
    assert topic == f"{t}/start-next/accepted"
    assert rig.take() == []
    rig.create("job3", thing_arn("thing1"), now=1517017905)
    ((topic, notify),) = rig.take()
    assert notify["jobs"]["IN_PROGRESS"] == [
        {
            "jobId": "job1",
            "queuedAt": 1517016947,
            "lastUpdatedAt": 1517017472,
            "startedAt": 1517017472,
            "executionNumber": 1,
            "versionNumber": 2,
        }
    ]
    assert [j["jobId"] for j in notify["jobs"]["QUEUED"]] == ["job2", "job3"]
    # "When job1 is complete ... notify" then "notify-next" with job2.
    rig.mqtt(f"{t}/job1/update", {"status": "SUCCEEDED"}, now=1517186269)
    (notify_topic, notify), (next_topic, nxt) = rig.take()
    assert notify_topic == f"{t}/notify" and list(notify["jobs"]) == ["QUEUED"]
    assert next_topic == f"{t}/notify-next" and nxt["execution"]["jobId"] == "job2"
    # job3 to IN_PROGRESS: notify-next only ("No notification is published to the jobs/notify
    # topic because no job has been added or removed").
    rig.mqtt(f"{t}/job3/update", {"status": "IN_PROGRESS"}, now=1517186779)
    ((topic, nxt),) = rig.take()
    assert topic == f"{t}/notify-next"
    assert nxt == {
        "timestamp": 1517186779,
        "execution": {
            "jobId": "job3",
            "status": "IN_PROGRESS",
            "queuedAt": 1517017905,
            "startedAt": 1517186779,
            "lastUpdatedAt": 1517186779,
            "versionNumber": 2,
            "executionNumber": 1,
            "jobDocument": {"operation": "test"},
        },
    }
    # job2 REJECTED: notify with job3 only.
    rig.mqtt(f"{t}/job2/update", {"status": "REJECTED"}, now=1517189392)
    ((topic, notify),) = rig.take()
    assert topic == f"{t}/notify" and list(notify["jobs"]) == ["IN_PROGRESS"]
    # job3 force deleted: '{"timestamp": 1517189551, "jobs": {}}' and '{"timestamp": 1517189551}'.
    rig.apply(
        control.delete_job_execution(
            rig.state, "job3", "thing1", 1, force=True, now=1517189551, behaviour=rig.behaviour
        )
    )
    assert rig.take() == [
        (f"{t}/notify", {"timestamp": 1517189551, "jobs": {}}),
        (f"{t}/notify-next", {"timestamp": 1517189551}),
    ]
    # The SDK reads both events.
    event = iotjobs.JobExecutionsChangedEvent.from_payload({"timestamp": 1, "jobs": {}})
    assert event.jobs == {}


def test_notify_on_start_is_configurable() -> None:
    # [NOTIFY]'s rule list ("changes to a non-terminal status") against its worked example.
    rig = Rig(JobsBehaviour(notify_on_start=True))
    rig.create("job1", thing_arn("t"))
    rig.take()
    rig.mqtt("$aws/things/t/jobs/start-next", {})
    ((topic, notify),) = rig.take()
    assert topic == "$aws/things/t/jobs/notify"
    assert list(notify["jobs"]) == ["IN_PROGRESS"]


def test_notify_lists_at_most_ten_in_progress_first() -> None:
    # "no more than 10 pending job executions ... IN_PROGRESS job executions before QUEUED"
    rig = Rig()
    for n in range(12):
        rig.create(f"job{n:02}", thing_arn("t"), now=T0 + n)
    rig.mqtt("$aws/things/t/jobs/job11/update", {"status": "IN_PROGRESS"}, now=T0 + 20)
    rig.take()
    rig.create("job12", thing_arn("t"), now=T0 + 30)
    ((_, notify),) = rig.take()
    assert [j["jobId"] for j in notify["jobs"]["IN_PROGRESS"]] == ["job11"]
    assert len(notify["jobs"]["QUEUED"]) == 9
    assert notify["jobs"]["QUEUED"][0]["jobId"] == "job00"


# -- the MQTT device API ---------------------------------------------------------------------------


def test_get_pending_job_executions_reply_echoes_the_client_token() -> None:
    # [MQTT] GetPendingJobExecutions; "clientToken ... is reflected in the response".
    rig = Rig()
    rig.create("a", thing_arn("t"), now=T0)
    rig.create("b", thing_arn("t"), now=T0 + 1)
    rig.mqtt("$aws/things/t/jobs/b/update", {"status": "IN_PROGRESS"}, now=T0 + 2)
    topic, reply = rig.mqtt("$aws/things/t/jobs/get", {"clientToken": "tok"}, now=T0 + 3)
    assert topic == "$aws/things/t/jobs/get/accepted"
    assert reply["clientToken"] == "tok" and reply["timestamp"] == int(T0 + 3)
    assert [j["jobId"] for j in reply["inProgressJobs"]] == ["b"]
    assert [j["jobId"] for j in reply["queuedJobs"]] == ["a"]
    parsed = iotjobs.GetPendingJobExecutionsResponse.from_payload(reply)
    assert parsed.client_token == "tok"
    assert parsed.in_progress_jobs[0].version_number == 2


def test_start_next_starts_the_oldest_queued_and_sets_status_details() -> None:
    # [MQTT] StartNextPendingJobExecution.
    rig = Rig()
    rig.create("a", thing_arn("t"), now=T0)
    rig.create("b", thing_arn("t"), now=T0 + 1)
    _, reply = rig.mqtt(
        "$aws/things/t/jobs/start-next",
        {"statusDetails": {"step": "download"}, "clientToken": "c1"},
        now=T0 + 5,
    )
    execution = reply["execution"]
    assert execution == {
        "jobId": "a",
        "thingName": "t",
        "status": "IN_PROGRESS",
        "statusDetails": {"step": "download"},
        "queuedAt": int(T0),
        "startedAt": int(T0 + 5),
        "lastUpdatedAt": int(T0 + 5),
        "versionNumber": 2,
        "executionNumber": 1,
        "jobDocument": {"operation": "test"},
    }
    parsed = iotjobs.StartNextJobExecutionResponse.from_payload(reply)
    assert parsed.execution.job_document == {"operation": "test"}
    # "If the next pending job execution is already IN_PROGRESS, its status details are not
    # changed."
    _, again = rig.mqtt(
        "$aws/things/t/jobs/start-next", {"statusDetails": {"step": "other"}}, now=T0 + 6
    )
    assert again["execution"]["statusDetails"] == {"step": "download"}
    assert again["execution"]["versionNumber"] == 2


def test_start_next_with_nothing_pending_is_accepted_without_execution() -> None:
    # "If no job executions are pending, the response does not include the execution field."
    rig = Rig()
    topic, reply = rig.mqtt("$aws/things/t/jobs/start-next", {"clientToken": "x"}, now=T0)
    assert topic.endswith("/start-next/accepted")
    assert reply == {"timestamp": int(T0), "clientToken": "x"}


@pytest.mark.parametrize(
    ("request_body", "has_document"),
    [({}, True), ({"includeJobDocument": True}, True), ({"includeJobDocument": False}, False)],
)
def test_describe_job_execution_includes_the_document_unless_told_not_to(
    request_body: dict[str, Any], has_document: bool
) -> None:
    # "includeJobDocument: (Optional) Unless set to false, the response contains the job
    # document. The default is true." [MQTT]
    rig = Rig()
    rig.create("a", thing_arn("t"))
    topic, reply = rig.mqtt("$aws/things/t/jobs/a/get", request_body)
    assert topic == "$aws/things/t/jobs/a/get/accepted"
    assert ("jobDocument" in reply["execution"]) is has_document
    assert iotjobs.DescribeJobExecutionResponse.from_payload(reply).execution.job_id == "a"


def test_describe_next_and_execution_numbers() -> None:
    # "$next to return the next pending job execution" and "executionNumber ... If not
    # specified, the latest job execution is returned." [MQTT]
    rig = Rig()
    rig.groups[group_arn("g")] = {"t"}
    rig.create("c", group_arn("g"), targetSelection="CONTINUOUS")
    rig.groups[group_arn("g")] = set()
    rig.apply(
        control.thing_removed_from_thing_group(
            rig.state,
            "t",
            group_arn("g"),
            group_members=rig.members,
            now=T0 + 1,
            behaviour=rig.behaviour,
        )
    )
    rig.groups[group_arn("g")] = {"t"}
    rig.apply(
        control.thing_added_to_thing_group(
            rig.state, "t", group_arn("g"), now=T0 + 2, behaviour=rig.behaviour
        )
    )
    _, latest = rig.mqtt("$aws/things/t/jobs/c/get", {})
    assert latest["execution"]["executionNumber"] == 2
    _, first = rig.mqtt("$aws/things/t/jobs/c/get", {"executionNumber": 1})
    assert first["execution"]["status"] == "REMOVED"
    topic, nxt = rig.mqtt("$aws/things/t/jobs/$next/get", {})
    assert topic == "$aws/things/t/jobs/$next/get/accepted"
    assert nxt["execution"]["executionNumber"] == 2
    _, none = rig.mqtt("$aws/things/other/jobs/$next/get", {"clientToken": "k"})
    assert none == {"timestamp": int(T0), "clientToken": "k"}


# The state machine as devices drive it [LIFE "Job execution states and source"; MQTT; ERR].
TRANSITIONS = [
    # (from, to, accepted?)
    ("QUEUED", "IN_PROGRESS", True),
    ("QUEUED", "SUCCEEDED", True),  # permissive: behaviour.allow_queued_to_terminal
    ("QUEUED", "FAILED", True),
    ("QUEUED", "REJECTED", True),  # [LIFE] figure: "a job can get REJECTED"
    ("IN_PROGRESS", "IN_PROGRESS", True),  # "can be invoked multiple times with IN_PROGRESS"
    ("IN_PROGRESS", "SUCCEEDED", True),
    ("IN_PROGRESS", "FAILED", True),
    ("IN_PROGRESS", "REJECTED", True),
    ("SUCCEEDED", "IN_PROGRESS", False),  # [ERR]'s own example
    ("SUCCEEDED", "SUCCEEDED", False),
    ("FAILED", "SUCCEEDED", False),
    ("REJECTED", "IN_PROGRESS", False),
    ("CANCELED", "IN_PROGRESS", False),
    ("CANCELED", "SUCCEEDED", False),
    ("TIMED_OUT", "SUCCEEDED", False),
    ("REMOVED", "IN_PROGRESS", False),
]


@pytest.mark.parametrize(("start", "target", "accepted"), TRANSITIONS)
def test_update_job_execution_transitions(start: str, target: str, accepted: bool) -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"))
    execution = rig.state.latest_execution("t", "j")
    assert execution is not None
    rig.state.apply(
        Changes(executions=(replace(execution, status=ExecutionStatus(start), version_number=5),))
    )
    topic, reply = rig.mqtt(
        "$aws/things/t/jobs/j/update",
        {"status": target, "includeJobExecutionState": True, "clientToken": "u"},
        now=T0 + 10,
    )
    if accepted:
        assert topic == "$aws/things/t/jobs/j/update/accepted"
        assert reply["executionState"] == {"status": target, "versionNumber": 6}
        assert status_of(rig, "t", "j") == target
        parsed = iotjobs.UpdateJobExecutionResponse.from_payload(reply)
        assert parsed.execution_state.status == target
    else:
        assert topic == "$aws/things/t/jobs/j/update/rejected"
        # "executionState ... is included only when the code field has the value
        # InvalidStateTransition or VersionMismatch" [ERR]
        assert reply["code"] == "InvalidStateTransition"
        assert reply["executionState"] == {"status": start, "versionNumber": 5}
        assert reply["clientToken"] == "u"
        assert status_of(rig, "t", "j") == start
        error = iotjobs.V2ErrorResponse.from_payload(reply)
        assert error.code == iotjobs.RejectedErrorCode.INVALID_STATE_TRANSITION


def test_queued_to_terminal_can_be_refused() -> None:
    rig = Rig(JobsBehaviour(allow_queued_to_terminal=False))
    rig.create("j", thing_arn("t"))
    _, reply = rig.mqtt("$aws/things/t/jobs/j/update", {"status": "SUCCEEDED"})
    assert reply["code"] == "InvalidStateTransition"
    _, reply = rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS"})
    assert "code" not in reply


REJECTIONS = [
    # (topic suffix, payload, code, message fragment); each has a passing twin below.
    ("j/update", b"{not json", "InvalidJson", "UTF-8-encoded JSON"),
    ("j/update", b"\xff\xfe", "InvalidJson", "UTF-8-encoded JSON"),
    ("j/update", b"[1]", "InvalidRequest", "JSON object"),
    ("j/update", {}, "InvalidRequest", "status is required"),
    ("j/update", {"status": "DONE"}, "InvalidRequest", "Invalid status"),
    ("j/update", {"status": "CANCELED"}, "InvalidRequest", "cannot set status"),
    ("j/update", {"status": "QUEUED"}, "InvalidRequest", "cannot set status"),
    ("j/update", {"status": "IN_PROGRESS", "statusDetails": {"k": 1}}, "InvalidRequest", "string"),
    (
        "j/update",
        {"status": "IN_PROGRESS", "statusDetails": {"k k": "v"}},
        "InvalidRequest",
        "name",
    ),
    ("j/update", {"status": "IN_PROGRESS", "statusDetails": {"k": ""}}, "InvalidRequest", "1-1024"),
    (
        "j/update",
        {"status": "IN_PROGRESS", "statusDetails": {"k": "x" * 1025}},
        "InvalidRequest",
        "1-1024",
    ),
    (
        "j/update",
        {"status": "IN_PROGRESS", "statusDetails": {"k": "a\nb"}},
        "InvalidRequest",
        "control",
    ),
    ("j/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 0}, "InvalidRequest", "10080"),
    (
        "j/update",
        {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 10081},
        "InvalidRequest",
        "10080",
    ),
    ("j/update", {"status": "IN_PROGRESS", "expectedVersion": "1"}, "InvalidRequest", "integer"),
    (
        "j/update",
        {"status": "IN_PROGRESS", "clientToken": "x" * 65},
        "InvalidRequest",
        "clientToken",
    ),
    ("j/update", {"status": "IN_PROGRESS", "expectedVersion": 7}, "VersionMismatch", "expected"),
    ("nope/update", {"status": "IN_PROGRESS"}, "ResourceNotFound", "does not exist"),
    ("j/update", {"status": "IN_PROGRESS", "executionNumber": 2}, "ResourceNotFound", "not exist"),
    ("$next/update", {"status": "IN_PROGRESS"}, "InvalidRequest", "jobId"),
    ("j/get", {"includeJobDocument": "yes"}, "InvalidRequest", "true or false"),
    ("nope/get", {}, "ResourceNotFound", "does not exist"),
    ("start-next", {"stepTimeoutInMinutes": 1.5}, "InvalidRequest", "stepTimeoutInMinutes"),
    ("notify", {}, "InvalidTopic", "does not map to any API"),
    ("j/delete", {}, "InvalidTopic", "does not map to any API"),
    ("get/accepted", {}, "InvalidTopic", "does not map to any API"),
]


@pytest.mark.parametrize(("suffix", "payload", "code", "fragment"), REJECTIONS)
def test_rejections(suffix: str, payload: Any, code: str, fragment: str) -> None:
    # The ErrorResponse codes of [ERR].
    rig = Rig()
    rig.create("j", thing_arn("t"))
    topic, reply = rig.mqtt(f"$aws/things/t/jobs/{suffix}", payload, now=T0 + 1)
    assert topic == f"$aws/things/t/jobs/{suffix}/rejected"
    assert reply["code"] == code
    assert fragment in reply["message"]
    assert reply["timestamp"] == int(T0 + 1)
    assert ("executionState" in reply) is (code == "VersionMismatch")
    assert iotjobs.V2ErrorResponse.from_payload(reply).code == code
    assert status_of(rig, "t", "j") == ExecutionStatus.QUEUED


def test_the_passing_twins_of_the_rejections() -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"))
    accepted = [
        ("j/update", {"status": "IN_PROGRESS", "statusDetails": {"k:a_b-1": "x" * 1024}}),
        ("j/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 10080}),
        ("j/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1, "expectedVersion": 3}),
        ("j/update", {"status": "IN_PROGRESS", "clientToken": "x" * 64, "executionNumber": 1}),
        ("j/get", {"includeJobDocument": False}),
        ("start-next", {"stepTimeoutInMinutes": 1}),
        ("get", b""),
    ]
    for suffix, payload in accepted:
        topic, _ = rig.mqtt(f"$aws/things/t/jobs/{suffix}", payload)
        assert topic.endswith("/accepted"), (suffix, payload)


def test_version_mismatch_carries_the_execution_state() -> None:
    # "the update is rejected with a VersionMismatch error, and an ErrorResponse that contains
    # the current job execution status data is returned" [MQTT]
    rig = Rig()
    rig.create("j", thing_arn("t"))
    rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS", "statusDetails": {"a": "1"}})
    _, reply = rig.mqtt(
        "$aws/things/t/jobs/j/update", {"status": "SUCCEEDED", "expectedVersion": 1}
    )
    assert reply["code"] == "VersionMismatch"
    assert reply["executionState"] == {
        "status": "IN_PROGRESS",
        "statusDetails": {"a": "1"},
        "versionNumber": 2,
    }
    _, ok = rig.mqtt("$aws/things/t/jobs/j/update", {"status": "SUCCEEDED", "expectedVersion": 2})
    assert "code" not in ok


@pytest.mark.parametrize(
    ("merge", "expected"),
    [(False, {"b": "2"}), (True, {"a": "1", "b": "2"})],
)
def test_status_details_replace_or_merge(merge: bool, expected: dict[str, str]) -> None:
    # "If not specified, the statusDetails are unchanged." [MQTT]; replace vs merge is a choice.
    rig = Rig(JobsBehaviour(merge_status_details=merge))
    rig.create("j", thing_arn("t"))
    rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS", "statusDetails": {"a": "1"}})
    rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS"})
    execution = rig.state.latest_execution("t", "j")
    assert execution is not None and execution.status_details == {"a": "1"}
    rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS", "statusDetails": {"b": "2"}})
    execution = rig.state.latest_execution("t", "j")
    assert execution is not None and execution.status_details == expected


def test_update_can_return_the_job_document() -> None:
    # "includeJobDocument ... When included and set to true, the response contains the
    # JobDocument. The default is false." [MQTT]
    rig = Rig()
    rig.create("j", thing_arn("t"))
    _, plain = rig.mqtt("$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS"})
    assert set(plain) == {"timestamp"}
    _, full = rig.mqtt(
        "$aws/things/t/jobs/j/update", {"status": "IN_PROGRESS", "includeJobDocument": True}
    )
    assert full["jobDocument"] == {"operation": "test"}


def test_terminal_state_reached_is_optional() -> None:
    # [ERR] TerminalStateReached: "a command to describe a job is performed on a job that is in a
    # terminal state"; off by default (see JobsBehaviour).
    for flag, code in ((False, None), (True, "TerminalStateReached")):
        rig = Rig(JobsBehaviour(terminal_state_reached_on_describe=flag))
        rig.create("j", thing_arn("t"))
        rig.mqtt("$aws/things/t/jobs/j/update", {"status": "SUCCEEDED"})
        _, reply = rig.mqtt("$aws/things/t/jobs/j/get", {})
        assert reply.get("code") == code


def test_non_jobs_topics_are_not_ours() -> None:
    assert device.parse_request_topic("$aws/things/t/shadow/get") is None
    assert device.parse_request_topic("things/t/jobs/get") is None
    with pytest.raises(ValueError, match="not a Jobs request topic"):
        device.handle_mqtt_request(JobsState(), "a/b", b"{}", now=T0, behaviour=JobsBehaviour())


# -- timers [CONF] --------------------------------------------------------------------------------


def test_in_progress_timer_times_out_and_notifies() -> None:
    # "Whenever a job execution remains in the IN_PROGRESS status for longer than this interval,
    # the job execution will fail and switch to the terminal TIMED_OUT status." (API_TimeoutConfig)
    rig = Rig()
    rig.create("j", thing_arn("t"), timeoutConfig={"inProgressTimeoutInMinutes": 20})
    rig.mqtt("$aws/things/t/jobs/start-next", {}, now=T0 + 60)
    rig.take()
    assert device.next_timeout(rig.state) == T0 + 60 + 20 * 60
    rig.apply(device.due_timeouts(rig.state, T0 + 60 + 20 * 60 - 1, rig.behaviour))
    assert status_of(rig, "t", "j") == ExecutionStatus.IN_PROGRESS
    rig.apply(device.due_timeouts(rig.state, T0 + 60 + 20 * 60, rig.behaviour))
    assert status_of(rig, "t", "j") == ExecutionStatus.TIMED_OUT
    assert [topic for topic, _ in rig.take()] == [
        "$aws/things/t/jobs/notify",
        "$aws/things/t/jobs/notify-next",
    ]
    assert device.next_timeout(rig.state) is None
    job = rig.state.job("j")
    assert job is not None and job.status == JobStatus.COMPLETED


def test_step_timers_follow_the_timeline_of_the_configurations_page() -> None:
    # [CONF] "How timers work for job timeouts": 12:00 start with a 20-minute in-progress timer;
    # 12:05 step 7 -> 12:12; 12:10 step 5 -> 12:15; 12:13 step 9 -> 12:20 (the in-progress bound).
    noon = T0
    rig = Rig()
    rig.create("j", thing_arn("t"), timeoutConfig={"inProgressTimeoutInMinutes": 20})
    rig.mqtt("$aws/things/t/jobs/start-next", {}, now=noon)
    update = "$aws/things/t/jobs/j/update"
    for at, step, deadline in ((5, 7, 12), (10, 5, 15), (13, 9, 20)):
        rig.mqtt(
            update, {"status": "IN_PROGRESS", "stepTimeoutInMinutes": step}, now=noon + at * 60
        )
        assert device.next_timeout(rig.state) == noon + deadline * 60
    # -1 "will cancel the current step timer": the in-progress timer remains.
    rig.mqtt(update, {"status": "IN_PROGRESS", "stepTimeoutInMinutes": -1}, now=noon + 14 * 60)
    assert device.next_timeout(rig.state) == noon + 20 * 60
    # A terminal status stops both timers.
    rig.mqtt(update, {"status": "SUCCEEDED"}, now=noon + 15 * 60)
    assert device.next_timeout(rig.state) is None


def test_step_timer_from_start_next_alone() -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"))
    rig.mqtt("$aws/things/t/jobs/start-next", {"stepTimeoutInMinutes": 3}, now=T0)
    assert device.next_timeout(rig.state) == T0 + 180
    rig.apply(device.due_timeouts(rig.state, T0 + 180, rig.behaviour))
    _, reply = rig.mqtt("$aws/things/t/jobs/j/update", {"status": "SUCCEEDED"}, now=T0 + 181)
    assert reply["code"] == "InvalidStateTransition"
    assert reply["executionState"]["status"] == "TIMED_OUT"


# -- HTTPS: iot-jobs-data, through botocore's serializer and parser -------------------------------


def test_https_device_api_round_trip() -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"), timeoutConfig={"inProgressTimeoutInMinutes": 10})
    status, pending = rig.https("GetPendingJobExecutions", {"thingName": "t"})
    assert status == 200 and pending["queuedJobs"][0]["jobId"] == "j"
    status, started = rig.https(
        "StartNextPendingJobExecution", {"thingName": "t", "stepTimeoutInMinutes": 2}, now=T0 + 1
    )
    execution = started["execution"]
    assert status == 200 and execution["status"] == "IN_PROGRESS"
    # Over HTTPS the document is a string (JobDocument is a string shape) and the timer shows.
    assert execution["jobDocument"] == DOC
    assert execution["approximateSecondsBeforeTimedOut"] == 120
    status, described = rig.https(
        "DescribeJobExecution",
        {"thingName": "t", "jobId": "$next", "includeJobDocument": False},
    )
    assert status == 200 and "jobDocument" not in described["execution"]
    status, updated = rig.https(
        "UpdateJobExecution",
        {
            "thingName": "t",
            "jobId": "j",
            "status": "SUCCEEDED",
            "includeJobExecutionState": True,
            "includeJobDocument": True,
            "expectedVersion": 2,
        },
    )
    assert status == 200
    assert updated["executionState"] == {"status": "SUCCEEDED", "versionNumber": 3}
    assert updated["jobDocument"] == DOC
    # MQTT subscribers still hear about it.
    assert "$aws/things/t/jobs/notify" in [topic for topic, _ in rig.take()]


@pytest.mark.parametrize(
    ("operation", "params", "status", "code"),
    [
        (
            "DescribeJobExecution",
            {"thingName": "t", "jobId": "nope"},
            404,
            "ResourceNotFoundException",
        ),
        (
            "UpdateJobExecution",
            {"thingName": "t", "jobId": "j", "status": "SUCCEEDED", "expectedVersion": 9},
            409,
            "InvalidStateTransitionException",
        ),
        (
            "UpdateJobExecution",
            {"thingName": "t", "jobId": "j", "status": "CANCELED"},
            400,
            "InvalidRequestException",
        ),
        (
            "StartNextPendingJobExecution",
            {"thingName": "t", "statusDetails": {"k": "\x00"}},
            400,
            "InvalidRequestException",
        ),
    ],
)
def test_https_errors_are_the_models_exceptions(
    operation: str, params: dict[str, Any], status: int, code: str
) -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"))
    got_status, parsed = rig.https(operation, params)
    assert got_status == status
    assert parsed["Error"]["Code"] == code
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def test_https_terminal_state_and_transition_errors() -> None:
    rig = Rig(JobsBehaviour(terminal_state_reached_on_describe=True))
    rig.create("j", thing_arn("t"))
    rig.https("UpdateJobExecution", {"thingName": "t", "jobId": "j", "status": "SUCCEEDED"})
    status, parsed = rig.https("DescribeJobExecution", {"thingName": "t", "jobId": "j"})
    assert (status, parsed["Error"]["Code"]) == (410, "TerminalStateException")
    status, parsed = rig.https(
        "UpdateJobExecution", {"thingName": "t", "jobId": "j", "status": "IN_PROGRESS"}
    )
    assert (status, parsed["Error"]["Code"]) == (409, "InvalidStateTransitionException")


def test_https_unknown_routes_and_bad_queries() -> None:
    state, behaviour = JobsState(), JobsBehaviour()
    for method, path, query in (
        ("GET", "/things/t", {}),
        ("DELETE", "/things/t/jobs/j", {}),
        ("GET", "/things/t/jobs/j/x", {}),
        ("GET", "/things/t/jobs/j", {"executionNumber": "one"}),
        ("GET", "/things/t/jobs/j", {"executionNumber": "0"}),
        ("GET", "/things/t/jobs/j", {"includeJobDocument": "maybe"}),
        ("GET", "/things/bad%20name/jobs", {}),
    ):
        outcome = device.handle_https_request(
            state, method, path, query, b"", now=T0, behaviour=behaviour
        )
        assert outcome.status == 400, (method, path, query)
        assert dict(outcome.headers)["x-amzn-ErrorType"] == "InvalidRequestException"
    ok = device.handle_https_request(
        state, "GET", "/things/t/jobs", {}, b"", now=T0, behaviour=behaviour
    )
    assert ok.status == 200


# -- control plane [API] --------------------------------------------------------------------------


def test_create_job_queues_each_target_thing_once() -> None:
    rig = Rig()
    rig.groups[group_arn("g")] = {"a", "b"}
    reply = rig.create("j", thing_arn("a"), group_arn("g"), description="d")
    assert reply == {"jobArn": f"{PREFIX}job/j", "jobId": "j", "description": "d"}
    assert_shape("iot", "CreateJob", reply)
    assert sorted(e.thing_name for e in rig.state.executions_of_job("j")) == ["a", "b"]
    described = control.describe_job(rig.state, "j")
    assert_shape("iot", "DescribeJob", described)
    job = described["job"]
    assert job["status"] == "IN_PROGRESS" and job["targetSelection"] == "SNAPSHOT"
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 2


CREATE_ERRORS = [
    ({"jobId": "bad id"}, "InvalidRequestException", "jobId"),
    ({"jobId": "x" * 65}, "InvalidRequestException", "jobId"),
    ({"targets": []}, "InvalidRequestException", "at least one"),
    ({"targets": ["t"]}, "InvalidRequestException", "Invalid target"),
    (
        {"targets": ["arn:aws:iot:eu-west-1:123456789012:thing/t"]},
        "InvalidRequestException",
        "region",
    ),
    ({"targets": [group_arn("missing")]}, "ResourceNotFoundException", "missing"),
    ({"document": None}, "InvalidRequestException", "document is required"),
    ({"document": "[1]"}, "InvalidRequestException", "JSON object"),
    ({"document": "x" * 32769}, "InvalidRequestException", "32768"),
    ({"documentSource": "https://s3.amazonaws.com/b/k"}, "InvalidRequestException", "S3"),
    ({"targetSelection": "SOMETIMES"}, "InvalidRequestException", "targetSelection"),
    ({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}, "InvalidRequestException", "10080"),
    ({"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}, "InvalidRequestException", "10080"),
    ({"description": "a\x01"}, "InvalidRequestException", "description"),
]


@pytest.mark.parametrize(("override", "code", "fragment"), CREATE_ERRORS)
def test_create_job_refusals(override: dict[str, Any], code: str, fragment: str) -> None:
    request = {"jobId": "j", "targets": [thing_arn("t")], "document": DOC, **override}
    with pytest.raises(AwsApiError) as caught:
        control.create_job(
            JobsState(),
            request,
            region=REGION,
            account_id=ACCOUNT,
            group_members=lambda arn: None,
            now=T0,
            behaviour=JobsBehaviour(),
        )
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_create_job_passing_twins_and_limits() -> None:
    rig = Rig(JobsBehaviour(max_jobs=3, max_active_jobs=2))
    rig.create("a", thing_arn("t"), timeoutConfig={"inProgressTimeoutInMinutes": 10080})
    rig.create("b-_1", thing_arn("t"), document="{}", description="x" * 2028)
    with pytest.raises(AwsApiError) as caught:
        rig.create("a", thing_arn("t"))
    assert caught.value.code == "ResourceAlreadyExistsException" and caught.value.status == 409
    with pytest.raises(AwsApiError) as caught:
        rig.create("c", thing_arn("t"))
    assert caught.value.code == "LimitExceededException" and caught.value.status == 410
    rig.commit(control.cancel_job(rig.state, "a", now=T0, behaviour=rig.behaviour)[1].changes)
    rig.create("c", thing_arn("t"))
    with pytest.raises(AwsApiError, match="at most 3 jobs"):
        rig.create("d", thing_arn("t"))
    with pytest.raises(AwsApiError) as caught:
        control.create_job(
            rig.state,
            {"jobId": "e", "targets": [thing_arn("ghost")], "document": DOC},
            region=REGION,
            account_id=ACCOUNT,
            group_members=rig.members,
            thing_exists=lambda name: name != "ghost",
            now=T0,
            behaviour=JobsBehaviour(),
        )
    assert caught.value.code == "ResourceNotFoundException"


def test_snapshot_job_completes_when_every_execution_is_terminal() -> None:
    # "For a snapshot job, the job status changes to COMPLETED when all its job executions enter
    # a terminal state" [LIFE]; "A continuous job is always in progress".
    rig = Rig()
    rig.create("s", thing_arn("a"), thing_arn("b"))
    rig.create("c", thing_arn("a"), targetSelection="CONTINUOUS")
    rig.mqtt("$aws/things/a/jobs/s/update", {"status": "SUCCEEDED"})
    assert control.describe_job(rig.state, "s")["job"]["status"] == "IN_PROGRESS"
    rig.mqtt("$aws/things/b/jobs/s/update", {"status": "FAILED"})
    job = control.describe_job(rig.state, "s")["job"]
    assert job["status"] == "COMPLETED" and job["completedAt"] == T0
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert job["jobProcessDetails"]["numberOfFailedThings"] == 1
    rig.mqtt("$aws/things/a/jobs/c/update", {"status": "SUCCEEDED"})
    assert control.describe_job(rig.state, "c")["job"]["status"] == "IN_PROGRESS"
    # A snapshot job with no things at all is complete at once.
    rig.groups[group_arn("empty")] = set()
    rig.create("e", group_arn("empty"))
    assert control.describe_job(rig.state, "e")["job"]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    ("force", "expected"),
    [(False, {"q": "CANCELED", "p": "IN_PROGRESS"}), (True, {"q": "CANCELED", "p": "CANCELED"})],
)
def test_cancel_job_cancels_in_progress_executions_only_with_force(
    force: bool, expected: dict[str, str]
) -> None:
    # API_CancelJob force: "If true job executions with status "IN_PROGRESS" and "QUEUED" are
    # canceled, otherwise only job executions with status "QUEUED" are canceled."
    rig = Rig()
    rig.create("j", thing_arn("q"), thing_arn("p"))
    rig.mqtt("$aws/things/p/jobs/j/update", {"status": "IN_PROGRESS"})
    rig.take()
    reply, outcome = control.cancel_job(
        rig.state,
        "j",
        force=force,
        reason_code="BAD_BUILD",
        comment="oops",
        now=T0 + 1,
        behaviour=rig.behaviour,
    )
    rig.apply(outcome)
    assert_shape("iot", "CancelJob", reply)
    assert {t: status_of(rig, t, "j").value for t in ("q", "p")} == expected
    job = control.describe_job(rig.state, "j")["job"]
    assert job["status"] == "CANCELED" and job["forceCanceled"] is force
    assert job["reasonCode"] == "BAD_BUILD" and job["comment"] == "oops"
    notified = {topic for topic, _ in rig.take()}
    assert "$aws/things/q/jobs/notify" in notified
    assert ("$aws/things/p/jobs/notify" in notified) is force
    # The forced-out device can no longer update (CANCELED is terminal).
    _, reply2 = rig.mqtt("$aws/things/p/jobs/j/update", {"status": "SUCCEEDED"})
    assert ("code" in reply2) is force


def test_cancel_and_delete_job_refusals_and_twins() -> None:
    rig = Rig()
    rig.create("j", thing_arn("t"))
    with pytest.raises(AwsApiError) as caught:
        control.delete_job(rig.state, "j", now=T0, behaviour=rig.behaviour)
    assert caught.value.code == "InvalidStateTransitionException" and caught.value.status == 409
    with pytest.raises(AwsApiError) as caught:
        control.cancel_job(rig.state, "j", reason_code="lower", now=T0, behaviour=rig.behaviour)
    assert caught.value.code == "InvalidRequestException"
    with pytest.raises(AwsApiError) as caught:
        control.cancel_job(rig.state, "nope", now=T0, behaviour=rig.behaviour)
    assert caught.value.code == "ResourceNotFoundException" and caught.value.status == 404
    rig.apply(control.cancel_job(rig.state, "j", now=T0, behaviour=rig.behaviour)[1])
    rig.apply(control.delete_job(rig.state, "j", now=T0, behaviour=rig.behaviour))
    assert rig.state.job("j") is None and rig.state.executions_of_thing("t") == []
    # force deletes an IN_PROGRESS job; a COMPLETED job cannot be canceled.
    rig.create("k", thing_arn("t"))
    rig.apply(control.delete_job(rig.state, "k", force=True, now=T0, behaviour=rig.behaviour))
    assert rig.state.job("k") is None
    rig.create("m", thing_arn("t"))
    rig.mqtt("$aws/things/t/jobs/m/update", {"status": "SUCCEEDED"})
    with pytest.raises(AwsApiError, match="COMPLETED"):
        control.cancel_job(rig.state, "m", now=T0, behaviour=rig.behaviour)


CANCEL_EXECUTION = [
    # (status before, force, expectedVersion, details, error code or None)
    ("QUEUED", False, None, None, None),
    ("QUEUED", False, 1, {"why": "op"}, None),
    ("QUEUED", False, 2, None, "VersionConflictException"),
    ("IN_PROGRESS", False, None, None, "InvalidStateTransitionException"),
    ("IN_PROGRESS", True, None, None, None),
    ("SUCCEEDED", True, None, None, "InvalidStateTransitionException"),
    ("QUEUED", False, None, {f"k{n}": "v" for n in range(11)}, "InvalidRequestException"),
    ("QUEUED", False, None, {f"k{n}": "v" for n in range(10)}, None),
]


@pytest.mark.parametrize(("before", "force", "version", "details", "code"), CANCEL_EXECUTION)
def test_cancel_job_execution(
    before: str, force: bool, version: int | None, details: dict[str, str] | None, code: str | None
) -> None:
    # API_CancelJobExecution: force, expectedVersion (VersionConflictException), "at most 10
    # name/value pairs".
    rig = Rig()
    rig.create("j", thing_arn("t"))
    execution = rig.state.latest_execution("t", "j")
    assert execution is not None
    rig.state.apply(Changes(executions=(replace(execution, status=ExecutionStatus(before)),)))

    def call() -> Outcome:
        return control.cancel_job_execution(
            rig.state,
            "j",
            "t",
            force=force,
            expected_version=version,
            status_details=details,
            now=T0,
            behaviour=rig.behaviour,
        )

    if code is None:
        rig.apply(call())
        after = rig.state.latest_execution("t", "j")
        assert after is not None and after.status == ExecutionStatus.CANCELED
        assert after.force_canceled is (before == "IN_PROGRESS")
        described = control.describe_job_execution(rig.state, "j", "t")
        assert_shape("iot", "DescribeJobExecution", described)
        assert described["execution"]["statusDetails"] == {"detailsMap": details or {}}
    else:
        with pytest.raises(AwsApiError) as caught:
            call()
        assert caught.value.code == code


def test_delete_job_execution_needs_force_unless_terminal() -> None:
    # API_DeleteJobExecution force.
    rig = Rig()
    rig.create("j", thing_arn("t"))
    with pytest.raises(AwsApiError) as caught:
        control.delete_job_execution(rig.state, "j", "t", 1, now=T0, behaviour=rig.behaviour)
    assert caught.value.code == "InvalidStateTransitionException"
    with pytest.raises(AwsApiError) as caught:
        control.delete_job_execution(rig.state, "j", "t", 2, now=T0, behaviour=rig.behaviour)
    assert caught.value.code == "ResourceNotFoundException"
    rig.mqtt("$aws/things/t/jobs/j/update", {"status": "REJECTED"})
    rig.apply(control.delete_job_execution(rig.state, "j", "t", 1, now=T0, behaviour=rig.behaviour))
    assert rig.state.executions_of_job("j") == []


def test_list_operations_paginate_and_filter() -> None:
    rig = Rig()
    for n in range(5):
        rig.create(f"j{n}", thing_arn("t"), thing_arn("u"), now=T0 + n)
    rig.mqtt("$aws/things/t/jobs/j0/update", {"status": "SUCCEEDED"})
    first = control.list_jobs(rig.state, max_results=2)
    assert_shape("iot", "ListJobs", first)
    assert [j["jobId"] for j in first["jobs"]] == ["j0", "j1"]
    second = control.list_jobs(rig.state, max_results=2, next_token=first["nextToken"])
    third = control.list_jobs(rig.state, max_results=2, next_token=second["nextToken"])
    assert [j["jobId"] for j in third["jobs"]] == ["j4"] and "nextToken" not in third
    by_thing = control.list_job_executions_for_thing(rig.state, "t", status="SUCCEEDED")
    assert_shape("iot", "ListJobExecutionsForThing", by_thing)
    assert [e["jobId"] for e in by_thing["executionSummaries"]] == ["j0"]
    by_job = control.list_job_executions_for_job(rig.state, "j0")
    assert_shape("iot", "ListJobExecutionsForJob", by_job)
    assert [e["thingArn"] for e in by_job["executionSummaries"]] == [thing_arn("t"), thing_arn("u")]
    bad_calls: list[Callable[[], object]] = [
        lambda: control.list_jobs(rig.state, max_results=251),
        lambda: control.list_jobs(rig.state, next_token="!!"),
        lambda: control.list_jobs(rig.state, status="DONE"),
        lambda: control.list_jobs(rig.state, thing_group_id="abc"),
        lambda: control.list_job_executions_for_job(rig.state, "j0", status="DONE"),
        lambda: control.list_job_executions_for_thing(rig.state, "bad name"),
    ]
    for bad in bad_calls:
        with pytest.raises(AwsApiError) as caught:
            bad()
        assert caught.value.code == "InvalidRequestException"
    with pytest.raises(AwsApiError) as caught:
        control.list_job_executions_for_job(rig.state, "nope")
    assert caught.value.code == "ResourceNotFoundException"


def test_list_jobs_by_thing_group_name() -> None:
    rig = Rig()
    rig.groups[group_arn("g")] = {"t"}
    rig.create("by-group", group_arn("g"))
    rig.create("direct", thing_arn("t"))
    listed = control.list_jobs(rig.state, thing_group_name="g")
    assert [j["jobId"] for j in listed["jobs"]] == ["by-group"]


def test_continuous_jobs_follow_group_membership() -> None:
    # API_CreateJob targetSelection: "a job will run on a thing when the thing is added to a
    # target group, even after the job was completed by all things originally in the group";
    # [LIFE] REMOVED: "detached from a dynamic thing group ... You can re-attach the thing".
    rig = Rig()
    g = group_arn("g")
    rig.groups[g] = {"a"}
    rig.create("c", g, targetSelection="CONTINUOUS")
    rig.mqtt("$aws/things/a/jobs/c/update", {"status": "SUCCEEDED"})
    rig.take()
    rig.groups[g].add("b")
    rig.apply(
        control.thing_added_to_thing_group(rig.state, "b", g, now=T0 + 5, behaviour=rig.behaviour)
    )
    assert status_of(rig, "b", "c") == ExecutionStatus.QUEUED
    assert [topic for topic, _ in rig.take()] == [
        "$aws/things/b/jobs/notify",
        "$aws/things/b/jobs/notify-next",
    ]
    # Re-adding a thing that already ran the job queues nothing.
    rig.apply(
        control.thing_added_to_thing_group(rig.state, "a", g, now=T0 + 6, behaviour=rig.behaviour)
    )
    assert [e.execution_number for e in rig.state.executions_of_thing("a")] == [1]
    # Leaving the group removes a QUEUED execution unless still targeted otherwise.
    rig.groups[g].discard("b")
    rig.apply(
        control.thing_removed_from_thing_group(
            rig.state, "b", g, group_members=rig.members, now=T0 + 7, behaviour=rig.behaviour
        )
    )
    assert status_of(rig, "b", "c") == ExecutionStatus.REMOVED
    rig.groups[g].add("b")
    rig.apply(
        control.thing_added_to_thing_group(rig.state, "b", g, now=T0 + 8, behaviour=rig.behaviour)
    )
    latest = rig.state.latest_execution("b", "c")
    assert latest is not None and latest.execution_number == 2
    assert latest.status == ExecutionStatus.QUEUED


def test_thing_still_targeted_directly_keeps_its_execution() -> None:
    rig = Rig()
    g = group_arn("g")
    rig.groups[g] = {"a"}
    rig.create("c", g, thing_arn("a"), targetSelection="CONTINUOUS")
    rig.groups[g] = set()
    rig.apply(
        control.thing_removed_from_thing_group(
            rig.state, "a", g, group_members=rig.members, now=T0, behaviour=rig.behaviour
        )
    )
    assert status_of(rig, "a", "c") == ExecutionStatus.QUEUED


def test_associate_targets_with_job() -> None:
    # API_AssociateTargetsWithJob: CONTINUOUS and IN_PROGRESS only; at most 100 targets.
    rig = Rig()
    rig.create("c", thing_arn("a"), targetSelection="CONTINUOUS")
    rig.create("s", thing_arn("a"))
    reply, outcome = control.associate_targets_with_job(
        rig.state,
        "c",
        [thing_arn("b")],
        group_members=rig.members,
        now=T0,
        behaviour=rig.behaviour,
    )
    rig.apply(outcome)
    assert_shape("iot", "AssociateTargetsWithJob", reply)
    assert status_of(rig, "b", "c") == ExecutionStatus.QUEUED
    with pytest.raises(AwsApiError) as caught:
        control.associate_targets_with_job(
            rig.state,
            "s",
            [thing_arn("b")],
            group_members=rig.members,
            now=T0,
            behaviour=rig.behaviour,
        )
    assert caught.value.code == "InvalidRequestException"
    with pytest.raises(AwsApiError) as caught:
        control.associate_targets_with_job(
            rig.state,
            "c",
            [thing_arn(f"t{n}") for n in range(99)],
            group_members=rig.members,
            now=T0,
            behaviour=rig.behaviour,
        )
    assert caught.value.code == "LimitExceededException"


def test_api_errors_are_rest_json_answers_botocore_reads() -> None:
    error = AwsApiError("VersionConflictException", "expected 1, found 2")
    status, headers, body = error.rest_response()
    parsed = parse_response("iot", "CancelJobExecution", status, headers, body)
    assert parsed["Error"] == {"Code": "VersionConflictException", "Message": "expected 1, found 2"}
    assert status == 409


def test_control_plane_requests_botocore_builds_are_what_the_verbs_take() -> None:
    # The verbs take the members by their model names: a request botocore serializes maps 1:1.
    request = serialize_request(
        "iot",
        "CreateJob",
        {"jobId": "j", "targets": [thing_arn("t")], "document": DOC, "targetSelection": "SNAPSHOT"},
    )
    assert request["method"] == "PUT" and request["url_path"] == "/jobs/j"
    body = json.loads(request["body"])
    rig = Rig()
    reply, _ = control.create_job(
        rig.state,
        {"jobId": "j", **body},
        region=REGION,
        account_id=ACCOUNT,
        group_members=rig.members,
        now=T0,
        behaviour=rig.behaviour,
    )
    parsed = parse_response(
        "iot", "CreateJob", 200, [("Content-Type", "application/json")], json.dumps(reply).encode()
    )
    assert parsed["jobArn"] == f"{PREFIX}job/j"
