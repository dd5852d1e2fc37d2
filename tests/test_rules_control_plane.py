"""Topic rules through the control plane: boto3's ``iot`` client on the api door, a paho device.

The whole path a backend test takes: ``create_topic_rule`` with boto3, a device publishing over
MQTT (paho, mutual TLS), and the rule's actions reaching real local services (a moto server for
SQS, an HTTP server in the test, a paho subscriber for republish); a failing action runs the
rule's errorAction and writes a ``RuleExecution`` failure record. The API's shapes are checked
against botocore's ``iot`` model, its errors are botocore's modelled exceptions.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
from paho.mqtt.client import Client, MQTTMessage

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.rules import topic_rules
from aws_iot_mock.rules.topic_rules import TopicRuleService
from aws_iot_mock.state.topic_rules import TopicRuleStore
from aws_iot_mock.testing import IotBrokerThread, awsiot_connection, paho_client
from tests._aws_models import assert_shape
from tests.docs_snippets import output
from tests.local_services import HttpRecorder, aws_client, moto_server

TIMEOUT = 10.0
ROLE = "arn:aws:iam::123456789012:role/aws_iot_rule"
# Fields of a log record that differ from run to run.
VARYING = frozenset({"timestamp", "traceId", "principalId", "details"})


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def broker(moto_endpoint: str) -> Iterator[IotBrokerThread]:
    settings = {"rules": {"aws_endpoint_url": moto_endpoint, "action_timeout": TIMEOUT}}
    with IotBrokerThread(aws_quotas=False, config=settings) as running:
        yield running


@pytest.fixture
def iot(broker: IotBrokerThread) -> Any:
    import boto3  # noqa: PLC0415 - as in the other control-plane tests

    return boto3.client(
        "iot",
        endpoint_url=broker.api_endpoint_url,
        verify=str(broker.root_ca_path),
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A rule name unique to the test (``[a-zA-Z0-9_]``; the broker is shared by the module)."""
    return "".join(c if c.isalnum() else "_" for c in request.node.name)[:60].strip("_")


def payload(sql: str, *actions: object, **more: object) -> dict[str, Any]:
    return {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": list(actions), **more}


def republish(topic: str) -> dict[str, object]:
    return {"republish": {"roleArn": ROLE, "topic": topic}}


def members(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response as on the wire: no ``ResponseMetadata``, timestamps in epoch seconds."""
    kept = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    result: dict[str, Any] = json.loads(json.dumps(kept, default=datetime.timestamp))
    return result


def error_code(info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


class Subscriber:
    """A paho client subscribed to a filter; messages land in a queue."""

    def __init__(self, broker: IotBrokerThread, thing: str, topic_filter: str) -> None:
        device = broker.create_device(thing, ALLOW_ALL)
        self.messages: queue.Queue[MQTTMessage] = queue.Queue()
        self.client: Client = paho_client(device)
        self.client.on_message = lambda _client, _userdata, message: self.messages.put(message)
        subscribed: queue.Queue[object] = queue.Queue()
        self.client.on_subscribe = lambda *args: subscribed.put(args)
        self.client.subscribe(topic_filter, qos=1)
        subscribed.get(timeout=TIMEOUT)

    def receive(self) -> tuple[str, Any]:
        message = self.messages.get(timeout=TIMEOUT)
        return message.topic, json.loads(message.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def device_publishes(
    broker: IotBrokerThread, thing: str, topic: str, body: object, policy: Any = None
) -> None:
    """The thing's device (by default with the least-privilege policy) publishes at QoS 1."""
    client = paho_client(broker.create_device(thing, policy))
    try:
        client.publish(topic, json.dumps(body), qos=1).wait_for_publish(TIMEOUT)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_rule_created_with_boto3_reaches_sqs_http_and_a_subscriber(
    broker: IotBrokerThread, iot: Any, moto_endpoint: str
) -> None:
    sqs = aws_client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="readings")["QueueUrl"]
    watcher = Subscriber(broker, "watcher", "alerts/#")
    with HttpRecorder() as web:
        iot.create_topic_rule(
            ruleName="hot_readings",
            topicRulePayload=payload(
                "SELECT temperature, topic(2) AS device FROM 'devices/+/telemetry' "
                "WHERE temperature > 30",
                {"sqs": {"roleArn": ROLE, "queueUrl": queue_url}},
                {"http": {"url": f"{web.url}/ingest"}},
                republish("alerts/${topic(2)}"),
            ),
        )
        try:
            device_publishes(broker, "sensor-7", "devices/sensor-7/telemetry", {"temperature": 20})
            device_publishes(broker, "sensor-7", "devices/sensor-7/telemetry", {"temperature": 35})
            wanted = {"temperature": 35, "device": "sensor-7"}
            # Republish: the subscriber sees the second message only (WHERE dropped the first;
            # one rule's messages run in order, so the first would have come first).
            assert watcher.receive() == ("alerts/sensor-7", wanted)
            [(path, headers, body)] = web.wait_for_requests(1, TIMEOUT)
            assert (path, json.loads(body)) == ("/ingest", wanted)
            assert headers["content-type"].startswith("application/json")
            answer = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=int(TIMEOUT))
            [message] = answer["Messages"]
            assert json.loads(message["Body"]) == wanted
        finally:
            watcher.close()
            iot.delete_topic_rule(ruleName="hot_readings")


