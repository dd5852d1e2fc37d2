"""IAM authorization of SigV4 callers of AWS IoT, with the same evaluator as IoT policies.

A request signed by an IAM user (or by that user's GetSessionToken credentials) is allowed
when the user's inline policies allow the IoT action on the resource, evaluated by
``aws_iot_mock.authz.iot_policy_evaluation.evaluate`` with IAM's rules (explicit Deny wins,
default deny). ``IamPermissions`` has the ``check(action, kind, name) -> Decision`` and
``may_receive`` of ``aws_iot_mock.server.authorization.ConnectionPermissions``, so the broker
core can hold either.

Actions and resources are the ones AWS IoT authorizes for IAM identities ("AWS IoT Core
policy actions" and "Action resources",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-policy-actions.html,
https://docs.aws.amazon.com/iot/latest/developerguide/iot-action-resources.html):
``iot:Publish`` on ``arn:aws:iot:<region>:<account>:topic/<topic>`` (and ``iot:RetainPublish``
for a retained publish), ``iot:Connect`` on ``client/<clientId>``, ``iot:Subscribe`` on
``topicfilter/<filter>``, ``iot:Receive`` on ``topic/<topic>``, the shadow actions on
``thing/<thingName>`` (``thing/<thingName>/<shadowName>`` for a named shadow),
``iot:GetRetainedMessage`` on ``topic/<topic>``, and ``iot:ListRetainedMessages`` /
``iot:ListNamedShadowsForThing`` on ``*``. ``required_permissions`` maps each data-plane
operation to these.

Policy variables: ``${iot:ClientId}`` resolves on MQTT (WebSocket) connections; the
certificate and thing variables (``iot:Certificate.*``, ``iot:Connection.Thing.*``) exist
only for X.509 connections and resolve to nothing here (``IsAttached`` is ``false``); the IAM
variables ``${aws:username}``, ``${aws:userid}``, ``aws:PrincipalType`` (``User``),
``aws:PrincipalArn`` and ``aws:PrincipalAccount`` resolve to the caller's
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
Whether HTTPS Publish also needs ``iot:Connect`` is UNCONFIRMED (HTTPS has no client ID), so
``required_permissions`` does not ask for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from aws_iot_mock.auth.credentials import IamIdentity
from aws_iot_mock.authz.iot_policy_evaluation import (
    NO_POLICY_ATTACHED,
    Decision,
    NamedPolicy,
    PolicyError,
    RequestContext,
    evaluate,
    parse_policy_document,
    resource_arn,
)
from aws_iot_mock.iam.errors import NoSuchEntityError
from aws_iot_mock.iam.store import IamStore

__all__ = [
    "ALLOW_ALL_IOT",
    "ANY_RESOURCE",
    "USER_EXISTS",
    "IamAuthorizer",
    "IamPermissions",
    "Permission",
    "iam_permissions",
    "required_permissions",
]

# The resource of actions AWS IoT authorizes on "*" only.
ANY_RESOURCE: Final = "*"
# An inline policy allowing every AWS IoT action on every resource (the demo user's, and the
# test helpers' default): what AWS's managed policy AWSIoTFullAccess grants for IoT.
ALLOW_ALL_IOT: Final = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'
)
# IamPermissions.status of a user that exists (the device core's word for "may act").
USER_EXISTS: Final = "ACTIVE"

_RECEIVE: Final = "iot:Receive"
# Decisions cached per permissions object (the same bound as ConnectionPermissions).
_DECISION_CACHE: Final = 1024
# Parsed documents kept by the authorizer.
_PARSED_CACHE: Final = 4096


@dataclass(frozen=True, slots=True)
class Permission:
    """One action on one resource that a request needs.

    Attributes:
        action: e.g. ``iot:Publish``.
        kind: the resource type (``topic``, ``thing``, ``client``, ``topicfilter``), or None
            for the resource ``*``.
        name: the resource name (topic, ``thing`` or ``thing/shadow``, client ID, filter);
            ignored when ``kind`` is None.
    """

    action: str
    kind: str | None = None
    name: str = ""


def required_permissions(
    operation: str,
    *,
    topic: str | None = None,
    thing_name: str | None = None,
    shadow_name: str | None = None,
    retain: bool = False,
) -> tuple[Permission, ...]:
    """What an ``iot-data`` HTTPS operation needs, per the action/resource table above.

    Args:
        operation: the iot-data operation name: ``Publish``, ``GetThingShadow``,
            ``UpdateThingShadow``, ``DeleteThingShadow``, ``ListNamedShadowsForThing``,
            ``GetRetainedMessage``, ``ListRetainedMessages``.
        topic: the topic (Publish, GetRetainedMessage), URL-decoded.
        thing_name: the thing (shadow operations).
        shadow_name: the named shadow, or None for the classic shadow.
        retain: Publish with ``retain=true`` also needs ``iot:RetainPublish``.

    Returns:
        The permissions, all of which must be allowed.

    Raises:
        ValueError: unknown operation, or a required argument is missing.
    """
    if operation in ("Publish", "GetRetainedMessage"):
        if topic is None:
            raise ValueError(f"{operation} needs a topic")
        if operation == "GetRetainedMessage":
            return (Permission("iot:GetRetainedMessage", "topic", topic),)
        publish = Permission("iot:Publish", "topic", topic)
        return (publish, Permission("iot:RetainPublish", "topic", topic)) if retain else (publish,)
    if operation in ("GetThingShadow", "UpdateThingShadow", "DeleteThingShadow"):
        if thing_name is None:
            raise ValueError(f"{operation} needs a thing name")
        name = thing_name if shadow_name is None else f"{thing_name}/{shadow_name}"
        return (Permission(f"iot:{operation}", "thing", name),)
    if operation in ("ListNamedShadowsForThing", "ListRetainedMessages"):
        return (Permission(f"iot:{operation}"),)
    raise ValueError(f"unknown iot-data operation {operation!r}")


def _global_keys(identity: IamIdentity) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(
        {
            "aws:username": (identity.user_name,),
            "aws:userid": (identity.user_id,),
            "aws:principaltype": ("User",),
            "aws:principalarn": (identity.arn,),
            "aws:principalaccount": (identity.account_id,),
        }
    )


@dataclass
class IamPermissions:
    """What one IAM caller may do in AWS IoT: its policies, its context and cached decisions.

    Attributes:
        identity: the IAM user (for session credentials, the user they belong to).
        policies: the user's inline policies, parsed.
        context: the request context (region, account, client ID, IAM variables).
        status: ``ACTIVE`` while the user exists; None once it was deleted (or deleted and
            created again, which makes another user): the device core then closes the user's
            live connections, as it does for a certificate that is no longer ACTIVE.
    """

    identity: IamIdentity
    policies: tuple[NamedPolicy, ...]
    context: RequestContext
    status: str | None = USER_EXISTS
    _cache: dict[tuple[str, str], Decision] = field(default_factory=dict)

    @property
    def principal_id(self) -> str:
        """The principal ID for logs and lifecycle events (the user ID, ``AIDA...``)."""
        return self.identity.principal_id

    def check(self, action: str, kind: str, name: str) -> Decision:
        """Decide ``action`` on ``arn:aws:iot:<region>:<account>:<kind>/<name>``.

        ``kind`` ``*`` stands for the resource ``*`` (``check_any_resource``), as in the device
        core's ``Permissions``.
        """
        if kind == ANY_RESOURCE:
            return self.check_any_resource(action)
        context = self.context
        return self._decide(action, resource_arn(context.region, context.account_id, kind, name))

    def check_any_resource(self, action: str) -> Decision:
        """Decide an action AWS IoT authorizes on the resource ``*`` (e.g. ListRetainedMessages)."""
        return self._decide(action, ANY_RESOURCE)

    def check_all(self, permissions: Sequence[Permission]) -> Decision:
        """The first denied permission's decision, else the last one's (allowed).

        Raises:
            ValueError: ``permissions`` is empty.
        """
        if not permissions:
            raise ValueError("no permissions to check")
        decision: Decision | None = None
        for permission in permissions:
            decision = (
                self.check_any_resource(permission.action)
                if permission.kind is None
                else self.check(permission.action, permission.kind, permission.name)
            )
            if not decision.allowed:
                return decision
        assert decision is not None
        return decision

    def may_receive(self, topic: str) -> bool:
        """``iot:Receive`` on ``topic``: AWS checks it at each delivery."""
        return self.check(_RECEIVE, "topic", topic).allowed

    def _decide(self, action: str, resource: str) -> Decision:
        key = (action, resource)
        decision = self._cache.get(key)
        if decision is None:
            decision = evaluate(self.policies, action, resource, self.context)
            if decision.reason == NO_POLICY_ATTACHED:
                decision = replace(
                    decision,
                    details=f"{action} on {resource} denied: the IAM user "
                    f"{self.identity.user_name!r} has no policy",
                )
            if len(self._cache) >= _DECISION_CACHE:
                self._cache.clear()
            self._cache[key] = decision
        return decision


def iam_permissions(
    identity: IamIdentity,
    policies: Sequence[NamedPolicy],
    *,
    region: str,
    client_id: str | None = None,
    status: str | None = USER_EXISTS,
) -> IamPermissions:
    """Build the permissions of an IAM caller from its parsed policies (pure).

    Args:
        identity: the caller (``Verified.identity``).
        policies: the user's inline policies.
        region: the endpoint's region, for resource ARNs.
        client_id: the MQTT client ID on a WebSocket connection (``${iot:ClientId}``); None
            for HTTPS requests.
        status: ``USER_EXISTS``, or None for a user that no longer exists.
    """
    context = RequestContext(
        region=region,
        account_id=identity.account_id,
        client_id=client_id,
        global_keys=_global_keys(identity),
    )
    return IamPermissions(identity, tuple(policies), context, status)


class IamAuthorizer:
    """Builds ``IamPermissions`` from the IAM store, and notices IAM changes.

    Args:
        store: the local IAM.
        region: the endpoint's region, for resource ARNs.
    """

    def __init__(self, store: IamStore, *, region: str) -> None:
        self._store = store
        self._region = region
        self._generation = store.generation()
        self._parsed: dict[tuple[str, str], NamedPolicy | None] = {}

    def permissions_for(
        self, identity: IamIdentity, client_id: str | None = None
    ) -> IamPermissions:
        """Read the user's inline policies (one query) and build its permissions.

        A user deleted since the request was verified (or deleted and created again under the
        same name, which makes a new user ID) has no policies, so everything is denied.
        """
        try:
            current = self._store.get_user(identity.user_name).identity
            documents = self._store.user_policies(identity.user_name)
        except NoSuchEntityError:
            current, documents = None, []
        status: str | None = USER_EXISTS
        if current is None or current.user_id != identity.user_id:
            # Deleted, or deleted and created again: a new user is a new principal.
            documents, status = [], None
        policies = tuple(
            policy
            for name, document in documents
            if (policy := self._parse(name, document)) is not None
        )
        return iam_permissions(
            identity, policies, region=self._region, client_id=client_id, status=status
        )

    def changed(self) -> bool:
        """Whether IAM was written since the last call (cheap: one row)."""
        generation = self._store.generation()
        if generation == self._generation:
            return False
        self._generation = generation
        return True

    def _parse(self, name: str, document: str) -> NamedPolicy | None:
        key = (name, document)
        if key not in self._parsed:
            if len(self._parsed) >= _PARSED_CACHE:
                self._parsed.clear()
            try:
                self._parsed[key] = NamedPolicy(name, parse_policy_document(document))
            except PolicyError:
                # Validated on the way in; a document that no longer parses grants nothing.
                self._parsed[key] = None
        return self._parsed[key]
