"""The rules engine in a running broker, with real parts on every side.

Devices publish with paho-mqtt (over TLS, client certificates); subscribers are raw MQTT
clients that see the exact packets; the actions reach a local HTTP server and a moto server
started by the test, read back with boto3. Nothing sleeps: every wait is on a message, a log
record, an HTTP request or a reload, with a deadline; an absence is proven by order (a rule's
queue runs in order, so a later message's result proves an earlier one produced nothing).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import stat
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client

from aws_iot_mock import cli
from aws_iot_mock.config import Config, RulesConfig
from aws_iot_mock.mqtt.codec import Properties
from aws_iot_mock.testing._broker import DeviceFiles
from aws_iot_mock.testing.clients import paho_client
from tests.conftest import Device, RunningBroker, client_context, make_config, started_broker
from tests.local_services import HttpRecorder, aws_client, moto_server
from tests.test_mqtt_pubsub import RawClient

TIMEOUT = 10.0
ROLE = "arn:aws:iam::123456789012:role/aws_iot_rule"


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def config(tmp_path: Path, moto_endpoint: str) -> Config:
    return dataclasses.replace(
        make_config(tmp_path),
        rules=RulesConfig(aws_endpoint_url=moto_endpoint, action_timeout=TIMEOUT),
    )


class Rig:
    """A broker's devices: raw MQTT subscribers and paho publishers, closed at teardown."""

    def __init__(self, running: RunningBroker) -> None:
        self.running = running
        self.device = running.create_device()
        self._raw: list[RawClient] = []
        self._paho: list[Client] = []

    async def subscriber(self, client_id: str, *filters: str) -> RawClient:
        ctx = client_context(self.running.root_ca_path, self.device)
        client = await RawClient.open(self.running.port, ctx, 5, sni=self.running.config.endpoint)
        self._raw.append(client)
        await client.connect(client_id)
        if filters:
            await client.subscribe(*filters)
        return client

    async def publisher(self, client_id: str) -> Client:
        files = device_files(self.running, self.device, client_id)
        client = await asyncio.to_thread(paho_client, files, client_id=client_id)
        self._paho.append(client)
        return client

    async def close(self) -> None:
        for client in self._paho:
            await asyncio.to_thread(client.disconnect)
            await asyncio.to_thread(client.loop_stop)
        for raw in self._raw:
            await raw.close()


def device_files(running: RunningBroker, device: Device, client_id: str) -> DeviceFiles:
    arn = f"arn:aws:iot:us-east-1:123456789012:cert/{device.certificate_id}"
    return DeviceFiles(
        client_id=client_id,
        cert_path=device.cert_path,
        key_path=device.key_path,
        root_ca_path=running.root_ca_path,
        certificate_id=device.certificate_id,
        certificate_arn=arn,
        thing_name=client_id,
        policy_name="allow-all",
        endpoint=running.config.endpoint,
        port=running.port,
    )


