"""AWS IoT's per-connection quotas, enforced by default, lifted by ``limits.aws_quotas: false``.

AWS: 100 publishes per second per connection (in and out; the excess "will be discarded"),
512 KiB/s received per connection ("delayed in processing"), 8 topic filters per SUBSCRIBE,
50 subscriptions per connection and 1 CONNECT per second per client ID
(https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits).

The pure tests move a fake clock across the one-second windows; the paho-mqtt tests show what a
real client sees on a broker started with the defaults. Each refusal has its passing twin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import MQTTProtocolVersion

from aws_iot_mock.core.device_core import CoreSettings
from aws_iot_mock.mqtt.codec import (
    Connack,
    Connect,
    Puback,
    Suback,
    Subscribe,
    SubscriptionOptions,
)
from aws_iot_mock.testing import DeviceFiles, DeviceRefusedError, IotBrokerThread, paho_client
from tests.mqtt_pure import ACCOUNT, PureClient, PureCore

QUOTAS_ON = CoreSettings(account_id=ACCOUNT)  # aws_quotas defaults to True
QUOTAS_OFF = CoreSettings(account_id=ACCOUNT, aws_quotas=False)
LEVELS = pytest.mark.parametrize("level", [4, 5], ids=["mqtt311", "mqtt5"])


def quota_core() -> PureCore:
    return PureCore(settings=QUOTAS_ON)


def filters(count: int, qos: int = 1) -> tuple[tuple[str, SubscriptionOptions], ...]:
    return tuple((f"f/{i}", SubscriptionOptions(qos=qos)) for i in range(count))


def publish_many(client: PureClient, count: int, qos: int, topic: str = "t/x") -> list[Any]:
    """``count`` publishes; what the broker answered (PUBACKs at QoS 1)."""
    for i in range(count):
        client.publish(topic, str(i).encode(), qos=qos)
    return client.received()


# -- 100 publishes per second per connection ------------------------------------------------------


@LEVELS
def test_the_101st_publish_in_a_second_is_discarded(level: int) -> None:
    pure = quota_core()
    subscriber = pure.connected("sub", 5)
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub", level)

    answers = publish_many(publisher, 150, qos=1)

    acked = [a for a in answers if isinstance(a, Puback) and a.reason_code == 0]
    assert len(acked) == 100
    delivered = subscriber.publishes()
    assert [p.payload for p in delivered] == [str(i).encode() for i in range(100)]
    if level == 5:  # AWS's MQTT 5 reason code for a quota: 0x97
        assert [a.reason_code for a in answers[100:]] == [0x97] * 50
    else:  # MQTT 3.1.1 has no way to refuse a PUBLISH: discarded, no PUBACK
        assert len(answers) == 100
    (record,) = pure.failures("PUBLISH_RATE_EXCEEDED")  # once per second, not 50 times
    assert record["eventType"] == "Publish-In"
    assert record["clientId"] == "pub"
    assert "100 publishes" in str(record["details"])
    assert publisher.connection.close_request is None  # discarded, not disconnected


def test_the_next_second_publishes_are_routed_again() -> None:
    pure = quota_core()
    subscriber = pure.connected("sub", 5)
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub", 5)
    publish_many(publisher, 101, qos=1)
    assert len(subscriber.publishes()) == 100

    pure.clock.advance(1.0)
    answers = publish_many(publisher, 100, qos=1)

    assert [a.reason_code for a in answers] == [0] * 100
    assert len(subscriber.publishes()) == 100
    assert len(pure.failures("PUBLISH_RATE_EXCEEDED")) == 1


def test_publishes_sent_to_a_client_count_against_its_own() -> None:
    pure = quota_core()
    receiver = pure.connected("rx", 5)
    receiver.subscribe("busy/#", qos=0)
    sender = pure.connected("tx", 5)
    publish_many(sender, 100, qos=0, topic="busy/a")
    assert len(receiver.publishes()) == 100  # outbound: never discarded, but counted

    receiver.publish("mine/1", b"x", qos=1)

    (answer,) = receiver.received()
    assert isinstance(answer, Puback) and answer.reason_code == 0x97
    (record,) = pure.failures("PUBLISH_RATE_EXCEEDED")
    assert record["clientId"] == "rx"


def test_with_the_quotas_lifted_every_publish_is_routed() -> None:
    pure = PureCore(settings=QUOTAS_OFF)
    subscriber = pure.connected("sub", 5)
    subscriber.subscribe("t/#", qos=0)
    publisher = pure.connected("pub", 5)

    answers = publish_many(publisher, 300, qos=1)

    assert [a.reason_code for a in answers] == [0] * 300
    assert len(subscriber.publishes()) == 300
    assert pure.failures("PUBLISH_RATE_EXCEEDED") == []


# -- 512 KiB/s received per connection ------------------------------------------------------------


def test_more_than_512_kib_in_a_second_pauses_reading_until_the_second_is_over() -> None:
    pure = quota_core()
    subscriber = pure.connected("sub", 5)
    subscriber.subscribe("big/#", qos=0)
    publisher = pure.connected("pub", 5)
    started = pure.clock.mono
    payload = b"x" * (100 * 1024)

    for i in range(6):  # 600 KiB
        publisher.publish(f"big/{i}", payload, qos=1)

    # Delayed, not lost: every byte read is handled; the door reads no more this second.
    assert publisher.received() == [Puback(i) for i in range(1, 7)]
    assert len(subscriber.publishes()) == 6
    assert publisher.connection.read_paused_until == started + 1.0
    (record,) = pure.failures("THROUGHPUT_LIMIT_EXCEEDED")
    assert record["clientId"] == "pub"
    assert "reading resumes" in str(record["details"])


def test_512_kib_in_a_second_is_read_at_once() -> None:
    pure = quota_core()
    publisher = pure.connected("pub", 5)
    payload = b"x" * (100 * 1024)

    for i in range(5):  # 500 KiB and the headers: under 512 KiB
        publisher.publish(f"big/{i}", payload, qos=1)

    assert publisher.connection.read_paused_until is None
    assert pure.failures("THROUGHPUT_LIMIT_EXCEEDED") == []


# -- 8 topic filters per SUBSCRIBE ----------------------------------------------------------------


@LEVELS
def test_a_subscribe_with_nine_filters_is_refused_whole(level: int) -> None:
    pure = quota_core()
    client = pure.connected("sub", level)

    client.send(Subscribe(1, filters(9)))

    expected = 0x97 if level == 5 else 0x80
    assert client.received() == [Suback(1, (expected,) * 9)]
    (record,) = pure.failures("SUBSCRIBE_FILTERS_EXCEEDED")
    assert record["eventType"] == "Subscribe"
    assert "9 topic filters" in str(record["details"])
    # None of the nine was subscribed.
    pure.connected("pub", 5).publish("f/0", b"x")
    assert client.received() == []


@LEVELS
def test_a_subscribe_with_eight_filters_is_granted(level: int) -> None:
    pure = quota_core()
    client = pure.connected("sub", level)

    client.send(Subscribe(1, filters(8)))

    assert client.received() == [Suback(1, (1,) * 8)]
    assert pure.failures("SUBSCRIBE_FILTERS_EXCEEDED") == []


# -- 50 subscriptions per connection --------------------------------------------------------------


def test_the_51st_subscription_is_refused_and_the_50th_granted() -> None:
    pure = quota_core()
    client = pure.connected("sub", 5)
    codes: list[int] = []
    for first in range(0, 50, 8):
        names = [f"many/{i}" for i in range(first, min(first + 8, 50))]
        client.send(Subscribe(first + 1, tuple((n, SubscriptionOptions(qos=1)) for n in names)))
        (suback,) = client.received()
        assert isinstance(suback, Suback)
        codes.extend(suback.reason_codes)
    assert codes == [1] * 50

    assert client.subscribe("many/50").reason_codes == (0x97,)
    assert len(pure.failures("SUBSCRIPTION_LIMIT_EXCEEDED")) == 1


# -- 1 CONNECT per second per client ID ----------------------------------------------------------


def test_a_second_connect_with_the_same_client_id_within_a_second_is_refused() -> None:
    pure = quota_core()
    first = pure.connected("dev", 5)
    pure.clock.advance(0.5)

    second = pure.client(5)
    connack = second.connect("dev")

    assert connack == Connack(False, 0x97)
    assert second.connection.close_request is not None
    assert first.connection.close_request is None  # the device that was connected stays
    (record,) = pure.failures("CONNECT_RATE_EXCEEDED")
    assert record["eventType"] == "Connect"
    assert record["clientId"] == "dev"


def test_mqtt311_connect_over_the_rate_is_closed_without_a_connack() -> None:
    pure = quota_core()
    pure.connected("dev", 4)
    second = pure.client(4)

    second.send(Connect("MQTT", 4, "dev", True, 60, None, None, None))

    assert second.received() == []
    assert second.connection.close_request is not None
    assert len(pure.failures("CONNECT_RATE_EXCEEDED")) == 1


def test_a_connect_a_second_later_or_with_another_client_id_is_accepted() -> None:
    pure = quota_core()
    first = pure.connected("dev", 5)
    pure.connected("other", 5)  # the quota is per client ID
    pure.clock.advance(1.0)

    pure.connected("dev", 5)  # takes the session over, as AWS does

    assert first.connection.close_request is not None
    assert pure.failures("CONNECT_RATE_EXCEEDED") == []


def test_with_the_quotas_lifted_a_client_id_may_reconnect_at_once() -> None:
    pure = PureCore(settings=QUOTAS_OFF)
    pure.connected("dev", 5)
    pure.connected("dev", 5)
    assert pure.failures("CONNECT_RATE_EXCEEDED") == []


# -- what paho-mqtt sees on a broker with the default settings ------------------------------------

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread() as running:  # the defaults: AWS's quotas enforced
        yield running


@pytest.fixture(scope="module")
def device(broker: IotBrokerThread) -> DeviceFiles:
    return broker.create_device("quota-dev", ALLOW_ALL)


def paho(device: DeviceFiles, client_id: str, level: int) -> Client:
    protocol = MQTTProtocolVersion.MQTTv5 if level == 5 else MQTTProtocolVersion.MQTTv311
    return paho_client(device, protocol, client_id=client_id)


def subscribe_codes(client: Client, count: int) -> list[int]:
    """SUBSCRIBE ``count`` filters in one packet; the SUBACK's reason codes."""
    done = threading.Event()
    codes: list[int] = []

    def on_subscribe(_c: object, _u: object, _mid: int, reasons: Any, _p: object) -> None:
        codes.extend(int(r.value) for r in reasons)
        done.set()

    client.on_subscribe = on_subscribe
    client.subscribe([(f"paho/{i}", 1) for i in range(count)])
    assert done.wait(TIMEOUT)
    return codes


