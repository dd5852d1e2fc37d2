"""One broker per state directory: an OS file lock held for the life of the broker.

Two brokers on one state directory would each keep their own view of sessions, retained messages
and shadows in memory and overwrite the other's rows (an outside test saw a session ended by one
make every QoS 1 publish on the other fail). ``Broker.start`` takes this lock first; a second
broker on the same directory refuses to start with one line naming the directory and the pid
that holds it. The kernel drops an ``flock`` when its process exits, ``kill -9`` included, so a
crashed broker never leaves a stale lock behind. CLI verbs do not take it: they work beside a
running broker through SQLite's own locking.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from aws_iot_mock.certs_dir import private_directory
from aws_iot_mock.errors import BrokerError

__all__ = ["LOCK_FILE_NAME", "StateDirectoryInUseError", "StateDirectoryLock"]

LOCK_FILE_NAME = "broker.lock"


class StateDirectoryInUseError(BrokerError):
    """Another broker serves this state directory; the message names it and its pid."""


class StateDirectoryLock:
    """An exclusive lock on a state directory, held until ``release``."""

    def __init__(self, descriptor: int, path: Path) -> None:
        self._descriptor: int | None = descriptor
        self.path = path

    @classmethod
    def acquire(cls, state_dir: Path) -> StateDirectoryLock:
        """Take the lock of ``state_dir`` (created 0700 if missing) without waiting.

        Raises:
            StateDirectoryInUseError: another process holds it.
            OSError: the lock file cannot be created.
        """
        private_directory(state_dir)
        path = state_dir / LOCK_FILE_NAME
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(descriptor)
            raise StateDirectoryInUseError(
                f"state directory {state_dir} is in use by another aws-iot-mock broker "
                f"(pid {holder}); stop it, or give this one its own --state-dir"
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        # The holder's pid, for the next one's message; the lock itself is the flock.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        return cls(descriptor, path)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._descriptor is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._descriptor, 0)
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None
