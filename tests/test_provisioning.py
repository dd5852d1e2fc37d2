"""Fleet provisioning by claim, pure: template engine, device payloads, tokens, templates, policy.

Sources cited per case:

- [TPL] https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html
- [API] https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
- [CLAIM] https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html
- [JITP] https://docs.aws.amazon.com/iot/latest/developerguide/jit-provisioning.html
- [CFN] https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
- [REF] the API reference of each control-plane verb, and botocore's ``iot`` model.

Replies are read back with the AWS IoT Device SDK v2's ``awsiot.iotidentity`` models.
"""

from __future__ import annotations

import json
from typing import Any

import cbor2
import pytest
from awsiot import iotidentity

from aws_iot_mock.authz.iot_policy_evaluation import (
    NamedPolicy,
    RequestContext,
    evaluate,
    parse_policy_document,
    resource_arn,
)
from aws_iot_mock.aws.api_errors import AwsApiError
from aws_iot_mock.aws.provisioning import device, templates
from aws_iot_mock.aws.provisioning.claim_policy import (
    claim_certificate_policy,
    claim_certificate_policy_json,
)
from aws_iot_mock.aws.provisioning.engine import (
    EngineOptions,
    ProvisioningPlan,
    TemplateError,
    parse_template,
)
from aws_iot_mock.aws.provisioning.engine import (
    evaluate as evaluate_template,
)
from tests._aws_models import assert_shape

REGION = "us-east-1"
ACCOUNT = "123456789012"
CERT_ID = "a" * 64
ROLE = "arn:aws:iam::123456789012:role/provisioning"
KEY = b"k" * 32
NOW = 1_700_000_000.0

# The fleet provisioning example of [TPL], verbatim in substance.
FLEET_EXAMPLE: dict[str, Any] = {
    "Parameters": {
        "ThingName": {"Type": "String"},
        "SerialNumber": {"Type": "String"},
        "DeviceLocation": {"Type": "String"},
    },
    "Mappings": {"LocationTable": {"Seattle": {"LocationUrl": "https://example.aws"}}},
    "Resources": {
        "thing": {
            "Type": "AWS::IoT::Thing",
            "Properties": {
                "AttributePayload": {"version": "v1", "serialNumber": "serialNumber"},
                "ThingName": {"Ref": "ThingName"},
                "ThingTypeName": {"Fn::Join": ["", ["ThingPrefix_", {"Ref": "SerialNumber"}]]},
                "ThingGroups": ["v1-lightbulbs", "WA"],
                "BillingGroup": "LightBulbBillingGroup",
            },
            "OverrideSettings": {
                "AttributePayload": "MERGE",
                "ThingTypeName": "REPLACE",
                "ThingGroups": "DO_NOTHING",
            },
        },
        "certificate": {
            "Type": "AWS::IoT::Certificate",
            "Properties": {
                "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"},
                "Status": "Active",
            },
        },
        "policy": {
            "Type": "AWS::IoT::Policy",
            "Properties": {
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["iot:Publish"],
                            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/foo/bar"],
                        }
                    ],
                }
            },
        },
    },
    "DeviceConfiguration": {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": {
            "Fn::FindInMap": ["LocationTable", {"Ref": "DeviceLocation"}, "LocationUrl"]
        },
    },
}


def run(
    body: dict[str, Any],
    parameters: dict[str, str] | None = None,
    options: EngineOptions | None = None,
    subject: dict[str, str] | None = None,
) -> ProvisioningPlan:
    template = parse_template(json.dumps(body), options=options)
    return evaluate_template(
        template,
        parameters or {},
        certificate_id=CERT_ID,
        certificate_subject=subject,
        region=REGION,
        account_id=ACCOUNT,
        options=options,
    )


def with_resources(**properties: Any) -> dict[str, Any]:
    """A template with one thing whose properties are given, and the certificate."""
    return {
        "Parameters": {"P": {"Type": "String", "Default": "a,b,c"}},
        "Resources": {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "t", **properties}},
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}},
            },
        },
    }


# -- the template engine ---------------------------------------------------------------------------


