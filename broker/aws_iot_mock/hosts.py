"""Host names and addresses: which ones stay on this machine, and server-name comparison.

Light on purpose (the standard library only): ``serve`` checks its server certificates' names
before the data doors listen, without importing ``cryptography``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aws_iot_mock.errors import CertificateError

__all__ = ["ip_address_or_none", "is_loopback_host", "normalize_server_names", "server_name_set"]


def is_loopback_host(host: str) -> bool:
    """Whether a bind address, socket address or host is loopback only.

    ``localhost``, 127/8 and ``::1`` are; an IPv6 zone (``%lo``) is ignored.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def ip_address_or_none(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Return ``name`` as an IP address if it is an IP literal, else None."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def normalize_server_names(names: Sequence[str]) -> tuple[str, ...]:
    """Validate server names and drop duplicates, keeping the first spelling and the order.

    Host names compare case-insensitively (RFC 4343); IP literals compare by address, so
    ``::1`` and ``0::1`` are the same name.

    Args:
        names: host names and IP literals.

    Returns:
        The distinct names, stripped, in their first-seen order.

    Raises:
        CertificateError: ``names`` is empty, or a name is blank or not ASCII.
    """
    seen: set[str] = set()
    result: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            raise CertificateError("server names must not be blank")
        if not name.isascii():
            raise CertificateError(
                f"server name {name!r} is not ASCII; give internationalized names in their "
                "A-label (punycode) form"
            )
        key = _name_key(name)
        if key not in seen:
            seen.add(key)
            result.append(name)
    if not result:
        raise CertificateError("at least one server name is required")
    return tuple(result)


def server_name_set(names: Sequence[str]) -> frozenset[str]:
    """Return the comparison keys of server names, to tell whether two name lists differ.

    Args:
        names: host names and IP literals.

    Returns:
        Lowercased host names and canonical IP addresses; equal sets mean equal certificates
        (up to the choice of CN).

    Raises:
        CertificateError: as ``normalize_server_names``.
    """
    return frozenset(_name_key(name) for name in normalize_server_names(names))


def _name_key(name: str) -> str:
    """Return the comparison key of a server name (address for IPs, lowercase for hosts)."""
    address = ip_address_or_none(name)
    return str(address) if address is not None else name.lower()
