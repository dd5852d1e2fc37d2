"""AWS IoT policies, their versions, and their attachments to certificates.

Shapes, limits and errors follow the AWS IoT API reference: CreatePolicy, GetPolicy,
ListPolicies, DeletePolicy, CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions,
SetDefaultPolicyVersion, DeletePolicyVersion, AttachPolicy, DetachPolicy, ListAttachedPolicies
and ListTargetsForPolicy (https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html
and siblings).

Documents are validated with
``aws_iot_mock.authz.iot_policy_evaluation.parse_policy_document`` and stored verbatim, as AWS
returns them verbatim.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry._store import Store
from aws_iot_mock.registry._util import from_iso, iso, utc
from aws_iot_mock.registry.errors import (
    DeleteConflictError,
    InvalidRequestError,
    LimitExceededError,
    MalformedPolicyError,
    ResourceAlreadyExistsError,
    VersionsLimitExceededError,
)

__all__ = [
    "MAX_POLICIES_PER_TARGET",
    "MAX_POLICY_VERSIONS",
    "POLICY_COLUMNS",
    "PoliciesMixin",
    "Policy",
    "PolicyVersion",
    "policy_from_row",
]

# API_CreatePolicy, policyName: "Length Constraints: Minimum length of 1. Maximum length of 128.
# Pattern: [\w+=,.@-]+" (Java's \w: ASCII letters, digits and underscore).
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
# API_GetPolicyVersion, policyVersionId: "Pattern: [0-9]+".
_VERSION_ID = re.compile(r"[0-9]{1,18}")
# API_CreatePolicyVersion: "A managed policy can have up to five versions. If the policy has five
# versions, you must use DeletePolicyVersion to delete an existing version before you create a
# new one."
MAX_POLICY_VERSIONS = 5
# AWS IoT Core quotas, "Maximum number of policies that can be attached to a certificate or
# Amazon Cognito identity": 10.
MAX_POLICIES_PER_TARGET = 10

POLICY_COLUMNS = (
    "p.policy_name, p.default_version_id, v.document, p.creation_date, p.last_modified_date,"
    " p.generation_id"
)
_POLICY_FROM = (
    "policies AS p JOIN policy_versions AS v"
    " ON (v.policy_name = p.policy_name AND v.version_id = p.default_version_id)"
)
_VERSION_COLUMNS = "v.policy_name, v.version_id, v.document, v.create_date, p.default_version_id"


@dataclass(frozen=True)
class Policy:
    """One policy with its default version's document (GetPolicy).

    Attributes:
        policy_name: the name.
        policy_arn: ``arn:aws:iot:<region>:<account>:policy/<name>``.
        default_version_id: the default version's ID, e.g. ``"1"``.
        document: the default version's JSON document, verbatim.
        creation_date: when the policy was created (UTC).
        last_modified_date: when its default version last changed (UTC).
        generation_id: an opaque ID that changes whenever the default version changes.
    """

    policy_name: str
    policy_arn: str
    default_version_id: str
    document: str
    creation_date: datetime
    last_modified_date: datetime
    generation_id: str

    def to_get_policy(self) -> dict[str, Any]:
        """Return GetPolicy's response (API_GetPolicy, "Response Syntax").

        Returns:
            policyName, policyArn, policyDocument, defaultVersionId, creationDate,
            lastModifiedDate, generationId; dates are ISO-8601 with a UTC offset.
        """
        return {
            "policyName": self.policy_name,
            "policyArn": self.policy_arn,
            "policyDocument": self.document,
            "defaultVersionId": self.default_version_id,
            "creationDate": iso(self.creation_date),
            "lastModifiedDate": iso(self.last_modified_date),
            "generationId": self.generation_id,
        }

    def to_summary(self) -> dict[str, Any]:
        """Return one element of ListPolicies' / ListAttachedPolicies' ``policies``."""
        return {"policyName": self.policy_name, "policyArn": self.policy_arn}


@dataclass(frozen=True)
class PolicyVersion:
    """One version of a policy (GetPolicyVersion).

    Attributes:
        policy_name: the policy.
        version_id: ``"1"``, ``"2"``, ...; IDs increase and are never reused.
        document: the JSON document, verbatim.
        is_default: whether this is the policy's default version.
        create_date: when the version was created (UTC).
        policy_arn: the policy's ARN.
    """

    policy_name: str
    version_id: str
    document: str
    is_default: bool
    create_date: datetime
    policy_arn: str = ""

    def to_description(self) -> dict[str, Any]:
        """Return GetPolicyVersion's response, without generationId (API_GetPolicyVersion).

        Returns:
            policyArn, policyName, policyDocument, policyVersionId, isDefaultVersion,
            creationDate and lastModifiedDate (versions never change, so both are the
            creation time).
        """
        return {
            "policyArn": self.policy_arn,
            "policyName": self.policy_name,
            "policyDocument": self.document,
            "policyVersionId": self.version_id,
            "isDefaultVersion": self.is_default,
            "creationDate": iso(self.create_date),
            "lastModifiedDate": iso(self.create_date),
        }

    def to_summary(self) -> dict[str, Any]:
        """Return one element of ListPolicyVersions' ``policyVersions`` (API_PolicyVersion)."""
        return {
            "versionId": self.version_id,
            "isDefaultVersion": self.is_default,
            "createDate": iso(self.create_date),
        }