def test_the_fleet_provisioning_example_of_the_templates_page() -> None:
    plan = run(
        FLEET_EXAMPLE, {"ThingName": "bulb1", "SerialNumber": "123", "DeviceLocation": "Seattle"}
    )
    assert plan.thing is not None
    assert plan.thing.thing_name == "bulb1"
    assert plan.thing.thing_type_name == "ThingPrefix_123"
    assert plan.thing.attributes == {"version": "v1", "serialNumber": "serialNumber"}
    assert plan.thing.thing_groups == ("v1-lightbulbs", "WA")
    assert plan.thing.billing_group == "LightBulbBillingGroup"
    assert plan.thing.overrides == {
        "AttributePayload": "MERGE",
        "ThingTypeName": "REPLACE",
        "ThingGroups": "DO_NOTHING",
    }
    # "Status": "Active" in the example; ACTIVE in the text.
    assert plan.certificate is not None and plan.certificate.status == "ACTIVE"
    assert plan.certificate.certificate_id == CERT_ID
    (policy,) = plan.policies
    assert policy.policy_document is not None
    assert json.loads(policy.policy_document)["Statement"][0]["Action"] == ["iot:Publish"]
    assert len(policy.policy_name) == 64  # "Defaults to a hash of the policy document"
    assert plan.device_configuration == {
        "FallbackUrl": "https://www.example.com/test-site",
        "LocationUrl": "https://example.aws",
    }


# (property value, expected ThingName) — intrinsic functions [TPL; CFN].
FUNCTIONS = [
    ({"Fn::Join": ["-", ["a", {"Ref": "P"}]]}, "a-a,b,c"),
    ({"Fn::Join": ["", ["x", "y"]]}, "xy"),  # "If a delimiter is an empty string ..."
    ({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "P"}]}]}, "b"),
    ({"Fn::Select": ["2", ["p", "q", "r"]]}, "r"),
    ({"Fn::Sub": "dev-${P}"}, "dev-a,b,c"),
    ({"Fn::Sub": "${AWS::IoT::Certificate::Id}"}, CERT_ID),
    ({"Fn::Sub": ["${x}-${y}", {"x": "1", "y": {"Ref": "P"}}]}, "1-a,b,c"),
    ({"Fn::Sub": "${!Literal}"}, "${Literal}"),
    ({"Fn::Base64": "hi"}, "aGk="),
    ({"Fn::If": ["IsProd", "prod", "test"]}, "test"),
    ({"Fn::If": ["NotProd", "yes", "no"]}, "yes"),
    ({"Fn::If": ["Both", "yes", "no"]}, "no"),
    ({"Fn::If": ["Either", "yes", "no"]}, "yes"),
    ({"Fn::GetAtt": ["certificate", "CertificateId"]}, CERT_ID),
    ({"Fn::Sub": "${certificate.CertificateId}"}, CERT_ID),
    ({"Ref": "AWS::IoT::Certificate::CommonName"}, "device-7"),
]


