"""Static thing groups of the registry: the group tree, its members and the policies attached.

Shapes, limits and errors follow the AWS IoT API reference (CreateThingGroup,
DescribeThingGroup, ListThingGroups, UpdateThingGroup, DeleteThingGroup, AddThingToThingGroup,
RemoveThingFromThingGroup, ListThingsInThingGroup, ListThingGroupsForThing;
https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThingGroup.html and siblings) and
"Static thing groups" (https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html):

- "If a group will be a child of another group, this must be specified at the time it is
  created. You can't change a group's parent later"; a hierarchy is at most seven levels deep
  (AWS IoT Core quotas, "Maximum depth of a thing group hierarchy").
- "You cannot add a thing to more than 10 groups" and "You cannot add a thing to more than one
  group in the same hierarchy".
- "You can attach a policy to a parent group and it is inherited by its child groups, and by all
  of the things in the group and in its child groups": ``thing_group_policies_for`` gives a
  thing's inherited policies, nearest group first.

Dynamic thing groups (fleet indexing queries) are not emulated.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry._store import Store
from aws_iot_mock.registry._util import dump_attributes, from_iso, iso, load_attributes, utc
from aws_iot_mock.registry.errors import (
    InvalidRequestError,
    ResourceAlreadyExistsError,
    VersionConflictError,
)
from aws_iot_mock.registry.things import (
    _check_attributes,
    _check_thing_name,
    _require_thing,
    updated_attributes,
)

__all__ = [
    "MAX_GROUPS_PER_THING",
    "MAX_HIERARCHY_DEPTH",
    "ThingGroup",
    "ThingGroupsMixin",
    "thing_group_policies_for",
]

# API_CreateThingGroup, thingGroupName: "Minimum length of 1. Maximum length of 128. Pattern:
# [a-zA-Z0-9:_-]+".
_GROUP_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
# API_ThingGroupProperties, thingGroupDescription: "Maximum length of 2028. Pattern:
# [\p{Graph}\x20]*".
_GROUP_DESCRIPTION = re.compile(r"[\x20-\x7e]{0,2028}")
# AWS IoT Core quotas: "Maximum depth of a thing group hierarchy: 7"; thing-groups.html: "You
# cannot add a thing to more than 10 groups".
MAX_HIERARCHY_DEPTH = 7
MAX_GROUPS_PER_THING = 10

_GROUP_COLUMNS = (
    "thing_group_name, thing_group_id, parent_group_name, description, attributes, version,"
    " creation_date"
)


@dataclass(frozen=True)
class ThingGroup:
    """One static thing group (DescribeThingGroup).

    Attributes:
        thing_group_name: the name.
        thing_group_arn: ``arn:aws:iot:<region>:<account>:thinggroup/<name>``.
        thing_group_id: a UUID4.
        parent_group_name: the parent group, if any (fixed at creation).
        description: ``thingGroupDescription``, if any.
        attributes: name -> value (read-only).
        version: 1 at creation, +1 on every UpdateThingGroup.
        creation_date: when it was created (UTC).
        root_to_parent: the ancestors' (name, ARN), root first, ending with the parent.
    """

    thing_group_name: str
    thing_group_arn: str
    thing_group_id: str
    parent_group_name: str | None
    description: str | None
    attributes: Mapping[str, str]
    version: int
    creation_date: datetime
    root_to_parent: tuple[tuple[str, str], ...] = ()

    def to_description(self) -> dict[str, Any]:
        """Return DescribeThingGroup's response (timestamps as ``datetime``).

        Returns:
            thingGroupName, thingGroupId, thingGroupArn, version, thingGroupProperties and
            thingGroupMetadata (API_DescribeThingGroup, "Response Syntax").
        """
        properties: dict[str, Any] = {}
        if self.description is not None:
            properties["thingGroupDescription"] = self.description
        properties["attributePayload"] = {"attributes": dict(self.attributes)}
        metadata: dict[str, Any] = {}
        if self.parent_group_name is not None:
            metadata["parentGroupName"] = self.parent_group_name
        metadata["rootToParentThingGroups"] = [
            {"groupName": name, "groupArn": arn} for name, arn in self.root_to_parent
        ]
        metadata["creationDate"] = self.creation_date
        return {
            "thingGroupName": self.thing_group_name,
            "thingGroupId": self.thing_group_id,
            "thingGroupArn": self.thing_group_arn,
            "version": self.version,
            "thingGroupProperties": properties,
            "thingGroupMetadata": metadata,
        }

    def to_summary(self) -> dict[str, str]:
        """Return one element of ListThingGroups' ``thingGroups`` (API_GroupNameAndArn)."""
        return {"groupName": self.thing_group_name, "groupArn": self.thing_group_arn}


