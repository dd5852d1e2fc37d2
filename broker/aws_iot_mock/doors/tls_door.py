"""The TLS front door of every listener: one ``asyncio.Protocol`` per TCP connection.

It moves bytes and runs timers; every decision comes from pure modules: the SNI, handshake and
registry rules from ``aws_iot_mock.tls.verdicts``, and which protocol the connection speaks (by
door, ALPN and client certificate) from ``aws_iot_mock.tls.door_routes``. The handshake runs over
``ssl.MemoryBIO`` rather than asyncio's TLS transport because asyncio (and uvloop) abort the
transport on a handshake error without sending OpenSSL's pending alert, so every refused client
would see a bare EOF. Here the outgoing BIO is flushed before the socket closes, so a refused
client reads ``unrecognized_name``, ``handshake_failure``, ``unknown_ca``, ``protocol_version``,
``certificate_revoked``, ... After a refusal the door stops sending, sends a FIN and keeps
reading (and discarding) until the client closes or ``REFUSAL_LINGER`` passes: TLS stacks that
send their last handshake messages as separate writes (mbedTLS, Java) would otherwise meet a TCP
reset instead of the alert.

Once a connection is accepted the door hands its plaintext to a ``DoorHandler`` (MQTT, HTTPS,
SigV4) through a ``ByteChannel``; handlers never see TLS.

One exception to "TLS only": a door built with ``plaintext_on_loopback`` (the control-plane
``api`` door, for ``aws iot --endpoint-url http://localhost:9443``) serves a connection whose
first byte is not a TLS handshake record (0x16) without TLS, when the connection was made to a
loopback address (so it can only come from this machine). Every other door, and the api door on
any other address, refuses such bytes as before.

Fairness: at most ``READ_BUDGET`` bytes of plaintext are handed to the handler per event-loop
turn; the rest waits in OpenSSL while the transport's reading is paused and the loop serves the
other connections. Back-pressure: asyncio's ``pause_writing``/``resume_writing`` reach the
handler, which stops producing (and may pause reading) until the client drains its buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from aws_iot_mock.core.principal import Principal
from aws_iot_mock.hosts import is_loopback_host
from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    Reason,
    connect_failure,
    handshake_record,
)
from aws_iot_mock.tls.client_hello import ClientHelloInfo, NeedMoreData, NotTls, read_client_hello
from aws_iot_mock.tls.door_routes import DoorKind, Route, choose_route
from aws_iot_mock.tls.memory_bio import release_buffer
from aws_iot_mock.tls.verdicts import (
    Refusal,
    check_registration,
    check_sni,
    classify_handshake_error,
    plaintext_alert_record,
)

__all__ = [
    "READ_BUDGET",
    "REFUSAL_LINGER",
    "ByteChannel",
    "DoorHandler",
    "DoorIdentity",
    "DoorProtocol",
    "FrontDoor",
    "HandlerFactory",
]

logger = logging.getLogger("aws_iot_mock.door")

# Plaintext handed to a handler per event-loop turn; a flooding client then yields to the others
# (one full TLS record).
READ_BUDGET = 16 * 1024
# Seconds a refused connection is kept open, reading, so the client reads the alert (not a reset).
REFUSAL_LINGER = 2.0
# Ciphertext goes into OpenSSL's incoming memory BIO at most this many bytes at a time while the
# handshake runs. A memory BIO keeps the largest buffer it ever held for the connection's life:
# fed the client's certificate flight at once it would keep ~3 KB per idle connection; fed in
# slices (OpenSSL drains the BIO on each step) it keeps ~350 bytes.
HANDSHAKE_FEED = 256
# After a write or read of at least this many bytes, the memory BIO it went through gives its
# buffer back once empty (``release_buffer``): a BIO keeps its largest buffer for life, and one
# 128 KB message would otherwise cost its connection ~170 KB for good. Smaller traffic keeps
# its buffer (no allocation per message).
LARGE_TRANSFER = 64 * 1024


@dataclass(frozen=True, slots=True)
class DoorIdentity:
    """Who is on the other end and how they came in, as the TLS handshake established it.

    Attributes:
        door: the listener's door.
        principal: the X.509 principal, or None when no client certificate was presented (the
            SigV4 route authenticates each request itself).
        server_name: the SNI ``host_name`` the client sent, or None.
        security_policy: the AWS TLS security policy that was applied.
        tls_version: e.g. ``TLSv1.2``.
        cipher: the negotiated suite, OpenSSL's name.
        alpn: the negotiated ALPN protocol, or None.
        source_ip: the client's address.
        source_port: the client's port.
    """

    door: DoorKind
    principal: Principal | None
    server_name: str | None
    security_policy: str
    tls_version: str
    cipher: str
    alpn: str | None
    source_ip: str
    source_port: int

    @property
    def tls_details(self) -> str:
        """The handshake, for the one ``Connect`` log line of the connection."""
        alpn = f", ALPN {self.alpn!r}" if self.alpn else ""
        return (
            f"TLS handshake: {self.tls_version} {self.cipher}, SNI {self.server_name!r}, "
            f"policy {self.security_policy}{alpn}"
        )


class ByteChannel(Protocol):
    """What a door offers the protocol handler of one accepted connection."""

    @property
    def identity(self) -> DoorIdentity:
        """The connection's identity."""
        ...

    @property
    def facts(self) -> ConnectionFacts:
        """Facts for log records (account, source address, principal ID)."""
        ...

    def write(self, data: bytes) -> None:
        """Encrypt and send ``data``."""
        ...

    def close(self) -> None:
        """Send close_notify and close (after what was written)."""
        ...

    def pause_reading(self) -> None:
        """Stop handing data to the handler until ``resume_reading``."""
        ...

    def resume_reading(self) -> None:
        """Hand data to the handler again."""
        ...