def test_a_failing_action_runs_the_error_action_and_is_logged(
    broker: IotBrokerThread, iot: Any, moto_endpoint: str
) -> None:
    missing_queue = f"{moto_endpoint}/123456789012/no-such-queue"
    watcher = Subscriber(broker, "error-watcher", "rule-errors/#")
    iot.create_topic_rule(
        ruleName="broken_sqs",
        topicRulePayload=payload(
            "SELECT * FROM 'devices/+/status'",
            {"sqs": {"roleArn": ROLE, "queueUrl": missing_queue}},
            errorAction=republish("rule-errors/${topic(2)}"),
        ),
    )
    try:
        device_publishes(broker, "sensor-8", "devices/sensor-8/status", {"ok": False})
        topic, document = watcher.receive()
        assert topic == "rule-errors/sensor-8"
        assert document["ruleName"] == "broken_sqs"
        assert document["clientId"] == "sensor-8"
        [failure] = document["failures"]
        assert failure["failedAction"] == "SqsAction"
        assert failure["failedResource"] == missing_queue
        record = broker.wait_for_refusal(
            "RuleActionFailed", client_id="sensor-8", event_type="RuleExecution"
        )
        assert record["ruleName"] == "broken_sqs"
        assert record["ruleAction"] == "SqsAction"
        assert record["traceId"] == document["cloudwatchTraceId"]
        assert record["details"] == failure["errorMessage"]
        # docs/rules-engine.md shows such a record: the same fields, the same wording.
        shown = json.loads(output("rules-engine-failure-record"))
        assert list(shown) == list(record)
        assert {k: v for k, v in shown.items() if k not in VARYING} == {
            k: v for k, v in record.items() if k not in VARYING
        }
        assert shown["details"] == str(record["details"]).replace(
            moto_endpoint, "http://127.0.0.1:5000"
        )
    finally:
        watcher.close()
        iot.delete_topic_rule(ruleName="broken_sqs")


def test_basic_ingest_reaches_the_rule_and_no_subscriber(broker: IotBrokerThread, iot: Any) -> None:
    watcher = Subscriber(broker, "ingest-watcher", "#")
    iot.create_topic_rule(
        ruleName="ingest",
        topicRulePayload=payload("SELECT * FROM 'devices/+/batch'", republish("ingested/out")),
    )
    try:
        # Basic Ingest needs iot:Publish on the $aws/rules/... topic (iot-basic-ingest.html).
        ingest = "$aws/rules/ingest/devices/sensor-9/batch"
        device_publishes(broker, "sensor-9", ingest, {"n": 1}, ALLOW_ALL)
        # The wildcard subscriber's first message is the rule's output, not the ingest publish.
        assert watcher.receive() == ("ingested/out", {"n": 1})
        assert watcher.messages.empty()
        # A Basic Ingest publish to a rule that does not exist: logged, delivered nowhere.
        absent = "$aws/rules/absent/devices/sensor-9/batch"
        device_publishes(broker, "sensor-9", absent, {}, ALLOW_ALL)
        record = broker.wait_for_refusal("RuleNotFound", client_id="sensor-9")
        assert record["details"] == "Rule absent not found"
    finally:
        watcher.close()
        iot.delete_topic_rule(ruleName="ingest")


