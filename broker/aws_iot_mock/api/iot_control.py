"""The AWS IoT control plane (the ``iot`` service) over the registry: one service layer.

``IotControlPlane.call(operation, request)`` takes an operation name and its request members by
the names of botocore's ``iot`` model (path, query, header and body members alike) and returns
the response members (timestamps as ``datetime``), raising ``AwsApiError`` with the model's
exception names. The REST door (``aws_iot_mock.api.control_endpoint``) and the ``aws-iot-mock``
CLI call the same operations on the same registry, so a change made either way reaches live
connections the same way: every registry write bumps its generation, and the broker re-reads
permissions, trusted CAs and domain configurations within a second.

Operations, by family (shapes from the AWS IoT API reference,
https://docs.aws.amazon.com/iot/latest/apireference/API_Operations_AWS_IoT.html):

- certificates: CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterCertificate,
  RegisterCertificateWithoutCA, DescribeCertificate, ListCertificates, ListCertificatesByCA,
  UpdateCertificate, DeleteCertificate; CA certificates: RegisterCACertificate,
  DescribeCACertificate, ListCACertificates, UpdateCACertificate, DeleteCACertificate;
- things and thing types: CreateThing, DescribeThing, ListThings, UpdateThing, DeleteThing,
  CreateThingType, DescribeThingType, ListThingTypes, DeprecateThingType, DeleteThingType,
  AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals, ListPrincipalThings;
- static thing groups: CreateThingGroup, DescribeThingGroup, ListThingGroups, UpdateThingGroup,
  DeleteThingGroup, AddThingToThingGroup, RemoveThingFromThingGroup, ListThingsInThingGroup,
  ListThingGroupsForThing;
- policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, CreatePolicyVersion,
  GetPolicyVersion, ListPolicyVersions, SetDefaultPolicyVersion, DeletePolicyVersion,
  AttachPolicy, DetachPolicy, ListAttachedPolicies, ListTargetsForPolicy, GetEffectivePolicies,
  TestAuthorization and the deprecated AttachPrincipalPolicy, DetachPrincipalPolicy,
  ListPrincipalPolicies, ListPolicyPrincipals;
- endpoints: DescribeEndpoint, CreateDomainConfiguration, DescribeDomainConfiguration,
  ListDomainConfigurations, UpdateDomainConfiguration, DeleteDomainConfiguration;
- tags: TagResource, UntagResource, ListTagsForResource.

Every other operation of the model answers ``NotImplementedException`` (501) naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from aws_iot_mock import pki
from aws_iot_mock.authz.iot_policy_evaluation import (
    EXPLICIT_DENY,
    Decision,
    NamedPolicy,
    PolicyError,
    RequestContext,
    certificate_context,
    evaluate,
    parse_policy_document,
)
from aws_iot_mock.authz.registry_permissions import effective_policies
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.api_pages import page
from aws_iot_mock.certs_dir import CertsDirectory
from aws_iot_mock.config import Config, dns_name_problem
from aws_iot_mock.errors import BrokerError
from aws_iot_mock.registry import CertificateRegistry, CertificateStatus, aws_error_code
from aws_iot_mock.registry._util import from_iso
from aws_iot_mock.registry.certificates import CertificateRecord
from aws_iot_mock.registry.domain_configurations import DomainConfigurationRecord
from aws_iot_mock.tls.security_policies import SECURITY_POLICIES

__all__ = [
    "AUTH_ACTIONS",
    "ENDPOINT_TYPES",
    "IMPLEMENTED_OPERATIONS",
    "NEW_DOMAIN_SECURITY_POLICY",
    "IotControlPlane",
    "Operation",
]

Operation = Callable[[dict[str, Any]], dict[str, Any]]
_T = TypeVar("_T")

# API_DescribeEndpoint, endpointType: iot:Data (VeriSign), iot:Data-ATS, iot:CredentialProvider,
# iot:Jobs. The mock serves every API on its one endpoint name, so each gets that name.
ENDPOINT_TYPES: Final = ("iot:Data-ATS", "iot:Data", "iot:CredentialProvider", "iot:Jobs")
# TestAuthorization's actionType values and the IoT policy actions they stand for.
AUTH_ACTIONS: Final = {
    "CONNECT": "iot:Connect",
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
}
# "For a new domain configuration, the security policy is set to
# IoTSecurityPolicy_TLS13_1_2_2022_10 by default" (iot-endpoints-tls-config).
NEW_DOMAIN_SECURITY_POLICY: Final = "IoTSecurityPolicy_TLS13_1_2_2022_10"
# The default endpoint as a domain configuration, as AWS lists it (domainType ENDPOINT).
DEFAULT_DOMAIN_CONFIGURATION: Final = "iot:Data-ATS"
_CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]*:[^:]*:cert/([0-9a-fA-F]{64})")
_THING_GROUP_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]*:[^:]*:thinggroup/(.+)")
_THING_ARN = re.compile(r"arn:aws[a-z-]*:iot:[^:]*:[^:]*:thing/(.+)")


class IotControlPlane:
    """The ``iot`` operations over one registry.

    Args:
        registry: the registry the broker enforces.
        config: the broker's configuration (region, account, endpoint, configured domains).
        certs: the certificates directory (the local CA issues and verifies certificates).
        clock: the current time, timezone-aware.
    """

    def __init__(
        self,
        registry: CertificateRegistry,
        config: Config,
        *,
        certs: CertsDirectory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._registry = registry
        self._config = config
        self._certs = certs
        self._clock = clock
        self._operations: dict[str, Operation] = {
            name: getattr(self, _method_name(name)) for name in IMPLEMENTED_OPERATIONS
        }

    def add_operations(self, operations: Mapping[str, Operation]) -> None:
        """Serve more ``iot`` operations from a built-in service (jobs, provisioning, rules).

        Built-in services own their resources; this layer is the one door the REST API and the
        CLI call them through, with the same error mapping as the registry's operations.

        Args:
            operations: model operation name → callable taking and returning model members.

        Raises:
            ValueError: an operation is already served (two owners would be a bug).
        """
        taken = set(operations) & set(self._operations)
        if taken:
            raise ValueError(f"iot operations served twice: {sorted(taken)}")
        self._operations.update(operations)

    @property
    def operations(self) -> frozenset[str]:
        """The names of the operations served."""
        return frozenset(self._operations)

    def call(self, operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run one operation.

        Args:
            operation: the model's operation name, e.g. ``CreateThing``.
            request: its members by model name.

        Returns:
            The response members (an empty dict for operations without output).

        Raises:
            AwsApiError: the error AWS answers (model exception names).
        """
        handler = self._operations.get(operation)
        if handler is None:
            raise AwsApiError(
                "NotImplementedException",
                f"aws-iot-mock does not emulate the {operation} operation",
                status=501,
            )
        try:
            return handler(dict(request))
        except AwsApiError:
            raise
        except BrokerError as exc:
            raise _api_error(exc) from None

    # --- certificates ---------------------------------------------------------------------

    def _create_keys_and_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        issued = pki.issue_device_certificate(self._certs.ensure_root_ca())
        assert issued.private_key_pem is not None
        record = self._registry.register_certificate(
            issued.certificate_pem, status=_active(_bool(request, "setAsActive"))
        )
        return {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
            "keyPair": {
                "PublicKey": issued.public_key_pem.decode(),
                "PrivateKey": issued.private_key_pem.decode(),
            },
        }

    def _create_certificate_from_csr(self, request: dict[str, Any]) -> dict[str, Any]:
        csr = _str(request, "certificateSigningRequest")
        issued = pki.sign_csr(self._certs.ensure_root_ca(), csr.encode())
        record = self._registry.register_certificate(
            issued.certificate_pem, status=_active(_bool(request, "setAsActive"))
        )
        return {
            "certificateArn": record.certificate_arn,
            "certificateId": record.certificate_id,
            "certificatePem": issued.certificate_pem.decode(),
        }

    def _register_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        status = _status(request, "status", default=_active(_bool(request, "setAsActive")))
        own_ca = self._certs.ensure_root_ca()
        record = self._registry.register_certificate(
            _str(request, "certificatePem"),
            status=status,
            ca_pem=_opt_str(request, "caCertificatePem"),
            own_ca_pem=own_ca.certificate_pem,
        )
        return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}

    def _register_certificate_without_c_a(self, request: dict[str, Any]) -> dict[str, Any]:
        status = _status(request, "status", default=CertificateStatus.INACTIVE)
        record = self._registry.register_certificate(_str(request, "certificatePem"), status)
        return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}

    def _describe_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._registry.describe_certificate(_str(request, "certificateId"))
        return {"certificateDescription": _certificate_description(record)}

    def _list_certificates(self, request: dict[str, Any]) -> dict[str, Any]:
        records = self._registry.list_certificates()
        return _marker_page(request, _ordered(records, request), "certificates", _cert_summary)

    def _list_certificates_by_c_a(self, request: dict[str, Any]) -> dict[str, Any]:
        ca_id = _str(request, "caCertificateId")
        self._registry.describe_ca_certificate(ca_id)
        records = self._registry.list_certificates_by_ca(ca_id)
        return _marker_page(request, _ordered(records, request), "certificates", _cert_summary)

    def _update_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        status = _status(request, "newStatus")
        self._registry.update_certificate_status(_str(request, "certificateId"), status)
        return {}

    def _delete_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_certificate(
            _str(request, "certificateId"), force_delete=_bool(request, "forceDelete")
        )
        return {}

    # --- CA certificates ------------------------------------------------------------------

    def _register_c_a_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        tags = _tags(request)
        record = self._registry.register_ca_certificate(
            _str(request, "caCertificate"),
            set_as_active=_bool(request, "setAsActive"),
            allow_auto_registration=_bool(request, "allowAutoRegistration"),
        )
        if tags:
            self._registry.tag_resource(record.certificate_arn, tags)
        return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}

    def _describe_c_a_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self._registry.describe_ca_certificate(_str(request, "certificateId"))
        description = _dates(
            record.to_description(), "creationDate", "lastModifiedDate", "validity"
        )
        return {"certificateDescription": description}

    def _list_c_a_certificates(self, request: dict[str, Any]) -> dict[str, Any]:
        records = self._registry.list_ca_certificates()
        return _marker_page(
            request,
            _ordered(records, request),
            "certificates",
            lambda record: _dates(record.to_summary(), "creationDate"),
        )

    def _update_c_a_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.update_ca_certificate(
            _str(request, "certificateId"),
            new_status=_opt_str(request, "newStatus"),
            new_auto_registration_status=_opt_str(request, "newAutoRegistrationStatus"),
        )
        return {}

    def _delete_c_a_certificate(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_ca_certificate(_str(request, "certificateId"))
        return {}

    # --- things ---------------------------------------------------------------------------

    def _create_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        _unsupported(request, "billingGroupName", "billing groups")
        attributes, _ = _attribute_payload(request.get("attributePayload"))
        thing = self._registry.create_thing(
            _str(request, "thingName"),
            thing_type_name=_opt_str(request, "thingTypeName"),
            attributes=attributes,
        )
        return {
            "thingName": thing.thing_name,
            "thingArn": thing.thing_arn,
            "thingId": thing.thing_id,
        }

    def _describe_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._registry.describe_thing(_str(request, "thingName")).to_description()

    def _list_things(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _opt_str(request, "attributeName")
        value = _opt_str(request, "attributeValue")
        prefix = _bool(request, "usePrefixAttributeValue")
        things = self._registry.list_things(
            attribute_name=name,
            attribute_value=None if prefix else value,
            thing_type_name=_opt_str(request, "thingTypeName"),
        )
        if prefix and name is not None and value is not None:
            things = [t for t in things if t.attributes.get(name, "").startswith(value)]
        return _token_page(request, things, "things", lambda thing: thing.to_summary())

    def _update_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        payload = request.get("attributePayload")
        attributes, merge = _attribute_payload(payload)
        self._registry.update_thing(
            _str(request, "thingName"),
            thing_type_name=_opt_str(request, "thingTypeName"),
            remove_thing_type=_bool(request, "removeThingType"),
            attributes=attributes if payload is not None else None,
            merge=merge,
            expected_version=_opt_int(request, "expectedVersion"),
        )
        return {}

    def _delete_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_thing(
            _str(request, "thingName"), expected_version=_opt_int(request, "expectedVersion")
        )
        return {}

    # --- thing types ----------------------------------------------------------------------

    def _create_thing_type(self, request: dict[str, Any]) -> dict[str, Any]:
        properties = _struct(request, "thingTypeProperties")
        tags = _tags(request)
        description = properties.get("thingTypeDescription")
        searchable = properties.get("searchableAttributes", [])
        if not isinstance(searchable, list):
            raise _invalid("thingTypeProperties.searchableAttributes must be a list")
        thing_type = self._registry.create_thing_type(
            _str(request, "thingTypeName"),
            description=description,
            searchable_attributes=searchable,
        )
        if tags:
            self._registry.tag_resource(thing_type.thing_type_arn, tags)
        return {
            "thingTypeName": thing_type.thing_type_name,
            "thingTypeArn": thing_type.thing_type_arn,
            "thingTypeId": thing_type.thing_type_id,
        }

    def _describe_thing_type(self, request: dict[str, Any]) -> dict[str, Any]:
        thing_type = self._registry.describe_thing_type(_str(request, "thingTypeName"))
        return _thing_type_description(thing_type.to_description())

    def _list_thing_types(self, request: dict[str, Any]) -> dict[str, Any]:
        types = self._registry.list_thing_types(thing_type_name=_opt_str(request, "thingTypeName"))

        def definition(thing_type: Any) -> dict[str, Any]:
            description = _thing_type_description(thing_type.to_description())
            description.pop("thingTypeId")  # not a member of ThingTypeDefinition
            return description

        return _token_page(request, types, "thingTypes", definition)

    def _deprecate_thing_type(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.deprecate_thing_type(
            _str(request, "thingTypeName"), _bool(request, "undoDeprecate")
        )
        return {}

    def _delete_thing_type(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_thing_type(_str(request, "thingTypeName"))
        return {}

    # --- thing principals -----------------------------------------------------------------

    def _attach_thing_principal(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.attach_thing_principal(
            _str(request, "thingName"), _str(request, "principal")
        )
        return {}

    def _detach_thing_principal(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.detach_thing_principal(
            _str(request, "thingName"), _str(request, "principal")
        )
        return {}

    def _list_thing_principals(self, request: dict[str, Any]) -> dict[str, Any]:
        principals = self._registry.list_thing_principals(_str(request, "thingName"))
        return _token_page(request, principals, "principals", _same)

    def _list_principal_things(self, request: dict[str, Any]) -> dict[str, Any]:
        things = self._registry.list_principal_things(_str(request, "principal"))
        return _token_page(request, things, "things", _same)

    # --- thing groups ---------------------------------------------------------------------

    def _create_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        properties = _struct(request, "thingGroupProperties")
        attributes, _ = _attribute_payload(properties.get("attributePayload"))
        tags = _tags(request)
        group = self._registry.create_thing_group(
            _str(request, "thingGroupName"),
            parent_group_name=_opt_str(request, "parentGroupName"),
            description=properties.get("thingGroupDescription"),
            attributes=attributes,
        )
        if tags:
            self._registry.tag_resource(group.thing_group_arn, tags)
        return {
            "thingGroupName": group.thing_group_name,
            "thingGroupArn": group.thing_group_arn,
            "thingGroupId": group.thing_group_id,
        }

    def _describe_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        return self._registry.describe_thing_group(_str(request, "thingGroupName")).to_description()

    def _list_thing_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        groups = self._registry.list_thing_groups(
            parent_group=_opt_str(request, "parentGroup"),
            name_prefix=_opt_str(request, "namePrefixFilter"),
            recursive=_bool(request, "recursive", default=True),
        )
        return _token_page(request, groups, "thingGroups", lambda group: group.to_summary())

    def _update_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        properties = _struct(request, "thingGroupProperties")
        payload = properties.get("attributePayload")
        attributes, merge = _attribute_payload(payload)
        group = self._registry.update_thing_group(
            _str(request, "thingGroupName"),
            description=properties.get("thingGroupDescription"),
            attributes=attributes if payload is not None else None,
            merge=merge,
            expected_version=_opt_int(request, "expectedVersion"),
        )
        return {"version": group.version}

    def _delete_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_thing_group(
            _str(request, "thingGroupName"), expected_version=_opt_int(request, "expectedVersion")
        )
        return {}

    def _add_thing_to_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        group, thing = self._group_and_thing(request)
        self._registry.add_thing_to_thing_group(group, thing)
        return {}

    def _remove_thing_from_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        group, thing = self._group_and_thing(request)
        self._registry.remove_thing_from_thing_group(group, thing)
        return {}

    def _list_things_in_thing_group(self, request: dict[str, Any]) -> dict[str, Any]:
        things = self._registry.list_things_in_thing_group(
            _str(request, "thingGroupName"), recursive=_bool(request, "recursive")
        )
        return _token_page(request, things, "things", _same)

    def _list_thing_groups_for_thing(self, request: dict[str, Any]) -> dict[str, Any]:
        groups = self._registry.list_thing_groups_for_thing(_str(request, "thingName"))
        return _token_page(request, groups, "thingGroups", lambda group: group.to_summary())

    def _group_and_thing(self, request: dict[str, Any]) -> tuple[str, str]:
        """AddThingToThingGroup's group and thing, each by name or by ARN."""
        group = _by_name_or_arn(request, "thingGroupName", "thingGroupArn", _THING_GROUP_ARN)
        thing = _by_name_or_arn(request, "thingName", "thingArn", _THING_ARN)
        return group, thing

    # --- policies -------------------------------------------------------------------------

    def _create_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        tags = _tags(request)
        policy = self._registry.create_policy(
            _str(request, "policyName"), _str(request, "policyDocument")
        )
        if tags:
            self._registry.tag_resource(policy.policy_arn, tags)
        return {
            "policyName": policy.policy_name,
            "policyArn": policy.policy_arn,
            "policyDocument": policy.document,
            "policyVersionId": policy.default_version_id,
        }

    def _get_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        policy = self._registry.get_policy(_str(request, "policyName"))
        return _dates(policy.to_get_policy(), "creationDate", "lastModifiedDate")

    def _list_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        policies = self._registry.list_policies()
        return _marker_page(request, policies, "policies", lambda policy: policy.to_summary())

    def _delete_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_policy(_str(request, "policyName"))
        return {}

    def _create_policy_version(self, request: dict[str, Any]) -> dict[str, Any]:
        version = self._registry.create_policy_version(
            _str(request, "policyName"),
            _str(request, "policyDocument"),
            set_as_default=_bool(request, "setAsDefault"),
        )
        return {
            "policyArn": version.policy_arn,
            "policyDocument": version.document,
            "policyVersionId": version.version_id,
            "isDefaultVersion": version.is_default,
        }

    def _get_policy_version(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "policyName")
        version = self._registry.get_policy_version(name, _str(request, "policyVersionId"))
        policy = self._registry.get_policy(name)
        description = _dates(version.to_description(), "creationDate", "lastModifiedDate")
        return {**description, "generationId": policy.generation_id}

    def _list_policy_versions(self, request: dict[str, Any]) -> dict[str, Any]:
        versions = self._registry.list_policy_versions(_str(request, "policyName"))
        return {
            "policyVersions": [_dates(version.to_summary(), "createDate") for version in versions]
        }

    def _set_default_policy_version(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.set_default_policy_version(
            _str(request, "policyName"), _str(request, "policyVersionId")
        )
        return {}

    def _delete_policy_version(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.delete_policy_version(
            _str(request, "policyName"), _str(request, "policyVersionId")
        )
        return {}

    def _attach_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.attach_policy(_str(request, "policyName"), _str(request, "target"))
        return {}

    def _detach_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.detach_policy(_str(request, "policyName"), _str(request, "target"))
        return {}

    def _list_attached_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        policies = self._registry.list_attached_policies(
            _str(request, "target"), recursive=_bool(request, "recursive")
        )
        return _marker_page(request, policies, "policies", lambda policy: policy.to_summary())

    def _list_targets_for_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        targets = self._registry.list_targets_for_policy(_str(request, "policyName"))
        return _marker_page(request, targets, "targets", _same)

    # AttachPrincipalPolicy and friends: "Deprecated", superseded by AttachPolicy and
    # friends (API_AttachPrincipalPolicy); the same attachments.

    def _attach_principal_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.attach_policy(_str(request, "policyName"), _str(request, "principal"))
        return {}

    def _detach_principal_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.detach_policy(_str(request, "policyName"), _str(request, "principal"))
        return {}

    def _list_principal_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        policies = self._registry.list_attached_policies(_str(request, "principal"))
        return _marker_page(request, policies, "policies", lambda policy: policy.to_summary())

    def _list_policy_principals(self, request: dict[str, Any]) -> dict[str, Any]:
        targets = self._registry.list_targets_for_policy(_str(request, "policyName"))
        principals = [arn for arn in targets if _CERTIFICATE_ARN.fullmatch(arn)]
        return _marker_page(request, principals, "principals", _same)

    def _get_effective_policies(self, request: dict[str, Any]) -> dict[str, Any]:
        principal = _opt_str(request, "principal")
        thing_name = _opt_str(request, "thingName")
        _unsupported(request, "cognitoIdentityPoolId", "Amazon Cognito identities")
        if principal is None:
            raise _invalid("principal is required (a certificate ARN)")
        snapshot = self._registry.principal_snapshot(self._certificate_of(principal).certificate_id)
        thing = None
        if thing_name is not None:
            thing = next((t for t in snapshot.things if t.thing_name == thing_name), None)
            if thing is None:
                self._registry.describe_thing(thing_name)  # ResourceNotFoundException if absent
        return {
            "effectivePolicies": [
                {
                    "policyName": name,
                    "policyArn": self._arn(f"policy/{name}"),
                    "policyDocument": document,
                }
                for name, document in effective_policies(snapshot, thing)
            ]
        }

    def _test_authorization(self, request: dict[str, Any]) -> dict[str, Any]:
        _unsupported(request, "cognitoIdentityPoolId", "Amazon Cognito identities")
        infos = request.get("authInfos")
        if not isinstance(infos, list) or not infos:
            raise _invalid("authInfos must be a list of 1-10 {actionType, resources}")
        checked: list[tuple[str, list[str]]] = []
        for info in infos:
            action = info.get("actionType") if isinstance(info, dict) else None
            resources = info.get("resources") if isinstance(info, dict) else None
            if action not in AUTH_ACTIONS:
                raise _invalid(f"actionType {action!r} is not one of {', '.join(AUTH_ACTIONS)}")
            if not isinstance(resources, list) or not resources:
                raise _invalid(f"authInfo {action} names no resources")
            checked.append((action, [str(resource) for resource in resources]))
        client_id = _opt_str(request, "clientId")
        skip = set(_str_list(request, "policyNamesToSkip"))
        context = RequestContext(
            region=self._config.region, account_id=self._config.account_id, client_id=client_id
        )
        policies: list[tuple[str, str]] = []
        principal = _opt_str(request, "principal")
        if principal is not None:
            record = self._certificate_of(principal)
            snapshot = self._registry.principal_snapshot(record.certificate_id)
            subject, issuer, san = certificate_context(
                pki.load_certificate(record.certificate_pem.encode("ascii"))
            )
            # Thing policy variables, and a thing group's policies, apply only when the client
            # ID names an attached thing (see authz.registry_permissions.effective_policies).
            thing = next((t for t in snapshot.things if t.thing_name == client_id), None)
            context = RequestContext(
                region=self._config.region,
                account_id=self._config.account_id,
                client_id=client_id,
                thing_name=None if thing is None else thing.thing_name,
                thing_type_name=None if thing is None else thing.thing_type_name,
                thing_attributes={} if thing is None else dict(thing.attributes),
                is_attached=thing is not None,
                certificate_subject=subject,
                certificate_issuer=issuer,
                certificate_san=san,
            )
            policies += [
                (name, doc) for name, doc in effective_policies(snapshot, thing) if name not in skip
            ]
        for name in _str_list(request, "policyNamesToAdd"):
            if name not in skip and name not in {n for n, _ in policies}:
                policies.append((name, self._registry.get_policy(name).document))
        try:
            named = [NamedPolicy(name, parse_policy_document(doc)) for name, doc in policies]
        except PolicyError as exc:
            raise _invalid(str(exc)) from None
        return {
            "authResults": [
                self._auth_result(named, action, resources, context)
                for action, resources in checked
            ]
        }

    def _auth_result(
        self,
        policies: Sequence[NamedPolicy],
        action_type: str,
        resources: Sequence[str],
        context: RequestContext,
    ) -> dict[str, Any]:
        """One element of TestAuthorization's ``authResults``.

        Every resource of the authInfo must be allowed for ALLOWED; an explicit deny of any
        resource makes the whole authInfo EXPLICIT_DENY.
        """
        decisions = [
            evaluate(policies, AUTH_ACTIONS[action_type], resource, context)
            for resource in resources
        ]
        denying = [d for d in decisions if d.reason == EXPLICIT_DENY]
        allowed: list[str] = []
        explicit: list[str] = []
        implicit: list[str] = []
        if denying:
            verdict = "EXPLICIT_DENY"
            explicit = _matched_policies(denying)
        elif all(d.allowed for d in decisions):
            verdict = "ALLOWED"
            allowed = _matched_policies(decisions)
        else:
            verdict = "IMPLICIT_DENY"
            # AWS: "When a policy doesn't explicitly deny or allow an action on a resource it
            # is considered an implicit deny": every policy evaluated took part.
            implicit = [policy.name for policy in policies]

        def listing(names: Sequence[str]) -> dict[str, Any]:
            return {
                "policies": [
                    {"policyName": name, "policyArn": self._arn(f"policy/{name}")} for name in names
                ]
            }

        return {
            "authInfo": {"actionType": action_type, "resources": list(resources)},
            "allowed": listing(allowed),
            "denied": {"implicitDeny": listing(implicit), "explicitDeny": listing(explicit)},
            "authDecision": verdict,
            "missingContextValues": [],
        }

    def _certificate_of(self, principal: str) -> CertificateRecord:
        """The registered certificate a principal names (a certificate ARN or bare ID)."""
        match = _CERTIFICATE_ARN.fullmatch(principal)
        certificate_id = match.group(1) if match else principal
        if match is None and not re.fullmatch(r"[0-9a-fA-F]{64}", principal):
            raise _invalid(
                f"principal {principal!r} is not a certificate ARN "
                "(arn:aws:iot:REGION:ACCOUNT:cert/CERTIFICATE_ID)"
            )
        return self._registry.describe_certificate(certificate_id)

    # --- endpoints and domain configurations ----------------------------------------------

    def _describe_endpoint(self, request: dict[str, Any]) -> dict[str, Any]:
        endpoint_type = _opt_str(request, "endpointType")
        if endpoint_type is not None and endpoint_type not in ENDPOINT_TYPES:
            raise _invalid(
                f"endpointType {endpoint_type!r} is not one of {', '.join(ENDPOINT_TYPES)}"
            )
        return {"endpointAddress": self._config.endpoint}

    def _create_domain_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "domainConfigurationName")
        domain_name = _opt_str(request, "domainName")
        if domain_name is None:
            raise _invalid(
                "domainName is required: aws-iot-mock serves custom domains only (no "
                "AWS-managed domain names are generated)"
            )
        problem = dns_name_problem(domain_name)
        if problem is not None:
            raise _invalid(f"domainName: {problem}")
        self._check_domain_free(name, domain_name)
        tls = _struct(request, "tlsConfig")
        policy = tls.get("securityPolicy", NEW_DOMAIN_SECURITY_POLICY)
        _check_security_policy(policy)
        tags = _tags(request)
        settings = _domain_settings(request)
        settings["domainType"] = "CUSTOMER_MANAGED"
        if "serverCertificateArns" in request:
            settings["serverCertificateArns"] = _str_list(request, "serverCertificateArns")
        record = self._registry.create_domain_configuration(
            name,
            domain_name,
            security_policy=policy,
            service_type=request.get("serviceType", "DATA"),
            settings=settings,
        )
        if tags:
            self._registry.tag_resource(record.arn, tags)
        return {"domainConfigurationName": record.name, "domainConfigurationArn": record.arn}

    def _describe_domain_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "domainConfigurationName")
        static = self._static_domains().get(name)
        if static is not None:
            return static.to_description()
        return self._registry.describe_domain_configuration(name).to_description()

    def _list_domain_configurations(self, request: dict[str, Any]) -> dict[str, Any]:
        service_type = _opt_str(request, "serviceType")
        records = [
            *self._static_domains().values(),
            *self._registry.list_domain_configurations(),
        ]
        if service_type is not None:
            records = [record for record in records if record.service_type == service_type]
        return _marker_page(
            request, records, "domainConfigurations", lambda record: record.to_summary()
        )

    def _update_domain_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "domainConfigurationName")
        self._refuse_static_domain(name, "updated")
        policy = None
        if "tlsConfig" in request:
            policy = _struct(request, "tlsConfig").get("securityPolicy")
            if policy is not None:
                _check_security_policy(policy)
        remove = ["authorizerConfig"] if _bool(request, "removeAuthorizerConfig") else []
        record = self._registry.update_domain_configuration(
            name,
            status=_opt_str(request, "domainConfigurationStatus"),
            security_policy=policy,
            settings=_domain_settings(request),
            remove=remove,
        )
        return {"domainConfigurationName": record.name, "domainConfigurationArn": record.arn}

    def _delete_domain_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _str(request, "domainConfigurationName")
        self._refuse_static_domain(name, "deleted")
        self._registry.delete_domain_configuration(name)
        return {}

    def _static_domains(self) -> dict[str, DomainConfigurationRecord]:
        """The default endpoint and the config file's domains, as read-only configurations."""
        config = self._config
        since = datetime(1970, 1, 1, tzinfo=UTC)

        def record(name: str, domain: str, policy: str, kind: str) -> DomainConfigurationRecord:
            return DomainConfigurationRecord(
                name=name,
                domain_name=domain,
                status="ENABLED",
                service_type="DATA",
                security_policy=policy,
                settings={
                    "arn": self._arn(f"domainconfiguration/{name}/config"),
                    "domainType": kind,
                },
                creation_date=since,
                last_status_change_date=since,
            )

        static = {
            DEFAULT_DOMAIN_CONFIGURATION: record(
                DEFAULT_DOMAIN_CONFIGURATION,
                config.endpoint,
                config.tls.security_policy,
                "ENDPOINT",
            )
        }
        for domain in config.domain_configurations:
            static[domain.domain_name] = record(
                domain.domain_name, domain.domain_name, domain.security_policy, "CUSTOMER_MANAGED"
            )
        return static

    def _refuse_static_domain(self, name: str, verb: str) -> None:
        if name in self._static_domains():
            raise _invalid(
                f"Domain configuration {name} comes from {self._config.source} "
                f"(the endpoint or domain_configurations) and cannot be {verb} through the API; "
                "edit the configuration file"
            )

    def _check_domain_free(self, name: str, domain_name: str) -> None:
        for static in self._static_domains().values():
            if name == static.name or domain_name.lower() == static.domain_name.lower():
                raise AwsApiError(
                    "ResourceAlreadyExistsException",
                    f"{name} / {domain_name} is already served as the endpoint or a domain of "
                    f"{self._config.source}",
                )

    # --- tags -----------------------------------------------------------------------------

    def _tag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.tag_resource(_str(request, "resourceArn"), _tags(request, required=True))
        return {}

    def _untag_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        self._registry.untag_resource(
            _str(request, "resourceArn"), _str_list(request, "tagKeys", required=True)
        )
        return {}

    def _list_tags_for_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        tags = self._registry.list_tags_for_resource(_str(request, "resourceArn"))
        listed = [{"Key": key, "Value": value} for key, value in tags.items()]
        return _token_page(request, listed, "tags", _same, size=False)

    def _arn(self, resource: str) -> str:
        return f"arn:aws:iot:{self._config.region}:{self._config.account_id}:{resource}"


IMPLEMENTED_OPERATIONS: Final = (
    "CreateKeysAndCertificate",
    "CreateCertificateFromCsr",
    "RegisterCertificate",
    "RegisterCertificateWithoutCA",
    "DescribeCertificate",
    "ListCertificates",
    "ListCertificatesByCA",
    "UpdateCertificate",
    "DeleteCertificate",
    "RegisterCACertificate",
    "DescribeCACertificate",
    "ListCACertificates",
    "UpdateCACertificate",
    "DeleteCACertificate",
    "CreateThing",
    "DescribeThing",
    "ListThings",
    "UpdateThing",
    "DeleteThing",
    "CreateThingType",
    "DescribeThingType",
    "ListThingTypes",
    "DeprecateThingType",
    "DeleteThingType",
    "AttachThingPrincipal",
    "DetachThingPrincipal",
    "ListThingPrincipals",
    "ListPrincipalThings",
    "CreateThingGroup",
    "DescribeThingGroup",
    "ListThingGroups",
    "UpdateThingGroup",
    "DeleteThingGroup",
    "AddThingToThingGroup",
    "RemoveThingFromThingGroup",
    "ListThingsInThingGroup",
    "ListThingGroupsForThing",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "SetDefaultPolicyVersion",
    "DeletePolicyVersion",
    "AttachPolicy",
    "DetachPolicy",
    "ListAttachedPolicies",
    "ListTargetsForPolicy",
    "AttachPrincipalPolicy",
    "DetachPrincipalPolicy",
    "ListPrincipalPolicies",
    "ListPolicyPrincipals",
    "GetEffectivePolicies",
    "TestAuthorization",
    "DescribeEndpoint",
    "CreateDomainConfiguration",
    "DescribeDomainConfiguration",
    "ListDomainConfigurations",
    "UpdateDomainConfiguration",
    "DeleteDomainConfiguration",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)


def _method_name(operation: str) -> str:
    """``CreateThing`` -> ``_create_thing`` (``...CA...`` -> ``_c_a_``, as written above)."""
    return "_" + re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


# --- request members -----------------------------------------------------------------------


def _invalid(message: str) -> AwsApiError:
    return AwsApiError("InvalidRequestException", message)


def _str(request: Mapping[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(f"{name} is required (a non-empty string)")
    return value


def _opt_str(request: Mapping[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string")
    return value


def _bool(request: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = request.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false")
    return value


def _opt_int(request: Mapping[str, Any], name: str) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{name} must be an integer")
    return value


def _struct(request: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = request.get(name, {})
    if not isinstance(value, dict):
        raise _invalid(f"{name} must be a structure")
    return value


def _str_list(request: Mapping[str, Any], name: str, *, required: bool = False) -> list[str]:
    value = request.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"{name} must be a list of strings")
    return value


def _tags(request: Mapping[str, Any], *, required: bool = False) -> dict[str, str]:
    """``tags: [{Key, Value}]`` as a mapping (a repeated key keeps its last value)."""
    value = request.get("tags")
    if value is None and not required:
        return {}
    if not isinstance(value, list) or (required and not value):
        raise _invalid("tags must be a list of {Key, Value}")
    tags: dict[str, str] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("Key"), str):
            raise _invalid("each tag must be {Key, Value}")
        tags[item["Key"]] = item.get("Value", "")
    return tags


def _unsupported(request: Mapping[str, Any], name: str, what: str) -> None:
    if request.get(name) is not None:
        raise _invalid(f"{name}: {what} are not emulated by aws-iot-mock")


def _active(set_as_active: bool) -> CertificateStatus:
    # AWS: "setAsActive ... Specifies whether the certificate is active"; without it a new
    # certificate is INACTIVE.
    return CertificateStatus.ACTIVE if set_as_active else CertificateStatus.INACTIVE


def _status(
    request: Mapping[str, Any], name: str, *, default: CertificateStatus | None = None
) -> CertificateStatus:
    value = request.get(name)
    if value is None and default is not None:
        return default
    try:
        return CertificateStatus(str(value))
    except ValueError:
        raise _invalid(
            f"{name} {value!r} is not one of {', '.join(s.value for s in CertificateStatus)}"
        ) from None


def _attribute_payload(payload: object) -> tuple[dict[str, str], bool]:
    """``attributePayload`` -> (attributes, merge)."""
    if payload is None:
        return {}, False
    if not isinstance(payload, dict):
        raise _invalid("attributePayload must be {attributes, merge}")
    attributes = payload.get("attributes", {})
    merge = payload.get("merge", False)
    if not isinstance(attributes, dict) or not isinstance(merge, bool):
        raise _invalid("attributePayload must be {attributes: {name: value}, merge: boolean}")
    return attributes, merge


def _by_name_or_arn(
    request: Mapping[str, Any], name_member: str, arn_member: str, pattern: re.Pattern[str]
) -> str:
    name = _opt_str(request, name_member)
    if name is not None:
        return name
    arn = _opt_str(request, arn_member)
    match = pattern.fullmatch(arn) if arn is not None else None
    if match is None:
        raise _invalid(f"give {name_member} or a valid {arn_member}")
    return match.group(1)


def _check_security_policy(policy: object) -> None:
    if policy not in SECURITY_POLICIES:
        raise _invalid(
            f"tlsConfig.securityPolicy {policy!r} is not one of AWS's policies: "
            f"{', '.join(SECURITY_POLICIES)}"
        )


def _domain_settings(request: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a domain configuration stored and echoed as sent."""
    settings: dict[str, Any] = {}
    for member in ("authorizerConfig", "serverCertificateConfig", "clientCertificateConfig"):
        if member in request:
            settings[member] = _struct(request, member)
    for member in ("authenticationType", "applicationProtocol", "validationCertificateArn"):
        value = _opt_str(request, member)
        if value is not None:
            settings[member] = value
    return settings


# --- responses -----------------------------------------------------------------------------


def _same(item: _T) -> _T:
    return item


def _dates(document: dict[str, Any], *members: str) -> dict[str, Any]:
    """Turn the registry's ISO-8601 timestamps (and ``validity``'s) into ``datetime`` values."""
    for member in members:
        value = document.get(member)
        if isinstance(value, str):
            document[member] = from_iso(value)
        elif isinstance(value, dict):
            document[member] = {
                key: from_iso(item) if isinstance(item, str) else item
                for key, item in value.items()
            }
    return document


def _certificate_description(record: CertificateRecord) -> dict[str, Any]:
    return _dates(record.to_description(), "creationDate", "lastModifiedDate", "validity")


def _cert_summary(record: Any) -> dict[str, Any]:
    return _dates(record.to_summary(), "creationDate")


def _thing_type_description(description: dict[str, Any]) -> dict[str, Any]:
    metadata = description.get("thingTypeMetadata", {})
    _dates(metadata, "creationDate", "deprecationDate")
    return description


def _ordered(records: list[_T], request: Mapping[str, Any]) -> list[_T]:
    """Newest first (the registry's order) unless ``ascendingOrder``."""
    return list(reversed(records)) if _bool(request, "ascendingOrder") else records


def _marker_page(
    request: Mapping[str, Any],
    items: Sequence[_T],
    key: str,
    render: Callable[[_T], Any],
) -> dict[str, Any]:
    """A ``pageSize`` / ``marker`` / ``nextMarker`` page (ListCertificates and friends)."""
    chunk, marker = page(
        items, _opt_int(request, "pageSize"), _opt_str(request, "marker"), name="pageSize"
    )
    result: dict[str, Any] = {key: [render(item) for item in chunk]}
    if marker is not None:
        result["nextMarker"] = marker
    return result


def _token_page(
    request: Mapping[str, Any],
    items: Sequence[_T],
    key: str,
    render: Callable[[_T], Any],
    *,
    size: bool = True,
) -> dict[str, Any]:
    """A ``maxResults`` / ``nextToken`` page (ListThings and friends)."""
    chunk, token = page(
        items,
        _opt_int(request, "maxResults") if size else None,
        _opt_str(request, "nextToken"),
    )
    result: dict[str, Any] = {key: [render(item) for item in chunk]}
    if token is not None:
        result["nextToken"] = token
    return result


def _matched_policies(decisions: Sequence[Decision]) -> list[str]:
    """The names of the policies whose statements decided, in first-match order, once each."""
    names: list[str] = []
    for decision in decisions:
        for policy_name, _, _ in decision.matched:
            if policy_name not in names:
                names.append(policy_name)
    return names


def _api_error(exc: BrokerError) -> AwsApiError:
    """The AWS error for a registry error (its ``aws_code``, or InvalidRequestException)."""
    code = aws_error_code(exc) or "InvalidRequestException"
    return AwsApiError(code, str(exc).removeprefix(f"{code}: "))