@pytest.mark.parametrize(("expression", "expected"), FUNCTIONS)
def test_intrinsic_functions(expression: Any, expected: str) -> None:
    body = with_resources()
    body["Conditions"] = {
        "IsProd": {"Fn::Equals": [{"Ref": "P"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]},
    }
    body["Resources"]["thing"]["Properties"]["AttributePayload"] = {"v": expression}
    plan = run(body, subject={"CommonName": "device-7"})
    assert plan.thing is not None and plan.thing.attributes == {"v": expected}


def test_get_att_arn_and_ref_to_a_resource() -> None:
    body = with_resources(AttributePayload={"arn": {"Fn::GetAtt": ["thing", "Arn"]}})
    body["DeviceConfiguration"] = {"thing": {"Ref": "thing"}}
    plan = run(body)
    assert plan.thing is not None
    assert plan.thing.attributes == {"arn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/t"}
    assert plan.device_configuration == {"thing": "t"}


def test_conditions_drop_resources_and_no_value_drops_properties() -> None:
    # CloudFormation: a resource with a false Condition is not created; AWS::NoValue removes a
    # property [CFN].
    body = with_resources(
        ThingTypeName={"Fn::If": ["Typed", "sensor", {"Ref": "AWS::NoValue"}]},
    )
    body["Parameters"]["Kind"] = {"Type": "String", "Default": "none"}
    body["Conditions"] = {"Typed": {"Fn::Equals": [{"Ref": "Kind"}, "sensor"]}}
    body["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Condition": "Typed",
        "Properties": {"PolicyName": "SensorPolicy"},
    }
    plain = run(body)
    assert plain.thing is not None and plain.thing.thing_type_name is None
    assert plain.policies == ()
    typed = run(body, {"Kind": "sensor"})
    assert typed.thing is not None and typed.thing.thing_type_name == "sensor"
    assert [p.policy_name for p in typed.policies] == ["SensorPolicy"]


def test_parameters_defaults_and_constraints() -> None:
    # "The default value is used when the dictionary passed in with the template does not contain
    # a value for the parameter." [TPL]
    body = with_resources(AttributePayload={"loc": {"Ref": "Location"}, "n": {"Ref": "N"}})
    body["Parameters"].update(
        {
            "Location": {"Type": "String", "Default": "WA", "AllowedValues": ["WA", "OR"]},
            "N": {"Type": "Number", "Default": "5", "MinValue": 1, "MaxValue": 9},
        }
    )
    plan = run(body)
    assert plan.thing is not None and plan.thing.attributes == {"loc": "WA", "n": "5"}
    plan = run(body, {"Location": "OR", "N": "9"})
    assert plan.thing is not None and plan.thing.attributes == {"loc": "OR", "n": "9"}
    for bad, fragment in (
        ({"Location": "CA"}, "AllowedValues"),
        ({"N": "x"}, "must be a number"),
        ({"N": "10"}, "allowed range"),
    ):
        with pytest.raises(TemplateError, match=fragment):
            run(body, bad)


def test_comma_delimited_list_parameters() -> None:
    body = with_resources(ThingGroups={"Ref": "Groups"})
    body["Parameters"]["Groups"] = {"Type": "CommaDelimitedList"}
    plan = run(body, {"Groups": "a, b"})
    assert plan.thing is not None and plan.thing.thing_groups == ("a", "b")


TEMPLATE_REFUSALS = [
    # (template body or text, fragment) — each refused at CreateProvisioningTemplate.
    ("not json", "not valid JSON"),
    ([], "JSON object"),
    ({"Outputs": {}}, "Unknown template section"),
    ({"Resources": {"x": {"Type": "AWS::S3::Bucket"}}}, "Type must be one of"),
    ({"Resources": {"x": {"Type": "AWS::IoT::Thing", "Properties": []}}}, "must be an object"),
    (
        {
            "Resources": {
                "a": {"Type": "AWS::IoT::Thing"},
                "b": {"Type": "AWS::IoT::Thing"},
            }
        },
        "at most one AWS::IoT::Thing",
    ),
    ({"Parameters": {"P": {"Type": "AWS::EC2::KeyPair"}}}, "unsupported Type"),
    ({"Mappings": {"M": {"k": "flat"}}}, "two-level map"),
    ({"Mappings": {"M": {"k": {"v": {"Ref": "P"}}}}}, "cannot be used in Mappings"),
    ({"DeviceConfiguration": {"x": {"Fn::Transform": {}}}}, "unsupported intrinsic function"),
]


@pytest.mark.parametrize(("body", "fragment"), TEMPLATE_REFUSALS)
def test_template_refusals(body: Any, fragment: str) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    with pytest.raises(TemplateError, match=fragment):
        parse_template(text)


def test_extensions_can_be_refused() -> None:
    # Conditions, Fn::If ... are not in [TPL]'s list; EngineOptions turns them off.
    strict = EngineOptions(cloudformation_extensions=False)
    body = with_resources(AttributePayload={"x": {"Fn::Base64": "a"}})
    with pytest.raises(TemplateError, match="unsupported intrinsic function Fn::Base64"):
        parse_template(json.dumps(body), options=strict)
    with pytest.raises(TemplateError, match="Conditions section is not supported"):
        parse_template(json.dumps({"Conditions": {}}), options=strict)
    documented = with_resources(AttributePayload={"x": {"Fn::Sub": "${P}"}})
    assert run(documented, options=strict).thing is not None


EVALUATION_REFUSALS: list[tuple[dict[str, Any], dict[str, str], str]] = [
    # (thing properties / template change, parameters, fragment)
    ({"ThingName": {"Ref": "Missing"}}, {}, "not a parameter"),
    ({"ThingName": "bad name"}, {}, "ThingName"),
    ({"AttributePayload": {"x": {"Fn::Select": [5, ["a"]]}}}, {}, "out of bounds"),
    ({"AttributePayload": {"x": {"Fn::Select": [0, [None]]}}}, {}, "null"),
    ({"AttributePayload": {"x": {"Fn::FindInMap": ["M", "a", "b"]}}}, {}, "no value"),
    ({"AttributePayload": {"x": {"Fn::If": ["Nope", "a", "b"]}}}, {}, "not defined"),
    ({"AttributePayload": {"x": {"Fn::GetAtt": ["thing", "Color"]}}}, {}, "no attribute"),
    ({"AttributePayload": {"x": {"Fn::Join": ["-", "ab"]}}}, {}, "takes [delimiter"),
    ({"AttributePayload": {"x": {"Fn::And": [True]}}}, {}, "2 to 10"),
    ({"ThingGroups": "g"}, {}, "list of group names"),
    ({"AttributePayload": {"x": {"y": 1}}}, {}, "map names to strings"),
]


@pytest.mark.parametrize(("properties", "parameters", "fragment"), EVALUATION_REFUSALS)
def test_evaluation_refusals(
    properties: dict[str, Any], parameters: dict[str, str], fragment: str
) -> None:
    body = with_resources(**properties)
    with pytest.raises(TemplateError) as caught:
        run(body, parameters)
    assert fragment in str(caught.value)


def test_missing_required_parameter_and_non_string_parameter() -> None:
    body = with_resources(ThingName={"Ref": "Name"})
    body["Parameters"]["Name"] = {"Type": "String"}
    with pytest.raises(TemplateError, match="Name is required"):
        run(body)
    assert run(body, {"Name": "ok"}).thing is not None
    template = parse_template(json.dumps(body))
    with pytest.raises(TemplateError, match="must be a string value"):
        evaluate_template(
            template, {"Name": 1}, certificate_id=CERT_ID, region=REGION, account_id=ACCOUNT
        )


RESOURCE_REFUSALS = [
    # [TPL] "Certificate resources", "Policy resources", "Override settings".
    ({"certificate": {"CertificateSigningRequest": "x"}}, "only CertificateId"),
    ({"certificate": {"CertificateId": "other"}}, "ownership token"),
    ({"certificate": {"CertificateId": CERT_ID, "Status": "REVOKED"}}, "ACTIVE or INACTIVE"),
    ({"policy": {}}, "not both or neither"),
    ({"policy": {"PolicyName": "p", "PolicyDocument": "{}"}}, "not both or neither"),
    ({"policy": {"PolicyDocument": "{bad"}}, "not valid JSON"),
    ({"policy": {"PolicyName": "bad name!"}}, "valid policy name"),
]


@pytest.mark.parametrize(("resources", "fragment"), RESOURCE_REFUSALS)
def test_resource_refusals(resources: dict[str, dict[str, Any]], fragment: str) -> None:
    body = with_resources()
    for logical, properties in resources.items():
        kind = "AWS::IoT::Certificate" if logical == "certificate" else "AWS::IoT::Policy"
        body["Resources"][logical] = {"Type": kind, "Properties": properties}
    with pytest.raises(TemplateError, match=fragment):
        run(body)


def test_override_settings() -> None:
    # MERGE "Valid only for the ThingGroups and AttributePayload properties"; the upper-case
    # names of [TPL]'s text are aliases; not available for policies; default DO_NOTHING.
    body = with_resources()
    body["Resources"]["thing"]["OverrideSettings"] = {"THING_GROUPS": "MERGE"}
    plan = run(body)
    assert plan.thing is not None and plan.thing.overrides["ThingGroups"] == "MERGE"
    assert plan.thing.overrides["ThingTypeName"] == "DO_NOTHING"
    body["Resources"]["thing"]["OverrideSettings"] = {"ThingTypeName": "MERGE"}
    with pytest.raises(TemplateError, match="MERGE is not valid"):
        run(body)
    body["Resources"]["thing"]["OverrideSettings"] = {"ThingName": "REPLACE"}
    with pytest.raises(TemplateError, match="invalid setting"):
        run(body)
    body = with_resources()
    body["Resources"]["certificate"]["OverrideSettings"] = {"Status": "FAIL"}
    plan = run(body)
    assert plan.certificate is not None and plan.certificate.status_override == "FAIL"
    body["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Properties": {"PolicyName": "p"},
        "OverrideSettings": {"PolicyName": "REPLACE"},
    }
    with pytest.raises(TemplateError, match="not available for policies"):
        run(body)
    assert run(with_resources(), options=EngineOptions(default_override="REPLACE")).thing


def test_device_configuration_is_flat() -> None:
    # "The DeviceConfiguration section doesn't support nested JSON objects." [TPL]
    body = with_resources()
    body["DeviceConfiguration"] = {"a": {"b": "c"}}
    with pytest.raises(TemplateError, match="nested objects"):
        run(body)
    body["DeviceConfiguration"] = {"a": {"Fn::Sub": "${P}"}}
    assert run(body).device_configuration == {"a": "a,b,c"}


def test_policy_document_as_escaped_string_and_policy_name() -> None:
    # "A JSON object specified as an escaped string" (bulk example) or an object (fleet example).
    document = {"Version": "2012-10-17", "Statement": []}
    as_text = with_resources()
    as_text["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Properties": {"PolicyDocument": json.dumps(document)},
    }
    as_object = with_resources()
    as_object["Resources"]["policy"] = {
        "Type": "AWS::IoT::Policy",
        "Properties": {"PolicyDocument": document},
    }
    assert run(as_text).policies == run(as_object).policies
    named = with_resources()
    named["Resources"]["policy"] = {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "P1"}}
    (policy,) = run(named).policies
    assert policy.policy_name == "P1" and policy.policy_document is None


