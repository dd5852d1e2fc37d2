"""AWS IoT Jobs end to end with real clients: the Device SDK v2's jobs client, boto3, the CLI.

A device connects with the AWS IoT Device SDK v2 (awscrt MQTT 3.1.1 on the MQTT door) and runs
AWS's jobs sample flow with ``awsiot.iotjobs.IotJobsClient``: a job created with boto3's ``iot``
client on the api door (or with the ``aws-iot-mock`` CLI, through the running broker) arrives as
``notify-next``; the device gets its pending jobs, starts the next, updates it to SUCCEEDED, and
the control plane shows it. The same over HTTPS with botocore's ``iot-jobs-data`` client and the
device's certificate (mutual TLS). Each refusal (AWS's error code) has a passing twin.
SDK callbacks run on awscrt's threads and hand their events over through queues with deadlines.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from awscrt import mqtt, mqtt_request_response
from awsiot import ServiceStreamOptions, V2ServiceException, iotjobs
from botocore.config import Config as BotoConfig

from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, awsiot_connection, paho_client

TIMEOUT = 10.0
REGION = "us-east-1"
ACCOUNT = "123456789012"
AWS_CLI = Path(sys.prefix) / "bin" / "aws"


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def iot_client(broker: IotBrokerThread, service: str = "iot", **options: Any) -> Any:
    """boto3's client with dummy credentials (the api door accepts any key by default)."""
    settings: dict[str, Any] = {
        "endpoint_url": broker.api_endpoint_url,
        "verify": str(broker.root_ca_path),
        "region_name": REGION,
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "config": BotoConfig(retries={"max_attempts": 1}),
    }
    return boto3.client(service, **(settings | options))


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def iot(broker: IotBrokerThread) -> Any:
    return iot_client(broker)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A thing name unique to the test (the broker is shared by the module)."""
    # Short enough for job IDs (at most 64 characters) with a suffix.
    return "".join(c if c.isalnum() else "-" for c in request.node.name)[5:45].strip("-")


class JobsDevice:
    """A device's ``IotJobsClient`` with every response and event stream queued."""

    def __init__(self, device: DeviceFiles) -> None:
        self.thing = device.thing_name
        self.connection = awsiot_connection(device)
        self.client = iotjobs.IotJobsClient(self.connection)
        self.queues: dict[str, queue.Queue[Any]] = {}
        thing = self.thing
        subscriptions: list[tuple[str, Callable[..., Any], Any]] = [
            (
                "next",
                self.client.subscribe_to_next_job_execution_changed_events,
                iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
            ),
            (
                "changed",
                self.client.subscribe_to_job_executions_changed_events,
                iotjobs.JobExecutionsChangedSubscriptionRequest(thing_name=thing),
            ),
            (
                "pending",
                self.client.subscribe_to_get_pending_job_executions_accepted,
                iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing),
            ),
            (
                "pending-rejected",
                self.client.subscribe_to_get_pending_job_executions_rejected,
                iotjobs.GetPendingJobExecutionsSubscriptionRequest(thing_name=thing),
            ),
            (
                "start",
                self.client.subscribe_to_start_next_pending_job_execution_accepted,
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
            ),
            (
                "start-rejected",
                self.client.subscribe_to_start_next_pending_job_execution_rejected,
                iotjobs.StartNextPendingJobExecutionSubscriptionRequest(thing_name=thing),
            ),
            (
                "update",
                self.client.subscribe_to_update_job_execution_accepted,
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
            ),
            (
                "update-rejected",
                self.client.subscribe_to_update_job_execution_rejected,
                iotjobs.UpdateJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
            ),
            (
                "describe",
                self.client.subscribe_to_describe_job_execution_accepted,
                iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
            ),
            (
                "describe-rejected",
                self.client.subscribe_to_describe_job_execution_rejected,
                iotjobs.DescribeJobExecutionSubscriptionRequest(thing_name=thing, job_id="+"),
            ),
        ]
        for key, subscribe, request in subscriptions:
            inbox: queue.Queue[Any] = queue.Queue()
            self.queues[key] = inbox
            future, _ = subscribe(request=request, qos=mqtt.QoS.AT_LEAST_ONCE, callback=inbox.put)
            future.result(TIMEOUT)

    def next(self, key: str) -> Any:
        return self.queues[key].get(timeout=TIMEOUT)

    def publish(self, future: Any) -> None:
        future.result(TIMEOUT)

    def close(self) -> None:
        self.connection.disconnect().result(TIMEOUT)


