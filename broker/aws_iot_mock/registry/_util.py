"""Helpers shared by the registry modules: UTC times, ISO-8601 text, JSON columns."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from aws_iot_mock.registry.errors import InvalidRequestError

# AWS: certificateId "Length Constraints: Fixed length of 64. Pattern: (0x)?[a-fA-F0-9]+".
# With a fixed length of 64 a "0x" prefix would leave 62 digits, which no SHA-256 ID has, so we
# accept exactly 64 hex digits.
_CERTIFICATE_ID = re.compile(r"[0-9a-fA-F]{64}")


def normalize_certificate_id(certificate_id: str) -> str:
    """Validate a certificate ID and return it in lowercase.

    Args:
        certificate_id: 64 hex digits, any case.

    Returns:
        The ID in lowercase.

    Raises:
        InvalidRequestError: not 64 hex digits (AWS answers InvalidRequestException); a
            ``CertificateError`` subclass.
    """
    if not isinstance(certificate_id, str) or not _CERTIFICATE_ID.fullmatch(certificate_id):
        raise InvalidRequestError(
            f"InvalidRequestException: certificateId {certificate_id!r} is not a certificate ID "
            "(expected exactly 64 hexadecimal characters)"
        )
    return certificate_id.lower()


def utc(now: datetime | None) -> datetime:
    """Return ``now`` in UTC, or the current time if None.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def iso(moment: datetime) -> str:
    """Format a time as ISO-8601 UTC with microseconds, e.g. ``2026-11-26T08:20:00.123000+00:00``.

    A fixed width and zone make stored strings sort in time order.
    """
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    """Parse a time stored by ``iso`` (always timezone-aware UTC)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def dump_attributes(attributes: Mapping[str, str]) -> str:
    """Encode an attribute map as canonical JSON (sorted keys) for a TEXT column."""
    return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"))


def load_attributes(text: str) -> Mapping[str, str]:
    """Decode an attribute map stored by ``dump_attributes`` as a read-only mapping."""
    loaded = json.loads(text)
    return MappingProxyType({str(key): str(value) for key, value in sorted(loaded.items())})
