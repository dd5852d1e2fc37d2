"""A ``serve`` child process (or ``make run``) whose output a test waits on line by line.

Shared by the tests that run documented commands against a real process: stdout (the
AWSIotLogsV2 lines) and stderr (the banner) are read by threads, and a test waits for the line
it needs with a deadline instead of sleeping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import pytest

__all__ = [
    "REPO_ROOT",
    "STARTUP_TIMEOUT",
    "TIMEOUT",
    "ServeChild",
    "child_env",
    "make_run",
    "make_run_ready",
    "run_documented",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Generous: the first start creates an RSA root CA and two server certificates.
STARTUP_TIMEOUT = 60.0
# Generous bound for anything that should happen in milliseconds on loopback.
TIMEOUT = 10.0


class ServeChild:
    """``python -m aws_iot_mock <args>``: output streams are read by threads, waited on by line."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: Mapping[str, str],
        *,
        command: list[str] | None = None,
        new_session: bool = False,
        stdout: int | None = None,
    ) -> None:
        """Start ``python -m aws_iot_mock ARGS``, or ``command + ARGS`` when given.

        With ``new_session`` the child leads its own process group (``os.killpg`` it as Ctrl-C
        signals a terminal's foreground group). With ``stdout`` (a file descriptor, e.g. a pipe
        the test reads as it likes), the child's stdout goes there and is not read here.
        """
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, "-m", "aws_iot_mock"]), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            text=True,
            start_new_session=new_session,
        )
        self._group = new_session
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._ended: set[str] = set()
        self._changed = threading.Condition()
        assert self.proc.stderr is not None
        streams = [("stderr", self.proc.stderr)]
        if self.proc.stdout is not None:
            streams.insert(0, ("stdout", self.proc.stdout))
        else:
            self._ended.add("stdout")
        self._threads = [
            threading.Thread(target=self._drain, args=(name, stream), daemon=True)
            for name, stream in streams
        ]
        for thread in self._threads:
            thread.start()

    def _drain(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines[name].append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended.add(name)
            self._changed.notify_all()

    def wait_line(self, name: str, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first line of ``name`` (stdout or stderr) matching ``predicate``, with a deadline."""

        def found() -> str | None:
            return next((line for line in self.lines[name] if predicate(line)), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or name in self._ended, timeout)
            line = found()
        if line is None:
            pytest.fail(f"no matching {name} line (exit {self.proc.poll()}): {self.lines!r}")
        return line

    def banner(self, label: str) -> str:
        """The value of a ``label:`` line of the startup banner (stderr)."""
        line = self.wait_line("stderr", lambda text: text.startswith(f"{label}:"), STARTUP_TIMEOUT)
        return line.removeprefix(f"{label}:").strip()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(TIMEOUT) == -signal.SIGKILL

    def close(self) -> None:
        """Kill the child (its whole process group with ``new_session``) and reap it."""
        if self._group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        elif self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for thread in self._threads:
            thread.join()
        self.proc.__exit__(None, None, None)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Import this checkout's package even if the venv's install points elsewhere.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_documented(command: str, port: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command.replace("-p 8883", f"-p {port}"),
        shell=True,
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def make_run(cwd: Path, children: list[ServeChild]) -> ServeChild:
    """What ``make run ARGS="--port 0"`` runs, in ``cwd``."""
    config = REPO_ROOT / "config" / "default.yaml"
    child = ServeChild(
        [
            "serve",
            "--config",
            str(config),
            "--demo-device",
            "--port",
            "0",
            "--https-port",
            "0",
            "--alpn-port",
            "0",
            "--api-port",
            "0",
        ],
        cwd,
        child_env(),
    )
    children.append(child)
    return child


def make_run_ready(cwd: Path, children: list[ServeChild]) -> ServeChild:
    """``make run`` from a checkout in a fresh ``cwd``, ready; skips without the console script.

    The repository's venv is linked in as ``cwd/.venv`` (documented commands call
    ``.venv/bin/aws-iot-mock``); ``certs/`` and ``.state/`` are created in ``cwd``.
    """
    venv = Path(sys.prefix)
    if not (venv / "bin" / "aws-iot-mock").exists():
        pytest.skip("the aws-iot-mock console script is not installed in this environment")
    (cwd / ".venv").symlink_to(venv)
    child = make_run(cwd, children)
    child.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    return child