class DoorHandler(Protocol):
    """The protocol side (MQTT, HTTP) of one accepted connection."""

    def data_received(self, data: bytes) -> None:
        """Plaintext from the client, in order, arbitrarily chunked."""
        ...

    def peer_closed(self, reason: str, details: str, *, failure: bool) -> None:
        """The client ended the TLS session (close_notify, a TLS error); the door is closing."""
        ...

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone (closed by either side)."""
        ...

    def pause_writing(self) -> None:
        """The client's receive buffer is full: stop producing output."""
        ...

    def resume_writing(self) -> None:
        """The client drained its buffer."""
        ...

    def shutdown(self) -> None:
        """The broker is stopping: say goodbye and close the channel."""
        ...


HandlerFactory = Callable[[ByteChannel], DoorHandler]


class FrontDoor:
    """State shared by every connection of one listener.

    Args:
        door: which door this listener is.
        account_id: for log records.
        contexts: SSL context per security policy name (built for this door).
        policy_for: maps an SNI ``host_name`` (or None) to the policy name to apply.
        accepted_names: lower-case endpoint and domain names.
        require_sni: whether a missing SNI is refused.
        registry_status: returns a certificate's registry status, or None if unregistered.
        emit: writes a log record.
        handlers: the handler factory of each route this build serves.
        handshake_timeout: seconds allowed from TCP accept to the end of the TLS handshake.
        log_successes: whether INFO records are written.
        log_debug: whether DEBUG records (each accepted handshake) are written.
        disabled_names: lower-case domain name -> its DISABLED domain configuration's name
            (refused with ``DOMAIN_CONFIGURATION_DISABLED``).
        plaintext_on_loopback: serve non-TLS bytes without TLS on loopback connections (see
            the module docstring); only for doors whose route needs no certificate.
        handlers_pending: the door listens before its handlers exist (the broker builds them
            meanwhile): a connection whose handshake completes first waits, reading nothing,
            until ``serve_routes`` installs them. Not for plaintext doors.
    """

    def __init__(
        self,
        *,
        door: DoorKind,
        account_id: str,
        contexts: Mapping[str, ssl.SSLContext],
        policy_for: Callable[[str | None], str],
        accepted_names: frozenset[str],
        require_sni: bool,
        registry_status: Callable[[str], str | None],
        emit: Callable[[Mapping[str, object]], None],
        handlers: Mapping[Route, HandlerFactory],
        handshake_timeout: float,
        log_successes: bool = True,
        log_debug: bool = False,
        disabled_names: Mapping[str, str] | None = None,
        plaintext_on_loopback: bool = False,
        handlers_pending: bool = False,
    ) -> None:
        self.log_debug = log_debug
        self.disabled_names: Mapping[str, str] = disabled_names or {}
        self.plaintext_on_loopback = plaintext_on_loopback
        self.door = door
        self.account_id = account_id
        self.contexts = contexts
        self.policy_for = policy_for
        self.accepted_names = accepted_names
        self.require_sni = require_sni
        self.registry_status = registry_status
        self.emit = emit
        self.handlers = handlers
        self.handlers_pending = handlers_pending
        self._waiting: list[DoorProtocol] = []
        self.handshake_timeout = handshake_timeout
        # Success records are INFO: not even built when the configured level drops them.
        self.log_successes = log_successes
        self.connections: set[DoorProtocol] = set()
        # Called with each accepted socket's descriptor number (the broker's accept-failure log).
        self.descriptor_watch: Callable[[int], None] | None = None
        self._idle: asyncio.Event | None = None

    async def wait_closed(self, timeout: float) -> bool:
        """Wait until every connection has been torn down (``connection_lost`` ran).

        Returns:
            False if some were still open after ``timeout`` seconds.
        """
        if not self.connections:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def serve_routes(self, handlers: Mapping[Route, HandlerFactory]) -> None:
        """Install the handlers of a door opened with ``handlers_pending``; serve who waits."""
        self.handlers = handlers
        self.handlers_pending = False
        waiting, self._waiting = self._waiting, []
        for connection in waiting:
            connection.attach_handler()

    def wait_for_handlers(self, connection: DoorProtocol) -> None:
        """Hold ``connection`` (handshake done) until ``serve_routes``."""
        self._waiting.append(connection)

    def forget(self, connection: DoorProtocol) -> None:
        """Drop a torn-down connection (called from its ``connection_lost``)."""
        self.connections.discard(connection)
        if not self.connections and self._idle is not None:
            self._idle.set()

    def protocol_factory(self) -> DoorProtocol:
        """Create the protocol for a new TCP connection (``loop.create_server`` calls this)."""
        return DoorProtocol(self)


