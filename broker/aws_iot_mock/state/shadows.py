"""Device Shadows on disk, and the mailbox through which the CLI reaches a running broker.

Shadows live in ``<state_dir>/shadows.sqlite3`` (WAL, ``synchronous=NORMAL``: a committed write
survives ``kill -9``). The broker writes a shadow before it publishes ``/accepted``, so an
accepted update is never lost.

``aws iot-data update-thing-shadow`` must publish the same MQTT messages as an update sent over
MQTT, but the CLI is another process. It therefore posts its request to the ``shadow_requests``
table; a running broker takes pending requests once per tick, handles them exactly like MQTT
requests, and writes the response topic and payload back, which the CLI reads. With no broker
running, the CLI handles the request itself (no MQTT messages then: nobody is connected).

The broker's side (``get``, ``put``, ``list_named_shadows``, ``take_requests``,
``answer_request``) raises ``aws_iot_mock.errors.StorageError`` when the file is locked by
another process, the disk is full or the file cannot be written; the broker bounds its waits
(``SqliteResource.bound_waits``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from aws_iot_mock.aws.shadow import ShadowState
from aws_iot_mock.state.sqlite import SqliteResource, open_database

__all__ = ["DATABASE_NAME", "ShadowRequest", "ShadowStore"]

DATABASE_NAME = "shadows.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadows (
    thing_name TEXT NOT NULL,
    shadow_name TEXT NOT NULL,          -- '' for the classic shadow
    document TEXT NOT NULL,             -- JSON of the ShadowState fields
    deleted_at REAL,                    -- set while the shadow is a tombstone
    PRIMARY KEY (thing_name, shadow_name)
);
CREATE TABLE IF NOT EXISTS shadow_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    operation TEXT NOT NULL,            -- get | update | delete
    thing_name TEXT NOT NULL,
    shadow_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    taken_at REAL,
    response_topic TEXT,                -- e.g. $aws/things/t/shadow/update/accepted
    response_payload BLOB
);
"""


@dataclass(frozen=True, slots=True)
class ShadowRequest:
    """A request posted by the CLI for the running broker."""

    request_id: int
    operation: str
    thing_name: str
    shadow_name: str | None
    payload: bytes


class ShadowStore(SqliteResource):
    """Shadows and the CLI mailbox in one SQLite file. Thread-safe; one connection."""

    @classmethod
    def open(cls, state_dir: Path) -> ShadowStore:
        """Open (creating if needed) ``<state_dir>/shadows.sqlite3``.

        Raises:
            BrokerError: the file cannot be opened.
        """

        def setup(connection: sqlite3.Connection, _database: Path) -> None:
            connection.executescript(_SCHEMA)

        return cls(open_database(state_dir, DATABASE_NAME, what="the shadow store", setup=setup))

    # -- shadows ---------------------------------------------------------------------------

    def get(self, thing_name: str, shadow_name: str | None) -> ShadowState | None:
        """The stored shadow, tombstones included (they keep the version for 48 h)."""
        with self._reading() as connection:
            row = connection.execute(
                "SELECT document FROM shadows WHERE thing_name = ? AND shadow_name = ?",
                (thing_name, shadow_name or ""),
            ).fetchone()
        return None if row is None else _decode(row[0])

    def put(self, state: ShadowState) -> None:
        """Insert or replace a shadow (committed when this returns)."""
        with self._writing() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO shadows (thing_name, shadow_name, document, deleted_at) "
                "VALUES (?, ?, ?, ?)",
                (state.thing_name, state.shadow_name or "", _encode(state), state.deleted_at),
            )

    def list_named_shadows(self, thing_name: str) -> list[str]:
        """Names of the thing's named shadows that exist (not deleted), sorted."""
        with self._reading() as connection:
            rows = connection.execute(
                "SELECT shadow_name FROM shadows WHERE thing_name = ? AND shadow_name != '' "
                "AND deleted_at IS NULL ORDER BY shadow_name",
                (thing_name,),
            ).fetchall()
        return [row[0] for row in rows]

    # -- the CLI mailbox -------------------------------------------------------------------

    def post_request(
        self, operation: str, thing_name: str, shadow_name: str | None, payload: bytes
    ) -> int:
        """Post a request for a running broker; returns its id."""
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO shadow_requests (operation, thing_name, shadow_name, payload, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                (operation, thing_name, shadow_name or "", payload, time.time()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def take_requests(self) -> list[ShadowRequest]:
        """Claim every pending request (the broker calls this once per tick)."""
        now = time.time()
        with self._writing() as connection:
            # A read first: this runs five times a second, almost always with nothing to take,
            # and should not take the write lock for that.
            pending = connection.execute(
                "SELECT 1 FROM shadow_requests WHERE taken_at IS NULL LIMIT 1"
            ).fetchone()
            if pending is None:
                return []
            connection.execute("BEGIN IMMEDIATE")
            try:
                rows = connection.execute(
                    "SELECT id, operation, thing_name, shadow_name, payload FROM shadow_requests "
                    "WHERE taken_at IS NULL ORDER BY id"
                ).fetchall()
                connection.execute(
                    "UPDATE shadow_requests SET taken_at = ? WHERE taken_at IS NULL", (now,)
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return [ShadowRequest(r[0], r[1], r[2], r[3] or None, bytes(r[4])) for r in rows]

    def answer_request(self, request_id: int, topic: str, payload: bytes) -> None:
        """Record the response the broker published for a CLI request."""
        with self._writing() as connection:
            connection.execute(
                "UPDATE shadow_requests SET response_topic = ?, response_payload = ? WHERE id = ?",
                (topic, payload, request_id),
            )

    def request_status(self, request_id: int) -> tuple[bool, tuple[str, bytes] | None]:
        """(taken by a broker?, (response topic, payload) once answered)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT taken_at, response_topic, response_payload FROM shadow_requests "
                "WHERE id = ?",
                (request_id,),
            ).fetchone()
        if row is None:
            return False, None
        answer = (row[1], bytes(row[2])) if row[1] is not None else None
        return row[0] is not None, answer

    def withdraw_request(self, request_id: int) -> bool:
        """Withdraw a request no broker took; False if a broker took it meanwhile."""
        with self._lock:
            cursor = self._connection.execute(
                "DELETE FROM shadow_requests WHERE id = ? AND taken_at IS NULL", (request_id,)
            )
        return cursor.rowcount == 1


def _encode(state: ShadowState) -> str:
    return json.dumps(
        {
            "desired": state.desired,
            "reported": state.reported,
            "metadata_desired": state.metadata_desired,
            "metadata_reported": state.metadata_reported,
            "version": state.version,
            "deleted_at": state.deleted_at,
            "thing_name": state.thing_name,
            "shadow_name": state.shadow_name,
        },
        separators=(",", ":"),
    )


def _decode(text: str) -> ShadowState:
    data = json.loads(text)
    return ShadowState(
        thing_name=data["thing_name"],
        shadow_name=data["shadow_name"],
        desired=data["desired"],
        reported=data["reported"],
        metadata_desired=data["metadata_desired"],
        metadata_reported=data["metadata_reported"],
        version=data["version"],
        deleted_at=data["deleted_at"],
    )
