"""Fleet provisioning on disk: ``<state_dir>/provisioning.sqlite3`` (mode 0600).

Holds the provisioning templates with their versions (CreateProvisioningTemplate and the other
template verbs, read by RegisterThing on every request, so a template changed by the CLI in
another process applies to the next device) and the key that signs certificate ownership tokens
(``aws_iot_mock.aws.provisioning.device.issue_ownership_token``). The key is a secret: the file is
created 0600 in the 0700 state directory, and the key is never logged.

Template verbs read and write in one ``BEGIN IMMEDIATE`` transaction (`ProvisioningStore.writing`),
so two processes changing the same template never lose each other's version.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from aws_iot_mock.aws.provisioning.templates import ProvisioningTemplate, TemplateVersion
from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = ["DATABASE_NAME", "SCHEMA_MIGRATIONS", "ProvisioningStore", "TemplateWriter"]

DATABASE_NAME: Final = "provisioning.sqlite3"

# Step i upgrades user_version i to i + 1 (``state.sqlite.apply_migrations``). Append only.
SCHEMA_MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 -> 1: templates, their versions, and the ownership-token key.
    """
    CREATE TABLE provisioning_templates (
        template_name         TEXT PRIMARY KEY NOT NULL,
        template_arn          TEXT NOT NULL,
        provisioning_role_arn TEXT NOT NULL,
        enabled               INTEGER NOT NULL,
        template_type         TEXT NOT NULL,
        default_version_id    INTEGER NOT NULL,
        created_at            REAL NOT NULL,
        last_modified_at      REAL NOT NULL,
        description           TEXT,
        pre_provisioning_hook TEXT,            -- JSON object, or NULL
        tags                  TEXT NOT NULL    -- JSON array of {Key, Value}
    ) WITHOUT ROWID;
    CREATE TABLE provisioning_template_versions (
        template_name TEXT NOT NULL
            REFERENCES provisioning_templates (template_name) ON DELETE CASCADE,
        version_id    INTEGER NOT NULL,
        template_body TEXT NOT NULL,
        created_at    REAL NOT NULL,
        PRIMARY KEY (template_name, version_id)
    ) WITHOUT ROWID;
    CREATE TABLE secrets (
        name  TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    """,
)
_TEMPLATE_COLUMNS: Final = (
    "template_name, template_arn, provisioning_role_arn, enabled, template_type, "
    "default_version_id, created_at, last_modified_at, description, pre_provisioning_hook, tags"
)
_TOKEN_KEY: Final = "ownership-token-key"


class TemplateWriter:
    """The templates inside one write transaction: read them, then put or delete."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.templates = _load(connection, None)

    def put(self, template: ProvisioningTemplate) -> None:
        """Insert or replace ``template`` and all its versions."""
        connection = self._connection
        connection.execute(
            f"INSERT INTO provisioning_templates ({_TEMPLATE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (template_name) DO UPDATE SET "
            "template_arn = excluded.template_arn, "
            "provisioning_role_arn = excluded.provisioning_role_arn, "
            "enabled = excluded.enabled, template_type = excluded.template_type, "
            "default_version_id = excluded.default_version_id, "
            "last_modified_at = excluded.last_modified_at, description = excluded.description, "
            "pre_provisioning_hook = excluded.pre_provisioning_hook, tags = excluded.tags",
            _template_row(template),
        )
        connection.execute(
            "DELETE FROM provisioning_template_versions WHERE template_name = ?",
            (template.template_name,),
        )
        connection.executemany(
            "INSERT INTO provisioning_template_versions "
            "(template_name, version_id, template_body, created_at) VALUES (?, ?, ?, ?)",
            [
                (template.template_name, v.version_id, v.template_body, v.created_at)
                for v in template.versions
            ],
        )
        self.templates[template.template_name] = template

    def delete(self, template_name: str) -> None:
        """Delete a template and its versions."""
        self._connection.execute(
            "DELETE FROM provisioning_templates WHERE template_name = ?", (template_name,)
        )
        self.templates.pop(template_name, None)


class ProvisioningStore(SqliteResource):
    """Provisioning templates and the ownership-token key. Thread-safe; one connection."""

    @classmethod
    def open(cls, state_dir: Path) -> ProvisioningStore:
        """Open (creating 0600, or migrating) ``<state_dir>/provisioning.sqlite3``.

        Raises:
            BrokerError: the file cannot be opened, or was written by a newer version.
            OSError: the directory cannot be created.
        """

        def setup(connection: sqlite3.Connection, database: Path) -> None:
            apply_migrations(connection, database, SCHEMA_MIGRATIONS, what="the provisioning store")

        return cls(
            open_database(state_dir, DATABASE_NAME, what="the provisioning store", setup=setup)
        )

    def templates(self) -> dict[str, ProvisioningTemplate]:
        """Every template, by name."""
        with self._lock:
            return _load(self._connection, None)

    def template(self, template_name: str) -> ProvisioningTemplate | None:
        """One template, or None."""
        with self._lock:
            return _load(self._connection, template_name).get(template_name)

    @contextlib.contextmanager
    def writing(self) -> Iterator[TemplateWriter]:
        """Read-modify-write the templates in one transaction, committed when the block ends."""
        with self._lock, write_transaction(self._connection) as connection:
            yield TemplateWriter(connection)

    def token_key(self) -> bytes:
        """The 32-byte key of the ownership tokens, created on first use."""
        with self._lock:
            row = self._connection.execute(
                "SELECT value FROM secrets WHERE name = ?", (_TOKEN_KEY,)
            ).fetchone()
            if row is not None:
                return bytes(row[0])
            with write_transaction(self._connection) as connection:
                # INSERT OR IGNORE: another process may have created it meanwhile.
                connection.execute(
                    "INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)",
                    (_TOKEN_KEY, secrets.token_bytes(32)),
                )
            row = self._connection.execute(
                "SELECT value FROM secrets WHERE name = ?", (_TOKEN_KEY,)
            ).fetchone()
        return bytes(row[0])


def _load(connection: sqlite3.Connection, only: str | None) -> dict[str, ProvisioningTemplate]:
    where, args = ("WHERE template_name = ?", (only,)) if only is not None else ("", ())
    rows = connection.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM provisioning_templates {where}", args
    ).fetchall()
    versions: dict[str, list[TemplateVersion]] = {}
    for name, version_id, body, created_at in connection.execute(
        "SELECT template_name, version_id, template_body, created_at "
        f"FROM provisioning_template_versions {where} ORDER BY template_name, version_id",
        args,
    ):
        versions.setdefault(name, []).append(TemplateVersion(version_id, body, created_at))
    return {row[0]: _template(row, versions.get(row[0], [])) for row in rows}


def _template_row(template: ProvisioningTemplate) -> tuple[Any, ...]:
    hook = template.pre_provisioning_hook
    return (
        template.template_name,
        template.template_arn,
        template.provisioning_role_arn,
        int(template.enabled),
        template.template_type,
        template.default_version_id,
        template.created_at,
        template.last_modified_at,
        template.description,
        None if hook is None else json.dumps(dict(hook)),
        json.dumps([dict(tag) for tag in template.tags]),
    )


def _template(row: Sequence[Any], versions: list[TemplateVersion]) -> ProvisioningTemplate:
    return ProvisioningTemplate(
        template_name=row[0],
        template_arn=row[1],
        provisioning_role_arn=row[2],
        enabled=bool(row[3]),
        template_type=row[4],
        versions=tuple(versions),
        default_version_id=row[5],
        created_at=row[6],
        last_modified_at=row[7],
        description=row[8],
        pre_provisioning_hook=None if row[9] is None else json.loads(row[9]),
        tags=tuple(json.loads(row[10])),
    )
