"""Resource tags (TagResource, UntagResource, ListTagsForResource) of the registry's resources.

The taggable resources here are the ones whose create verbs take ``tags``: policies, thing types,
thing groups, CA certificates and domain configurations. Tags are keyed by ARN and removed with
their resource.

Limits from the AWS IoT API reference (API_Tag, API_TagResource) and "Tagging your AWS IoT
resources" (https://docs.aws.amazon.com/iot/latest/developerguide/tagging-iot.html): a key is
1-128 characters, a value at most 256, at most 50 tags per resource, and the ``aws:`` prefix is
reserved for AWS.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence

from aws_iot_mock.errors import ResourceNotFoundError
from aws_iot_mock.registry._store import _IOT_ARN, Store
from aws_iot_mock.registry.errors import InvalidRequestError, LimitExceededError

__all__ = ["MAX_TAGS_PER_RESOURCE", "TAGGABLE_RESOURCE_TYPES", "TagsMixin"]

MAX_TAGS_PER_RESOURCE = 50
# API_Tag: "Key ... Length Constraints: Minimum length of 1. Maximum length of 128. Pattern:
# [\p{L}\p{Z}\p{N}_.:/=+\-@]*"; "Value ... Minimum length of 0. Maximum length of 256."
_TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}")
_TAG_VALUE_MAX = 256
# ARN resource type -> (table, key column): where a taggable resource's existence is checked.
TAGGABLE_RESOURCE_TYPES: Mapping[str, tuple[str, str]] = {
    "policy": ("policies", "policy_name"),
    "thingtype": ("thing_types", "thing_type_name"),
    "thinggroup": ("thing_groups", "thing_group_name"),
    "cacert": ("ca_certificates", "certificate_id"),
    "domainconfiguration": ("domain_configurations", "domain_configuration_name"),
}


class TagsMixin(Store):
    """Tags of registry resources (mixed into CertificateRegistry)."""

    def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags on a resource, like TagResource.

        Raises:
            InvalidRequestError: a malformed key or value, or a resource that is not taggable.
            LimitExceededError: the resource would have more than 50 tags.
            ResourceNotFoundError: no such resource.
        """
        checked = check_tags(tags)
        with self._write() as connection:
            self._require_taggable(connection, resource_arn)
            existing = {
                key
                for (key,) in connection.execute(
                    "SELECT tag_key FROM resource_tags WHERE resource_arn = ?", (resource_arn,)
                ).fetchall()
            }
            if len(existing | set(checked)) > MAX_TAGS_PER_RESOURCE:
                raise LimitExceededError(
                    f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags"
                )
            connection.executemany(
                "INSERT INTO resource_tags (resource_arn, tag_key, tag_value) VALUES (?, ?, ?) "
                "ON CONFLICT (resource_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                [(resource_arn, key, value) for key, value in checked.items()],
            )

    def untag_resource(self, resource_arn: str, tag_keys: Sequence[str]) -> None:
        """Remove tags by key, like UntagResource (absent keys are ignored).

        Raises:
            InvalidRequestError: a resource that is not taggable.
            ResourceNotFoundError: no such resource.
        """
        with self._write() as connection:
            self._require_taggable(connection, resource_arn)
            connection.executemany(
                "DELETE FROM resource_tags WHERE resource_arn = ? AND tag_key = ?",
                [(resource_arn, key) for key in tag_keys],
            )

    def list_tags_for_resource(self, resource_arn: str) -> dict[str, str]:
        """A resource's tags by key, like ListTagsForResource.

        Raises:
            InvalidRequestError: a resource that is not taggable.
            ResourceNotFoundError: no such resource.
        """
        with self._read() as connection:
            self._require_taggable(connection, resource_arn)
            rows = connection.execute(
                "SELECT tag_key, tag_value FROM resource_tags WHERE resource_arn = ? "
                "ORDER BY tag_key",
                (resource_arn,),
            ).fetchall()
        return dict(rows)

    def _require_taggable(self, connection: sqlite3.Connection, resource_arn: str) -> None:
        match = _IOT_ARN.fullmatch(resource_arn) if isinstance(resource_arn, str) else None
        if match is None:
            raise InvalidRequestError(f"{resource_arn!r} is not an AWS IoT resource ARN")
        region, account, kind, resource = match.groups()
        where = TAGGABLE_RESOURCE_TYPES.get(kind)
        if where is None:
            raise InvalidRequestError(
                f"{kind} resources cannot be tagged here; taggable: "
                f"{', '.join(TAGGABLE_RESOURCE_TYPES)}"
            )
        table, column = where
        name = resource.split("/", 1)[0] if kind == "domainconfiguration" else resource
        row = connection.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (name,)).fetchone()
        if kind == "domainconfiguration" and row is not None:
            row = connection.execute(
                "SELECT 1 FROM domain_configurations WHERE domain_configuration_name = ? "
                "AND json_extract(settings, '$.arn') = ?",
                (name, resource_arn),
            ).fetchone()
        if row is None or (region, account) != (self._region, self._account_id):
            raise ResourceNotFoundError(
                f"ResourceNotFoundException: The resource {resource_arn} does not exist"
            )


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Validate a tag map (keys 1-128 characters, values at most 256, no ``aws:`` keys).

    Raises:
        InvalidRequestError: a malformed or reserved key, or a bad value.
    """
    if not isinstance(tags, Mapping):
        raise InvalidRequestError("tags must be a list of {Key, Value}")
    checked: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not _TAG_KEY.fullmatch(key):
            raise InvalidRequestError(
                f"Tag key {key!r} is invalid: 1-128 letters, digits, spaces and _.:/=+-@"
            )
        if key.lower().startswith("aws:"):
            raise InvalidRequestError(f"Tag key {key!r}: the aws: prefix is reserved for AWS")
        if not isinstance(value, str) or len(value) > _TAG_VALUE_MAX:
            raise InvalidRequestError(
                f"The value of tag {key!r} must be a string of at most {_TAG_VALUE_MAX} characters"
            )
        checked[key] = value
    if len(checked) > MAX_TAGS_PER_RESOURCE:
        raise LimitExceededError(f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags")
    return checked
