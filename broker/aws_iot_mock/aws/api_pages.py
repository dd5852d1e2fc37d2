"""Pagination of AWS list operations (``maxResults``, ``nextToken``). Pure.

The AWS IoT list verbs take ``maxResults`` ("Valid Range: Minimum value of 1. Maximum value of
250.", e.g. https://docs.aws.amazon.com/iot/latest/apireference/API_ListJobs.html) and return a
``nextToken`` that clients pass back unchanged; here it is the next offset, base64url-encoded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Final, TypeVar

from aws_iot_mock.aws.api_errors import AwsApiError

__all__ = ["MAX_RESULTS", "page"]

MAX_RESULTS: Final = 250
_T = TypeVar("_T")


def page(
    items: Sequence[_T],
    max_results: int | None,
    next_token: str | None,
    *,
    limit: int = MAX_RESULTS,
    default: int | None = None,
    name: str = "maxResults",
) -> tuple[Sequence[_T], str | None]:
    """One page of ``items`` and the token of the next (None on the last page).

    Args:
        items: everything, in the order pages walk it.
        max_results: the requested page size, or None for ``default`` (itself ``limit`` when
            None).
        next_token: the token of the previous page, or None for the first.
        limit: the operation's maximum page size (its model's range).
        default: the page size when none is asked for.
        name: the parameter's name for the error message (``maxResults``, ``pageSize``).

    Raises:
        AwsApiError: InvalidRequestException for a bad page size or ``nextToken``.
    """
    if max_results is None:
        max_results = limit if default is None else default
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise AwsApiError("InvalidRequestException", f"{name} must be an integer")
    if not 1 <= max_results <= limit:
        raise AwsApiError("InvalidRequestException", f"{name} must be 1-{limit}")
    start = 0
    if next_token is not None:
        try:
            start = int(base64.urlsafe_b64decode(next_token.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AwsApiError("InvalidRequestException", "Invalid nextToken") from None
    end = start + max_results
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], token
