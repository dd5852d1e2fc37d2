"""One broker per state directory (issue 11 item 3), and private state and key modes (item 6)."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import resource
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aws_iot_mock.certs_dir import private_directory
from aws_iot_mock.cli import EXIT_CONFIG
from aws_iot_mock.doors.listeners import AcceptFailureLog
from aws_iot_mock.state.instance_lock import (
    LOCK_FILE_NAME,
    StateDirectoryInUseError,
    StateDirectoryLock,
)
from aws_iot_mock.state.sessions import SqliteSessionStore
from tests.conftest import make_config, started_broker
from tests.serve_child import STARTUP_TIMEOUT, TIMEOUT, ServeChild, child_env, make_run

FREE_PORTS = ("--port", "0", "--https-port", "0", "--alpn-port", "0", "--api-port", "0")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_second_lock_on_one_state_directory_is_refused_naming_it_and_the_holder(
    tmp_path: Path,
) -> None:
    first = StateDirectoryLock.acquire(tmp_path / "state")
    with pytest.raises(StateDirectoryInUseError) as info:
        StateDirectoryLock.acquire(tmp_path / "state")
    message = str(info.value)
    assert str(tmp_path / "state") in message
    assert f"pid {os.getpid()}" in message
    assert "--state-dir" in message
    first.release()
    # The twin: once released, the directory is free.
    StateDirectoryLock.acquire(tmp_path / "state").release()


def test_another_state_directory_is_not_locked(tmp_path: Path) -> None:
    first = StateDirectoryLock.acquire(tmp_path / "a")
    StateDirectoryLock.acquire(tmp_path / "b").release()
    first.release()


def test_the_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path;"
            "from aws_iot_mock.state.instance_lock import StateDirectoryLock;"
            f"StateDirectoryLock.acquire(Path({str(state)!r})); print('held', flush=True);"
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StateDirectoryInUseError, match=f"pid {holder.pid}"):
            StateDirectoryLock.acquire(state)
        holder.kill()  # SIGKILL: no cleanup ran, the kernel dropped the flock
        holder.wait(TIMEOUT)
        StateDirectoryLock.acquire(state).release()
    finally:
        holder.kill()
        holder.communicate(timeout=TIMEOUT)  # reaps it and closes its pipes


def test_a_second_serve_on_the_same_state_directory_stops_with_one_line(
    tmp_path: Path, children: list[ServeChild]
) -> None:
    first = make_run(tmp_path, children)
    first.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    second = subprocess.run(
        [sys.executable, "-m", "aws_iot_mock", "serve", *FREE_PORTS],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert second.returncode == EXIT_CONFIG
    errors = second.stderr.strip().splitlines()
    assert len(errors) == 1, second.stderr
    assert "is in use by another aws-iot-mock broker" in errors[0]
    assert f"pid {first.proc.pid}" in errors[0]
    assert ".state" in errors[0]
    assert "Traceback" not in second.stderr
    # The twin: another state directory in the same place serves beside the first.
    other = ServeChild(
        ["serve", "--state-dir", str(tmp_path / "other-state"), *FREE_PORTS],
        tmp_path,
        child_env(),
    )
    children.append(other)
    other.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)


def test_state_files_are_0600_in_a_0700_directory_even_if_it_was_0755(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as a Docker volume or an older version left it
    store = SqliteSessionStore.open(state)
    store.close()
    assert mode(state) == 0o700
    files = [path for path in state.iterdir() if path.is_file()]
    assert files
    for path in files:
        assert mode(path) == 0o600, path


def test_an_old_0644_state_file_is_made_0600(tmp_path: Path) -> None:
    state = tmp_path / "state"
    SqliteSessionStore.open(state).close()
    database = next(path for path in state.iterdir() if path.suffix == ".sqlite3")
    database.chmod(0o644)
    SqliteSessionStore.open(state).close()
    assert mode(database) == 0o600


def test_private_directory_tightens_and_creates(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o777)
    existing.chmod(0o777)
    private_directory(existing)
    private_directory(tmp_path / "new" / "nested")
    assert mode(existing) == 0o700
    assert mode(tmp_path / "new" / "nested") == 0o700


def test_the_demo_device_directory_and_key_are_private(
    tmp_path: Path, children: list[ServeChild]
) -> None:
    make_run(tmp_path, children).wait_line(
        "stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT
    )
    demo = tmp_path / "certs" / "demo-device"
    assert mode(tmp_path / "certs") == 0o700
    assert mode(demo) == 0o700
    keys = list(demo.glob("*private*"))
    assert keys
    for key in keys:
        assert mode(key) == 0o600
    assert mode(tmp_path / ".state") == 0o700
    assert mode(tmp_path / ".state" / LOCK_FILE_NAME) == 0o600


def test_running_out_of_file_descriptors_is_logged_and_the_broker_recovers(
    tmp_path: Path, children: list[ServeChild]
) -> None:
    # prlimit fixes soft and hard limits, so serve cannot raise them: 200 descriptors in all.
    serve = ServeChild(
        ["serve", "--demo-device", *FREE_PORTS, "--ready-file", str(tmp_path / "ready.json")],
        tmp_path,
        child_env(),
        command=["prlimit", "--nofile=200:200", sys.executable, "-m", "aws_iot_mock"],
    )
    children.append(serve)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    port = json.loads((tmp_path / "ready.json").read_text(encoding="utf-8"))["ports"]["mqtt"]
    held = []
    try:
        for _ in range(260):  # more than it can accept; the kernel queues the rest
            held.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        line = serve.wait_line("stdout", lambda text: "TOO_MANY_OPEN_FILES" in text, TIMEOUT)
    finally:
        for sock in held:
            sock.close()
    record = json.loads(line)
    assert record["eventType"] == "Connect"
    assert record["status"] == "Failure"
    assert "ulimit -n" in record["details"]
    # The twin: with descriptors free again, the demo device connects.
    health = subprocess.run(
        [sys.executable, "-m", "aws_iot_mock", "healthcheck", "--device", "--port", str(port)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert health.returncode == 0, health.stderr
    assert not [text for text in serve.lines["stderr"] if "Traceback" in text]


def test_accept_failure_log_reports_once_a_second_and_passes_the_rest_on() -> None:
    records: list[dict[str, object]] = []
    clock = [100.0]
    log = AcceptFailureLog(
        records.append, lambda details: {"details": details}, lambda: clock[0], reserve=16
    )
    passed_on: list[dict[str, object]] = []
    loop = asyncio.new_event_loop()
    try:
        loop.set_exception_handler(lambda _loop, context: passed_on.append(context))
        log.install(loop)
        emfile = {"message": "socket.accept() out of system resource"}
        log(loop, {**emfile, "exception": OSError(errno.EMFILE, "Too many open files")})
        log(loop, {**emfile, "exception": OSError(errno.EMFILE, "Too many open files")})
        assert [record["details"] for record in records] == [
            "accept() failed: Too many open files; raise the open files limit (ulimit -n)"
        ]
        clock[0] += 1.0
        log.note_descriptor(resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1)
        assert len(records) == 2
        assert "new connections are being refused" in str(records[1]["details"])
        # The twins: a descriptor far from the limit and any other exception are not ours.
        clock[0] += 1.0
        log.note_descriptor(5)
        other = {"message": "boom", "exception": ValueError("x")}
        log(loop, other)
        assert len(records) == 2
        assert passed_on == [other]
        log.uninstall()
        assert loop.get_exception_handler() is not log
    finally:
        loop.close()


async def test_every_state_file_of_a_running_broker_is_private_and_stop_frees_the_lock(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path)
    config.state_dir.mkdir(mode=0o755)
    config.state_dir.chmod(0o755)  # as a Docker volume leaves /data/state
    old_umask = os.umask(0o022)
    try:
        async with started_broker(config):
            assert mode(config.state_dir) == 0o700
            files = sorted(path for path in config.state_dir.iterdir() if path.is_file())
            names = {path.name for path in files}
            assert {
                LOCK_FILE_NAME,
                "broker.sqlite3",
                "registry.sqlite3",
                "shadows.sqlite3",
            } <= names
            assert any(name.endswith("-wal") for name in names)  # SQLite's own files too
            assert {path.name: mode(path) for path in files} == dict.fromkeys(names, 0o600)
            with pytest.raises(StateDirectoryInUseError):
                StateDirectoryLock.acquire(config.state_dir)
        # The twin: a stopped broker leaves the directory free.
        StateDirectoryLock.acquire(config.state_dir).release()
    finally:
        os.umask(old_umask)


def test_serve_raises_the_soft_open_files_limit_to_the_hard_one(
    tmp_path: Path, children: list[ServeChild]
) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = min(256, hard)
    serve = ServeChild(
        ["serve", *FREE_PORTS],
        tmp_path,
        child_env(),
        command=["prlimit", f"--nofile={soft}:{hard}", sys.executable, "-m", "aws_iot_mock"],
    )
    children.append(serve)
    serve.wait_line("stderr", lambda line: line.startswith("ready"), STARTUP_TIMEOUT)
    limits = Path(f"/proc/{serve.proc.pid}/limits").read_text(encoding="ascii").splitlines()
    (line,) = [text for text in limits if text.startswith("Max open files")]
    assert line.split()[3:5] == [str(hard), str(hard)]
