"""The Jobs store: ``<state_dir>/jobs.sqlite3`` keeps every committed change, even on kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aws_iot_mock.aws.jobs import control, device
from aws_iot_mock.aws.jobs.model import Changes, JobsBehaviour, JobsState
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.state.jobs import DATABASE_NAME, SCHEMA_MIGRATIONS, JobStore

T0 = 1_700_000_000.0
ARN = "arn:aws:iot:us-east-1:123456789012:"
BEHAVIOUR = JobsBehaviour()


def _commit(store: JobStore, state: JobsState, changes: Changes) -> None:
    store.apply(changes)
    state.apply(changes)


def _snapshot(state: JobsState) -> tuple[object, ...]:
    return (
        tuple(state.jobs()),
        tuple(e for job in state.jobs() for e in state.executions_of_job(job.job_id)),
    )


def test_round_trip_of_every_field(tmp_path: Path) -> None:
    state = JobsState()
    with JobStore.open(tmp_path) as store:
        _, outcome = control.create_job(
            state,
            {
                "jobId": "j",
                "targets": [f"{ARN}thing/a", f"{ARN}thing/b"],
                "document": '{"op":"x"}',
                "description": "first",
                "timeoutConfig": {"inProgressTimeoutInMinutes": 5},
                "jobExecutionsRetryConfig": {
                    "criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]
                },
            },
            region="us-east-1",
            account_id="123456789012",
            group_members=lambda arn: None,
            now=T0,
            behaviour=BEHAVIOUR,
        )
        _commit(store, state, outcome.changes)
        update = device.handle_mqtt_request(
            state,
            "$aws/things/a/jobs/j/update",
            b'{"status":"IN_PROGRESS","statusDetails":{"s":"1"},"stepTimeoutInMinutes":2}',
            now=T0 + 1,
            behaviour=BEHAVIOUR,
        )
        _commit(store, state, update.changes)
        _, cancel = control.cancel_job(state, "j", reason_code="R", now=T0 + 2, behaviour=BEHAVIOUR)
        _commit(store, state, cancel.changes)
    with JobStore.open(tmp_path) as store:
        loaded = store.load()
    assert _snapshot(loaded) == _snapshot(state)
    execution = loaded.latest_execution("a", "j")
    assert execution is not None and execution.step_timeout_at == T0 + 1 + 120
    assert loaded.allocate_sequences(1) == state.allocate_sequences(1)


def test_deleting_a_job_deletes_its_executions_and_upserts_keep_them(tmp_path: Path) -> None:
    state = JobsState()
    with JobStore.open(tmp_path) as store:
        for job_id in ("keep", "drop"):
            _, outcome = control.create_job(
                state,
                {"jobId": job_id, "targets": [f"{ARN}thing/t"], "document": "{}"},
                region="us-east-1",
                account_id="123456789012",
                group_members=lambda arn: None,
                now=T0,
                behaviour=BEHAVIOUR,
            )
            _commit(store, state, outcome.changes)
        # Upserting a job (cancel) must not cascade-delete its executions.
        _commit(
            store, state, control.cancel_job(state, "keep", now=T0, behaviour=BEHAVIOUR)[1].changes
        )
        _commit(
            store,
            state,
            control.delete_job(state, "drop", force=True, now=T0, behaviour=BEHAVIOUR).changes,
        )
        loaded = store.load()
    assert [job.job_id for job in loaded.jobs()] == ["keep"]
    assert [e.job_id for e in loaded.executions_of_thing("t")] == ["keep"]
    assert _snapshot(loaded) == _snapshot(state)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    JobStore.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        connection.execute(f"PRAGMA user_version = {len(SCHEMA_MIGRATIONS) + 1}")
    with pytest.raises(BrokerError, match="newer than this aws-iot-mock understands"):
        JobStore.open(tmp_path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_an_answered_change_survives_kill_9(tmp_path: Path) -> None:
    # The child commits, says so (as the shell would answer the device), then waits to be
    # killed; whatever it said was answered must be on disk.
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from aws_iot_mock.aws.jobs import control
        from aws_iot_mock.aws.jobs.model import JobsBehaviour, JobsState
        from aws_iot_mock.state.jobs import JobStore
        store = JobStore.open(Path({str(tmp_path)!r}))
        state = JobsState()
        for n in range(3):
            _, outcome = control.create_job(
                state, {{"jobId": f"j{{n}}", "targets": ["{ARN}thing/t"], "document": "{{}}"}},
                region="us-east-1", account_id="123456789012", group_members=lambda a: None,
                now={T0} + n, behaviour=JobsBehaviour())
            store.apply(outcome.changes)
            state.apply(outcome.changes)
            print(f"answered j{{n}}", flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    ) as child:
        assert child.stdout is not None
        answered = [child.stdout.readline().split()[1] for _ in range(3)]
        child.send_signal(signal.SIGKILL)
        child.wait()
    with JobStore.open(tmp_path) as store:
        loaded = store.load()
    assert [job.job_id for job in loaded.jobs()] == answered
    assert json.loads(loaded.jobs()[0].document) == {}
