"""The device core's permissions, whoever the principal: IoT policies or IAM policies.

AWS IoT authorizes an X.509 principal with the IoT policies attached to its certificate and a
SigV4 principal with its IAM identity's policies ("Authorization",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-authorization.html); both are
evaluated by the same evaluator (``aws_iot_mock.authz.iot_policy_evaluation``). This provider
hands each principal to the authorizer of its kind, so one device core serves MQTT over TLS,
MQTT over WebSocket and HTTPS alike.
"""

from __future__ import annotations

from aws_iot_mock.authz.registry_permissions import Authorizer
from aws_iot_mock.core.permissions import Permissions
from aws_iot_mock.core.principal import Principal, PrincipalKind
from aws_iot_mock.iam.authorization import IamAuthorizer

__all__ = ["PermissionsByPrincipal"]


class PermissionsByPrincipal:
    """A ``PermissionsProvider`` for certificates (registry) and IAM identities (local IAM).

    Args:
        certificates: the IoT policies of registered certificates.
        iam: the IAM policies of local IAM users.
    """

    def __init__(self, certificates: Authorizer, iam: IamAuthorizer) -> None:
        self._certificates = certificates
        self._iam = iam

    def permissions_for(
        self,
        principal: Principal,
        client_id: str,
        connect_attributes: frozenset[str] = frozenset(),
    ) -> Permissions:
        """The principal's permissions as ``client_id`` (see ``PermissionsProvider``).

        Raises:
            ValueError: an IAM principal without its identity.
        """
        if principal.kind is PrincipalKind.IAM:
            if principal.iam_identity is None:
                raise ValueError("an IAM principal without its IAM identity")
            # HTTPS has no client ID: "" there means none (no ${iot:ClientId}).
            return self._iam.permissions_for(principal.iam_identity, client_id or None)
        return self._certificates.permissions_for(principal, client_id, connect_attributes)

    def changed(self) -> bool:
        """Whether the registry or IAM was written since the last call."""
        # Both are asked, so that each notes the generation it has seen.
        certificates = self._certificates.changed()
        iam = self._iam.changed()
        return certificates or iam
