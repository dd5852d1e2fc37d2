"""Host names and addresses: which ones stay on this machine."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host"]


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
