"""Fleet provisioning by claim: the device MQTT API, applied to the real registry.

A built-in service of the device core. A device connected with a claim certificate publishes to
``$aws/certificates/create/<fmt>`` (CreateKeysAndCertificate), ``$aws/certificates/
create-from-csr/<fmt>`` (CreateCertificateFromCsr) or ``$aws/provisioning-templates/<name>/
provision/<fmt>`` (RegisterThing), ``<fmt>`` ``json`` or ``cbor``
(https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html). The ingress
has already checked ``iot:Publish`` (the claim policy of provision-wo-cert.html allows exactly
these topics). The pure package ``aws_iot_mock.aws.provisioning`` parses requests, builds
payloads, signs ownership tokens and evaluates templates; this shell issues certificates with the
local CA, registers them ``PENDING_ACTIVATION``, and for RegisterThing creates the thing, sets the
certificate's status, creates and attaches the policies and attaches the certificate to the thing
in the registry the broker enforces, so the device reconnects with its new certificate as the new
thing and the template's policy applies.

Answers go to the requesting client only (a reply carries a private key), on ``<topic>/accepted``
or ``<topic>/rejected`` in the topic's format, and only when it subscribed to them: "Before
publishing a request message topic, subscribe to the response topics ... If you do not subscribe
to the response topics before you publish a request, you might not receive the results"
(fleet-provision-api.html). Pre-provisioning hooks are not run: a template that names one is
refused with a reason saying so.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import NameOID

from aws_iot_mock import pki
from aws_iot_mock.aws.provisioning import device
from aws_iot_mock.aws.provisioning.device import PayloadFormat, ProvisioningError
from aws_iot_mock.aws.provisioning.engine import (
    EngineOptions,
    ProvisioningPlan,
    TemplateError,
    ThingPlan,
    evaluate,
)
from aws_iot_mock.aws.provisioning.templates import template_for_register_thing
from aws_iot_mock.aws.reserved_topics import FLEET_PROVISIONING
from aws_iot_mock.core.services import ServiceRequest
from aws_iot_mock.errors import BrokerError, CertificateError, ResourceNotFoundError
from aws_iot_mock.logs.cloudwatch import EventType, service_record
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus
from aws_iot_mock.resources import is_aws_error
from aws_iot_mock.state.provisioning import ProvisioningStore

__all__ = ["FleetProvisioningService"]

logger = logging.getLogger("aws_iot_mock.provisioning")

# (client ID, topic, payload) -> True when delivered (``DeviceCore.reply_as_service`` with
# ``subscribed_only``).
Reply = Callable[[str, str, bytes], bool | None]
Emit = Callable[[Mapping[str, object]], None]

_EVENT_TYPES: Final = {
    "create_keys_and_certificate": EventType.CREATE_KEYS_AND_CERTIFICATE,
    "create_certificate_from_csr": EventType.CREATE_CERTIFICATE_FROM_CSR,
    "register_thing": EventType.REGISTER_THING,
}
# The subject fields behind the AWS::IoT::Certificate::* parameters (jit-provisioning.html).
_SUBJECT_FIELDS: Final = (
    ("CommonName", NameOID.COMMON_NAME),
    ("Country", NameOID.COUNTRY_NAME),
    ("Organization", NameOID.ORGANIZATION_NAME),
    ("OrganizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("DistinguishedNameQualifier", NameOID.DN_QUALIFIER),
    ("StateName", NameOID.STATE_OR_PROVINCE_NAME),
    ("SerialNumber", NameOID.SERIAL_NUMBER),
)
_INTERNAL = "An internal error occurred; the request was not applied."


class FleetProvisioningService:
    """CreateKeysAndCertificate, CreateCertificateFromCsr and RegisterThing over MQTT.

    Args:
        store: the provisioning store (templates, the ownership-token key).
        registry: the registry the broker enforces.
        certificate_authority: the local CA that signs the new certificates.
        reply: sends an answer to the requesting client if it subscribed; None: nobody to
            answer (tests of the pure parts).
        emit: writes an AWSIotLogsV2 record.
        clock: epoch seconds (token expiry).
        region: for ARNs.
        account_id: for ARNs.
        options: the template engine's choices.
        log_successes: whether INFO records are written.
    """

    name = FLEET_PROVISIONING
    request_filters = (
        "$aws/certificates/create/+",
        "$aws/certificates/create-from-csr/+",
        "$aws/provisioning-templates/+/provision/+",
    )

    def __init__(
        self,
        store: ProvisioningStore,
        registry: CertificateRegistry,
        *,
        certificate_authority: Callable[[], pki.CertificateAuthority],
        reply: Reply | None,
        emit: Emit,
        clock: Callable[[], float],
        region: str,
        account_id: str,
        options: EngineOptions | None = None,
        log_successes: bool = True,
    ) -> None:
        self._store = store
        self._registry = registry
        self._ca = certificate_authority
        self._reply = reply
        self._emit = emit
        self._clock = clock
        self._region = region
        self._account_id = account_id
        self._options = options
        self._log_successes = log_successes

    def handle(self, request: ServiceRequest) -> None:
        """Answer a publish on a fleet-provisioning request topic."""
        topic = device.parse_topic(request.topic)
        if topic is None:
            # A reserved request topic with another format (…/create/xml) or an invalid
            # template name: answered in JSON, the format the SDKs default to.
            error = ProvisioningError(
                400,
                "InvalidRequest",
                "The topic must end in /json or /cbor, and a template name must be 1-36 "
                "characters of [0-9A-Za-z_-]",
            )
            self._answer(request, None, f"{request.topic}/rejected", error, PayloadFormat.JSON)
            return
        if request.client_id is None:
            # Published over HTTPS: nobody to give a certificate to. Nothing is created.
            error = ProvisioningError(
                400, "InvalidRequest", "Fleet provisioning answers MQTT clients only"
            )
            self._log(request, topic, error)
            return
        failure: ProvisioningError | None = None
        try:
            document = self._apply(topic, request)
        except ProvisioningError as refused:
            failure = refused
        except (sqlite3.Error, BrokerError, OSError):
            logger.exception("fleet provisioning failed for %s", request.topic)
            failure = ProvisioningError(500, "InternalFailure", _INTERNAL)
        if failure is not None:
            rejected = topic.reply_topic(request.topic, accepted=False)
            self._answer(request, topic, rejected, failure, topic.payload_format)
            return
        self._send(
            request,
            topic.reply_topic(request.topic, accepted=True),
            device.encode_payload(document, topic.payload_format),
        )
        self._log(request, topic, None)

    # -- the three operations ----------------------------------------------------------------

    def _apply(self, topic: device.ProvisioningTopic, request: ServiceRequest) -> dict[str, Any]:
        payload = device.decode_payload(request.payload, topic.payload_format)
        if topic.operation == "register_thing":
            assert topic.template_name is not None  # parse_topic sets it for register_thing
            return self._register_thing(topic.template_name, payload)
        if topic.operation == "create_certificate_from_csr":
            csr = device.parse_create_certificate_from_csr(payload)
            try:
                issued = pki.sign_csr(self._ca(), csr.encode())
            except (CertificateError, UnicodeEncodeError) as exc:
                raise ProvisioningError(
                    400, "InvalidCertificateSigningRequest", f"Invalid CSR: {exc}"
                ) from None
        else:
            # "with an empty message payload" (fleet-provision-api.html); any members ignored.
            issued = pki.issue_device_certificate(self._ca())
        # "The new certificate has a PENDING_ACTIVATION status. When you call RegisterThing to
        # provision a thing with this certificate, the certificate status changes to ACTIVE or
        # INACTIVE as described in the template." (fleet-provision-api.html)
        record = self._registry.register_certificate(
            issued.certificate_pem, status=CertificateStatus.PENDING_ACTIVATION
        )
        token = device.issue_ownership_token(
            record.certificate_id,
            key=self._store.token_key(),
            now=self._clock(),
            claim_certificate_id=request.facts.principal_id,
        )
        if issued.private_key_pem is None:
            return device.create_certificate_from_csr_accepted(
                certificate_id=record.certificate_id,
                certificate_pem=record.certificate_pem,
                ownership_token=token,
            )
        return device.create_keys_and_certificate_accepted(
            certificate_id=record.certificate_id,
            certificate_pem=record.certificate_pem,
            private_key=issued.private_key_pem.decode("ascii"),
            ownership_token=token,
        )

    def _register_thing(self, template_name: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        token, parameters = device.parse_register_thing(payload)
        claim = device.verify_ownership_token(token, key=self._store.token_key(), now=self._clock())
        stored = self._store.template(template_name)
        template = template_for_register_thing(
            {} if stored is None else {template_name: stored}, template_name, options=self._options
        )
        record = self._registry.get_certificate(claim.certificate_id)
        if record is None:
            raise ProvisioningError(
                400,
                "InvalidCertificateOwnershipToken",
                "The certificate of this ownership token no longer exists.",
            )
        try:
            plan = evaluate(
                template,
                parameters,
                certificate_id=record.certificate_id,
                certificate_subject=_subject(record.certificate_pem),
                region=self._region,
                account_id=self._account_id,
                options=self._options,
            )
        except TemplateError as exc:
            raise ProvisioningError(400, "InvalidParameters", str(exc)) from None
        self._check_plan(plan)
        self._apply_plan(plan, record.certificate_arn, record.status)
        thing_name = plan.thing.thing_name if plan.thing is not None else None
        return device.register_thing_accepted(
            thing_name=thing_name, device_configuration=plan.device_configuration
        )

    # -- applying a template's plan to the registry ------------------------------------------

    def _check_plan(self, plan: ProvisioningPlan) -> None:
        """Refuse, before anything is written, what would fail halfway."""
        thing = plan.thing
        if thing is not None:
            if thing.billing_group is not None:
                raise ProvisioningError(
                    400,
                    "InvalidParameters",
                    f"BillingGroup {thing.billing_group}: billing groups are not emulated by "
                    "aws-iot-mock; remove the property from the template",
                )
            if thing.thing_type_name is not None:
                self._require(
                    functools.partial(self._registry.describe_thing_type, thing.thing_type_name),
                    f"Thing type {thing.thing_type_name} does not exist",
                )
            for group in thing.thing_groups or ():
                self._require(
                    functools.partial(self._registry.describe_thing_group, group),
                    f"Thing group {group} does not exist",
                )
        for name in [p.policy_name for p in plan.policies if p.policy_document is None]:
            self._require(
                functools.partial(self._registry.get_policy, name), f"Policy {name} does not exist"
            )

    @staticmethod
    def _require(lookup: Callable[[], object], message: str) -> None:
        try:
            lookup()
        except BrokerError as exc:
            if is_aws_error(exc, "ResourceNotFoundException"):
                raise ProvisioningError(400, "InvalidParameters", message) from None
            raise

    def _apply_plan(
        self, plan: ProvisioningPlan, certificate_arn: str, status: CertificateStatus
    ) -> None:
        """Create or update the thing, set the certificate's status, attach everything.

        The order of ``ProvisioningPlan``'s contract; registry refusals (a malformed attribute,
        ten policies on one certificate) become 400 InvalidParameters.
        """
        registry = self._registry
        try:
            if plan.thing is not None:
                self._provision_thing(plan.thing)
            certificate = plan.certificate
            if certificate is not None:
                wanted = CertificateStatus(certificate.status)
                if status is CertificateStatus.PENDING_ACTIVATION or (
                    certificate.status_override == "REPLACE" and status is not wanted
                ):
                    registry.update_certificate_status(certificate.certificate_id, wanted)
                elif certificate.status_override == "FAIL" and status is not wanted:
                    raise _conflict(f"certificate {certificate.certificate_id} status")
            for policy in plan.policies:
                if policy.policy_document is not None:
                    try:
                        registry.create_policy(policy.policy_name, policy.policy_document)
                    except BrokerError as exc:
                        if not is_aws_error(exc, "ResourceAlreadyExistsException"):
                            raise
                registry.attach_policy(policy.policy_name, certificate_arn)
            if plan.thing is not None:
                registry.attach_thing_principal(plan.thing.thing_name, certificate_arn)
                for group in plan.thing.thing_groups or ():
                    # A template's ThingGroups: the registry's static groups (a missing group
                    # is a ResourceNotFoundException there, InvalidParameters to the device).
                    registry.add_thing_to_thing_group(group, plan.thing.thing_name)
        except (CertificateError, ResourceNotFoundError) as exc:
            raise ProvisioningError(400, "InvalidParameters", str(exc)) from None

    def _provision_thing(self, thing: ThingPlan) -> None:
        """Create the thing, or apply the template's OverrideSettings to an existing one.

        "DO_NOTHING: Leave the resource as is. REPLACE: Replace the resource with the resource
        specified in the template. FAIL: Cause the request to fail with a
        ResourceConflictsException. MERGE: Valid only for the ThingGroups and AttributePayload
        properties of a thing." (provision-template.html, OverrideSettings)
        """
        registry = self._registry
        try:
            existing = registry.describe_thing(thing.thing_name)
        except BrokerError as exc:
            if not is_aws_error(exc, "ResourceNotFoundException"):
                raise
            registry.create_thing(
                thing.thing_name,
                thing_type_name=thing.thing_type_name,
                attributes=thing.attributes,
            )
            return
        attributes_action = thing.overrides.get("AttributePayload", "DO_NOTHING")
        if thing.attributes is not None and dict(thing.attributes) != dict(existing.attributes):
            if attributes_action == "FAIL":
                raise _conflict(f"thing {thing.thing_name} AttributePayload")
            if attributes_action in ("REPLACE", "MERGE"):
                registry.update_thing(
                    thing.thing_name,
                    attributes=thing.attributes,
                    merge=attributes_action == "MERGE",
                )
        type_action = thing.overrides.get("ThingTypeName", "DO_NOTHING")
        if thing.thing_type_name is not None and thing.thing_type_name != existing.thing_type_name:
            if type_action == "FAIL":
                raise _conflict(f"thing {thing.thing_name} ThingTypeName")
            if type_action == "REPLACE":
                registry.update_thing(thing.thing_name, thing_type_name=thing.thing_type_name)

    # -- answering ---------------------------------------------------------------------------

    def _answer(
        self,
        request: ServiceRequest,
        topic: device.ProvisioningTopic | None,
        reply_topic: str,
        error: ProvisioningError,
        payload_format: PayloadFormat,
    ) -> None:
        payload = device.encode_payload(device.rejected_payload(error), payload_format)
        if request.client_id is not None:
            self._send(request, reply_topic, payload)
        self._log(request, topic, error)

    def _send(self, request: ServiceRequest, topic: str, payload: bytes) -> None:
        if self._reply is not None and request.client_id is not None:
            self._reply(request.client_id, topic, payload)

    def _log(
        self,
        request: ServiceRequest,
        topic: device.ProvisioningTopic | None,
        error: ProvisioningError | None,
    ) -> None:
        if error is None and not self._log_successes:
            return
        attributes = {"topicName": request.topic}
        if topic is not None and topic.template_name is not None:
            attributes["templateName"] = topic.template_name
        if topic is not None:
            event = _EVENT_TYPES[topic.operation]
        elif request.topic.startswith("$aws/certificates/create-from-csr/"):
            event = EventType.CREATE_CERTIFICATE_FROM_CSR
        elif request.topic.startswith("$aws/certificates/"):
            event = EventType.CREATE_KEYS_AND_CERTIFICATE
        else:
            event = EventType.REGISTER_THING
        failure = None if error is None else (error.error_code, error.message)
        self._emit(service_record(event, request.facts, attributes=attributes, failure=failure))


def _conflict(what: str) -> ProvisioningError:
    """OverrideSettings FAIL on an existing resource that differs from the template."""
    return ProvisioningError(
        409,
        "ResourceConflictsException",
        f"The template's OverrideSettings say FAIL, and the existing {what} differs",
    )


def _subject(certificate_pem: str) -> dict[str, str]:
    """The certificate's subject fields, by their ``AWS::IoT::Certificate::`` suffix."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
    subject: dict[str, str] = {}
    for suffix, oid in _SUBJECT_FIELDS:
        values = certificate.subject.get_attributes_for_oid(oid)
        if values:
            value = values[0].value
            subject[suffix] = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return subject
