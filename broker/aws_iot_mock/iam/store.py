r"""The local IAM: users, access keys, inline user policies and session credentials in SQLite.

Everything lives in ``<state_dir>/iam.sqlite3``, separate from ``registry.sqlite3`` (IAM is
another AWS service with its own quotas and errors), created with mode 0600 because it holds
secret access keys: SigV4 verification needs each secret in the clear (it is the HMAC key).
Session tokens are stored only as their SHA-256. Nothing here logs.

What AWS does, and this store does too (IAM API Reference,
https://docs.aws.amazon.com/IAM/latest/APIReference/ pages ``API_CreateUser``,
``API_CreateAccessKey``, ``API_PutUserPolicy``, ``API_DeleteUser``; STS ``API_GetSessionToken``;
"IAM and AWS STS quotas", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):

* User names are 1-64 characters of ``[\w+=,.@-]`` and unique case-insensitively ("names are
  not distinguished by case"); policy names are 1-128 of the same characters.
* At most two access keys per user (``LimitExceeded``: "Cannot exceed quota for
  AccessKeysPerUser: 2"). New keys are ``Active``.
* Inline user policies: their aggregate size, white space excluded, is at most 2,048 characters.
* A user with access keys or policies cannot be deleted (``DeleteConflict``).
* GetSessionToken: 900-129,600 seconds, default 43,200 (12 hours); it cannot be called with
  session credentials. Session credentials are the user's: they carry the user's identity and
  are evaluated against the user's policies.

Policy documents are validated with this project's policy evaluator
(``aws_iot_mock.authz.iot_policy_evaluation``), which accepts the IAM grammar AWS IoT policies
share, minus condition operators it cannot evaluate (``NumericEquals``, ``IpAddress``, date
operators...). A document using those is refused here as ``MalformedPolicyDocument``, where IAM
would accept it: refusing beats silently mis-evaluating it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from aws_iot_mock.auth.credentials import IamIdentity, SigningCredential
from aws_iot_mock.authz.iot_policy_evaluation import PolicyError, parse_policy_document
from aws_iot_mock.iam.errors import (
    EntityAlreadyExistsError,
    IamAccessDeniedError,
    IamDeleteConflictError,
    IamLimitExceededError,
    IamValidationError,
    MalformedPolicyDocumentError,
    NoSuchEntityError,
)
from aws_iot_mock.state.sqlite import (
    SqliteResource,
    apply_migrations,
    open_database,
    write_transaction,
)

__all__ = [
    "ACCESS_KEYS_PER_USER",
    "ACTIVE",
    "DATABASE_NAME",
    "INACTIVE",
    "SESSION_DURATION_DEFAULT",
    "SESSION_DURATION_MAX",
    "SESSION_DURATION_MIN",
    "USER_POLICY_MAX_CHARS",
    "AccessKeyRecord",
    "IamStore",
    "SessionCredentials",
    "UserRecord",
]

DATABASE_NAME: Final = "iam.sqlite3"
ACCESS_KEYS_PER_USER: Final = 2
USER_POLICY_MAX_CHARS: Final = 2048
SESSION_DURATION_MIN: Final = 900
SESSION_DURATION_MAX: Final = 129_600
SESSION_DURATION_DEFAULT: Final = 43_200
# Live session credentials kept per user; beyond this the oldest are dropped (AWS has no such
# limit, but nothing here may grow without bound). Expired ones are dropped on every issue.
_SESSIONS_PER_USER: Final = 1000

_NAME_CHARS: Final = re.compile(r"[\w+=,.@-]+", re.ASCII)
_PATH: Final = re.compile(r"/|/[\x21-\x7e]+/")
_PATH_MAX: Final = 512
# Access key and unique IDs: a four-letter prefix and upper-case base-32 characters, the form of
# AWS's identifiers ("Unique identifiers" in IAM identifiers,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

ACTIVE: Final = "Active"
INACTIVE: Final = "Inactive"

SCHEMA_MIGRATIONS: Final[tuple[str, ...]] = (
    # 0 -> 1. Times are integer epoch seconds (AWS's IAM timestamps have second precision).
    # access_keys and user_policies have no ON DELETE CASCADE: DeleteUser must refuse a user
    # that still has them. Session credentials go with their user.
    """
    CREATE TABLE users (
        user_name  TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
        user_id    TEXT NOT NULL UNIQUE,
        path       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE access_keys (
        access_key_id     TEXT PRIMARY KEY NOT NULL,
        user_name         TEXT NOT NULL REFERENCES users (user_name),
        secret_access_key TEXT NOT NULL,
        status            TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
        created_at        INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX access_keys_by_user ON access_keys (user_name);
    CREATE TABLE user_policies (
        user_name   TEXT NOT NULL REFERENCES users (user_name),
        policy_name TEXT NOT NULL COLLATE NOCASE,
        document    TEXT NOT NULL,
        PRIMARY KEY (user_name, policy_name)
    ) WITHOUT ROWID;
    CREATE TABLE session_credentials (
        access_key_id        TEXT PRIMARY KEY NOT NULL,
        user_name            TEXT NOT NULL REFERENCES users (user_name) ON DELETE CASCADE,
        secret_access_key    TEXT NOT NULL,
        session_token_sha256 TEXT NOT NULL,
        created_at           INTEGER NOT NULL,
        expires_at           INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX session_credentials_by_user ON session_credentials (user_name, created_at);
    CREATE INDEX session_credentials_by_expiry ON session_credentials (expires_at);
    CREATE TABLE iam_generation (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        generation INTEGER NOT NULL
    );
    INSERT INTO iam_generation (id, generation) VALUES (1, 0)
    """,
)


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An IAM user.

    Attributes:
        identity: account, name, ``AIDA...`` ID and ARN.
        path: the user's path, ``/`` by default.
        created: when the user was created (UTC).
    """

    identity: IamIdentity
    path: str
    created: datetime


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    """A long-term access key. ``repr`` never shows the secret.

    Attributes:
        user_name: the owner.
        access_key_id: ``AKIA`` + 16 characters.
        secret_access_key: 40 characters.
        status: ``Active`` or ``Inactive``.
        created: when it was created (UTC).
    """

    user_name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    status: str
    created: datetime


@dataclass(frozen=True, slots=True)
class SessionCredentials:
    """Temporary credentials from GetSessionToken. ``repr`` shows only the key ID.

    Attributes:
        user_name: the user they act as.
        access_key_id: ``ASIA`` + 16 characters.
        secret_access_key: 40 characters.
        session_token: the token; only its SHA-256 is stored, so it is returned once.
        expiration: when they stop working (UTC).
    """

    user_name: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _random_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _session_token() -> str:
    # Real tokens are long base64 strings with '+', '/' and '='; so are these, which keeps
    # clients' URL encoding of the token honest.
    return base64.b64encode(secrets.token_bytes(240)).decode("ascii")


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return int(moment.timestamp())


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _validation(value: str, member: str, constraint: str) -> IamValidationError:
    return IamValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _check_name(value: str, member: str, max_length: int) -> None:
    if not value:
        raise _validation(value, member, "Member must have length greater than or equal to 1")
    if len(value) > max_length:
        raise _validation(
            value[:256], member, f"Member must have length less than or equal to {max_length}"
        )
    if not _NAME_CHARS.fullmatch(value):
        raise _validation(
            value, member, r"Member must satisfy regular expression pattern: [\w+=,.@-]+"
        )


def _non_space(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


class IamStore(SqliteResource):
    """Users, access keys, inline policies and session credentials of one account.

    Thread-safe (one connection behind a lock). Every method is one transaction. ``now``
    arguments are timezone-aware and default to the system clock.

    Args:
        connection: from ``open``.
        account_id: the 12-digit account ID for ARNs and identities.
    """

    def __init__(self, connection: sqlite3.Connection, *, account_id: str) -> None:
        super().__init__(connection)
        self._account_id = account_id

    @classmethod
    def open(cls, state_dir: Path, *, account_id: str) -> IamStore:
        """Open (creating if needed) ``<state_dir>/iam.sqlite3`` (mode 0600) and migrate it.

        Raises:
            BrokerError: the file cannot be opened, or was written by a newer version.
            OSError: the directory or file cannot be created.
        """
        connection = open_database(
            state_dir,
            DATABASE_NAME,
            what="the IAM store",
            setup=lambda connection, database: apply_migrations(
                connection, database, SCHEMA_MIGRATIONS, what="the IAM store"
            ),
        )
        return cls(connection, account_id=account_id)

    @property
    def account_id(self) -> str:
        """The account every user belongs to."""
        return self._account_id

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; bumps the generation if any row changed."""
        with self._lock, write_transaction(self._connection) as connection:
            before = connection.total_changes
            yield connection
            if connection.total_changes != before:
                connection.execute("UPDATE iam_generation SET generation = generation + 1")

    def _read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            rows: list[sqlite3.Row] = self._connection.execute(sql, parameters).fetchall()
        return rows

    def generation(self) -> int:
        """A number that changes whenever users, keys or policies change (cheap: one row)."""
        (row,) = self._read("SELECT generation FROM iam_generation")
        return int(row[0])

    # -- users -----------------------------------------------------------------------------

    def _identity(self, user_name: str, user_id: str, path: str) -> IamIdentity:
        return IamIdentity(
            account_id=self._account_id,
            user_name=user_name,
            user_id=user_id,
            arn=f"arn:aws:iam::{self._account_id}:user{path}{user_name}",
        )

    def _user(self, row: sqlite3.Row | tuple[object, ...]) -> UserRecord:
        user_name, user_id, path, created_at = row
        assert isinstance(user_name, str) and isinstance(user_id, str)
        assert isinstance(path, str) and isinstance(created_at, int)
        return UserRecord(self._identity(user_name, user_id, path), path, _time(created_at))

    @staticmethod
    def _existing_user(connection: sqlite3.Connection, user_name: str) -> tuple[object, ...]:
        row = connection.execute(
            "SELECT user_name, user_id, path, created_at FROM users WHERE user_name = ?",
            (user_name,),
        ).fetchone()
        if row is None:
            raise NoSuchEntityError(f"The user with name {user_name} cannot be found.")
        return tuple(row)

    def create_user(
        self, user_name: str, *, path: str | None = None, now: datetime | None = None
    ) -> UserRecord:
        """CreateUser.

        Raises:
            IamValidationError: the name or path breaks IAM's constraints.
            EntityAlreadyExistsError: a user of that name (in any letter case) exists.
        """
        _check_name(user_name, "userName", 64)
        path = "/" if path is None else path
        if len(path) > _PATH_MAX or not _PATH.fullmatch(path):
            raise _validation(
                path[:_PATH_MAX],
                "path",
                r"Member must satisfy regular expression pattern: "
                r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
            )
        created = _epoch(now or datetime.now(UTC))
        with self._write() as connection:
            if connection.execute(
                "SELECT 1 FROM users WHERE user_name = ?", (user_name,)
            ).fetchone():
                raise EntityAlreadyExistsError(f"User with name {user_name} already exists.")
            user_id = _random_id("AIDA", 17)
            connection.execute(
                "INSERT INTO users (user_name, user_id, path, created_at) VALUES (?, ?, ?, ?)",
                (user_name, user_id, path, created),
            )
        return self._user((user_name, user_id, path, created))

    def get_user(self, user_name: str) -> UserRecord:
        """GetUser. Raises NoSuchEntityError."""
        with self._lock:
            return self._user(self._existing_user(self._connection, user_name))

    def list_users(self) -> list[UserRecord]:
        """ListUsers, ordered by name."""
        rows = self._read(
            "SELECT user_name, user_id, path, created_at FROM users ORDER BY user_name"
        )
        return [self._user(row) for row in rows]

    def delete_user(self, user_name: str) -> None:
        """DeleteUser; its session credentials go with it.

        Raises:
            NoSuchEntityError: no such user.
            IamDeleteConflictError: the user still has access keys or inline policies.
        """
        with self._write() as connection:
            (name, *_) = self._existing_user(connection, user_name)
            if connection.execute(
                "SELECT 1 FROM access_keys WHERE user_name = ?", (name,)
            ).fetchone():
                raise IamDeleteConflictError("Cannot delete entity, must delete access keys first.")
            if connection.execute(
                "SELECT 1 FROM user_policies WHERE user_name = ?", (name,)
            ).fetchone():
                raise IamDeleteConflictError("Cannot delete entity, must delete policies first.")
            connection.execute("DELETE FROM users WHERE user_name = ?", (name,))

    # -- access keys -----------------------------------------------------------------------

    def create_access_key(self, user_name: str, *, now: datetime | None = None) -> AccessKeyRecord:
        """CreateAccessKey: a new Active key with its secret (shown once by the AWS CLI).

        Raises:
            NoSuchEntityError: no such user.
            IamLimitExceededError: the user has two keys already.
        """
        created = _epoch(now or datetime.now(UTC))
        with self._write() as connection:
            (name, *_) = self._existing_user(connection, user_name)
            (count,) = connection.execute(
                "SELECT count(*) FROM access_keys WHERE user_name = ?", (name,)
            ).fetchone()
            if count >= ACCESS_KEYS_PER_USER:
                raise IamLimitExceededError(
                    f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"
                )
            key = _random_id("AKIA", 16)
            secret = _random_secret()
            connection.execute(
                "INSERT INTO access_keys (access_key_id, user_name, secret_access_key, status,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (key, name, secret, ACTIVE, created),
            )
        assert isinstance(name, str)
        return AccessKeyRecord(name, key, secret, ACTIVE, _time(created))

    def list_access_keys(self, user_name: str) -> list[AccessKeyRecord]:
        """ListAccessKeys, oldest first. Raises NoSuchEntityError."""
        with self._lock:
            (name, *_) = self._existing_user(self._connection, user_name)
            rows = self._connection.execute(
                "SELECT access_key_id, secret_access_key, status, created_at FROM access_keys"
                " WHERE user_name = ? ORDER BY created_at, access_key_id",
                (name,),
            ).fetchall()
        assert isinstance(name, str)
        return [
            AccessKeyRecord(name, key, secret, status, _time(at))
            for key, secret, status, at in rows
        ]

    def _key_owner(
        self, connection: sqlite3.Connection, access_key_id: str, user_name: str | None
    ) -> str:
        if user_name is not None:
            self._existing_user(connection, user_name)
        row = connection.execute(
            "SELECT user_name FROM access_keys WHERE access_key_id = ?"
            + (" AND user_name = ?" if user_name is not None else ""),
            (access_key_id,) if user_name is None else (access_key_id, user_name),
        ).fetchone()
        if row is None:
            raise NoSuchEntityError(f"The Access Key with id {access_key_id} cannot be found.")
        return str(row[0])

    def update_access_key(
        self, access_key_id: str, status: str, *, user_name: str | None = None
    ) -> None:
        """UpdateAccessKey: make a key Active or Inactive.

        Raises:
            IamValidationError: ``status`` is neither.
            NoSuchEntityError: no such user, or the key is not (that user's).
        """
        if status not in (ACTIVE, INACTIVE):
            raise _validation(
                status[:64], "status", "Member must satisfy enum value set: [Active, Inactive]"
            )
        with self._write() as connection:
            self._key_owner(connection, access_key_id, user_name)
            connection.execute(
                "UPDATE access_keys SET status = ? WHERE access_key_id = ?",
                (status, access_key_id),
            )

    def delete_access_key(self, access_key_id: str, *, user_name: str | None = None) -> None:
        """DeleteAccessKey. Raises NoSuchEntityError (no such user, or not that user's key)."""
        with self._write() as connection:
            self._key_owner(connection, access_key_id, user_name)
            connection.execute("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))

    # -- inline user policies --------------------------------------------------------------

    def put_user_policy(self, user_name: str, policy_name: str, policy_document: str) -> None:
        """PutUserPolicy: add or replace an inline policy.

        Raises:
            IamValidationError: the policy name breaks IAM's constraints.
            NoSuchEntityError: no such user.
            IamLimitExceededError: the user's policies would exceed 2,048 characters.
            MalformedPolicyDocumentError: the document is not a valid policy.
        """
        _check_name(policy_name, "policyName", 128)
        with self._write() as connection:
            (name, *_) = self._existing_user(connection, user_name)
            others = connection.execute(
                "SELECT document FROM user_policies WHERE user_name = ? AND policy_name != ?",
                (name, policy_name),
            ).fetchall()
            size = _non_space(policy_document) + sum(_non_space(doc) for (doc,) in others)
            if size > USER_POLICY_MAX_CHARS:
                raise IamLimitExceededError(
                    f"Maximum policy size of {USER_POLICY_MAX_CHARS} bytes exceeded for user {name}"
                )
            try:
                parse_policy_document(policy_document)
            except PolicyError as exc:
                raise MalformedPolicyDocumentError(str(exc)) from exc
            connection.execute(
                "INSERT INTO user_policies (user_name, policy_name, document) VALUES (?, ?, ?)"
                " ON CONFLICT (user_name, policy_name) DO UPDATE SET"
                " policy_name = excluded.policy_name, document = excluded.document",
                (name, policy_name, policy_document),
            )

    def get_user_policy(self, user_name: str, policy_name: str) -> tuple[str, str, str]:
        """GetUserPolicy: (user name, policy name, document text). Raises NoSuchEntityError."""
        with self._lock:
            (name, *_) = self._existing_user(self._connection, user_name)
            row = self._connection.execute(
                "SELECT policy_name, document FROM user_policies"
                " WHERE user_name = ? AND policy_name = ?",
                (name, policy_name),
            ).fetchone()
        if row is None:
            raise NoSuchEntityError(f"The user policy with name {policy_name} cannot be found.")
        return str(name), str(row[0]), str(row[1])

    def list_user_policies(self, user_name: str) -> list[str]:
        """ListUserPolicies: the policy names, sorted. Raises NoSuchEntityError."""
        return [name for name, _ in self.user_policies(user_name)]

    def user_policies(self, user_name: str) -> list[tuple[str, str]]:
        """Every inline policy as (name, document text), sorted by name.

        Raises NoSuchEntityError.
        """
        with self._lock:
            (name, *_) = self._existing_user(self._connection, user_name)
            rows = self._connection.execute(
                "SELECT policy_name, document FROM user_policies WHERE user_name = ?"
                " ORDER BY policy_name",
                (name,),
            ).fetchall()
        return [(str(policy), str(document)) for policy, document in rows]

    def delete_user_policy(self, user_name: str, policy_name: str) -> None:
        """DeleteUserPolicy. Raises NoSuchEntityError."""
        with self._write() as connection:
            (name, *_) = self._existing_user(connection, user_name)
            deleted = connection.execute(
                "DELETE FROM user_policies WHERE user_name = ? AND policy_name = ?",
                (name, policy_name),
            ).rowcount
            if not deleted:
                raise NoSuchEntityError(f"The user policy with name {policy_name} cannot be found.")

    # -- session credentials ---------------------------------------------------------------

    def get_session_token(
        self,
        *,
        user_name: str | None = None,
        access_key_id: str | None = None,
        duration_seconds: int | None = None,
        now: datetime | None = None,
    ) -> SessionCredentials:
        """GetSessionToken for a user, named directly or by the long-term key calling it.

        Args:
            user_name: the user (the local CLI's way to say who is calling).
            access_key_id: the caller's access key (what an STS endpoint would know).
            duration_seconds: 900..129600; default 43200.
            now: the issue time.

        Raises:
            ValueError: not exactly one of ``user_name`` and ``access_key_id``.
            IamValidationError: ``duration_seconds`` is out of range.
            NoSuchEntityError: no such user or key.
            IamAccessDeniedError: ``access_key_id`` is a session credential, or inactive.
        """
        if (user_name is None) == (access_key_id is None):
            raise ValueError("pass exactly one of user_name and access_key_id")
        duration = SESSION_DURATION_DEFAULT if duration_seconds is None else duration_seconds
        if duration < SESSION_DURATION_MIN:
            raise _validation(
                str(duration),
                "durationSeconds",
                f"Member must have value greater than or equal to {SESSION_DURATION_MIN}",
            )
        if duration > SESSION_DURATION_MAX:
            raise _validation(
                str(duration),
                "durationSeconds",
                f"Member must have value less than or equal to {SESSION_DURATION_MAX}",
            )
        issued = _epoch(now or datetime.now(UTC))
        expires = issued + duration
        key = _random_id("ASIA", 16)
        secret = _random_secret()
        token = _session_token()
        with self._write() as connection:
            owner = self._session_owner(connection, user_name, access_key_id)
            connection.execute("DELETE FROM session_credentials WHERE expires_at <= ?", (issued,))
            connection.execute(
                "DELETE FROM session_credentials WHERE access_key_id IN (SELECT access_key_id"
                " FROM session_credentials WHERE user_name = ? ORDER BY created_at DESC,"
                " access_key_id LIMIT -1 OFFSET ?)",
                (owner, _SESSIONS_PER_USER - 1),
            )
            connection.execute(
                "INSERT INTO session_credentials (access_key_id, user_name, secret_access_key,"
                " session_token_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, owner, secret, hashlib.sha256(token.encode()).hexdigest(), issued, expires),
            )
        return SessionCredentials(owner, key, secret, token, _time(expires))

    def _session_owner(
        self, connection: sqlite3.Connection, user_name: str | None, access_key_id: str | None
    ) -> str:
        if user_name is not None:
            return str(self._existing_user(connection, user_name)[0])
        row = connection.execute(
            "SELECT user_name, status FROM access_keys WHERE access_key_id = ?", (access_key_id,)
        ).fetchone()
        if row is not None:
            if row[1] != ACTIVE:
                raise IamAccessDeniedError(f"The access key {access_key_id} is inactive.")
            return str(row[0])
        if connection.execute(
            "SELECT 1 FROM session_credentials WHERE access_key_id = ?", (access_key_id,)
        ).fetchone():
            raise IamAccessDeniedError("Cannot call GetSessionToken with session credentials")
        raise NoSuchEntityError(f"The Access Key with id {access_key_id} cannot be found.")

    # -- the verifier's lookup -------------------------------------------------------------

    def credential_for(self, access_key_id: str, /) -> SigningCredential | None:
        """The ``CredentialLookup`` for ``aws_iot_mock.auth.sigv4.verify``.

        Expired session credentials are still returned (the verifier reports them as expired,
        as AWS does); deleted keys and unknown IDs give None.
        """
        with self._lock:
            row = self._connection.execute(
                "SELECT k.secret_access_key, k.status, u.user_name, u.user_id, u.path"
                " FROM access_keys AS k JOIN users AS u USING (user_name)"
                " WHERE k.access_key_id = ?",
                (access_key_id,),
            ).fetchone()
            if row is not None:
                secret, status, name, user_id, path = row
                return SigningCredential(
                    access_key_id,
                    secret,
                    self._identity(name, user_id, path),
                    active=status == ACTIVE,
                )
            row = self._connection.execute(
                "SELECT s.secret_access_key, s.session_token_sha256, s.expires_at, u.user_name,"
                " u.user_id, u.path FROM session_credentials AS s JOIN users AS u"
                " USING (user_name) WHERE s.access_key_id = ?",
                (access_key_id,),
            ).fetchone()
        if row is None:
            return None
        secret, token_sha256, expires_at, name, user_id, path = row
        return SigningCredential(
            access_key_id,
            secret,
            self._identity(name, user_id, path),
            session_token_sha256=token_sha256,
            expiration=_time(expires_at),
        )
