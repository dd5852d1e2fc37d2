"""AWS IoT Jobs on disk: ``<state_dir>/jobs.sqlite3``.

The pure Jobs operations (``aws_iot_mock.aws.jobs``) return ``Changes``; the shell calls
`JobStore.apply` with them *before* it answers the request (the MQTT ``/accepted`` reply, the HTTP
response) or publishes a notification, then applies them to its in-memory ``JobsState``. Each
``apply`` is one transaction, committed when it returns; the database runs in WAL mode with
``synchronous=NORMAL``, under which a commit survives the death of the process (``kill -9``)
(https://www.sqlite.org/pragma.html#pragma_synchronous). So nothing that was answered is lost.

`JobStore.load` rebuilds the ``JobsState`` at start-up. The file is separate from the registry and
the broker state so that job traffic never waits for their write locks. It also holds the CLI's
mailbox (``aws_iot_mock.state.mailbox``): while a broker runs, the CLI's job verbs run in it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from aws_iot_mock.aws.jobs.model import (
    Changes,
    ExecutionStatus,
    Job,
    JobExecution,
    JobsState,
    JobStatus,
    TargetSelection,
)
from aws_iot_mock.state.mailbox import MAILBOX_SCHEMA, OperationMailbox
from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = ["DATABASE_NAME", "SCHEMA_MIGRATIONS", "JobStore"]

DATABASE_NAME: Final = "jobs.sqlite3"

# Step i upgrades user_version i to i + 1 (``state.sqlite.apply_migrations``). Append only.
#
# Executions reference their job with ON DELETE CASCADE, so deleting a job deletes its
# executions in the same statement; job rows are therefore upserted, never INSERT OR REPLACEd
# (REPLACE deletes the old row first, and the cascade would take the executions with it).
SCHEMA_MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 -> 1: jobs and job executions.
    """
    CREATE TABLE jobs (
        job_id                      TEXT PRIMARY KEY NOT NULL,
        job_arn                     TEXT NOT NULL,
        document                    TEXT NOT NULL,
        targets                     TEXT NOT NULL,   -- JSON array of ARNs
        target_selection            TEXT NOT NULL,
        status                      TEXT NOT NULL,
        created_at                  REAL NOT NULL,
        last_updated_at             REAL NOT NULL,
        completed_at                REAL,
        description                 TEXT,
        in_progress_timeout_minutes INTEGER,
        force_canceled              INTEGER,
        reason_code                 TEXT,
        comment                     TEXT,
        stored_config               TEXT NOT NULL    -- JSON object
    ) WITHOUT ROWID;
    CREATE TABLE job_executions (
        thing_name             TEXT NOT NULL,
        job_id                 TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
        execution_number       INTEGER NOT NULL,
        status                 TEXT NOT NULL,
        queued_at              REAL NOT NULL,
        last_updated_at        REAL NOT NULL,
        version_number         INTEGER NOT NULL,
        sequence               INTEGER NOT NULL,
        started_at             REAL,
        status_details         TEXT NOT NULL,   -- JSON object
        force_canceled         INTEGER NOT NULL,
        step_timeout_at        REAL,
        in_progress_timeout_at REAL,
        PRIMARY KEY (thing_name, job_id, execution_number)
    ) WITHOUT ROWID;
    CREATE INDEX job_executions_by_job ON job_executions (job_id);
    """,
    # 1 -> 2: the CLI's mailbox (``state.mailbox``): CreateJob and the other verbs run inside a
    # running broker, which notifies the devices.
    MAILBOX_SCHEMA,
)

_JOB_COLUMNS: Final = (
    "job_id",
    "job_arn",
    "document",
    "targets",
    "target_selection",
    "status",
    "created_at",
    "last_updated_at",
    "completed_at",
    "description",
    "in_progress_timeout_minutes",
    "force_canceled",
    "reason_code",
    "comment",
    "stored_config",
)
_EXECUTION_COLUMNS: Final = (
    "thing_name",
    "job_id",
    "execution_number",
    "status",
    "queued_at",
    "last_updated_at",
    "version_number",
    "sequence",
    "started_at",
    "status_details",
    "force_canceled",
    "step_timeout_at",
    "in_progress_timeout_at",
)


def _upsert(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


_UPSERT_JOB: Final = _upsert("jobs", _JOB_COLUMNS, ("job_id",))
_UPSERT_EXECUTION: Final = _upsert(
    "job_executions", _EXECUTION_COLUMNS, ("thing_name", "job_id", "execution_number")
)


class JobStore(SqliteResource, OperationMailbox):
    """Jobs, job executions and the CLI mailbox in one SQLite file. Thread-safe; one connection."""

    @classmethod
    def open(cls, state_dir: Path) -> JobStore:
        """Open (creating or migrating if needed) ``<state_dir>/jobs.sqlite3``.

        Raises:
            BrokerError: the file cannot be opened, or was written by a newer version.
            OSError: the directory cannot be created.
        """

        def setup(connection: sqlite3.Connection, database: Path) -> None:
            apply_migrations(connection, database, SCHEMA_MIGRATIONS, what="the jobs store")

        return cls(open_database(state_dir, DATABASE_NAME, what="the jobs store", setup=setup))

    def load(self) -> JobsState:
        """Every stored job and execution, as a new ``JobsState``."""
        with self._lock:
            jobs = self._connection.execute(
                f"SELECT {', '.join(_JOB_COLUMNS)} FROM jobs"
            ).fetchall()
            executions = self._connection.execute(
                f"SELECT {', '.join(_EXECUTION_COLUMNS)} FROM job_executions"
            ).fetchall()
        return JobsState(map(_job, jobs), map(_execution, executions))

    def apply(self, changes: Changes) -> None:
        """Store ``changes`` in one transaction, committed when this returns.

        Deletions first (a deleted job takes its executions), then job upserts, then execution
        upserts, as ``JobsState.apply`` does.
        """
        if not changes:
            return
        with self._lock, write_transaction(self._connection) as connection:
            connection.executemany(
                "DELETE FROM jobs WHERE job_id = ?", [(job_id,) for job_id in changes.deleted_jobs]
            )
            connection.executemany(
                "DELETE FROM job_executions "
                "WHERE thing_name = ? AND job_id = ? AND execution_number = ?",
                changes.deleted_executions,
            )
            connection.executemany(_UPSERT_JOB, [_job_row(job) for job in changes.jobs])
            connection.executemany(
                _UPSERT_EXECUTION, [_execution_row(e) for e in changes.executions]
            )


def _job_row(job: Job) -> tuple[Any, ...]:
    return (
        job.job_id,
        job.job_arn,
        job.document,
        json.dumps(list(job.targets)),
        job.target_selection.value,
        job.status.value,
        job.created_at,
        job.last_updated_at,
        job.completed_at,
        job.description,
        job.in_progress_timeout_minutes,
        None if job.force_canceled is None else int(job.force_canceled),
        job.reason_code,
        job.comment,
        json.dumps(dict(job.stored_config)),
    )


def _job(row: Sequence[Any]) -> Job:
    return Job(
        job_id=row[0],
        job_arn=row[1],
        document=row[2],
        targets=tuple(json.loads(row[3])),
        target_selection=TargetSelection(row[4]),
        status=JobStatus(row[5]),
        created_at=row[6],
        last_updated_at=row[7],
        completed_at=row[8],
        description=row[9],
        in_progress_timeout_minutes=row[10],
        force_canceled=None if row[11] is None else bool(row[11]),
        reason_code=row[12],
        comment=row[13],
        stored_config=json.loads(row[14]),
    )


def _execution_row(execution: JobExecution) -> tuple[Any, ...]:
    return (
        execution.thing_name,
        execution.job_id,
        execution.execution_number,
        execution.status.value,
        execution.queued_at,
        execution.last_updated_at,
        execution.version_number,
        execution.sequence,
        execution.started_at,
        json.dumps(dict(execution.status_details)),
        int(execution.force_canceled),
        execution.step_timeout_at,
        execution.in_progress_timeout_at,
    )


def _execution(row: Sequence[Any]) -> JobExecution:
    return JobExecution(
        thing_name=row[0],
        job_id=row[1],
        execution_number=row[2],
        status=ExecutionStatus(row[3]),
        queued_at=row[4],
        last_updated_at=row[5],
        version_number=row[6],
        sequence=row[7],
        started_at=row[8],
        status_details=json.loads(row[9]),
        force_canceled=bool(row[10]),
        step_timeout_at=row[11],
        in_progress_timeout_at=row[12],
    )