@pytest.fixture
def device(broker: IotBrokerThread, name: str) -> Iterator[JobsDevice]:
    jobs = JobsDevice(broker.create_device(name))
    yield jobs
    jobs.close()


def test_the_jobs_sample_flow_with_the_sdk_and_boto3(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    thing = device.thing
    created = iot.create_job(
        jobId=f"{name}-1",
        targets=[thing_arn(thing)],
        document=json.dumps({"operation": "install", "version": "2.0"}),
        description="firmware 2.0",
    )
    assert created["jobArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{name}-1"

    # notify-next arrives as soon as the job is created (the device is subscribed).
    event = device.next("next")
    assert event.execution.job_id == f"{name}-1"
    assert event.execution.status == "QUEUED"
    assert event.execution.job_document == {"operation": "install", "version": "2.0"}
    assert device.next("changed").jobs["QUEUED"][0].job_id == f"{name}-1"

    device.publish(
        device.client.publish_get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=thing, client_token="tok-1"),
            mqtt.QoS.AT_LEAST_ONCE,
        )
    )
    pending = device.next("pending")
    assert pending.client_token == "tok-1"
    assert [job.job_id for job in pending.queued_jobs] == [f"{name}-1"]
    assert pending.in_progress_jobs == []

    device.publish(
        device.client.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=thing,
                step_timeout_in_minutes=15,
                status_details={"step": "downloading"},
            ),
            mqtt.QoS.AT_LEAST_ONCE,
        )
    )
    started = device.next("start").execution
    assert (started.job_id, started.status, started.version_number) == (
        f"{name}-1",
        "IN_PROGRESS",
        2,
    )
    assert started.job_document == {"operation": "install", "version": "2.0"}
    assert started.status_details == {"step": "downloading"}

    device.publish(
        device.client.publish_update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=thing,
                job_id=f"{name}-1",
                status="SUCCEEDED",
                expected_version=2,
                status_details={"step": "done"},
                include_job_execution_state=True,
                client_token="tok-2",
            ),
            mqtt.QoS.AT_LEAST_ONCE,
        )
    )
    updated = device.next("update")
    assert updated.client_token == "tok-2"
    assert updated.execution_state.status == "SUCCEEDED"
    assert updated.execution_state.version_number == 3

    execution = iot.describe_job_execution(jobId=f"{name}-1", thingName=thing)["execution"]
    assert execution["status"] == "SUCCEEDED"
    assert execution["statusDetails"] == {"detailsMap": {"step": "done"}}
    job = iot.describe_job(jobId=f"{name}-1")["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    summaries = iot.list_job_executions_for_thing(thingName=thing)["executionSummaries"]
    assert [s["jobExecutionSummary"]["status"] for s in summaries] == ["SUCCEEDED"]


def test_a_job_created_with_the_cli_notifies_the_running_brokers_devices(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    config = broker.config
    document = json.dumps({"operation": "reboot"})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aws_iot_mock",
            "create-job",
            "--state-dir",
            str(config.state_dir),
            "--certs-dir",
            str(config.certs_dir),
            "--job-id",
            f"{name}-cli",
            "--targets",
            thing_arn(device.thing),
            "--document",
            document,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobId"] == f"{name}-cli"
    event = device.next("next")
    assert (event.execution.job_id, event.execution.job_document) == (
        f"{name}-cli",
        {"operation": "reboot"},
    )
    # The broker's control plane sees the job the CLI created (one state, in the broker).
    assert iot.describe_job(jobId=f"{name}-cli")["job"]["status"] == "IN_PROGRESS"


def test_a_group_target_and_cancel_with_force(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    group = iot.create_thing_group(thingGroupName=f"{name}-g")
    iot.add_thing_to_thing_group(thingGroupName=f"{name}-g", thingName=device.thing)
    iot.create_job(jobId=f"{name}-g", targets=[group["thingGroupArn"]], document="{}")
    assert device.next("next").execution.job_id == f"{name}-g"
    device.publish(
        device.client.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=device.thing),
            mqtt.QoS.AT_LEAST_ONCE,
        )
    )
    assert device.next("start").execution.status == "IN_PROGRESS"

    # Without --force an IN_PROGRESS execution keeps running; with it, it is canceled.
    iot.cancel_job(jobId=f"{name}-g")
    execution = iot.describe_job_execution(jobId=f"{name}-g", thingName=device.thing)
    assert execution["execution"]["status"] == "IN_PROGRESS"
    iot.cancel_job(jobId=f"{name}-g", force=True)
    execution = iot.describe_job_execution(jobId=f"{name}-g", thingName=device.thing)
    assert execution["execution"]["status"] == "CANCELED"
    assert execution["execution"]["forceCanceled"] is True
    # notify-next says there is nothing next (an event without an execution).
    while device.next("next").execution is not None:
        pass
    iot.delete_job(jobId=f"{name}-g", force=True)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId=f"{name}-g")


