"""Rule actions against real local services: an HTTP server, a moto server, a local command.

The moto server (moto.server.ThreadedMotoServer on 127.0.0.1, port 0) stands in for SQS, SNS,
DynamoDB, Kinesis, Firehose, S3 and CloudWatch Logs; every delivery is read back with boto3.
Failing actions return the failure values an errorAction is built from.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aws_iot_mock.rules.actions import (
    ActionFailure,
    ActionInput,
    ActionRunner,
    ActionsConfig,
    ActionSuccess,
    RepublishRequest,
)
from aws_iot_mock.rules.error_action import error_action_document
from aws_iot_mock.rules.sql import EvaluationContext, parse
from tests.local_services import REGION, aws_client, moto_server

ROLE = "arn:aws:iam::123456789012:role/aws_iot_rule"
CONTEXT = EvaluationContext(
    timestamp_ms=1460685389000,
    client_id="sensor-1",
    trace_id="7e146a2c-95b5-6caf-98b9-50e3969734c7",
    new_uuid=lambda: "11111111-2222-3333-4444-555555555555",
)


def given(
    sql: str,
    payload: bytes | dict[str, Any],
    topic: str = "some/topic",
    *,
    rule: str = "TestRule",
    version: str = "2016-03-23",
) -> ActionInput:
    raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    result = parse(sql, version).evaluate(raw, topic, CONTEXT)
    assert result is not None
    return ActionInput(rule, version, result, raw, topic, CONTEXT)


# ----------------------------------------------------------------------------------------------
# Services


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def aws(service: str, endpoint: str) -> Any:
    return aws_client(service, endpoint)


@pytest.fixture
def runner(moto_endpoint: str) -> ActionRunner:
    return ActionRunner(
        ActionsConfig(aws_endpoint_url=moto_endpoint, aws_region=REGION, timeout_s=20)
    )


class Recorder(BaseHTTPRequestHandler):
    """Records POSTs; answers each with the next status of ``statuses`` (then 200)."""

    requests: list[tuple[str, dict[str, str], bytes]]
    statuses: list[int]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        self.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        status = self.statuses.pop(0) if self.statuses else 200
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"requests": [], "statuses": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # bound and listening on return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------------------------------------
# republish (returned to the engine, not published here)


def test_republish_returns_the_message_for_the_broker() -> None:
    runner = ActionRunner(ActionsConfig())
    # republish-rule-action.html, the example with a substitution template
    action = {"republish": {"topic": "${topic()}/republish", "qos": 1, "roleArn": ROLE}}
    outcome = runner.run(action, given("SELECT * FROM 'some/topic'", {"a": 1}))
    assert outcome == ActionSuccess(
        "republish",
        {"RepublishTopic": "some/topic/republish"},
        republish=RepublishRequest(topic="some/topic/republish", payload=b'{"a":1}', qos=1),
    )


def test_republish_to_a_reserved_topic_uses_double_dollar() -> None:
    runner = ActionRunner(ActionsConfig())
    action = {"republish": {"topic": "$$aws/things/MyThing/shadow/update", "roleArn": ROLE}}
    outcome = runner.run(
        action, given("SELECT state FROM 'some/topic'", {"state": {"desired": {"on": 1}}})
    )
    assert isinstance(outcome, ActionSuccess)
    assert outcome.republish is not None
    assert outcome.republish.topic == "$aws/things/MyThing/shadow/update"
    assert outcome.republish.qos == 0


def test_republish_mqtt5_headers() -> None:
    runner = ActionRunner(ActionsConfig())
    action = {
        "republish": {
            "topic": "out",
            "roleArn": ROLE,
            "headers": {
                "payloadFormatIndicator": "UTF8_DATA",
                "contentType": "${ctype}",
                "responseTopic": "replies/${clientid()}",
                "correlationData": base64.b64encode(b"\x01\x02").decode(),
                "messageExpiry": "60",
                "userProperties": [{"key": "device", "value": "${topic(2)}"}],
            },
        }
    }
    outcome = runner.run(
        action, given("SELECT a FROM 'x/+'", {"a": 1, "ctype": "application/json"}, "x/dev7")
    )
    assert isinstance(outcome, ActionSuccess)
    assert outcome.republish == RepublishRequest(
        topic="out",
        payload=b'{"a":1}',
        content_type="application/json",
        response_topic="replies/sensor-1",
        correlation_data=b"\x01\x02",
        message_expiry_interval=60,
        payload_format_utf8=True,
        user_properties=(("device", "dev7"),),
    )


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("$aws/things/MyThing/shadow/update", "reserved"),  # needs $$
        ("$$aws/things/MyThing/jobs/get", "reserved job topics"),
        ("${wild}", "wildcard"),
    ],
)
def test_republish_refusals(topic: str, reason: str) -> None:
    runner = ActionRunner(ActionsConfig())
    outcome = runner.run(
        {"republish": {"topic": topic, "roleArn": ROLE}},
        given("SELECT * FROM 't'", {"wild": "a/+"}, "t"),
    )
    assert isinstance(outcome, ActionFailure)
    assert outcome.failed_action == "RepublishAction"
    assert reason in outcome.error_message
    assert "Message arrived on: t, Action: republish" in outcome.error_message


# ----------------------------------------------------------------------------------------------
# http


def test_http_posts_the_result_with_templated_headers(
    http_server: tuple[str, type[Recorder]],
) -> None:
    url, handler = http_server
    runner = ActionRunner(ActionsConfig(timeout_s=10))
    action = {
        "http": {
            "url": url + "/subpath/${topic(2)}",
            "confirmationUrl": url,
            "headers": [
                {"key": "static_header_key", "value": "static_header_value"},
                {"key": "substitutable_header_key", "value": "${value_from_payload}"},
            ],
        }
    }
    outcome = runner.run(
        action, given("SELECT * FROM 'some/+'", {"value_from_payload": "v1"}, "some/dev")
    )
    assert outcome == ActionSuccess("http", {"Url": url + "/subpath/dev"})
    [(path, headers, body)] = handler.requests
    assert path == "/subpath/dev"
    assert headers["static_header_key"] == "static_header_value"
    assert headers["substitutable_header_key"] == "v1"
    assert headers["content-type"] == "application/json"
    assert body == b'{"value_from_payload":"v1"}'


def test_http_binary_payload_is_octet_stream(http_server: tuple[str, type[Recorder]]) -> None:
    url, handler = http_server
    outcome = ActionRunner(ActionsConfig()).run(
        {"http": {"url": url}}, given("SELECT * FROM 't'", b"\x00\xff", "t")
    )
    assert isinstance(outcome, ActionSuccess)
    [(_, headers, body)] = handler.requests
    assert headers["content-type"] == "application/octet-stream"
    assert body == b"\x00\xff"


def test_http_retries_5xx_at_most_twice_and_not_4xx(
    http_server: tuple[str, type[Recorder]],
) -> None:
    url, handler = http_server
    runner = ActionRunner(ActionsConfig())
    handler.statuses[:] = [500, 503, 502]
    outcome = runner.run({"http": {"url": url}}, given("SELECT * FROM 't'", {"a": 1}, "t"))
    assert isinstance(outcome, ActionFailure)
    assert len(handler.requests) == 3  # "The maximum number of tries is three"
    assert "HTTP 502" in outcome.error_message
    assert outcome.failed_action == "HttpAction"

    handler.requests.clear()
    handler.statuses[:] = [429]
    assert isinstance(
        runner.run({"http": {"url": url}}, given("SELECT * FROM 't'", {"a": 1}, "t")), ActionSuccess
    )
    assert len(handler.requests) == 2

    handler.requests.clear()
    handler.statuses[:] = [400, 200]
    outcome = runner.run({"http": {"url": url}}, given("SELECT * FROM 't'", {"a": 1}, "t"))
    assert isinstance(outcome, ActionFailure)
    assert len(handler.requests) == 1  # no retry for "status code other than 429, 500-599"


def test_http_unreachable_url_fails() -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    outcome = ActionRunner(ActionsConfig(timeout_s=5)).run(
        {"http": {"url": url}}, given("SELECT * FROM 't'", {"a": 1}, "t")
    )
    assert isinstance(outcome, ActionFailure)
    assert outcome.failed_resource == url
    assert "Failed to send the HTTP request" in outcome.error_message


def test_http_unconfirmed_destination_is_refused_and_confirmed_twin_allowed(
    http_server: tuple[str, type[Recorder]],
) -> None:
    url, handler = http_server
    # 192.0.2.0/24 is TEST-NET-1: refused before any connection is attempted.
    outcome = ActionRunner(ActionsConfig()).run(
        {"http": {"url": "https://192.0.2.1/hook"}}, given("SELECT * FROM 't'", {"a": 1}, "t")
    )
    assert isinstance(outcome, ActionFailure)
    assert "not confirmed" in outcome.error_message

    strict = ActionRunner(ActionsConfig(http_allow_loopback=False))
    refused = strict.run({"http": {"url": url}}, given("SELECT * FROM 't'", {"a": 1}, "t"))
    assert isinstance(refused, ActionFailure)
    assert not handler.requests
    confirmed = ActionRunner(
        ActionsConfig(http_allow_loopback=False, http_confirmed_destinations=(url,))
    )
    assert isinstance(
        confirmed.run({"http": {"url": url + "/a"}}, given("SELECT * FROM 't'", {"a": 1}, "t")),
        ActionSuccess,
    )


# ----------------------------------------------------------------------------------------------
# lambda via a local command


def test_lambda_runs_the_configured_command(tmp_path: Path) -> None:
    out = tmp_path / "event.json"
    command = [
        sys.executable,
        "-c",
        f"import sys; open({str(out)!r}, 'wb').write(sys.stdin.buffer.read())",
    ]
    runner = ActionRunner(ActionsConfig(lambda_commands={"myLambdaFunction": command}))
    arn = "arn:aws:lambda:us-east-2:123456789012:function:myLambdaFunction:someAlias"
    outcome = runner.run(
        {"lambda": {"functionArn": arn}},
        given("SELECT encode(*, 'base64') AS data FROM 'my_topic'", b"\x01\x02", "my_topic"),
    )
    assert outcome == ActionSuccess("lambda", {"FunctionArn": arn})
    assert json.loads(out.read_bytes()) == {"data": "AQI="}


def test_lambda_command_failure_is_an_action_failure() -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"]
    runner = ActionRunner(ActionsConfig(lambda_commands={"f": command}))
    outcome = runner.run(
        {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"}},
        given("SELECT * FROM 't'", {}, "t"),
    )
    assert isinstance(outcome, ActionFailure)
    assert outcome.failed_action == "LambdaAction"
    assert "status 3: boom" in outcome.error_message


# ----------------------------------------------------------------------------------------------
# AWS services on a moto server


def test_sqs_message_is_read_back(runner: ActionRunner, moto_endpoint: str) -> None:
    sqs = aws("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="iot-rule-queue")["QueueUrl"]
    outcome = runner.run(
        {"sqs": {"queueUrl": queue_url, "roleArn": ROLE}},
        given("SELECT temperature AS t FROM 'some/topic'", {"temperature": 50}),
    )
    assert outcome == ActionSuccess("sqs", {"QueueUrl": queue_url})
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == '{"t":50}'

    runner.run(
        {"sqs": {"queueUrl": queue_url, "roleArn": ROLE, "useBase64": True}},
        given("SELECT * FROM 't'", b"\xff\x00"),
    )
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert base64.b64decode(message["Body"]) == b"\xff\x00"


def test_sqs_missing_queue_fails(runner: ActionRunner, moto_endpoint: str) -> None:
    queue_url = f"{moto_endpoint}/123456789012/no-such-queue"
    outcome = runner.run(
        {"sqs": {"queueUrl": queue_url, "roleArn": ROLE}},
        given("SELECT * FROM 't'", {"a": 1}, "error/action"),
    )
    assert isinstance(outcome, ActionFailure)
    assert outcome.failed_action == "SqsAction"
    assert outcome.failed_resource == queue_url
    assert outcome.error_message.startswith(
        "Failed to send the message to the SQS queue. The error received was"
    )
    assert "Message arrived on: error/action, Action: sqs" in outcome.error_message


def test_sns_publish_reaches_a_subscribed_queue(runner: ActionRunner, moto_endpoint: str) -> None:
    sns, sqs = aws("sns", moto_endpoint), aws("sqs", moto_endpoint)
    topic_arn = sns.create_topic(Name="iot-rule-topic")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="sns-subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    outcome = runner.run(
        {"sns": {"targetArn": topic_arn, "roleArn": ROLE, "messageFormat": "RAW"}},
        given("SELECT a FROM 't'", {"a": "hello"}),
    )
    assert outcome == ActionSuccess("sns", {"TargetArn": topic_arn})
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == '{"a":"hello"}'


def test_dynamodb_v2_writes_each_attribute_as_a_column(
    runner: ActionRunner, moto_endpoint: str
) -> None:
    dynamodb = aws("dynamodb", moto_endpoint)
    dynamodb.create_table(
        TableName="iot_rule_table",
        KeySchema=[{"AttributeName": "device", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "device", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    action = {"dynamoDBv2": {"putItem": {"tableName": "iot_rule_table"}, "roleArn": ROLE}}
    outcome = runner.run(
        action,
        given(
            "SELECT topic(2) AS device, temp, tags FROM 'd/+'",
            {"temp": 21.5, "tags": ["a", 1]},
            "d/dev9",
        ),
    )
    assert outcome == ActionSuccess("dynamoDBv2", {"TableName": "iot_rule_table"})
    item = dynamodb.get_item(TableName="iot_rule_table", Key={"device": {"S": "dev9"}})["Item"]
    assert item == {
        "device": {"S": "dev9"},
        "temp": {"N": "21.5"},
        "tags": {"L": [{"S": "a"}, {"N": "1"}]},
    }

    missing = runner.run(
        {"dynamoDBv2": {"putItem": {"tableName": "nope"}, "roleArn": ROLE}},
        given("SELECT 'x' AS device FROM 't'", {}),
    )
    assert isinstance(missing, ActionFailure)
    assert missing.failed_resource == "nope"


def test_kinesis_record_is_read_back(runner: ActionRunner, moto_endpoint: str) -> None:
    kinesis = aws("kinesis", moto_endpoint)
    kinesis.create_stream(StreamName="iot-rule-stream", ShardCount=1)
    action = {
        "kinesis": {"streamName": "iot-rule-stream", "partitionKey": "${topic()}", "roleArn": ROLE}
    }
    outcome = runner.run(action, given("SELECT * FROM 'some/topic'", {"a": 1}))
    assert outcome == ActionSuccess("kinesis", {"StreamName": "iot-rule-stream"})
    shard = kinesis.describe_stream(StreamName="iot-rule-stream")["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    iterator = kinesis.get_shard_iterator(
        StreamName="iot-rule-stream", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert record["Data"] == b'{"a":1}'
    assert record["PartitionKey"] == "some/topic"


def test_firehose_records_land_in_s3(runner: ActionRunner, moto_endpoint: str) -> None:
    s3, firehose = aws("s3", moto_endpoint), aws("firehose", moto_endpoint)
    s3.create_bucket(Bucket="firehose-sink")
    firehose.create_delivery_stream(
        DeliveryStreamName="iot-rule-firehose",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::firehose-sink",
        },
    )
    single = {
        "firehose": {"deliveryStreamName": "iot-rule-firehose", "separator": "\n", "roleArn": ROLE}
    }
    assert isinstance(runner.run(single, given("SELECT a FROM 't'", {"a": 1})), ActionSuccess)
    batch = {
        "firehose": {
            "deliveryStreamName": "iot-rule-firehose",
            "separator": ",",
            "batchMode": True,
            "roleArn": ROLE,
        }
    }
    assert isinstance(
        runner.run(batch, given("SELECT VALUE arr FROM 't'", {"arr": [{"b": 1}, {"b": 2}]})),
        ActionSuccess,
    )
    bodies = [
        s3.get_object(Bucket="firehose-sink", Key=item["Key"])["Body"].read()
        for item in s3.list_objects_v2(Bucket="firehose-sink")["Contents"]
    ]
    assert sorted(bodies) == [b'{"a":1}\n', b'{"b":1},{"b":2},']


def test_s3_object_key_template(runner: ActionRunner, moto_endpoint: str) -> None:
    s3 = aws("s3", moto_endpoint)
    s3.create_bucket(Bucket="iot-rule-bucket")
    # s3-rule-action.html: key ${topic()}/${timestamp()} writes "a file called 1460685389 in
    # the some/topic folder"
    action = {
        "s3": {"bucketName": "iot-rule-bucket", "key": "${topic()}/${timestamp()}", "roleArn": ROLE}
    }
    outcome = runner.run(action, given("SELECT * FROM 'some/topic'", {"a": 1}))
    assert outcome == ActionSuccess(
        "s3", {"BucketName": "iot-rule-bucket", "Key": "some/topic/1460685389000"}
    )
    body = s3.get_object(Bucket="iot-rule-bucket", Key="some/topic/1460685389000")["Body"].read()
    assert body == b'{"a":1}'


def test_s3_missing_bucket_fails_like_awss_example(runner: ActionRunner) -> None:
    # rule-error-handling.html: "Failed to put S3 object. The error received was The specified
    # bucket does not exist (... Error Code: NoSuchBucket ...)"
    action = {"s3": {"bucketName": "us-east-1-s3-verify-user", "key": "aaa", "roleArn": ROLE}}
    outcome = runner.run(action, given("SELECT * FROM 'error/action'", {"a": 1}, "error/action"))
    assert isinstance(outcome, ActionFailure)
    assert outcome.failed_action == "S3Action"
    assert outcome.failed_resource == "us-east-1-s3-verify-user"
    assert outcome.error_message.startswith("Failed to put S3 object. The error received was")
    assert "NoSuchBucket" in outcome.error_message


def test_cloudwatch_logs_events_are_read_back(runner: ActionRunner, moto_endpoint: str) -> None:
    logs = aws("logs", moto_endpoint)
    logs.create_log_group(logGroupName="iot-rule-logs")
    action = {"cloudwatchLogs": {"logGroupName": "iot-rule-logs", "roleArn": ROLE}}
    # CloudWatch Logs refuses events older than 14 days: the rules engine's clock reads now.
    now = EvaluationContext(timestamp_ms=int(time.time() * 1000))
    for value in (1, 2):
        message = given("SELECT a FROM 't'", {"a": value}, rule="LogRule")
        message = dataclasses.replace(message, context=now)
        assert isinstance(runner.run(action, message), ActionSuccess)
    events = logs.get_log_events(logGroupName="iot-rule-logs", logStreamName="LogRule")["events"]
    assert [event["message"] for event in events] == ['{"a":1}', '{"a":2}']
    assert {event["timestamp"] for event in events} == {now.timestamp_ms}

    stale = runner.run(action, given("SELECT a FROM 't'", {"a": 3}, rule="LogRule"))
    assert isinstance(stale, ActionFailure)
    assert "rejected" in stale.error_message


# ----------------------------------------------------------------------------------------------
# Configuration refusals


def test_aws_actions_without_an_endpoint_never_reach_real_aws() -> None:
    runner = ActionRunner(ActionsConfig())
    outcome = runner.run(
        {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q", "roleArn": ROLE}},
        given("SELECT * FROM 't'", {}),
    )
    assert isinstance(outcome, ActionFailure)
    assert "No AWS endpoint is configured for sqs" in outcome.error_message


def test_missing_boto3_names_the_extra(tmp_path: Path) -> None:
    # A fresh interpreter where importing boto3 fails, as without the 'aws' extra.
    script = """
