"""Connected MQTT clients for a ``DeviceFiles``: paho-mqtt and the AWS IoT Device SDK v2.

Both clients are optional dependencies: they are imported when a helper is called. A helper
returns only once the broker accepted the CONNECT, and raises ``DeviceRefusedError`` (carrying
the broker's refusal records) when it did not. Clients made here are disconnected when the
broker that issued the device stops, if the test has not done it.

The helpers block: call them from synchronous tests, from async tests using the plugin's
thread-backed broker, or through ``asyncio.to_thread`` when the broker is an ``IotBroker``
running in the test's own event loop.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from typing import TYPE_CHECKING, Any

from aws_iot_mock.testing._broker import DeviceFiles

if TYPE_CHECKING:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import MQTTProtocolVersion

__all__ = ["DeviceRefusedError", "SniContext", "awsiot_connection", "paho_client"]

DEFAULT_TIMEOUT = 5.0
# The broker listens on loopback; the endpoint name only goes into SNI and the hostname check.
_LOOPBACK = "127.0.0.1"


class DeviceRefusedError(ConnectionError):
    """The broker did not accept a helper's connection.

    Attributes:
        client_id: the client ID that tried to connect.
        refusals: the broker's ``Failure`` log records about this client or certificate (empty
            if the connection failed for another reason, e.g. on the client side).
    """

    def __init__(self, client_id: str, cause: str, refusals: list[dict[str, object]]) -> None:
        self.client_id = client_id
        self.refusals = refusals
        if refusals:
            lines = "\n".join(json.dumps(record) for record in refusals)
            explanation = f"the broker refused it:\n{lines}"
        else:
            explanation = "the broker logged no refusal for this client"
        super().__init__(f"client {client_id!r} could not connect ({cause}); {explanation}")


def _refused(device: DeviceFiles, client_id: str, start: int, cause: str) -> DeviceRefusedError:
    refusals = (
        device.link.refusals_since(start, client_id=client_id, certificate_id=device.certificate_id)
        if device.link is not None
        else []
    )
    return DeviceRefusedError(client_id, cause, refusals)


def _log_index(device: DeviceFiles) -> int:
    return device.link.recorder.log_count() if device.link is not None else 0


class SniContext(ssl.SSLContext):
    """A client context that sends ``server_name`` as SNI whatever host the client dialled.

    paho wraps its socket with ``wrap_socket(sock, server_hostname=<host it dialled>)``; the
    client dials the loopback address, so this puts the endpoint name in the SNI and the
    hostname check instead (``check_hostname`` stays on), like ``curl --resolve``. It also keeps
    the sockets it wrapped, because paho drops a socket whose handshake failed without closing it.
    Set ``server_name`` and ``wrapped = []`` after constructing it.
    """

    server_name: str
    wrapped: list[ssl.SSLSocket]

    def wrap_socket(  # noqa: PLR0917 (the signature is SSLContext.wrap_socket's)
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        """``SSLContext.wrap_socket``, with ``server_name`` as SNI and for the hostname check."""
        tls = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=self.server_name,
            session=session,
        )
        self.wrapped.append(tls)
        return tls

    def close_wrapped(self) -> None:
        """Close every socket this context wrapped."""
        for tls in self.wrapped:
            tls.close()
        self.wrapped.clear()


def paho_tls_context(device: DeviceFiles) -> ssl.SSLContext:
    """The TLS context paho needs for ``device``: trust the root CA, present the certificate.

    Use it with ``client.tls_set_context(...)`` and ``client.connect("127.0.0.1", device.port)``;
    it sends ``device.endpoint`` as SNI whatever host paho dials.
    """
    context = SniContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = device.endpoint
    context.wrapped = []
    context.load_verify_locations(cafile=str(device.root_ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    return context


def paho_client(
    device: DeviceFiles,
    protocol: MQTTProtocolVersion | None = None,
    *,
    client_id: str | None = None,
    keepalive: int = 60,
    timeout: float = DEFAULT_TIMEOUT,
) -> Client:
    """A paho-mqtt client connected as ``device``, its network loop running (``loop_start``).

    Args:
        device: from ``create_device`` or the ``iot_device`` fixture.
        protocol: ``MQTTProtocolVersion.MQTTv311`` (the default) or ``MQTTv5``.
        client_id: defaults to ``device.client_id``; pass another to test a refusal.
        keepalive: seconds (AWS accepts 30..1200).
        timeout: seconds to wait for the CONNACK.

    Returns:
        The connected client (callback API version 2). Set your callbacks and subscribe; call
        ``disconnect()`` and ``loop_stop()`` when done, or leave it to the broker's stop.

    Raises:
        DeviceRefusedError: the broker refused the connection (its log records attached).
    """
    from paho.mqtt.client import Client  # noqa: PLC0415 (optional dependency)
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: PLC0415

    name = device.client_id if client_id is None else client_id
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=name,
        protocol=MQTTProtocolVersion.MQTTv311 if protocol is None else protocol,
    )
    context = paho_tls_context(device)
    assert isinstance(context, SniContext)
    client.tls_set_context(context)
    outcome: list[str | None] = []  # None: accepted; text: why not
    settled = threading.Event()

    def on_connect(
        _client: Client, _userdata: object, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        outcome.append(None if not reason_code.is_failure else f"CONNACK {reason_code}")
        settled.set()

    def on_disconnect(
        _client: Client, _userdata: object, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        outcome.append(f"disconnected before CONNACK: {reason_code}")
        settled.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    start = _log_index(device)
    try:
        client.connect(_LOOPBACK, device.port, keepalive=keepalive)
    except (OSError, ssl.SSLError) as exc:
        context.close_wrapped()
        raise _refused(device, name, start, f"{type(exc).__name__}: {exc}") from exc
    client.loop_start()
    if not settled.wait(timeout):
        outcome.append(f"no CONNACK within {timeout} s")
    client.on_connect = None
    client.on_disconnect = None
    if outcome[0] is not None:
        client.disconnect()
        client.loop_stop()
        context.close_wrapped()
        raise _refused(device, name, start, outcome[0])

    def close() -> None:
        client.disconnect()
        client.loop_stop()
        context.close_wrapped()

    if device.link is not None:
        device.link.closers.add(close)
    return client


def awsiot_connection(
    device: DeviceFiles,
    *,
    client_id: str | None = None,
    clean_session: bool = True,
    keep_alive_secs: int = 30,
    timeout: float = DEFAULT_TIMEOUT,
    **builder_options: Any,
) -> Any:
    """An AWS IoT Device SDK v2 MQTT 3.1.1 connection as ``device``, connected.

    Built with ``awsiot.mqtt_connection_builder.mtls_from_path`` on ``device.endpoint`` (which the
    SDK resolves itself and sends as SNI, hence the ``localhost`` default endpoint).

    Args:
        device: from ``create_device`` or the ``iot_device`` fixture.
        client_id: defaults to ``device.client_id``; pass another to test a refusal.
        clean_session: as ``mtls_from_path``'s.
        keep_alive_secs: as ``mtls_from_path``'s (AWS accepts 30..1200).
        timeout: seconds to wait for the connection.
        **builder_options: more ``mtls_from_path`` keyword arguments (``will``, callbacks...).

    Returns:
        The connected ``awscrt.mqtt.Connection``. ``connection.disconnect().result()`` when done,
        or leave it to the broker's stop.

    Raises:
        DeviceRefusedError: the broker refused the connection (its log records attached).
    """
    from awsiot import mqtt_connection_builder  # noqa: PLC0415

    name = device.client_id if client_id is None else client_id
    connection = mqtt_connection_builder.mtls_from_path(
        endpoint=device.endpoint,
        port=device.port,
        cert_filepath=str(device.cert_path),
        pri_key_filepath=str(device.key_path),
        ca_filepath=str(device.root_ca_path),
        client_id=name,
        clean_session=clean_session,
        keep_alive_secs=keep_alive_secs,
        **builder_options,
    )
    start = _log_index(device)
    try:
        connection.connect().result(timeout)
    except Exception as exc:
        _disconnect_quietly(connection, timeout)
        raise _refused(device, name, start, f"{type(exc).__name__}: {exc}") from exc

    def close() -> None:
        _disconnect_quietly(connection, timeout)

    if device.link is not None:
        device.link.closers.add(close)
    return connection


def _disconnect_quietly(connection: Any, timeout: float) -> None:
    """Disconnect an awscrt connection that may not be connected (then this does nothing)."""
    with contextlib.suppress(Exception):  # not connected, or already disconnected
        connection.disconnect().result(timeout)
