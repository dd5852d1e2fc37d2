"""The Makefile's promises to a newcomer: `make run` installs only what running needs, prints its
progress on stderr, and its stdout carries nothing but log lines (`make run | jq .` works).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_snippets import snippet
from tests.serve_child import STARTUP_TIMEOUT, TIMEOUT, ServeChild, child_env

REPO_ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = REPO_ROOT / "Makefile"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def dry_run(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` would run with a venv that does not exist yet."""
    completed = subprocess.run(
        ["make", "-n", "-f", str(MAKEFILE), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    return completed.stdout.splitlines()


def pip_installs(commands: list[str]) -> list[str]:
    return [line for line in commands if "pip install" in line and "--upgrade pip" not in line]


def test_the_readme_names_the_two_commands() -> None:
    commands = [line.split("#")[0].strip() for line in snippet("readme-two-commands").splitlines()]
    assert commands == ["make run", "make test"]  # run by the tests below and by CI


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    (install,) = pip_installs(dry_run("run", tmp_path / "venv"))
    assert install.endswith(f"-e '{REPO_ROOT}/' >&2"), install
    assert "[dev]" not in install


def test_make_test_installs_the_dev_tools(tmp_path: Path) -> None:
    (install,) = pip_installs(dry_run("test", tmp_path / "venv"))
    assert f"-e '{REPO_ROOT}/[dev]'" in install


def test_make_run_says_what_it_does_on_first_run_on_stderr(tmp_path: Path) -> None:
    commands = dry_run("run", tmp_path / "venv")
    progress = [line for line in commands if line.startswith("echo ")]
    assert progress and all(line.endswith(">&2") for line in progress), progress


def shell_env() -> dict[str, str]:
    """The environment of a user at a shell prompt: not inside another make.

    ``make test`` runs this suite, so MAKELEVEL and MAKEFLAGS are set here; a make started with
    them prints "Entering directory" on stdout, which a user's ``make run | jq .`` never sees.
    """
    env = child_env()
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


@pytest.mark.skipif(
    not (Path(sys.prefix) / ".installed-run").exists(),
    reason="the running interpreter's venv was not set up by make (no .installed-run stamp)",
)
def test_make_run_stdout_is_only_log_lines(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    args = f"--port 0 --https-port 0 --alpn-port 0 --ready-file {ready}"
    serve = ServeChild(
        [],
        tmp_path,
        shell_env(),
        command=["make", "-f", str(MAKEFILE), "run", f"VENV={sys.prefix}", f"ARGS={args}"],
        new_session=True,
    )
    try:
        serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
        port = json.loads(ready.read_text(encoding="utf-8"))["ports"]["mqtt"]
        # Something to log: a client that is not TLS at all.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\n\r\n")
            plain.recv(1024)
        serve.wait_line("stdout", lambda line: "HANDSHAKE_FAILED" in line, TIMEOUT)
        os.killpg(os.getpgid(serve.proc.pid), signal.SIGINT)
        serve.proc.wait(TIMEOUT)  # make itself dies of the SIGINT, as at a terminal
    finally:
        serve.close()  # joins the pipe readers: the broker, too, has exited
    assert not [line for line in serve.lines["stderr"] if "Traceback" in line]
    assert serve.lines["stdout"], "no log line reached stdout"
    for line in serve.lines["stdout"]:
        json.loads(line)  # what `jq .` needs: every stdout line is one JSON document


def test_the_development_commands(tmp_path: Path) -> None:
    documented = snippet("development-commands")
    targets = [line.split()[1] for line in documented.splitlines()]
    assert targets == ["lint", "test", "certs"]
    assert any("ruff check" in line for line in dry_run("lint", tmp_path / "venv"))
    assert any("pytest -n auto" in line for line in dry_run("test", tmp_path / "venv"))


@pytest.mark.skipif(
    not (Path(sys.prefix) / ".installed-run").exists(),
    reason="the running interpreter's venv was not set up by make (no .installed-run stamp)",
)
def test_make_certs_creates_the_ca_and_the_demo_device(tmp_path: Path) -> None:
    completed = subprocess.run(
        ["make", "-s", "-f", str(MAKEFILE), "certs", f"VENV={sys.prefix}"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "certs" / "root-ca.pem").exists()
    assert (tmp_path / "certs" / "demo-device" / "demo-device.cert.pem").exists()