# -- the device side -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("$aws/certificates/create/json", ("create_keys_and_certificate", "json", None)),
        ("$aws/certificates/create/cbor", ("create_keys_and_certificate", "cbor", None)),
        ("$aws/certificates/create-from-csr/json", ("create_certificate_from_csr", "json", None)),
        ("$aws/provisioning-templates/T_1/provision/cbor", ("register_thing", "cbor", "T_1")),
        ("$aws/certificates/create/xml", None),
        ("$aws/certificates/create/json/accepted", None),
        ("$aws/provisioning-templates/bad.name/provision/json", None),
        ("$aws/provisioning-templates/T/provision/json/rejected", None),
    ],
)
def test_topics(topic: str, expected: tuple[str, str, str | None] | None) -> None:
    # [API]: the three request topics and their payload-format level.
    parsed = device.parse_topic(topic)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.operation, parsed.payload_format.value, parsed.template_name) == expected
        assert parsed.reply_topic(topic, accepted=False) == f"{topic}/rejected"


@pytest.mark.parametrize("fmt", list(device.PayloadFormat))
def test_payloads_in_both_formats_read_by_the_sdk(fmt: device.PayloadFormat) -> None:
    # [API] response payloads; the SDK's iotidentity models parse each.
    keys = device.create_keys_and_certificate_accepted(
        certificate_id=CERT_ID, certificate_pem="PEM", private_key="KEY", ownership_token="tok"
    )
    csr = device.create_certificate_from_csr_accepted(
        certificate_id=CERT_ID, certificate_pem="PEM", ownership_token="tok"
    )
    register = device.register_thing_accepted(
        thing_name="bulb1", device_configuration={"Foo": "Bar"}
    )
    error = device.rejected_payload(device.ProvisioningError(400, "InvalidParameters", "bad"))
    decoded = [
        device.decode_payload(device.encode_payload(doc, fmt), fmt)
        for doc in (keys, csr, register, error)
    ]
    assert decoded == [keys, csr, register, error]
    if fmt == device.PayloadFormat.CBOR:
        assert cbor2.loads(device.encode_payload(register, fmt)) == register
    parsed_keys = iotidentity.CreateKeysAndCertificateResponse.from_payload(decoded[0])
    assert parsed_keys.certificate_ownership_token == "tok"
    assert parsed_keys.private_key == "KEY"
    parsed_csr = iotidentity.CreateCertificateFromCsrResponse.from_payload(decoded[1])
    assert parsed_csr.certificate_id == CERT_ID
    parsed_register = iotidentity.RegisterThingResponse.from_payload(decoded[2])
    assert parsed_register.thing_name == "bulb1"
    assert parsed_register.device_configuration == {"Foo": "Bar"}
    parsed_error = iotidentity.V2ErrorResponse.from_payload(decoded[3])
    assert (parsed_error.status_code, parsed_error.error_code) == (400, "InvalidParameters")
    assert iotidentity.ErrorResponse.from_payload(decoded[3]).error_message == "bad"


