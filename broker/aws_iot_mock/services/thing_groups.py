"""What Jobs and fleet provisioning need of thing groups: a small interface to the registry.

A job may target thing groups (its things are the group's members; a CONTINUOUS job also runs on
things that join the group later), and a provisioning template may put the new thing into groups
(``AWS::IoT::Thing`` ``ThingGroups``). Thing groups are the registry's; the services only read
members and add a thing, through `ThingGroups`. `NoThingGroups` is the stand-in for a registry
without thing groups: every group is unknown, so a group target is refused as AWS refuses a group
that does not exist.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

__all__ = ["NoThingGroups", "ThingGroupError", "ThingGroups"]


class ThingGroupError(LookupError):
    """A thing group that does not exist, or that cannot take the thing; the message says which."""


class ThingGroups(Protocol):
    """Thing-group membership, as the registry keeps it."""

    def members(self, group_name: str) -> Collection[str] | None:
        """The names of the things in ``group_name`` (and its child groups), None if none such."""
        ...

    def add_thing(self, group_name: str, thing_name: str) -> None:
        """Add a thing to a group (AddThingToThingGroup); raises `ThingGroupError`."""
        ...


class NoThingGroups:
    """A registry without thing groups: no group exists."""

    def members(self, group_name: str) -> Collection[str] | None:
        """None: no group exists."""
        return None

    def add_thing(self, group_name: str, thing_name: str) -> None:
        """Always refused: the group does not exist."""
        raise ThingGroupError(f"Thing group {group_name} does not exist")
