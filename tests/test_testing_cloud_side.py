"""The cloud side of the test API: publish, shadows and deltas, from a thread and in a loop."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aws_iot_mock.testing import IotBroker, IotBrokerThread, ShadowRejectedError


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    with IotBrokerThread() as running:
        yield running


def test_publish_reaches_the_record_as_from_aws(broker: IotBrokerThread) -> None:
    broker.publish("cloud/one", {"a": 1}, qos=0, user_properties={"k": "v"})
    message = broker.wait_for_message("cloud/one")
    assert json.loads(message.payload) == {"a": 1}
    record = next(r for r in broker.logs if r.get("topicName") == "cloud/one")
    assert (record["eventType"], record["protocol"]) == ("Publish-In", "HTTP")


def test_publish_to_a_response_topic_is_refused_with_the_reason(broker: IotBrokerThread) -> None:
    with pytest.raises(ValueError, match="RESERVED_TOPIC"):
        broker.publish("$aws/things/t1/shadow/update/accepted", b"{}")
    broker.publish("$aws/things/t1/shadow/update", b'{"state":{"reported":{"x":1}}}')  # twin
    assert broker.get_shadow("t1")["state"] == {"reported": {"x": 1}}


def test_shadow_helpers_and_deltas(broker: IotBrokerThread) -> None:
    with pytest.raises(ShadowRejectedError) as missing:
        broker.get_shadow("t2")
    assert missing.value.code == 404

    accepted = broker.update_shadow("t2", {"state": {"desired": {"on": True}}}, "lamp")
    assert accepted["version"] == 1
    assert broker.wait_for_delta("t2", "lamp", state={"on": True})["state"] == {"on": True}
    with pytest.raises(ShadowRejectedError) as conflict:
        broker.update_shadow("t2", {"state": {"desired": {"on": False}}, "version": 7}, "lamp")
    assert (conflict.value.code, conflict.value.message) == (409, "Version conflict")
    assert broker.delete_shadow("t2", "lamp")["version"] == 1
    with pytest.raises(AssertionError, match="no delta"):
        broker.wait_for_delta("t2", timeout=0.1)


async def test_the_async_broker_has_the_same_cloud_side() -> None:
    async with IotBroker() as broker:
        broker.update_shadow("t3", {"state": {"desired": {"level": 3}}})
        assert (await broker.wait_for_delta("t3"))["state"] == {"level": 3}
        broker.publish("cloud/async", "text")
        assert (await broker.wait_for_message("cloud/async")).payload == b"text"


def test_config_overrides_reach_the_broker() -> None:
    tls13 = {"tls": {"security_policy": "IoTSecurityPolicy_TLS13_1_3_2022_10"}}
    with IotBrokerThread(config=tls13) as broker:
        assert broker.config.tls.security_policy == "IoTSecurityPolicy_TLS13_1_3_2022_10"
    with pytest.raises(Exception, match="securty_policy"):
        IotBrokerThread(config={"tls": {"securty_policy": "x"}}).start()
