"""docs/jobs.md and docs/fleet-provisioning.md, run as pasted against ``make run``.

``make run`` (what ``tests.serve_child.make_run`` starts) serves in a fresh directory with the
repository's venv linked in as ``.venv``; only the ports differ from the pages' (the test's are
picked by the OS and replaced in the snippets). Each page's Python blocks are written to the
file their first line names and run with this interpreter; the shell blocks run with bash.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs_snippets import output, snippet
from tests.serve_child import ServeChild, child_env, make_run_ready

TIMEOUT = 60.0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """``make run`` in a fresh directory: the demo device, every door on a free port."""
    children: list[ServeChild] = []
    try:
        child = make_run_ready(tmp_path, children)
        ports = {door: int(child.banner(door).split()[0]) for door in ("mqtt", "https", "api")}
        yield tmp_path, ports
    finally:
        for child in children:
            child.close()


def with_ports(text: str, ports: dict[str, int]) -> str:
    return (
        text.replace("localhost:9443", f"localhost:{ports['api']}")
        .replace("localhost:8443", f"localhost:{ports['https']}")
        .replace("port=8883", f"port={ports['mqtt']}")
    )


def write_script(directory: Path, name: str, ports: dict[str, int]) -> str:
    """Write a Python snippet to the file its first line names; return that name."""
    block = snippet(name)
    file_name = block.splitlines()[0].removeprefix("# ")
    (directory / file_name).write_text(with_ports(block, ports), encoding="utf-8")
    return file_name


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_jobs_worked_example_runs_as_pasted(served: tuple[Path, dict[str, int]]) -> None:
    directory, ports = served
    assert snippet("jobs-make-run") == "make run\n"  # what make_run() starts
    assert snippet("jobs-install").split()[:2] == ["pip", "install"]
    device_script = write_script(directory, "jobs-device", ports)
    assert snippet("jobs-run-device") == f"python {device_script}\n"

    # Terminal 2: the device, subscribed once it says so.
    device = subprocess.Popen(
        [sys.executable, device_script],
        cwd=directory,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert device.stdout is not None
        assert device.stdout.readline() == "waiting for a job\n"
        # Terminal 3: the CLI creates the job; the running broker notifies the device.
        created = run(["bash", "-e", "-c", snippet("jobs-create")], directory)
        assert created.returncode == 0, created.stderr
        assert created.stdout == output("jobs-create")
        rest, errors = device.communicate(timeout=TIMEOUT)
    finally:
        if device.poll() is None:
            device.kill()
            device.communicate()
    assert device.returncode == 0, errors
    assert "waiting for a job\n" + rest == output("jobs-device")

    result = run([sys.executable, write_script(directory, "jobs-boto3", ports)], directory)
    assert result.returncode == 0, result.stderr
    assert result.stdout == output("jobs-boto3")

    https = run([sys.executable, write_script(directory, "jobs-https", ports)], directory)
    assert https.returncode == 0, https.stderr
    assert https.stdout == output("jobs-https")


def test_the_fleet_provisioning_worked_example_runs_as_pasted(
    served: tuple[Path, dict[str, int]],
) -> None:
    directory, ports = served
    assert snippet("fleet-make-run") == "make run\n"  # what make_run() starts
    assert snippet("fleet-install").split()[:2] == ["pip", "install"]
    setup = run([sys.executable, write_script(directory, "fleet-setup", ports)], directory)
    assert setup.returncode == 0, setup.stderr
    assert setup.stdout == output("fleet-setup")
    claim_key = directory / "certs" / "claim" / "claim.private.key"
    assert claim_key.stat().st_mode & 0o777 == 0o600

    device = run([sys.executable, write_script(directory, "fleet-device", ports)], directory)
    assert device.returncode == 0, device.stderr
    assert device.stdout == output("fleet-device")
    assert (directory / "certs" / "sensor-0042" / "private.pem.key").stat().st_mode & 0o777 == 0o600

    templates = run(["bash", "-e", "-c", snippet("fleet-cli")], directory)
    assert templates.returncode == 0, templates.stderr
    # create-provisioning-template prints its answer, then list-provisioning-templates its own.
    created, listing = templates.stdout.split('}\n{\n    "templates"')
    assert json.loads(created + "}")["templateName"] == "sensor-fleet-v2"
    listed = json.loads('{"templates"' + listing)["templates"]
    assert [(t["templateName"], t["enabled"]) for t in listed] == [
        ("sensor-fleet", True),
        ("sensor-fleet-v2", False),
    ]
