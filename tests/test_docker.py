"""docs/docker.md, command for command, against a real Docker engine (``make docker-test``).

The module builds the images with the page's ``make docker`` (on a machine without Docker Hub
that debootstraps a local base image once, minutes), starts the page's compose stack under a
project name and host ports of its own, and runs every documented command in the page's order:
the health endpoint that Docker's HEALTHCHECK asks (no device, no log line), host devices through
every published door (mosquitto, curl, the AWS IoT Device SDK, and 443 by ALPN), the SDK client
container by the AWS-shaped name on the compose network, CLI verbs inside the container without
``--config``, then ``restart`` and a new container on the same volume
(registry, certificates, a persistent session's queued message, a retained message and a shadow
survive) and a clean ``docker stop``.

``make test`` skips the module (it needs dockerd and docker-compose, and builds for minutes);
``make docker-test`` sets ``AWS_IOT_MOCK_DOCKER_TEST=1``, and then a missing engine fails.
Figures (build time, image size, start time) are printed at the end, never asserted.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.docs_snippets import REPO_ROOT, output, snippet

pytestmark = pytest.mark.skipif(
    os.environ.get("AWS_IOT_MOCK_DOCKER_TEST") != "1",
    reason="the Docker end-to-end tests run with `make docker-test` (dockerd, docker-compose;"
    " the first build takes minutes), not in `make test`",
)

ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
IMAGE = "aws-iot-mock:latest"
CLIENT_IMAGE = "aws-iot-mock-sdk-client:latest"
# The first `make docker` on a machine debootstraps the local base image: minutes, network-bound.
BUILD_TIMEOUT = 1800.0
# Generous bounds for container operations on a shared 2-core machine.
TIMEOUT = 120.0
# The healthcheck runs every 5 s (docker/Dockerfile); a few rounds.
HEALTHY_TIMEOUT = 90.0
# AWS IoT accepts one CONNECT per second per client ID (the broker enforces the quota as AWS does;
# https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits): a test that
# connects with the same client ID again waits out that second, as a device on AWS must.
CONNECT_INTERVAL = 1.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """The page's compose stack under a test project name and free host ports.

    Documented commands run in ``cwd`` (a directory with a copy of ``docker/compose.yaml``, where
    ``docker-certs/`` lands) with the project and ports in the environment; the only change to
    their text is the host port numbers.
    """

    cwd: Path
    env: dict[str, str]
    ports: dict[int, int]  # documented host port -> the test's
    figures: dict[str, str] = field(default_factory=dict)
    connected: dict[str, float] = field(default_factory=dict)  # client ID -> when, monotonic

    def documented(self, text: str) -> str:
        for documented, actual in self.ports.items():
            text = re.sub(rf"(-p |localhost:|port=){documented}\b", rf"\g<1>{actual}", text)
        return text

    def sh(self, text: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run documented shell lines (ports substituted); fail with their output if they fail."""
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.documented(text)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{text}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        return done

    def popen(self, text: str) -> subprocess.Popen[str]:
        """Start documented lines in a process group of their own (``stop`` ends them all)."""
        return subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", self.documented(text)],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def pace(self, client_id: str) -> None:
        """Before connecting as ``client_id``: wait out AWS's one CONNECT per second per ID."""
        last = self.connected.get(client_id)
        if last is not None:
            time.sleep(max(0.0, last + CONNECT_INTERVAL - time.monotonic()))

    def done_connecting(self, client_id: str) -> None:
        """A connection as ``client_id`` ended (its CONNECT was accepted before now)."""
        self.connected[client_id] = time.monotonic()

    def compose(self, *args: str) -> str:
        return self.sh(
            " ".join(["docker-compose", "-f", "docker/compose.yaml", *args])
        ).stdout.strip()

    def container(self) -> str:
        return self.compose("ps", "-q", "aws-iot-mock")

    def inspect(self, template: str, what: str | None = None) -> str:
        return self.sh(f"docker inspect -f '{template}' {what or self.container()}").stdout.strip()

    def wait_healthy(self) -> None:
        """Until Docker's HEALTHCHECK (`aws-iot-mock healthcheck`) passed: readiness, polled."""
        deadline = time.monotonic() + HEALTHY_TIMEOUT
        while (status := self.inspect("{{.State.Health.Status}}")) != "healthy":
            assert status != "unhealthy", self.sh(f"docker logs {self.container()}").stderr
            assert time.monotonic() < deadline, f"not healthy after {HEALTHY_TIMEOUT} s: {status}"
            time.sleep(0.5)

    def wait_answering(self) -> float:
        """Seconds until the health endpoint answers (``healthcheck`` run in the container)."""
        start = time.monotonic()
        while True:
            probe = subprocess.run(
                ["docker", "exec", self.container(), "aws-iot-mock", "healthcheck"],
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
            if probe.returncode == 0:
                return time.monotonic() - start
            assert time.monotonic() - start < HEALTHY_TIMEOUT, probe.stderr
            time.sleep(0.2)

    def records(self) -> list[dict[str, object]]:
        """The AWSIotLogsV2 records the container printed (its stdout), oldest first."""
        out = self.sh(f"docker logs {self.container()} 2>/dev/null").stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def wait_record(self, wanted: Callable[[dict[str, object]], bool], after: int = 0) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(wanted(record) for record in self.records()[after:]):
            assert time.monotonic() < deadline, "no such log record"
            time.sleep(0.2)

    def things(self) -> set[str]:
        listing = self.sh(snippet("docker-cli").splitlines()[0]).stdout
        return {thing["thingName"] for thing in json.loads(listing)["things"]}

    def shadow(self) -> dict[str, object]:
        document: dict[str, object] = json.loads(
            self.sh(snippet("docker-cli").splitlines()[1]).stdout
        )
        return document


def _terminal_line(config: pytest.Config, text: str) -> None:
    """Print past pytest's output capture (fixture teardown output is otherwise swallowed)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(text)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    assert shutil.which("docker") and shutil.which("docker-compose"), "needs docker, docker-compose"
    assert subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0, (
        "dockerd is not running (or this user may not use it)"
    )
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": f"aws-iot-mock-test-{os.getpid()}",
        "AWS_IOT_MOCK_MQTT_PORT": str(mqtt := _free_port()),
        "AWS_IOT_MOCK_HTTPS_PORT": str(https := _free_port()),
        "AWS_IOT_MOCK_ALPN_PORT": str(alpn := _free_port()),
    }
    cwd = tmp_path_factory.mktemp("docker")
    (cwd / "docker").mkdir()
    shutil.copy(REPO_ROOT / "docker" / "compose.yaml", cwd / "docker" / "compose.yaml")
    stack = Stack(cwd, env, {8883: mqtt, 8443: https, 443: alpn})

    start = time.monotonic()
    build = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", snippet("docker-build")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    stack.figures["make docker"] = f"{time.monotonic() - start:.0f} s"
    for image in (IMAGE, CLIENT_IMAGE):
        size = int(stack.inspect("{{.Size}}", image))
        stack.figures[f"{image} size"] = f"{size / 1e6:.0f} MB"
    try:
        start = time.monotonic()
        stack.sh(snippet("docker-compose-up"))
        stack.wait_answering()
        stack.figures["up -d (new volume: CA, server and demo certificates) to answering"] = (
            f"{time.monotonic() - start:.1f} s"
        )
        stack.wait_healthy()
        stack.figures["up -d (new volume) to healthy in docker ps"] = (
            f"{time.monotonic() - start:.1f} s"
        )
        stack.sh(snippet("docker-copy-certs"))
        yield stack
    finally:
        subprocess.run(
            ["docker-compose", "-f", "docker/compose.yaml", "down", "-v", "--remove-orphans"],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        for name, figure in stack.figures.items():
            _terminal_line(request.config, f"docker figure: {name}: {figure}")


# -- the images ------------------------------------------------------------------------------


def test_the_images_run_as_a_non_root_user_without_pip_or_sources(stack: Stack) -> None:
    config = json.loads(stack.sh(f"docker image inspect {IMAGE}").stdout)[0]["Config"]
    assert config["User"] == "iot"
    assert "AWS_IOT_MOCK_CONFIG=/etc/aws-iot-mock/config.yaml" in config["Env"]
    assert list(config["Volumes"]) == ["/data"]
    assert set(config["ExposedPorts"]) == {"8883/tcp", "8443/tcp", "443/tcp"}
    assert config["Healthcheck"]["Test"] == ["CMD", "aws-iot-mock", "healthcheck"]
    inside = stack.sh(
        f"docker run --rm --entrypoint sh {IMAGE} -c"
        " 'id -u; stat -c %a /data; python3 -m pip --version 2>&1 || true; ls /src 2>&1 || true'"
    ).stdout.splitlines()
    assert inside[0] == "10001"
    assert inside[1] == "700"
    assert "No module named pip" in inside[2]  # the build stage's pip stayed there
    assert "No such file or directory" in inside[3]  # so did the source tree
    client = json.loads(stack.sh(f"docker image inspect {CLIENT_IMAGE}").stdout)[0]["Config"]
    assert client["User"] == "iot"


def test_ports_are_published_on_the_hosts_loopback_only(stack: Stack) -> None:
    bindings = json.loads(stack.inspect("{{json .HostConfig.PortBindings}}"))
    assert {
        key: [(b["HostIp"], int(b["HostPort"])) for b in value] for key, value in bindings.items()
    } == {f"{door}/tcp": [("127.0.0.1", stack.ports[door])] for door in (8883, 8443, 443)}


# -- the health endpoint ------------------------------------------------------------------------


def test_healthy_through_the_health_endpoint_which_logs_nothing(stack: Stack) -> None:
    ran = stack.sh(snippet("docker-health"))
    assert ran.stdout.strip() == output("docker-health").strip()
    # Docker's own probes ask the same endpoint: wait for one more, and nothing was logged.
    container = stack.container()
    probes = json.loads(stack.inspect("{{json .State.Health.Log}}", container))
    seen = len(stack.records())
    deadline = time.monotonic() + HEALTHY_TIMEOUT
    while (
        last := json.loads(stack.inspect("{{json .State.Health.Log}}", container))[-1]
    ) == probes[-1]:
        assert time.monotonic() < deadline, "Docker ran no health probe"
        time.sleep(0.5)
    assert (last["ExitCode"], last["Output"].strip()) == (0, output("docker-health").strip())
    assert stack.records()[seen:] == []


# -- devices on the host, through every published door -----------------------------------------


def test_host_devices_through_the_published_doors(stack: Stack) -> None:
    seen = len(stack.records())
    subscriber = stack.popen(snippet("docker-mosquitto-sub").strip() + " -C 3 -W 60")
    try:
        stack.wait_record(
            lambda r: r.get("eventType") == "Subscribe" and r.get("clientId") == "demo-device",
            seen,
        )
        stack.pace("demo-device-publisher")
        stack.sh(snippet("docker-mosquitto-pub"))
        stack.done_connecting("demo-device-publisher")
        accepted = json.loads(stack.sh(snippet("docker-curl")).stdout)
        assert accepted["message"] == "OK"
        stack.pace("demo-device-publisher")
        ran = subprocess.run(
            [sys.executable, "-c", stack.documented(snippet("docker-host-sdk"))],
            cwd=stack.cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        stack.done_connecting("demo-device-publisher")
        assert ran.returncode == 0, ran.stderr
        out, err = subscriber.communicate(timeout=TIMEOUT)
    finally:
        if subscriber.poll() is None:
            # The whole group: bash and mosquitto_sub, which holds the pipes open.
            os.killpg(subscriber.pid, signal.SIGKILL)
            subscriber.communicate()
    assert subscriber.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == output("docker-mosquitto-sub").strip()
    assert lines[1:] == ['demo/hello {"from": "curl"}', "demo/hello hello from the SDK"]


def _tls_context(stack: Stack, alpn: str | None = None) -> ssl.SSLContext:
    certs = stack.cwd / "docker-certs"
    context = ssl.create_default_context(cafile=str(certs / "root-ca.pem"))
    context.load_cert_chain(
        str(certs / "demo-device" / "demo-device.cert.pem"),
        str(certs / "demo-device" / "demo-device.private.key"),
    )
    if alpn is not None:
        context.set_alpn_protocols([alpn])
    return context


def test_443_routes_https_by_alpn_from_the_host(stack: Stack) -> None:
    # AWS's 443: ALPN x-amzn-http-ca selects HTTPS with the client certificate.
    connection = http.client.HTTPSConnection(
        "localhost",
        stack.ports[443],
        context=_tls_context(stack, "x-amzn-http-ca"),
        timeout=TIMEOUT,
    )
    try:
        connection.request("POST", "/topics/demo/alpn?qos=1", body=b"{}")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["message"]) == (200, "OK")
    finally:
        connection.close()


@pytest.mark.parametrize("server_name", ["localhost", ENDPOINT])
def test_the_endpoint_and_localhost_are_accepted_in_sni(stack: Stack, server_name: str) -> None:
    context = _tls_context(stack)
    with (
        socket.create_connection(("127.0.0.1", stack.ports[8883]), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        assert tls.version() is not None


def test_another_name_in_sni_is_refused(stack: Stack) -> None:
    """The twin of the test above: AWS refuses a name that is not the endpoint's."""
    seen = len(stack.records())
    context = _tls_context(stack)
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", stack.ports[8883]), timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLError),
        context.wrap_socket(raw, server_hostname="iot.example.com"),
    ):
        pass
    stack.wait_record(lambda r: r.get("reason") == "SNI_MISMATCH", seen)


