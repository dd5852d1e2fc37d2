"""Exceptions raised for bad input and bad configuration.

Refusals of devices are *values* (see ``aws_iot_mock.logs.cloudwatch.Reason``), never exceptions;
exceptions are for a caller's mistakes. Only ``aws_iot_mock.cli`` turns them into exit codes.
``StorageError`` is the exception to that rule: the machine's fault (a locked database, a full
disk), which the device core turns into a refusal with its own reason.
"""

import enum


class BrokerError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(BrokerError):
    """The configuration file or a command-line override is invalid.

    The message always names the offending key and the file it came from.
    """


class CertificateError(BrokerError):
    """A certificate, key or CSR is malformed, or a certificate operation is not allowed."""


class ResourceNotFoundError(BrokerError):
    """A registry lookup named something that does not exist (AWS's ResourceNotFoundException)."""


class ListenerBindError(BrokerError):
    """A listener could not bind; the message names the door, the address, why and the fix."""


class StorageFault(enum.Enum):
    """What went wrong with a state file (sessions, retained messages, shadows)."""

    # Another process holds the database's write lock (a backup, the sqlite3 shell).
    BUSY = "busy"
    # The file system is full (or the database reached its size limit).
    FULL = "full"
    # Any other I/O or database error (read-only file system, I/O error, corruption).
    FAILED = "failed"


class StorageError(BrokerError):
    """A state file could not be read or written; nothing of the operation was kept.

    Raised by the broker's stores instead of ``sqlite3`` errors so that the device core (which
    knows nothing of SQLite) can refuse what it cannot keep and log why.

    Attributes:
        fault: busy, full or failed.
        what: the file, for the log record ("broker.sqlite3").
        cause: the database's own message ("database is locked").
    """

    def __init__(self, fault: StorageFault, what: str, cause: str) -> None:
        super().__init__(f"{what}: {cause}")
        self.fault = fault
        self.what = what
        self.cause = cause