def test_a_device_sdk_publish_triggers_the_rule(broker: IotBrokerThread, iot: Any) -> None:
    from awscrt import mqtt  # noqa: PLC0415 - the AWS IoT Device SDK's MQTT client

    watcher = Subscriber(broker, "sdk-watcher", "sdk-out/#")
    iot.create_topic_rule(
        ruleName="from_the_sdk",
        topicRulePayload=payload(
            "SELECT state.reported AS reported, clientid() AS who FROM 'devices/+/report'",
            republish("sdk-out/${clientid()}"),
        ),
    )
    connection = awsiot_connection(broker.create_device("sdk-device"))
    try:
        body = json.dumps({"state": {"reported": {"on": True}}})
        published, _packet_id = connection.publish(
            "devices/sdk-device/report", body, mqtt.QoS.AT_LEAST_ONCE
        )
        published.result(TIMEOUT)
        assert watcher.receive() == (
            "sdk-out/sdk-device",
            {"reported": {"on": True}, "who": "sdk-device"},
        )
    finally:
        connection.disconnect().result(TIMEOUT)
        watcher.close()
        iot.delete_topic_rule(ruleName="from_the_sdk")


# -- the API: shapes and errors --------------------------------------------------------------


def test_the_topic_rule_operations_have_aws_shapes(iot: Any, name: str) -> None:
    rule = payload("SELECT * FROM 'a/+'", republish("b"), description="d")
    iot.create_topic_rule(ruleName=name, topicRulePayload=rule)  # no output members
    got = iot.get_topic_rule(ruleName=name)
    assert_shape("iot", "GetTopicRule", members(got))
    assert got["ruleArn"] == f"arn:aws:iot:us-east-1:123456789012:rule/{name}"
    assert got["rule"]["sql"] == "SELECT * FROM 'a/+'"
    assert got["rule"]["ruleDisabled"] is False
    assert isinstance(got["rule"]["createdAt"], datetime)
    assert got["rule"]["createdAt"].tzinfo is not None  # epoch seconds on the wire

    iot.disable_topic_rule(ruleName=name)
    listed = iot.list_topic_rules(ruleDisabled=True)
    assert_shape("iot", "ListTopicRules", members(listed))
    [item] = [r for r in listed["rules"] if r["ruleName"] == name]
    assert item["topicPattern"] == "a/+"
    assert item["ruleDisabled"] is True
    iot.enable_topic_rule(ruleName=name)
    assert iot.get_topic_rule(ruleName=name)["rule"]["ruleDisabled"] is False

    iot.replace_topic_rule(ruleName=name, topicRulePayload=payload("SELECT * FROM 'c'"))
    assert iot.get_topic_rule(ruleName=name)["rule"]["actions"] == []
    assert [r["ruleName"] for r in iot.list_topic_rules(topic="c")["rules"]] == [name]

    iot.delete_topic_rule(ruleName=name)
    with pytest.raises(iot.exceptions.UnauthorizedException) as info:
        iot.get_topic_rule(ruleName=name)
    assert info.value.response["Error"]["Message"] == f"Access to topic rule '{name}' was denied"


def test_the_topic_rule_errors_are_awss(iot: Any, name: str) -> None:
    with pytest.raises(iot.exceptions.SqlParseException) as parse_error:
        iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT FROM WHERE"))
    assert parse_error.value.response["Error"]["Message"].startswith("Line 1:")
    # Its passing twin, then the same name again.
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT * FROM 'x'"))
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_topic_rule(ruleName=name, topicRulePayload=payload("SELECT * FROM 'x'"))
    with pytest.raises(iot.exceptions.InvalidRequestException) as invalid:
        iot.replace_topic_rule(
            ruleName=name, topicRulePayload=payload("SELECT * FROM 'x'", *[republish("y")] * 11)
        )
    assert "length less than or equal to 10" in invalid.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        iot.enable_topic_rule(ruleName=f"{name}_absent")
    assert error_code(missing) == "UnauthorizedException"
    iot.delete_topic_rule(ruleName=name)


def test_the_account_holds_at_most_max_topic_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topic_rules, "MAX_TOPIC_RULES", 2)
    with TopicRuleStore.open(tmp_path) as store:
        service = TopicRuleService(store, region="us-east-1", account_id="123456789012")
        rule = payload("SELECT * FROM 'x'")
        for name in ("one", "two"):  # the passing twin: up to the quota
            service.create_topic_rule({"ruleName": name, "topicRulePayload": rule})
        with pytest.raises(AwsApiError) as info:
            service.create_topic_rule({"ruleName": "three", "topicRulePayload": rule})
        assert info.value.code == "LimitExceededException"
        with pytest.raises(AwsApiError) as again:  # an existing name still says so
            service.create_topic_rule({"ruleName": "one", "topicRulePayload": rule})
        assert again.value.code == "ResourceAlreadyExistsException"
