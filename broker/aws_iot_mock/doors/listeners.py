"""Binding the configured listeners, with errors that name the listener and the fix.

A listener that cannot bind stops ``serve`` with one line that says which door, which address,
why, and what to do, unless the configuration marks it optional (the default 443 listener: a
non-root user cannot bind it); then the broker serves the other doors and reports why this one
is off and how to get it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aws_iot_mock.config import DOOR_FLAGS, ListenerConfig
from aws_iot_mock.errors import ListenerBindError
from aws_iot_mock.hosts import is_loopback_host

__all__ = [
    "AcceptFailureLog",
    "BoundListener",
    "ListenerBindError",
    "bind_listener",
    "door_flag",
    "is_loopback_host",
]

# Ports below this need privileges on Linux (net.ipv4.ip_unprivileged_port_start's default).
_PRIVILEGED_BELOW = 1024


@dataclass(frozen=True)
class BoundListener:
    """A configured listener after start: its bound port, or why it is off.

    Attributes:
        door: the listener's door.
        host: the configured bind address.
        port: the port actually bound (the one port 0 picked), or None when off.
        off_reason: why an optional listener is off and how to get it; None when bound.
    """

    door: str
    host: str
    port: int | None
    off_reason: str | None = None


def door_flag(door: str) -> str:
    """The ``serve`` flag that sets ``door``'s port."""
    return DOOR_FLAGS.get(door, f"--{door}-port")


async def bind_listener(
    listener: ListenerConfig, protocol_factory: Callable[[], asyncio.Protocol]
) -> tuple[asyncio.Server | None, BoundListener]:
    """Bind ``listener``.

    Returns:
        The server and what was bound; ``(None, off)`` for an optional listener that could not
        bind.

    Raises:
        ListenerBindError: a required listener could not bind.
    """
    loop = asyncio.get_running_loop()
    try:
        sock = _bound_socket(listener.host, listener.port)
        if sock is None:
            server = await loop.create_server(
                protocol_factory, host=listener.host, port=listener.port, reuse_address=True
            )
        else:
            try:
                server = await loop.create_server(protocol_factory, sock=sock)
            except BaseException:
                sock.close()
                raise
    except OSError as exc:
        why = bind_failure(listener, exc)
        if listener.optional:
            return None, BoundListener(listener.door, listener.host, None, why)
        raise ListenerBindError(why) from None
    sockets = server.sockets
    port = int(sockets[0].getsockname()[1]) if sockets else listener.port
    return server, BoundListener(listener.door, listener.host, port)


def _bound_socket(host: str, port: int) -> socket.socket | None:
    """A non-blocking TCP socket bound to ``host``:``port`` if ``host`` is an IP literal.

    What ``loop.create_server(host=host, port=port, reuse_address=True)`` binds for one
    address, without its name lookup: uvloop encodes every host with the ``idna`` codec, whose
    first use imports it, ``stringprep`` and ``unicodedata`` (about 3 ms of CPU before the
    first handshake). None for a host name (``localhost``) or a scoped IPv6 address: the loop
    resolves those.

    Raises:
        OSError: the address cannot be bound (the socket is closed).
    """
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As create_server does: an IPv6 listener does not take the IPv4 port too.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock
    return None


def bind_failure(listener: ListenerConfig, exc: OSError) -> str:
    """One line: which listener, why it could not bind, and the fix."""
    flag = door_flag(listener.door)
    where = f"the {listener.door} listener ({listener.host}:{listener.port})"
    other = f"choose another port with {flag} N ({flag} 0 picks a free one, {flag} off disables it)"
    if exc.errno in (errno.EACCES, errno.EPERM) and listener.port < _PRIVILEGED_BELOW:
        return (
            f"{where}: permission denied: ports below {_PRIVILEGED_BELOW} need privileges. Run "
            "as root, or `sudo setcap cap_net_bind_service=+ep "
            f"{os.path.realpath(sys.executable)}`, or `sudo sysctl "
            f"net.ipv4.ip_unprivileged_port_start={listener.port}`, or {other}"
        )
    if exc.errno == errno.EADDRINUSE:
        holder = _port_holder(listener.port)
        held = f" (held by {holder})" if holder else ""
        return f"{where}: address already in use{held}; stop it, or {other}"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"{where}: {exc.strerror or exc}: not an address of this machine; check host"
    return f"{where}: {exc.strerror or exc}; {other}"


def _port_holder(port: int) -> str | None:
    """Best effort: "pid N (command)" of the process listening on TCP ``port``, from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is "HEXIP:HEXPORT"; state 0A is LISTEN.
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            descriptors = list((proc / "fd").iterdir())
        except OSError:
            continue
        if any(_link(fd) in wanted for fd in descriptors):
            try:
                command = (proc / "comm").read_text(encoding="utf-8").strip()
            except OSError:
                command = "?"
            return f"pid {proc.name} ({command})"
    return None


def _link(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # closed meanwhile, or not ours to read
        return None


# errno values of an accept() that failed for lack of a resource, not because of the peer.
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class AcceptFailureLog:
    """Turns "out of file descriptors" at accept time into a ``TOO_MANY_OPEN_FILES`` record.

    Two ways in, because the event loops differ: asyncio reports a failed ``accept()`` to the
    loop's exception handler (then retries after a pause), which this becomes; uvloop (libuv)
    accepts and at once closes connections it has no descriptor for, and tells nobody, so every
    accepted socket's descriptor number is also checked (``note_descriptor``): descriptors are
    allocated lowest first, so one within ``reserve`` of the soft limit means the process is
    about to refuse connections. One record per second at most while it lasts; every other
    exception goes to the handler that was there before.

    Args:
        emit: where records go (the broker's log sink).
        record: builds the record from the OSError's text.
        monotonic: a clock in seconds.
        reserve: descriptors kept for the broker's own files (stores, logs, certificates).
    """

    def __init__(
        self,
        emit: Callable[[dict[str, object]], None],
        record: Callable[[str], dict[str, object]],
        monotonic: Callable[[], float],
        *,
        reserve: int = 16,
    ) -> None:
        self._reserve = reserve
        self._soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._emit = emit
        self._record = record
        self._monotonic = monotonic
        self._last: float | None = None
        self._previous: Callable[[asyncio.AbstractEventLoop, dict[str, object]], object] | None = (
            None
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Become ``loop``'s exception handler, keeping the current one for everything else."""
        self._loop = loop
        # Read now: ``serve`` raises the soft limit before the broker starts.
        self._soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self._previous = loop.get_exception_handler()
        loop.set_exception_handler(self)

    def uninstall(self) -> None:
        """Give the loop its previous handler back."""
        loop, previous, self._loop = self._loop, self._previous, None
        # Only if nobody replaced it meanwhile (``is`` would narrow ``self`` for mypy).
        if loop is not None and id(loop.get_exception_handler()) == id(self):
            loop.set_exception_handler(previous)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """Handle one exception context of ``loop``."""
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in _OUT_OF_DESCRIPTORS:
            self._report(f"accept() failed: {os.strerror(exc.errno or 0)}")
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def note_descriptor(self, descriptor: int) -> None:
        """Check an accepted socket's descriptor number against the soft limit."""
        limit = self._soft_limit
        if limit != resource.RLIM_INFINITY and descriptor >= limit - self._reserve:
            self._report(
                f"descriptor {descriptor} of {limit} in use: new connections are being refused"
            )

    def _report(self, what: str) -> None:
        now = self._monotonic()
        if self._last is None or now - self._last >= 1.0:
            self._last = now
            self._emit(self._record(f"{what}; raise the open files limit (ulimit -n)"))
