"""A ``serve`` process whose stdout is a pipe that stops: paused (nobody reads) or gone (`| head`).

Issue 11: a log pipe that stops reading froze the broker (``make run | less``, a stuck log
shipper), and a closed one broke every CONNECT (``make run | head``). Here the child's stdout is a
real pipe and real MQTT clients (paho, mutual TLS as the demo device) connect, publish and receive
while it is stopped; each case has a twin whose reader keeps up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from tests.serve_child import STARTUP_TIMEOUT, TIMEOUT, ServeChild, child_env

# The smallest queue the configuration allows, so that a few hundred records overflow it.
CONFIG = """\
logging:
  level: INFO
  buffer_bytes: 65536
limits:
  aws_quotas: false
"""
_F_GETPIPE_SZ = 1032  # fcntl(2), Linux


class PipeBroker:
    """A ``serve`` child whose stdout is a pipe; the test holds its read end."""

    def __init__(self, directory: Path, children: list[ServeChild]) -> None:
        config = directory / "config.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        self.directory = directory
        self.read_fd, write_fd = os.pipe()
        try:
            self.serve = ServeChild(
                [
                    "serve",
                    "--config",
                    str(config),
                    "--demo-device",
                    "--port",
                    "0",
                    "--https-port",
                    "off",
                    "--alpn-port",
                    "off",
                ],
                directory,
                child_env(),
                stdout=write_fd,
            )
        finally:
            os.close(write_fd)  # the child holds it now: EOF reaches the reader when it exits
        children.append(self.serve)
        self.serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        self.port = int(self.serve.banner("mqtt").split()[0])

    def close_read_end(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.read_fd)

    def pipe_bytes(self) -> int:
        """Bytes written to the pipe and not read."""
        waiting = fcntl.ioctl(self.read_fd, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(waiting, sys.byteorder)

    def pipe_capacity(self) -> int:
        return int(fcntl.fcntl(self.read_fd, _F_GETPIPE_SZ))

    def client(self, client_id: str) -> Client:
        """A paho client connected as the demo device (CONNACK 0 within the timeout)."""
        certs = self.directory / "certs"
        device = certs / "demo-device"
        client = Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        client.tls_set(
            ca_certs=str(certs / "root-ca.pem"),
            certfile=str(device / "demo-device.cert.pem"),
            keyfile=str(device / "demo-device.private.key"),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        connected = threading.Event()
        codes: list[object] = []

        def on_connect(_c: Client, _u: object, _f: object, code: object, _p: object) -> None:
            codes.append(code)
            connected.set()

        client.on_connect = on_connect
        client.connect("localhost", self.port, keepalive=60)
        client.loop_start()
        assert connected.wait(TIMEOUT), f"no CONNACK for {client_id}"
        assert not getattr(codes[0], "is_failure", True), codes
        return client


class LineReader(threading.Thread):
    """Reads the pipe's lines as a log viewer would."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.stream = os.fdopen(fd, "r", encoding="utf-8", closefd=False)
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self.stream:
                with self.changed:
                    self.lines.append(line)
                    self.changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool]) -> str:
        with self.changed:
            self.changed.wait_for(lambda: any(predicate(line) for line in self.lines), TIMEOUT)
        found = [line for line in self.lines if predicate(line)]
        assert found, f"no matching line among {len(self.lines)}"
        return found[0]


@pytest.fixture
def pipe_broker(tmp_path: Path, children: list[ServeChild]) -> Iterator[PipeBroker]:
    broker = PipeBroker(tmp_path, children)
    try:
        yield broker
    finally:
        broker.close_read_end()


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    started: list[Client] = []
    yield started
    for client in started:
        client.disconnect()
        client.loop_stop()


def _message_round_trip(broker: PipeBroker, clients: list[Client], topic: str) -> None:
    """A subscriber connects, subscribes, and receives what a publisher sends: the broker works."""
    received = threading.Event()

    def on_message(_c: Client, _u: object, message: MQTTMessage) -> None:
        if message.topic == topic:
            received.set()

    subscribed = threading.Event()
    subscriber = broker.client("demo-device")
    clients.append(subscriber)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *_args: subscribed.set()
    subscriber.subscribe(topic, qos=1)
    assert subscribed.wait(TIMEOUT), "no SUBACK"
    publisher = broker.client("demo-device-publisher")
    clients.append(publisher)
    _acked(publisher, topic)
    assert received.wait(TIMEOUT), "the message did not arrive"