def test_requests_the_sdk_sends_are_parsed() -> None:
    # The SDK's own request models produce what the parsers accept.
    register = iotidentity.RegisterThingRequest(
        template_name="T", certificate_ownership_token="tok", parameters={"SerialNumber": "1"}
    )
    assert device.parse_register_thing(register.to_payload()) == ("tok", {"SerialNumber": "1"})
    csr = iotidentity.CreateCertificateFromCsrRequest(certificate_signing_request="-----BEGIN")
    assert device.parse_create_certificate_from_csr(csr.to_payload()) == "-----BEGIN"
    assert device.decode_payload(b"", device.PayloadFormat.JSON) == {}


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [
        # Observed from AWS (aws-iot-device-sdk-js-v2#69).
        ({}, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty."),
        (
            {"certificateOwnershipToken": ""},
            "InvalidCertificateOwnershipToken",
            "Certificate ownership token cannot be empty.",
        ),
        (
            {"certificateOwnershipToken": "t", "parameters": {"n": 1}},
            "InvalidParameters",
            "string values",
        ),
    ],
)
def test_register_thing_request_refusals(
    request_body: dict[str, Any], code: str, message: str
) -> None:
    with pytest.raises(device.ProvisioningError) as caught:
        device.parse_register_thing(request_body)
    assert caught.value.status_code == 400
    assert caught.value.error_code == code
    assert message in caught.value.message


