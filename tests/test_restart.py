"""Persistent sessions and retained messages survive ``kill -9`` of ``aws-iot-mock serve``.

AWS keeps "a client's subscriptions and messages, with a QoS of 1, that haven't been acknowledged"
and retained messages; a PUBACK promises the message is stored. Here the broker process is killed
with SIGKILL right after the last PUBACK (no shutdown code runs), started again on a new port with
the same certificate and state directories, and the devices reconnect.

The process's startup banner is read from stderr with a deadline (``ServeProcess``), never by
sleeping; MQTT is spoken by the raw client of ``tests.test_mqtt_pubsub``. The demo device's own
policy admits only ``demo/...``, so ``init --demo-device`` runs first and the config attaches an
allow-all policy to the demo certificate (``resources:``), leaving these tests about persistence.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aws_iot_mock.mqtt.codec import Disconnect, Publish
from tests.conftest import Device, client_context
from tests.serve_child import REPO_ROOT, STARTUP_TIMEOUT
from tests.test_mqtt_pubsub import RawClient
from tests.test_serve_process import ServeProcess

ENDPOINT = "localhost"
EXIT_TIMEOUT = 10.0
DEVICE_ID = "offline-dev"
COMMANDS = f"cmd/{DEVICE_ID}"
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


@dataclass
class Served:
    """A running ``serve`` child and how to reach it."""

    process: ServeProcess
    port: int
    root_ca: Path
    device: Device


def _banner_field(lines: list[str], label: str) -> str:
    for line in lines:
        if line.startswith(f"{label}:"):
            return line.removeprefix(f"{label}:").strip()
    raise AssertionError(f"no {label!r} line in {lines!r}")


class Broker:
    """Starts ``serve`` on port 0 with fixed directories; kills and reaps every child."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.children: list[ServeProcess] = []
        self.clients: list[RawClient] = []
        self.dirs = [
            "--certs-dir",
            str(tmp_path / "certs"),
            "--state-dir",
            str(tmp_path / "state"),
        ]
        self.config = tmp_path / "restart.yaml"

    def prepare(self) -> None:
        """Create the CA and the demo device, and a config granting the device everything."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        subprocess.run(
            [sys.executable, "-m", "aws_iot_mock", "init", "--demo-device", *self.dirs],
            cwd=self.tmp_path,
            env=env,
            check=True,
            capture_output=True,
            timeout=STARTUP_TIMEOUT,
        )
        certificate = self.tmp_path / "certs" / "demo-device" / "demo-device.cert.pem"
        assert certificate.is_file()
        config = {  # JSON is YAML
            "endpoint": ENDPOINT,
            "resources": {
                "policies": [{"policy_name": "restart-test-allow-all", "document": ALLOW_ALL}],
                "certificates": [
                    {
                        "certificate_file": str(certificate),
                        "policies": ["restart-test-allow-all"],
                    }
                ],
            },
        }
        self.config.write_text(json.dumps(config), encoding="utf-8")

    def start(self) -> Served:
        if not self.config.exists():
            self.prepare()
        args = [
            "serve",
            "--config",
            str(self.config),
            "--port",
            "0",
            "--https-port",
            "0",
            "--alpn-port",
            "0",
            "--endpoint",
            ENDPOINT,
            *self.dirs,
            "--demo-device",
        ]
        child = ServeProcess(args, self.tmp_path)
        self.children.append(child)
        child.wait_for_stderr(lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        banner = child.stderr_lines
        match = re.fullmatch(r"(\S+) \(key (\S+)\)", _banner_field(banner, "demo device"))
        assert match is not None, banner
        device = Device("demo-device", Path(match[1]), Path(match[2]))
        return Served(
            child,
            int(_banner_field(banner, "mqtt").split()[0]),
            Path(_banner_field(banner, "root CA")),
            device,
        )

    async def client(self, served: Served, level: int = 4) -> RawClient:
        ctx = client_context(served.root_ca, served.device)
        client = await RawClient.open(served.port, ctx, level, sni=ENDPOINT)
        self.clients.append(client)
        return client

    @staticmethod
    def kill9(served: Served) -> None:
        served.process.proc.send_signal(signal.SIGKILL)
        assert served.process.wait(EXIT_TIMEOUT) == -signal.SIGKILL

    async def close_clients(self) -> None:
        for client in self.clients:
            if client.eof:
                client.writer.transport.abort()
            else:
                await client.close()
        self.clients.clear()

    def close(self) -> None:
        for child in self.children:
            child.close()


@pytest.fixture
def broker_processes(tmp_path: Path) -> Iterator[Broker]:
    processes = Broker(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture
async def broker(broker_processes: Broker) -> AsyncIterator[Broker]:
    try:
        yield broker_processes
    finally:
        await broker_processes.close_clients()


async def _subscribe_and_leave(broker: Broker, served: Served) -> None:
    """A persistent MQTT 3.1.1 session subscribes QoS 1 to its commands and disconnects."""
    device = await broker.client(served)
    connack = await device.connect(DEVICE_ID, clean=False)
    assert not connack.session_present
    assert (await device.subscribe(COMMANDS, qos=1)).reason_codes == (1,)
    await device.send(Disconnect())
    assert await device.expect_eof() == []


async def _publish_retained_and_commands(broker: Broker, served: Served) -> None:
    """Another client publishes a retained QoS 1 message and two QoS 1 commands, all PUBACKed."""
    operator = await broker.client(served)
    await operator.connect("operator")
    for topic, payload, retain in (
        ("state/x", b"retained-on", True),
        (COMMANDS, b"command-1", False),
        (COMMANDS, b"command-2", False),
    ):
        puback = await operator.publish(topic, payload, qos=1, retain=retain)
        assert puback is not None and puback.reason_code == 0


async def test_persistent_session_and_retained_message_survive_kill_9(broker: Broker) -> None:
    first = broker.start()
    await _subscribe_and_leave(broker, first)
    await _publish_retained_and_commands(broker, first)
    broker.kill9(first)  # right after the last PUBACK

    second = broker.start()
    device = await broker.client(second)
    connack = await device.connect(DEVICE_ID, clean=False)

    assert connack.session_present
    queued = [await device.receive_publish() for _ in range(2)]
    assert [(p.topic, p.payload, p.qos) for p in queued] == [
        (COMMANDS, b"command-1", 1),
        (COMMANDS, b"command-2", 1),
    ]
    await device.expect_nothing()

    observer = await broker.client(second)
    await observer.connect("observer")
    assert (await observer.subscribe("state/x")).reason_codes == (1,)
    retained = await observer.receive_publish()
    assert (retained.topic, retained.payload, retained.retain) == ("state/x", b"retained-on", True)
    await observer.expect_nothing()


async def test_clean_session_after_kill_9_gets_nothing_queued(broker: Broker) -> None:
    first = broker.start()
    await _subscribe_and_leave(broker, first)
    await _publish_retained_and_commands(broker, first)
    broker.kill9(first)

    second = broker.start()
    device = await broker.client(second)
    connack = await device.connect(DEVICE_ID, clean=True)

    assert not connack.session_present
    await device.expect_nothing()
    # The old subscription went with the session.
    operator = await broker.client(second)
    await operator.connect("operator")
    await operator.publish(COMMANDS, b"command-3", qos=1)
    await device.expect_nothing()


async def test_unacknowledged_in_flight_message_is_redelivered_after_kill_9(
    broker: Broker,
) -> None:
    first = broker.start()
    device = await broker.client(first)
    await device.connect(DEVICE_ID, clean=False)
    await device.subscribe(COMMANDS, qos=1)
    operator = await broker.client(first)
    await operator.connect("operator")
    puback = await operator.publish(COMMANDS, b"in-flight", qos=1)
    assert puback is not None and puback.reason_code == 0
    # The device receives it and never acknowledges it.
    in_flight = await device.recv_packet()
    assert isinstance(in_flight, Publish) and in_flight.payload == b"in-flight"
    broker.kill9(first)

    second = broker.start()
    back = await broker.client(second)
    connack = await back.connect(DEVICE_ID, clean=False)

    assert connack.session_present
    redelivered = await back.receive_publish()
    assert (redelivered.topic, redelivered.payload, redelivered.qos) == (
        COMMANDS,
        b"in-flight",
        1,
    )
    await back.expect_nothing()  # acknowledged now: once only


async def test_acknowledged_message_is_not_redelivered_after_kill_9(broker: Broker) -> None:
    first = broker.start()
    device = await broker.client(first)
    await device.connect(DEVICE_ID, clean=False)
    await device.subscribe(COMMANDS, qos=1)
    operator = await broker.client(first)
    await operator.connect("operator")
    await operator.publish(COMMANDS, b"done", qos=1)
    assert (await device.receive_publish()).payload == b"done"  # PUBACKed by the device
    await device.expect_nothing()  # the broker has handled the PUBACK
    broker.kill9(first)

    second = broker.start()
    back = await broker.client(second)
    connack = await back.connect(DEVICE_ID, clean=False)

    assert connack.session_present
    await back.expect_nothing()