class PoliciesMixin(Store):
    """Policies, policy versions and policy attachments (mixed into CertificateRegistry)."""

    # --- policies -------------------------------------------------------------------------

    def create_policy(
        self, policy_name: str, document: str, *, now: datetime | None = None
    ) -> Policy:
        r"""Create a policy whose version "1" is ``document``, like CreatePolicy.

        Args:
            policy_name: 1-128 characters of ``[\w+=,.@-]``.
            document: the JSON policy document.
            now: the creation time (timezone-aware); defaults to the system clock.

        Returns:
            The new policy.

        Raises:
            InvalidRequestError: the name is malformed.
            MalformedPolicyError: the document is not a valid AWS IoT policy.
            ResourceAlreadyExistsError: a policy with this name exists.
            ValueError: ``now`` is naive.
        """
        _check_policy_name(policy_name)
        _check_document(document)
        moment = iso(utc(now))
        with self._write() as connection:
            try:
                connection.execute(
                    "INSERT INTO policies (policy_name, default_version_id, next_version_id,"
                    " creation_date, last_modified_date, generation_id)"
                    " VALUES (?, 1, 2, ?, ?, ?)",
                    (policy_name, moment, moment, str(uuid.uuid4())),
                )
            except sqlite3.IntegrityError:
                raise ResourceAlreadyExistsError(
                    f"Policy cannot be created - name already exists (name={policy_name})"
                ) from None
            connection.execute(
                "INSERT INTO policy_versions (policy_name, version_id, document, create_date)"
                " VALUES (?, 1, ?, ?)",
                (policy_name, document, moment),
            )
            return self._select_policy(connection, policy_name)

    def get_policy(self, policy_name: str) -> Policy:
        """Return a policy with its default document, like GetPolicy.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such policy.
        """
        _check_policy_name(policy_name)
        with self._read() as connection:
            return self._select_policy(connection, policy_name)

    def list_policies(self) -> list[Policy]:
        """Return every policy, sorted by name (ListPolicies)."""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {POLICY_COLUMNS} FROM {_POLICY_FROM} ORDER BY p.policy_name"
            ).fetchall()
        return [policy_from_row(row, self._arn) for row in rows]

    def delete_policy(self, policy_name: str) -> None:
        """Delete a policy and its (default) version, like DeletePolicy.

        AWS: "A policy cannot be deleted if it has non-default versions or it is attached to
        any certificate." (API_DeletePolicy).

        Raises:
            DeleteConflictError: the policy is attached or has non-default versions.
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such policy.
        """
        _check_policy_name(policy_name)
        with self._write() as connection:
            policy = self._select_policy(connection, policy_name)
            attached = connection.execute(
                "SELECT 1 FROM policy_targets WHERE policy_name = ? UNION ALL "
                "SELECT 1 FROM thing_group_policies WHERE policy_name = ? LIMIT 1",
                (policy_name, policy_name),
            ).fetchone()
            if attached is not None:
                raise DeleteConflictError(
                    "The policy cannot be deleted as the policy is attached to one or more "
                    f"principals (name={policy_name})"
                )
            versions = connection.execute(
                "SELECT COUNT(*) FROM policy_versions WHERE policy_name = ?", (policy_name,)
            ).fetchone()[0]
            if versions > 1:
                raise DeleteConflictError(
                    "The policy cannot be deleted as versions other than the default version "
                    f"exist (name={policy.policy_name})"
                )
            connection.execute("DELETE FROM policies WHERE policy_name = ?", (policy_name,))
            connection.execute(
                "DELETE FROM resource_tags WHERE resource_arn = ?", (policy.policy_arn,)
            )

    # --- versions -------------------------------------------------------------------------

    def create_policy_version(
        self,
        policy_name: str,
        document: str,
        *,
        set_as_default: bool = False,
        now: datetime | None = None,
    ) -> PolicyVersion:
        """Add a version to a policy, like CreatePolicyVersion.

        Version IDs count up from the highest ever issued for the policy and are never reused,
        even after DeletePolicyVersion, as on AWS.

        Args:
            policy_name: the policy.
            document: the JSON policy document.
            set_as_default: make the new version the default, which is what the broker enforces.
            now: the creation time (timezone-aware); defaults to the system clock.

        Returns:
            The new version.

        Raises:
            InvalidRequestError: the name is malformed.
            MalformedPolicyError: the document is not a valid AWS IoT policy.
            ResourceNotFoundError: no such policy.
            VersionsLimitExceededError: the policy already has five versions.
            ValueError: ``now`` is naive.
        """
        _check_policy_name(policy_name)
        _check_document(document)
        moment = iso(utc(now))
        with self._write() as connection:
            row = connection.execute(
                "SELECT next_version_id FROM policies WHERE policy_name = ?", (policy_name,)
            ).fetchone()
            if row is None:
                raise ResourceNotFoundError(_policy_not_found(policy_name))
            (version_id,) = row
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM policy_versions WHERE policy_name = ?", (policy_name,)
            ).fetchone()
            if count >= MAX_POLICY_VERSIONS:
                raise VersionsLimitExceededError(
                    f"The policy {policy_name} already has the maximum number of versions "
                    f"({MAX_POLICY_VERSIONS})"
                )
            connection.execute(
                "INSERT INTO policy_versions (policy_name, version_id, document, create_date)"
                " VALUES (?, ?, ?, ?)",
                (policy_name, version_id, document, moment),
            )
            connection.execute(
                "UPDATE policies SET next_version_id = ? WHERE policy_name = ?",
                (version_id + 1, policy_name),
            )
            if set_as_default:
                _set_default(connection, policy_name, version_id, moment)
            return self._select_version(connection, policy_name, version_id)

    def get_policy_version(self, policy_name: str, version_id: str) -> PolicyVersion:
        """Return one version of a policy, like GetPolicyVersion.

        Raises:
            InvalidRequestError: the name or version ID is malformed.
            ResourceNotFoundError: no such policy or version.
        """
        _check_policy_name(policy_name)
        number = _check_version_id(version_id)
        with self._read() as connection:
            return self._select_version(connection, policy_name, number)

    def list_policy_versions(self, policy_name: str) -> list[PolicyVersion]:
        """Return a policy's versions, oldest (lowest ID) first, like ListPolicyVersions.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such policy.
        """
        _check_policy_name(policy_name)
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT {_VERSION_COLUMNS} FROM policy_versions AS v "
                "JOIN policies AS p USING (policy_name) "
                "WHERE v.policy_name = ? ORDER BY v.version_id",
                (policy_name,),
            ).fetchall()
        if not rows:
            raise ResourceNotFoundError(_policy_not_found(policy_name))
        return [_version(row, self._arn) for row in rows]

    def set_default_policy_version(
        self, policy_name: str, version_id: str, *, now: datetime | None = None
    ) -> Policy:
        """Make a version the policy's default, like SetDefaultPolicyVersion.

        Args:
            policy_name: the policy.
            version_id: an existing version.
            now: the modification time (timezone-aware); defaults to the system clock.

        Returns:
            The policy with its new default (AWS returns an empty body).

        Raises:
            InvalidRequestError: the name or version ID is malformed.
            ResourceNotFoundError: no such policy or version.
            ValueError: ``now`` is naive.
        """
        _check_policy_name(policy_name)
        number = _check_version_id(version_id)
        moment = iso(utc(now))
        with self._write() as connection:
            version = self._select_version(connection, policy_name, number)
            if not version.is_default:
                _set_default(connection, policy_name, number, moment)
            return self._select_policy(connection, policy_name)

    def delete_policy_version(self, policy_name: str, version_id: str) -> None:
        """Delete a non-default version of a policy, like DeletePolicyVersion.

        AWS: "You cannot delete the default version of a policy using this action. To delete
        the default version of a policy, use DeletePolicy." (API_DeletePolicyVersion).

        Raises:
            DeleteConflictError: the version is the default one.
            InvalidRequestError: the name or version ID is malformed.
            ResourceNotFoundError: no such policy or version.
        """
        _check_policy_name(policy_name)
        number = _check_version_id(version_id)
        with self._write() as connection:
            version = self._select_version(connection, policy_name, number)
            if version.is_default:
                raise DeleteConflictError(
                    f"Cannot delete the default version of a policy (name={policy_name}, "
                    f"version={version_id}); use DeletePolicy"
                )
            connection.execute(
                "DELETE FROM policy_versions WHERE policy_name = ? AND version_id = ?",
                (policy_name, number),
            )

    # --- attachments ----------------------------------------------------------------------

    def attach_policy(self, policy_name: str, target_arn: str) -> None:
        """Attach a policy to a certificate or a static thing group, like AttachPolicy.

        Idempotent. A thing group's policies are inherited by the things in it and in its child
        groups (see ``aws_iot_mock.registry.thing_groups``).

        Args:
            policy_name: an existing policy.
            target_arn: a registered certificate's ARN or a thing group's ARN. Amazon Cognito
                identities, which AWS also accepts, are refused as unsupported.

        Raises:
            InvalidRequestError: malformed input or an unsupported target.
            LimitExceededError: the target already has ten policies.
            ResourceNotFoundError: no such policy, certificate or thing group.
        """
        _check_policy_name(policy_name)
        with self._write() as connection:
            _require_policy(connection, policy_name)
            table, column, key = _target_table(self._policy_target(connection, target_arn))
            attached = connection.execute(
                f"SELECT policy_name FROM {table} WHERE {column} = ?", (key,)
            ).fetchall()
            if (policy_name,) in attached:
                return
            if len(attached) >= MAX_POLICIES_PER_TARGET:
                raise LimitExceededError(
                    f"The target {target_arn} already has the maximum number of attached "
                    f"policies ({MAX_POLICIES_PER_TARGET})"
                )
            connection.execute(
                f"INSERT INTO {table} (policy_name, {column}, attached_date) VALUES (?, ?, ?)",
                (policy_name, key, iso(utc(None))),
            )

    def detach_policy(self, policy_name: str, target_arn: str) -> None:
        """Detach a policy from a certificate or thing group, like DetachPolicy (no-op if not).

        Raises:
            InvalidRequestError: malformed input or an unsupported target.
            ResourceNotFoundError: no such policy, certificate or thing group.
        """
        _check_policy_name(policy_name)
        with self._write() as connection:
            _require_policy(connection, policy_name)
            table, column, key = _target_table(self._policy_target(connection, target_arn))
            connection.execute(
                f"DELETE FROM {table} WHERE policy_name = ? AND {column} = ?", (policy_name, key)
            )

    def list_attached_policies(self, target_arn: str, *, recursive: bool = False) -> list[Policy]:
        """Return the policies attached to a certificate or thing group (ListAttachedPolicies).

        Args:
            target_arn: a certificate or thing group ARN.
            recursive: for a thing group, also the policies of its ancestors ("When true,
                recursively list attached policies", API_ListAttachedPolicies).

        Raises:
            InvalidRequestError: an unsupported target.
            ResourceNotFoundError: the certificate or group does not exist.
        """
        from aws_iot_mock.registry.thing_groups import group_ancestors  # noqa: PLC0415

        with self._read() as connection:
            kind, key = self._policy_target(connection, target_arn)
            keys = [key]
            if kind == "thinggroup" and recursive:
                keys += group_ancestors(connection, key)
            table, column, _ = _target_table((kind, key))
            policies: list[Policy] = []
            for each in keys:
                rows = connection.execute(
                    f"SELECT {POLICY_COLUMNS} FROM {_POLICY_FROM} "
                    f"JOIN {table} AS t ON (t.policy_name = p.policy_name) "
                    f"WHERE t.{column} = ? ORDER BY p.policy_name",
                    (each,),
                ).fetchall()
                policies += [policy_from_row(row, self._arn) for row in rows]
        unique: dict[str, Policy] = {}
        for policy in policies:
            unique.setdefault(policy.policy_name, policy)
        return list(unique.values())

    def list_targets_for_policy(self, policy_name: str) -> list[str]:
        """Return the certificate and thing group ARNs a policy is attached to.

        Like ListTargetsForPolicy: certificates in attachment order, then thing groups.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such policy.
        """
        _check_policy_name(policy_name)
        with self._read() as connection:
            _require_policy(connection, policy_name)
            rows = connection.execute(
                "SELECT c.certificate_arn FROM policy_targets AS t "
                "JOIN certificates AS c USING (certificate_id) "
                "WHERE t.policy_name = ? ORDER BY t.attached_date, c.certificate_arn",
                (policy_name,),
            ).fetchall()
            groups = connection.execute(
                "SELECT thing_group_name FROM thing_group_policies WHERE policy_name = ? "
                "ORDER BY attached_date, thing_group_name",
                (policy_name,),
            ).fetchall()
        return [arn for (arn,) in rows] + [self._arn(f"thinggroup/{name}") for (name,) in groups]

    # --- helpers --------------------------------------------------------------------------

    def _select_policy(self, connection: sqlite3.Connection, policy_name: str) -> Policy:
        row = connection.execute(
            f"SELECT {POLICY_COLUMNS} FROM {_POLICY_FROM} WHERE p.policy_name = ?",
            (policy_name,),
        ).fetchone()
        if row is None:
            raise ResourceNotFoundError(_policy_not_found(policy_name))
        return policy_from_row(row, self._arn)

    def _select_version(
        self, connection: sqlite3.Connection, policy_name: str, version_id: int
    ) -> PolicyVersion:
        row = connection.execute(
            f"SELECT {_VERSION_COLUMNS} FROM policy_versions AS v "
            "JOIN policies AS p USING (policy_name) "
            "WHERE v.policy_name = ? AND v.version_id = ?",
            (policy_name, version_id),
        ).fetchone()
        if row is None:
            _require_policy(connection, policy_name)
            raise ResourceNotFoundError(
                f"ResourceNotFoundException: The policy version {version_id} of policy "
                f"{policy_name} does not exist"
            )
        return _version(row, self._arn)


