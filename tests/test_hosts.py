"""Which hosts and addresses stay on this machine (``aws_iot_mock.hosts``)."""

from __future__ import annotations

import pytest

from aws_iot_mock.hosts import is_loopback_host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("fe80::1%lo", False),
        ("::1%lo", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, *, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
