"""The optional CloudWatch Logs sink (issue 20) against a moto server, read back with boto3."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.logs.cloudwatch_sink import BATCH_BYTES, BATCH_EVENTS, EVENT_OVERHEAD, batches
from aws_iot_mock.testing import IotBrokerThread, paho_client
from tests.docs_snippets import snippet
from tests.local_services import aws_client, moto_server

pytest.importorskip("moto")

LOG_GROUP = "AWSIotLogsV2"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def refused_plain_client(broker: IotBrokerThread) -> None:
    """Something to log: bytes that are not TLS on the MQTT door."""
    with socket.create_connection(("127.0.0.1", broker.ports["mqtt"]), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\n\r\n")
        plain.recv(100)


def wrong_sni_client(broker: IotBrokerThread) -> None:
    """A device refused as AWS refuses one: the SNI is not the endpoint."""
    context = ssl.create_default_context(cafile=str(broker.root_ca_path))
    context.check_hostname = False
    address = ("127.0.0.1", broker.ports["mqtt"])
    with (
        socket.create_connection(address, timeout=5) as raw,
        contextlib.suppress(ssl.SSLError, OSError),
    ):
        context.wrap_socket(raw, server_hostname="wrong.example").close()


def events_in(logs: Any, stream: str, wanted: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The stream's records once one contains ``wanted`` (the sink sends from its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = logs.filter_log_events(logGroupName=LOG_GROUP, logStreamNames=[stream])
        except logs.exceptions.ResourceNotFoundException:  # not created yet
            found = {"events": []}
        events = found["events"]
        records = [json.loads(event["message"]) for event in events]
        if any(wanted in json.dumps(record) for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)  # polling the remote service: there is no readiness signal to wait on


def test_records_reach_the_log_group_in_order(moto: str) -> None:
    config = {"logging": {"cloudwatch": {"endpoint_url": moto, "log_stream": "in-order"}}}
    with IotBrokerThread(config=config) as broker:
        refused_plain_client(broker)
        broker.wait_for_refusal(Reason.HANDSHAKE_FAILED)
        wrong_sni_client(broker)
        broker.wait_for_refusal(Reason.SNI_MISMATCH)
        device = broker.create_device("cw-device")
        client = paho_client(device)
        client.disconnect()
        client.loop_stop()
        records = events_in(aws_client("logs", moto), "in-order", '"clientId": "cw-device"')
    reasons = [record.get("reason") for record in records]
    assert "HANDSHAKE_FAILED" in reasons
    assert "SNI_MISMATCH" in reasons
    connects = [r for r in records if r["eventType"] == "Connect" and r["status"] == "Success"]
    assert "cw-device" in [r.get("clientId") for r in connects]
    stamps = [record["timestamp"] for record in records]
    assert stamps == sorted(stamps)
    groups = aws_client("logs", moto).describe_log_groups(logGroupNamePrefix=LOG_GROUP)
    assert [group["logGroupName"] for group in groups["logGroups"]] == [LOG_GROUP]


def test_a_dead_endpoint_never_stops_the_broker(moto: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening
        config = {"logging": {"cloudwatch": {"endpoint_url": dead, "log_stream": "nowhere"}}}
        with IotBrokerThread(config=config) as broker:
            for _ in range(3):
                refused_plain_client(broker)
            # The twin of the live endpoint above: the broker still serves a device.
            client = paho_client(broker.create_device("cw-dead-endpoint", ALLOW_ALL))
            client.publish("cw/alive", b"1", qos=1).wait_for_publish(5)
            broker.wait_for_message("cw/alive")
            client.disconnect()
            client.loop_stop()


def test_batches_keep_within_put_log_events_limits() -> None:
    many = [(1000 + index, "x") for index in range(BATCH_EVENTS + 5)]
    cut = batches(many)
    assert [len(batch) for batch in cut] == [BATCH_EVENTS, 5]
    big = "y" * (BATCH_BYTES // 4)
    sized = batches([(3, big), (1, big), (2, big), (4, big)])
    assert all(
        sum(len(str(event["message"])) + EVENT_OVERHEAD for event in batch) <= BATCH_BYTES
        for batch in sized
    )
    assert [event["timestamp"] for batch in sized for event in batch] == [1, 2, 3, 4]


def test_the_documented_configuration_and_command_work(moto: str, tmp_path: Any) -> None:
    port = moto.rsplit(":", 1)[1]
    documented = yaml.safe_load(snippet("logs-cloudwatch-config").replace("5000", port))
    documented["logging"]["cloudwatch"]["log_stream"] = "documented"
    assert "aws-iot-mock[cloudwatch]" in snippet("logs-cloudwatch-install")
    with IotBrokerThread(config=documented) as broker:
        refused_plain_client(broker)
        broker.wait_for_refusal(Reason.HANDSHAKE_FAILED)
        events_in(aws_client("logs", moto), "documented", "HANDSHAKE_FAILED")
    command = snippet("logs-cloudwatch-read").replace("5000", port).replace("\\\n", " ").strip()
    venv_aws = Path(sys.executable).parent / "aws"
    aws = str(venv_aws) if venv_aws.exists() else shutil.which("aws") or "aws"
    completed = subprocess.run(
        command.replace("aws logs", f"{aws} logs", 1) + " --region us-east-1 --output json",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    messages = [json.loads(event["message"]) for event in json.loads(completed.stdout)["events"]]
    # moto does not apply JSON filter patterns (AWS does): the refusal is among what came back.
    assert "Failure" in {message["status"] for message in messages}


def test_records_dropped_while_the_endpoint_was_down_are_counted_once_it_is_back() -> None:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy, only where used

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"  # nothing listens there yet
    config = {
        "logging": {
            "cloudwatch": {
                "endpoint_url": endpoint,
                "log_stream": "recovering",
                "queue_bytes": 65536,  # the smallest queue: a few hundred records overflow it
            }
        }
    }
    with IotBrokerThread(config=config) as broker:
        for _ in range(400):
            refused_plain_client(broker)
        broker.wait_for_refusal(Reason.HANDSHAKE_FAILED)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # the endpoint comes back
        try:
            records = events_in(
                aws_client("logs", endpoint), "recovering", "LOG_RECORDS_DROPPED", 40
            )
        finally:
            server.stop()
    dropped = [record for record in records if record.get("reason") == "LOG_RECORDS_DROPPED"]
    assert dropped, [record.get("reason") for record in records][:5]
    assert "were dropped" in dropped[0]["details"]
    # The twin: what the queue held is there too.
    assert any(record.get("reason") == "HANDSHAKE_FAILED" for record in records)