def policy_from_row(row: Sequence[Any], arn: Callable[[str], str]) -> Policy:
    """Build a Policy from a row selected with ``POLICY_COLUMNS``.

    Args:
        row: the selected values.
        arn: builds an ARN from ``<type>/<name>`` (``Store._arn``).

    Returns:
        The policy.
    """
    name, default_version, document, created, modified, generation_id = row
    return Policy(
        policy_name=name,
        policy_arn=arn(f"policy/{name}"),
        default_version_id=str(default_version),
        document=document,
        creation_date=from_iso(created),
        last_modified_date=from_iso(modified),
        generation_id=generation_id,
    )


def _version(row: Sequence[Any], arn: Callable[[str], str]) -> PolicyVersion:
    name, version_id, document, created, default_version = row
    return PolicyVersion(
        policy_name=name,
        version_id=str(version_id),
        document=document,
        is_default=version_id == default_version,
        create_date=from_iso(created),
        policy_arn=arn(f"policy/{name}"),
    )


def _set_default(
    connection: sqlite3.Connection, policy_name: str, version_id: int, moment: str
) -> None:
    connection.execute(
        "UPDATE policies SET default_version_id = ?, last_modified_date = ?, generation_id = ? "
        "WHERE policy_name = ?",
        (version_id, moment, str(uuid.uuid4()), policy_name),
    )


