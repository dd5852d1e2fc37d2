"""Topic rules on disk: ``<state_dir>/rules.sqlite3``, shared by the CLI and a running broker.

Each rule is stored as its ``TopicRulePayload`` (the JSON the control plane received, with
``ruleDisabled`` kept up to date by EnableTopicRule / DisableTopicRule), its creation time and
its tags. Every changing write bumps a generation counter in the same transaction, so a running
broker polls ``generation()`` (one row) once a second and reloads the rules when it moved, as it
does for the registry; a change made by the CLI in another process takes effect within a second.

The file is created 0600 in a 0700 directory: rules carry action endpoints and, in HTTP headers,
possibly secrets.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = ["DATABASE_NAME", "StoredTopicRule", "TopicRuleStore"]

DATABASE_NAME = "rules.sqlite3"

_MIGRATIONS = (
    """
    CREATE TABLE topic_rules (
        rule_name TEXT PRIMARY KEY,
        payload TEXT NOT NULL,          -- the TopicRulePayload, JSON
        created_at REAL NOT NULL,       -- epoch seconds
        tags TEXT NOT NULL              -- JSON list of {"Key", "Value"}
    );
    CREATE TABLE rules_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO rules_generation (id, generation) VALUES (1, 0)
    """,
)

_BUMP = "UPDATE rules_generation SET generation = generation + 1 WHERE id = 1"


@dataclass(frozen=True, slots=True)
class StoredTopicRule:
    """One stored rule.

    Attributes:
        rule_name: the rule's name.
        payload: its ``TopicRulePayload`` (``sql``, ``actions``, ``ruleDisabled``, ...).
        created_at: when CreateTopicRule stored it (UTC).
        tags: ``[{"Key": ..., "Value": ...}]`` from CreateTopicRule's ``tags``.
    """

    rule_name: str
    payload: Mapping[str, Any]
    created_at: datetime
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def disabled(self) -> bool:
        """The payload's ``ruleDisabled`` (absent means enabled)."""
        return bool(self.payload.get("ruleDisabled", False))


class TopicRuleStore(SqliteResource):
    """Topic rules in one SQLite file. Thread-safe; one connection."""

    @classmethod
    def open(cls, state_dir: Path) -> TopicRuleStore:
        """Open (creating if needed, mode 0600) ``<state_dir>/rules.sqlite3``.

        Raises:
            BrokerError: the file cannot be opened or has a newer schema.
        """

        def setup(connection: sqlite3.Connection, database: Path) -> None:
            apply_migrations(connection, database, _MIGRATIONS, what="the topic rule store")

        return cls(
            open_database(state_dir, DATABASE_NAME, what="the topic rule store", setup=setup)
        )

    def generation(self) -> int:
        """A counter every changing write bumps (cheap: one row), also for other processes."""
        with self._lock:
            (generation,) = self._connection.execute(
                "SELECT generation FROM rules_generation WHERE id = 1"
            ).fetchone()
        return int(generation)

    def create(self, rule: StoredTopicRule) -> bool:
        """Store a new rule; False (nothing written) when one with that name exists."""
        with self._lock, write_transaction(self._connection) as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO topic_rules (rule_name, payload, created_at, tags) "
                "VALUES (?, ?, ?, ?)",
                (
                    rule.rule_name,
                    json.dumps(rule.payload, separators=(",", ":")),
                    rule.created_at.timestamp(),
                    json.dumps([{"Key": k, "Value": v} for k, v in rule.tags]),
                ),
            )
            if cursor.rowcount == 0:
                return False
            connection.execute(_BUMP)
        return True

    def get(self, rule_name: str) -> StoredTopicRule | None:
        """The rule, or None."""
        with self._lock:
            row = self._connection.execute(
                "SELECT rule_name, payload, created_at, tags FROM topic_rules WHERE rule_name = ?",
                (rule_name,),
            ).fetchone()
        return None if row is None else _decode(row)

    def all(self) -> list[StoredTopicRule]:
        """Every rule, by name."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT rule_name, payload, created_at, tags FROM topic_rules ORDER BY rule_name"
            ).fetchall()
        return [_decode(row) for row in rows]

    def replace_payload(self, rule_name: str, payload: Mapping[str, Any]) -> bool:
        """Replace a rule's payload (its creation time and tags stay); False when absent."""
        with self._lock, write_transaction(self._connection) as connection:
            cursor = connection.execute(
                "UPDATE topic_rules SET payload = ? WHERE rule_name = ?",
                (json.dumps(payload, separators=(",", ":")), rule_name),
            )
            if cursor.rowcount == 0:
                return False
            connection.execute(_BUMP)
        return True

    def delete(self, rule_name: str) -> bool:
        """Delete a rule; False when absent."""
        with self._lock, write_transaction(self._connection) as connection:
            cursor = connection.execute("DELETE FROM topic_rules WHERE rule_name = ?", (rule_name,))
            if cursor.rowcount == 0:
                return False
            connection.execute(_BUMP)
        return True


def _decode(row: tuple[str, str, float, str]) -> StoredTopicRule:
    name, payload, created_at, tags = row
    return StoredTopicRule(
        rule_name=name,
        payload=json.loads(payload),
        created_at=datetime.fromtimestamp(created_at, UTC),
        tags=tuple((item["Key"], item["Value"]) for item in json.loads(tags)),
    )
