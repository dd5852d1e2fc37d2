"""The health endpoint (``GET /_aws-iot-mock/health`` on the api door) and ``healthcheck``.

The endpoint is pure (``aws_iot_mock.api.health``), tested in memory; then against a real
``serve`` child (the ``healthcheck`` verb as Docker's HEALTHCHECK runs it) and an in-process
broker with a subscriber to ``$aws/events/#`` and a log file: a probe is no device, so nobody
sees it and nothing is logged, where a device's connection is seen and logged (its twin).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import Client, MQTTMessage

from aws_iot_mock.api.health import (
    HEALTH_PATH,
    DoorState,
    health_document,
    health_response,
    is_health_path,
)
from aws_iot_mock.http.messages import HttpRequest
from aws_iot_mock.testing import IotBrokerThread, paho_client
from tests.conftest import ALLOW_ALL_POLICY
from tests.serve_child import STARTUP_TIMEOUT, TIMEOUT, ServeChild, child_env

FREE_PORTS = ("--port", "0", "--https-port", "0", "--alpn-port", "0", "--api-port", "0")


# -- the pure endpoint ---------------------------------------------------------------------------


def test_the_document_lists_every_door_listening_or_off() -> None:
    doors = [
        DoorState("mqtt", "0.0.0.0", 8883),
        DoorState("alpn", "0.0.0.0", None, "port 443 needs privileges"),
    ]
    assert health_document(doors, endpoint="e.example", version="1.2.3") == {
        "status": "ok",
        "version": "1.2.3",
        "endpoint": "e.example",
        "doors": {
            "mqtt": {"state": "listening", "host": "0.0.0.0", "port": 8883},
            "alpn": {"state": "off", "host": "0.0.0.0", "reason": "port 443 needs privileges"},
        },
    }


@pytest.mark.parametrize(
    ("path", "matches"),
    [(HEALTH_PATH, True), ("/_aws-iot-mock/health/x", False), ("/health", False), ("/", False)],
)
def test_only_the_health_path_is_the_endpoints(path: str, matches: bool) -> None:
    assert is_health_path(path) is matches


@pytest.mark.parametrize(
    ("method", "status", "body"),
    [("GET", 200, b'{"status":"ok"}'), ("HEAD", 200, b""), ("POST", 405, None)],
)
def test_get_answers_the_document_and_other_methods_are_refused(
    method: str, status: int, body: bytes | None
) -> None:
    response = health_response(HttpRequest(method, HEALTH_PATH), {"status": "ok"})
    assert response.status == status
    if body is not None:
        assert response.body == body
    else:
        assert dict(response.headers)["Allow"] == "GET, HEAD"
        assert json.loads(response.body) == {"message": f"POST is not allowed: GET {HEALTH_PATH}"}


# -- against a serve child -----------------------------------------------------------------------


def _aws_iot_mock(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "aws_iot_mock", *args],
        cwd=cwd,
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cwd = tmp_path_factory.mktemp("serve")
    child = ServeChild(
        ["serve", "--demo-device", *FREE_PORTS, "--ready-file", str(cwd / "ready.json")],
        cwd,
        child_env(),
    )
    try:
        child.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        ports = json.loads((cwd / "ready.json").read_text(encoding="utf-8"))["ports"]
        yield cwd, ports
    finally:
        child.close()


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_the_endpoint_answers_every_doors_state_without_a_signature(serve: Any) -> None:
    _cwd, ports = serve
    status, body = _get(ports["api"], HEALTH_PATH)
    assert status == 200
    document = json.loads(body)
    assert document["status"] == "ok"
    assert {door: state["port"] for door, state in document["doors"].items()} == ports
    assert {state["state"] for state in document["doors"].values()} == {"listening"}


def test_the_control_plane_beside_it_still_wants_a_signature(serve: Any) -> None:
    """The twin: the same unsigned GET of an ``iot`` operation (ListThings) is refused."""
    _cwd, ports = serve
    status, body = _get(ports["api"], "/things")
    assert status == 403
    assert b"Authorization" in body or b"authentication" in body.lower()


def test_healthcheck_exits_0_against_a_running_broker(serve: Any) -> None:
    cwd, ports = serve
    done = _aws_iot_mock("healthcheck", "--port", str(ports["api"]), cwd=cwd)
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{ports['api']}{HEALTH_PATH}"
    summary = ", ".join(f"{door} {port}" for door, port in ports.items())
    assert done.stdout == f"healthy: {url}: {summary}\n"


def test_healthcheck_device_connects_as_the_demo_device(serve: Any) -> None:
    cwd, ports = serve
    done = _aws_iot_mock("healthcheck", "--device", "--port", str(ports["mqtt"]), cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"healthy: 127.0.0.1:{ports['mqtt']} accepted the demo device\n"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_healthcheck_says_why_in_one_line_when_nothing_listens(tmp_path: Path) -> None:
    port = _closed_port()
    done = _aws_iot_mock("healthcheck", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"aws-iot-mock: unhealthy: http://127.0.0.1:{port}{HEALTH_PATH}: [Errno 111] Connection"
        " refused (nothing listens there: is aws-iot-mock serve running?)\n"
    )


def test_healthcheck_without_config_names_the_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "config.yaml"
    env = {**child_env(), "AWS_IOT_MOCK_CONFIG": str(missing)}
    done = _aws_iot_mock("healthcheck", cwd=tmp_path, env=env)
    assert done.returncode != 0
    assert done.stderr == f"aws-iot-mock: {missing}: config file not found\n"


def test_healthcheck_needs_a_fixed_api_port(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("listeners:\n  - door: api\n    port: 0\n", encoding="utf-8")
    done = _aws_iot_mock("healthcheck", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("aws-iot-mock: unhealthy: api door: the configuration gives")
    assert "--port" in done.stderr
    assert "--device" in done.stderr


# -- a probe is no device: nobody sees it, nothing is logged -------------------------------------


def test_a_probe_publishes_no_event_and_is_not_logged() -> None:
    with IotBrokerThread(aws_quotas=False, config={"logging": {"level": "INFO"}}) as broker:
        watcher = broker.create_device("watcher", ALLOW_ALL_POLICY)
        probe = broker.create_device("probe", ALLOW_ALL_POLICY)
        events: list[str] = []
        subscriber: Client = paho_client(watcher)

        def on_message(_client: Client, _userdata: object, message: MQTTMessage) -> None:
            events.append(message.topic)

        subscriber.on_message = on_message
        subscriber.subscribe("$aws/events/#", qos=1)
        broker.wait_for_message("$aws/events/subscriptions/subscribed/watcher")
        logged = len(broker.logs)

        done = _aws_iot_mock("healthcheck", "--port", str(broker.ports["api"]), cwd=Path.cwd())
        assert done.returncode == 0, done.stderr

        # The twin: a device that connects is seen by the subscriber and logged.
        paho_client(probe).disconnect()
        broker.wait_for_message("$aws/events/presence/disconnected/probe")
        seen_by_watcher = next(i for i, t in enumerate(events) if t.endswith("/probe"))
        assert events[:seen_by_watcher] == ["$aws/events/subscriptions/subscribed/watcher"]
        after = broker.logs[logged:]
        assert after, "the probe device was not logged"
        assert [r for r in after if not _about_probe(r)] == []
        subscriber.disconnect()
        subscriber.loop_stop()


def _about_probe(record: dict[str, object]) -> bool:
    """The probe device's own records, and the deliveries of its events to the watcher.

    (Also the delivery of the watcher's own subscribed event, which may be logged after the
    broker routed it.)
    """
    topic = str(record.get("topicName"))
    return record.get("clientId") == "probe" or topic.endswith(("/probe", "/watcher"))


def test_the_log_file_gets_no_line_from_a_probe(tmp_path: Path) -> None:
    log_file = tmp_path / "iot.jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"logging:\n  level: INFO\n  file: {log_file}\n  stdout: false\n", encoding="utf-8"
    )
    ready = tmp_path / "ready.json"
    args = ["--config", str(config)]
    child = ServeChild(
        ["serve", *args, "--demo-device", *FREE_PORTS, "--ready-file", str(ready)],
        tmp_path,
        child_env(),
    )
    try:
        child.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        ports = json.loads(ready.read_text(encoding="utf-8"))["ports"]
        for _ in range(3):
            done = _aws_iot_mock("healthcheck", *args, "--port", str(ports["api"]), cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        # The twin: the demo device's check is logged (Connect, then Disconnect).
        done = _aws_iot_mock(
            "healthcheck", *args, "--device", "--port", str(ports["mqtt"]), cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        # SIGTERM: serve stops and flushes its log file (docker stop does the same).
        child.proc.send_signal(signal.SIGTERM)
        assert child.proc.wait(STARTUP_TIMEOUT) == 0
    finally:
        child.close()
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [(r["eventType"], r["clientId"]) for r in records] == [
        ("Connect", "demo-device-healthcheck"),
        ("Disconnect", "demo-device-healthcheck"),
    ]
