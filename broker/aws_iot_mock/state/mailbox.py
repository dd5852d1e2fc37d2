"""A CLI-to-broker mailbox of API operations in a store's SQLite file.

Some control-plane operations must run inside the broker while it serves: CreateJob has to notify
the connected devices (``$aws/things/<thing>/jobs/notify``), and only one process may change the
jobs state while devices update it. The CLI is another process, so it posts
``(operation, request)`` to a mailbox table in the store's file; a running broker takes pending
requests on a short timer, runs them through its control plane exactly as an API call
(`answer_requests` with ``IotControlPlane.call``), and writes the response (or the error) back,
which the CLI reads and then deletes. When no broker takes the request within ``CLAIM_TIMEOUT``
the CLI withdraws it and runs the operation itself on the store (nobody is connected to notify
then).

``MAILBOX_SCHEMA`` is the table; a store that includes it mixes in `OperationMailbox`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.errors import BrokerError

__all__ = [
    "ANSWER_TIMEOUT",
    "CLAIM_TIMEOUT",
    "MAILBOX_SCHEMA",
    "MailboxRequest",
    "OperationMailbox",
    "answer_requests",
    "call_through_broker",
]

MAILBOX_SCHEMA: Final = """
CREATE TABLE cli_requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    operation  TEXT NOT NULL,     -- botocore operation name, e.g. CreateJob
    request    TEXT NOT NULL,     -- JSON of the input members
    created_at REAL NOT NULL,
    taken_at   REAL,              -- set by the broker that took it
    response   TEXT               -- JSON {"output": {...}} or {"error": {code, message, status}}
);
"""
# The broker polls every fifth of a second; a request nobody claimed within a second means no
# broker runs on this state directory.
CLAIM_TIMEOUT: Final = 1.0
ANSWER_TIMEOUT: Final = 10.0
_POLL: Final = 0.05
# A taken request older than this has no CLI waiting for it any more (it waits ANSWER_TIMEOUT).
_STALE_AFTER: Final = 6 * ANSWER_TIMEOUT


@dataclass(frozen=True, slots=True)
class MailboxRequest:
    """A request the CLI posted.

    Attributes:
        request_id: its row.
        operation: the operation name.
        request: the input members.
    """

    request_id: int
    operation: str
    request: dict[str, Any]


class OperationMailbox:
    """The ``cli_requests`` table of a store (mixed into a ``SqliteResource``)."""

    _connection: sqlite3.Connection
    _lock: threading.Lock

    def post_request(self, operation: str, request: Mapping[str, Any]) -> int:
        """Post an operation for a running broker; returns its id."""
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO cli_requests (operation, request, created_at) VALUES (?, ?, ?)",
                (operation, json.dumps(dict(request)), time.time()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def take_requests(self) -> list[MailboxRequest]:
        """Claim every pending request (a running broker calls this on a short timer)."""
        with self._lock:
            connection = self._connection
            # Almost always nothing to take: look before taking the write lock.
            if (
                connection.execute(
                    "SELECT 1 FROM cli_requests WHERE taken_at IS NULL LIMIT 1"
                ).fetchone()
                is None
            ):
                return []
            connection.execute("BEGIN IMMEDIATE")
            try:
                rows = connection.execute(
                    "SELECT id, operation, request FROM cli_requests WHERE taken_at IS NULL "
                    "ORDER BY id"
                ).fetchall()
                now = time.time()
                connection.execute(
                    "UPDATE cli_requests SET taken_at = ? WHERE taken_at IS NULL", (now,)
                )
                # Answers no CLI came back for (it was killed): the table stays bounded.
                connection.execute(
                    "DELETE FROM cli_requests WHERE taken_at < ?", (now - _STALE_AFTER,)
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return [MailboxRequest(row[0], row[1], json.loads(row[2])) for row in rows]

    def answer_request(
        self, request_id: int, output: Mapping[str, Any] | None, error: AwsApiError | None
    ) -> None:
        """Record the outcome of a request: its output, or the error it raised."""
        if error is not None:
            document: dict[str, Any] = {
                "error": {"code": error.code, "message": error.message, "status": error.status}
            }
        else:
            document = {"output": dict(output or {})}
        with self._lock:
            self._connection.execute(
                "UPDATE cli_requests SET response = ? WHERE id = ?",
                (json.dumps(document), request_id),
            )

    def request_status(self, request_id: int) -> tuple[bool, dict[str, Any] | None]:
        """(taken by a broker?, the response document once answered)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT taken_at, response FROM cli_requests WHERE id = ?", (request_id,)
            ).fetchone()
        if row is None:
            return False, None
        return row[0] is not None, (json.loads(row[1]) if row[1] is not None else None)

    def withdraw_request(self, request_id: int) -> bool:
        """Delete a request; False if a broker had taken it and it is not answered yet."""
        with self._lock:
            cursor = self._connection.execute(
                "DELETE FROM cli_requests WHERE id = ? AND (taken_at IS NULL OR response IS NOT "
                "NULL)",
                (request_id,),
            )
        return cursor.rowcount == 1


def call_through_broker(
    mailbox: OperationMailbox,
    operation: str,
    request: Mapping[str, Any],
    run_locally: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``operation`` in the broker serving this state directory, or here if none does.

    Args:
        mailbox: the store's mailbox.
        operation: the operation name.
        request: its input members.
        run_locally: runs the operation on the store in this process (no broker).

    Returns:
        The output members.

    Raises:
        AwsApiError: the operation's error (from the broker or from ``run_locally``).
        BrokerError: a broker took the request and did not answer in time.
    """
    request_id = mailbox.post_request(operation, request)
    deadline = time.monotonic() + CLAIM_TIMEOUT
    taken = False
    while time.monotonic() < deadline:
        taken, answer = mailbox.request_status(request_id)
        if answer is not None or taken:
            break
        time.sleep(_POLL)  # polling another process's writes to a shared SQLite file
    if not taken:
        if mailbox.withdraw_request(request_id):
            return run_locally()
        taken = True  # a broker took it between the last look and the withdrawal
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        _taken, answer = mailbox.request_status(request_id)
        if answer is not None:
            mailbox.withdraw_request(request_id)
            if "error" in answer:
                error = answer["error"]
                raise AwsApiError(error["code"], error["message"], status=error["status"])
            output: dict[str, Any] = answer["output"]
            return output
        time.sleep(_POLL)
    raise BrokerError(f"the running broker did not answer {operation} within {ANSWER_TIMEOUT} s")


def answer_requests(
    mailbox: OperationMailbox, call: Callable[[str, Mapping[str, Any]], dict[str, Any]]
) -> None:
    """Run every pending request with ``call`` and record its output or error (the broker side).

    Args:
        mailbox: the store's mailbox.
        call: the service layer, ``IotControlPlane.call`` in the broker.
    """
    for posted in mailbox.take_requests():
        try:
            output = call(posted.operation, posted.request)
        except AwsApiError as error:
            mailbox.answer_request(posted.request_id, None, error)
        else:
            mailbox.answer_request(posted.request_id, output, None)