class ThingGroupsMixin(Store):
    """Static thing groups and their members (mixed into CertificateRegistry)."""

    def create_thing_group(
        self,
        thing_group_name: str,
        *,
        parent_group_name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> ThingGroup:
        """Create a static thing group, like CreateThingGroup.

        As CreateThing, repeating the call with the same parent and properties returns the
        existing group; different ones raise ResourceAlreadyExistsException.

        Raises:
            InvalidRequestError: malformed input, or the hierarchy would be deeper than seven.
            ResourceAlreadyExistsError: the group exists with other properties.
            ResourceNotFoundError: the parent group does not exist.
            ValueError: ``now`` is naive.
        """
        _check_group_name(thing_group_name)
        if parent_group_name is not None:
            _check_group_name(parent_group_name, "parentGroupName")
        _check_description(description)
        wanted = _check_attributes(attributes or {})
        moment = utc(now)
        with self._write() as connection:
            existing = self._select_group(connection, thing_group_name)
            if existing is not None:
                if (existing.parent_group_name, existing.description, existing.attributes) == (
                    parent_group_name,
                    description,
                    wanted,
                ):
                    return existing
                raise ResourceAlreadyExistsError(
                    f"Thing Group {thing_group_name} already exists with different properties"
                )
            if parent_group_name is not None:
                if self._select_group(connection, parent_group_name) is None:
                    raise ResourceNotFoundError(_group_not_found(parent_group_name))
                depth = len(_ancestors(connection, parent_group_name)) + 2
                if depth > MAX_HIERARCHY_DEPTH:
                    raise InvalidRequestError(
                        f"A thing group hierarchy can be at most {MAX_HIERARCHY_DEPTH} levels "
                        f"deep; {thing_group_name} would be at level {depth}"
                    )
            connection.execute(
                f"INSERT INTO thing_groups ({_GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (
                    thing_group_name,
                    str(uuid.uuid4()),
                    parent_group_name,
                    description,
                    dump_attributes(wanted),
                    iso(moment),
                ),
            )
            group = self._select_group(connection, thing_group_name)
        assert group is not None
        return group

    def describe_thing_group(self, thing_group_name: str) -> ThingGroup:
        """Return a thing group, like DescribeThingGroup.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such group.
        """
        _check_group_name(thing_group_name)
        with self._read() as connection:
            group = self._select_group(connection, thing_group_name)
        if group is None:
            raise ResourceNotFoundError(_group_not_found(thing_group_name))
        return group

    def list_thing_groups(
        self,
        *,
        parent_group: str | None = None,
        name_prefix: str | None = None,
        recursive: bool = True,
    ) -> list[ThingGroup]:
        """List thing groups by name, like ListThingGroups.

        Args:
            parent_group: only the children of this group (with ``recursive``, every
                descendant).
            name_prefix: only groups whose name starts with this.
            recursive: with ``parent_group``, include the children's descendants.

        Raises:
            ResourceNotFoundError: ``parent_group`` does not exist.
        """
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT {_GROUP_COLUMNS} FROM thing_groups ORDER BY thing_group_name"
            ).fetchall()
            if parent_group is not None:
                _check_group_name(parent_group, "parentGroup")
                if self._select_group(connection, parent_group) is None:
                    raise ResourceNotFoundError(_group_not_found(parent_group))
                wanted = set(_descendants(connection, parent_group, recursive=recursive))
                rows = [row for row in rows if row[0] in wanted]
            groups = [self._group(connection, row) for row in rows]
        if name_prefix is not None:
            groups = [g for g in groups if g.thing_group_name.startswith(name_prefix)]
        return groups

    def update_thing_group(
        self,
        thing_group_name: str,
        *,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> ThingGroup:
        """Change a group's description or attributes, like UpdateThingGroup (version + 1).

        Attributes follow AttributePayload as in UpdateThing: without ``merge`` they replace
        the stored ones, with it they are merged in; an empty value removes an attribute.

        Raises:
            InvalidRequestError: malformed input.
            ResourceNotFoundError: no such group.
            VersionConflictError: ``expected_version`` differs from the current version.
        """
        _check_group_name(thing_group_name)
        _check_description(description)
        given = _check_attributes(attributes or {}, allow_over_limit=True)
        with self._write() as connection:
            group = self._select_group(connection, thing_group_name)
            if group is None:
                raise ResourceNotFoundError(_group_not_found(thing_group_name))
            _check_version(group, expected_version)
            new_attributes = updated_attributes(group.attributes, attributes, given, merge=merge)
            connection.execute(
                "UPDATE thing_groups SET description = ?, attributes = ?, version = version + 1 "
                "WHERE thing_group_name = ?",
                (
                    group.description if description is None else description,
                    dump_attributes(new_attributes),
                    thing_group_name,
                ),
            )
            updated = self._select_group(connection, thing_group_name)
        assert updated is not None
        return updated

    def delete_thing_group(
        self, thing_group_name: str, *, expected_version: int | None = None
    ) -> None:
        """Delete a thing group, like DeleteThingGroup (a missing group is no error).

        Its memberships and policy attachments go with it; its things stay.

        Raises:
            InvalidRequestError: the name is malformed, or the group has child groups.
            VersionConflictError: ``expected_version`` differs from the current version.
        """
        _check_group_name(thing_group_name)
        with self._write() as connection:
            group = self._select_group(connection, thing_group_name)
            if group is None:
                return
            _check_version(group, expected_version)
            child = connection.execute(
                "SELECT 1 FROM thing_groups WHERE parent_group_name = ? LIMIT 1",
                (thing_group_name,),
            ).fetchone()
            if child is not None:
                raise InvalidRequestError(
                    f"Cannot delete thing group : {thing_group_name} when it still has child groups"
                )
            connection.execute(
                "DELETE FROM thing_groups WHERE thing_group_name = ?", (thing_group_name,)
            )
            connection.execute(
                "DELETE FROM resource_tags WHERE resource_arn = ?", (group.thing_group_arn,)
            )

    def add_thing_to_thing_group(self, thing_group_name: str, thing_name: str) -> None:
        """Add a thing to a static group, like AddThingToThingGroup (idempotent).

        Raises:
            InvalidRequestError: malformed names, the thing is in ten groups already, or it is
                in another group of the same hierarchy.
            ResourceNotFoundError: no such group or thing.
        """
        _check_group_name(thing_group_name)
        _check_thing_name(thing_name)
        with self._write() as connection:
            self._require_group_and_thing(connection, thing_group_name, thing_name)
            current = [
                name
                for (name,) in connection.execute(
                    "SELECT thing_group_name FROM thing_group_members WHERE thing_name = ?",
                    (thing_name,),
                ).fetchall()
            ]
            if thing_group_name in current:
                return
            if len(current) >= MAX_GROUPS_PER_THING:
                raise InvalidRequestError(
                    f"Thing {thing_name} is already in {MAX_GROUPS_PER_THING} thing groups, the "
                    "most a thing can be in"
                )
            root = _root(connection, thing_group_name)
            for other in current:
                if _root(connection, other) == root:
                    raise InvalidRequestError(
                        f"Thing {thing_name} is already in {other}, a group of the same "
                        f"hierarchy as {thing_group_name} (a thing can be in one group per "
                        "hierarchy)"
                    )
            connection.execute(
                "INSERT INTO thing_group_members (thing_group_name, thing_name, added_date) "
                "VALUES (?, ?, ?)",
                (thing_group_name, thing_name, iso(utc(None))),
            )

    def remove_thing_from_thing_group(self, thing_group_name: str, thing_name: str) -> None:
        """Remove a thing from a group, like RemoveThingFromThingGroup (not a member: no-op).

        Raises:
            InvalidRequestError: malformed names.
            ResourceNotFoundError: no such group or thing.
        """
        _check_group_name(thing_group_name)
        _check_thing_name(thing_name)
        with self._write() as connection:
            self._require_group_and_thing(connection, thing_group_name, thing_name)
            connection.execute(
                "DELETE FROM thing_group_members WHERE thing_group_name = ? AND thing_name = ?",
                (thing_group_name, thing_name),
            )

    def list_things_in_thing_group(
        self, thing_group_name: str, *, recursive: bool = False
    ) -> list[str]:
        """The names of a group's things (with ``recursive``, its descendants' too), sorted.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such group.
        """
        _check_group_name(thing_group_name)
        with self._read() as connection:
            if self._select_group(connection, thing_group_name) is None:
                raise ResourceNotFoundError(_group_not_found(thing_group_name))
            groups = [thing_group_name]
            if recursive:
                groups += _descendants(connection, thing_group_name, recursive=True)
            marks = ", ".join("?" for _ in groups)
            rows = connection.execute(
                f"SELECT DISTINCT thing_name FROM thing_group_members "
                f"WHERE thing_group_name IN ({marks}) ORDER BY thing_name",
                groups,
            ).fetchall()
        return [name for (name,) in rows]

    def list_thing_groups_for_thing(self, thing_name: str) -> list[ThingGroup]:
        """The groups a thing is a direct member of, by name (ListThingGroupsForThing).

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such thing.
        """
        _check_thing_name(thing_name)
        with self._read() as connection:
            _require_thing(connection, thing_name)
            rows = connection.execute(
                f"SELECT {_prefixed('g')} FROM thing_group_members AS m "
                "JOIN thing_groups AS g USING (thing_group_name) "
                "WHERE m.thing_name = ? ORDER BY g.thing_group_name",
                (thing_name,),
            ).fetchall()
            return [self._group(connection, row) for row in rows]

    def thing_group_members(self, thing_group_arn: str) -> list[str] | None:
        """The things of a group and its descendants, by group ARN; None if no such group.

        The shape the Jobs control plane's ``GroupMembers`` callable expects.
        """
        prefix = self._arn("thinggroup/")
        if not thing_group_arn.startswith(prefix):
            return None
        name = thing_group_arn.removeprefix(prefix)
        if not _GROUP_NAME.fullmatch(name):
            return None
        try:
            return self.list_things_in_thing_group(name, recursive=True)
        except ResourceNotFoundError:
            return None

    # --- helpers --------------------------------------------------------------------------

    def _require_group_and_thing(
        self, connection: sqlite3.Connection, thing_group_name: str, thing_name: str
    ) -> None:
        if self._select_group(connection, thing_group_name) is None:
            raise ResourceNotFoundError(_group_not_found(thing_group_name))
        _require_thing(connection, thing_name)

    def _select_group(self, connection: sqlite3.Connection, name: str) -> ThingGroup | None:
        row = connection.execute(
            f"SELECT {_GROUP_COLUMNS} FROM thing_groups WHERE thing_group_name = ?", (name,)
        ).fetchone()
        return None if row is None else self._group(connection, row)

    def _group(self, connection: sqlite3.Connection, row: Sequence[Any]) -> ThingGroup:
        name, group_id, parent, description, attributes, version, created = row
        ancestors = [parent, *_ancestors(connection, parent)] if parent is not None else []
        return ThingGroup(
            thing_group_name=name,
            thing_group_arn=self._arn(f"thinggroup/{name}"),
            thing_group_id=group_id,
            parent_group_name=parent,
            description=description,
            attributes=load_attributes(attributes),
            version=int(version),
            creation_date=from_iso(created),
            root_to_parent=tuple(
                (group, self._arn(f"thinggroup/{group}")) for group in reversed(ancestors)
            ),
        )


def thing_group_policies_for(
    connection: sqlite3.Connection, thing_name: str
) -> list[tuple[str, str]]:
    """The (policy name, default document) a thing inherits from its groups and their ancestors.

    Nearest group first; a policy attached at several levels appears once.

    Args:
        connection: inside a read transaction.
        thing_name: the thing.
    """
    groups: list[str] = []
    for (direct,) in connection.execute(
        "SELECT thing_group_name FROM thing_group_members WHERE thing_name = ? "
        "ORDER BY thing_group_name",
        (thing_name,),
    ).fetchall():
        for group in (direct, *_ancestors(connection, direct)):
            if group not in groups:
                groups.append(group)
    policies: list[tuple[str, str]] = []
    for group in groups:
        for name, document in connection.execute(
            "SELECT t.policy_name, v.document FROM thing_group_policies AS t "
            "JOIN policies AS p ON (p.policy_name = t.policy_name) "
            "JOIN policy_versions AS v "
            "ON (v.policy_name = p.policy_name AND v.version_id = p.default_version_id) "
            "WHERE t.thing_group_name = ? ORDER BY t.policy_name",
            (group,),
        ).fetchall():
            if all(name != seen for seen, _ in policies):
                policies.append((name, document))
    return policies


def group_ancestors(connection: sqlite3.Connection, group: str) -> list[str]:
    """A group's ancestors, parent first (for ListAttachedPolicies ``recursive``)."""
    return _ancestors(connection, group)


def _ancestors(connection: sqlite3.Connection, group: str) -> list[str]:
    """``group``'s parent, grandparent, ... (bounded by the hierarchy depth)."""
    chain: list[str] = []
    current: str | None = group
    for _ in range(MAX_HIERARCHY_DEPTH):
        row = connection.execute(
            "SELECT parent_group_name FROM thing_groups WHERE thing_group_name = ?", (current,)
        ).fetchone()
        if row is None or row[0] is None:
            break
        current = row[0]
        chain.append(row[0])
    return chain


def _root(connection: sqlite3.Connection, group: str) -> str:
    ancestors = _ancestors(connection, group)
    return ancestors[-1] if ancestors else group


def _descendants(connection: sqlite3.Connection, group: str, *, recursive: bool) -> list[str]:
    found: list[str] = []
    level = [group]
    for _ in range(MAX_HIERARCHY_DEPTH if recursive else 1):
        marks = ", ".join("?" for _ in level)
        children = [
            name
            for (name,) in connection.execute(
                f"SELECT thing_group_name FROM thing_groups WHERE parent_group_name IN ({marks}) "
                "ORDER BY thing_group_name",
                level,
            ).fetchall()
        ]
        if not children:
            break
        found += children
        level = children
    return found


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in _GROUP_COLUMNS.split(","))


def _check_group_name(name: str, member: str = "thingGroupName") -> None:
    if not isinstance(name, str) or not _GROUP_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"{member} {name!r} is invalid: 1-128 characters of [a-zA-Z0-9:_-]"
        )


def _check_description(description: str | None) -> None:
    if description is not None and not (
        isinstance(description, str) and _GROUP_DESCRIPTION.fullmatch(description)
    ):
        raise InvalidRequestError(
            "thingGroupDescription must be at most 2028 printable ASCII characters"
        )


def _check_version(group: ThingGroup, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != group.version:
        raise VersionConflictError(
            f"The version for thing group {group.thing_group_name} does not match the expected "
            f"version (expected {expected_version}, current {group.version})"
        )


def _group_not_found(name: str) -> str:
    return f"ResourceNotFoundException: Thing Group {name} does not exist"
