"""Bounded message state (issue 11 item 4): MQTT 5 user properties and the retained store."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from aws_iot_mock.config import load_config
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.testing import IotBrokerThread, paho_client
from tests.serve_child import REPO_ROOT

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
QUOTA_EXCEEDED = 0x97


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread(
        aws_quotas=False,
        config={"limits": {"retained_messages_max": 2, "user_properties_max_bytes": 64}},
    ) as running:
        yield running


def user_properties(*pairs: tuple[str, str]) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = list(pairs)
    return properties


class Device:
    """A paho MQTT 5 client that records PUBACK reason codes and messages."""

    def __init__(self, broker: IotBrokerThread, name: str) -> None:
        self.client = paho_client(broker.create_device(name, ALLOW_ALL), MQTTProtocolVersion.MQTTv5)
        self.acks: queue.Queue[int] = queue.Queue()
        self.messages: queue.Queue[Any] = queue.Queue()
        self.client.on_publish = lambda _c, _u, _mid, reason, _p: self.acks.put(reason.value)
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)

    def publish(self, topic: str, payload: bytes, **options: Any) -> int:
        self.client.publish(topic, payload, qos=1, **options)
        return self.acks.get(timeout=10)

    def subscribe(self, topic_filter: str) -> None:
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda *_args: subscribed.put(True)
        self.client.subscribe(topic_filter, qos=1)
        subscribed.get(timeout=10)


def test_user_properties_over_the_limit_are_refused_with_0x97(broker: IotBrokerThread) -> None:
    publisher = Device(broker, "props-publisher")
    subscriber = Device(broker, "props-subscriber")
    subscriber.subscribe("props/#")

    code = publisher.publish("props/big", b"x", properties=user_properties(("k" * 40, "v" * 40)))

    assert code == QUOTA_EXCEEDED
    refusal = broker.wait_for_refusal(Reason.USER_PROPERTIES_LIMIT_EXCEEDED, "props-publisher")
    assert "1 user properties of 85 bytes; at most 64 bytes" in str(refusal["details"])
    # The twin: properties within the limit are delivered with the message.
    small = user_properties(("unit", "celsius"))
    assert publisher.publish("props/small", b"21", properties=small) == 0
    message = subscriber.messages.get(timeout=10)
    assert message.topic == "props/small"
    assert message.properties.UserProperty == [("unit", "celsius")]
    assert subscriber.messages.empty()


def test_many_empty_user_properties_count_as_they_are_encoded(broker: IotBrokerThread) -> None:
    # Issue 11: 26,000 empty properties in one PUBLISH were nothing by keys and values, yet
    # 130 KB on the wire and 1.9 MB in memory. Each costs 5 bytes as MQTT 5 encodes it.
    publisher = Device(broker, "empty-props-publisher")
    subscriber = Device(broker, "empty-props-subscriber")
    subscriber.subscribe("empty-props/#")

    code = publisher.publish("empty-props/many", b"x", properties=user_properties(*[("", "")] * 13))

    assert code == QUOTA_EXCEEDED
    refusal = broker.wait_for_refusal(
        Reason.USER_PROPERTIES_LIMIT_EXCEEDED, "empty-props-publisher"
    )
    assert "13 user properties of 65 bytes; at most 64 bytes" in str(refusal["details"])
    # The twin: 12 empty properties (60 bytes) are delivered, all 12.
    assert (
        publisher.publish("empty-props/some", b"x", properties=user_properties(*[("", "")] * 12))
        == 0
    )
    message = subscriber.messages.get(timeout=10)
    assert message.topic == "empty-props/some"
    assert message.properties.UserProperty == [("", "")] * 12
    assert subscriber.messages.empty()


def test_a_new_retained_message_past_the_limit_is_throttled(broker: IotBrokerThread) -> None:
    device = Device(broker, "retainer")
    assert device.publish("kept/1", b"one", retain=True) == 0
    assert device.publish("kept/2", b"two", retain=True) == 0

    assert device.publish("kept/3", b"three", retain=True) == QUOTA_EXCEEDED
    refusal = broker.wait_for_refusal(Reason.RETAINED_MESSAGES_LIMIT_EXCEEDED, "retainer")
    assert "2 retained messages are stored" in str(refusal["details"])

    # Twins: replacing a retained message, deleting one, then storing a new one are allowed.
    assert device.publish("kept/1", b"one again", retain=True) == 0
    assert device.publish("kept/2", b"", retain=True) == 0
    assert device.publish("kept/3", b"three", retain=True) == 0
    reader = Device(broker, "retained-reader")
    reader.subscribe("kept/3")
    message = reader.messages.get(timeout=10)
    assert (message.topic, message.payload, message.retain) == ("kept/3", b"three", True)


def test_the_defaults_are_awss(tmp_path: Any) -> None:
    limits = load_config(REPO_ROOT / "config" / "default.yaml").limits
    assert limits.retained_messages_max == 500_000
    assert limits.user_properties_max_bytes == 8192