class DoorProtocol(asyncio.Protocol):
    """One TCP connection: ClientHello -> SNI -> TLS handshake -> registry -> route -> handler."""

    # Thousands of these live at once (one per connection): slots, not a dict each.
    __slots__ = (
        "_budget_paused",
        "_channel",
        "_closed",
        "_continue_scheduled",
        "_door",
        "_handler",
        "_handler_paused",
        "_hello",
        "_hello_needed",
        "_incoming",
        "_lingering",
        "_loopback",
        "_outgoing",
        "_plaintext",
        "_policy",
        "_principal_id",
        "_route",
        "_server_name",
        "_sni_refusal",
        "_source_ip",
        "_source_port",
        "_ssl",
        "_timer",
        "_transport",
        "_transport_paused",
    )

    def __init__(self, door: FrontDoor) -> None:
        self._door = door
        self._transport: asyncio.Transport | None = None
        self._source_ip = "unknown"
        self._source_port = 0
        # The ClientHello's bytes until it is read (then None: nothing kept per connection).
        self._hello: bytearray | None = bytearray()
        self._hello_needed = 0  # bytes the ClientHello reader needs before its verdict can change
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl: ssl.SSLObject | None = None
        self._policy = ""
        self._server_name: str | None = None
        self._sni_refusal: Refusal | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handler: DoorHandler | None = None
        self._channel: _Channel | None = None
        self._route: Route | None = None  # while waiting for the door's handlers
        self._principal_id: str | None = None
        self._closed = False
        self._lingering = False
        self._loopback = False
        self._plaintext = False
        # Why the transport's reading is paused: the read budget ran out, or the handler asked.
        self._budget_paused = False
        self._handler_paused = False
        self._transport_paused = False
        self._continue_scheduled = False

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            # Interned, as the SNI name, TLS version and suite below: one copy for the many
            # connections that share them, not one per connection.
            self._source_ip, self._source_port = sys.intern(str(peer[0])), int(peer[1])
        local = transport.get_extra_info("sockname")
        self._loopback = isinstance(local, tuple) and is_loopback_host(str(local[0]))
        self._door.connections.add(self)
        if self._door.descriptor_watch is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._door.descriptor_watch(sock.fileno())
        self._timer = asyncio.get_running_loop().call_later(
            self._door.handshake_timeout, self._handshake_timed_out
        )

    def data_received(self, data: bytes) -> None:  # noqa: D102
        if self._closed:
            return  # a refused client's last flight, read and discarded while lingering
        if self._plaintext:
            if self._handler is not None:
                self._handler.data_received(data)
            return
        if self._ssl is None:
            assert self._hello is not None
            self._hello += data
            if len(self._hello) >= self._hello_needed:  # else nothing can have changed
                self._start_tls()
            return
        if self._channel is None:
            self._advance_handshake(data)
            return
        self._incoming.write(data)  # (while waiting for the door's handlers: kept for later)
        if self._handler is not None and not self._budget_paused and not self._handler_paused:
            self._read_application_data()
            if len(data) >= LARGE_TRANSFER:
                release_buffer(self._incoming)  # (nothing done while bytes are left in it)

    def eof_received(self) -> bool | None:  # noqa: D102
        if self._channel is None and not self._closed:
            stage = "before sending a ClientHello" if self._ssl is None else "mid-handshake"
            self._refuse(
                Refusal(Reason.HANDSHAKE_FAILED, f"The client closed the connection {stage}")
            )
        # False: let asyncio close our side; the handler hears of it in connection_lost.
        return False

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._cancel_timer()
        if not self._closed and self._channel is None:
            # The peer went away mid-handshake (RST, or FIN without close_notify).
            cause = f": {exc}" if exc is not None else ""
            self._refuse(
                Refusal(Reason.HANDSHAKE_FAILED, f"The connection was lost mid-handshake{cause}")
            )
        self._closed = True
        if self._handler is not None:
            handler, self._handler = self._handler, None
            handler.connection_lost(exc)
        self._door.forget(self)

    def pause_writing(self) -> None:  # noqa: D102
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:  # noqa: D102
        if self._handler is not None:
            self._handler.resume_writing()

    # -- stages ----------------------------------------------------------------------------

    def _start_tls(self) -> None:
        assert self._hello is not None
        hello = bytes(self._hello)
        verdict = read_client_hello(hello)
        if isinstance(verdict, NeedMoreData):
            self._hello_needed = verdict.at_least
            return
        if isinstance(verdict, NotTls):
            if self._door.plaintext_on_loopback and self._loopback:
                self._start_plaintext()
                return
            self._refuse(Refusal(Reason.HANDSHAKE_FAILED, verdict.description))
            return
        assert isinstance(verdict, ClientHelloInfo)
        self._server_name = sys.intern(verdict.server_name) if verdict.server_name else None
        # Decide now; OpenSSL's servername callback repeats the check to send the alert.
        self._sni_refusal = check_sni(
            verdict.server_name,
            self._door.accepted_names,
            require_sni=self._door.require_sni,
            disabled=self._door.disabled_names,
        )
        self._policy = self._door.policy_for(verdict.server_name)
        context = self._door.contexts[self._policy]
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._hello = None
        self._advance_handshake(hello)

    def _start_plaintext(self) -> None:
        """Serve this loopback connection without TLS (plain HTTP on the api door)."""
        route = choose_route(self._door.door, None, has_certificate=False)
        factory = None if isinstance(route, Refusal) else self._door.handlers.get(route)
        if factory is None:
            self._refuse(Refusal(Reason.HANDSHAKE_FAILED, "Not a TLS handshake"))
            return
        self._plaintext = True
        self._cancel_timer()
        self._channel = _Channel(self)
        self._handler = factory(self._channel)
        first = bytes(self._hello or b"")
        self._hello = None
        self._handler.data_received(first)

    def _advance_handshake(self, data: bytes) -> None:
        """Feed ``data`` (ciphertext) to the handshake, ``HANDSHAKE_FEED`` bytes at a time."""
        assert self._ssl is not None
        for start in range(0, len(data), HANDSHAKE_FEED):
            self._incoming.write(data[start : start + HANDSHAKE_FEED])
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                if self._outgoing.pending:
                    self._flush()
                continue
            except ssl.SSLError as exc:
                refusal = self._sni_refusal or classify_handshake_error(exc)
                self._refuse(refusal)
                return
            # What follows the client's Finished is application data (a TLS 1.3 client may
            # send its first request in the same flight).
            self._incoming.write(data[start + HANDSHAKE_FEED :])
            self._handshake_done()
            return

    def _handshake_done(self) -> None:
        assert self._ssl is not None
        der = self._ssl.getpeercert(binary_form=True)
        principal: Principal | None = None
        if der is not None:
            # Interned: a fleet of test clients often shares one certificate.
            certificate_id = sys.intern(hashlib.sha256(der).hexdigest())
            self._principal_id = certificate_id
            verdict = check_registration(certificate_id, self._door.registry_status(certificate_id))
            if verdict is not None:
                if self._ssl.version() == "TLSv1.2" and not self._ssl.session_reused:
                    # Our ChangeCipherSpec/Finished are still in the BIO, unsent: drop them and
                    # send a plaintext fatal alert, which the client reads as a handshake alert.
                    self._outgoing.read()
                    self._write_raw(plaintext_alert_record(verdict.alert))
                    self._refuse(verdict.refusal, flush=False)
                else:
                    # TLS 1.3 (or a resumed 1.2 session): the client finished its handshake
                    # before the server saw its certificate (RFC 8446 section 4.4.2); all that
                    # can be sent now is an encrypted close_notify.
                    self._flush()
                    self._refuse(verdict.refusal, close_notify=True)
                return
            # Not the DER: a kilobyte per connection, and the registry holds the certificate.
            principal = Principal.certificate(certificate_id)
        elif self._door.door.requires_client_certificate:
            # CERT_REQUIRED makes this unreachable; refuse rather than assume.
            self._refuse(Refusal(Reason.CLIENT_CERTIFICATE_MISSING, "No client certificate"))
            return
        self._flush()
        # A memory BIO keeps its largest buffer for life: the outgoing one held the server's
        # whole first flight (~2.5 KB with the certificate chain), the incoming one a handshake
        # slice. Both are empty now (unless a TLS 1.3 client's first request came along).
        release_buffer(self._outgoing)
        release_buffer(self._incoming)
        alpn = self._ssl.selected_alpn_protocol()
        route = choose_route(self._door.door, alpn, has_certificate=principal is not None)
        if isinstance(route, Refusal):
            self._refuse(route, close_notify=True)
            return
        factory = self._door.handlers.get(route)
        if factory is None and not self._door.handlers_pending:
            self._refuse_unbuilt(route)
            return
        if self._door.log_debug:
            details = self.identity().tls_details
            self._door.emit(handshake_record(self._facts(), f"{details} accepted"))
        self._cancel_timer()
        self._channel = _Channel(self)
        if factory is None:
            # The broker is still building its handlers: read nothing until they exist.
            self._route = route
            self._handler_paused = True
            self._update_reading()
            self._door.wait_for_handlers(self)
            return
        self._handler = factory(self._channel)
        # A TLS 1.3 client may send its first request in the same flight as its Finished.
        self._read_application_data()

    def attach_handler(self) -> None:
        """The door's handlers exist now: serve this connection, which waited for them."""
        route, self._route = self._route, None
        if self._closed or route is None or self._channel is None:
            return
        factory = self._door.handlers.get(route)
        if factory is None:
            self._refuse_unbuilt(route)
            return
        self._handler_paused = False
        self._handler = factory(self._channel)
        self._update_reading()
        self._read_application_data()

    def _refuse_unbuilt(self, route: Route) -> None:
        self._refuse(
            Refusal(
                Reason.DOOR_NOT_AVAILABLE,
                f"{route.value} on the {self._door.door.value} door is not built yet",
            ),
            close_notify=True,
        )

    def _read_application_data(self) -> None:
        """Hand at most ``READ_BUDGET`` bytes of plaintext to the handler, then yield."""
        assert self._ssl is not None
        chunks: list[bytes] = []
        budget = READ_BUDGET
        ssl_object, incoming = self._ssl, self._incoming
        while budget > 0:
            try:
                chunk = ssl_object.read(budget)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._deliver(chunks)
                self._peer_closed("CLIENT_INITIATED_DISCONNECT", "The client sent close_notify")
                return
            except ssl.SSLError as exc:
                self._deliver(chunks)
                self._peer_closed(
                    "CLIENT_ERROR", f"TLS error after the handshake: {exc.reason}", failure=True
                )
                return
            if not chunk:
                # SSLObject.read() returns b"" (rather than raising SSLZeroReturnError) once
                # the client's close_notify has been read: the client closed its side.
                self._deliver(chunks)
                self._peer_closed("CLIENT_INITIATED_DISCONNECT", "The client sent close_notify")
                return
            chunks.append(chunk)
            budget -= len(chunk)
            if not incoming.pending and not ssl_object.pending():
                # Every byte that arrived is read and decrypted: stop here rather than at the
                # SSLWantReadError the next read would raise (one per read of a lone message).
                break
        self._deliver(chunks)
        # Reading can produce output (e.g. a TLS 1.3 KeyUpdate response).
        self._flush()
        if budget <= 0 and not self._closed:
            # More may be waiting: let the other connections have this turn.
            self._budget_paused = True
            self._update_reading()
            if not self._continue_scheduled:
                self._continue_scheduled = True
                asyncio.get_running_loop().call_soon(self._continue_reading)

    def _continue_reading(self) -> None:
        self._continue_scheduled = False
        self._budget_paused = False
        if self._closed or self._handler_paused:
            self._update_reading()
            return
        self._read_application_data()
        # A read budget ran out: at least READ_BUDGET bytes were waiting in the BIO.
        release_buffer(self._incoming)
        self._update_reading()

    def _deliver(self, chunks: list[bytes]) -> None:
        if chunks and self._handler is not None and not self._closed:
            self._handler.data_received(b"".join(chunks))

    def _peer_closed(self, reason: str, details: str, *, failure: bool = False) -> None:
        if self._handler is not None and not self._closed:
            self._handler.peer_closed(reason, details, failure=failure)
        self._shutdown_tls()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        want_paused = self._budget_paused or self._handler_paused
        if want_paused and not self._transport_paused:
            transport.pause_reading()
            self._transport_paused = True
        elif not want_paused and self._transport_paused:
            transport.resume_reading()
            self._transport_paused = False

    # -- timers ----------------------------------------------------------------------------

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._refuse(
            Refusal(
                Reason.HANDSHAKE_TIMEOUT,
                f"The TLS handshake did not complete within {self._door.handshake_timeout:g} s",
            )
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- output and closing ----------------------------------------------------------------

    def identity(self) -> DoorIdentity:
        """The connection's identity as the handshake established it (built on each call)."""
        tls = None if self._plaintext else self._ssl
        cipher = tls.cipher() if tls is not None else None
        return DoorIdentity(
            door=self._door.door,
            # The X.509 principal: the handshake set the certificate ID only when the client
            # presented a certificate, and the connection exists only if it was accepted.
            principal=(
                Principal.certificate(self._principal_id)
                if self._principal_id is not None
                else None
            ),
            server_name=self._server_name,
            security_policy=self._policy,
            tls_version=sys.intern(tls.version() or "") if tls is not None else "",
            cipher=sys.intern(cipher[0]) if cipher else "",
            alpn=tls.selected_alpn_protocol() if tls is not None else None,
            source_ip=self._source_ip,
            source_port=self._source_port,
        )

    def _facts(self) -> ConnectionFacts:
        return ConnectionFacts(
            account_id=self._door.account_id,
            source_ip=self._source_ip,
            source_port=self._source_port,
            principal_id=self._principal_id,
        )

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _refuse(self, refusal: Refusal, *, flush: bool = True, close_notify: bool = False) -> None:
        """Log the refusal, send what OpenSSL queued (the alert), then linger and close."""
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        if close_notify and self._ssl is not None:
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()  # queues close_notify
        if flush or close_notify:
            self._flush()
        self._door.emit(connect_failure(refusal.reason, refusal.details, self._facts()))
        self._linger()

    def _linger(self) -> None:
        """Stop sending, FIN, and read until the client closes or ``REFUSAL_LINGER`` passes.

        Closing at once would make the kernel answer the client's in-flight handshake records
        with a TCP reset, which some TLS stacks report instead of the alert they were sent.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:
            # The peer is gone already (ENOTCONN once it has reset): nothing to linger for.
            transport.close()
            return
        self._lingering = True
        if self._transport_paused:
            transport.resume_reading()
            self._transport_paused = False
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER, self._close_transport)

    def _close_transport(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.close()

    def _shutdown_tls(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        if self._ssl is not None:
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()  # queues close_notify; raises WantRead waiting for theirs
            self._flush()
        # As after a refusal: FIN, then read until the client closes. A client still writing
        # (a PUBLISH over the size limit, say) would otherwise get a TCP reset that discards the
        # DISCONNECT it was sent before reading it.
        self._linger()

    def shutdown(self) -> None:
        """Close for broker shutdown, letting the handler say goodbye first."""
        if self._lingering:
            self._close_transport()
            return
        if self._handler is not None and not self._closed:
            self._handler.shutdown()
        self._shutdown_tls()
        if self._lingering:  # the broker is going away: no time to wait for the client
            self._close_transport()

    # -- used by _Channel ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Encrypt and send application data."""
        if self._plaintext and not self._closed:
            self._write_raw(data)
            return
        if self._closed or self._ssl is None:
            return
        self._ssl.write(data)
        self._flush()
        if len(data) >= LARGE_TRANSFER:
            release_buffer(self._outgoing)

    def set_handler_paused(self, paused: bool) -> None:
        """The handler's wish to stop (or resume) receiving data."""
        self._handler_paused = paused
        self._update_reading()
        # Data may be waiting in OpenSSL from before the pause.
        if (
            not paused
            and not self._plaintext
            and not self._closed
            and self._handler is not None
            and not self._continue_scheduled
        ):
            self._continue_scheduled = True
            asyncio.get_running_loop().call_soon(self._continue_reading)


class _Channel:
    """The ``ByteChannel`` of one connection: a narrow view of ``DoorProtocol``."""

    # Thousands of these live at once (one per connection): slots, not a dict each.
    __slots__ = ("_identity", "_protocol")

    def __init__(self, protocol: DoorProtocol):
        self._protocol = protocol
        self._identity = protocol.identity()
        # The facts are built when asked (handlers ask once, when they are created): not a
        # ConnectionFacts kept per connection besides the handler's own (~100 bytes each).

    @property
    def identity(self) -> DoorIdentity:
        return self._identity

    @property
    def facts(self) -> ConnectionFacts:
        return self._protocol._facts()

    def write(self, data: bytes) -> None:
        self._protocol.write(data)

    def close(self) -> None:
        self._protocol._shutdown_tls()

    def pause_reading(self) -> None:
        self._protocol.set_handler_paused(True)

    def resume_reading(self) -> None:
        self._protocol.set_handler_paused(False)
