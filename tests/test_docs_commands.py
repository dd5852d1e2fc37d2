"""The README's and docs/ pages' commands, run as written against ``make run``'s broker.

Each block runs verbatim except the port (8883 in the page) and ``make run``, which runs as
``tests.serve_child.make_run`` does (the same ``serve`` command line).
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs_snippets import assert_like_documented, output, snippet
from tests.serve_child import (
    REPO_ROOT,
    STARTUP_TIMEOUT,
    TIMEOUT,
    ServeChild,
    child_env,
    make_run,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


# AWS's documentation's example keys, which the README's banner shows for the demo user's.
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def with_port(text: str, port: int) -> str:
    for documented in ("-p 8883", "127.0.0.1:8883", "port=8883", '"localhost", 8883'):
        text = text.replace(documented, documented.replace("8883", str(port)))
    return text


def run_shell(text: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", text],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


def run_python(text: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", text],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A working directory like the repository root: the venv linked in as ``.venv``."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "aws-iot-mock").exists():
        pytest.skip("the aws-iot-mock console script is not installed in this environment")
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


@pytest.fixture
def served(checkout: Path, children: list[ServeChild]) -> Iterator[tuple[ServeChild, int]]:
    serve = make_run(checkout, children)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    yield serve, int(serve.banner("mqtt").split()[0])


def records(serve: ServeChild) -> list[dict[str, object]]:
    return [json.loads(line) for line in serve.lines["stdout"]]


def test_your_own_device_walkthrough(checkout: Path, served: tuple[ServeChild, int]) -> None:
    serve, port = served
    created = run_shell(snippet("getting-started-create-device"), checkout)
    assert created.returncode == 0, created.stderr
    device = checkout / "certs" / "my-device"
    assert {p.name for p in device.iterdir()} >= {"device.pem.crt", "private.pem.key", "cert.json"}

    allowed = run_shell(snippet("getting-started-test-authorization"), checkout)
    assert allowed.returncode == 0, allowed.stderr
    results = json.loads(allowed.stdout)["authResults"]
    assert [r["authDecision"] for r in results] == ["ALLOWED"]

    last_connect = time.monotonic()
    handshake = run_shell(with_port(snippet("getting-started-openssl"), port), checkout)
    assert handshake.returncode == 0, handshake.stderr
    assert "Verification: OK" in handshake.stdout + handshake.stderr
    serve.wait_line("stdout", lambda line: "CLIENT_INITIATED_DISCONNECT" in line, TIMEOUT)

    for name in ("getting-started-sdk", "getting-started-paho"):
        # AWS accepts one CONNECT per second per client ID; a person pasting the next example
        # takes longer than that.
        time.sleep(max(0.0, 1.0 - (time.monotonic() - last_connect)))
        ran = run_python(with_port(snippet(name), port), checkout)
        last_connect = time.monotonic()
        assert ran.returncode == 0, (name, ran.stderr)
        assert "devices/my-device/cmd b'hello'" in ran.stdout, (name, ran.stdout)

    # The documented refusal: a client ID the policy does not allow.
    impostor = snippet("getting-started-paho").replace(
        'client_id="my-device"', 'client_id="my-dev1ce"'
    )
    refused = run_python(with_port(impostor, port), checkout)
    assert refused.returncode == 0, refused.stderr
    assert "disconnected:" in refused.stdout
    line = serve.wait_line("stdout", lambda text: "AUTHORIZATION_FAILURE" in text, TIMEOUT)
    assert_like_documented(output("getting-started-refusal"), json.loads(line))


@pytest.mark.skipif(
    not (Path(sys.prefix) / ".installed-run").exists(),
    reason="the running interpreter's venv was not set up by make (no .installed-run stamp)",
)
def test_an_aws_shaped_endpoint_name(checkout: Path, children: list[ServeChild]) -> None:
    documented = snippet("getting-started-aws-shaped").strip()
    assert documented == "make run CONFIG=config/examples/aws-shaped-endpoint.yaml"
    config = REPO_ROOT / "config" / "examples" / "aws-shaped-endpoint.yaml"
    serve = ServeChild(
        [],
        checkout,
        child_env(),
        command=[
            "make",
            "-f",
            str(REPO_ROOT / "Makefile"),
            "run",
            f"VENV={sys.prefix}",
            f"CONFIG={config}",
            "ARGS=--port 0 --https-port 0 --alpn-port 0",
        ],
        new_session=True,
    )
    children.append(serve)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    port = int(serve.banner("mqtt").split()[0])
    handshake = run_shell(with_port(snippet("getting-started-aws-shaped-openssl"), port), checkout)
    assert handshake.returncode == 0, handshake.stderr
    assert "Verification: OK" in handshake.stdout + handshake.stderr
    # The twin: the default name is no longer the endpoint.
    wrong = with_port(snippet("getting-started-aws-shaped-openssl"), port).replace(
        "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com", "localhost"
    )
    assert run_shell(wrong, checkout).returncode != 0
    serve.wait_line("stdout", lambda line: "SNI_MISMATCH" in line, TIMEOUT)


def test_the_readme_banner_and_its_sdk_example(
    checkout: Path, served: tuple[ServeChild, int]
) -> None:
    serve, port = served
    ports = {door: int(serve.banner(door).split()[0]) for door in ("mqtt", "https", "alpn", "api")}
    documented = {"mqtt": 8883, "https": 8443, "alpn": 443, "api": 9443}
    banner = serve.lines["stderr"][: serve.lines["stderr"].index("ready (Ctrl-C to stop)") + 1]
    # The demo user's keys are made on first run; the README shows AWS's example keys.
    keys = dict(pair.split("=", 1) for pair in serve.banner("demo user").split(": ", 1)[1].split())
    as_documented = []
    for line in banner:
        text = line
        for door, actual in ports.items():
            text = text.replace(f" {actual} on ", f" {documented[door]} on ")
            text = text.replace(f"-p {actual} ", f"-p {documented[door]} ")
            text = text.replace(f"localhost:{actual} ", f"localhost:{documented[door]} ")
            text = text.replace(f"localhost:{actual}/", f"localhost:{documented[door]}/")
            text = text.replace(f'localhost:{actual}"', f'localhost:{documented[door]}"')
        text = text.replace(keys["AWS_ACCESS_KEY_ID"], EXAMPLE_ACCESS_KEY_ID)
        text = text.replace(keys["AWS_SECRET_ACCESS_KEY"], EXAMPLE_SECRET_ACCESS_KEY)
        as_documented.append(text)
    assert as_documented == output("make-run-banner").splitlines()

    ran = run_python(with_port(snippet("readme-sdk-demo-device"), port), checkout)
    assert ran.returncode == 0, ran.stderr
    message = serve.wait_line("stdout", lambda line: '"topicName":"demo/hello"' in line, TIMEOUT)
    assert json.loads(message)["clientId"] == "demo-device"


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="needs mosquitto-clients")
def test_watching_lifecycle_events(checkout: Path, served: tuple[ServeChild, int]) -> None:
    serve, port = served
    assert run_shell(snippet("getting-started-create-device"), checkout).returncode == 0
    granted = run_shell(snippet("lifecycle-events-policy"), checkout)
    assert granted.returncode == 0, granted.stderr
    watching = subprocess.Popen(
        ["bash", "-c", with_port(snippet("lifecycle-events-watch"), port)],
        cwd=checkout,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        serve.wait_line(
            "stdout",
            lambda line: '"eventType":"Subscribe"' in line and "my-device" in line,
            TIMEOUT,
        )
        publish = serve.banner("publish")  # the line `make run` printed, pasted
        assert run_shell(publish, checkout).returncode == 0
        out, err = watching.communicate(timeout=TIMEOUT)
    finally:
        if watching.poll() is None:
            watching.kill()
            watching.communicate()
    assert watching.returncode == 0, err
    topic, payload = out.strip().split(" ", 1)
    assert topic == "$aws/events/presence/connected/demo-device-publisher"
    assert json.loads(payload)["eventType"] == "connected"


def test_the_documented_log_lines(checkout: Path, served: tuple[ServeChild, int]) -> None:
    serve, port = served
    # docs/logs.md: a client that sent the wrong SNI.
    context = ssl.create_default_context(cafile=str(checkout / "certs" / "root-ca.pem"))
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLError),
        context.wrap_socket(raw, server_hostname="foo.example"),
    ):
        pass
    line = serve.wait_line("stdout", lambda text: "SNI_MISMATCH" in text, TIMEOUT)
    assert_like_documented(output("logs-sni-refusal"), json.loads(line))

    # docs/shadows.md: an update with a stale version, answered on /rejected.
    update = with_port(snippet("shadows-device-reports"), port).replace(
        '{"state":{"reported":{"color":"green"}}}', '{"state":{"reported":{"a":1}},"version":9}'
    )
    assert run_shell(update, checkout).returncode == 0
    line = serve.wait_line("stdout", lambda text: "ConflictException" in text, TIMEOUT)
    assert_like_documented(output("shadows-rejected-log"), json.loads(line))


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
def test_reading_the_log_file_with_jq(checkout: Path, children: list[ServeChild]) -> None:
    config = checkout / "logging.yaml"
    config.write_text(
        (REPO_ROOT / "config" / "default.yaml").read_text(encoding="utf-8")
        + "\n# the docs' example\n",
        encoding="utf-8",
    )
    text = config.read_text(encoding="utf-8").replace(
        "  file: null", f"  file: {checkout / 'logs' / 'aws-iot-logs.jsonl'}"
    )
    config.write_text(text, encoding="utf-8")
    serve = ServeChild(
        [
            "serve",
            "--config",
            str(config),
            "--port",
            "0",
            "--https-port",
            "0",
            "--alpn-port",
            "off",
        ],
        checkout,
        child_env(),
    )
    children.append(serve)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    port = int(serve.banner("mqtt").split()[0])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as plain:
        plain.sendall(b"not TLS\r\n")
        plain.recv(1024)
    serve.wait_line("stdout", lambda line: "HANDSHAKE_FAILED" in line, TIMEOUT)
    ran = run_shell(snippet("logs-jq-failures"), checkout)
    assert ran.returncode == 0, ran.stderr
    (row,) = ran.stdout.splitlines()
    assert row.split("\t")[1] == "HANDSHAKE_FAILED"


def test_a_configuration_typo(checkout: Path) -> None:
    mine = checkout / "config" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text(snippet("configuration-typo"), encoding="utf-8")
    ran = run_shell(".venv/bin/aws-iot-mock serve --config config/mine.yaml", checkout)
    assert ran.returncode == 253
    assert ran.stderr == output("configuration-typo-error")
