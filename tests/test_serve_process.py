"""Tests for ``python -m aws_iot_mock serve`` as a real process: startup lines, a device, signals.

The process's stderr is read line by line by a thread into a queue, so the test waits for the
"ready" line with a deadline instead of sleeping. Standard output (the AWSIotLogsV2 JSON lines)
is collected by another thread and checked once the process has exited.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import (
    MQTT311_CONNACK_ACCEPTED,
    Device,
    blocking_handshake,
    client_context,
)
from tests.serve_child import REPO_ROOT, STARTUP_TIMEOUT

# An MQTT 3.1.1 CONNECT (clean session, keep-alive 60) with client ID "demo-device".
DEMO_DEVICE_CONNECT = bytes.fromhex("101700044d5154540402003c000b") + b"demo-device"

EXIT_CONFIG = 253
EXIT_TIMEOUT = 10.0


class ServeProcess:
    """A ``python -m aws_iot_mock`` child whose stdout and stderr are drained by reader threads."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = dict(os.environ)
        # Import this checkout's package even if the venv's install points elsewhere.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aws_iot_mock", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            text=True,
            env=env,
        )
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._stderr_queue: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._drain,
                args=(self.proc.stderr, self.stderr_lines, self._stderr_queue),
                daemon=True,
            ),
            threading.Thread(
                target=self._drain, args=(self.proc.stdout, self.stdout_lines, None), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream: IO[str], lines: list[str], notify: queue.Queue[str | None] | None) -> None:
        for line in stream:
            lines.append(line)
            if notify is not None:
                notify.put(line)
        if notify is not None:
            notify.put(None)  # end of stream

    def wait_for_stderr(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """Return the first new stderr line matching ``predicate``; fail at EOF or the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no matching stderr line within {timeout} s: {self.stderr_lines!r}")
            try:
                line = self._stderr_queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(
                    f"the process closed stderr (exit code {self.proc.poll()}) before a "
                    f"matching line: {''.join(self.stderr_lines)}"
                )
            if predicate(line):
                return line

    def wait(self, timeout: float) -> int:
        """Wait for exit, then for the reader threads to see end of file; return the exit code."""
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=timeout)
            assert not thread.is_alive()
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def close(self) -> None:
        """Kill the child if it is still running and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for thread in self._threads:
            thread.join()
        self.proc.__exit__(None, None, None)  # closes the pipes


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``python -m aws_iot_mock <args>`` in ``tmp_path``; children are reaped on teardown."""
    children: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        child = ServeProcess(list(args), tmp_path)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port on 127.0.0.1 that this test holds open (listening), so nobody else can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _dirs(tmp_path: Path) -> list[str]:
    return ["--certs-dir", str(tmp_path / "certs"), "--state-dir", str(tmp_path / "state")]


def _field(lines: list[str], label: str) -> str:
    """The value of the ``label:`` line of the startup banner."""
    for line in lines:
        if line.startswith(f"{label}:"):
            return line.removeprefix(f"{label}:").strip()
    raise AssertionError(f"no {label!r} line in {lines!r}")


def _certificate_id(cert_path: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_demo_device_connects_and_stops_on_signal(
    spawn: Callable[..., ServeProcess], tmp_path: Path, signum: signal.Signals
) -> None:
    child = spawn(
        "serve",
        "--port",
        "0",
        "--https-port",
        "0",
        "--alpn-port",
        "0",
        *_dirs(tmp_path),
        "--demo-device",
    )

    child.wait_for_stderr(lambda line: line.startswith("ready"), STARTUP_TIMEOUT)

    banner = child.stderr_lines
    port = int(_field(banner, "mqtt").split()[0])
    assert port > 0
    root_ca = Path(_field(banner, "root CA"))
    assert root_ca == tmp_path / "certs" / "root-ca.pem"
    match = re.fullmatch(r"(\S+) \(key (\S+)\)", _field(banner, "demo device"))
    assert match is not None, banner
    cert_path, key_path = Path(match[1]), Path(match[2])
    assert cert_path.parent == tmp_path / "certs" / "demo-device"
    demo_id = _certificate_id(cert_path)
    assert _field(banner, "endpoint") == "localhost"

    ctx = client_context(root_ca, Device(demo_id, cert_path, key_path))
    # The demo policy admits the client ID of a thing the demo certificate is attached to.
    with blocking_handshake(port, ctx, "localhost", DEMO_DEVICE_CONNECT) as tls:
        assert _recv_exactly(tls, 4) == MQTT311_CONNACK_ACCEPTED

        # Stop the broker while the device is still connected: it closes the connection and
        # exits cleanly.
        child.proc.send_signal(signum)
        assert child.wait(EXIT_TIMEOUT) == 0
        with contextlib.suppress(OSError):
            assert tls.recv(1) == b""

    assert "Traceback" not in child.stderr
    records = [json.loads(line) for line in child.stdout_lines]
    successes = [r for r in records if r["status"] == "Success"]
    assert successes, records
    connects = [
        r for r in successes if r["eventType"] == "Connect" and r.get("clientId") == "demo-device"
    ]
    assert connects, records
    assert all(r["principalId"] == demo_id for r in connects)
    assert not [r for r in records if r["status"] == "Failure"], records


def test_serve_port_in_use(
    spawn: Callable[..., ServeProcess], tmp_path: Path, busy_port: int
) -> None:
    child = spawn(
        "serve", "--port", str(busy_port), "--https-port", "0", "--alpn-port", "0", *_dirs(tmp_path)
    )

    code = child.wait(STARTUP_TIMEOUT)

    assert code == EXIT_CONFIG
    stderr = child.stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"aws-iot-mock: the mqtt listener (127.0.0.1:{busy_port}): ")
    assert "address already in use (held by pid " in lines[0]
    assert "--port 0 picks a free one" in lines[0]


def test_serve_bad_config_exits_before_binding(
    spawn: Callable[..., ServeProcess], tmp_path: Path, busy_port: int
) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("listeners:\n  - {door: mqtt, prot: 8883}\n", encoding="utf-8")
    # The port is taken: had the broker tried to bind, the error would be about the address.
    child = spawn("serve", "--config", str(config), "--port", str(busy_port), *_dirs(tmp_path))

    code = child.wait(STARTUP_TIMEOUT)

    assert code == EXIT_CONFIG
    stderr = child.stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "listeners[0].prot" in lines[0]
    assert str(config) in lines[0]
    assert str(busy_port) not in lines[0]
    assert child.stdout_lines == []
    # Nothing was created: the configuration is checked before any file or socket is touched.
    assert not (tmp_path / "certs").exists()
    assert not (tmp_path / "state").exists()


def test_serve_lists_every_door_and_writes_the_ready_file(
    spawn: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    ready = tmp_path / "ready.json"
    child = spawn(
        "serve",
        *("--port", "0", "--https-port", "0", "--alpn-port", "0", "--api-port", "0"),
        *("--ready-file", str(ready)),
        *_dirs(tmp_path),
        "--demo-device",
    )
    child.wait_for_stderr(lambda line: line.startswith("ready"), STARTUP_TIMEOUT)

    document = json.loads(ready.read_text(encoding="utf-8"))
    assert document["endpoint"] == "localhost"
    assert Path(document["root_ca"]) == (tmp_path / "certs" / "root-ca.pem").resolve()
    ports = document["ports"]
    assert set(ports) == {"mqtt", "https", "alpn", "api"}
    banner = child.stderr_lines
    for door in ("mqtt", "https", "alpn", "api"):
        line = _field(banner, door)
        assert line.startswith(f"{ports[door]} on 127.0.0.1 ("), line
    assert "AWS: 8883" in _field(banner, "mqtt")
    # The control plane's URL, to paste into --endpoint-url.
    assert _field(banner, "api url").startswith(f"https://localhost:{ports['api']} ")

    # The ready file's port serves the demo device.
    match = re.fullmatch(r"(\S+) \(key (\S+)\)", _field(banner, "demo device"))
    assert match is not None
    device = Device(_certificate_id(Path(match[1])), Path(match[1]), Path(match[2]))
    ctx = client_context(Path(document["root_ca"]), device)
    with blocking_handshake(ports["mqtt"], ctx, "localhost", DEMO_DEVICE_CONNECT) as tls:
        assert _recv_exactly(tls, 4) == MQTT311_CONNACK_ACCEPTED
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(EXIT_TIMEOUT) == 0


def test_serve_without_443_says_why_and_how_to_get_it(
    spawn: Callable[..., ServeProcess], tmp_path: Path, busy_port: int
) -> None:
    """The default config's 443 is optional: a port that cannot be bound leaves it off."""
    config = tmp_path / "doors.yaml"
    config.write_text(
        "listeners:\n"
        "  - {door: mqtt, port: 0}\n"
        f"  - {{door: alpn, port: {busy_port}, optional: true}}\n",
        encoding="utf-8",
    )
    ready = tmp_path / "ready.json"
    child = spawn("serve", "--config", str(config), "--ready-file", str(ready), *_dirs(tmp_path))
    child.wait_for_stderr(lambda line: line.startswith("ready"), STARTUP_TIMEOUT)

    off = _field(child.stderr_lines, "alpn")
    assert off.startswith(f"off: the alpn listener (127.0.0.1:{busy_port}): address already in use")
    assert "--alpn-port" in off
    assert set(json.loads(ready.read_text(encoding="utf-8"))["ports"]) == {"mqtt"}
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(EXIT_TIMEOUT) == 0


def test_serve_rejects_a_port_that_is_not_a_number(
    spawn: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    child = spawn("serve", "--https-port", "eighty", *_dirs(tmp_path))
    assert child.wait(STARTUP_TIMEOUT) == 252
    assert "invalid port 'eighty': a number (0 picks a free one) or off" in child.stderr


def test_a_device_that_connects_while_serve_starts_is_served(
    spawn: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    # serve's data doors listen before the device services are built (they are imported
    # meanwhile): a device whose handshake completes in that window waits for its handler and
    # is then served exactly as later ones are: CONNACK accepted, one Connect record.
    init = spawn("init", *_dirs(tmp_path), "--demo-device")
    assert init.wait(STARTUP_TIMEOUT) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    certs = tmp_path / "certs"
    cert_path = certs / "demo-device" / "demo-device.cert.pem"
    device = Device(
        _certificate_id(cert_path), cert_path, certs / "demo-device" / "demo-device.private.key"
    )
    ctx = client_context(certs / "root-ca.pem", device)
    child = spawn(
        "serve", "--port", str(port), "--https-port", "off", "--alpn-port", "off", *_dirs(tmp_path)
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:  # as soon as the port listens: no wait for the "ready" line
        try:
            tls = blocking_handshake(port, ctx, "localhost", DEMO_DEVICE_CONNECT)
            break
        except (ConnectionRefusedError, ConnectionResetError):
            assert child.proc.poll() is None, child.stderr
            assert time.monotonic() < deadline, "the mqtt door never listened"
            time.sleep(0.002)
    with tls:
        assert _recv_exactly(tls, 4) == MQTT311_CONNACK_ACCEPTED
    child.wait_for_stderr(lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    child.proc.send_signal(signal.SIGTERM)
    assert child.wait(EXIT_TIMEOUT) == 0
    records = [json.loads(line) for line in child.stdout_lines]
    assert not [r for r in records if r["status"] == "Failure"], records
    connects = [r for r in records if r["eventType"] == "Connect"]
    assert [r["clientId"] for r in connects] == ["demo-device"], records