def _require_policy(connection: sqlite3.Connection, policy_name: str) -> None:
    row = connection.execute(
        "SELECT 1 FROM policies WHERE policy_name = ?", (policy_name,)
    ).fetchone()
    if row is None:
        raise ResourceNotFoundError(_policy_not_found(policy_name))


def _check_policy_name(policy_name: str) -> None:
    if not isinstance(policy_name, str) or not _POLICY_NAME.fullmatch(policy_name):
        raise InvalidRequestError(
            f"policyName {policy_name!r} is invalid: 1-128 characters of [\\w+=,.@-]"
        )


def _check_version_id(version_id: str) -> int:
    if not isinstance(version_id, str) or not _VERSION_ID.fullmatch(version_id):
        raise InvalidRequestError(f"policyVersionId {version_id!r} is invalid: digits only")
    return int(version_id)


def _check_document(document: str) -> None:
    """Validate a policy document with the authorization engine's parser.

    The parser is imported here, not at module level, so that the registry does not depend on
    the authorization package at import time.

    Raises:
        MalformedPolicyError: not a string, or refused by the parser (which also enforces
            AWS's 2048-character limit, white space excluded).
    """
    from aws_iot_mock.authz.iot_policy_evaluation import PolicyError, parse_policy_document  # noqa: PLC0415

    if not isinstance(document, str) or not document.strip():
        raise MalformedPolicyError("The policy document must be a non-empty JSON string")
    try:
        parse_policy_document(document)
    except PolicyError as exc:
        raise MalformedPolicyError(str(exc)) from None


def _policy_not_found(policy_name: str) -> str:
    return f"ResourceNotFoundException: Policy not found (name={policy_name})"


def _target_table(target: tuple[str, str]) -> tuple[str, str, str]:
    """The attachment table, its target column and key for a resolved policy target."""
    kind, key = target
    if kind == "thinggroup":
        return "thing_group_policies", "thing_group_name", key
    return "policy_targets", "certificate_id", key
