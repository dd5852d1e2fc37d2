"""docs/control-plane.md ("boto3 and the AWS CLI"), run as pasted, with the real AWS CLI.

``aws-iot-mock serve`` runs in a fresh directory, as ``make run`` does; the section's shell block
runs with the ``aws`` command of the ``awscli`` package (only the ports differ: the test's are
picked by the OS), then its Python blocks: the AWS IoT Device SDK connects with the
certificate the AWS CLI created, and boto3 reads the same registry. The AWS CLI's user
configuration is never read: ``HOME`` and ``AWS_CONFIG_FILE`` point into the test's directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs_snippets import snippet
from tests.serve_child import STARTUP_TIMEOUT, ServeChild, child_env

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
AWS = Path(sys.prefix) / "bin" / "aws"

pytestmark = pytest.mark.skipif(not AWS.exists(), reason="needs the awscli package")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """``serve`` with the default config in a fresh directory; every door on a free port."""
    ports = ("--port", "0", "--https-port", "0", "--alpn-port", "0", "--api-port", "0")
    config = REPO_ROOT / "config" / "default.yaml"
    child = ServeChild(["serve", "--config", str(config), *ports], tmp_path, child_env())
    try:
        child.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        yield tmp_path, {door: int(child.banner(door).split()[0]) for door in ("mqtt", "api")}
    finally:
        child.close()


def isolated_env(directory: Path) -> dict[str, str]:
    """No AWS setting of the machine's user; the venv's aws and python first on PATH."""
    env = {key: value for key, value in child_env().items() if not key.startswith("AWS_")}
    home = directory / "home"
    home.mkdir(exist_ok=True)
    env.update(
        {
            "HOME": str(home),
            "AWS_CONFIG_FILE": str(home / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
            "PATH": os.pathsep.join([str(AWS.parent), env.get("PATH", "")]),
        }
    )
    return env


def with_ports(text: str, ports: dict[str, int]) -> str:
    return text.replace("9443", str(ports["api"])).replace("port=8883", f"port={ports['mqtt']}")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def test_the_documented_walkthrough_runs_as_pasted(served: tuple[Path, dict[str, int]]) -> None:
    directory, ports = served
    env = isolated_env(directory)
    shell = snippet("control-plane-walkthrough")
    walkthrough = run(["bash", "-e", "-c", with_ports(shell, ports)], directory, env)
    assert walkthrough.returncode == 0, walkthrough.stderr
    assert '"endpointAddress": "localhost"' in walkthrough.stdout  # describe-endpoint
    arn = (directory / "certs" / "my-sensor" / "arn.txt").read_text()
    assert arn.startswith("arn:aws:iot:us-east-1:")

    for block in (snippet("control-plane-sdk"), snippet("control-plane-boto3")):
        name = block.splitlines()[0].removeprefix("# ")
        (directory / name).write_text(with_ports(block, ports), encoding="utf-8")
    connected = run([sys.executable, "my_sensor.py"], directory, env)
    assert connected.returncode == 0, connected.stderr
    assert connected.stdout.strip() == "my-sensor connected"
    provisioned = run([sys.executable, "provision.py"], directory, env)
    assert provisioned.returncode == 0, provisioned.stderr
    assert provisioned.stdout.split() == [
        "arn:aws:iot:us-east-1:123456789012:thing/my-sensor",
        "ResourceNotFoundException",
    ]


def test_the_aws_cli_prints_aws_errors(served: tuple[Path, dict[str, int]]) -> None:
    directory, ports = served
    env = isolated_env(directory) | {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    api = f"https://localhost:{ports['api']}"
    ca = ["--ca-bundle", str(directory / "certs" / "root-ca.pem")]
    missing = run(
        ["aws", "iot", "describe-thing", "--thing-name", "nope", "--endpoint-url", api, *ca],
        directory,
        env,
    )
    # The AWS CLI's exit code for a service error: 254 in version 2, 255 in version 1.
    assert missing.returncode in (254, 255)
    assert (
        "An error occurred (ResourceNotFoundException) when calling the DescribeThing "
        "operation: Thing nope cannot be found." in missing.stderr
    )
    # Plain HTTP on loopback: no CA bundle needed.
    plain = run(
        ["aws", "iot", "list-things", "--endpoint-url", f"http://localhost:{ports['api']}"],
        directory,
        env,
    )
    assert plain.returncode == 0, plain.stderr
    assert '"things": []' in plain.stdout
