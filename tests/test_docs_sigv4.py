"""docs/https.md, docs/websocket.md and the banner's SigV4 lines, run as written.

Against ``make run``'s broker (a ``serve`` child, as ``tests/test_docs_commands.py`` runs the
other pages): each block runs verbatim but for its ports (8443 and 443 in the pages), with the
dev extra's AWS CLI on ``PATH`` and no AWS configuration of the machine running the tests.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs_snippets import assert_like_documented, output, snippet
from tests.serve_child import STARTUP_TIMEOUT, TIMEOUT, ServeChild, child_env, make_run

# AWS's documentation's example keys, which the README's banner and the pages show.
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A working directory like the repository root: the venv linked in as ``.venv``."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "aws-iot-mock").exists():
        pytest.skip("the aws-iot-mock console script is not installed in this environment")
    if not (venv / "bin" / "aws").exists():
        pytest.skip("needs the awscli package (the dev extra)")
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


@pytest.fixture
def served(checkout: Path, children: list[ServeChild]) -> Iterator[ServeChild]:
    serve = make_run(checkout, children)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    yield serve


def aws_env(**keys: str) -> dict[str, str]:
    """The children's environment: the venv's ``aws`` on PATH, no machine AWS configuration."""
    env = child_env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env.update(keys)
    return env


def with_ports(text: str, serve: ServeChild) -> str:
    """The page's text with the doors' real ports (8443 and 443 in the pages)."""
    https = serve.banner("https").split()[0]
    alpn = serve.banner("alpn").split()[0]
    text = text.replace("localhost:8443", f"localhost:{https}")
    for documented in ("localhost:443", "port=443", '"localhost", 443'):
        text = text.replace(documented, documented.replace("443", alpn))
    return text


def run(name: str, serve: ServeChild, cwd: Path, env: dict[str, str]) -> str:
    """Run snippet ``name`` (Python or shell, by its fence); its stdout, after success."""
    text = with_ports(snippet(name), serve)
    python = text.lstrip().startswith(("import ", "from "))
    command = [sys.executable, "-c", text] if python else ["bash", "-e", "-c", text]
    ran = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert ran.returncode == 0, (name, ran.stdout, ran.stderr)
    return ran.stdout


def log_line(serve: ServeChild, *fragments: str, seen: set[str] | None = None) -> dict[str, object]:
    """The first log line (stdout) holding every fragment (and not in ``seen``)."""
    line = serve.wait_line(
        "stdout",
        lambda text: all(f in text for f in fragments) and (seen is None or text not in seen),
        TIMEOUT,
    )
    if seen is not None:
        seen.add(line)
    record: dict[str, object] = json.loads(line)
    return record


def my_app_keys(checkout: Path) -> dict[str, str]:
    """The keys https-iam-user's ``create-access-key`` wrote, as environment variables."""
    key = json.loads((checkout / "certs" / "my-app-key.json").read_text())["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }


# -- the README banner -----------------------------------------------------------------------------


def test_the_banners_sigv4_lines_publish_as_the_demo_user(
    checkout: Path, served: ServeChild
) -> None:
    """The banner's ``aws cli`` and ``boto3`` lines, pasted: both publish as demo-user."""
    principals = set()
    seen: set[str] = set()
    for label in ("aws cli", "boto3"):
        command = served.banner(label)
        if label == "boto3":
            command = command.replace("python3 -c", f"{shlex.quote(sys.executable)} -c", 1)
        ran = subprocess.run(
            ["bash", "-e", "-c", command],
            cwd=checkout,
            env=aws_env(),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
            check=False,
        )
        assert ran.returncode == 0, (label, ran.stderr)
        record = log_line(served, '"topicName":"demo/hello"', '"protocol":"HTTP"', seen=seen)
        assert record["eventType"] == "Publish-In"
        principals.add(str(record["principalId"]))
    (principal,) = principals
    assert principal.startswith("AIDA")  # demo-user's unique ID


# -- docs/https.md ---------------------------------------------------------------------------------


def test_the_https_page(checkout: Path, served: ServeChild) -> None:
    env = aws_env()
    # Mutual TLS: AWS's curl example, then boto3 with the certificate.
    answer = json.loads(run("https-curl-x509", served, checkout, env))
    assert list(answer) == list(json.loads(output("https-curl-x509")))
    assert answer["message"] == "OK"
    assert log_line(served, '"topicName":"demo/hi"', '"protocol":"HTTP"')["status"] == "Success"
    assert run("https-boto3-x509", served, checkout, env) == output("https-boto3-x509")

    # SigV4: a user of one's own, then the AWS CLI and boto3 with its keys.
    run("https-iam-user", served, checkout, env)
    created = json.loads((checkout / "certs" / "my-app-key.json").read_text())
    documented = json.loads(output("https-iam-access-key"))
    assert list(created["AccessKey"]) == list(documented["AccessKey"])
    assert created["AccessKey"]["UserName"] == "my-app"
    assert created["AccessKey"]["Status"] == "Active"
    assert run("https-aws-cli", served, checkout, env) == output("https-aws-cli")
    published = log_line(served, '"topicName":"app/hello"')
    assert str(published["principalId"]).startswith("AIDA")
    keys = my_app_keys(checkout)
    assert run("https-boto3-sigv4", served, checkout, aws_env(**keys)) == output(
        "https-boto3-sigv4"
    )
    denied = log_line(served, '"topicName":"other/topic"')
    assert denied["reason"] == "AUTHORIZATION_FAILURE"

    # Temporary credentials.
    run("https-session-token", served, checkout, env)
    session = log_line(served, '"topicName":"app/session"')
    assert (session["status"], session["principalId"]) == ("Success", published["principalId"])

    # A wrong secret: AWS IoT's 403, and the logged reason.
    wrong = subprocess.run(
        ["bash", "-c", with_ports(snippet("https-wrong-secret"), served)],
        cwd=checkout,
        env=aws_env(**keys),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert wrong.returncode != 0
    assert (
        "An error occurred (ForbiddenException) when calling the Publish operation: Forbidden"
        in wrong.stderr
    )
    record = log_line(served, "SIGV4_SIGNATURE_MISMATCH")
    record["details"] = str(record["details"]).replace(
        keys["AWS_ACCESS_KEY_ID"], EXAMPLE_ACCESS_KEY_ID
    )
    assert_like_documented(output("https-wrong-secret-log"), record)
    assert EXAMPLE_SECRET_ACCESS_KEY not in "".join(served.lines["stdout"])


# -- docs/websocket.md -----------------------------------------------------------------------------


def test_the_websocket_page(checkout: Path, served: ServeChild) -> None:
    run("https-iam-user", served, checkout, aws_env())  # the page's keys: my-app's
    env = aws_env(**my_app_keys(checkout))

    assert run("websocket-sdk", served, checkout, env) == "app/hello b'over WebSocket'\n"
    connect = log_line(served, '"eventType":"Connect"', '"clientId":"my-app-1"')
    assert connect["status"] == "Success"
    assert "WebSocket upgrade, SigV4" in str(connect["details"])

    run("websocket-sdk-mqtt5", served, checkout, env)
    assert log_line(served, '"topicName":"app/five"')["clientId"] == "my-app-5"

    assert run("websocket-paho-presigned", served, checkout, env) == output(
        "websocket-paho-presigned"
    )
    assert log_line(served, '"topicName":"app/paho"')["clientId"] == "my-app-2"

    assert run("websocket-unsigned-upgrade", served, checkout, env) == output(
        "websocket-unsigned-upgrade"
    )
    record = log_line(served, "SIGV4_MISSING_AUTHENTICATION")
    assert_like_documented(output("websocket-unsigned-upgrade-log"), record)
