"""The broker process: PKI on disk, the registry, the device core, every listener, and shutdown.

``Broker`` is an async context manager. ``start()`` returns once every listener is bound, so a
TLS handshake started after it returns is served (no sleeps needed by callers); ``stop()`` closes
the listeners, every connection, the stores and the log file.

What runs where: the device core (``aws_iot_mock.core``) holds the MQTT rules, sessions and
routing, pure; each listener is a TLS front door (``aws_iot_mock.doors.tls_door``) whose accepted
connections go to a protocol handler by route (MQTT, HTTPS with X.509, and the control-plane
API on the ``api`` door); this module wires them together and runs the timers.

The registry is shared with the CLI and the control-plane API: when its generation moves, live
connections' permissions are re-read (the device core), and so are the trusted CAs and the
served domain names (``_refresh_registry_state``): a domain configuration created through the
API is accepted in SNI, with its security policy, from the next tick (within a second), and the
server certificates are re-issued to carry its name.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import importlib
import logging
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aws_iot_mock import __version__
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.certs_dir import CertsDirectory
from aws_iot_mock.config import Config, ListenerConfig
from aws_iot_mock.doors.listeners import AcceptFailureLog, BoundListener, bind_listener
from aws_iot_mock.doors.tls_door import ByteChannel, DoorHandler, FrontDoor, HandlerFactory
from aws_iot_mock.errors import StorageError
from aws_iot_mock.hosts import is_loopback_host
from aws_iot_mock.logs.cloudwatch import ConnectionFacts, LogLevel, Reason, connect_failure
from aws_iot_mock.logs.sink import LogSink
from aws_iot_mock.server.domains import RegistryDomain, ServedDomains, served_domains
from aws_iot_mock.server.registry_view import RegistryView
from aws_iot_mock.state.instance_lock import StateDirectoryLock
from aws_iot_mock.tls.context import ServerCredentials, create_server_context
from aws_iot_mock.tls.door_routes import DoorKind, Route, alpn_protocols_offered
from aws_iot_mock.tls.security_policies import get_security_policy
from aws_iot_mock.tls.verdicts import sni_alert

if TYPE_CHECKING:
    # Built on first use (see Broker.control_plane): devices never need them, and importing
    # them took a third of the broker's start-up.
    from aws_iot_mock.api.control_endpoint import ControlEndpoint
    from aws_iot_mock.api.iot_control import IotControlPlane, Operation
    from aws_iot_mock.aws.jobs.model import JobsBehaviour
    from aws_iot_mock.console.endpoint import ConsoleEndpoint
    from aws_iot_mock.core.device_core import DeviceCore
    from aws_iot_mock.iam.store import IamStore
    from aws_iot_mock.mqtt.message import Message
    from aws_iot_mock.registry import CertificateRegistry
    from aws_iot_mock.rules.runtime import RulesEngine
    from aws_iot_mock.rules.topic_rules import TopicRuleService
    from aws_iot_mock.services.jobs import JobsService
    from aws_iot_mock.services.provisioning_templates import ProvisioningTemplateService
    from aws_iot_mock.services.shadows import ShadowService
    from aws_iot_mock.state.jobs import JobStore
    from aws_iot_mock.state.provisioning import ProvisioningStore
    from aws_iot_mock.state.sessions import SqliteSessionStore
    from aws_iot_mock.state.shadows import ShadowStore
    from aws_iot_mock.state.topic_rules import TopicRuleStore

# What Broker.start builds after the data doors listen (the device core, its services, the
# rules engine, the HTTPS and WebSocket endpoints): imported on a worker thread meanwhile, so
# that the event loop serves handshakes. A module missing here is imported on the loop instead
# (slower start, same broker).
_DEVICE_SERVICE_MODULES = (
    "aws_iot_mock.api.data_endpoint",
    "aws_iot_mock.authz.principal_permissions",
    "aws_iot_mock.authz.registry_permissions",
    "aws_iot_mock.core.device_core",
    "aws_iot_mock.doors.mqtt_door",
    "aws_iot_mock.iam.authorization",
    "aws_iot_mock.iam.store",
    "aws_iot_mock.registry",
    "aws_iot_mock.resources",
    "aws_iot_mock.rules.runtime",
    "aws_iot_mock.rules.topic_rules",
    "aws_iot_mock.services.fleet_provisioning",
    "aws_iot_mock.services.jobs",
    "aws_iot_mock.services.provisioning_templates",
    "aws_iot_mock.services.shadows",
    "aws_iot_mock.state.jobs",
    "aws_iot_mock.state.mailbox",
    "aws_iot_mock.state.provisioning",
    "aws_iot_mock.state.sessions",
    "aws_iot_mock.state.shadows",
    "aws_iot_mock.state.topic_rules",
)


# The interpreter's thread switch interval while the worker thread imports the device
# services' modules (sys.setswitchinterval; the default is 5 ms). The event loop thread, woken by
# a handshake's bytes, waits for the GIL until the importing thread gives it up: at 5 ms a
# handshake's few loop iterations waited 20-30 ms; at 0.5 ms they wait a tenth of that.
_IMPORT_SWITCH_INTERVAL = 0.0005


_import_lock = threading.Lock()


def _import_device_service_modules() -> None:
    """Import the device services' modules (on a worker thread; see Broker._start).

    One thread at a time (brokers started at once in one process: the second finds the modules
    imported), so that the switch interval is restored to what it was before the first.
    """
    with _import_lock:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(min(previous, _IMPORT_SWITCH_INTERVAL))
        try:
            for name in _DEVICE_SERVICE_MODULES:
                importlib.import_module(name)
        finally:
            sys.setswitchinterval(previous)


__all__ = ["Broker", "create_sink"]


def _token_urlsafe(size: int) -> str:
    """``secrets.token_urlsafe(size)``: ``size`` random bytes from the OS, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode("ascii")


