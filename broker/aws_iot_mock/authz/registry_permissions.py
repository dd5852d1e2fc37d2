"""IoT policy permissions of X.509 principals, read from the registry and kept fresh.

This is the device core's ``PermissionsProvider`` for certificates
(``aws_iot_mock.core.permissions``).

The decisions come from the pure evaluator (``aws_iot_mock.authz.iot_policy_evaluation.evaluate``);
this module only gathers its inputs (the certificate's attached policies and things, the
certificate's subject, issuer and SANs, the client ID and CONNECT attributes) and caches answers.
AWS evaluates "the policy attached to the certificate ... [on each action]"
(diagnosing-connectivity-issues); the broker polls the registry's generation once a second, so a
change made with the CLI (a new policy version, a detached policy, a revoked certificate) applies to
live connections within seconds, well inside the 5 s the issue asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509

from aws_iot_mock.authz.iot_policy_evaluation import (
    CertificateContext,
    Decision,
    NamedPolicy,
    PolicyError,
    RequestContext,
    certificate_context,
    evaluate,
    parse_policy_document,
    resource_arn,
)
from aws_iot_mock.core.permissions import CONNECT, RECEIVE
from aws_iot_mock.core.principal import Principal
from aws_iot_mock.registry import CertificateRegistry
from aws_iot_mock.registry.certificates import PrincipalSnapshot
from aws_iot_mock.registry.things import Thing

__all__ = ["Authorizer", "ConnectionPermissions", "effective_policies"]

# Decisions cached per connection; a device cycling through many topics starts over.
_DECISION_CACHE = 1024
# Certificates whose snapshot and subject are cached (a fleet larger than this starts over).
_PRINCIPAL_CACHE = 4096
# The certificate mappings of a certificate the registry no longer has.
_NO_CERTIFICATE = CertificateContext(
    MappingProxyType({}), MappingProxyType({}), MappingProxyType({})
)
# Decisions by (certificate ID, client ID, CONNECT attributes), then by (action, resource).
_SharedDecisions = dict[
    tuple[str, str | None, frozenset[str]], dict[tuple[str, str, str], Decision]
]
# A connection that acts as no thing: one shared (read-only) empty mapping.
_NO_THING_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})


def effective_policies(snapshot: PrincipalSnapshot, thing: Thing | None) -> list[tuple[str, str]]:
    """The (name, document) of every policy evaluated for a certificate acting as ``thing``.

    The certificate's own policies, then those ``thing`` inherits from its thing groups and
    their ancestors ("You can attach a policy to a parent group and it is inherited by its
    child groups, and by all of the things in the group and in its child groups",
    https://docs.aws.amazon.com/iot/latest/developerguide/thing-groups.html). Which connection
    acts as the thing is UNCONFIRMED on AWS's side; the safer reading is taken: the one whose
    client ID is the name of a thing attached to its certificate, the rule AWS gives for thing
    policy variables with non-exclusive thing association ("the value of clientId in the MQTT
    connect message ... must exactly match the thing name",
    https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html). A
    connection with another client ID (or HTTPS, which has none) gets only the certificate's.

    Args:
        snapshot: the certificate's registry snapshot.
        thing: the attached thing the client ID names, or None.
    """
    policies = list(snapshot.policies)
    if thing is not None:
        names = {name for name, _ in policies}
        policies += [
            (name, document)
            for name, document in snapshot.thing_group_policies.get(thing.thing_name, ())
            if name not in names
        ]
    return policies


@dataclass(slots=True)
class ConnectionPermissions:
    """What one connection may do: its policies, its request context, and cached decisions.

    Attributes:
        certificate_id: the connection's certificate ID.
        status: the certificate's registry status at the last refresh (None: unregistered).
        policies: the certificate's attached policies (default versions), parsed.
        context: the request context for policy variables and conditions.
    """

    certificate_id: str
    status: str | None
    policies: tuple[NamedPolicy, ...]
    context: RequestContext
    _cache: dict[tuple[str, str, str], Decision] | None = None
    # The authorizer's decisions by (certificate, client ID, CONNECT attributes), shared by the
    # connections with the same inputs; this connection's entry is looked up (or made) at its
    # first decision worth keeping, so an idle connection holds none.
    _shared: _SharedDecisions | None = None

    def check(self, action: str, kind: str, name: str) -> Decision:
        """Decide ``action`` on ``arn:aws:iot:<region>:<account>:<kind>/<name>``.

        ``kind`` ``*`` stands for the resource ``*``: the actions AWS authorizes only on all
        resources (``iot:ListRetainedMessages``, ``iot:ListNamedShadowsForThing``).
        """
        # The three strings as they are: their hashes are cached, a joined one is new each call.
        key = (action, kind, name)
        cache = self._cache  # set once looked up: the per-message path ends at its get
        if cache is None:
            cache = self._decisions(create=False)
        decision = cache.get(key) if cache is not None else None
        if decision is None:
            context = self.context
            resource = (
                "*" if kind == "*" else resource_arn(context.region, context.account_id, kind, name)
            )
            decision = evaluate(self.policies, action, resource, context)
            if action == CONNECT:
                # Asked once per connection: remembered, it would hold a decision (~0.5 KB) for
                # every client ID that ever connected.
                return decision
            cache = self._decisions(create=True)
            assert cache is not None
            if len(cache) >= _DECISION_CACHE:
                cache.clear()
            cache[key] = decision
        return decision

    def _decisions(self, *, create: bool) -> dict[tuple[str, str, str], Decision] | None:
        cache = self._cache
        if cache is not None:
            return cache
        shared = self._shared
        if shared is None:
            cache = {} if create else None
        else:
            context = self.context
            key = (self.certificate_id, context.client_id, context.connect_attributes)
            cache = shared.get(key)
            if cache is None and create:
                if len(shared) >= _PRINCIPAL_CACHE:
                    shared.clear()
                cache = shared[key] = {}
        self._cache = cache
        return cache

    def may_receive(self, topic: str) -> bool:
        """``iot:Receive`` on ``topic``: AWS checks it at each delivery."""
        return self.check(RECEIVE, "topic", topic).allowed


class Authorizer:
    """Builds ``ConnectionPermissions`` from the registry and notices registry changes.

    Args:
        registry: the control-plane registry (things, policies, attachments, certificates).
        region: for resource ARNs.
        account_id: for resource ARNs.
    """

    def __init__(self, registry: CertificateRegistry, *, region: str, account_id: str) -> None:
        self._registry = registry
        self._region = region
        self._account_id = account_id
        self._generation = registry.generation()
        self._parsed: dict[tuple[str, str], NamedPolicy | None] = {}
        # Per-certificate caches. A certificate's subject, issuer and SANs never change; its
        # snapshot (status, policies, things) is valid until the registry's generation moves,
        # which is checked on every CONNECT (one row) so a change is never missed.
        self._certificates: dict[str, CertificateContext] = {}
        self._snapshots: dict[str, PrincipalSnapshot] = {}
        # Decisions shared by every connection with the same certificate, client ID and CONNECT
        # attributes (the inputs of the request context), so a reconnecting device does not
        # evaluate its policies again. Cleared with the snapshots.
        self._decisions: _SharedDecisions = {}
        self._snapshot_generation = self._generation

    def permissions_for(
        self,
        principal: Principal,
        client_id: str,
        connect_attributes: frozenset[str] = frozenset(),
    ) -> ConnectionPermissions:
        """Read the certificate's policies and things and build the request context.

        One registry transaction. Thing variables resolve only when ``client_id`` is the name of
        a thing attached to the certificate, as AWS's ``iot:Connection.Thing.*`` do; the same
        connection then also has the policies that thing inherits from its thing groups (see
        ``effective_policies``).

        Raises:
            ValueError: ``principal`` is not an X.509 certificate.
        """
        certificate_id = principal.certificate_id
        if certificate_id is None:
            raise ValueError(f"not a certificate principal: {principal.kind.value}")
        snapshot = self._snapshot(certificate_id)
        thing = next((t for t in snapshot.things if t.thing_name == client_id), None)
        policies = tuple(
            policy
            for name, document in effective_policies(snapshot, thing)
            if (policy := self._parse(name, document)) is not None
        )
        subject, issuer, san = self._certificate_context(certificate_id, principal.certificate_der)
        context = RequestContext(
            region=self._region,
            account_id=self._account_id,
            client_id=client_id,
            thing_name=thing.thing_name if thing else None,
            thing_type_name=thing.thing_type_name if thing else None,
            thing_attributes=dict(thing.attributes) if thing else _NO_THING_ATTRIBUTES,
            is_attached=thing is not None,
            certificate_subject=subject,
            certificate_issuer=issuer,
            certificate_san=san,
            connect_attributes=connect_attributes,
        )
        return ConnectionPermissions(
            certificate_id, snapshot.status, policies, context, _shared=self._decisions
        )

    def _snapshot(self, certificate_id: str) -> PrincipalSnapshot:
        generation = self._registry.generation()
        if generation != self._snapshot_generation:
            self._snapshots.clear()
            self._decisions.clear()
            self._snapshot_generation = generation
        snapshot = self._snapshots.get(certificate_id)
        if snapshot is None:
            if len(self._snapshots) >= _PRINCIPAL_CACHE:
                self._snapshots.clear()
            snapshot = self._registry.principal_snapshot(certificate_id)
            self._snapshots[certificate_id] = snapshot
        return snapshot

    def _certificate_context(self, certificate_id: str, der: bytes | None) -> CertificateContext:
        """The certificate's subject, issuer and SANs, from ``der`` or else from the registry.

        The TLS door keeps no copy of a connection's certificate (a kilobyte per connection):
        the registry holds every certificate that may connect, under the same ID.
        """
        context = self._certificates.get(certificate_id)
        if context is None:
            if der is not None:
                certificate = x509.load_der_x509_certificate(der)
            else:
                record = self._registry.get_certificate(certificate_id)
                if record is None:
                    # Not registered (deleted since the handshake): its status refuses it.
                    return _NO_CERTIFICATE
                certificate = x509.load_pem_x509_certificate(record.certificate_pem.encode())
            if len(self._certificates) >= _PRINCIPAL_CACHE:
                self._certificates.clear()
            context = certificate_context(certificate)
            self._certificates[certificate_id] = context
        return context

    def _parse(self, name: str, document: str) -> NamedPolicy | None:
        key = (name, document)
        if key not in self._parsed:
            try:
                self._parsed[key] = NamedPolicy(name, parse_policy_document(document))
            except PolicyError:
                # The registry validated it on the way in; a document that no longer parses
                # (written by a newer version) grants nothing rather than failing the connect.
                self._parsed[key] = None
        return self._parsed[key]

    def changed(self) -> bool:
        """Whether the registry was written since the last call (cheap: one row)."""
        generation = self._registry.generation()
        if generation == self._generation:
            return False
        self._generation = generation
        return True