# -- a device on the compose network, by the AWS-shaped name ------------------------------------


def test_the_sdk_client_container_connects_by_the_aws_shaped_name(stack: Stack) -> None:
    seen = len(stack.records())
    stack.pace("demo-device-publisher")
    ran = stack.sh(snippet("docker-sdk-client"))
    stack.done_connecting("demo-device-publisher")
    assert ran.stdout.strip() == output("docker-sdk-client").strip()
    connect = next(
        r
        for r in stack.records()[seen:]
        if r.get("eventType") == "Connect" and r.get("clientId") == "demo-device-publisher"
    )
    assert f"SNI '{ENDPOINT}'" in str(connect["details"])
    assert "x-amzn-mqtt-ca" in str(connect["details"])
    published = next(
        r
        for r in stack.records()[seen:]
        if r.get("eventType") == "Publish-In" and r.get("topicName") == "demo/sdk-client"
    )
    assert published["status"] == "Success"


# -- the CLI inside the container ----------------------------------------------------------------


def test_cli_verbs_in_the_container_need_no_config(stack: Stack) -> None:
    assert {"demo-device", "demo-device-publisher", "demo-device-healthcheck"} <= stack.things()


# -- state on the volume ------------------------------------------------------------------------


def _mosquitto(stack: Stack, verb: str, arguments: str) -> str:
    """A documented mosquitto line with other arguments (same host, port and files)."""
    documented = snippet("docker-mosquitto-pub").split(" -i ", 1)[0]
    client_id = arguments.split("-i ", 1)[1].split(maxsplit=1)[0]
    stack.pace(client_id)
    try:
        return stack.sh(documented.replace("mosquitto_pub", verb, 1) + " " + arguments).stdout
    finally:
        stack.done_connecting(client_id)


