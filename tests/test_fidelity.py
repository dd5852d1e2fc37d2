"""What an outside audit found against AWS IoT's documented behaviour, fixed, with paho-mqtt.

One test per finding (and its twin): the MQTT 5 reason codes AWS lists, the Maximum Packet Size
we advertise, cross-version sessions, enhanced authentication, ``{"state": null}``, and the
shape of the log stream (one Connect line per connection, cause before effect, ``retain``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties
from paho.mqtt.reasoncodes import ReasonCode

from aws_iot_mock.testing import DeviceFiles, IotBrokerThread, paho_client, paho_tls_context

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def broker() -> Iterator[IotBrokerThread]:
    # The tests reconnect client IDs at once, which AWS's 1 CONNECT/s quota would refuse.
    with IotBrokerThread(aws_quotas=False) as running:
        yield running


@pytest.fixture(scope="module")
def device(broker: IotBrokerThread) -> DeviceFiles:
    return broker.create_device("fid-1", ALLOW_ALL)


class Watched:
    """A paho client with its CONNACK, PUBACK, UNSUBACK and DISCONNECT reason codes recorded."""

    def __init__(
        self,
        device: DeviceFiles,
        client_id: str,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        *,
        clean_start: bool = True,
        properties: PahoProperties | None = None,
    ) -> None:
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
        )
        self.client.tls_set_context(paho_tls_context(device))
        self.connack: ReasonCode | None = None
        self.session_present: bool | None = None
        self.disconnect_code: ReasonCode | None = None
        self.codes: list[int] = []
        self.connected = threading.Event()
        self.gone = threading.Event()
        self.acked = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_ack
        self.client.on_unsubscribe = self._on_unsubscribe
        kwargs: dict[str, Any] = {"keepalive": 60, "properties": properties}
        if protocol == MQTTProtocolVersion.MQTTv5:
            kwargs["clean_start"] = clean_start
        else:
            self.client._clean_session = clean_start
        self.client.connect("127.0.0.1", device.port, **kwargs)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, flags: Any, code: ReasonCode, _p: object) -> None:
        self.connack = code
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_disconnect(
        self, _c: object, _u: object, _f: object, code: ReasonCode, _p: object
    ) -> None:
        self.disconnect_code = code
        self.gone.set()
        self.connected.set()

    def _on_ack(self, _c: object, _u: object, _mid: int, code: ReasonCode, _p: object) -> None:
        self.codes.append(code.value)
        self.acked.set()

    def _on_unsubscribe(
        self, _c: object, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        self.codes.extend(code.value for code in codes)
        self.acked.set()

    def wait_connected(self) -> ReasonCode:
        assert self.connected.wait(TIMEOUT)
        assert self.connack is not None
        return self.connack

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt5_qos2_publish_is_disconnected_with_0x9b(device: DeviceFiles) -> None:
    client = Watched(device, "fid-qos2")
    assert client.wait_connected().value == 0
    client.client.publish("fid/t", b"two", qos=2)
    assert client.gone.wait(TIMEOUT)
    assert client.disconnect_code is not None and client.disconnect_code.value == 0x9B
    client.client.loop_stop()
    twin = Watched(device, "fid-qos1")  # QoS 1 on the same topic is acknowledged
    twin.wait_connected()
    twin.client.publish("fid/t", b"one", qos=1)
    assert twin.acked.wait(TIMEOUT)
    assert twin.codes == [0]
    twin.close()


def test_mqtt5_connect_with_an_authentication_method_is_refused(device: DeviceFiles) -> None:
    properties = PahoProperties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.AuthenticationMethod = "SCRAM-SHA-1"
    client = Watched(device, "fid-auth", properties=properties)
    assert client.wait_connected().value == 0x87
    client.client.loop_stop()
    twin = Watched(device, "fid-auth")
    assert twin.wait_connected().value == 0
    twin.close()


def test_an_mqtt5_session_is_not_resumed_by_mqtt311(device: DeviceFiles) -> None:
    """AWS: cross-version (MQTT 3 and MQTT 5) persistent sessions are not supported."""
    properties = PahoProperties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    first = Watched(device, "fid-cross", clean_start=False, properties=properties)
    first.wait_connected()
    first.close()
    again = Watched(device, "fid-cross", clean_start=False, properties=properties)
    again.wait_connected()
    assert again.session_present is True  # the twin: same version resumes
    again.close()
    v311 = Watched(device, "fid-cross", MQTTProtocolVersion.MQTTv311, clean_start=False)
    assert v311.wait_connected().value == 0
    assert v311.session_present is False
    v311.close()


def test_unsuback_and_puback_codes_are_the_ones_aws_lists(device: DeviceFiles) -> None:
    client = Watched(device, "fid-codes")
    client.wait_connected()
    client.client.unsubscribe("never/subscribed")
    assert client.acked.wait(TIMEOUT)
    assert client.codes == [0x00]  # not 0x11, which AWS does not list
    client.acked.clear()
    properties = PahoProperties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.PayloadFormatIndicator = 1
    client.client.publish("fid/pfi", b"\xff\xfe", qos=1, properties=properties)
    assert client.acked.wait(TIMEOUT)
    assert client.codes[-1] == 0x80  # not 0x99, which AWS does not list
    client.close()


def test_a_packet_over_the_advertised_maximum_gets_disconnect_0x97(device: DeviceFiles) -> None:
    client = Watched(device, "fid-big")
    client.wait_connected()
    client.client.publish("fid/big", b"x" * (128 * 1024), qos=1)
    assert client.gone.wait(TIMEOUT)
    assert client.disconnect_code is not None and client.disconnect_code.value == 0x97
    client.client.loop_stop()


def test_null_state_is_accepted_and_keeps_the_shadow(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    client = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="fid-1")
    answers: list[tuple[str, dict[str, Any]]] = []
    got = threading.Event()

    def on_message(_c: object, _u: object, message: Any) -> None:
        answers.append((message.topic, json.loads(message.payload)))
        got.set()

    client.on_message = on_message
    # Not update/+: the first update's /documents message may arrive after the second request.
    client.subscribe(
        [
            ("$aws/things/fid-1/shadow/update/accepted", 1),
            ("$aws/things/fid-1/shadow/update/rejected", 1),
        ]
    )
    broker.wait_for_message("$aws/events/subscriptions/subscribed/fid-1")
    client.publish("$aws/things/fid-1/shadow/update", b'{"state":{"reported":{"a":1}}}', qos=1)
    assert got.wait(TIMEOUT)
    got.clear()
    answers.clear()
    client.publish("$aws/things/fid-1/shadow/update", b'{"state":null}', qos=1)
    assert got.wait(TIMEOUT)
    topic, body = answers[0]
    assert topic == "$aws/things/fid-1/shadow/update/accepted"
    assert body["state"] is None
    assert body["version"] == 2
    client.disconnect()
    client.loop_stop()


def test_the_log_has_one_connect_line_per_connection_and_causes_before_effects(
    broker: IotBrokerThread, device: DeviceFiles
) -> None:
    subscriber = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="fid-log-sub")
    subscriber.subscribe("fid/log", qos=1)
    broker.wait_for_message("$aws/events/subscriptions/subscribed/fid-log-sub")
    publisher = paho_client(device, MQTTProtocolVersion.MQTTv311, client_id="fid-log-pub")
    publisher.publish("fid/log", b"kept", qos=1, retain=True).wait_for_publish(TIMEOUT)
    broker.wait_for_message("fid/log")
    logs = broker.logs
    connects = [
        r
        for r in logs
        if r["eventType"] == "Connect"
        and r["status"] == "Success"
        and r["logLevel"] == "INFO"
        and r.get("clientId") in ("fid-log-sub", "fid-log-pub")
    ]
    assert len(connects) == 2
    assert all(str(r["details"]).startswith("TLS handshake: ") for r in connects)
    events = [
        r["eventType"]
        for r in logs
        if r.get("topicName") == "fid/log" and r["eventType"] in ("Publish-In", "Publish-Out")
    ]
    assert events[:2] == ["Publish-In", "Publish-Out"]
    publish_in = next(
        r for r in logs if r["eventType"] == "Publish-In" and r.get("topicName") == "fid/log"
    )
    assert publish_in["retain"] == "True"
    for client in (subscriber, publisher):
        client.disconnect()
        client.loop_stop()
