"""What the device core asks before it lets a principal act: the permissions interface. Pure.

AWS IoT checks a principal's policies on every action: ``iot:Connect`` at CONNECT,
``iot:Publish`` (and ``iot:RetainPublish``) at each PUBLISH, ``iot:Subscribe`` at each SUBSCRIBE,
and ``iot:Receive`` "every time a message is delivered to a client" (AWS IoT developer guide,
"AWS IoT Core policy actions",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html). The core asks
through these two protocols; where the answers come from (IoT policies attached to a certificate
in the registry, IAM policies of a SigV4 identity) is the business of their implementations in
``aws_iot_mock.authz``.
"""

from __future__ import annotations

from typing import Protocol

from aws_iot_mock.authz.iot_policy_evaluation import Decision
from aws_iot_mock.core.principal import Principal

__all__ = [
    "CONNECT",
    "PUBLISH",
    "RECEIVE",
    "RETAIN_PUBLISH",
    "SUBSCRIBE",
    "Permissions",
    "PermissionsProvider",
]

CONNECT = "iot:Connect"
PUBLISH = "iot:Publish"
RECEIVE = "iot:Receive"
SUBSCRIBE = "iot:Subscribe"
RETAIN_PUBLISH = "iot:RetainPublish"


class Permissions(Protocol):
    """What one principal may do, for one connection (client ID and CONNECT attributes)."""

    @property
    def status(self) -> str | None:
        """The principal's status when read: ``ACTIVE`` or another status; None if unknown.

        A live connection whose principal is no longer ``ACTIVE`` is disconnected (AWS
        UpdateCertificate: "AWS IoT disconnects all devices that used that certificate").
        """
        ...

    def check(self, action: str, kind: str, name: str) -> Decision:
        """Decide ``action`` on ``arn:aws:iot:<region>:<account>:<kind>/<name>``.

        ``kind`` ``*`` means the resource ``*`` (actions AWS authorizes only on all resources).
        """
        ...


class PermissionsProvider(Protocol):
    """Builds ``Permissions`` and tells the core when they may have changed."""

    def permissions_for(
        self, principal: Principal, client_id: str, connect_attributes: frozenset[str]
    ) -> Permissions:
        """The principal's permissions as ``client_id`` with these CONNECT attributes.

        ``connect_attributes`` holds AWS's ``iot:ConnectAttributes`` values
        (``PersistentConnect``, ``LastWill``); empty outside MQTT.
        """
        ...

    def changed(self) -> bool:
        """Whether the policies may have changed since the last call (cheap; polled each second)."""
        ...
