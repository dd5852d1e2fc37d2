"""Pure parts of the control plane: request routing, SigV4 decisions, served domain names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from aws_iot_mock.api.control_endpoint import IOT_ROUTER
from aws_iot_mock.api.control_plane_auth import ControlPlaneAuthenticator, ControlPlaneCaller
from aws_iot_mock.auth.credentials import IamIdentity, SigningCredential
from aws_iot_mock.auth.sigv4 import Refused, SigV4Reason
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.config import Config, DomainConfiguration
from aws_iot_mock.http.messages import HttpRequest
from aws_iot_mock.logs.cloudwatch import Reason
from aws_iot_mock.registry.domain_configurations import DomainConfigurationRecord
from aws_iot_mock.server.domains import served_domains
from aws_iot_mock.tls.verdicts import check_sni

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
KEY = SigningCredential(
    "AKIAKNOWNKNOWNKNOWN1",
    "s" * 40,
    IamIdentity(
        "123456789012", "alice", "AIDAALICEALICEALICE1", "arn:aws:iam::123456789012:user/alice"
    ),
)


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "operation", "members"),
    [
        ("GET", "/things/lamp", "DescribeThing", {"thingName": "lamp"}),
        (
            "GET",
            "/things?maxResults=2&nextToken=x",
            "ListThings",
            {"maxResults": 2, "nextToken": "x"},
        ),
        ("PUT", "/thing-groups/addThingToThingGroup", "AddThingToThingGroup", {}),
        (
            "GET",
            "/domainConfigurations/iot%3AData-ATS",
            "DescribeDomainConfiguration",
            {"domainConfigurationName": "iot:Data-ATS"},
        ),
        ("GET", "/cacertificate/abc", "DescribeCACertificate", {"certificateId": "abc"}),
        (
            "GET",
            "/certificates?isAscendingOrder=true",
            "ListCertificates",
            {"ascendingOrder": True},
        ),
    ],
)
def test_requests_map_to_operations_and_members(
    method: str, target: str, operation: str, members: dict[str, object]
) -> None:
    request = HttpRequest(method, target)
    route, labels = IOT_ROUTER.match(request)
    assert route.name == operation
    assert IOT_ROUTER.bind(route, labels, request) == members


@pytest.mark.parametrize(
    ("request_", "code", "status"),
    [
        (HttpRequest("GET", "/no/such/path"), "UnknownOperationException", 404),
        (HttpRequest("PATCH", "/things"), "MethodNotAllowedException", 405),
        (HttpRequest("GET", "/things?maxResults=two"), "InvalidRequestException", 400),
        (HttpRequest("GET", "/certificates?isAscendingOrder=yes"), "InvalidRequestException", 400),
        (HttpRequest("POST", "/things/x", body=b"[1]"), "InvalidRequestException", 400),
        (HttpRequest("POST", "/things/x", body=b"{nope"), "InvalidRequestException", 400),
    ],
)
def test_bad_requests_get_aws_errors(request_: HttpRequest, code: str, status: int) -> None:
    with pytest.raises(AwsApiError) as info:
        route, labels = IOT_ROUTER.match(request_)
        IOT_ROUTER.bind(route, labels, request_)
    assert (info.value.code, info.value.status) == (code, status)


def test_header_members_are_bound() -> None:
    request = HttpRequest(
        "GET", "/principals/things", headers=(("x-amzn-principal", "arn:aws:iot:r:1:cert/x"),)
    )
    route, labels = IOT_ROUTER.match(request)
    assert IOT_ROUTER.bind(route, labels, request) == {"principal": "arn:aws:iot:r:1:cert/x"}


# --- SigV4 decisions ------------------------------------------------------------------------


def signed(access_key: str, secret: str, *, service: str = "iot") -> HttpRequest:
    """A request signed by botocore's own SigV4 signer, now."""
    aws = AWSRequest(method="GET", url="https://localhost:9443/things", headers={})
    signer = SigV4Auth(Credentials(access_key, secret), service, "us-east-1")
    signer.add_auth(aws)
    headers = tuple((name.lower(), str(value)) for name, value in aws.headers.items())
    return HttpRequest("GET", "/things", headers=(*headers, ("host", "localhost:9443")))


