"""A real HTTP client of the console (http.client): JSON calls and the server-sent events stream.

The stream is read by a thread into a queue; a test waits for the event it needs with a
deadline, never a sleep. Events are parsed as the WHATWG "Server-sent events" section says
(``event:``/``data:`` lines, a blank line ends one; ``:`` lines are comments).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import queue
import socket
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from paho.mqtt.client import Client, MQTTMessage

from aws_iot_mock import pki
from aws_iot_mock.testing import DeviceFiles, IotBrokerThread

__all__ = ["TIMEOUT", "ConsoleHttp", "EventStream", "bundle_device", "received"]

TIMEOUT = 10.0


class ConsoleHttp:
    """Plain HTTP to the api door on loopback (a fresh connection per call)."""

    def __init__(self, port: int, *, host_header: str = "localhost", token: str | None = None):
        self.port = port
        self.host_header = host_header
        self.token = token

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Host": f"{self.host_header}:{self.port}"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """``(status, headers with lower-case names, body)``."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            data = None
            extra = dict(headers or {})
            if body is not None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                extra.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=data, headers=self.headers(extra))
            response = connection.getresponse()
            answer = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
        finally:
            connection.close()

    def get(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        assert status == 200, (status, body)
        return json.loads(body)

    def post(self, path: str, document: object) -> tuple[int, Any]:
        status, _, body = self.request("POST", path, document)
        return status, json.loads(body) if body else None


class EventStream:
    """``GET /console/api/events?...`` read by a thread; ``wait`` for an event."""

    def __init__(self, client: ConsoleHttp, query: str = "") -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
        self._connection.request("GET", f"/console/api/events{query}", headers=client.headers())
        self._socket = self._connection.sock
        self.response = self._connection.getresponse()
        self.status = self.response.status
        # Every event received, in order (a test's streams are short-lived and small).
        self._events: list[tuple[str, Any]] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()
        else:
            self.close()  # a refused stream: nothing to read, nothing left open

    def _read(self) -> None:
        name, data = "message", list[str]()
        try:
            while True:
                line = self.response.readline()
                if not line:
                    return
                text = line.decode("utf-8").rstrip("\n")
                if text == "":
                    if data:
                        with self._arrived:
                            self._events.append((name, json.loads("\n".join(data))))
                            self._arrived.notify_all()
                    name, data = "message", []
                elif text.startswith(":"):
                    continue
                elif text.startswith("event: "):
                    name = text.removeprefix("event: ")
                elif text.startswith("data: "):
                    data.append(text.removeprefix("data: "))
        except (OSError, ValueError, http.client.HTTPException):
            return

    def mark(self) -> int:
        """A position in the stream: ``wait(..., since=mark)`` looks only at later events."""
        with self._arrived:
            return len(self._events)

    def wait(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        timeout: float = TIMEOUT,
        since: int = 0,
    ) -> Any:
        """The first ``name`` event (from position ``since``) whose data passes ``predicate``."""

        def find() -> Any:
            for event, data in self._events[since:]:
                if event == name and predicate(data):
                    return data
            return None

        with self._arrived:
            found = self._arrived.wait_for(find, timeout)
        if found is None:
            raise AssertionError(f"no {name!r} event within {timeout} s")
        return found

    def close(self) -> None:
        if self._socket is not None:
            # Unblocks the reader thread's recv (close alone would not while it reads).
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(TIMEOUT)
        self.response.close()
        self._connection.close()
        if self._socket is not None:
            self._socket.close()  # the response owned it (a streamed answer), not the connection


def bundle_device(
    zip_data: bytes, directory: Path, thing_name: str, broker: IotBrokerThread
) -> DeviceFiles:
    """A device bundle from the console, unpacked into ``directory``, as ``DeviceFiles``.

    Checks what a bundle promises: AWS's file names, the private key unpacking as 0600, and
    the broker's root CA.
    """
    with zipfile.ZipFile(io.BytesIO(zip_data)) as bundle:
        names = bundle.namelist()
        key_info = next(i for i in bundle.infolist() if i.filename.endswith("-private.pem.key"))
        assert key_info.external_attr >> 16 == 0o100600
        bundle.extractall(directory)
    cert_name = next(n for n in names if n.endswith("-certificate.pem.crt"))
    certificate_id = pki.certificate_id(pki.load_certificate((directory / cert_name).read_bytes()))
    assert cert_name == f"{certificate_id[:10]}-certificate.pem.crt"
    assert (directory / "AmazonRootCA1.pem").read_bytes() == broker.root_ca_path.read_bytes()
    return DeviceFiles(
        client_id=thing_name,
        cert_path=directory / cert_name,
        key_path=directory / key_info.filename,
        root_ca_path=directory / "AmazonRootCA1.pem",
        certificate_id=certificate_id,
        certificate_arn="",
        thing_name=thing_name,
        policy_name="",
        endpoint=broker.endpoint,
        port=broker.port,
    )


def received(client: Client, topic: str) -> queue.Queue[MQTTMessage]:
    """Subscribe ``client`` to ``topic``; its messages arrive in the returned queue."""
    inbox: queue.Queue[MQTTMessage] = queue.Queue()
    subscribed: queue.Queue[object] = queue.Queue()
    client.on_message = lambda _c, _u, message: inbox.put(message)
    client.on_subscribe = lambda *_args: subscribed.put(True)
    client.subscribe(topic, qos=1)
    subscribed.get(timeout=TIMEOUT)
    return inbox