def test_refusals_carry_aws_error_codes_each_with_a_passing_twin(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    thing = device.thing
    iot.create_job(jobId=f"{name}-r", targets=[thing_arn(thing)], document="{}")
    device.next("next")

    # Update with a wrong expectedVersion: VersionMismatch; with the right one: accepted.
    def update(status: str, version: int) -> None:
        device.publish(
            device.client.publish_update_job_execution(
                iotjobs.UpdateJobExecutionRequest(
                    thing_name=thing,
                    job_id=f"{name}-r",
                    status=status,
                    expected_version=version,
                    include_job_execution_state=True,
                ),
                mqtt.QoS.AT_LEAST_ONCE,
            )
        )

    update("IN_PROGRESS", 7)
    rejected = device.next("update-rejected")
    assert rejected.code == "VersionMismatch"
    update("IN_PROGRESS", 1)
    assert device.next("update").execution_state.status == "IN_PROGRESS"

    # A terminal execution cannot move again: InvalidStateTransition; its twin moved above.
    update("SUCCEEDED", 2)
    assert device.next("update").execution_state.status == "SUCCEEDED"
    update("FAILED", 3)
    assert device.next("update-rejected").code == "InvalidStateTransition"

    # Describe an unknown job: ResourceNotFound; a known one: accepted.
    for job_id, key in ((f"{name}-missing", "describe-rejected"), (f"{name}-r", "describe")):
        device.publish(
            device.client.publish_describe_job_execution(
                iotjobs.DescribeJobExecutionRequest(thing_name=thing, job_id=job_id),
                mqtt.QoS.AT_LEAST_ONCE,
            )
        )
        answer = device.next(key)
        if key == "describe":
            assert answer.execution.status == "SUCCEEDED"
        else:
            assert answer.code == "ResourceNotFound"

    # The control plane: a duplicate job ID and an unknown target thing are refused.
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_job(jobId=f"{name}-r", targets=[thing_arn(thing)], document="{}")
    with pytest.raises(iot.exceptions.InvalidRequestException, match="S3"):
        iot.create_job(
            jobId=f"{name}-s3", targets=[thing_arn(thing)], documentSource="https://s3/x"
        )
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId=f"{name}-r", thingName=f"{name}-nobody")


