"""The TLS front door: one ``asyncio.Protocol`` per TCP connection.

It moves bytes and runs timers; every decision comes from ``aws_iot_mock.tls.verdicts``. The
handshake runs over ``ssl.MemoryBIO`` rather than asyncio's TLS transport because asyncio (and
uvloop) abort the transport on a handshake error without sending OpenSSL's pending alert, so every
refused client would see a bare EOF (``shared/reference/amqtt-findings.md``). Here the outgoing BIO
is flushed before the socket closes, so a refused client reads ``unrecognized_name``,
``handshake_failure``, ``unknown_ca``, ``protocol_version``, ``certificate_revoked``, ...; and the
socket then lingers, read and discarded, until the client closes (``REFUSAL_LINGER``), so that
clients still sending their handshake read the alert rather than a TCP reset.

Once the device is authenticated the door hands plaintext to an ``MqttHandler`` (the MQTT core)
through a ``DeviceChannel``; the core never sees TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from aws_iot_mock.logs.cloudwatch import (
    ConnectionFacts,
    Reason,
    connect_failure,
    connect_success,
    disconnect_record,
)
from aws_iot_mock.tls.client_hello import ClientHelloInfo, NeedMoreData, NotTls, read_client_hello
from aws_iot_mock.tls.verdicts import (
    Refusal,
    check_registration,
    check_sni,
    classify_handshake_error,
    plaintext_alert_record,
)

__all__ = ["DeviceChannel", "DeviceIdentity", "DoorProtocol", "FrontDoor", "MqttHandler"]

logger = logging.getLogger("aws_iot_mock.door")

# Read plaintext from OpenSSL in chunks of this size (a TLS record carries at most 16 KiB).
_READ_CHUNK = 64 * 1024

# Seconds a refused connection stays open after the door sent its refusal (a fatal alert, or the
# end of a TLS 1.3 handshake), reading and discarding, unless the client closes first. mbedTLS and
# Java send their last handshake messages (ClientKeyExchange, CertificateVerify, Finished) as
# separate writes after the Certificate the server refused; arriving at a closed socket they make
# the kernel answer with a TCP reset, and the client reports "connection reset by peer" instead of
# the alert. RFC 5246 section 7.2.2 and RFC 8446 section 6.2 have both parties "immediately close
# the connection" after a fatal alert: the TLS connection is closed at once here (nothing more is
# sent or processed); only the TCP socket stays readable so that no reset overtakes the alert. A
# client that has read the alert closes at once, so this bounds only one that does not.
# Broker.stop() does not wait for it: shutdown() closes a lingering connection at once.
REFUSAL_LINGER = 2.0


@dataclass(frozen=True)
class DeviceIdentity:
    """Who is on the other end, as established by the TLS handshake.

    Attributes:
        certificate_id: lowercase hex SHA-256 of the client certificate's DER (AWS's ID).
        certificate_der: the client certificate.
        server_name: the SNI ``host_name`` the device sent, or None.
        security_policy: the AWS TLS security policy that was applied.
        tls_version: e.g. ``TLSv1.2``.
        cipher: the negotiated suite, OpenSSL's name.
        source_ip: the device's address.
        source_port: the device's port.
    """

    certificate_id: str
    certificate_der: bytes
    server_name: str | None
    security_policy: str
    tls_version: str
    cipher: str
    source_ip: str
    source_port: int


class DeviceChannel(Protocol):
    """What the front door offers the MQTT layer for one authenticated connection."""

    @property
    def identity(self) -> DeviceIdentity:
        """The authenticated device."""
        ...

    def write(self, data: bytes) -> None:
        """Encrypt and send ``data``."""
        ...

    def connect_accepted(self, client_id: str) -> None:
        """Report an accepted MQTT CONNECT: stops the CONNECT deadline and logs Success."""
        ...

    def close(
        self,
        reason: str | None = None,
        details: str = "",
        *,
        failure: bool = False,
        disconnect_reason: str | None = None,
    ) -> None:
        """Send close_notify and close; with a reason, log a ``Disconnect`` record first.

        ``disconnect_reason`` is AWS's lifecycle ``disconnectReason`` (defaults to ``reason``).
        """
        ...

    def emit(self, record: Mapping[str, object]) -> None:
        """Write an AWSIotLogsV2 record through the broker's log sink."""
        ...

    def facts(self) -> ConnectionFacts:
        """The facts for a log record about this connection."""
        ...