@LEVELS
def test_paho_subscribe_with_nine_filters_is_refused(
    broker: IotBrokerThread, device: DeviceFiles, level: int
) -> None:
    client = paho(device, f"nine-{level}", level)
    assert subscribe_codes(client, 9) == [0x97 if level == 5 else 0x80] * 9
    record = broker.wait_for_refusal("SUBSCRIBE_FILTERS_EXCEEDED", f"nine-{level}")
    assert record["eventType"] == "Subscribe"


@LEVELS
def test_paho_subscribe_with_eight_filters_is_granted(
    broker: IotBrokerThread, device: DeviceFiles, level: int
) -> None:
    client = paho(device, f"eight-{level}", level)
    assert subscribe_codes(client, 8) == [1] * 8


def test_paho_reconnect_at_once_is_refused_with_0x97(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    first = paho(device, "again", 5)
    first.disconnect()

    with pytest.raises(DeviceRefusedError, match="Quota exceeded"):
        paho(device, "again", 5)
    broker.wait_for_refusal("CONNECT_RATE_EXCEEDED", "again", event_type="Connect")
    paho(device, "again-other", 5)  # the twin: another client ID at the same moment


def test_paho_publishes_over_100_a_second_get_0x97_and_none_acknowledged_is_lost(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    subscriber = paho(device, "rate-sub", 5)
    got: list[bytes] = []
    subscribed, ended = threading.Event(), threading.Event()

    def on_message(_c: object, _u: object, message: Any) -> None:
        got.append(message.payload)
        if message.payload == b"end":
            ended.set()

    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.subscribe("rate/t", 1)
    assert subscribed.wait(TIMEOUT)

    publisher = paho(device, "rate-pub", 5)
    codes: dict[int, int] = {}
    all_acked = threading.Event()
    count = 1000  # far more than 100 in any second this machine can take

    def on_publish(_c: object, _u: object, mid: int, code: Any, _p: object) -> None:
        codes[mid] = int(code.value)
        if len(codes) == count:
            all_acked.set()

    publisher.on_publish = on_publish
    sent = {publisher.publish("rate/t", str(i).encode(), qos=1).mid: i for i in range(count)}
    assert all_acked.wait(60)

    accepted = sorted(sent[mid] for mid, code in codes.items() if code == 0)
    refused = [mid for mid, code in codes.items() if code == 0x97]
    assert refused and len(accepted) + len(refused) == count
    broker.wait_for_refusal("PUBLISH_RATE_EXCEEDED", "rate-pub")
    # Every publish acknowledged with success reaches the subscriber and no refused one does;
    # a marker from another client, routed after them, says when they have all arrived.
    paho(device, "rate-marker", 5).publish("rate/t", b"end", qos=1).wait_for_publish(TIMEOUT)
    assert ended.wait(TIMEOUT)
    assert sorted(int(p) for p in got[:-1]) == accepted