def test_undecodable_payloads() -> None:
    for payload, fmt in (
        (b"{", device.PayloadFormat.JSON),
        (b"\xff", device.PayloadFormat.JSON),
        (b"[]", device.PayloadFormat.JSON),
        (b"\xff\xff", device.PayloadFormat.CBOR),
        (cbor2.dumps([1]), device.PayloadFormat.CBOR),
    ):
        with pytest.raises(device.ProvisioningError) as caught:
            device.decode_payload(payload, fmt)
        assert (caught.value.status_code, caught.value.error_code) == (400, "InvalidPayload")
    with pytest.raises(device.ProvisioningError, match="certificateSigningRequest"):
        device.parse_create_certificate_from_csr({"certificateSigningRequest": 5})


def test_ownership_token_lasts_one_hour() -> None:
    # "the certificateOwnershipToken ... expires after one hour" [API].
    token = device.issue_ownership_token(CERT_ID, key=KEY, now=NOW, claim_certificate_id="c")
    claim = device.verify_ownership_token(token, key=KEY, now=NOW + 3599)
    assert claim == device.OwnershipClaim(CERT_ID, NOW + 3600, "c")
    for bad_token, key, at, message in (
        (token, KEY, NOW + 3600, "has expired"),
        (token, b"x" * 32, NOW, "is invalid"),
        (token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], KEY, NOW, "is invalid"),
        ("garbage!", KEY, NOW, "is invalid"),
        ("", KEY, NOW, "cannot be empty"),
    ):
        with pytest.raises(device.ProvisioningError) as caught:
            device.verify_ownership_token(bad_token, key=key, now=at)
        assert caught.value.error_code == "InvalidCertificateOwnershipToken"
        assert message in caught.value.message


# -- the template control plane --------------------------------------------------------------------