logger = logging.getLogger("aws_iot_mock")

# How long stop() waits for connections to finish closing before aborting them.
_SHUTDOWN_GRACE = 2.0
# The CLI posts shadow requests and job verbs to mailboxes the running broker answers.
_MAILBOX_POLL = 0.2
# How long an api-door worker waits for the event loop to run a Jobs operation.
_LOOP_CALL_TIMEOUT = 10.0
# Log records kept for a console built later (the console's own backlog, console.live.BACKLOG).
_CONSOLE_BACKLOG = 500


def _on_loop(
    operations: Mapping[str, Operation], loop: asyncio.AbstractEventLoop
) -> dict[str, Operation]:
    """The same operations, run on ``loop`` whatever thread calls them.

    The Jobs service shares its in-memory state with the device core and publishes through it
    (``notify``, ``notify-next``); both belong to the event loop. The api door calls operations
    on its worker thread, so each call is handed to the loop and the worker waits for the
    answer; a call made on the loop itself (the CLI mailbox's timer) runs at once.
    """
    loop_thread = threading.get_ident()

    def on_loop(operation: Operation) -> Operation:
        def run(request: dict[str, Any]) -> dict[str, Any]:
            if threading.get_ident() == loop_thread:
                return operation(request)
            future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

            def call() -> None:
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(operation(request))
                except BaseException as exc:  # handed to the waiting worker, re-raised there
                    future.set_exception(exc)

            try:
                loop.call_soon_threadsafe(call)
                return future.result(timeout=_LOOP_CALL_TIMEOUT)
            except (RuntimeError, TimeoutError):
                # The loop is closed or stopping (the broker shuts down): nothing was applied
                # if the call never started.
                future.cancel()
                raise AwsApiError(
                    "ServiceUnavailableException", "The service is shutting down; retry."
                ) from None

        return run

    return {name: on_loop(operation) for name, operation in operations.items()}


def create_sink(config: Config) -> LogSink:
    """Create the log sink the configuration asks for (with CloudWatch Logs when configured)."""
    sink = LogSink(
        LogLevel[config.logging.level],
        file=config.logging.file,
        stdout=config.logging.stdout,
        account_id=config.account_id,
        buffer_bytes=config.logging.buffer_bytes,
    )
    if config.logging.cloudwatch is not None:
        from aws_iot_mock.logs.cloudwatch_sink import CloudWatchLogsOutput  # noqa: PLC0415

        sink.add_output(
            CloudWatchLogsOutput(
                config.logging.cloudwatch, region=config.region, drop_report=sink.drop_report_line
            )
        )
    return sink