import sys
sys.modules["boto3"] = None
from aws_iot_mock.rules.actions import ActionInput, ActionRunner, ActionsConfig
from aws_iot_mock.rules.sql import EvaluationContext, parse
result = parse("SELECT * FROM 't'", "2016-03-23").evaluate(b"{}", "t", EvaluationContext())
given = ActionInput("R", "2016-03-23", result, b"{}", "t", EvaluationContext())
outcome = ActionRunner(ActionsConfig(aws_endpoint_url="http://127.0.0.1:9")).run(
    {"sqs": {"queueUrl": "http://127.0.0.1:9/1/q", "roleArn": "r"}}, given)
print(outcome.error_message)
"""
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'aws-iot-mock[aws]'" in completed.stdout


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ({"timestream": {"databaseName": "d"}}, "not emulated"),
        ({"sqs": {"queueUrl": "q"}, "sns": {"targetArn": "t"}}, "exactly one"),
        ({"sqs": {"roleArn": ROLE}}, "queueUrl is missing"),
        ({"s3": {"bucketName": "b", "key": "${"}}, "Invalid substitution template"),
    ],
)
def test_malformed_actions_fail_with_a_reason(action: dict[str, Any], reason: str) -> None:
    outcome = ActionRunner(ActionsConfig(aws_endpoint_url="http://127.0.0.1:9")).run(
        action, given("SELECT * FROM 't'", {})
    )
    assert isinstance(outcome, ActionFailure)
    assert reason in outcome.error_message


# ----------------------------------------------------------------------------------------------
# The errorAction document


def test_error_action_document_from_failures(runner: ActionRunner, moto_endpoint: str) -> None:
    # rule-error-handling.html: one message per rule and message, holding every failure.
    payload = b'{\n  "message": "Hello vrom AWS IoT console"\n}'
    message = given("SELECT * FROM 'testme/action'", payload, "testme/action", rule="TestAction")
    failures = [
        runner.run(
            {"s3": {"bucketName": "us-east-1-s3-verify-user", "key": "aaa", "roleArn": ROLE}},
            message,
        ),
        runner.run(
            {"sqs": {"queueUrl": f"{moto_endpoint}/123456789012/missing", "roleArn": ROLE}}, message
        ),
    ]
    assert all(isinstance(failure, ActionFailure) for failure in failures)
    document = error_action_document(
        rule_name="TestAction",
        topic="testme/action",
        trace_id="7e146a2c-95b5-6caf-98b9-50e3969734c7",
        client_id="iotconsole-1511213971966-0",
        payload=payload,
        failures=[failure for failure in failures if isinstance(failure, ActionFailure)],
    )
    assert (
        document["base64OriginalPayload"]
        == "ewogICJtZXNzYWdlIjogIkhlbGxvIHZyb20gQVdTIElvVCBjb25zb2xlIgp9"
    )
    assert {key: value for key, value in document.items() if key != "failures"} == {
        "ruleName": "TestAction",
        "topic": "testme/action",
        "cloudwatchTraceId": "7e146a2c-95b5-6caf-98b9-50e3969734c7",
        "clientId": "iotconsole-1511213971966-0",
        "base64OriginalPayload": "ewogICJtZXNzYWdlIjogIkhlbGxvIHZyb20gQVdTIElvVCBjb25zb2xlIgp9",
    }
    failed = document["failures"]
    assert isinstance(failed, list)
    assert [(item["failedAction"], item["failedResource"]) for item in failed] == [
        ("S3Action", "us-east-1-s3-verify-user"),
        ("SqsAction", f"{moto_endpoint}/123456789012/missing"),
    ]
    assert json.loads(json.dumps(document)) == document


def test_error_action_template_sees_the_error_document(
    runner: ActionRunner, moto_endpoint: str
) -> None:
    # rule-error-handling.html's error action: key "${replace(topic(), '/', '-') + '-' +
    # timestamp() + '-' + newuuid()}", evaluated with the error document as the message.
    s3 = aws("s3", moto_endpoint)
    s3.create_bucket(Bucket="message-processing-errors")
    document = error_action_document(
        rule_name="R",
        topic="error/action",
        trace_id="t",
        client_id=None,
        payload=b"{}",
        failures=[],
    )
    raw = json.dumps(document).encode()
    error_message = given("SELECT * FROM '#'", raw, "error/action")
    action = {
        "s3": {
            "roleArn": ROLE,
            "bucketName": "message-processing-errors",
            "key": "${replace(topic(), '/', '-') + '-' + timestamp() + '-' + newuuid()}",
        }
    }
    outcome = runner.run(action, error_message)
    key = "error-action-1460685389000-11111111-2222-3333-4444-555555555555"
    assert outcome == ActionSuccess("s3", {"BucketName": "message-processing-errors", "Key": key})
    stored = json.loads(s3.get_object(Bucket="message-processing-errors", Key=key)["Body"].read())
    assert stored["clientId"] == "n/a"