def test_a_device_cannot_use_another_things_jobs_topics(
    broker: IotBrokerThread, iot: Any, name: str
) -> None:
    # The default device policy allows $aws/things/<its thing>/* only (as AWS's jobs policies).
    owner = broker.create_device(f"{name}-a")
    other = broker.create_device(f"{name}-b")
    iot.create_job(jobId=f"{name}-x", targets=[thing_arn(other.thing_name)], document="{}")
    connection = awsiot_connection(owner)
    client = iotjobs.IotJobsClient(connection)
    request = iotjobs.GetPendingJobExecutionsRequest(thing_name=other.thing_name)
    client.publish_get_pending_job_executions(request, mqtt.QoS.AT_MOST_ONCE)
    refusal = broker.wait_for_refusal(
        "AUTHORIZATION_FAILURE", owner.client_id, event_type="Publish-In"
    )
    assert refusal["topicName"] == f"$aws/things/{other.thing_name}/jobs/get"
    connection.disconnect().result(TIMEOUT)
    # Its twin: the same request for its own thing is answered.
    device = JobsDevice(owner)
    try:
        device.publish(
            device.client.publish_get_pending_job_executions(
                iotjobs.GetPendingJobExecutionsRequest(thing_name=owner.thing_name),
                mqtt.QoS.AT_LEAST_ONCE,
            )
        )
        assert device.next("pending").queued_jobs == []
    finally:
        device.close()


def test_iot_jobs_data_over_https_with_the_devices_certificate(
    broker: IotBrokerThread, iot: Any, name: str
) -> None:
    files = broker.create_device(
        name,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iotjobsdata:*",
                    "Resource": thing_arn(name),
                }
            ],
        },
    )
    jobs_data = iot_client(
        broker,
        "iot-jobs-data",
        endpoint_url=f"https://{broker.endpoint}:{broker.ports['https']}",
        config=BotoConfig(
            retries={"max_attempts": 1}, client_cert=(str(files.cert_path), str(files.key_path))
        ),
    )
    iot.create_job(jobId=f"{name}-h", targets=[thing_arn(name)], document='{"run": "it"}')

    pending = jobs_data.get_pending_job_executions(thingName=name)
    assert [job["jobId"] for job in pending["queuedJobs"]] == [f"{name}-h"]
    started = jobs_data.start_next_pending_job_execution(
        thingName=name, statusDetails={"step": "1"}
    )["execution"]
    assert (started["status"], started["jobDocument"]) == ("IN_PROGRESS", '{"run": "it"}')
    state = jobs_data.update_job_execution(
        jobId=f"{name}-h",
        thingName=name,
        status="SUCCEEDED",
        expectedVersion=2,
        includeJobExecutionState=True,
    )["executionState"]
    assert state["status"] == "SUCCEEDED"
    # A terminal execution cannot move again (its twin is the update above).
    with pytest.raises(jobs_data.exceptions.InvalidStateTransitionException):
        jobs_data.update_job_execution(jobId=f"{name}-h", thingName=name, status="FAILED")
    described = jobs_data.describe_job_execution(jobId=f"{name}-h", thingName=name)
    assert described["execution"]["status"] == "SUCCEEDED"
    with pytest.raises(jobs_data.exceptions.ResourceNotFoundException):
        jobs_data.describe_job_execution(jobId=f"{name}-none", thingName=name)
    assert iot.describe_job(jobId=f"{name}-h")["job"]["status"] == "COMPLETED"

    # The policy names this thing only: another thing's jobs are Forbidden (403).
    with pytest.raises(botocore.exceptions.ClientError) as info:
        jobs_data.get_pending_job_executions(thingName=f"{name}-other")
    assert info.value.response["Error"]["Code"] == "ForbiddenException"


