"""The console's registry page: things, certificates and policies, through the control plane.

Every read and write is one or more ``IotControlPlane`` operations (what boto3 would call),
run on the control plane's worker thread by the api door's ``ControlEndpoint.run``; the page
never opens the registry itself. A certificate status change is ``UpdateCertificate``, so the
broker re-reads it within a second, as after any registry write: devices connected with a
certificate no longer ACTIVE are disconnected, and its next TLS handshake is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aws_iot_mock.console.registry_views import (
    DeviceBundle,
    authorization_test_request,
    create_certificate_request,
    device_bundle,
    jsonable,
    update_certificate_request,
)
from aws_iot_mock.console.views import ConsoleRequestError

__all__ = ["ControlCall", "RegistryPage"]

# Runs one control-plane operation: (operation, request members) -> response members.
ControlCall = Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]]
# One page of a listing (the largest page ListThings, ListCertificates and ListPolicies give).
_PAGE = 250


def _query_name(query: Mapping[str, str], key: str) -> str:
    value = query.get(key, "").strip()
    if not value:
        raise ConsoleRequestError(f"{key} is required")
    return value


class RegistryPage:
    """The registry page's documents and actions, each a sequence of control-plane operations.

    Args:
        control: runs one control-plane operation (``ControlEndpoint.run``).
        root_ca: the root CA certificate file (packed into device bundles).
        arn_prefix: ``arn:aws:iot:REGION:ACCOUNT:`` (certificate ARNs for principal look-ups).
    """

    def __init__(self, control: ControlCall, root_ca: Path, arn_prefix: str) -> None:
        self._control = control
        self._root_ca = root_ca
        self._arn_prefix = arn_prefix

    async def _call(self, operation: str, members: Mapping[str, Any]) -> dict[str, Any]:
        answer = await self._control(operation, members)
        result: dict[str, Any] = jsonable(answer)
        return result

    def _certificate_arn(self, certificate_id: str) -> str:
        return f"{self._arn_prefix}cert/{certificate_id}"

    # -- things ---------------------------------------------------------------------------

    async def things(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``ListThings``: one page of things (name, type, attributes, version)."""
        members: dict[str, Any] = {"maxResults": _PAGE}
        if query.get("nextToken"):
            members["nextToken"] = query["nextToken"]
        answer = await self._call("ListThings", members)
        return {"things": answer.get("things", []), "nextToken": answer.get("nextToken")}

    async def thing(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``DescribeThing``, its principals (``ListThingPrincipals``) and groups."""
        name = _query_name(query, "thingName")
        described = await self._call("DescribeThing", {"thingName": name})
        principals = await self._call("ListThingPrincipals", {"thingName": name})
        groups = await self._call("ListThingGroupsForThing", {"thingName": name})
        return {
            "thing": described,
            "principals": principals.get("principals", []),
            "thingGroups": [g.get("groupName") for g in groups.get("thingGroups", [])],
        }

    async def create_thing(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``CreateThing`` with the form's name and attributes (``{"name": "value"}``)."""
        name = body.get("thingName")
        if not isinstance(name, str) or not name.strip():
            raise ConsoleRequestError("thingName is required")
        members: dict[str, Any] = {"thingName": name.strip()}
        attributes = body.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            raise ConsoleRequestError('attributes is an object of text values: {"name": "value"}')
        if attributes:
            members["attributePayload"] = {"attributes": attributes}
        return await self._call("CreateThing", members)

    # -- certificates ---------------------------------------------------------------------

    async def certificates(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``ListCertificates``: one page, newest first."""
        members: dict[str, Any] = {"pageSize": _PAGE, "ascendingOrder": False}
        if query.get("marker"):
            members["marker"] = query["marker"]
        answer = await self._call("ListCertificates", members)
        return {
            "certificates": answer.get("certificates", []),
            "nextMarker": answer.get("nextMarker"),
        }

    async def certificate(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``DescribeCertificate``, its things and its attached policies."""
        certificate_id = _query_name(query, "certificateId")
        described = await self._call("DescribeCertificate", {"certificateId": certificate_id})
        description = described["certificateDescription"]
        arn = description.get("certificateArn") or self._certificate_arn(certificate_id)
        things = await self._call("ListPrincipalThings", {"principal": arn})
        policies = await self._call("ListAttachedPolicies", {"target": arn})
        return {
            "certificate": description,
            "things": things.get("things", []),
            "policies": [p.get("policyName") for p in policies.get("policies", [])],
        }

    async def update_certificate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``UpdateCertificate``; answers the certificate as ``DescribeCertificate`` now does."""
        request = update_certificate_request(body)
        await self._call("UpdateCertificate", request)
        described = await self._call(
            "DescribeCertificate", {"certificateId": request["certificateId"]}
        )
        return {"certificate": described["certificateDescription"]}

    async def create_certificate(self, body: Mapping[str, Any]) -> DeviceBundle:
        """``CreateKeysAndCertificate``, then the attachments the form asked for.

        The thing and the policy are looked up first (``DescribeThing``, ``GetPolicy``), so
        that a typo is refused before a key is made that nobody could download again.
        """
        form = create_certificate_request(body)
        if form.thing_name is not None:
            await self._call("DescribeThing", {"thingName": form.thing_name})
        if form.policy_name is not None:
            await self._call("GetPolicy", {"policyName": form.policy_name})
        created = await self._call("CreateKeysAndCertificate", {"setAsActive": form.set_as_active})
        arn = created["certificateArn"]
        if form.thing_name is not None:
            await self._call(
                "AttachThingPrincipal", {"thingName": form.thing_name, "principal": arn}
            )
        if form.policy_name is not None:
            await self._call("AttachPolicy", {"policyName": form.policy_name, "target": arn})
        return device_bundle(created, self._root_ca.read_bytes(), thing_name=form.thing_name)

    # -- policies -------------------------------------------------------------------------

    async def policies(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``ListPolicies``: one page of policy names."""
        members: dict[str, Any] = {"pageSize": _PAGE}
        if query.get("marker"):
            members["marker"] = query["marker"]
        answer = await self._call("ListPolicies", members)
        return {"policies": answer.get("policies", []), "nextMarker": answer.get("nextMarker")}

    async def policy(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GetPolicy`` (the default version's document) and its targets."""
        name = _query_name(query, "policyName")
        policy = await self._call("GetPolicy", {"policyName": name})
        targets = await self._call("ListTargetsForPolicy", {"policyName": name, "pageSize": _PAGE})
        return {"policy": policy, "targets": targets.get("targets", [])}

    async def test_authorization(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``TestAuthorization`` for one action on the form's resources."""
        request = authorization_test_request(body)
        principal = request.get("principal")
        if isinstance(principal, str) and not principal.startswith("arn:"):
            request["principal"] = self._certificate_arn(principal)
        return await self._call("TestAuthorization", request)
