"""Real local services for rule-action tests: a moto server, and an HTTP server that records.

Both listen on 127.0.0.1 port 0 and are ready when their constructor returns; nothing here
sleeps. The HTTP server can stall: a request then waits until the test releases it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3

__all__ = ["REGION", "HttpRecorder", "aws_client", "moto_server"]

REGION = "us-east-1"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server for SQS, SNS, S3...; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy, only where used

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # returns once the server is listening
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for ``service`` at ``endpoint`` with moto's dummy credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class HttpRecorder:
    """An HTTP server that records every POST (path, lower-case headers, body).

    With ``stall`` set, each request waits for :meth:`release` before it is answered (an
    endpoint that hangs). Use as a context manager; it stops (releasing stalled requests) on
    exit.
    """

    def __init__(self, *, stall: bool = False) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._changed = threading.Condition()
        self._released = threading.Event()
        if not stall:
            self._released.set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with recorder._changed:
                    recorder.requests.append((self.path, headers, body))
                    recorder._changed.notify_all()
                recorder._released.wait()
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # listening on return
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_for_requests(
        self, count: int, timeout: float
    ) -> list[tuple[str, dict[str, str], bytes]]:
        """Block until ``count`` requests have arrived (they may still be stalled)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} request(s) arrived, not {count}")
            return list(self.requests)

    def release(self) -> None:
        """Answer the stalled requests and every later one at once."""
        self._released.set()

    def __enter__(self) -> HttpRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