def authenticator(*, strict: bool) -> ControlPlaneAuthenticator:
    return ControlPlaneAuthenticator(
        credentials=lambda key: KEY if key == KEY.access_key_id else None,
        strict=strict,
        region="us-east-1",
        clock=lambda: datetime.now(UTC),
    )


def test_an_unknown_key_is_accepted_unless_strict() -> None:
    request = signed("AKIADUMMYDUMMYDUMMY1", "anything")
    caller = authenticator(strict=False).authenticate(request)
    assert caller == ControlPlaneCaller(
        "AKIADUMMYDUMMYDUMMY1", "AKIADUMMYDUMMYDUMMY1", False, "us-east-1"
    )
    refused = authenticator(strict=True).authenticate(request)
    assert isinstance(refused, Refused)
    assert refused.reason is SigV4Reason.SIGV4_UNKNOWN_ACCESS_KEY
    assert refused.code == "UnrecognizedClientException"


def test_a_known_key_is_verified_either_way() -> None:
    for strict in (False, True):
        caller = authenticator(strict=strict).authenticate(signed(KEY.access_key_id, "s" * 40))
        assert isinstance(caller, ControlPlaneCaller) and caller.verified
        assert caller.principal_id == "AIDAALICEALICEALICE1"  # the IAM unique ID, as AWS logs it
        wrong = authenticator(strict=strict).authenticate(signed(KEY.access_key_id, "w" * 40))
        assert isinstance(wrong, Refused)
        assert wrong.reason is SigV4Reason.SIGV4_SIGNATURE_MISMATCH


def test_unsigned_and_wrongly_scoped_requests_are_refused_even_when_lenient() -> None:
    unsigned = authenticator(strict=False).authenticate(HttpRequest("GET", "/things"))
    assert isinstance(unsigned, Refused)
    assert unsigned.code == "MissingAuthenticationTokenException"
    other_service = authenticator(strict=False).authenticate(
        signed("AKIADUMMYDUMMYDUMMY1", "x", service="s3")
    )
    assert isinstance(other_service, Refused)
    assert other_service.reason is SigV4Reason.SIGV4_INVALID_CREDENTIAL_SCOPE


# --- served domains -------------------------------------------------------------------------


def record(name: str, domain: str, status: str, policy: str) -> DomainConfigurationRecord:
    return DomainConfigurationRecord(
        name=name,
        domain_name=domain,
        status=status,
        service_type="DATA",
        security_policy=policy,
        settings={"arn": f"arn:aws:iot:us-east-1:123456789012:domainconfiguration/{name}/x"},
        creation_date=NOW,
        last_status_change_date=NOW,
    )


def test_served_domains_merge_the_config_and_the_registry() -> None:
    config = Config(
        endpoint="ep.example.com",
        domain_configurations=(
            DomainConfiguration("cfg.example.com", "IoTSecurityPolicy_TLS12_1_0_2016_01"),
        ),
    )
    served = served_domains(
        config,
        [
            record("on", "On.example.com", "ENABLED", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
            record("off", "off.example.com", "DISABLED", "IoTSecurityPolicy_TLS13_1_3_2022_10"),
        ],
    )
    assert served.accepted == {"ep.example.com", "cfg.example.com", "on.example.com"}
    assert served.disabled == {"off.example.com": "off"}
    assert served.policy_for("ON.example.com") == "IoTSecurityPolicy_TLS13_1_3_2022_10"
    assert served.policy_for("cfg.example.com") == "IoTSecurityPolicy_TLS12_1_0_2016_01"
    assert served.policy_for(None) == config.tls.security_policy
    assert {"On.example.com", "off.example.com", "localhost"} <= set(served.server_names)


def test_sni_of_a_disabled_domain_is_refused_with_its_reason() -> None:
    accepted = frozenset({"ep.example.com", "on.example.com"})
    disabled = {"off.example.com": "off"}
    refusal = check_sni("OFF.example.com", accepted, require_sni=True, disabled=disabled)
    assert refusal is not None and refusal.reason is Reason.DOMAIN_CONFIGURATION_DISABLED
    assert "'off'" in refusal.details
    assert check_sni("on.example.com", accepted, require_sni=True, disabled=disabled) is None
    unknown = check_sni("nope.example.com", accepted, require_sni=True, disabled=disabled)
    assert unknown is not None and unknown.reason is Reason.SNI_MISMATCH
