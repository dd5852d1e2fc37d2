"""How this project opens its SQLite files: one helper for the registry and the two state stores.

Every database is opened the same way: the state directory created with mode 0700, autocommit
mode (``isolation_level=None``: callers issue ``BEGIN``/``COMMIT`` themselves, since Python's
implicit transactions would hold read snapshots open between calls and hide other processes'
writes), a busy timeout so the CLI and a running broker can share a file, WAL journaling with
``synchronous=NORMAL`` (durable across a process crash such as ``kill -9``; only an OS crash can
lose the last commits, https://www.sqlite.org/pragma.html#pragma_synchronous), and foreign keys
on (per connection, https://www.sqlite.org/foreignkeys.html#fk_enable).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from aws_iot_mock.certs_dir import private_directory
from aws_iot_mock.errors import BrokerError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "SqliteResource",
    "apply_migrations",
    "open_database",
    "write_transaction",
]

BUSY_TIMEOUT_MS = 10_000


def open_database(
    state_dir: Path,
    name: str,
    *,
    what: str,
    setup: Callable[[sqlite3.Connection, Path], None],
) -> sqlite3.Connection:
    """Open ``<state_dir>/<name>``, configured as above, then run ``setup`` (the schema).

    Args:
        state_dir: the state directory, mode 0700 (created so, or set so if it had another
            mode, e.g. a Docker volume's 0755): state names clients, topics and messages.
        name: the file name.
        what: what the file holds, for error messages ("the registry").
        setup: creates or migrates the schema; called with the connection and the path.

    Raises:
        BrokerError: the directory or the file cannot be created, opened or set up; the
            message names the file.
    """
    database = state_dir / name
    try:
        private_directory(state_dir)
        # Every state file is 0600, created so or reset so (an older version made them 0644).
        # os.open's mode is filtered by the umask; fchmod sets exactly 0600. SQLite gives its
        # ``-wal`` and ``-shm`` files the database file's mode.
        descriptor = os.open(database, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise BrokerError(f"{database}: cannot open {what}: {exc.strerror or exc}") from exc
    try:
        connection = sqlite3.connect(
            database,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise BrokerError(f"{database}: cannot open {what}: {exc}") from exc
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        setup(connection, database)
    except sqlite3.Error as exc:
        connection.close()
        raise BrokerError(f"{database}: cannot open {what}: {exc}") from exc
    except BaseException:
        connection.close()
        raise
    return connection


class SqliteResource:
    """One connection guarded by a lock, closable and usable as a context manager."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the connection; further calls fail. Closing twice is harmless."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@contextlib.contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the body (or the COMMIT) raises.

    IMMEDIATE takes the write lock up front, so a busy database makes BEGIN wait (busy_timeout)
    instead of failing halfway through the body.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def apply_migrations(
    connection: sqlite3.Connection, database: Path, migrations: Sequence[str], *, what: str
) -> None:
    """Apply the missing steps of ``migrations`` in one write transaction.

    Step i upgrades ``PRAGMA user_version`` i to i + 1. BEGIN IMMEDIATE takes the write lock
    before reading user_version, so two processes opening a new file at once cannot both run
    the same step. Steps contain no ';' inside literals (they are split on ';').

    Args:
        connection: the configured connection.
        database: the file's path, for error messages.
        migrations: the schema steps, append-only.
        what: what the file holds, for error messages.

    Raises:
        BrokerError: the file's schema is newer than this code knows.
    """
    latest = len(migrations)
    with write_transaction(connection):
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version > latest:
            raise BrokerError(
                f"{database}: {what} has schema version {version}, newer than this "
                f"aws-iot-mock understands ({latest}); upgrade aws-iot-mock"
            )
        for step in range(version, latest):
            # Not executescript(): it COMMITs first, which would split the transaction.
            for statement in migrations[step].split(";"):
                if statement.strip():
                    connection.execute(statement)
        if version != latest:
            connection.execute(f"PRAGMA user_version = {latest}")