def create(
    store: dict[str, templates.ProvisioningTemplate], name: str = "T", **extra: Any
) -> dict[str, Any]:
    request = {
        "templateName": name,
        "templateBody": json.dumps(FLEET_EXAMPLE),
        "provisioningRoleArn": ROLE,
        "enabled": True,
        **extra,
    }
    reply, template = templates.create_provisioning_template(
        store, request, region=REGION, account_id=ACCOUNT, now=NOW
    )
    store[template.template_name] = template
    return reply


def test_template_lifecycle_with_versions() -> None:
    store: dict[str, templates.ProvisioningTemplate] = {}
    reply = create(store, description="fleet")
    assert_shape("iot", "CreateProvisioningTemplate", reply)
    assert reply == {
        "templateArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:provisioningtemplate/T",
        "templateName": "T",
        "defaultVersionId": 1,
    }
    described = templates.describe_provisioning_template(store, "T")
    assert_shape("iot", "DescribeProvisioningTemplate", described)
    assert described["enabled"] is True and described["type"] == "FLEET_PROVISIONING"
    body2 = json.dumps(with_resources())
    reply2, store["T"] = templates.create_provisioning_template_version(
        store, "T", body2, set_as_default=True, now=NOW + 1
    )
    assert_shape("iot", "CreateProvisioningTemplateVersion", reply2)
    assert reply2["versionId"] == 2 and reply2["isDefaultVersion"] is True
    assert templates.describe_provisioning_template(store, "T")["templateBody"] == body2
    versions = templates.list_provisioning_template_versions(store, "T")
    assert_shape("iot", "ListProvisioningTemplateVersions", versions)
    assert [(v["versionId"], v["isDefaultVersion"]) for v in versions["versions"]] == [
        (1, False),
        (2, True),
    ]
    with pytest.raises(AwsApiError) as caught:
        templates.delete_provisioning_template_version(store, "T", 2)
    assert caught.value.code == "DeleteConflictException"
    store["T"] = templates.delete_provisioning_template_version(store, "T", 1)
    version = templates.describe_provisioning_template_version(store, "T", 2)
    assert_shape("iot", "DescribeProvisioningTemplateVersion", version)
    for _ in range(templates.MAX_TEMPLATE_VERSIONS - 1):
        _, store["T"] = templates.create_provisioning_template_version(store, "T", body2, now=NOW)
    with pytest.raises(AwsApiError) as caught:
        templates.create_provisioning_template_version(store, "T", body2, now=NOW)
    assert caught.value.code == "VersionsLimitExceededException"
    listed = templates.list_provisioning_templates(store)
    assert_shape("iot", "ListProvisioningTemplates", listed)
    assert templates.delete_provisioning_template(store, "T") == "T"


TEMPLATE_CONTROL_REFUSALS = [
    ({"templateName": "bad name"}, "InvalidRequestException", "templateName"),
    ({"templateName": "x" * 37}, "InvalidRequestException", "templateName"),
    ({"templateBody": "{"}, "InvalidRequestException", "not valid JSON"),
    ({"templateBody": "x" * 10241}, "InvalidRequestException", "10240"),
    ({"provisioningRoleArn": "short"}, "InvalidRequestException", "provisioningRoleArn"),
    ({"type": "BULK"}, "InvalidRequestException", "type"),
    ({"preProvisioningHook": {}}, "InvalidRequestException", "targetArn"),
    (
        {"type": "JITP", "preProvisioningHook": {"targetArn": "arn:aws:lambda:x"}},
        "InvalidRequestException",
        "only supported by FLEET_PROVISIONING",
    ),
    (
        {"preProvisioningHook": {"targetArn": "arn", "payloadVersion": "v1"}},
        "InvalidRequestException",
        "payloadVersion",
    ),
    ({"description": "x" * 501}, "InvalidRequestException", "description"),
    ({"enabled": "yes"}, "InvalidRequestException", "enabled"),
]