def test_the_v2_jobs_client_runs_the_same_flow(
    broker: IotBrokerThread, iot: Any, name: str
) -> None:
    files = broker.create_device(name)
    connection = awsiot_connection(files)
    jobs = iotjobs.IotJobsClientV2(
        connection,
        mqtt_request_response.ClientOptions(
            max_request_response_subscriptions=4,
            max_streaming_subscriptions=2,
            operation_timeout_in_seconds=int(TIMEOUT),
        ),
    )
    events: queue.Queue[Any] = queue.Queue()
    statuses: queue.Queue[Any] = queue.Queue()
    stream = jobs.create_next_job_execution_changed_stream(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=name),
        ServiceStreamOptions(
            incoming_event_listener=events.put, subscription_status_listener=statuses.put
        ),
    )
    stream.open()
    try:
        status = statuses.get(timeout=TIMEOUT)
        established = mqtt_request_response.SubscriptionStatusEventType.SUBSCRIPTION_ESTABLISHED
        assert status.type == established, status
        iot.create_job(jobId=f"{name}-v2", targets=[thing_arn(name)], document='{"v": 2}')
        assert events.get(timeout=TIMEOUT).execution.job_id == f"{name}-v2"

        pending = jobs.get_pending_job_executions(
            iotjobs.GetPendingJobExecutionsRequest(thing_name=name)
        ).result(TIMEOUT)
        assert [job.job_id for job in pending.queued_jobs] == [f"{name}-v2"]
        started = jobs.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=name)
        ).result(TIMEOUT)
        assert (started.execution.status, started.execution.job_document) == (
            "IN_PROGRESS",
            {"v": 2},
        )
        # A refusal is a V2ServiceException carrying AWS's code; its twin is accepted.
        with pytest.raises(V2ServiceException) as refused:
            jobs.update_job_execution(
                iotjobs.UpdateJobExecutionRequest(
                    thing_name=name, job_id=f"{name}-v2", status="SUCCEEDED", expected_version=9
                )
            ).result(TIMEOUT)
        assert refused.value.modeled_error.code == "VersionMismatch"
        jobs.update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=name, job_id=f"{name}-v2", status="SUCCEEDED", expected_version=2
            )
        ).result(TIMEOUT)
        execution = iot.describe_job_execution(jobId=f"{name}-v2", thingName=name)["execution"]
        assert execution["status"] == "SUCCEEDED"
    finally:
        connection.disconnect().result(TIMEOUT)


