"""A broker for integration tests: the public Python API behind the pytest plugin.

``IotBroker`` (``async with``) runs the real broker in the caller's event loop; ``IotBrokerThread``
(``with``) runs it in a background thread, so it serves synchronous tests and any event loop.
Both listen on 127.0.0.1 with an OS-picked port, keep certificates and state in a fresh
temporary directory, record every routed message and log record, and leave nothing behind when
stopped. ``aws_iot_mock.testing.plugin`` turns them into pytest fixtures (``iot_broker``,
``iot_broker_session``, ``iot_device``).

Example::

    with IotBrokerThread() as broker:
        device = broker.create_device("thermostat-1")
        client = paho_client(device)
        client.publish("devices/thermostat-1/temperature", b"21.5", qos=1)
        assert broker.wait_for_message("devices/thermostat-1/#").payload == b"21.5"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_iot_mock.testing._broker import (
        DeviceFiles,
        IamCredentials,
        IotBroker,
        IotBrokerThread,
        ShadowRejectedError,
        default_device_policy,
    )
    from aws_iot_mock.testing._recorder import RoutedMessage
    from aws_iot_mock.testing.clients import (
        DeviceRefusedError,
        awsiot_connection,
        paho_client,
        paho_tls_context,
    )

__all__ = [
    "DeviceFiles",
    "DeviceRefusedError",
    "IamCredentials",
    "IotBroker",
    "IotBrokerThread",
    "RoutedMessage",
    "ShadowRejectedError",
    "awsiot_connection",
    "default_device_policy",
    "paho_client",
    "paho_tls_context",
]

# The names are loaded on first use (PEP 562): the pytest plugin lives in this package, and
# importing the broker takes most of a second that suites not using it should not pay.
_HOMES = {
    "DeviceFiles": "aws_iot_mock.testing._broker",
    "IamCredentials": "aws_iot_mock.testing._broker",
    "IotBroker": "aws_iot_mock.testing._broker",
    "IotBrokerThread": "aws_iot_mock.testing._broker",
    "default_device_policy": "aws_iot_mock.testing._broker",
    "ShadowRejectedError": "aws_iot_mock.testing._broker",
    "RoutedMessage": "aws_iot_mock.testing._recorder",
    "DeviceRefusedError": "aws_iot_mock.testing.clients",
    "awsiot_connection": "aws_iot_mock.testing.clients",
    "paho_client": "aws_iot_mock.testing.clients",
    "paho_tls_context": "aws_iot_mock.testing.clients",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
