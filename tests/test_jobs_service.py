"""The Jobs service shell over a real ``jobs.sqlite3``: timers by an injected clock, kill -9.

``JobsService`` commits each change to the store before it answers or notifies; its ``tick``
(once a second in the broker) fires the in-progress and step timers by the injected clock. Here
the clock is a variable the test moves, the store is a real SQLite file, and what the service
sends (answers to the requester, notifications to subscribers) is collected, so the timers are
shown firing exactly when the clock passes the deadline, and the state surviving a reopen.
"""

from __future__ import annotations

import json
import queue
import subprocess
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from aws_iot_mock.core.services import ServiceRequest
from aws_iot_mock.logs.cloudwatch import ConnectionFacts
from aws_iot_mock.services.jobs import JobsService
from aws_iot_mock.state.jobs import JobStore
from tests.serve_child import ServeChild, child_env, make_run_ready

REGION = "us-east-1"
ACCOUNT = "123456789012"
THING = "pump"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TIMEOUT = 30.0


class Rig:
    """A service over a store in ``directory``, its clock, and what it sent."""

    def __init__(self, directory: Path, now: float = START) -> None:
        self.now = now
        self.store = JobStore.open(directory)
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.replies: list[tuple[str, str, dict[str, Any]]] = []
        self.service = JobsService(
            self.store,
            region=REGION,
            account_id=ACCOUNT,
            publish=lambda topic, payload: self.published.append((topic, json.loads(payload))),
            reply=lambda client, topic, payload: self.replies.append(
                (client, topic, json.loads(payload))
            ),
            emit=lambda record: None,
            clock=lambda: self.now,
            thing_exists=lambda name: name == THING,
        )

    def call(self, operation: str, **request: Any) -> dict[str, Any]:
        return self.service.operations()[operation](request)

    def device(self, suffix: str, document: dict[str, Any]) -> dict[str, Any]:
        topic = f"$aws/things/{THING}/jobs/{suffix}"
        facts = ConnectionFacts(ACCOUNT, "127.0.0.1", 50000, client_id=THING, protocol="MQTT")
        self.service.handle(ServiceRequest(topic, json.dumps(document).encode(), facts, THING))
        client, reply_topic, payload = self.replies.pop()
        assert (client, reply_topic) == (THING, f"{topic}/accepted"), payload
        return payload

    def status(self, job_id: str) -> str:
        execution = self.call("DescribeJobExecution", jobId=job_id, thingName=THING)
        return str(execution["execution"]["status"])


def test_the_in_progress_timer_fires_when_the_clock_passes_it_and_is_persisted(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.call(
        "CreateJob",
        jobId="flash",
        targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{THING}"],
        document="{}",
        timeoutConfig={"inProgressTimeoutInMinutes": 2},
    )
    started = rig.device("start-next", {})
    assert started["execution"]["status"] == "IN_PROGRESS"

    rig.now = START + 119.0
    rig.published.clear()
    rig.service.tick()
    assert (rig.status("flash"), rig.published) == ("IN_PROGRESS", [])

    rig.now = START + 120.0
    rig.service.tick()
    assert rig.status("flash") == "TIMED_OUT"
    topics = [topic for topic, _ in rig.published]
    assert topics == [f"$aws/things/{THING}/jobs/notify", f"$aws/things/{THING}/jobs/notify-next"]
    assert rig.published[0][1]["jobs"] == {}  # nothing pending any more
    rig.store.close()

    # The timeout was committed: a new service over the same file sees it.
    again = Rig(tmp_path, now=START + 121.0)
    assert again.status("flash") == "TIMED_OUT"
    job = again.call("DescribeJob", jobId="flash")["job"]
    assert job["jobProcessDetails"]["numberOfTimedOutThings"] == 1
    again.store.close()


def test_a_step_timer_from_start_next_is_reset_by_an_update(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.call(
        "CreateJob",
        jobId="steps",
        targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{THING}"],
        document="{}",
    )
    rig.device("start-next", {"stepTimeoutInMinutes": 1})
    rig.now = START + 50.0
    # A new step: "the step timer is reset" with the update's stepTimeoutInMinutes.
    rig.device("steps/update", {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1})
    rig.now = START + 100.0
    rig.service.tick()
    assert rig.status("steps") == "IN_PROGRESS"  # the first step's deadline (60 s) is gone
    rig.now = START + 110.0
    rig.service.tick()
    assert rig.status("steps") == "TIMED_OUT"
    rig.store.close()


def test_kill_9_after_an_answer_loses_nothing(tmp_path: Path) -> None:
    """``make run``; the CLI creates a job, the demo device starts it; kill -9; it is still
    IN_PROGRESS, as the device was told (the CLI reads the store when no broker answers)."""
    children: list[ServeChild] = []
    try:
        serve = make_run_ready(tmp_path, children)
        port = int(serve.banner("mqtt").split()[0])
        target = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/demo-device"
        created = cli(
            tmp_path, "create-job", "--job-id", "ota", "--targets", target, "--document", "{}"
        )
        assert created.returncode == 0, created.stderr

        answers: queue.Queue[Any] = queue.Queue()
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="demo-device")
        client.tls_set(
            ca_certs=str(tmp_path / "certs" / "root-ca.pem"),
            certfile=str(tmp_path / "certs" / "demo-device" / "demo-device.cert.pem"),
            keyfile=str(tmp_path / "certs" / "demo-device" / "demo-device.private.key"),
        )
        client.on_message = lambda _client, _userdata, message: answers.put(message)
        client.connect("localhost", port)
        client.loop_start()
        try:
            client.publish("$aws/things/demo-device/jobs/start-next", b"{}", qos=1)
            answer = answers.get(timeout=TIMEOUT)
            assert answer.topic == "$aws/things/demo-device/jobs/start-next/accepted"
            assert json.loads(answer.payload)["execution"]["status"] == "IN_PROGRESS"
            serve.kill9()
        finally:
            client.loop_stop()
        described = cli(
            tmp_path, "describe-job-execution", "--job-id", "ota", "--thing-name", "demo-device"
        )
        assert described.returncode == 0, described.stderr
        execution = json.loads(described.stdout)["execution"]
        assert (execution["status"], execution["versionNumber"]) == ("IN_PROGRESS", 2)
    finally:
        for child in children:
            child.close()


def cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(directory / ".venv" / "bin" / "aws-iot-mock"), *args],
        cwd=directory,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