class Broker:
    """The endpoint: every configured door over one device core.

    Args:
        config: the validated configuration.
        sink: where log records go; by default the one the configuration describes.
        keep_alive_time_scale: real seconds per keep-alive second (tests shrink it).
        jobs_behaviour: the Jobs choices where AWS is silent (``JobsBehaviour``'s defaults).
    """

    def __init__(
        self,
        config: Config,
        *,
        sink: LogSink | None = None,
        keep_alive_time_scale: float = 1.0,
        jobs_behaviour: JobsBehaviour | None = None,
    ) -> None:
        self.config = config
        self.sink = sink if sink is not None else create_sink(config)
        self.certs = CertsDirectory(config.certs_dir)
        self._keep_alive_time_scale = keep_alive_time_scale
        self._store: SqliteSessionStore | None = None
        self._shadow_store: ShadowStore | None = None
        self._core: DeviceCore | None = None
        self._shadows: ShadowService | None = None
        self._jobs_behaviour = jobs_behaviour
        self._job_store: JobStore | None = None
        self._jobs: JobsService | None = None
        self._provisioning_store: ProvisioningStore | None = None
        self._provisioning_templates: ProvisioningTemplateService | None = None
        self._registry: CertificateRegistry | None = None
        # The doors' registry reads until the registry is open (see _start).
        self._registry_view: RegistryView | None = None
        self._state_lock: StateDirectoryLock | None = None
        self._accept_failures = AcceptFailureLog(
            self.sink.emit, self._accept_failure_record, time.monotonic
        )
        self._rule_store: TopicRuleStore | None = None
        self._rules_engine: RulesEngine | None = None
        self._topic_rules: TopicRuleService | None = None
        self._iam: IamStore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._control_plane: IotControlPlane | None = None
        self._control: ControlEndpoint | None = None
        self._console: ConsoleEndpoint | None = None
        # The console's access token, decided at start (the banner prints its URL at once).
        self._console_token = ""
        self._console_token_required = True
        self._console_enabled = False
        # Whether the sink keeps the recent records until the console exists (it shows them);
        # then the console keeps them.
        self._early_records = False
        self._domains = served_domains(config, ())
        self._servers: list[asyncio.Server] = []
        self._doors: list[FrontDoor] = []
        self._listeners: list[BoundListener] = []
        self._registered_cas: tuple[str, ...] = ()
        self._tick_handle: asyncio.TimerHandle | None = None
        self._mailbox_failing = False
        self._mailbox_handle: asyncio.TimerHandle | None = None

    @property
    def endpoint(self) -> str:
        """The host name devices must send as SNI (``describe-endpoint``'s answer)."""
        return self.config.endpoint

    @property
    def listeners(self) -> tuple[BoundListener, ...]:
        """Every configured listener: its bound port, or why it is off."""
        return tuple(self._listeners)

    @property
    def ports(self) -> dict[str, int]:
        """Door name -> the port actually bound, for every door that is serving."""
        return {item.door: item.port for item in self._listeners if item.port is not None}

    @property
    def port(self) -> int:
        """The MQTT door's port (the configured one, or the one port 0 picked)."""
        port = self.ports.get("mqtt")
        if port is None:
            raise RuntimeError("the broker is not started, or serves no MQTT door")
        return port

    @property
    def console(self) -> ConsoleEndpoint | None:
        """The web console, when the api door serves it (while the broker runs).

        Built on first use (the api door's first connection, or here): devices never need it.
        """
        if self._console is None and self._serves_console():
            self._control_endpoint()
        return self._console

    @property
    def control_plane(self) -> IotControlPlane:
        """The ``iot`` control plane's service layer, with the built-in services' operations.

        The api door, the CLI's job verbs (through the mailbox) and tests call it. Built on
        first use: a device never needs it, and its modules took a third of the start-up.
        """
        if self._control_plane is None:
            if self._registry is None or self._loop is None or self._topic_rules is None:
                raise RuntimeError("the broker is not started")
            # Imported here: see the docstring.
            from aws_iot_mock.api.iot_control import IotControlPlane  # noqa: PLC0415

            control_plane = IotControlPlane(self._registry, self.config, certs=self.certs)
            # Built-in services (jobs, provisioning, rules) add their operations to this one
            # layer, which the api door, the CLI (through the jobs mailbox) and tests all call.
            control_plane.add_operations(_on_loop(self.jobs.operations(), self._loop))
            control_plane.add_operations(self.provisioning_templates.operations())
            control_plane.add_operations(self._topic_rules.operations())
            self._control_plane = control_plane
        return self._control_plane

    @property
    def console_url(self) -> str | None:
        """The console's URL (with its token when one is required), or None when not served.

        ``http://`` when the api door listens on loopback (plain HTTP is served there),
        ``https://`` otherwise (the root CA must be trusted by the browser).
        """
        api = next((b for b in self._listeners if b.door == "api" and b.port is not None), None)
        if not self._serves_console() or api is None or api.port is None:
            return None
        if is_loopback_host(api.host):
            url = f"http://localhost:{api.port}/console/"
        else:
            url = f"https://localhost:{api.port}/console/"
        if self._console_token_required:
            url += f"?token={self._console_token}"
        return url

    def _serves_console(self) -> bool:
        """Whether the console is served (configured, and the broker is started)."""
        return self._console_enabled

    @property
    def root_ca_path(self) -> Path:
        """The root CA certificate devices must trust."""
        return self.certs.root_ca_path

    @property
    def registry(self) -> CertificateRegistry:
        """The certificate registry (open while the broker runs)."""
        if self._registry is None:
            raise RuntimeError("the broker is not started")
        return self._registry

    @property
    def iam(self) -> IamStore:
        """The local IAM (users, access keys, policies) SigV4 callers are checked against."""
        if self._iam is None:
            raise RuntimeError("the broker is not started")
        return self._iam

    @property
    def core(self) -> DeviceCore:
        """The device core (while the broker runs)."""
        if self._core is None:
            raise RuntimeError("the broker is not started")
        return self._core

    @property
    def shadows(self) -> ShadowService:
        """The Device Shadow service (while the broker runs)."""
        if self._shadows is None:
            raise RuntimeError("the broker is not started")
        return self._shadows

    @property
    def jobs(self) -> JobsService:
        """The Jobs service, also the service layer of the job verbs (while the broker runs)."""
        if self._jobs is None:
            raise RuntimeError("the broker is not started")
        return self._jobs

    @property
    def provisioning_templates(self) -> ProvisioningTemplateService:
        """The provisioning-template verbs' service layer (while the broker runs)."""
        if self._provisioning_templates is None:
            raise RuntimeError("the broker is not started")
        return self._provisioning_templates

    @property
    def rules_engine(self) -> RulesEngine:
        """The rules engine (while the broker runs)."""
        if self._rules_engine is None:
            raise RuntimeError("the broker is not started")
        return self._rules_engine

    def add_message_listener(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener(message)`` for every message the broker routes (after authorization).

        Must be called after ``start()``. Messages published by the broker itself (lifecycle
        events, service answers) are included; ``message.sender`` is None for those.
        """
        self.core.router.observers.append(listener)

    async def start(self) -> None:
        """Create PKI material if missing, open the stores, and bind every listener.

        Raises:
            aws_iot_mock.errors.ListenerBindError: a required listener cannot bind.
            aws_iot_mock.state.instance_lock.StateDirectoryInUseError: another broker serves
                this state directory.
            aws_iot_mock.errors.BrokerError: the certs directory or a store is unusable.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        config = self.config
        loop = self._loop = asyncio.get_running_loop()
        # First: a second broker on this state directory stops here, before touching a store.
        self._state_lock = StateDirectoryLock.acquire(config.state_dir)
        self._accept_failures.install(loop)
        registry_domains, registered_cas = self._read_registry_for_doors()
        self._domains = served_domains(config, registry_domains)
        # Creates the root CA first if it is missing; certificates already checked at an
        # earlier start are not parsed again (certs_dir: .checked.json).
        self.certs.ensure_server_certificates(self._domains.server_names)
        self._registered_cas = tuple(registered_cas)
        log_successes = self.sink.level >= LogLevel.INFO
        if config.control_plane.console:
            self._prepare_console()
        # The data doors listen first, with the handshake's needs only (contexts, registry):
        # handshakes are served while the device services' modules are imported on a worker
        # thread (about a second of a cold start, more than all the rest); a connection whose
        # handshake completes meanwhile waits for its route's handler (FrontDoor.serve_routes).
        # The api door (no device uses it) opens last. start() returns when all are served.
        # The first data door's contexts are built here; the others' on a worker thread
        # (OpenSSL reads the certificate files without the GIL), so that the loop serves the
        # first door's handshakes meanwhile.
        bound: dict[int, tuple[asyncio.Server | None, BoundListener, FrontDoor]] = {}
        for index, listener in enumerate(config.listeners):
            if listener.door != DoorKind.API.value:
                contexts = self._create_contexts(DoorKind(listener.door)) if not bound else None
                bound[index] = await self._open_door(listener, log_successes, contexts=contexts)
        if any(name not in sys.modules for name in _DEVICE_SERVICE_MODULES):
            await asyncio.to_thread(_import_device_service_modules)
        if self._registry_view is not None:
            self._registry_view.close()
            self._registry_view = None
            self._open_registry()
            # What changed since the view's reads (CAs, domain configurations) applies now.
            self._refresh_registry_state()
        handlers = self._build_device_services(loop, self.registry, log_successes)
        for _, _, door in bound.values():
            door.serve_routes(handlers)
        for index, listener in enumerate(config.listeners):
            if index not in bound:
                bound[index] = await self._open_door(listener, log_successes, handlers)
        for index in range(len(config.listeners)):
            server, listening, _ = bound[index]
            self._listeners.append(listening)
            if server is None:
                logger.warning("%s door off: %s", listening.door, listening.off_reason)
            else:
                logger.info(
                    "%s door listening on %s:%d", listening.door, listening.host, listening.port
                )
        self._tick()
        self._poll_mailbox()

    async def _open_door(
        self,
        listener: ListenerConfig,
        log_successes: bool,
        handlers: Mapping[Route, HandlerFactory] | None = None,
        *,
        contexts: Mapping[str, ssl.SSLContext] | None = None,
    ) -> tuple[asyncio.Server | None, BoundListener, FrontDoor]:
        """Bind one listener; without ``handlers``, its connections wait for serve_routes.

        Without ``contexts``, the door's contexts are built on a worker thread.
        """
        config = self.config
        door_kind = DoorKind(listener.door)
        if contexts is None:
            contexts = await asyncio.to_thread(self._create_contexts, door_kind)
        door = FrontDoor(
            door=door_kind,
            account_id=config.account_id,
            contexts=contexts,
            policy_for=self._domains.policy_for,
            accepted_names=self._accepted_names(door_kind),
            disabled_names=self._domains.disabled,
            plaintext_on_loopback=door_kind is DoorKind.API,
            require_sni=self._require_sni(door_kind),
            registry_status=self._certificate_status,
            emit=self.sink.emit,
            handlers=handlers if handlers is not None else {},
            handlers_pending=handlers is None,
            handshake_timeout=config.tls.handshake_timeout,
            log_successes=log_successes,
            log_debug=self.sink.level >= LogLevel.DEBUG,
        )
        door.descriptor_watch = self._accept_failures.note_descriptor
        server, listening = await bind_listener(listener, door.protocol_factory)
        if server is not None:
            # Known to stop() at once: a failure later in start() closes it.
            self._servers.append(server)
            self._doors.append(door)
        return server, listening, door

    def _read_registry_for_doors(self) -> tuple[Sequence[RegistryDomain], Sequence[str]]:
        """The registry's domain configurations and ACTIVE CAs' PEMs, for the doors to listen.

        Until the registry package is loaded (on the worker thread, see _start), the doors
        read the registry database through a view (server.registry_view). The registry is
        opened at once instead when its package is loaded already (the test fixtures), or when
        the database is missing or has another schema version (it creates or migrates it).
        """
        if "aws_iot_mock.registry" not in sys.modules:
            self._registry_view = RegistryView.open(self.config.state_dir)
        view = self._registry_view
        if view is not None:
            return view.domain_configurations(), view.active_ca_certificates_pem()
        registry = self._open_registry()
        return registry.list_domain_configurations(), registry.active_ca_certificates_pem()

    def _open_registry(self) -> CertificateRegistry:
        """Open (create, migrate) the registry; the broker's from now on."""
        from aws_iot_mock.registry import CertificateRegistry  # noqa: PLC0415 (see _start)

        config = self.config
        self._registry = CertificateRegistry.open(
            config.state_dir, region=config.region, account_id=config.account_id
        )
        return self._registry

    def _certificate_status(self, certificate_id: str) -> str | None:
        """A client certificate's registry status, or None if unregistered (every handshake)."""
        if self._registry is not None:
            record = self._registry.get_certificate(certificate_id)
            return None if record is None else record.status.value
        if self._registry_view is not None:
            return self._registry_view.certificate_status(certificate_id)
        raise RuntimeError("the broker is not started")

    def _build_device_services(
        self, loop: asyncio.AbstractEventLoop, registry: CertificateRegistry, log_successes: bool
    ) -> dict[Route, HandlerFactory]:
        """Build the stores, the device core, its services and the rules engine.

        Returns:
            The handler factory of every route.
        """
        # Imported here, by then already on the worker thread (_import_device_service_modules).
        from aws_iot_mock.api.data_endpoint import DataEndpoint  # noqa: PLC0415
        from aws_iot_mock.api.iot_data import IotDataApi  # noqa: PLC0415
        from aws_iot_mock.api.iot_jobs_data import IotJobsDataApi  # noqa: PLC0415
        from aws_iot_mock.api.sigv4_caller import SigV4Authenticator  # noqa: PLC0415
        from aws_iot_mock.authz.principal_permissions import (  # noqa: PLC0415
            PermissionsByPrincipal,
        )
        from aws_iot_mock.authz.registry_permissions import Authorizer  # noqa: PLC0415
        from aws_iot_mock.core.device_core import CoreSettings, DeviceCore  # noqa: PLC0415
        from aws_iot_mock.doors.mqtt_door import FlushScheduler, MqttDoorHandler  # noqa: PLC0415
        from aws_iot_mock.doors.websocket_door import WebSocketDoor  # noqa: PLC0415
        from aws_iot_mock.iam.authorization import IamAuthorizer  # noqa: PLC0415
        from aws_iot_mock.iam.store import IamStore  # noqa: PLC0415
        from aws_iot_mock.rules.runtime import RulesEngine  # noqa: PLC0415
        from aws_iot_mock.rules.topic_rules import TopicRuleService  # noqa: PLC0415
        from aws_iot_mock.services.shadows import ShadowService  # noqa: PLC0415
        from aws_iot_mock.state.sessions import SqliteSessionStore  # noqa: PLC0415
        from aws_iot_mock.state.shadows import ShadowStore  # noqa: PLC0415
        from aws_iot_mock.state.topic_rules import TopicRuleStore  # noqa: PLC0415

        config = self.config
        self._iam = iam = IamStore.open(config.state_dir, account_id=config.account_id)
        iam_authorizer = IamAuthorizer(iam, region=config.region)
        # The event loop must not wait for another process's lock: writes wait 0.1 s at
        # most, and a busy database is not tried again for a second (state/sqlite.py).
        self._store = SqliteSessionStore.open(config.state_dir).bound_waits()
        core = self._core = DeviceCore(
            self._store,
            log_success=self.sink.emit_success,
            settings=CoreSettings(
                account_id=config.account_id,
                connect_timeout=config.tls.connect_timeout,
                keep_alive_time_scale=self._keep_alive_time_scale,
                connack_on_deny=config.diagnostics.connack_on_deny,
                outbound_buffer_bytes=config.limits.outbound_buffer_bytes,
                session_queue_max=config.limits.session_queue_max,
                retained_messages_max=config.limits.retained_messages_max,
                user_properties_max_bytes=config.limits.user_properties_max_bytes,
                aws_quotas=config.limits.aws_quotas,
            ),
            emit=self.sink.emit,
            permissions=PermissionsByPrincipal(
                Authorizer(registry, region=config.region, account_id=config.account_id),
                iam_authorizer,
            ),
            log_successes=log_successes,
            clock=time.time,
            monotonic=loop.time,
        )
        core.registry_listeners.append(self._refresh_registry_state)
        self._shadow_store = ShadowStore.open(config.state_dir).bound_waits()
        self._shadows = ShadowService(
            self._shadow_store,
            publish=core.publish_as_service,
            emit=self.sink.emit,
            clock=time.time,
        )
        core.register_service(self._shadows)
        self._register_jobs_and_provisioning(core, registry, log_successes)
        # The rules engine observes every routed message; rule changes take effect at once
        # in-process, and within a second (poll in _tick) when the CLI writes the store.
        self._rule_store = TopicRuleStore.open(config.state_dir)
        engine = self._rules_engine = RulesEngine(
            core,
            self._rule_store,
            config.rules,
            account_id=config.account_id,
            region=config.region,
            emit=self.sink.emit,
            log_level=self.sink.level,
        )
        self._topic_rules = TopicRuleService(
            self._rule_store,
            region=config.region,
            account_id=config.account_id,
            on_change=engine.reload,
        )
        engine.start(loop)

        scheduler = FlushScheduler()

        def mqtt_handler(channel: ByteChannel) -> MqttDoorHandler:
            return MqttDoorHandler(channel, core, scheduler)

        data_endpoint = DataEndpoint(
            core,
            IotDataApi(core, self._shadows, emit=self.sink.emit, log_successes=log_successes),
            emit=self.sink.emit,
            request_timeout=config.tls.connect_timeout,
            sigv4=SigV4Authenticator(iam.credential_for, region=config.region),
            websocket=WebSocketDoor(core, scheduler, ttl=config.limits.websocket_ttl),
            iot_jobs_data=IotJobsDataApi(
                self.jobs, emit=self.sink.emit, log_successes=log_successes
            ),
        )

        def control_plane_handler(channel: ByteChannel) -> DoorHandler:
            # The control plane and the console are built on the api door's first connection.
            return self._control_endpoint().handler(channel)

        return {
            Route.MQTT_X509: mqtt_handler,
            Route.HTTPS_X509: data_endpoint.x509_handler,
            Route.SIGV4: data_endpoint.sigv4_handler,
            Route.CONTROL_PLANE: control_plane_handler,
        }

    def _prepare_console(self) -> None:
        """Decide the console's token and keep log records until the console is built."""
        config = self.config
        api = config.listener_for("api")
        configured = config.control_plane.console_token
        # secrets.token_urlsafe(24), without importing secrets (it imports random, a few
        # milliseconds before the first handshake).
        self._console_token = configured or _token_urlsafe(24)
        self._console_token_required = (
            configured is not None or api is None or not is_loopback_host(api.host)
        )
        self._console_enabled = True
        self._early_records = True
        self.sink.keep_recent(_CONSOLE_BACKLOG)

    def _control_endpoint(self) -> ControlEndpoint:
        """The api door's endpoint (and the console), built on first use."""
        if self._control is None:
            # Imported here: see Broker.control_plane.
            from aws_iot_mock.api.control_endpoint import ControlEndpoint  # noqa: PLC0415
            from aws_iot_mock.api.control_plane_auth import (  # noqa: PLC0415
                ControlPlaneAuthenticator,
            )

            config = self.config
            control = ControlEndpoint(
                self.control_plane,
                ControlPlaneAuthenticator(
                    credentials=self.iam.credential_for,
                    strict=config.control_plane.strict_sigv4,
                    region=config.region,
                    clock=lambda: datetime.now(UTC),
                ),
                emit=self.sink.emit,
                request_timeout=config.tls.connect_timeout,
            )
            control.health = self._health
            if self._console_enabled:
                self._console = self._create_console(self.core, self.shadows, control)
            self._control = control
        return self._control

    def _health(self) -> dict[str, object]:
        """The health endpoint's document: every configured door, listening or off."""
        # Imported here: see Broker.control_plane (the health endpoint lives on the api door).
        from aws_iot_mock.api.health import DoorState, health_document  # noqa: PLC0415

        doors = (DoorState(b.door, b.host, b.port, b.off_reason) for b in self._listeners)
        return health_document(doors, endpoint=self.config.endpoint, version=__version__)

    def _create_console(
        self, core: DeviceCore, shadows: ShadowService, control: ControlEndpoint
    ) -> ConsoleEndpoint:
        """The web console on the api door, a client of the core, shadows and control plane."""
        # Imported here: see Broker.control_plane.
        from aws_iot_mock.console.access import ConsoleAccess  # noqa: PLC0415
        from aws_iot_mock.console.endpoint import ConsoleEndpoint  # noqa: PLC0415

        config = self.config
        access = ConsoleAccess(
            token=self._console_token, token_required=self._console_token_required
        )

        def overview() -> dict[str, object]:
            return {
                "endpoint": config.endpoint,
                "region": config.region,
                "accountId": config.account_id,
                "securityPolicy": config.tls.security_policy,
                "domains": sorted(self._domains.accepted),
                "doors": [
                    {
                        "door": item.door,
                        "host": item.host,
                        "port": item.port,
                        "offReason": item.off_reason,
                    }
                    for item in self._listeners
                ],
            }

        console = ConsoleEndpoint(
            core,
            shadows,
            control.run,
            access,
            overview=overview,
            root_ca=self.certs.root_ca_path,
            account_id=config.account_id,
            region=config.region,
        )
        self.sink.add_listener(console.on_record)
        if self._early_records:
            # What happened before the console was built: its backlog, as if it had been there.
            self._early_records = False
            for record in self.sink.take_recent():
                console.on_record(record)
        control.console = console.serve
        return console

    def _register_jobs_and_provisioning(
        self, core: DeviceCore, registry: CertificateRegistry, log_successes: bool
    ) -> None:
        """Jobs and fleet provisioning as built-in services, over their stores and the registry."""
        # Imported here: see _DEVICE_SERVICE_MODULES.
        from aws_iot_mock.resources import thing_exists  # noqa: PLC0415
        from aws_iot_mock.services.fleet_provisioning import (  # noqa: PLC0415
            FleetProvisioningService,
        )
        from aws_iot_mock.services.jobs import JobsService  # noqa: PLC0415
        from aws_iot_mock.services.provisioning_templates import (  # noqa: PLC0415
            ProvisioningTemplateService,
        )
        from aws_iot_mock.state.jobs import JobStore  # noqa: PLC0415
        from aws_iot_mock.state.provisioning import ProvisioningStore  # noqa: PLC0415

        config = self.config
        self._job_store = JobStore.open(config.state_dir)
        self._jobs = JobsService(
            self._job_store,
            region=config.region,
            account_id=config.account_id,
            publish=core.publish_as_service,
            reply=core.reply_as_service,
            emit=self.sink.emit,
            clock=time.time,
            behaviour=self._jobs_behaviour,
            group_members=registry.thing_group_members,
            thing_exists=functools.partial(thing_exists, registry),
            log_successes=log_successes,
        )
        core.register_service(self._jobs)
        self._provisioning_store = ProvisioningStore.open(config.state_dir)
        self._provisioning_templates = ProvisioningTemplateService(
            self._provisioning_store,
            region=config.region,
            account_id=config.account_id,
            clock=time.time,
        )
        core.register_service(
            FleetProvisioningService(
                self._provisioning_store,
                registry,
                certificate_authority=self.certs.ensure_root_ca,
                reply=functools.partial(core.reply_as_service, subscribed_only=True),
                emit=self.sink.emit,
                clock=time.time,
                region=config.region,
                account_id=config.account_id,
                log_successes=log_successes,
            )
        )

    def _accept_failure_record(self, details: str) -> dict[str, object]:
        # No peer is known: the connection was never accepted.
        facts = ConnectionFacts(self.config.account_id, "", 0)
        return connect_failure(Reason.TOO_MANY_OPEN_FILES, details, facts)

    def _tick(self) -> None:
        """Once a second: the core's wills, session expiry and registry changes; job timers."""
        self._tick_handle = asyncio.get_running_loop().call_later(1.0, self._tick)
        if self._core is not None:
            self._core.tick()
        if self._console is not None:
            self._console.tick()
        if self._jobs is not None:
            self._jobs.tick()
        if self._rules_engine is not None:
            self._rules_engine.poll()

    def _poll_mailbox(self) -> None:
        """Answer shadow and job requests the CLI posted, within a fifth of a second."""
        loop = asyncio.get_running_loop()
        self._mailbox_handle = loop.call_later(_MAILBOX_POLL, self._poll_mailbox)
        if self._shadows is not None:
            try:
                self._shadows.drain_cli_requests()
            except StorageError as error:
                # The CLI's requests wait in the store; one record per episode, not 5 a second.
                if not self._mailbox_failing:
                    self._mailbox_failing = True
                    self._core_storage_failed(error, "taking the CLI's shadow requests")
            else:
                self._mailbox_failing = False
        if self._job_store is not None and self._jobs is not None:
            # Job verbs the CLI posted run here, through the control plane: CreateJob must
            # notify the connected devices, and only this process changes the jobs state.
            # The control plane is built by the first request only (see control_plane).
            from aws_iot_mock.state.mailbox import answer_requests  # noqa: PLC0415

            answer_requests(self._job_store, self._call_control_plane)

    def _call_control_plane(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        return self.control_plane.call(operation, request)

    def _core_storage_failed(self, error: StorageError, what: str) -> None:
        if self._core is not None:
            self._core.storage_failed(error, what)

    def _refresh_registry_state(self) -> None:
        """On a registry change: the trusted CAs and the served domain configurations.

        CAs registered with register-ca-certificate are trusted; domain configurations
        created, updated or deleted through the API or the CLI are served (or refused) with
        their policies, and the server certificates are re-issued when a new name appears.
        """
        if self._registry is None:
            return
        registered = tuple(self._registry.active_ca_certificates_pem())
        domains = served_domains(self.config, self._registry.list_domain_configurations())
        if registered == self._registered_cas and domains == self._domains:
            return
        self._registered_cas = registered
        if domains.server_names != self._domains.server_names:
            self.certs.ensure_server_certificates(domains.server_names)
        self._apply_domains(domains)

    def _apply_domains(self, domains: ServedDomains) -> None:
        """Swap in new SSL contexts and names; handshakes already started keep the old ones."""
        self._domains = domains
        for door in self._doors:
            door.contexts = self._create_contexts(door.door)
            door.accepted_names = self._accepted_names(door.door)
            door.disabled_names = domains.disabled
            door.policy_for = domains.policy_for
        if self._doors:
            logger.info(
                "serving domains: %s (disabled: %s)",
                ", ".join(sorted(domains.accepted)),
                ", ".join(sorted(domains.disabled)) or "none",
            )

    def _accepted_names(self, door: DoorKind) -> frozenset[str]:
        """The SNI names a door serves.

        The data endpoint's doors: the endpoint and the domain configurations. The control
        plane (ours; AWS serves it under another name, iot.<region>.amazonaws.com) also answers
        to every name its certificate carries, so that ``https://localhost:9443`` works whatever
        the configured endpoint.
        """
        if door is DoorKind.API:
            names = {name.lower() for name in self._domains.server_names}
            return self._domains.accepted | names
        return self._domains.accepted

    def _require_sni(self, door: DoorKind) -> bool:
        """Whether a handshake without SNI is refused (not on the api door: an IP URL has none)."""
        return self.config.tls.require_sni and door is not DoorKind.API

    def _create_contexts(self, door: DoorKind) -> Mapping[str, ssl.SSLContext]:
        """One SSL context per security policy in use, built for ``door``."""
        # Device certificates may come from the local root CA or from a CA the user registered
        # (register-ca-certificate, then register-certificate), as on AWS.
        credentials = ServerCredentials(
            rsa_cert_path=self.certs.server_rsa_cert_path,
            rsa_key_path=self.certs.server_rsa_key_path,
            ecdsa_cert_path=self.certs.server_ecdsa_cert_path,
            ecdsa_key_path=self.certs.server_ecdsa_key_path,
            client_ca_path=self.certs.root_ca_path,
        )
        accepted = self._accepted_names(door)
        require_sni = self._require_sni(door)

        def sni_check(server_name: str | None) -> int | None:
            return sni_alert(server_name, accepted, require_sni=require_sni)

        names = self._domains.policies_in_use
        return {
            name: create_server_context(
                get_security_policy(name),
                # The legacy policies' suites differ between 443 and 8443/8883: by door, so
                # that a listener on another port (0 in tests) behaves as its AWS port does.
                door.aws_port,
                credentials,
                sni_check=sni_check,
                extra_client_cas=self._registered_cas,
                require_client_certificate=door.requires_client_certificate,
                alpn_protocols=alpn_protocols_offered(door),
            )
            for name in sorted(names)
        }

    async def stop(self) -> None:
        """Stop listening, close every connection, and release the stores and log file."""
        for handle in (self._tick_handle, self._mailbox_handle):
            if handle is not None:
                handle.cancel()
        self._tick_handle = self._mailbox_handle = None
        for server in self._servers:
            # Stop accepting new connections.
            server.close()
        # Close existing connections: MQTT 5 DISCONNECT 0x8B, close_notify, then the socket.
        for door in self._doors:
            for connection in list(door.connections):
                connection.shutdown()
        for door in self._doors:
            if not await door.wait_closed(_SHUTDOWN_GRACE):
                logger.warning("connections still open after %.0f s", _SHUTDOWN_GRACE)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._doors.clear()
        self._close_control_plane()
        if self._rules_engine is not None:
            self._rules_engine.stop()
        self._rules_engine = self._topic_rules = None
        self._core = None
        self._shadows = None
        self._jobs = None
        self._provisioning_templates = None
        self._close_stores()
        self._accept_failures.uninstall()
        self.sink.close()
        if self._state_lock is not None:
            self._state_lock.release()  # last: the directory is free for another broker
            self._state_lock = None

    def _close_control_plane(self) -> None:
        """The api door's endpoint, console and control plane (those that were built)."""
        if self._console is not None:
            self._console.close()
            self.sink.remove_listener(self._console.on_record)
            self._console = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._early_records:
            self.sink.take_recent()
            self._early_records = False
        self._console_enabled = False
        self._control_plane = None

    def _close_stores(self) -> None:
        if self._registry_view is not None:
            self._registry_view.close()
            self._registry_view = None
        for store in (
            self._store,
            self._shadow_store,
            self._job_store,
            self._provisioning_store,
            self._registry,
            self._iam,
            self._rule_store,
        ):
            if store is not None:
                store.close()
        self._store = self._shadow_store = self._rule_store = None
        self._job_store = self._provisioning_store = None
        self._registry = None
        self._iam = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