def test_state_survives_restart_and_a_new_container(stack: Stack) -> None:
    restart, recreate = snippet("docker-restart").splitlines()
    root_ca = (stack.cwd / "docker-certs" / "root-ca.pem").read_bytes()
    stack.sh(
        "docker-compose -f docker/compose.yaml exec -T aws-iot-mock"
        " aws-iot-mock create-thing --thing-name survivor"
    )
    _mosquitto(stack, "mosquitto_pub", "-i demo-device-publisher -q 1 -r -t demo/retained -m kept")
    accepted = _mosquitto(
        stack,
        "mosquitto_rr",
        "-i demo-device-publisher -V 311 -q 1 -t '$aws/things/demo-device-publisher/shadow/update'"
        " -e '$aws/things/demo-device-publisher/shadow/update/accepted'"
        """ -m '{"state": {"reported": {"color": "green"}}}' -W 60""",
    )
    assert json.loads(accepted)["state"]["reported"] == {"color": "green"}
    # A persistent session (clean session off) with a QoS 1 subscription, then offline.
    _mosquitto(stack, "mosquitto_sub", "-i demo-device -c -q 1 -t demo/queued -E")

    first = stack.container()
    stack.sh(restart)
    stack.wait_healthy()
    assert stack.container() == first
    _mosquitto(stack, "mosquitto_pub", "-i demo-device-publisher -q 1 -t demo/queued -m queued")

    start = time.monotonic()
    stack.sh(recreate)
    stack.wait_answering()
    stack.figures["up -d --force-recreate (existing volume) to answering"] = (
        f"{time.monotonic() - start:.1f} s"
    )
    stack.wait_healthy()
    stack.figures["up -d --force-recreate (existing volume) to healthy in docker ps"] = (
        f"{time.monotonic() - start:.1f} s"
    )
    assert stack.container() != first

    assert "survivor" in stack.things()
    assert stack.shadow()["state"] == {"reported": {"color": "green"}}
    retained = "-i demo-device-publisher -q 1 -t demo/retained -C 1 -W 60 -v"
    assert _mosquitto(stack, "mosquitto_sub", retained).strip() == "demo/retained kept"
    queued = "-i demo-device -c -q 1 -t demo/queued -C 1 -W 60 -v"
    assert _mosquitto(stack, "mosquitto_sub", queued).strip() == "demo/queued queued"
    stack.sh(snippet("docker-copy-certs"))
    assert (stack.cwd / "docker-certs" / "root-ca.pem").read_bytes() == root_ca


def test_docker_stop_exits_cleanly_on_sigterm(stack: Stack) -> None:
    container = stack.container()
    stack.sh(f"docker stop {container}", timeout=TIMEOUT)
    # 0 is serve's own exit on SIGTERM; a stop that ran out of time would be SIGKILL's 137.
    assert stack.inspect("{{.State.ExitCode}}", container) == "0"
    stack.sh(f"docker start {container}")
    stack.wait_healthy()


def test_down_keeps_the_volume(stack: Stack) -> None:
    stack.sh(snippet("docker-down"))
    volume = f"{stack.env['COMPOSE_PROJECT_NAME']}_data"
    assert stack.sh(f"docker volume inspect -f '{{{{.Name}}}}' {volume}").stdout.strip() == volume