def _acked(client: Client, topic: str) -> None:
    """Publish at QoS 1 and wait for the PUBACK (a stalled broker fails here, not hangs)."""
    info = client.publish(topic, b"x", qos=1)
    info.wait_for_publish(TIMEOUT)
    assert info.is_published(), f"no PUBACK on {topic}"


def _fill(broker: PipeBroker, clients: list[Client]) -> None:
    """Publish until the pipe nobody reads is full, then enough again to overflow the queue."""
    publisher = broker.client("demo-device-publisher")
    clients.append(publisher)
    before = -1
    # Full: most of its capacity holds lines and another burst adds nothing (a pipe's pages are
    # not always packed to the last byte, so "full" is a little under its capacity).
    for _ in range(200):
        for _ in range(100):
            publisher.publish("demo/fill", b"x", qos=0)
        # QoS 1 round trips pace the burst: the broker has logged what came before.
        _acked(publisher, "demo/fill")
        now = broker.pipe_bytes()
        if now == before and now > broker.pipe_capacity() // 2:
            break
        before = now
    else:
        pytest.fail("the log never filled the pipe")
    for _ in range(10):  # 1,000 more Publish-In lines (~300 KB) against a 64 KiB queue
        for _ in range(100):
            publisher.publish("demo/fill", b"x", qos=0)
        _acked(publisher, "demo/fill")
    publisher.disconnect()
    publisher.loop_stop()
    clients.remove(publisher)


def test_a_paused_log_pipe_does_not_stop_other_clients(
    pipe_broker: PipeBroker, clients: list[Client]
) -> None:
    _fill(pipe_broker, clients)
    # Nobody has read a byte: other clients still connect, subscribe and get messages.
    _message_round_trip(pipe_broker, clients, "demo/paused")

    reader = LineReader(pipe_broker.read_fd)
    reader.start()  # the reader comes back (`less` resumed)
    report = json.loads(reader.wait_for(lambda line: "LOG_RECORDS_DROPPED" in line))
    dropped = int(str(report["details"]).split()[0])
    assert dropped > 0
    assert report["eventType"] == "Broker"
    notice = pipe_broker.serve.wait_line("stderr", lambda line: "were dropped" in line, TIMEOUT)
    assert notice.startswith(f"aws-iot-mock: {dropped} log record(s) were dropped")
    # Records made from now on are written again.
    late = pipe_broker.client("demo-device-healthcheck")
    clients.append(late)
    _acked(late, "demo/resumed")
    reader.wait_for(lambda line: '"topicName":"demo/resumed"' in line)
    assert not [line for line in pipe_broker.serve.lines["stderr"] if "Traceback" in line]


def test_a_log_pipe_that_is_read_loses_nothing(
    pipe_broker: PipeBroker, clients: list[Client]
) -> None:
    reader = LineReader(pipe_broker.read_fd)
    reader.start()
    _message_round_trip(pipe_broker, clients, "demo/read")
    reader.wait_for(lambda line: '"topicName":"demo/read"' in line and "Publish-Out" in line)
    assert not [line for line in reader.lines if "LOG_RECORDS_DROPPED" in line]
    assert not [line for line in pipe_broker.serve.lines["stderr"] if "aws-iot-mock:" in line]


@pytest.mark.skipif(shutil.which("head") is None, reason="needs head")
def test_head_1_reads_one_line_and_the_broker_keeps_serving(
    pipe_broker: PipeBroker, clients: list[Client]
) -> None:
    head = subprocess.Popen(["head", "-1"], stdin=pipe_broker.read_fd, stdout=subprocess.PIPE)
    pipe_broker.close_read_end()  # head holds it; once head exits, nobody does
    first = pipe_broker.client("demo-device-healthcheck")  # something to log
    clients.append(first)
    out, _ = head.communicate(timeout=TIMEOUT)
    assert head.returncode == 0
    json.loads(out)  # the first log line, whole
    # The next records meet EPIPE: stdout is disabled, once, and the broker carries on.
    _message_round_trip(pipe_broker, clients, "demo/after-head")
    pipe_broker.serve.wait_line("stderr", lambda line: "standard output is closed" in line, TIMEOUT)
    _message_round_trip(pipe_broker, clients, "demo/after-head-2")
    closed = [line for line in pipe_broker.serve.lines["stderr"] if "is closed" in line]
    assert closed == [
        "aws-iot-mock: standard output is closed (its reader went away): log records are no "
        "longer written there"
    ]
    assert pipe_broker.serve.proc.poll() is None
    assert not [line for line in pipe_broker.serve.lines["stderr"] if "Traceback" in line]
