"""In-memory MQTT connections to a running broker's device core: no TLS, no socket.

``open_memory_connection(broker, device)`` returns an ``asyncio.StreamReader`` and a writer with
the ``asyncio.StreamWriter`` methods the raw test clients use, wired to a real
``MqttDoorHandler`` (the same shell the TLS door uses) over an in-memory ``ByteChannel``. The
device core, its sessions, policies, logs and timers are the broker's own; only TLS and TCP are
left out. Tests that are about those keep a socket twin (``transport`` = ``tls``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import ssl
import weakref

from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.doors.mqtt_door import FlushScheduler, MqttDoorHandler
from aws_iot_mock.doors.tls_door import DoorIdentity
from aws_iot_mock.logs.cloudwatch import ConnectionFacts
from aws_iot_mock.server.app import Broker
from aws_iot_mock.tls.door_routes import DoorKind

__all__ = ["MemoryWriter", "open_memory_connection"]

# Source ports of in-memory connections (what records show as sourcePort): above any real one.
_PORTS = itertools.count(70000)
_SCHEDULERS: weakref.WeakKeyDictionary[DeviceCore, FlushScheduler] = weakref.WeakKeyDictionary()


class _MemoryChannel:
    """The broker side of the link: a ``ByteChannel`` writing into the client's reader."""

    def __init__(
        self, identity: DoorIdentity, facts: ConnectionFacts, inbound: asyncio.StreamReader
    ):
        self._identity = identity
        self._facts = facts
        self._inbound = inbound
        self.handler: MqttDoorHandler | None = None
        self.closed = False

    @property
    def identity(self) -> DoorIdentity:
        return self._identity

    @property
    def facts(self) -> ConnectionFacts:
        return self._facts

    def write(self, data: bytes) -> None:
        if not self.closed:
            self._inbound.feed_data(data)

    def close(self) -> None:
        """The broker closes: the client reads EOF, then the transport is gone."""
        if self.closed:
            return
        self.closed = True
        self._inbound.feed_eof()
        asyncio.get_running_loop().call_soon(self._lost, None)

    def _lost(self, exc: Exception | None) -> None:
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.connection_lost(exc)

    def pause_reading(self) -> None:
        """Nothing to pause: the client's writes are delivered one call at a time."""

    def resume_reading(self) -> None:
        """See ``pause_reading``."""


class _MemoryTransport:
    def __init__(self, writer: MemoryWriter) -> None:
        self._writer = writer

    def abort(self) -> None:
        """The client's TCP connection drops (no DISCONNECT, no close_notify)."""
        self._writer.drop(ConnectionResetError("in-memory connection reset"))


class MemoryWriter:
    """The client side of the link, shaped like the ``asyncio.StreamWriter`` the tests use."""

    def __init__(self, channel: _MemoryChannel, port: int) -> None:
        self._channel = channel
        self._port = port
        self._loop = asyncio.get_running_loop()
        self.transport = _MemoryTransport(self)

    def write(self, data: bytes) -> None:
        # Delivered on the next loop turn, as bytes from a socket would be.
        self._loop.call_soon(self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        handler = self._channel.handler
        if handler is not None and not self._channel.closed:
            handler.data_received(data)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def is_closing(self) -> bool:
        return self._channel.closed

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", self._port) if name in ("sockname", "peername") else None

    def close(self) -> None:
        """Close as a TLS client does: close_notify, then the connection ends."""
        self._loop.call_soon(self._close_notify)

    def _close_notify(self) -> None:
        channel = self._channel
        if channel.closed:
            return
        handler = channel.handler
        if handler is not None:
            handler.peer_closed(
                "CLIENT_INITIATED_DISCONNECT", "The client sent close_notify", failure=False
            )
        channel.close()

    def drop(self, exc: Exception) -> None:
        channel = self._channel
        if channel.closed:
            return
        channel.closed = True
        channel._inbound.feed_eof()
        self._loop.call_soon(channel._lost, exc)

    async def wait_closed(self) -> None:
        await asyncio.sleep(0)


async def open_memory_connection(
    broker: Broker, certificate_pem: bytes
) -> tuple[asyncio.StreamReader, MemoryWriter]:
    """Connect to ``broker``'s device core as the holder of ``certificate_pem``.

    The certificate is the principal, as the TLS door would establish it after a successful
    handshake; its registry status and policies are checked by the core as for any connection.
    """
    der = ssl.PEM_cert_to_DER_cert(certificate_pem.decode("ascii"))
    certificate_id = hashlib.sha256(der).hexdigest()
    port = next(_PORTS)
    principal = Principal.certificate(certificate_id)  # as the TLS door: no DER kept
    identity = DoorIdentity(
        door=DoorKind.MQTT,
        principal=principal,
        server_name=broker.endpoint,
        security_policy=broker.config.tls.security_policy,
        tls_version="memory",
        cipher="memory",
        alpn=None,
        source_ip="127.0.0.1",
        source_port=port,
    )
    facts = ConnectionFacts(
        account_id=broker.config.account_id,
        source_ip="127.0.0.1",
        source_port=port,
        principal_id=certificate_id,
    )
    inbound = asyncio.StreamReader()
    channel = _MemoryChannel(identity, facts, inbound)
    scheduler = _SCHEDULERS.setdefault(broker.core, FlushScheduler())
    channel.handler = MqttDoorHandler(channel, broker.core, scheduler)
    return inbound, MemoryWriter(channel, port)
