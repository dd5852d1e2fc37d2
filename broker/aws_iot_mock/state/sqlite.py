"""How this project opens its SQLite files: one helper for the registry and the two state stores.

Every database is opened the same way: the state directory created with mode 0700, autocommit
mode (``isolation_level=None``: callers issue ``BEGIN``/``COMMIT`` themselves, since Python's
implicit transactions would hold read snapshots open between calls and hide other processes'
writes), a busy timeout so the CLI and a running broker can share a file, WAL journaling with
``synchronous=NORMAL`` (durable across a process crash such as ``kill -9``; only an OS crash can
lose the last commits, https://www.sqlite.org/pragma.html#pragma_synchronous), and foreign keys
on (per connection, https://www.sqlite.org/foreignkeys.html#fk_enable).

A running broker must not stall its clients on another process's lock: its stores call
``SqliteResource.bound_waits`` after opening, which shortens the busy timeout to
``RUNTIME_BUSY_TIMEOUT_MS`` and, once a write found the database locked, fails the next writes at
once for ``BUSY_RETRY_AFTER`` seconds instead of waiting again. Their methods raise
``StorageError`` (busy, full, failed) rather than ``sqlite3`` errors (``storage_error``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from aws_iot_mock.certs_dir import private_directory
from aws_iot_mock.errors import BrokerError, StorageError, StorageFault

__all__ = [
    "BUSY_RETRY_AFTER",
    "BUSY_TIMEOUT_MS",
    "RUNTIME_BUSY_TIMEOUT_MS",
    "SqliteResource",
    "apply_migrations",
    "open_database",
    "storage_error",
    "write_transaction",
]

# How long opening a file (and the CLI, a one-shot process) waits for another process's lock.
BUSY_TIMEOUT_MS = 10_000
# How long a running broker's write waits for it: the event loop is blocked meanwhile, so this
# is the longest stall one locked write can cause the other clients.
RUNTIME_BUSY_TIMEOUT_MS = 100
# After a write found the database locked, writes fail at once for this long (one wait of
# RUNTIME_BUSY_TIMEOUT_MS per period at most, however many clients are publishing).
BUSY_RETRY_AFTER = 1.0

# SQLite's primary result codes (https://www.sqlite.org/rescode.html); extended codes carry the
# primary one in their low byte.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_FULL = 13


def storage_error(exc: sqlite3.Error, what: str) -> StorageError:
    """Classify a ``sqlite3`` error as busy (locked), full (disk full) or failed (the rest).

    Args:
        exc: the error.
        what: the file, for the message.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) and code >= 0 else None
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        fault = StorageFault.BUSY
    elif primary == _SQLITE_FULL:
        fault = StorageFault.FULL
    else:
        fault = StorageFault.FAILED
    return StorageError(fault, what, str(exc) or type(exc).__name__)


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
        self._retry_after = 0.0
        self._busy_until = 0.0
        self._what = _file_name(connection)

    def bound_waits(
        self,
        busy_timeout_ms: int = RUNTIME_BUSY_TIMEOUT_MS,
        retry_after: float = BUSY_RETRY_AFTER,
    ) -> Self:
        """Wait at most ``busy_timeout_ms`` for another process's lock; then fail fast a while.

        For a server whose event loop must not stall (see the module docstring). After a write
        failed as busy, writes raise ``StorageError`` (busy) at once for ``retry_after`` s.

        Returns:
            This store.
        """
        with self._lock:
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._retry_after = retry_after
        return self

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, for a write; ``sqlite3`` errors become ``StorageError``.

        Raises:
            StorageError: the write failed (and was rolled back), or the database was found
                locked less than ``retry_after`` seconds ago (nothing was tried).
        """
        if self._retry_after and time.monotonic() < self._busy_until:
            raise StorageError(
                StorageFault.BUSY,
                self._what,
                "database is locked (by another process, moments ago; not retried yet)",
            )
        with self._lock:
            try:
                yield self._connection
            except sqlite3.Error as exc:
                error = storage_error(exc, self._what)
                if error.fault is StorageFault.BUSY:
                    self._busy_until = time.monotonic() + self._retry_after
                raise error from exc

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, for a read (WAL: never blocked by a writer)."""
        with self._lock:
            try:
                yield self._connection
            except sqlite3.Error as exc:
                raise storage_error(exc, self._what) from exc

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


def _file_name(connection: sqlite3.Connection) -> str:
    """The main database file's name ("broker.sqlite3"), for messages."""
    for _seq, name, path in connection.execute("PRAGMA database_list"):
        if name == "main" and path:
            return os.path.basename(str(path))
    return "the database"


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
