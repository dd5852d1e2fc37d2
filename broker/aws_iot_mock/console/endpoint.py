"""The web console at ``/console`` on the api door: static pages, JSON and server-sent events.

A client of the same service layers as the CLI and the APIs, never a second way in:

- publishes go through the device core's one ingress (``DeviceCore.publish``) as the cloud
  side, as ``iot-data`` ``Publish`` and the testing API's ``iot_broker.publish`` do (topic
  rules, the reserved topic space and AWS's limits apply; the publish is logged);
- disconnect is ``DeviceCore.delete_connection``, what the ``DeleteConnection`` API calls;
- shadows are read and written by the shadow service (``ShadowService.process``, as the
  Device Shadow REST API is);
- registry reads and writes are ``IotControlPlane`` operations (``ListThings``,
  ``ListPrincipalThings``, ``UpdateCertificate``, ``TestAuthorization``...) on the control
  plane's worker thread, as boto3's calls are (the registry page:
  ``aws_iot_mock.console.registry``).

The live channel is server-sent events (``text/event-stream``, WHATWG HTML "Server-sent
events", https://html.spec.whatwg.org/multipage/server-sent-events.html) over the door's h11
HTTP: one-way (the broker to the page) is all the pages need, actions are plain POSTs, and
the browser's ``EventSource`` reconnects by itself; a WebSocket would add an upgrade path to the
door for no gain. Each page's filters (log filters, the test client's topic filters) are the
stream's query, so filtering happens here, in one place (``aws_iot_mock.console.views``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.console.access import ConsoleAccess, Refusal
from aws_iot_mock.console.live import LiveFeed, Watcher
from aws_iot_mock.console.registry import ControlCall, RegistryPage
from aws_iot_mock.console.views import (
    ConsoleRequestError,
    LogFilter,
    connection_row,
    explanation,
    parse_publish,
    parse_topic_filters,
    reason_catalogue,
)
from aws_iot_mock.core.device_core import DeviceCore
from aws_iot_mock.core.ingress import Publisher
from aws_iot_mock.http.messages import HttpRequest, HttpResponse, json_response
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, EventType, event_success
from aws_iot_mock.services.shadows import ShadowService

__all__ = ["CONSOLE_PRINCIPAL", "ConsoleEndpoint", "is_console_path"]

logger = logging.getLogger("aws_iot_mock.console")

# The principalId of the console's own actions in the log (publishes, shadow updates).
CONSOLE_PRINCIPAL = "aws-iot-mock-console"
# The once-a-second stats also keep idle streams (and the proxies between) alive.
_HEARTBEAT = 1.0
# Rows on the connections page; more are counted, not listed.
_CONNECTIONS_SHOWN = 500
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Everything the pages load is ours: no CDN, no inline script, no framing by other sites.
_PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)

Overview = Callable[[], dict[str, object]]


def is_console_path(path: str) -> bool:
    """Whether a request path is the console's (``/console`` and below)."""
    return path == "/console" or path.startswith("/console/")


def _json(document: object, status: int = 200) -> HttpResponse:
    response = json_response(document, "", status)
    headers = tuple(h for h in response.headers if h[0] != "x-amzn-RequestId")
    return replace(response, headers=(*headers, *_PAGE_HEADERS))