async def publish(client: Client, topic: str, payload: bytes | Mapping[str, object]) -> None:
    """Publish at QoS 1 and wait for the PUBACK (paho, in a thread)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def send() -> None:
        info = client.publish(topic, body, qos=1)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"no PUBACK for {topic}"

    await asyncio.to_thread(send)


@pytest.fixture
async def rig(running_broker: RunningBroker) -> AsyncIterator[Rig]:
    rig = Rig(running_broker)
    try:
        yield rig
    finally:
        await rig.close()


def create_rule(running: RunningBroker, name: str, sql: str, *actions: object, **more: Any) -> None:
    payload: dict[str, Any] = {
        "sql": sql,
        "awsIotSqlVersion": "2016-03-23",
        "actions": list(actions),
        **more,
    }
    running.broker.control_plane.call(
        "CreateTopicRule", {"ruleName": name, "topicRulePayload": payload}
    )


def republish(topic: str, **more: object) -> dict[str, object]:
    return {"republish": {"roleArn": ROLE, "topic": topic, **more}}


def record_of(event: str, rule: str, **fields: object) -> Callable[[Mapping[str, object]], bool]:
    def matches(record: Mapping[str, object]) -> bool:
        return (
            record.get("eventType") == event
            and record.get("ruleName") == rule
            and all(record.get(key) == value for key, value in fields.items())
        )

    return matches


async def received_json(client: RawClient) -> tuple[str, dict[str, Any]]:
    packet = await client.receive_publish()
    return packet.topic, json.loads(packet.payload)


# -- republish ---------------------------------------------------------------------------------


async def test_republish_rule_delivers_to_a_subscriber(rig: Rig) -> None:
    running = rig.running
    create_rule(
        running,
        "hot_readings",
        "SELECT temperature, topic(2) AS device, clientid() AS client "
        "FROM 'devices/+/telemetry' WHERE temperature > 30",
        republish(
            "alerts/${topic(2)}",
            qos=1,
            headers={
                "contentType": "application/json",
                "userProperties": [{"key": "rule", "value": "hot_readings"}],
            },
        ),
    )
    watcher = await rig.subscriber("watcher", "alerts/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "devices/sensor-1/telemetry", {"temperature": 20})  # WHERE false
    await publish(sensor, "devices/sensor-1/telemetry", {"temperature": 35})

    packet = await watcher.receive_publish()
    # The rule's queue runs in order: the first republish is the second message's.
    assert packet.topic == "alerts/sensor-1"
    assert json.loads(packet.payload) == {
        "temperature": 35,
        "device": "sensor-1",
        "client": "sensor-1",
    }
    assert packet.qos == 1
    assert packet.properties.content_type == "application/json"
    assert packet.properties.user_properties == (("rule", "hot_readings"),)

    match = await running.wait_for_record(record_of("RuleMatch", "hot_readings"))
    assert match["clientId"] == "sensor-1"
    assert match["principalId"] == rig.device.certificate_id
    assert match["topicName"] == "devices/sensor-1/telemetry"
    execution = await running.wait_for_record(
        record_of("RuleExecution", "hot_readings", status="Success")
    )
    assert execution["ruleAction"] == "RepublishAction"
    assert execution["resources"] == {"RepublishTopic": "alerts/sensor-1"}
    assert execution["traceId"] == match["traceId"]


async def test_a_rule_created_after_messages_on_its_topic_sees_the_next_one(rig: Rig) -> None:
    # The engine remembers the last topic no rule reads; a new rule set must forget it.
    running = rig.running
    create_rule(running, "elsewhere", "SELECT * FROM 'elsewhere/#'", republish("alerts/else"))
    watcher = await rig.subscriber("watcher", "alerts/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "devices/sensor-1/telemetry", {"n": 1})  # no rule reads it yet
    create_rule(running, "late", "SELECT n FROM 'devices/+/telemetry'", republish("alerts/late"))
    await publish(sensor, "devices/sensor-1/telemetry", {"n": 2})
    assert await received_json(watcher) == ("alerts/late", {"n": 2})


async def test_republish_to_a_reserved_topic_goes_through_the_ingress(rig: Rig) -> None:
    # republish-rule-action.html: "$$aws/things/MyThing/shadow/update" reaches the shadow
    # service, which answers on /update/accepted as for any client's update.
    running = rig.running
    create_rule(
        running,
        "to_shadow",
        "SELECT VALUE {'state': {'reported': {'temperature': temperature}}} FROM 'lamp/report'",
        republish("$$aws/things/lamp/shadow/update"),
    )
    watcher = await rig.subscriber("watcher", "$aws/things/lamp/shadow/update/accepted")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "lamp/report", {"temperature": 21})
    topic, document = await received_json(watcher)
    assert topic == "$aws/things/lamp/shadow/update/accepted"
    assert document["state"] == {"reported": {"temperature": 21}}


async def test_republish_loop_stops_at_the_configured_depth(rig: Rig, config: Config) -> None:
    running = rig.running
    depth = config.rules.republish_max_depth
    create_rule(running, "echo", "SELECT * FROM 'loop/#'", republish("loop/again"))
    watcher = await rig.subscriber("watcher", "loop/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "loop/start", {"n": 1})
    topics = [(await watcher.receive_publish()).topic for _ in range(depth + 2)]
    assert topics == ["loop/start"] + ["loop/again"] * (depth + 1)
    stopped = await running.wait_for_record(record_of("RuleExecution", "echo", status="Failure"))
    assert stopped["reason"] == "RuleRepublishLoop"
    # The last republished message reached the subscriber, and nothing came after it.
    await watcher.expect_nothing()


# -- http and sqs ------------------------------------------------------------------------------


async def test_http_rule_reaches_a_local_http_server(rig: Rig) -> None:
    with HttpRecorder() as server:
        create_rule(
            rig.running,
            "to_http",
            "SELECT temperature FROM 'devices/+/telemetry'",
            {
                "http": {
                    "url": f"{server.url}/ingest/${{topic(2)}}",
                    "headers": [{"key": "x-device", "value": "${clientid()}"}],
                }
            },
        )
        sensor = await rig.publisher("sensor-1")
        await publish(sensor, "devices/sensor-1/telemetry", {"temperature": 22, "other": 1})
        requests = await asyncio.to_thread(server.wait_for_requests, 1, TIMEOUT)
    path, headers, body = requests[0]
    assert path == "/ingest/sensor-1"
    assert headers["content-type"] == "application/json"
    assert headers["x-device"] == "sensor-1"
    assert json.loads(body) == {"temperature": 22}


async def test_sqs_rule_puts_a_message_boto3_reads_back(rig: Rig, moto_endpoint: str) -> None:
    sqs = aws_client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="telemetry")["QueueUrl"]
    create_rule(
        rig.running,
        "to_sqs",
        "SELECT *, topic(2) AS device FROM 'devices/+/telemetry'",
        {"sqs": {"roleArn": ROLE, "queueUrl": queue_url, "useBase64": False}},
    )
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "devices/sensor-1/telemetry", {"temperature": 23})
    # Long polling is the wait: SQS answers as soon as the message is there.
    answer = await asyncio.to_thread(
        sqs.receive_message, QueueUrl=queue_url, WaitTimeSeconds=int(TIMEOUT)
    )
    [message] = answer["Messages"]
    assert json.loads(message["Body"]) == {"temperature": 23, "device": "sensor-1"}
    execution = await rig.running.wait_for_record(
        record_of("RuleExecution", "to_sqs", status="Success")
    )
    assert execution["ruleAction"] == "SqsAction"
    assert execution["resources"] == {"QueueUrl": queue_url}


# -- errorAction ----------------------------------------------------------------------------


async def test_failing_action_triggers_the_error_action(rig: Rig, moto_endpoint: str) -> None:
    running = rig.running
    sqs = aws_client("sqs", moto_endpoint)
    good_queue = sqs.create_queue(QueueName="good")["QueueUrl"]
    missing_queue = f"{moto_endpoint}/123456789012/no-such-queue"
    create_rule(
        running,
        "half_broken",
        "SELECT * FROM 'devices/+/telemetry'",
        {"sqs": {"roleArn": ROLE, "queueUrl": good_queue}},
        {"sqs": {"roleArn": ROLE, "queueUrl": missing_queue}},
        errorAction=republish("errors/${topic(2)}"),
    )
    watcher = await rig.subscriber("watcher", "errors/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "devices/sensor-1/telemetry", b'{"temperature": 24}')

    topic, document = await received_json(watcher)
    assert topic == "errors/sensor-1"
    # rule-error-handling.html: one message per rule and message, with every failure.
    assert document["ruleName"] == "half_broken"
    assert document["topic"] == "devices/sensor-1/telemetry"
    assert document["clientId"] == "sensor-1"
    assert document["base64OriginalPayload"] == "eyJ0ZW1wZXJhdHVyZSI6IDI0fQ=="
    [failure] = document["failures"]
    assert failure["failedAction"] == "SqsAction"
    assert failure["failedResource"] == missing_queue
    assert "Message arrived on: devices/sensor-1/telemetry, Action: sqs" in failure["errorMessage"]
    failed = await running.wait_for_record(
        record_of("RuleExecution", "half_broken", status="Failure")
    )
    assert failed["reason"] == "RuleActionFailed"
    assert failed["ruleAction"] == "SqsAction"
    assert document["cloudwatchTraceId"] == failed["traceId"]
    # The passing twin: the other action delivered.
    answer = await asyncio.to_thread(
        sqs.receive_message, QueueUrl=good_queue, WaitTimeSeconds=int(TIMEOUT)
    )
    assert json.loads(answer["Messages"][0]["Body"]) == {"temperature": 24}


async def test_a_republish_the_ingress_refuses_is_an_action_failure(rig: Rig) -> None:
    # Lifecycle event topics are AWS's to publish: the one ingress refuses them for rules too.
    running = rig.running
    create_rule(
        running,
        "bad_republish",
        "SELECT * FROM 'devices/+/telemetry'",
        republish("$$aws/events/presence/connected/${topic(2)}"),
        errorAction=republish("errors/republish"),
    )
    watcher = await rig.subscriber("watcher", "errors/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "devices/sensor-1/telemetry", {"temperature": 25})
    _topic, document = await received_json(watcher)
    [failure] = document["failures"]
    assert failure["failedAction"] == "RepublishAction"
    assert failure["failedResource"] == "$aws/events/presence/connected/sensor-1"
    failed = await running.wait_for_record(
        record_of("RuleExecution", "bad_republish", status="Failure")
    )
    assert failed["reason"] == "RESERVED_TOPIC"


# -- Basic Ingest ------------------------------------------------------------------------------


async def test_basic_ingest_reaches_the_rule_and_no_subscriber(rig: Rig) -> None:
    running = rig.running
    create_rule(
        running,
        "BuildingManager",
        "SELECT *, topic() AS source FROM 'Buildings/#'",
        republish("ingested/${topic(2)}"),
    )
    watcher = await rig.subscriber("watcher", "#", "ingested/#")
    sensor = await rig.publisher("sensor-1")
    # iot-basic-ingest.html's example topic.
    ingest = "$aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights"
    await publish(sensor, ingest, {"on": True})
    topic, document = await received_json(watcher)
    # topic() does not see the $aws/rules/BuildingManager prefix.
    assert (topic, document) == (
        "ingested/Building5",
        {"on": True, "source": "Buildings/Building5/Floor2/Room201/Lights"},
    )
    # '#' matched the republished message but never the Basic Ingest one.
    await watcher.expect_nothing()

    await publish(sensor, "$aws/rules/NoSuchRule/Buildings/x", {"on": True})
    missing = await running.wait_for_record(record_of("RuleNotFound", "NoSuchRule"))
    assert missing["reason"] == "RuleNotFound"
    assert missing["details"] == "Rule NoSuchRule not found"
    assert missing["topicName"] == "$aws/rules/NoSuchRule/Buildings/x"


# -- off the publish path ----------------------------------------------------------------------


async def test_a_slow_action_does_not_delay_delivery(rig: Rig) -> None:
    with HttpRecorder(stall=True) as server:
        create_rule(
            rig.running,
            "slow_http",
            "SELECT * FROM 'slow/#'",
            {"http": {"url": f"{server.url}/hang"}},
        )
        watcher = await rig.subscriber("watcher", "slow/#")
        sensor = await rig.publisher("sensor-1")
        await publish(sensor, "slow/1", {"n": 1})
        # The action is now stalled in the HTTP server...
        await asyncio.to_thread(server.wait_for_requests, 1, TIMEOUT)
        for n in (2, 3):
            await publish(sensor, f"slow/{n}", {"n": n})
        # ...and every message still reaches the subscriber.
        topics = [(await watcher.receive_publish()).topic for _ in range(3)]
        assert topics == ["slow/1", "slow/2", "slow/3"]
        assert len(server.requests) == 1  # still stalled on the first one
        server.release()
        await asyncio.to_thread(server.wait_for_requests, 3, TIMEOUT)


async def test_a_full_rule_queue_drops_and_logs(config: Config) -> None:
    bounded = dataclasses.replace(
        config, rules=dataclasses.replace(config.rules, queue_max=2, workers=1)
    )
    async with started_broker(bounded) as running:
        rig = Rig(running)
        try:
            with HttpRecorder(stall=True) as server:
                create_rule(
                    running, "bounded", "SELECT * FROM 'busy/#'", {"http": {"url": server.url}}
                )
                sensor = await rig.publisher("sensor-1")
                await publish(sensor, "busy/1", {"n": 1})
                await asyncio.to_thread(server.wait_for_requests, 1, TIMEOUT)  # running
                for n in range(2, 7):  # 2 and 3 wait in the queue, 4, 5 and 6 are dropped
                    await publish(sensor, f"busy/{n}", {"n": n})
                first = await running.wait_for_record(record_of("RuleMessageThrottled", "bounded"))
                assert first["reason"] == "RuleExecutionThrottled"
                assert first["topicName"] == "busy/4"
                assert "rules.queue_max" in str(first["details"])
                server.release()
                ended = await running.wait_for_record(
                    lambda r: (
                        record_of("RuleMessageThrottled", "bounded")(r)
                        and "3 message(s)" in str(r["details"])
                    )
                )
                assert ended["topicName"] == "busy/4"
                bodies = [json.loads(body)["n"] for _p, _h, body in server.requests]
                assert bodies == [1, 2, 3]
        finally:
            await rig.close()


# -- persistence and changes -------------------------------------------------------------------


async def test_rules_survive_a_restart(config: Config) -> None:
    async with started_broker(config) as running:
        create_rule(running, "kept", "SELECT * FROM 'in/#'", republish("out/kept"))
    store = config.state_dir / "rules.sqlite3"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    async with started_broker(config) as running:
        rig = Rig(running)
        try:
            watcher = await rig.subscriber("watcher", "out/#")
            sensor = await rig.publisher("sensor-1")
            await publish(sensor, "in/x", {"after": "restart"})
            assert await received_json(watcher) == ("out/kept", {"after": "restart"})
        finally:
            await rig.close()


async def test_a_cli_change_reaches_the_running_broker(rig: Rig, tmp_path: Path) -> None:
    running = rig.running
    engine = running.broker.rules_engine
    reloaded = asyncio.Event()
    # reload() runs on the event loop (the broker's one-second tick polls the store).
    engine.reload_listeners.append(reloaded.set)
    payload = tmp_path / "rule.json"
    payload.write_text(
        json.dumps({"sql": "SELECT * FROM 'cli/#'", "actions": [republish("out/cli")]})
    )
    state = ["--state-dir", str(running.config.state_dir)]
    code = await asyncio.to_thread(
        cli.main,
        [
            "create-topic-rule",
            "--rule-name",
            "from_cli",
            "--topic-rule-payload",
            f"file://{payload}",
            *state,
        ],
    )
    assert code == 0
    # The broker polls the store's generation every second (another process wrote it).
    while "from_cli" not in engine.rules.names:
        reloaded.clear()
        await asyncio.wait_for(reloaded.wait(), TIMEOUT)
    watcher = await rig.subscriber("watcher", "out/#")
    sensor = await rig.publisher("sensor-1")
    await publish(sensor, "cli/x", {"n": 1})
    assert await received_json(watcher) == ("out/cli", {"n": 1})


async def test_an_mqtt5_publish_keeps_its_properties_for_the_sql(rig: Rig) -> None:
    # A raw MQTT 5 device: the rule sees the payload; republish headers are the rule's own.
    create_rule(
        rig.running,
        "props",
        "SELECT * FROM 'raw/in'",
        republish("raw/out", headers={"payloadFormatIndicator": "UTF8_DATA"}),
    )
    watcher = await rig.subscriber("watcher", "raw/out")
    device = await rig.subscriber("device")
    await device.publish("raw/in", b'{"a":1}', properties=Properties(content_type="x/y"))
    packet = await watcher.receive_publish()
    assert packet.payload == b'{"a":1}'
    assert packet.properties.payload_format_indicator == 1
    assert packet.properties.content_type is None
