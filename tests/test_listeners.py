"""Binding the listeners: every door bound, an optional one off with its reason, and errors.

A listener that cannot bind names itself, the address, why, and the fix.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_iot_mock.config import ListenerConfig
from aws_iot_mock.doors.listeners import bind_failure
from aws_iot_mock.errors import ListenerBindError
from aws_iot_mock.server.app import Broker
from tests.conftest import make_config


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port this process is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


async def test_every_door_is_bound_and_reported(tmp_path: Path) -> None:
    async with Broker(make_config(tmp_path)) as broker:
        ports = broker.ports
        assert set(ports) == {"mqtt", "https", "alpn"}
        assert len(set(ports.values())) == 3
        assert broker.port == ports["mqtt"]
        assert [(item.door, item.off_reason) for item in broker.listeners] == [
            ("mqtt", None),
            ("https", None),
            ("alpn", None),
        ]


async def test_a_required_listener_that_cannot_bind_stops_the_start(
    tmp_path: Path, busy_port: int
) -> None:
    config = dataclasses.replace(
        make_config(tmp_path),
        listeners=(ListenerConfig("mqtt", 0), ListenerConfig("https", busy_port)),
    )
    broker = Broker(config)
    with pytest.raises(ListenerBindError) as info:
        await broker.start()
    message = str(info.value)
    assert message.startswith(f"the https listener (127.0.0.1:{busy_port}): address already in use")
    assert f"(held by pid {os.getpid()} " in message
    assert "--https-port 0 picks a free one" in message
    assert "--https-port off disables it" in message
    assert "\n" not in message


async def test_an_optional_listener_that_cannot_bind_is_off_with_its_reason(
    tmp_path: Path, busy_port: int
) -> None:
    config = dataclasses.replace(
        make_config(tmp_path),
        listeners=(ListenerConfig("mqtt", 0), ListenerConfig("alpn", busy_port, optional=True)),
    )
    async with Broker(config) as broker:
        assert set(broker.ports) == {"mqtt"}
        off = broker.listeners[1]
        assert (off.door, off.port) == ("alpn", None)
        assert off.off_reason is not None
        assert "address already in use" in off.off_reason
        assert "--alpn-port" in off.off_reason


def test_a_privileged_port_names_every_way_to_get_it() -> None:
    listener = ListenerConfig("alpn", 443, optional=True)
    why = bind_failure(listener, PermissionError(errno.EACCES, "Permission denied"))
    assert why.startswith("the alpn listener (127.0.0.1:443): permission denied")
    assert "Run as root" in why
    assert "setcap cap_net_bind_service=+ep" in why
    assert "net.ipv4.ip_unprivileged_port_start=443" in why
    assert "--alpn-port N" in why


def test_an_address_not_on_this_machine_says_so() -> None:
    listener = ListenerConfig("mqtt", 8883, host="10.255.255.1")
    why = bind_failure(listener, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    assert why.startswith("the mqtt listener (10.255.255.1:8883): Cannot assign requested address")
    assert "check host" in why


# Binds an IP literal and a host name with uvloop in a fresh interpreter; prints each bound
# address and whether the idna codec (with stringprep and unicodedata) had been imported.
_BIND_IN_A_FRESH_PROCESS = """
import asyncio, json, sys
import uvloop
from aws_iot_mock.config import ListenerConfig
from aws_iot_mock.doors.listeners import bind_listener

async def bind(host):
    server, bound = await bind_listener(ListenerConfig("mqtt", 0, host=host), asyncio.Protocol)
    assert server is not None
    reader, writer = await asyncio.open_connection(host, bound.port)  # it accepts
    writer.close()
    server.close()
    return [bound.host, bound.port > 0, "encodings.idna" in sys.modules]

print(json.dumps([uvloop.run(bind(host)) for host in sys.argv[1:]]))
"""


def _bind_in_a_fresh_process(*hosts: str) -> list[list[object]]:
    result = subprocess.run(
        [sys.executable, "-c", _BIND_IN_A_FRESH_PROCESS, *hosts],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: list[list[object]] = json.loads(result.stdout)
    return answer


def test_an_ip_literal_is_bound_without_the_idna_codec() -> None:
    # uvloop's create_server encodes any host with idna; an address needs no lookup.
    assert _bind_in_a_fresh_process("127.0.0.1") == [["127.0.0.1", True, False]]


def test_a_host_name_is_still_resolved_by_the_loop() -> None:
    # The twin: a name goes through the loop's lookup (and its idna encoding).
    assert _bind_in_a_fresh_process("127.0.0.1", "localhost") == [
        ["127.0.0.1", True, False],
        ["localhost", True, True],
    ]


def test_an_ipv6_literal_is_bound_without_the_idna_codec_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    assert _bind_in_a_fresh_process("::1") == [["::1", True, False]]