def test_answers_reach_the_requester_without_a_subscription(
    broker: IotBrokerThread, iot: Any, name: str
) -> None:
    # "/accepted and /rejected ... published even without a subscription" (jobs-mqtt-api.html):
    # paho hands every PUBLISH it receives to on_message, subscribed or not.
    files = broker.create_device(name)
    iot.create_job(jobId=f"{name}-p", targets=[thing_arn(name)], document="{}")
    received: queue.Queue[Any] = queue.Queue()
    client = paho_client(files)
    try:
        client.on_message = lambda _client, _userdata, message: received.put(message)
        client.publish(f"$aws/things/{name}/jobs/get", b"{}", qos=1).wait_for_publish(TIMEOUT)
        message = received.get(timeout=TIMEOUT)
        assert message.topic == f"$aws/things/{name}/jobs/get/accepted"
        assert [job["jobId"] for job in json.loads(message.payload)["queuedJobs"]] == [f"{name}-p"]
        client.publish(f"$aws/things/{name}/jobs/{name}-none/get", b"{}", qos=1)
        message = received.get(timeout=TIMEOUT)
        assert message.topic == f"$aws/things/{name}/jobs/{name}-none/get/rejected"
        assert json.loads(message.payload)["code"] == "ResourceNotFound"
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_continuous_job_follows_thing_group_membership(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    group = iot.create_thing_group(thingGroupName=f"{name}-c")["thingGroupArn"]
    iot.create_job(jobId=f"{name}-c", targets=[group], document="{}", targetSelection="CONTINUOUS")
    executions = iot.list_job_executions_for_job(jobId=f"{name}-c")["executionSummaries"]
    assert executions == []
    # The thing joins the group: within a tick it gets an execution, and notify-next says so.
    iot.add_thing_to_thing_group(thingGroupName=f"{name}-c", thingName=device.thing)
    assert device.next("next").execution.job_id == f"{name}-c"
    # It leaves the group: its queued execution is REMOVED.
    iot.remove_thing_from_thing_group(thingGroupName=f"{name}-c", thingName=device.thing)
    assert device.next("next").execution is None
    execution = iot.describe_job_execution(jobId=f"{name}-c", thingName=device.thing)
    assert execution["execution"]["status"] == "REMOVED"


def test_every_job_operation_through_boto3(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str
) -> None:
    thing = device.thing
    iot.create_job(jobId=f"{name}-a", targets=[thing_arn(thing)], document="{}")
    iot.create_job(
        jobId=f"{name}-b",
        targets=[thing_arn(thing)],
        document="{}",
        timeoutConfig={"inProgressTimeoutInMinutes": 5},
    )
    listed = [job["jobId"] for job in iot.list_jobs(status="IN_PROGRESS")["jobs"]]
    assert {f"{name}-a", f"{name}-b"} <= set(listed)
    assert iot.describe_job(jobId=f"{name}-b")["job"]["timeoutConfig"] == {
        "inProgressTimeoutInMinutes": 5
    }
    for_job = iot.list_job_executions_for_job(jobId=f"{name}-a")["executionSummaries"]
    assert [summary["thingArn"] for summary in for_job] == [thing_arn(thing)]
    for_thing = iot.list_job_executions_for_thing(thingName=thing, status="QUEUED")
    assert {s["jobId"] for s in for_thing["executionSummaries"]} == {f"{name}-a", f"{name}-b"}

    iot.cancel_job_execution(jobId=f"{name}-a", thingName=thing)
    execution = iot.describe_job_execution(jobId=f"{name}-a", thingName=thing)["execution"]
    assert execution["status"] == "CANCELED"
    # A terminal execution can be deleted; a queued one only with force.
    iot.delete_job_execution(jobId=f"{name}-a", thingName=thing, executionNumber=1)
    iot.cancel_job(jobId=f"{name}-b", reasonCode="NOT_NEEDED", comment="superseded")
    job = iot.describe_job(jobId=f"{name}-b")["job"]
    assert (job["status"], job["reasonCode"], job["comment"]) == (
        "CANCELED",
        "NOT_NEEDED",
        "superseded",
    )
    iot.create_job(jobId=f"{name}-c", targets=[thing_arn(thing)], document="{}")
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.delete_job_execution(jobId=f"{name}-c", thingName=thing, executionNumber=1)
    iot.delete_job_execution(jobId=f"{name}-c", thingName=thing, executionNumber=1, force=True)
    left = iot.list_job_executions_for_thing(thingName=thing)["executionSummaries"]
    assert [(s["jobId"], s["jobExecutionSummary"]["status"]) for s in left] == [
        (f"{name}-b", "CANCELED")
    ]
    for job_id in (f"{name}-a", f"{name}-b", f"{name}-c"):
        iot.delete_job(jobId=job_id, force=True)
    remaining = [job["jobId"] for job in iot.list_jobs()["jobs"]]
    assert not {f"{name}-a", f"{name}-b", f"{name}-c"} & set(remaining)


@pytest.mark.skipif(not AWS_CLI.exists(), reason="needs the awscli package")
def test_a_job_created_with_the_aws_cli_notifies_the_device(
    broker: IotBrokerThread, iot: Any, device: JobsDevice, name: str, tmp_path: Path
) -> None:
    # The real AWS CLI on the api door; no AWS setting of the machine's user is read.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= {
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CA_BUNDLE": str(broker.root_ca_path),
    }
    endpoint = ["--endpoint-url", broker.api_endpoint_url]

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(AWS_CLI), "iot", *args, *endpoint]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    created = aws(
        "create-job",
        "--job-id",
        f"{name}-aws",
        "--targets",
        thing_arn(device.thing),
        "--document",
        '{"operation": "blink"}',
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["jobId"] == f"{name}-aws"
    assert device.next("next").execution.job_document == {"operation": "blink"}
    # A refusal prints AWS's error and exits as for any service error; its twin succeeded above.
    again = aws(
        "create-job",
        "--job-id",
        f"{name}-aws",
        "--targets",
        thing_arn(device.thing),
        "--document",
        "{}",
    )
    assert again.returncode in (254, 255)  # the AWS CLI version 2 / version 1
    assert "(ResourceAlreadyExistsException) when calling the CreateJob operation" in again.stderr
    described = aws("describe-job", "--job-id", f"{name}-aws")
    assert json.loads(described.stdout)["job"]["status"] == "IN_PROGRESS"
