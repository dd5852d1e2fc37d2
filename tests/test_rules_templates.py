"""Substitution templates (iot-substitution-templates.html and the action pages' examples)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from aws_iot_mock.rules.sql import EvaluationContext, SqlNotEmulatedError, parse
from aws_iot_mock.rules.templates import TemplateError, parse_template

V2 = "2016-03-23"
CONTEXT = EvaluationContext(timestamp_ms=1460685389000, client_id="c1", new_uuid=lambda: "u-1")
DEVICE = json.dumps(
    {
        "deviceid": "iot123",
        "temp": 54.98,
        "humidity": 32.43,
        "coords": {"latitude": 47.615694, "longitude": -122.3359976},
    }
).encode()


@pytest.mark.parametrize(
    ("template", "topic", "expected"),
    [
        # iot-substitution-templates.html
        ("${topic()}/republish", "my/iot/topic", "my/iot/topic/republish"),
        # s3-rule-action.html: "${topic()}/${timestamp()}"
        ("${topic()}/${timestamp()}", "some/topic", "some/topic/1460685389000"),
        # iot-sql-functions.html, parse_time "can also be used as a substitution template"
        ("${parse_time('yyyy', timestamp(), 'UTC')}", "A/B", "2016"),
        # rule-error-handling.html
        (
            "${replace(topic(), '/', '-') + '-' + timestamp() + '-' + newuuid()}",
            "error/action",
            "error-action-1460685389000-u-1",
        ),
        # kinesis-rule-action.html: partition keys such as ${topic()} or ${timestamp()}
        ("${timestamp()}", "t", "1460685389000"),
        # original payload attributes, nested paths, numbers and objects as JSON text
        ("device/${deviceid}/${coords.latitude}", "t", "device/iot123/47.615694"),
        ("${coords}", "t", '{"latitude":47.615694,"longitude":-122.3359976}'),
        ("${missing}|${clientid()}", "t", "|c1"),
        ("no template", "t", "no template"),
        ("${ {'a': '}'}.a }", "t", "}"),
        ("$${topic()}", "$t", "$$t"),
    ],
)
def test_documented_templates(template: str, topic: str, expected: str) -> None:
    assert parse_template(template, V2).render(DEVICE, topic, CONTEXT) == expected


def test_templates_read_the_original_message_not_the_select_result() -> None:
    # "you cannot reference an alias created using the AS clause. You can reference only
    # information present in the original payload, functions, and operators."
    statement = parse("SELECT temp AS t FROM 'a/b'", V2)
    result = statement.evaluate(DEVICE, "a/b", CONTEXT)
    assert result is not None
    assert result.value == {"t": Decimal("54.98")}
    assert parse_template("${temp}|${t}", V2).render(DEVICE, "a/b", CONTEXT) == "54.98|"


def test_set_variables_reach_templates() -> None:
    # iot-sql-set.html: variables can be used in "Action substitution templates".
    statement = parse("SET @id = upper(deviceid) SELECT temp FROM 'a/b'", V2)
    result = statement.evaluate(DEVICE, "a/b", CONTEXT)
    assert result is not None
    rendered = parse_template("devices/${@id}", V2).render(
        DEVICE, "a/b", CONTEXT, variables=result.variables
    )
    assert rendered == "devices/IOT123"


def test_binary_payload_templates_render_empty_fields() -> None:
    # binary-payloads.html shows "device/${device_id}" with a binary payload; its fields are
    # Undefined, which renders as the empty string.
    assert parse_template("device/${device_id}", V2).render(b"\x00\xff", "t", CONTEXT) == "device/"


def test_static_templates() -> None:
    template = parse_template("arn:aws:sqs:us-east-1:123456789012:queue", V2)
    assert template.is_static
    assert not parse_template("${topic()}", V2).is_static


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        ("prefix/${topic()", "prefix/${topic()}"),
        ("${1 +}", "${1 + 1}"),
        ("${}", "${''}"),
        ("${nope()}", "${upper('a')}"),
    ],
)
def test_template_refusals(bad: str, good: str) -> None:
    parse_template(good, V2)
    with pytest.raises(TemplateError, match="Invalid substitution template"):
        parse_template(bad, V2)


def test_template_external_functions_need_a_provider() -> None:
    # rule-error-handling.html shows get_secret in an http header template.
    text = "${get_secret('API_KEY', 'SecretString', 'API_KEY_VALUE', 'arn:aws:iam::1:role/r')}"
    with pytest.raises(SqlNotEmulatedError):
        parse_template(text, V2)
    template = parse_template(text, V2, allow_external=frozenset({"get_secret"}))
    context = EvaluationContext(external=lambda name, args: name + ":" + str(args[2]))
    assert template.render(b"{}", "t", context) == "get_secret:API_KEY_VALUE"
