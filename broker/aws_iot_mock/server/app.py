"""The broker process: PKI on disk, the certificate registry, the listener, and shutdown.

``Broker`` is an async context manager. ``start()`` returns once the socket is listening, so a
TLS handshake started after it returns is served (no sleeps needed by callers); ``stop()`` closes
the listener, every connection, the registry and the log file.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from aws_iot_mock.certs_dir import CertsDirectory
from aws_iot_mock.config import Config
from aws_iot_mock.logs.cloudwatch import LogLevel
from aws_iot_mock.logs.sink import LogSink
from aws_iot_mock.mqtt.core import BrokerCore
from aws_iot_mock.mqtt.message import Message
from aws_iot_mock.registry import CertificateRegistry
from aws_iot_mock.server.authorization import Authorizer
from aws_iot_mock.server.door import FrontDoor, MqttHandlerFactory
from aws_iot_mock.server.mqtt_connection import MqttHub
from aws_iot_mock.server.shadows import ShadowService
from aws_iot_mock.state.sessions import SqliteSessionStore
from aws_iot_mock.state.shadows import ShadowStore
from aws_iot_mock.tls.context import ServerCredentials, create_server_context
from aws_iot_mock.tls.security_policies import get_security_policy
from aws_iot_mock.tls.verdicts import sni_alert

__all__ = ["Broker", "create_sink"]

logger = logging.getLogger("aws_iot_mock")

# How long stop() waits for connections to finish closing before aborting them.
_SHUTDOWN_GRACE = 2.0


def create_sink(config: Config) -> LogSink:
    """Create the log sink the configuration asks for."""
    return LogSink(
        LogLevel[config.logging.level],
        file=config.logging.file,
        stdout=config.logging.stdout,
    )


class Broker:
    """One listener with its TLS front door.

    Args:
        config: the validated configuration.
        sink: where log records go; by default the one the configuration describes.
        handler_factory: the MQTT handler for authenticated connections; by default the MQTT
            core (``MqttHub``), with sessions and retained messages in the state directory.
        keep_alive_time_scale: real seconds per keep-alive second (tests shrink it).
    """

    def __init__(
        self,
        config: Config,
        *,
        sink: LogSink | None = None,
        handler_factory: MqttHandlerFactory | None = None,
        keep_alive_time_scale: float = 1.0,
    ) -> None:
        self.config = config
        self.sink = sink if sink is not None else create_sink(config)
        self.certs = CertsDirectory(config.certs_dir)
        self._handler_factory = handler_factory
        self._keep_alive_time_scale = keep_alive_time_scale
        self._store: SqliteSessionStore | None = None
        self._shadow_store: ShadowStore | None = None
        self._hub: MqttHub | None = None
        self._registry: CertificateRegistry | None = None
        self._server: asyncio.Server | None = None
        self._door: FrontDoor | None = None
        self._port: int | None = None
        self._registered_cas: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        """The host name devices must send as SNI (``describe-endpoint``'s answer)."""
        return self.config.endpoint

    @property
    def port(self) -> int:
        """The port actually bound (the configured one, or the one port 0 picked)."""
        if self._port is None:
            raise RuntimeError("the broker is not started")
        return self._port

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

    def add_message_listener(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener(message)`` for every message the broker routes (after authorization).

        Must be called after ``start()``. Messages published by the broker itself (lifecycle
        events) are included; ``message.sender`` is None for those.
        """
        if self._hub is None:
            raise RuntimeError("the broker is not started, or runs without the MQTT core")
        self._hub.core.observers.append(listener)

    async def start(self) -> None:
        """Create PKI material if missing, open the registry, and start listening.

        Raises:
            OSError: if the address cannot be bound.
            broker.errors.BrokerError: if the certs directory or registry is unusable.
        """
        config = self.config
        self.certs.ensure_root_ca()
        self.certs.ensure_server_certificates(config.server_names)
        self._registry = CertificateRegistry.open(
            config.state_dir, region=config.region, account_id=config.account_id
        )
        contexts = self._create_contexts()
        registry = self._registry
        handler_factory = self._handler_factory
        if handler_factory is None:
            self._store = SqliteSessionStore.open(config.state_dir)
            self._hub = MqttHub(
                BrokerCore(self._store),
                emit=self.sink.emit,
                keep_alive_time_scale=self._keep_alive_time_scale,
                authorizer=Authorizer(
                    self._registry, region=config.region, account_id=config.account_id
                ),
                connack_on_deny=config.diagnostics.connack_on_deny,
                log_successes=self.sink.level >= LogLevel.INFO,
            )
            self._hub.registry_listeners.append(self._refresh_trust)
            self._shadow_store = ShadowStore.open(config.state_dir)
            self._hub.shadows = ShadowService(
                self._shadow_store,
                publish=self._hub.publish_event,
                emit=self.sink.emit,
                clock=time.time,
            )
            handler_factory = self._hub.handler_factory

        def registry_status(certificate_id: str) -> str | None:
            record = registry.get_certificate(certificate_id)
            return None if record is None else record.status.value

        self._door = FrontDoor(
            account_id=config.account_id,
            contexts=contexts,
            policy_for=config.security_policy_for,
            accepted_names=config.accepted_sni_names,
            require_sni=config.tls.require_sni,
            registry_status=registry_status,
            emit=self.sink.emit,
            handler_factory=handler_factory,
            handshake_timeout=config.tls.handshake_timeout,
            connect_timeout=config.tls.connect_timeout,
            log_successes=self.sink.level >= LogLevel.INFO,
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._door.protocol_factory,
            host=config.listener.host,
            port=config.listener.port,
            reuse_address=True,
        )
        sockets = self._server.sockets
        self._port = int(sockets[0].getsockname()[1]) if sockets else config.listener.port
        if self._hub is not None:
            self._hub.start()
        logger.info("listening on %s:%d", config.listener.host, self._port)

    def _refresh_trust(self) -> None:
        """Trust the CAs registered with register-ca-certificate (checked on registry change)."""
        if self._door is None or self._registry is None:
            return
        registered = tuple(self._registry.active_ca_certificates_pem())
        if registered != self._registered_cas:
            self._door.contexts = self._create_contexts()

    def _create_contexts(self) -> Mapping[str, ssl.SSLContext]:
        config = self.config
        assert self._registry is not None
        # Device certificates may come from the local root CA or from a CA the user registered
        # (register-ca-certificate, then register-certificate), as on AWS.
        self._registered_cas = tuple(self._registry.active_ca_certificates_pem())
        credentials = ServerCredentials(
            rsa_cert_path=self.certs.server_rsa_cert_path,
            rsa_key_path=self.certs.server_rsa_key_path,
            ecdsa_cert_path=self.certs.server_ecdsa_cert_path,
            ecdsa_key_path=self.certs.server_ecdsa_key_path,
            client_ca_path=self.certs.root_ca_path,
        )
        accepted = config.accepted_sni_names
        require_sni = config.tls.require_sni

        def sni_check(server_name: str | None) -> int | None:
            return sni_alert(server_name, accepted, require_sni=require_sni)

        # Port 0 (tests) behaves as the MQTT port 8883 for the legacy policies' per-port suites.
        port = config.listener.port or 8883
        names = {config.tls.security_policy}
        names.update(domain.security_policy for domain in config.domain_configurations)
        return {
            name: create_server_context(
                get_security_policy(name),
                port,
                credentials,
                sni_check=sni_check,
                extra_client_cas=self._registered_cas,
            )
            for name in sorted(names)
        }

    async def stop(self) -> None:
        """Stop listening, close every connection, and release the registry and log file."""
        if self._server is not None:
            # Stop accepting new connections.
            self._server.close()
        if self._door is not None:
            # Close existing connections: close_notify, then the socket.
            for connection in list(self._door.connections):
                connection.shutdown()
        if self._door is not None and not await self._door.wait_closed(_SHUTDOWN_GRACE):
            logger.warning("connections still open after %.0f s", _SHUTDOWN_GRACE)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._hub is not None:
            self._hub.stop()
            self._hub = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._shadow_store is not None:
            self._shadow_store.close()
            self._shadow_store = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None
        self.sink.close()

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