@pytest.mark.parametrize(("override", "code", "fragment"), TEMPLATE_CONTROL_REFUSALS)
def test_template_control_refusals(override: dict[str, Any], code: str, fragment: str) -> None:
    with pytest.raises(AwsApiError) as caught:
        create({}, **override)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_template_control_not_found_and_duplicates() -> None:
    store: dict[str, templates.ProvisioningTemplate] = {}
    create(store)
    with pytest.raises(AwsApiError) as caught:
        create(store)
    assert caught.value.code == "ResourceAlreadyExistsException"
    for call in (
        lambda: templates.describe_provisioning_template(store, "nope"),
        lambda: templates.describe_provisioning_template_version(store, "T", 9),
        lambda: templates.delete_provisioning_template(store, "nope"),
    ):
        with pytest.raises(AwsApiError) as caught:
            call()
        assert caught.value.code == "ResourceNotFoundException"
        assert caught.value.status == 404


def test_register_thing_template_lookup() -> None:
    # RegisterThing refuses unknown, disabled and hooked templates; the hook is not emulated.
    store: dict[str, templates.ProvisioningTemplate] = {}
    create(store)
    parsed = templates.template_for_register_thing(store, "T")
    assert parsed.parameters["ThingName"] == {"Type": "String"}
    store["T"] = templates.update_provisioning_template(store, "T", {"enabled": False}, now=NOW)
    hook = {"targetArn": "arn:aws:lambda:us-east-1:123456789012:function:hook"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({}, 400, "TemplateDisabled"),
        ({"enabled": True, "preProvisioningHook": hook}, 403, "AccessDenied"),
    ]
    for update, status, code in cases:
        store["T"] = templates.update_provisioning_template(store, "T", update, now=NOW)
        with pytest.raises(device.ProvisioningError) as caught:
            templates.template_for_register_thing(store, "T")
        assert (caught.value.status_code, caught.value.error_code) == (status, code)
    assert "does not run pre-provisioning hooks" in str(caught.value)
    store["T"] = templates.update_provisioning_template(
        store, "T", {"removePreProvisioningHook": True}, now=NOW
    )
    assert templates.template_for_register_thing(store, "T").body == FLEET_EXAMPLE
    with pytest.raises(device.ProvisioningError) as caught:
        templates.template_for_register_thing(store, "nope")
    assert (caught.value.status_code, caught.value.error_code) == (404, "ResourceNotFound")


def test_hook_is_stored_and_described() -> None:
    store: dict[str, templates.ProvisioningTemplate] = {}
    hook = {
        "targetArn": "arn:aws:lambda:us-east-1:123456789012:function:h",
        "payloadVersion": "2020-04-01",
    }
    create(store, preProvisioningHook=hook)
    assert templates.describe_provisioning_template(store, "T")["preProvisioningHook"] == hook


# -- the claim certificate policy [CLAIM] ---------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "kind", "name", "include_csr", "allowed"),
    [
        ("iot:Connect", "client", "anything", False, True),
        ("iot:Publish", "topic", "$aws/certificates/create/json", False, True),
        ("iot:Receive", "topic", "$aws/certificates/create/json/accepted", False, True),
        ("iot:Subscribe", "topicfilter", "$aws/certificates/create/json/+", False, True),
        ("iot:Publish", "topic", "$aws/provisioning-templates/T/provision/json", False, True),
        ("iot:Publish", "topic", "$aws/provisioning-templates/Other/provision/json", False, False),
        ("iot:Publish", "topic", "$aws/certificates/create-from-csr/json", False, False),
        ("iot:Publish", "topic", "$aws/certificates/create-from-csr/json", True, True),
        ("iot:Publish", "topic", "$aws/things/t/shadow/update", False, False),
    ],
)
def test_claim_policy_allows_exactly_the_provisioning_topics(
    action: str, kind: str, name: str, include_csr: bool, allowed: bool
) -> None:
    text = claim_certificate_policy_json(REGION, ACCOUNT, "T", include_csr=include_csr)
    assert json.loads(text) == claim_certificate_policy(
        REGION, ACCOUNT, "T", include_csr=include_csr
    )
    policy = NamedPolicy("claim", parse_policy_document(text))
    decision = evaluate(
        [policy],
        action,
        resource_arn(REGION, ACCOUNT, kind, name),
        RequestContext(region=REGION, account_id=ACCOUNT, client_id="c"),
    )
    assert decision.allowed is allowed, decision.details
