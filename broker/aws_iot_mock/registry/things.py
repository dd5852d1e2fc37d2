"""Things, thing types and thing-principal attachments of the registry.

Shapes, limits and errors follow the AWS IoT API reference: CreateThing, DescribeThing,
ListThings, UpdateThing, DeleteThing, CreateThingType, DescribeThingType, ListThingTypes,
DeprecateThingType, DeleteThingType, AttachThingPrincipal, DetachThingPrincipal,
ListThingPrincipals and ListPrincipalThings
(https://docs.aws.amazon.com/iot/latest/apireference/API_CreateThing.html and siblings).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
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

__all__ = [
    "MAX_THING_ATTRIBUTES",
    "THING_COLUMNS",
    "Thing",
    "ThingType",
    "ThingsMixin",
    "thing_from_row",
]

# API_CreateThing, thingName / API_CreateThingType, thingTypeName: "Length Constraints: Minimum
# length of 1. Maximum length of 128. Pattern: [a-zA-Z0-9:_-]+".
_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
# API_AttributePayload, attributes: "Key Length Constraints: Maximum length of 128. Key Pattern:
# [a-zA-Z0-9_.,@/:#-]+ Value Length Constraints: Maximum length of 800. Value Pattern:
# [a-zA-Z0-9_.,@/:#=\[\]-]*".
_ATTRIBUTE_NAME = re.compile(r"[a-zA-Z0-9_.,@/:#-]{1,128}")
_ATTRIBUTE_VALUE = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}")
# AWS IoT Core quotas, "Thing attributes": 50 attributes per thing. (Older documentation allowed
# only three attributes on a thing without a type; the current quota page has one limit, 50.)
MAX_THING_ATTRIBUTES = 50
# API_ThingTypeProperties: "thingTypeDescription ... Maximum length of 2028. Pattern:
# [\p{Graph}\x20]*" (Java's \p{Graph} is printable ASCII without space) and
# "searchableAttributes ... Array Members: Maximum number of 3 items".
_THING_TYPE_DESCRIPTION = re.compile(r"[\x20-\x7e]{0,2028}")
_MAX_SEARCHABLE_ATTRIBUTES = 3

THING_COLUMNS = "thing_name, thing_id, thing_type_name, attributes, version"
_THING_TYPE_COLUMNS = (
    "thing_type_name, thing_type_id, searchable_attributes, description, deprecated,"
    " deprecation_date, creation_date"
)


@dataclass(frozen=True)
class Thing:
    """One thing (DescribeThing).

    Attributes:
        thing_name: the name, also the default MQTT client ID.
        thing_arn: ``arn:aws:iot:<region>:<account>:thing/<name>``.
        thing_id: a UUID4, assigned at creation.
        thing_type_name: its thing type, if any.
        attributes: name -> value (read-only).
        version: 1 at creation, +1 on every UpdateThing.
    """

    thing_name: str
    thing_arn: str
    thing_id: str
    thing_type_name: str | None
    attributes: Mapping[str, str]
    version: int

    def to_description(self) -> dict[str, Any]:
        """Return DescribeThing's response (API_DescribeThing, "Response Syntax").

        Returns:
            defaultClientId, thingName, thingId, thingArn, thingTypeName (if set), attributes,
            version.
        """
        description: dict[str, Any] = {
            "defaultClientId": self.thing_name,
            "thingName": self.thing_name,
            "thingId": self.thing_id,
            "thingArn": self.thing_arn,
        }
        if self.thing_type_name is not None:
            description["thingTypeName"] = self.thing_type_name
        description["attributes"] = dict(self.attributes)
        description["version"] = self.version
        return description

    def to_summary(self) -> dict[str, Any]:
        """Return one element of ListThings' ``things`` (API_ThingAttribute).

        Returns:
            thingName, thingTypeName (if set), thingArn, attributes, version.
        """
        summary: dict[str, Any] = {"thingName": self.thing_name}
        if self.thing_type_name is not None:
            summary["thingTypeName"] = self.thing_type_name
        summary["thingArn"] = self.thing_arn
        summary["attributes"] = dict(self.attributes)
        summary["version"] = self.version
        return summary


@dataclass(frozen=True)
class ThingType:
    """One thing type (DescribeThingType).

    Attributes:
        thing_type_name: the name.
        thing_type_arn: ``arn:aws:iot:<region>:<account>:thingtype/<name>``.
        thing_type_id: a UUID4.
        searchable_attributes: up to three attribute names.
        description: the description, if any.
        deprecated: whether DeprecateThingType marked it deprecated.
        creation_date: when it was created (UTC).
        deprecation_date: when it was last deprecated (UTC), while deprecated.
    """

    thing_type_name: str
    thing_type_arn: str
    thing_type_id: str
    searchable_attributes: tuple[str, ...]
    description: str | None
    deprecated: bool
    creation_date: datetime
    deprecation_date: datetime | None = None

    def to_description(self) -> dict[str, Any]:
        """Return DescribeThingType's response (API_DescribeThingType; also ListThingTypes').

        Returns:
            thingTypeName, thingTypeId, thingTypeArn, thingTypeProperties and
            thingTypeMetadata; dates are ISO-8601 with a UTC offset.
        """
        properties: dict[str, Any] = {}
        if self.description is not None:
            properties["thingTypeDescription"] = self.description
        properties["searchableAttributes"] = list(self.searchable_attributes)
        metadata: dict[str, Any] = {"deprecated": self.deprecated}
        if self.deprecation_date is not None:
            metadata["deprecationDate"] = iso(self.deprecation_date)
        metadata["creationDate"] = iso(self.creation_date)
        return {
            "thingTypeName": self.thing_type_name,
            "thingTypeId": self.thing_type_id,
            "thingTypeArn": self.thing_type_arn,
            "thingTypeProperties": properties,
            "thingTypeMetadata": metadata,
        }


class ThingsMixin(Store):
    """Things, thing types and thing-principal attachments (mixed into CertificateRegistry)."""

    # --- things ---------------------------------------------------------------------------

    def create_thing(
        self,
        thing_name: str,
        *,
        thing_type_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Thing:
        """Create a thing, like CreateThing.

        AWS: "If this call is made multiple times using the same thing name and configuration,
        the call will succeed. If this call is made with the same thing name but different
        configuration a ResourceAlreadyExistsException is thrown." (API_CreateThing).

        Args:
            thing_name: 1-128 characters of ``[a-zA-Z0-9:_-]``.
            thing_type_name: an existing, non-deprecated thing type.
            attributes: up to 50 name -> value pairs.

        Returns:
            The new thing (or the identical existing one).

        Raises:
            InvalidRequestError: a malformed name or attribute, more than 50 attributes, or a
                deprecated thing type.
            ResourceAlreadyExistsError: the thing exists with another type or attributes.
            ResourceNotFoundError: the thing type does not exist.
        """
        _check_thing_name(thing_name)
        if thing_type_name is not None:
            _check_thing_type_name(thing_type_name)
        wanted = _check_attributes(attributes or {})
        with self._write() as connection:
            existing = _select_thing(connection, self._arn, thing_name)
            if existing is not None:
                if existing.thing_type_name == thing_type_name and existing.attributes == wanted:
                    return existing
                raise ResourceAlreadyExistsError(
                    f"Thing {thing_name} already exists in account with different attributes"
                )
            if thing_type_name is not None:
                _require_usable_thing_type(connection, thing_type_name)
            thing_id = str(uuid.uuid4())
            connection.execute(
                f"INSERT INTO things ({THING_COLUMNS}, creation_date) VALUES (?, ?, ?, ?, 1, ?)",
                (thing_name, thing_id, thing_type_name, dump_attributes(wanted), iso(utc(None))),
            )
        return Thing(
            thing_name=thing_name,
            thing_arn=self._arn(f"thing/{thing_name}"),
            thing_id=thing_id,
            thing_type_name=thing_type_name,
            attributes=load_attributes(dump_attributes(wanted)),
            version=1,
        )

    def describe_thing(self, thing_name: str) -> Thing:
        """Return a thing, like DescribeThing.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such thing.
        """
        _check_thing_name(thing_name)
        with self._read() as connection:
            thing = _select_thing(connection, self._arn, thing_name)
        if thing is None:
            raise ResourceNotFoundError(_thing_not_found(thing_name))
        return thing

    def list_things(
        self,
        *,
        attribute_name: str | None = None,
        attribute_value: str | None = None,
        thing_type_name: str | None = None,
    ) -> list[Thing]:
        """List things by name, like ListThings, optionally filtered.

        Args:
            attribute_name: keep things that have this attribute.
            attribute_value: with ``attribute_name``, keep things whose attribute has this value.
            thing_type_name: keep things of this type.

        Returns:
            The matching things, sorted by name.

        Raises:
            InvalidRequestError: ``attribute_value`` without ``attribute_name``.
        """
        if attribute_value is not None and attribute_name is None:
            raise InvalidRequestError("attributeValue requires attributeName")
        sql = f"SELECT {THING_COLUMNS} FROM things"
        parameters: tuple[str, ...] = ()
        if thing_type_name is not None:
            sql += " WHERE thing_type_name = ?"
            parameters = (thing_type_name,)
        with self._lock:
            rows = self._connection.execute(sql + " ORDER BY thing_name", parameters).fetchall()
        things = [thing_from_row(row, self._arn) for row in rows]
        if attribute_name is not None:
            things = [
                thing
                for thing in things
                if attribute_name in thing.attributes
                and (attribute_value is None or thing.attributes[attribute_name] == attribute_value)
            ]
        return things

    def update_thing(
        self,
        thing_name: str,
        *,
        thing_type_name: str | None = None,
        remove_thing_type: bool = False,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> Thing:
        """Change a thing's type or attributes, like UpdateThing; the version goes up by one.

        Attribute semantics are AttributePayload's (API_AttributePayload): without ``merge`` the
        given attributes replace the stored ones; with ``merge`` they are merged in. An empty
        value removes that attribute ("To remove an attribute, call UpdateThing with an empty
        attribute value"); we apply that in both modes.

        Args:
            thing_name: the thing.
            thing_type_name: a new, existing, non-deprecated thing type.
            remove_thing_type: remove the thing type (not together with ``thing_type_name``).
            attributes: the attribute payload; None leaves the attributes alone.
            merge: merge ``attributes`` into the stored ones instead of replacing them.
            expected_version: fail unless the thing's current version is this.

        Returns:
            The updated thing.

        Raises:
            InvalidRequestError: malformed input, both a type and ``remove_thing_type``, or a
                deprecated thing type.
            ResourceNotFoundError: no such thing or thing type.
            VersionConflictError: ``expected_version`` differs from the current version.
        """
        _check_thing_name(thing_name)
        if thing_type_name is not None:
            _check_thing_type_name(thing_type_name)
            if remove_thing_type:
                raise InvalidRequestError("Cannot specify both thingTypeName and removeThingType")
        given = _check_attributes(attributes or {}, allow_over_limit=True)
        with self._write() as connection:
            thing = _select_thing(connection, self._arn, thing_name)
            if thing is None:
                raise ResourceNotFoundError(_thing_not_found(thing_name))
            _check_expected_version(thing, expected_version)
            new_type = thing.thing_type_name
            if remove_thing_type:
                new_type = None
            elif thing_type_name is not None:
                if thing_type_name != thing.thing_type_name:
                    _require_usable_thing_type(connection, thing_type_name)
                new_type = thing_type_name
            new_attributes = updated_attributes(thing.attributes, attributes, given, merge=merge)
            row = connection.execute(
                "UPDATE things SET thing_type_name = ?, attributes = ?, version = version + 1 "
                f"WHERE thing_name = ? RETURNING {THING_COLUMNS}",
                (new_type, dump_attributes(new_attributes), thing_name),
            ).fetchone()
        return thing_from_row(row, self._arn)

    def delete_thing(self, thing_name: str, *, expected_version: int | None = None) -> None:
        """Delete a thing, like DeleteThing.

        AWS "Returns successfully with no error if the deletion is successful or you specify a
        thing that doesn't exist" (API_DeleteThing). A thing with attached principals is refused
        with AWS's own message, "InvalidRequestException: Cannot delete. Thing <name> is still
        attached to one or more principals": detach them first (DetachThingPrincipal).

        Args:
            thing_name: the thing.
            expected_version: fail unless the thing's current version is this.

        Raises:
            InvalidRequestError: the name is malformed, or principals are still attached.
            VersionConflictError: ``expected_version`` differs from the current version.
        """
        _check_thing_name(thing_name)
        with self._write() as connection:
            thing = _select_thing(connection, self._arn, thing_name)
            if thing is None:
                return
            _check_expected_version(thing, expected_version)
            attached = connection.execute(
                "SELECT 1 FROM thing_principals WHERE thing_name = ? LIMIT 1", (thing_name,)
            ).fetchone()
            if attached is not None:
                raise InvalidRequestError(
                    f"Cannot delete. Thing {thing_name} is still attached to one or more principals"
                )
            connection.execute("DELETE FROM things WHERE thing_name = ?", (thing_name,))

    # --- thing types ----------------------------------------------------------------------

    def create_thing_type(
        self,
        thing_type_name: str,
        *,
        description: str | None = None,
        searchable_attributes: Sequence[str] = (),
        now: datetime | None = None,
    ) -> ThingType:
        """Create a thing type, like CreateThingType.

        As with CreateThing, repeating the call with the same properties returns the existing
        type; different properties raise ResourceAlreadyExistsException.

        Args:
            thing_type_name: 1-128 characters of ``[a-zA-Z0-9:_-]``.
            description: up to 2028 printable ASCII characters.
            searchable_attributes: up to three attribute names.
            now: the creation time (timezone-aware); defaults to the system clock.

        Returns:
            The new (or identical existing) thing type.

        Raises:
            InvalidRequestError: malformed input.
            ResourceAlreadyExistsError: the type exists with other properties.
            ValueError: ``now`` is naive.
        """
        _check_thing_type_name(thing_type_name)
        if description is not None and not (
            isinstance(description, str) and _THING_TYPE_DESCRIPTION.fullmatch(description)
        ):
            raise InvalidRequestError(
                "thingTypeDescription must be at most 2028 printable ASCII characters"
            )
        searchable = tuple(searchable_attributes)
        if isinstance(searchable_attributes, str):
            raise InvalidRequestError("searchableAttributes must be a list of attribute names")
        if len(searchable) > _MAX_SEARCHABLE_ATTRIBUTES:
            raise InvalidRequestError(
                f"searchableAttributes has {len(searchable)} names; at most "
                f"{_MAX_SEARCHABLE_ATTRIBUTES} are allowed"
            )
        for name in searchable:
            _check_attribute_name(name)
        if len(set(searchable)) != len(searchable):
            raise InvalidRequestError("searchableAttributes contains duplicates")
        moment = utc(now)
        with self._write() as connection:
            existing = _select_thing_type(connection, self._arn, thing_type_name)
            if existing is not None:
                if (existing.description, existing.searchable_attributes) == (
                    description,
                    searchable,
                ):
                    return existing
                raise ResourceAlreadyExistsError(
                    f"Thing type {thing_type_name} already exists with different properties"
                )
            thing_type = ThingType(
                thing_type_name=thing_type_name,
                thing_type_arn=self._arn(f"thingtype/{thing_type_name}"),
                thing_type_id=str(uuid.uuid4()),
                searchable_attributes=searchable,
                description=description,
                deprecated=False,
                creation_date=moment,
            )
            connection.execute(
                f"INSERT INTO thing_types ({_THING_TYPE_COLUMNS}) VALUES (?, ?, ?, ?, 0, NULL, ?)",
                (
                    thing_type_name,
                    thing_type.thing_type_id,
                    "\n".join(searchable),
                    description,
                    iso(moment),
                ),
            )
        return thing_type

    def describe_thing_type(self, thing_type_name: str) -> ThingType:
        """Return a thing type, like DescribeThingType.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such thing type.
        """
        _check_thing_type_name(thing_type_name)
        with self._read() as connection:
            thing_type = _select_thing_type(connection, self._arn, thing_type_name)
        if thing_type is None:
            raise ResourceNotFoundError(_thing_type_not_found(thing_type_name))
        return thing_type

    def list_thing_types(self, *, thing_type_name: str | None = None) -> list[ThingType]:
        """List thing types by name, like ListThingTypes.

        Args:
            thing_type_name: return only this type (ListThingTypes' ``thingTypeName`` filter).

        Returns:
            The thing types, sorted by name.
        """
        sql = f"SELECT {_THING_TYPE_COLUMNS} FROM thing_types"
        parameters: tuple[str, ...] = ()
        if thing_type_name is not None:
            sql += " WHERE thing_type_name = ?"
            parameters = (thing_type_name,)
        with self._lock:
            rows = self._connection.execute(
                sql + " ORDER BY thing_type_name", parameters
            ).fetchall()
        return [_thing_type(row, self._arn) for row in rows]

    def deprecate_thing_type(
        self, thing_type_name: str, undo: bool = False, *, now: datetime | None = None
    ) -> ThingType:
        """Deprecate a thing type (or undo that), like DeprecateThingType.

        A deprecated type cannot be given to new things or to things by UpdateThing; things
        that have it keep it.

        Args:
            thing_type_name: the thing type.
            undo: ``undoDeprecate``: make the type usable again.
            now: the deprecation time (timezone-aware); defaults to the system clock.

        Returns:
            The updated thing type (AWS returns an empty body).

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such thing type.
            ValueError: ``now`` is naive.
        """
        _check_thing_type_name(thing_type_name)
        moment = utc(now)
        with self._write() as connection:
            row = connection.execute(
                "UPDATE thing_types SET deprecated = ?, deprecation_date = ? "
                f"WHERE thing_type_name = ? RETURNING {_THING_TYPE_COLUMNS}",
                (0 if undo else 1, None if undo else iso(moment), thing_type_name),
            ).fetchone()
        if row is None:
            raise ResourceNotFoundError(_thing_type_not_found(thing_type_name))
        return _thing_type(row, self._arn)

    def delete_thing_type(self, thing_type_name: str) -> None:
        """Delete a thing type, like DeleteThingType.

        AWS: "You cannot delete a thing type if it has things associated with it. To delete a
        thing type, first mark it as deprecated by calling DeprecateThingType, then remove any
        associated things by calling UpdateThing to change the thing type on any associated
        thing, and finally use DeleteThingType" (API_DeleteThingType). AWS also waits five
        minutes after deprecation; we only require the deprecation.

        Raises:
            InvalidRequestError: the name is malformed, the type is not deprecated, or things
                still have it.
            ResourceNotFoundError: no such thing type.
        """
        _check_thing_type_name(thing_type_name)
        with self._write() as connection:
            thing_type = _select_thing_type(connection, self._arn, thing_type_name)
            if thing_type is None:
                raise ResourceNotFoundError(_thing_type_not_found(thing_type_name))
            if not thing_type.deprecated:
                raise InvalidRequestError(
                    f"Thing type {thing_type_name} must be deprecated before it can be deleted"
                )
            used = connection.execute(
                "SELECT 1 FROM things WHERE thing_type_name = ? LIMIT 1", (thing_type_name,)
            ).fetchone()
            if used is not None:
                raise InvalidRequestError(
                    f"Cannot delete thing type {thing_type_name}: things are still associated "
                    "with it"
                )
            connection.execute(
                "DELETE FROM thing_types WHERE thing_type_name = ?", (thing_type_name,)
            )
            connection.execute(
                "DELETE FROM resource_tags WHERE resource_arn = ?", (thing_type.thing_type_arn,)
            )

    # --- thing principals -----------------------------------------------------------------

    def attach_thing_principal(self, thing_name: str, principal_arn: str) -> None:
        """Attach a certificate to a thing, like AttachThingPrincipal (idempotent).

        Args:
            thing_name: an existing thing.
            principal_arn: a registered certificate's ARN.

        Raises:
            InvalidRequestError: malformed input, or a principal that is not a certificate ARN.
            ResourceNotFoundError: no such thing or certificate.
        """
        _check_thing_name(thing_name)
        with self._write() as connection:
            _require_thing(connection, thing_name)
            certificate_id = self._certificate_id_for(connection, principal_arn)
            connection.execute(
                "INSERT OR IGNORE INTO thing_principals (thing_name, certificate_id, attached_date)"
                " VALUES (?, ?, ?)",
                (thing_name, certificate_id, iso(utc(None))),
            )

    def detach_thing_principal(self, thing_name: str, principal_arn: str) -> None:
        """Detach a certificate from a thing, like DetachThingPrincipal.

        Detaching a certificate that is not attached succeeds (nothing to do).

        Raises:
            InvalidRequestError: malformed input, or a principal that is not a certificate ARN.
            ResourceNotFoundError: no such thing or certificate.
        """
        _check_thing_name(thing_name)
        with self._write() as connection:
            _require_thing(connection, thing_name)
            certificate_id = self._certificate_id_for(connection, principal_arn)
            connection.execute(
                "DELETE FROM thing_principals WHERE thing_name = ? AND certificate_id = ?",
                (thing_name, certificate_id),
            )

    def list_thing_principals(self, thing_name: str) -> list[str]:
        """Return the certificate ARNs attached to a thing, like ListThingPrincipals.

        Raises:
            InvalidRequestError: the name is malformed.
            ResourceNotFoundError: no such thing.
        """
        _check_thing_name(thing_name)
        with self._read() as connection:
            _require_thing(connection, thing_name)
            rows = connection.execute(
                "SELECT c.certificate_arn FROM thing_principals AS p "
                "JOIN certificates AS c USING (certificate_id) "
                "WHERE p.thing_name = ? ORDER BY p.attached_date, c.certificate_arn",
                (thing_name,),
            ).fetchall()
        return [arn for (arn,) in rows]

    def list_principal_things(self, principal_arn: str) -> list[str]:
        """Return the names of the things a certificate is attached to (ListPrincipalThings).

        Raises:
            InvalidRequestError: the principal is not a certificate ARN.
            ResourceNotFoundError: the certificate is not registered.
        """
        with self._read() as connection:
            certificate_id = self._certificate_id_for(connection, principal_arn)
            rows = connection.execute(
                "SELECT thing_name FROM thing_principals WHERE certificate_id = ? "
                "ORDER BY thing_name",
                (certificate_id,),
            ).fetchall()
        return [name for (name,) in rows]


def thing_from_row(row: Sequence[Any], arn: Callable[[str], str]) -> Thing:
    """Build a Thing from a row selected with ``THING_COLUMNS``.

    Args:
        row: the selected values.
        arn: builds an ARN from ``<type>/<name>`` (``Store._arn``).

    Returns:
        The thing.
    """
    name, thing_id, type_name, attributes, version = row
    return Thing(
        thing_name=name,
        thing_arn=arn(f"thing/{name}"),
        thing_id=thing_id,
        thing_type_name=type_name,
        attributes=load_attributes(attributes),
        version=int(version),
    )


def _thing_type(row: Sequence[Any], arn: Callable[[str], str]) -> ThingType:
    name, type_id, searchable, description, deprecated, deprecation_date, created = row
    return ThingType(
        thing_type_name=name,
        thing_type_arn=arn(f"thingtype/{name}"),
        thing_type_id=type_id,
        searchable_attributes=tuple(searchable.split("\n")) if searchable else (),
        description=description,
        deprecated=bool(deprecated),
        creation_date=from_iso(created),
        deprecation_date=from_iso(deprecation_date) if deprecation_date else None,
    )


def _select_thing(
    connection: sqlite3.Connection, arn: Callable[[str], str], thing_name: str
) -> Thing | None:
    row = connection.execute(
        f"SELECT {THING_COLUMNS} FROM things WHERE thing_name = ?", (thing_name,)
    ).fetchone()
    return None if row is None else thing_from_row(row, arn)


def _select_thing_type(
    connection: sqlite3.Connection, arn: Callable[[str], str], thing_type_name: str
) -> ThingType | None:
    row = connection.execute(
        f"SELECT {_THING_TYPE_COLUMNS} FROM thing_types WHERE thing_type_name = ?",
        (thing_type_name,),
    ).fetchone()
    return None if row is None else _thing_type(row, arn)


def _require_thing(connection: sqlite3.Connection, thing_name: str) -> None:
    row = connection.execute("SELECT 1 FROM things WHERE thing_name = ?", (thing_name,)).fetchone()
    if row is None:
        raise ResourceNotFoundError(_thing_not_found(thing_name))


def _require_usable_thing_type(connection: sqlite3.Connection, thing_type_name: str) -> None:
    """Check that a thing type exists and is not deprecated (CreateThing / UpdateThing)."""
    row = connection.execute(
        "SELECT deprecated FROM thing_types WHERE thing_type_name = ?", (thing_type_name,)
    ).fetchone()
    if row is None:
        raise ResourceNotFoundError(_thing_type_not_found(thing_type_name))
    if row[0]:
        raise InvalidRequestError(
            f"Can not create new thing with deprecated thing type: {thing_type_name}"
        )


def _check_expected_version(thing: Thing, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != thing.version:
        raise VersionConflictError(
            f"The version for thing {thing.thing_name} does not match the expected version "
            f"(expected {expected_version}, current {thing.version})"
        )


def _check_thing_name(thing_name: str) -> None:
    if not isinstance(thing_name, str) or not _THING_NAME.fullmatch(thing_name):
        raise InvalidRequestError(
            f"thingName {thing_name!r} is invalid: 1-128 characters of [a-zA-Z0-9:_-]"
        )


def _check_thing_type_name(thing_type_name: str) -> None:
    if not isinstance(thing_type_name, str) or not _THING_NAME.fullmatch(thing_type_name):
        raise InvalidRequestError(
            f"thingTypeName {thing_type_name!r} is invalid: 1-128 characters of [a-zA-Z0-9:_-]"
        )


def _check_attribute_name(name: str) -> None:
    if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"attribute name {name!r} is invalid: 1-128 characters of [a-zA-Z0-9_.,@/:#-]"
        )


def _check_attributes(
    attributes: Mapping[str, str], *, allow_over_limit: bool = False
) -> Mapping[str, str]:
    """Validate an attribute payload and return it as a sorted plain dict.

    ``allow_over_limit`` defers the count check to after a merge (which may remove some).
    """
    if not isinstance(attributes, Mapping):
        raise InvalidRequestError("attributes must be a map of attribute names to values")
    checked: dict[str, str] = {}
    for name, value in sorted(attributes.items()):
        _check_attribute_name(name)
        if not isinstance(value, str) or not _ATTRIBUTE_VALUE.fullmatch(value):
            raise InvalidRequestError(
                f"the value of attribute {name!r} is invalid: at most 800 characters of "
                r"[a-zA-Z0-9_.,@/:#=\[\]-]"
            )
        checked[name] = value
    if not allow_over_limit:
        _check_attribute_count(checked)
    return checked


def updated_attributes(
    current: Mapping[str, str],
    attributes: Mapping[str, str] | None,
    given: Mapping[str, str],
    *,
    merge: bool,
) -> dict[str, str]:
    """An AttributePayload applied to ``current`` (UpdateThing, UpdateThingGroup).

    Without ``merge`` the given attributes replace the stored ones, with it they are merged in;
    an empty value removes an attribute. ``attributes`` None leaves ``current`` as it is.

    Args:
        current: the stored attributes.
        attributes: the payload's attributes as sent, or None.
        given: the same, validated (``_check_attributes``).
        merge: the payload's ``merge``.

    Raises:
        InvalidRequestError: more than 50 attributes would remain.
    """
    if attributes is None:
        return dict(current)
    merged = dict(current) | dict(given) if merge else dict(given)
    merged = {key: value for key, value in merged.items() if value}
    _check_attribute_count(merged)
    return merged


def _check_attribute_count(attributes: Mapping[str, str]) -> None:
    if len(attributes) > MAX_THING_ATTRIBUTES:
        raise InvalidRequestError(
            f"a thing can have at most {MAX_THING_ATTRIBUTES} attributes, not {len(attributes)}"
        )


def _thing_not_found(thing_name: str) -> str:
    return f"ResourceNotFoundException: Thing {thing_name} cannot be found."


def _thing_type_not_found(thing_type_name: str) -> str:
    return f"ResourceNotFoundException: Thing type {thing_type_name} cannot be found."
