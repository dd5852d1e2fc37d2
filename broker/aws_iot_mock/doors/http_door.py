"""The asyncio shell of HTTPS on a door: HTTP/1.1 and 1.0 with keep-alive, parsed by h11.

``HttpDoorHandler`` serves one TLS connection's requests in order over a ``ByteChannel``: h11
(a maintained sans-IO HTTP/1.1 library) parses and frames, a ``respond`` callable answers each
request, and this module enforces the limits and deadlines:

- a body over 128 KiB (AWS's payload limit) is refused with 413 from its ``Content-Length``
  before it is read; headers over 16 KiB get 431; bytes that are not HTTP get 400;
- a request started but not finished within ``REQUEST_TIMEOUT`` seconds gets 408; a connection
  idle for ``IDLE_TIMEOUT`` seconds between requests is closed;
- ``Expect: 100-continue`` is answered, as curl sends it for larger bodies;
- a response with a ``stream`` (server-sent events, the console's live channel) is written
  chunk by chunk as the client reads: while the client does not read, the stream is not pulled.

Each refusal is logged (eventType ``Connect``, protocol ``HTTP``) with its reason; the APIs log
their own outcomes. A request ``respond`` cannot answer becomes 500 InternalFailureException,
logged, never a traceback or a hang.

``respond`` may also answer ``SwitchProtocols`` (RFC 9110 section 7.8, the WebSocket upgrade of
MQTT over WebSocket): its response bytes are sent as they are, and the connection's later bytes
(including any the client sent after the request) go to the handler it names, for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

import h11

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.limits import PAYLOAD_MAX_BYTES
from aws_iot_mock.doors.tls_door import ByteChannel, DoorHandler
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, error_response, new_request_id
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, Reason, connect_failure

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_HEADER_BYTES",
    "REQUEST_TIMEOUT",
    "HttpDoorHandler",
    "Respond",
    "SwitchProtocols",
]

logger = logging.getLogger("aws_iot_mock.http")

# The request line and headers: h11 answers a larger incomplete head with error hint 431.
MAX_HEADER_BYTES = 16 * 1024
# A request must arrive whole within this many seconds of its first byte.
REQUEST_TIMEOUT = 10.0
# A keep-alive connection with no request for this long is closed (AWS: "HTTPS connections
# aren't guaranteed to last any longer than the time it takes to receive and respond to
# requests", protocols).
IDLE_TIMEOUT = 60.0
_SERVER = "aws-iot-mock"


@dataclass(frozen=True)
class SwitchProtocols:
    """An answer that ends HTTP on the connection (``101 Switching Protocols``).

    Attributes:
        response: the response bytes, sent as they are (e.g. wsproto's 101).
        handler: builds the connection's next handler from the channel and the bytes the
            client sent after the request.
    """

    response: bytes
    handler: Callable[[ByteChannel, bytes], DoorHandler]


Respond = Callable[[HttpRequest, str], Awaitable[HttpResponse | SwitchProtocols]]
Emit = Callable[[Mapping[str, object]], None]


class HttpDoorHandler:
    """HTTPS on one accepted TLS connection: a ``DoorHandler``.

    Args:
        channel: the door's channel.
        respond: answers one request (given its request ID, also the log ``traceId``), or
            switches the connection to another protocol.
        emit: writes an AWSIotLogsV2 record.
        facts: the connection's facts for log records (``protocol`` ``HTTP``).
        request_timeout: seconds a request may take to arrive whole (``tls.connect_timeout``).
    """

    def __init__(
        self,
        channel: ByteChannel,
        respond: Respond,
        *,
        emit: Emit,
        facts: ConnectionFacts,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self._request_timeout = request_timeout
        self._channel = channel
        self._respond = respond
        self._emit = emit
        self._facts = facts
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._loop = asyncio.get_running_loop()
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._answering: asyncio.Task[None] | None = None
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        # Cleared while the client is not reading: a streamed response waits for it.
        self._writable = asyncio.Event()
        self._writable.set()
        # The handler of the protocol the connection switched to, once it has.
        self._switched: DoorHandler | None = None
        self._arm(IDLE_TIMEOUT)

    # -- DoorHandler -----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed h11 and handle every complete event."""
        if self._switched is not None:
            self._switched.data_received(data)
            return
        if self._closed:
            return
        self._h11.receive_data(data)
        self._process()

    def peer_closed(self, reason: str, details: str, *, failure: bool) -> None:
        """The client closed its TLS session."""
        if self._switched is not None:
            self._switched.peer_closed(reason, details, failure=failure)
            return
        self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone: stop an unfinished answer."""
        self._finish()
        if self._answering is not None:
            self._answering.cancel()
        if self._switched is not None:
            self._switched.connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading: stop taking its requests until it does."""
        if self._switched is not None:
            self._switched.pause_writing()
            return
        self._writable.clear()
        self._channel.pause_reading()

    def resume_writing(self) -> None:
        """The client drained its buffer."""
        if self._switched is not None:
            self._switched.resume_writing()
            return
        self._writable.set()
        self._channel.resume_reading()

    def shutdown(self) -> None:
        """The broker is stopping: close (an unfinished request is dropped)."""
        if self._switched is not None:
            self._switched.shutdown()
            return
        self._close()

    # -- events ----------------------------------------------------------------------------

    def _process(self) -> None:
        while not self._closed and self._answering is None:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            if event is h11.NEED_DATA:
                if self._h11.their_state is h11.SEND_BODY or self._h11_has_partial_head():
                    self._arm(self._request_timeout, keep=True)
                return
            if event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                if not self._start_request(event):
                    return
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > PAYLOAD_MAX_BYTES:
                    self._refuse_body()
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self._close()
                return

    def _h11_has_partial_head(self) -> bool:
        return self._h11.their_state is h11.IDLE and bool(self._h11.trailing_data[0])

    def _start_request(self, request: h11.Request) -> bool:
        self._request = request
        self._body.clear()
        self._arm(self._request_timeout)
        # h11 bounds a head that arrives in pieces; one that arrives whole is measured here.
        head = len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers)
        if head > MAX_HEADER_BYTES:
            self._log(
                Reason.HTTP_HEADERS_TOO_LARGE, f"Request headers over {MAX_HEADER_BYTES} bytes"
            )
            self._refuse(431, "InvalidRequestException", "Request header fields too large")
            return False
        length = _content_length(request)
        if length is not None and length > PAYLOAD_MAX_BYTES:
            self._refuse_body()
            return False
        if self._h11.they_are_waiting_for_100_continue:
            self._send(h11.InformationalResponse(status_code=100, headers=[]))
        return True

    def _dispatch(self) -> None:
        request = self._request
        assert request is not None
        self._cancel_timer()
        value = HttpRequest(
            method=request.method.decode("ascii", "replace").upper(),
            target=request.target.decode("ascii", "replace"),
            headers=tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in request.headers
            ),
            body=bytes(self._body),
            http_version=request.http_version.decode("ascii", "replace"),
        )
        self._request = None
        self._body.clear()
        self._answering = self._loop.create_task(self._answer(value))

    async def _answer(self, request: HttpRequest) -> None:
        request_id = new_request_id()
        try:
            response = await self._respond(request, request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an answer must not kill the connection or the broker
            logger.error(
                "request %s %s failed:\n%s", request.method, request.path, traceback.format_exc()
            )
            self._log(Reason.HTTP_REQUEST_REFUSED, f"InternalFailureException: {exc!r}")
            response = error_response(
                AwsApiError("InternalFailureException", "Internal service failure"), request_id
            )
        if not isinstance(response, SwitchProtocols) and response.stream is not None:
            await self._stream(response)
        self._answering = None
        if self._closed:
            return
        if isinstance(response, SwitchProtocols):
            self._switch(response)
            return
        if response.stream is None:
            self._send_response(response)
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            self._close()
            return
        try:
            self._h11.start_next_cycle()
        except h11.LocalProtocolError:
            self._close()
            return
        self._arm(IDLE_TIMEOUT)
        self._process()  # requests the client pipelined behind this one

    async def _stream(self, response: HttpResponse) -> None:
        """Send a streamed response: the head, then each chunk once the client reads."""
        stream = response.stream
        assert stream is not None
        if self._closed:
            return
        self._send(
            h11.Response(
                status_code=response.status,
                headers=self._head_headers(response),
                reason=_reason(response.status),
            )
        )
        if response.body:
            self._send(h11.Data(data=response.body))
        try:
            async for chunk in stream:
                if self._closed:
                    return
                if chunk:
                    self._send(h11.Data(data=chunk))
                await self._writable.wait()
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()
        if not self._closed:
            self._send(h11.EndOfMessage())

    def _switch(self, switch: SwitchProtocols) -> None:
        """Send the 101 and hand the connection (and its unread bytes) to the next handler."""
        self._finish()
        trailing, _ = self._h11.trailing_data
        self._channel.write(switch.response)
        self._switched = switch.handler(self._channel, bytes(trailing))

    # -- refusals --------------------------------------------------------------------------

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        status = exc.error_status_hint
        if status == 431:
            self._log(
                Reason.HTTP_HEADERS_TOO_LARGE, f"Request headers over {MAX_HEADER_BYTES} bytes"
            )
        else:
            self._log(Reason.HTTP_MALFORMED_REQUEST, f"Not a valid HTTP request: {exc}")
        self._refuse(status, "InvalidRequestException", f"Bad request: {exc}")

    def _refuse_body(self) -> None:
        self._log(
            Reason.HTTP_BODY_TOO_LARGE,
            f"Request body over {PAYLOAD_MAX_BYTES} bytes (AWS's payload limit)",
        )
        self._refuse(
            413, "RequestEntityTooLargeException", "The payload exceeds the maximum size allowed"
        )

    def _timed_out(self) -> None:
        self._timer = None
        if self._closed or self._answering is not None:
            return
        if self._h11.their_state is h11.IDLE and not self._h11_has_partial_head():
            self._close()  # an idle keep-alive connection: nothing to say
            return
        self._log(
            Reason.HTTP_REQUEST_TIMEOUT,
            f"The request did not arrive whole within {self._request_timeout:g} s",
        )
        self._refuse(408, "RequestTimeoutException", "Request timeout")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` (when h11 still allows a response) and close."""
        request_id = new_request_id()
        response = error_response(AwsApiError(code, message, status=status), request_id)
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                self._send_response(response, close=True)
        self._close()

    def _log(self, reason: Reason, details: str) -> None:
        self._emit(connect_failure(reason, details, self._facts))

    # -- output ----------------------------------------------------------------------------

    def _head_headers(self, response: HttpResponse) -> list[tuple[bytes, bytes]]:
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
        ]
        headers.append((b"Date", formatdate(usegmt=True).encode()))
        headers.append((b"Server", _SERVER.encode()))
        return headers

    def _send_response(self, response: HttpResponse, *, close: bool = False) -> None:
        headers = self._head_headers(response)
        headers.append((b"Content-Length", str(len(response.body)).encode()))
        if close:
            headers.append((b"Connection", b"close"))
        self._send(
            h11.Response(
                status_code=response.status, headers=headers, reason=_reason(response.status)
            )
        )
        if response.body:
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())

    def _send(self, event: h11.Event) -> None:
        data = self._h11.send(event)
        if data:
            self._channel.write(data)

    # -- timers and closing ----------------------------------------------------------------

    def _arm(self, delay: float, *, keep: bool = False) -> None:
        if keep and self._timer is not None:
            return
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, self._timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _close(self) -> None:
        if not self._closed:
            self._finish()
            self._channel.close()

    def _finish(self) -> None:
        self._closed = True
        self._cancel_timer()


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