class MqttHandler(Protocol):
    """The MQTT side of one connection, created once the device is authenticated."""

    def data_received(self, data: bytes) -> None:
        """Plaintext bytes from the device, in order, arbitrarily chunked."""
        ...

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone (closed by either side)."""
        ...

    def shutdown(self) -> None:
        """The broker is stopping: say goodbye (MQTT 5: DISCONNECT 0x8B) and close."""
        ...


MqttHandlerFactory = Callable[[DeviceChannel], MqttHandler]


class FrontDoor:
    """State shared by every connection of one listener.

    Args:
        account_id: for log records.
        contexts: SSL context per security policy name.
        policy_for: maps an SNI ``host_name`` (or None) to the policy name to apply.
        accepted_names: lower-case endpoint and domain names.
        require_sni: whether a missing SNI is refused.
        registry_status: returns a certificate's registry status, or None if unregistered.
        emit: writes a log record.
        handler_factory: creates the MQTT handler for an authenticated connection.
        handshake_timeout: seconds allowed from TCP accept to the end of the TLS handshake.
        connect_timeout: seconds allowed from the end of the handshake to the MQTT CONNECT.
        log_successes: whether INFO records (accepted handshakes and CONNECTs, clean
            disconnects) are written; False when the configured level is below INFO.
    """

    def __init__(
        self,
        *,
        account_id: str,
        contexts: Mapping[str, ssl.SSLContext],
        policy_for: Callable[[str | None], str],
        accepted_names: frozenset[str],
        require_sni: bool,
        registry_status: Callable[[str], str | None],
        emit: Callable[[Mapping[str, object]], None],
        handler_factory: MqttHandlerFactory,
        handshake_timeout: float,
        connect_timeout: float,
        log_successes: bool = True,
    ) -> None:
        self.account_id = account_id
        self.contexts = contexts
        self.policy_for = policy_for
        self.accepted_names = accepted_names
        self.require_sni = require_sni
        self.registry_status = registry_status
        self.emit = emit
        self.handler_factory = handler_factory
        self.handshake_timeout = handshake_timeout
        self.connect_timeout = connect_timeout
        # Success records are INFO: not even built when the configured level drops them.
        self.log_successes = log_successes
        self.connections: set[DoorProtocol] = set()
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

    def forget(self, connection: DoorProtocol) -> None:
        """Drop a torn-down connection (called from its ``connection_lost``)."""
        self.connections.discard(connection)
        if not self.connections and self._idle is not None:
            self._idle.set()

    def protocol_factory(self) -> DoorProtocol:
        """Create the protocol for a new TCP connection (``loop.create_server`` calls this)."""
        return DoorProtocol(self)


class DoorProtocol(asyncio.Protocol):
    """One TCP connection: ClientHello -> SNI -> TLS handshake -> registry -> MQTT handler."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door
        self._transport: asyncio.Transport | None = None
        self._source_ip = "unknown"
        self._source_port = 0
        self._hello = bytearray()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl: ssl.SSLObject | None = None
        self._policy = ""
        self._server_name: str | None = None
        self._sni_refusal: Refusal | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handler: MqttHandler | None = None
        self._channel: _Channel | None = None
        self._principal_id: str | None = None
        self._client_id: str | None = None
        self._closed = False

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._source_ip, self._source_port = str(peer[0]), int(peer[1])
        self._door.connections.add(self)
        self._timer = asyncio.get_running_loop().call_later(
            self._door.handshake_timeout, self._handshake_timed_out
        )

    def data_received(self, data: bytes) -> None:  # noqa: D102
        if self._closed:
            return
        if self._ssl is None:
            self._hello += data
            self._start_tls()
            return
        self._incoming.write(data)
        if self._handler is None:
            self._advance_handshake()
        else:
            self._read_application_data()

    def eof_received(self) -> bool | None:  # noqa: D102
        if self._channel is None and not self._closed:
            stage = "before sending a ClientHello" if self._ssl is None else "mid-handshake"
            self._refuse(
                Refusal(Reason.HANDSHAKE_FAILED, f"The client closed the connection {stage}")
            )
        # False: let asyncio close our side; connection_lost logs a lost authenticated connection.
        return False

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        self._cancel_timer()
        if not self._closed:
            # The peer went away without a word (RST, or FIN without close_notify/DISCONNECT).
            cause = f": {exc}" if exc is not None else ""
            if self._channel is None:
                self._refuse(
                    Refusal(
                        Reason.HANDSHAKE_FAILED, f"The connection was lost mid-handshake{cause}"
                    )
                )
            elif self._door.log_successes:
                self._door.emit(
                    disconnect_record(
                        self._facts(),
                        "CONNECTION_LOST",
                        f"The connection was lost without DISCONNECT{cause}",
                        failure=False,
                    )
                )
        self._closed = True
        if self._handler is not None:
            handler, self._handler = self._handler, None
            handler.connection_lost(exc)
        self._door.forget(self)

    # -- stages ----------------------------------------------------------------------------

    def _start_tls(self) -> None:
        verdict = read_client_hello(bytes(self._hello))
        if isinstance(verdict, NeedMoreData):
            return
        if isinstance(verdict, NotTls):
            self._refuse(Refusal(Reason.HANDSHAKE_FAILED, verdict.description))
            return
        assert isinstance(verdict, ClientHelloInfo)
        self._server_name = verdict.server_name
        # Decide now; OpenSSL's servername callback repeats the check to send the alert.
        self._sni_refusal = check_sni(
            verdict.server_name, self._door.accepted_names, require_sni=self._door.require_sni
        )
        self._policy = self._door.policy_for(verdict.server_name)
        context = self._door.contexts[self._policy]
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._incoming.write(bytes(self._hello))
        self._hello.clear()
        self._advance_handshake()

    def _advance_handshake(self) -> None:
        assert self._ssl is not None
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            refusal = self._sni_refusal or classify_handshake_error(exc)
            self._refuse(refusal)
            return
        self._handshake_done()

    def _handshake_done(self) -> None:
        assert self._ssl is not None
        der = self._ssl.getpeercert(binary_form=True)
        if der is None:  # CERT_REQUIRED makes this unreachable; refuse rather than assume.
            self._refuse(Refusal(Reason.CLIENT_CERTIFICATE_MISSING, "No client certificate"))
            return
        certificate_id = hashlib.sha256(der).hexdigest()
        self._principal_id = certificate_id
        verdict = check_registration(certificate_id, self._door.registry_status(certificate_id))
        if verdict is not None:
            if self._ssl.version() == "TLSv1.2" and not self._ssl.session_reused:
                # Our ChangeCipherSpec/Finished are still in the BIO, unsent: drop them and
                # send a plaintext fatal alert, which the client reads as a handshake alert.
                self._outgoing.read()
                sent = self._write_raw(plaintext_alert_record(verdict.alert))
                self._refuse(verdict.refusal, flush=False, sent=sent)
            else:
                # TLS 1.3 (or a resumed 1.2 session): the client finished its handshake before
                # the server saw its certificate (RFC 8446 section 4.4.2); all that can be sent
                # now is an encrypted close_notify.
                sent = self._flush()
                self._refuse(verdict.refusal, sent=sent)
            return
        self._flush()
        cipher = self._ssl.cipher()
        identity = DeviceIdentity(
            certificate_id=certificate_id,
            certificate_der=der,
            server_name=self._server_name,
            security_policy=self._policy,
            tls_version=self._ssl.version() or "",
            cipher=cipher[0] if cipher else "",
            source_ip=self._source_ip,
            source_port=self._source_port,
        )
        if self._door.log_successes:
            self._door.emit(
                connect_success(
                    self._facts(),
                    details=f"TLS handshake accepted: {identity.tls_version} {identity.cipher}, "
                    f"SNI {identity.server_name!r}, policy {identity.security_policy}",
                )
            )
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(
            self._door.connect_timeout, self._connect_timed_out
        )
        self._channel = _Channel(self, identity)
        self._handler = self._door.handler_factory(self._channel)
        # A TLS 1.3 client may send its CONNECT in the same flight as its Finished.
        self._read_application_data()

    def _read_application_data(self) -> None:
        assert self._ssl is not None
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._ssl.read(_READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._deliver(chunks)
                self.close("CLIENT_INITIATED_DISCONNECT", "The client sent close_notify")
                return
            except ssl.SSLError as exc:
                self._deliver(chunks)
                self.close(
                    "CLIENT_ERROR", f"TLS error after the handshake: {exc.reason}", failure=True
                )
                return
            if not chunk:
                # SSLObject.read() returns b"" (rather than raising SSLZeroReturnError) once
                # the client's close_notify has been read: the client closed its side.
                self._deliver(chunks)
                self.close("CLIENT_INITIATED_DISCONNECT", "The client sent close_notify")
                return
            chunks.append(chunk)
        self._deliver(chunks)
        # Reading can produce output (e.g. a TLS 1.3 KeyUpdate response).
        self._flush()

    def _deliver(self, chunks: list[bytes]) -> None:
        if chunks and self._handler is not None and not self._closed:
            self._handler.data_received(b"".join(chunks))

    # -- timers ----------------------------------------------------------------------------

    def _handshake_timed_out(self) -> None:
        self._timer = None
        self._refuse(
            Refusal(
                Reason.HANDSHAKE_TIMEOUT,
                f"The TLS handshake did not complete within {self._door.handshake_timeout:g} s",
            )
        )

    def _connect_timed_out(self) -> None:
        self._timer = None
        self._door.emit(
            connect_failure(
                Reason.CONNECT_TIMEOUT,
                f"No MQTT CONNECT arrived within {self._door.connect_timeout:g} s of the "
                "TLS handshake",
                self._facts(),
            )
        )
        self._shutdown_tls()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- output and closing ----------------------------------------------------------------

    def _facts(self) -> ConnectionFacts:
        return ConnectionFacts(
            account_id=self._door.account_id,
            source_ip=self._source_ip,
            source_port=self._source_port,
            client_id=self._client_id,
            principal_id=self._principal_id,
        )

    def _flush(self) -> bool:
        """Send what OpenSSL queued; True if anything was written."""
        data = self._outgoing.read()
        return bool(data) and self._write_raw(data)

    def _write_raw(self, data: bytes) -> bool:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)
            return True
        return False

    def _refuse(self, refusal: Refusal, *, flush: bool = True, sent: bool = False) -> None:
        """Log the refusal, send what OpenSSL queued (the alert), and close.

        If the refusal sent anything (the flush, or ``sent`` by the caller), the connection
        lingers instead of closing at once: no more bytes go out (FIN follows the alert), what
        the client still sends is read and discarded (``data_received`` drops it once
        ``_closed``), and the socket closes when the client closes (``eof_received``) or after
        ``REFUSAL_LINGER`` seconds, whichever is first.
        """
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        if flush:
            sent = self._flush() or sent
        self._door.emit(connect_failure(refusal.reason, refusal.details, self._facts()))
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if not sent:
            transport.close()
            return
        if transport.can_write_eof():
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)

    def _shutdown_tls(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cancel_timer()
        if self._ssl is not None:
            with contextlib.suppress(ssl.SSLError):
                self._ssl.unwrap()  # queues close_notify; raises WantRead waiting for theirs
            self._flush()
        if self._transport is not None:
            self._transport.close()

    # -- used by _Channel ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Encrypt and send application data."""
        if self._closed or self._ssl is None:
            return
        self._ssl.write(data)
        self._flush()

    def connect_accepted(self, client_id: str) -> None:
        """Record the MQTT client ID, stop the CONNECT deadline, log Connect Success."""
        self._client_id = client_id
        self._cancel_timer()
        if self._door.log_successes:
            self._door.emit(connect_success(self._facts()))

    def close(
        self,
        reason: str | None = None,
        details: str = "",
        *,
        failure: bool = False,
        disconnect_reason: str | None = None,
    ) -> None:
        """Close the connection, logging a Disconnect record when a reason is given."""
        if self._closed:
            return
        if reason is not None and (failure or self._door.log_successes):
            self._door.emit(
                disconnect_record(
                    self._facts(),
                    reason,
                    details,
                    failure=failure,
                    disconnect_reason=disconnect_reason,
                )
            )
        self._shutdown_tls()

    def shutdown(self) -> None:
        """Close for broker shutdown, letting the MQTT handler say goodbye first."""
        if self._closed:
            # Refused and lingering (see _refuse), or already closing: close now.
            if self._transport is not None:
                self._transport.close()
            return
        if self._handler is not None:
            self._handler.shutdown()
        self.close("SERVER_INITIATED_DISCONNECT", "The broker is shutting down")

    def facts(self) -> ConnectionFacts:
        """Facts for a log record about this connection."""
        return self._facts()


class _Channel:
    """The ``DeviceChannel`` of one connection: a narrow view of ``DoorProtocol``."""

    def __init__(self, protocol: DoorProtocol, identity: DeviceIdentity) -> None:
        self._protocol = protocol
        self._identity = identity

    @property
    def identity(self) -> DeviceIdentity:
        return self._identity

    def write(self, data: bytes) -> None:
        self._protocol.write(data)

    def connect_accepted(self, client_id: str) -> None:
        self._protocol.connect_accepted(client_id)

    def close(
        self,
        reason: str | None = None,
        details: str = "",
        *,
        failure: bool = False,
        disconnect_reason: str | None = None,
    ) -> None:
        self._protocol.close(reason, details, failure=failure, disconnect_reason=disconnect_reason)

    def emit(self, record: Mapping[str, object]) -> None:
        self._protocol._door.emit(record)

    def facts(self) -> ConnectionFacts:
        return self._protocol.facts()