def _error(status: int, message: str, **extra: object) -> HttpResponse:
    return _json({"message": message, **extra}, status)


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        document = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConsoleRequestError(f"The body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConsoleRequestError("The body must be a JSON object")
    return document


def _name(document: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = document.get(key)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ConsoleRequestError(f"{key} is required")
    return value


class ConsoleEndpoint:
    """Serves ``/console`` requests handed over by the api door.

    Args:
        core: the device core.
        shadows: the Device Shadow service.
        control: runs one control-plane operation (``ControlEndpoint.run``).
        access: the token and Host rules.
        overview: the static part of the overview page (endpoint, doors, policies).
        root_ca: the root CA certificate file (downloaded from the overview).
        account_id: for the console's log records.
        region: for the certificate ARNs it asks the control plane about.
        clock: monotonic seconds (the rolling counts).
    """

    def __init__(
        self,
        core: DeviceCore,
        shadows: ShadowService,
        control: ControlCall,
        access: ConsoleAccess,
        *,
        overview: Overview,
        root_ca: Path,
        account_id: str,
        region: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core = core
        self._shadows = shadows
        self._control = control
        self.access = access
        self._overview = overview
        self._root_ca = root_ca
        self._account_id = account_id
        self._region = region
        self.feed = LiveFeed(clock)
        self.registry = RegistryPage(control, root_ca, f"arn:aws:iot:{region}:{account_id}:")
        # principal ID -> attached things; refilled after a registry change.
        self._things: dict[str, tuple[str, ...]] = {}
        self._things_pending: set[str] = set()
        self._last_connections = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # the loop's thread (log records come from others)
        self._tasks: set[asyncio.Task[None]] = set()
        core.router.observers.append(self.feed.on_message)
        core.registry_listeners.append(self._things.clear)

    # -- wiring ---------------------------------------------------------------------------

    def on_record(self, record: Mapping[str, object]) -> None:
        """A ``LogSink`` listener: hand the record to the open pages (on the loop's thread)."""
        loop = self._loop
        # A thread id comparison: this runs for every record (two per message at INFO).
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(self.feed.on_record, record)
            return
        self.feed.on_record(record)

    def tick(self) -> None:
        """Once a second (the broker's timer): stats and, when they changed, connections."""
        if self._loop is None:
            self._bind_loop()
        if not self.feed.watchers:
            return
        self.feed.broadcast("stats", self._stats())
        rows = self._connection_rows()
        text = json.dumps(rows, sort_keys=True)
        if text != self._last_connections:
            self._last_connections = text
            self.feed.broadcast("connections", rows)

    def _bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def close(self) -> None:
        """Stop the background look-ups."""
        for task in self._tasks:
            task.cancel()

    # -- requests -------------------------------------------------------------------------

    async def serve(
        self, request: HttpRequest, facts: ConnectionFacts, *, secure: bool
    ) -> HttpResponse:
        """Answer one request under ``/console``."""
        if self._loop is None:
            self._bind_loop()
        verdict = self.access.check(request)
        if isinstance(verdict, Refusal):
            return _error(verdict.status, verdict.message)
        path = request.path
        if verdict.set_cookie:
            # Drop the token from the address bar (and the history); the cookie carries it.
            target = path if request.method == "GET" and "/api/" not in path else None
            if target is not None:
                return HttpResponse(
                    303,
                    (
                        ("Location", "/console/"),
                        ("Set-Cookie", self.access.cookie_header(secure=secure)),
                        *_PAGE_HEADERS,
                    ),
                )
        try:
            return await self._route(request, path, facts)
        except ConsoleRequestError as exc:
            return _error(400, str(exc))
        except AwsApiError as error:
            return _error(error.status, error.message, code=error.code)

    async def _route(self, request: HttpRequest, path: str, facts: ConnectionFacts) -> HttpResponse:
        method = request.method
        if path == "/console":
            return HttpResponse(301, (("Location", "/console/"), *_PAGE_HEADERS))
        if path == "/console/" and method == "GET":
            return self._static("index.html")
        if path.startswith("/console/static/") and method == "GET":
            return self._static(path.removeprefix("/console/static/"))
        gets: dict[str, Callable[[HttpRequest], Awaitable[HttpResponse]]] = {
            "/console/api/overview": self._get_overview,
            "/console/api/root-ca.pem": self._get_root_ca,
            "/console/api/connections": self._get_connections,
            "/console/api/log": self._get_log,
            "/console/api/reasons": self._get_reasons,
            "/console/api/events": self._get_events,
            "/console/api/topic-filter": self._get_topic_filter,
            "/console/api/things": self._get_things,
            "/console/api/shadows": self._get_shadows,
            "/console/api/shadow": self._get_shadow,
            "/console/api/registry/things": self._get_registry(self.registry.things),
            "/console/api/registry/thing": self._get_registry(self.registry.thing),
            "/console/api/registry/certificates": self._get_registry(self.registry.certificates),
            "/console/api/registry/certificate": self._get_registry(self.registry.certificate),
            "/console/api/registry/policies": self._get_registry(self.registry.policies),
            "/console/api/registry/policy": self._get_registry(self.registry.policy),
        }
        posts: dict[str, Callable[[HttpRequest, ConnectionFacts], Awaitable[HttpResponse]]] = {
            "/console/api/disconnect": self._post_disconnect,
            "/console/api/publish": self._post_publish,
            "/console/api/shadow": self._post_shadow,
            "/console/api/registry/things": self._post_registry(self.registry.create_thing),
            "/console/api/registry/certificate-status": self._post_registry(
                self.registry.update_certificate
            ),
            "/console/api/registry/test-authorization": self._post_registry(
                self.registry.test_authorization
            ),
            "/console/api/registry/certificates": self._post_create_certificate,
        }
        if method == "GET" and path in gets:
            return await gets[path](request)
        if method == "POST" and path in posts:
            return await posts[path](request, self._facts(facts))
        if path in gets or path in posts:
            return _error(405, f"{method} is not served on {path}")
        return _error(404, f"No console page {path}")

    def _facts(self, facts: ConnectionFacts) -> ConnectionFacts:
        """The console's actions are logged as the cloud side (HTTP, the console principal)."""
        return replace(facts, principal_id=CONSOLE_PRINCIPAL, protocol="HTTP")

    def _static(self, name: str) -> HttpResponse:
        suffix = Path(name).suffix
        if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
            return _error(404, f"No console file {name!r}")
        resource = resources.files("aws_iot_mock.console").joinpath("static", name)
        if not resource.is_file():
            return _error(404, f"No console file {name!r}")
        return HttpResponse(
            200, (("Content-Type", _STATIC_TYPES[suffix]), *_PAGE_HEADERS), resource.read_bytes()
        )

    # -- overview and connections ---------------------------------------------------------

    def _stats(self) -> dict[str, object]:
        return {
            "connected": len(self._core.connections),
            "messagesPerSecond": self.feed.messages.total(),
            "refusalsLastMinute": self.feed.refusals.total(),
        }

    async def _get_overview(self, request: HttpRequest) -> HttpResponse:
        return _json({**self._overview(), **self._stats()})

    async def _get_root_ca(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            200,
            (
                ("Content-Type", "application/x-pem-file"),
                ("Content-Disposition", 'attachment; filename="AmazonRootCA1.pem"'),
                *_PAGE_HEADERS,
            ),
            self._root_ca.read_bytes(),
        )

    def _connection_rows(self) -> dict[str, object]:
        connections = sorted(
            (c for c in self._core.connections if c.client_id is not None),
            key=lambda c: c.client_id or "",
        )
        rows = []
        for connection in connections[:_CONNECTIONS_SHOWN]:
            client_id = connection.client_id or ""
            principal_id = connection.principal.principal_id
            things = self._things.get(principal_id)
            if things is None and connection.principal.certificate_id is not None:
                self._look_up_things(principal_id)
            session = self._core.router.sessions.get(client_id)
            rows.append(connection_row(connection, session, things or ()))
        return {"connections": rows, "total": len(connections)}

    def _look_up_things(self, certificate_id: str) -> None:
        """Ask the control plane which things the certificate is attached to (in background)."""
        if certificate_id in self._things_pending or len(self._things_pending) > 64:
            return
        self._things_pending.add(certificate_id)
        arn = f"arn:aws:iot:{self._region}:{self._account_id}:cert/{certificate_id}"

        async def look_up() -> None:
            try:
                answer = await self._control("ListPrincipalThings", {"principal": arn})
            except AwsApiError:
                answer = {}
            finally:
                self._things_pending.discard(certificate_id)
            self._things[certificate_id] = tuple(answer.get("things", ()))

        task = asyncio.get_running_loop().create_task(look_up())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _get_connections(self, request: HttpRequest) -> HttpResponse:
        return _json(self._connection_rows())

    async def _post_disconnect(self, request: HttpRequest, facts: ConnectionFacts) -> HttpResponse:
        body = _body(request)
        client_id = _name(body, "clientId")
        assert client_id is not None
        if not self._core.delete_connection(
            client_id,
            clean_session=body.get("cleanSession") is True,
            prevent_will=body.get("preventWillMessage") is True,
        ):
            return _error(404, f"Client {client_id} is not connected")
        self._core.emit(event_success(EventType.DELETE_CONNECTION, facts))
        return _json({"clientId": client_id, "disconnected": True})

    # -- log ------------------------------------------------------------------------------

    async def _get_log(self, request: HttpRequest) -> HttpResponse:
        return _json({"entries": self.feed.recent(LogFilter.from_query(request.query()))})

    async def _get_reasons(self, request: HttpRequest) -> HttpResponse:
        return _json({"reasons": reason_catalogue()})

    async def _get_events(self, request: HttpRequest) -> HttpResponse:
        query = parse_qs(request.query_string, keep_blank_values=False)
        log_filter = LogFilter.from_query({k: v[-1] for k, v in query.items()})
        topics = parse_topic_filters(query.get("topic", ()))
        ready = asyncio.Event()
        watcher = self.feed.watch(log_filter, topics, ready.set)
        if watcher is None:
            return _error(503, "Too many console pages are open; close one")
        headers = (
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("X-Accel-Buffering", "no"),
            *_PAGE_HEADERS,
        )
        first = {"stats": self._stats(), "connections": self._connection_rows()}
        watcher.push("hello", first)
        return HttpResponse(200, headers, b"retry: 2000\n\n", stream=self._stream(watcher, ready))

    async def _stream(self, watcher: Watcher, ready: asyncio.Event) -> AsyncIterator[bytes]:
        try:
            while True:
                if not watcher.events and not watcher.dropped:
                    ready.clear()
                    try:
                        await asyncio.wait_for(ready.wait(), _HEARTBEAT * 15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                chunk = "".join(f"event: {name}\ndata: {data}\n\n" for name, data in watcher.take())
                yield chunk.encode("utf-8")
        finally:
            self.feed.unwatch(watcher)

    # -- MQTT test client -----------------------------------------------------------------

    async def _get_topic_filter(self, request: HttpRequest) -> HttpResponse:
        """Check one topic filter before the page subscribes with it (AWS's filter rules)."""
        topic = _name(request.query(), "topic")
        assert topic is not None
        return _json({"topicFilters": list(parse_topic_filters([topic]))})

    async def _post_publish(self, request: HttpRequest, facts: ConnectionFacts) -> HttpResponse:
        publish = parse_publish(request.body)
        # The cloud side, like iot-data Publish by a trusted IAM caller: no device policy.
        refusal = self._core.publish(Publisher(facts, None), publish)
        if refusal is not None:
            return _error(
                400,
                refusal.details,
                reason=refusal.reason.name,
                explanation=explanation(refusal.reason.name),
            )
        return _json({"topic": publish.topic, "published": True})

    # -- registry -------------------------------------------------------------------------

    @staticmethod
    def _get_registry(
        read: Callable[[Mapping[str, str]], Awaitable[dict[str, Any]]],
    ) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
        async def get(request: HttpRequest) -> HttpResponse:
            return _json(await read(request.query()))

        return get

    @staticmethod
    def _post_registry(
        write: Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]],
    ) -> Callable[[HttpRequest, ConnectionFacts], Awaitable[HttpResponse]]:
        async def post(request: HttpRequest, facts: ConnectionFacts) -> HttpResponse:
            return _json(await write(_body(request)))

        return post

    async def _post_create_certificate(
        self, request: HttpRequest, facts: ConnectionFacts
    ) -> HttpResponse:
        """``CreateKeysAndCertificate``: the answer is the device bundle (a zip), once."""
        bundle = await self.registry.create_certificate(_body(request))
        return HttpResponse(
            201,
            (
                ("Content-Type", "application/zip"),
                ("Content-Disposition", f'attachment; filename="{bundle.file_name}"'),
                *_PAGE_HEADERS,
            ),
            bundle.data,
        )

    # -- shadows --------------------------------------------------------------------------

    async def _get_things(self, request: HttpRequest) -> HttpResponse:
        query = request.query()
        members: dict[str, Any] = {"maxResults": 250}
        if query.get("nextToken"):
            members["nextToken"] = query["nextToken"]
        answer = await self._control("ListThings", members)
        return _json(
            {
                "things": [t.get("thingName") for t in answer.get("things", ())],
                "nextToken": answer.get("nextToken"),
            }
        )

    async def _get_shadows(self, request: HttpRequest) -> HttpResponse:
        thing_name = _name(request.query(), "thingName")
        assert thing_name is not None
        store = self._shadows.store
        # As ListNamedShadowsForThing reads it; whether the classic shadow exists, too.
        return _json(
            {
                "thingName": thing_name,
                "classic": store.get(thing_name, None) is not None,
                "named": store.list_named_shadows(thing_name),
            }
        )

    async def _get_shadow(self, request: HttpRequest) -> HttpResponse:
        query = request.query()
        thing_name = _name(query, "thingName")
        assert thing_name is not None
        shadow_name = _name(query, "shadowName", required=False)
        return self._shadow_answer("get", thing_name, shadow_name, b"", None)

    async def _post_shadow(self, request: HttpRequest, facts: ConnectionFacts) -> HttpResponse:
        body = _body(request)
        operation = body.get("operation")
        if operation not in ("update", "delete"):
            raise ConsoleRequestError("operation is update or delete")
        thing_name = _name(body, "thingName")
        assert thing_name is not None
        shadow_name = _name(body, "shadowName", required=False)
        payload = b""
        if operation == "update":
            document = body.get("document")
            if not isinstance(document, dict):
                raise ConsoleRequestError("document is a shadow request document (JSON object)")
            payload = json.dumps(document).encode("utf-8")
        return self._shadow_answer(operation, thing_name, shadow_name, payload, facts)

    def _shadow_answer(
        self,
        operation: str,
        thing_name: str,
        shadow_name: str | None,
        payload: bytes,
        facts: ConnectionFacts | None,
    ) -> HttpResponse:
        # As the Device Shadow REST API: an accepted update publishes /accepted, /delta and
        # /documents to MQTT subscribers; a rejection is answered here only.
        outcome = self._shadows.process(
            operation, thing_name, shadow_name, payload, facts=facts, via_rest=True
        )
        topic, answer = outcome.response
        document = json.loads(answer) if answer else {}
        return _json({"accepted": outcome.accepted, "topic": topic, "document": document})
