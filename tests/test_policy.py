"""AWS IoT policy evaluation, table-driven: (policies, action, resource, context) -> decision.

Expected outcomes follow the AWS IoT developer guide pages cited per table
(https://docs.aws.amazon.com/iot/latest/developerguide/<page>.html). AWS's example policies are
written out in full.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from aws_iot_mock.authz.iot_policy_evaluation import (
    ACTIONS,
    ALLOWED,
    EXPLICIT_DENY,
    NO_MATCHING_STATEMENT,
    NO_POLICY_ATTACHED,
    Decision,
    NamedPolicy,
    PolicyDocument,
    PolicyError,
    RequestContext,
    Statement,
    certificate_context,
    evaluate,
    parse_policy_document,
    resource_arn,
)
from aws_iot_mock.errors import BrokerError

REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:"
V2012 = "2012-10-17"

CTX = RequestContext(REGION, ACCOUNT, client_id="dev1")


def ctx(**changes: Any) -> RequestContext:
    return dataclasses.replace(CTX, **changes)


def client(name: str) -> str:
    return resource_arn(REGION, ACCOUNT, "client", name)


def topic(name: str) -> str:
    return resource_arn(REGION, ACCOUNT, "topic", name)


def tfilter(name: str) -> str:
    return resource_arn(REGION, ACCOUNT, "topicfilter", name)


def stmt(
    effect: str,
    action: str | list[str],
    resource: str | list[str],
    condition: dict[str, Any] | None = None,
    *,
    not_action: bool = False,
    not_resource: bool = False,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "Effect": effect,
        "NotAction" if not_action else "Action": action,
        "NotResource" if not_resource else "Resource": resource,
    }
    if condition is not None:
        result["Condition"] = condition
    return result


def allow(action: str | list[str], resource: str | list[str], condition: Any = None) -> Any:
    return stmt("Allow", action, resource, condition)


def deny(action: str | list[str], resource: str | list[str], condition: Any = None) -> Any:
    return stmt("Deny", action, resource, condition)


def doc(*statements: dict[str, Any], version: str | None = V2012) -> str:
    body: dict[str, Any] = {} if version is None else {"Version": version}
    body["Statement"] = list(statements)
    return json.dumps(body)


def named(*docs: str) -> list[NamedPolicy]:
    return [NamedPolicy(f"P{i}", parse_policy_document(text)) for i, text in enumerate(docs)]


def case(
    case_id: str,
    docs: str | tuple[str, ...],
    action: str,
    resource: str,
    reason: str,
    *,
    context: RequestContext = CTX,
) -> Any:
    texts = (docs,) if isinstance(docs, str) else docs
    return pytest.param(texts, action, resource, context, reason, id=case_id)


def check(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> Decision:
    decision = evaluate(named(*texts), action, resource, context)
    assert (decision.allowed, decision.reason) == (reason == ALLOWED, reason), decision.details
    return decision


OK, NONE, DENY = ALLOWED, NO_MATCHING_STATEMENT, EXPLICIT_DENY

# ---------------------------------------------------------------------------------------------
# Actions and combining policies (iot-policy-actions; iot-policies: IAM conventions).

ALL_ACTIONS = doc(allow("iot:*", "*"))

ACTION_CASES = [
    case("connect", doc(allow("iot:Connect", client("dev1"))), "iot:Connect", client("dev1"), OK),
    case("publish", doc(allow("iot:Publish", topic("a"))), "iot:Publish", topic("a"), OK),
    case(
        "subscribe",
        doc(allow("iot:Subscribe", tfilter("a/#"))),
        "iot:Subscribe",
        tfilter("a/#"),
        OK,
    ),
    case("receive", doc(allow("iot:Receive", topic("a"))), "iot:Receive", topic("a"), OK),
    case(
        "retain-publish",
        doc(allow("iot:RetainPublish", topic("a"))),
        "iot:RetainPublish",
        topic("a"),
        OK,
    ),
    case(
        "publish-grant-is-not-retain-grant",
        doc(allow("iot:Publish", topic("a"))),
        "iot:RetainPublish",
        topic("a"),
        NONE,
    ),
    case("other-action", doc(allow("iot:Publish", "*")), "iot:Subscribe", tfilter("a"), NONE),
    *[case(f"iot-star-{action}", ALL_ACTIONS, action, topic("a"), OK) for action in ACTIONS],
    case("bare-star", doc(allow("*", "*")), "iot:Connect", client("x"), OK),
    case("prefix-star", doc(allow("iot:Pub*", "*")), "iot:Publish", topic("a"), OK),
    case("prefix-star-other", doc(allow("iot:Pub*", "*")), "iot:Subscribe", tfilter("a"), NONE),
    case(
        "suffix-star-retain", doc(allow("iot:*Publish", "*")), "iot:RetainPublish", topic("a"), OK
    ),
    case("question-mark", doc(allow("iot:?eceive", "*")), "iot:Receive", topic("a"), OK),
    case("question-mark-one-char", doc(allow("iot:?ceive", "*")), "iot:Receive", topic("a"), NONE),
    case("action-case-insensitive", doc(allow("IOT:publish", "*")), "iot:Publish", topic("a"), OK),
    case(
        "action-list",
        doc(allow(["iot:Subscribe", "iot:Receive"], "*")),
        "iot:Receive",
        topic("a"),
        OK,
    ),
    case(
        "not-action-applies",
        doc(stmt("Allow", "iot:Connect", "*", not_action=True)),
        "iot:Publish",
        topic("a"),
        OK,
    ),
    case(
        "not-action-excludes",
        doc(stmt("Allow", "iot:Connect", "*", not_action=True)),
        "iot:Connect",
        client("dev1"),
        NONE,
    ),
    case(
        "deny-wins-same-policy",
        doc(allow("iot:*", "*"), deny("iot:Publish", topic("secret"))),
        "iot:Publish",
        topic("secret"),
        DENY,
    ),
    case(
        "deny-wins-across-policies",
        (ALL_ACTIONS, doc(deny("iot:Publish", topic("secret")))),
        "iot:Publish",
        topic("secret"),
        DENY,
    ),
    case(
        "deny-elsewhere-does-not-block",
        (ALL_ACTIONS, doc(deny("iot:Publish", topic("secret")))),
        "iot:Publish",
        topic("public"),
        OK,
    ),
    case(
        "deny-only-is-still-deny",
        doc(deny("iot:Publish", "*")),
        "iot:Publish",
        topic("a"),
        DENY,
    ),
    case(
        "allow-from-second-policy",
        (doc(allow("iot:Connect", "*")), doc(allow("iot:Publish", topic("a")))),
        "iot:Publish",
        topic("a"),
        OK,
    ),
    case("default-deny", doc(allow("iot:Publish", topic("a"))), "iot:Publish", topic("b"), NONE),
    case("no-policy", (), "iot:Connect", client("dev1"), NO_POLICY_ATTACHED),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), ACTION_CASES)
def test_actions(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# ---------------------------------------------------------------------------------------------
# Resources (pub-sub-policy: "*" any characters, "?" one, "+" and "#" literal; IAM: ARNs are
# case-sensitive).

RESOURCE_CASES = [
    case("exact", doc(allow("iot:Publish", topic("a/b"))), "iot:Publish", topic("a/b"), OK),
    case(
        "exact-longer", doc(allow("iot:Publish", topic("a/b"))), "iot:Publish", topic("a/b/c"), NONE
    ),
    case("exact-shorter", doc(allow("iot:Publish", topic("a/b"))), "iot:Publish", topic("a"), NONE),
    case("star-alone", doc(allow("iot:Publish", "*")), "iot:Publish", topic("x/y/z"), OK),
    case(
        "star-crosses-slash",
        doc(allow("iot:Publish", topic("a/*"))),
        "iot:Publish",
        topic("a/b/c/d"),
        OK,
    ),
    case(
        "star-matches-empty",
        doc(allow("iot:Publish", topic("a/*"))),
        "iot:Publish",
        topic("a/"),
        OK,
    ),
    case(
        "star-needs-prefix",
        doc(allow("iot:Publish", topic("a/*"))),
        "iot:Publish",
        topic("a"),
        NONE,
    ),
    case(
        "star-middle",
        doc(allow("iot:Publish", topic("a/*/z"))),
        "iot:Publish",
        topic("a/b/c/z"),
        OK,
    ),
    case(
        "star-middle-miss",
        doc(allow("iot:Publish", topic("a/*/z"))),
        "iot:Publish",
        topic("a/b/c"),
        NONE,
    ),
    case("question-one", doc(allow("iot:Publish", topic("a/?"))), "iot:Publish", topic("a/b"), OK),
    case(
        "question-two", doc(allow("iot:Publish", topic("a/?"))), "iot:Publish", topic("a/bc"), NONE
    ),
    case(
        "question-zero", doc(allow("iot:Publish", topic("a/?"))), "iot:Publish", topic("a/"), NONE
    ),
    case(
        "question-slash", doc(allow("iot:Publish", topic("a?b"))), "iot:Publish", topic("a/b"), OK
    ),
    case(
        "plus-literal-filter",
        doc(allow("iot:Subscribe", tfilter("a/+"))),
        "iot:Subscribe",
        tfilter("a/+"),
        OK,
    ),
    case(
        "plus-not-a-wildcard",
        doc(allow("iot:Subscribe", tfilter("a/+"))),
        "iot:Subscribe",
        tfilter("a/b"),
        NONE,
    ),
    case(
        "plus-not-a-wildcard-topic",
        doc(allow("iot:Publish", topic("some/+/topic"))),
        "iot:Publish",
        topic("some/x/topic"),
        NONE,
    ),
    case(
        "hash-literal",
        doc(allow("iot:Subscribe", tfilter("a/#"))),
        "iot:Subscribe",
        tfilter("a/#"),
        OK,
    ),
    case(
        "hash-not-a-wildcard",
        doc(allow("iot:Subscribe", tfilter("a/#"))),
        "iot:Subscribe",
        tfilter("a/b/c"),
        NONE,
    ),
    case(
        "request-star-is-literal",
        doc(allow("iot:Subscribe", tfilter("a/b"))),
        "iot:Subscribe",
        tfilter("a/*"),
        NONE,
    ),
    case(
        "case-sensitive-topic",
        doc(allow("iot:Publish", topic("A/b"))),
        "iot:Publish",
        topic("a/b"),
        NONE,
    ),
    case(
        "case-sensitive-arn",
        doc(allow("iot:Publish", "arn:aws:iot:us-east-1:123456789012:TOPIC/a")),
        "iot:Publish",
        topic("a"),
        NONE,
    ),
    case(
        "other-region",
        doc(allow("iot:Publish", "arn:aws:iot:us-west-2:123456789012:topic/a")),
        "iot:Publish",
        topic("a"),
        NONE,
    ),
    case(
        "wildcard-region-account",
        doc(allow("iot:Publish", "arn:aws:iot:*:*:topic/a")),
        "iot:Publish",
        topic("a"),
        OK,
    ),
    case(
        "topic-grant-is-not-topicfilter",
        doc(allow("iot:Subscribe", topic("a"))),
        "iot:Subscribe",
        tfilter("a"),
        NONE,
    ),
    case(
        "topicfilter-grant-is-not-topic",
        doc(allow("iot:Publish", tfilter("a"))),
        "iot:Publish",
        topic("a"),
        NONE,
    ),
    case(
        "resource-list",
        doc(allow("iot:Publish", [topic("a"), topic("b")])),
        "iot:Publish",
        topic("b"),
        OK,
    ),
    case(
        "not-resource-applies",
        doc(stmt("Allow", "iot:Publish", topic("private/*"), not_resource=True)),
        "iot:Publish",
        topic("public/x"),
        OK,
    ),
    case(
        "not-resource-excludes",
        doc(stmt("Allow", "iot:Publish", topic("private/*"), not_resource=True)),
        "iot:Publish",
        topic("private/x"),
        NONE,
    ),
    case(
        "reserved-topic-literal-dollar",
        doc(allow("iot:Publish", topic("$aws/things/t1/shadow/update"))),
        "iot:Publish",
        topic("$aws/things/t1/shadow/update"),
        OK,
    ),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), RESOURCE_CASES)
def test_resources(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# ---------------------------------------------------------------------------------------------
# Policy variables (iot-policy-variables, thing-policy-variables, cert-policy-variables).

THING_CTX = ctx(
    client_id="thing1",
    thing_name="thing1",
    thing_type_name="sensor",
    thing_attributes={"floor": "3"},
    is_attached=True,
)
CERT_CTX = ctx(
    certificate_subject={"CommonName": ("dev1",), "Organization": ("Acme", "Beta")},
    certificate_issuer={"CommonName": ("Local CA",)},
    certificate_san={"DNSName": ("dev1.example.com",), "IPAddress": ("192.0.2.1",)},
)


def pub(resource: str | list[str], *, version: str | None = V2012) -> str:
    return doc(allow("iot:Publish", resource), version=version)


VARIABLE_CASES = [
    case(
        "client-id",
        doc(allow("iot:Connect", client("${iot:ClientId}"))),
        "iot:Connect",
        client("dev1"),
        OK,
    ),
    case(
        "client-id-other",
        doc(allow("iot:Connect", client("${iot:ClientId}"))),
        "iot:Connect",
        client("dev2"),
        NONE,
    ),
    case(
        "client-id-unresolved",
        doc(allow("iot:Connect", client("${iot:ClientId}"))),
        "iot:Connect",
        client("None"),
        NONE,
        context=ctx(client_id=None),
    ),
    case(
        "client-id-name-case", pub(topic("${iot:clientid}/x")), "iot:Publish", topic("dev1/x"), OK
    ),
    case(
        "thing-name",
        pub(topic("things/${iot:Connection.Thing.ThingName}")),
        "iot:Publish",
        topic("things/thing1"),
        OK,
        context=THING_CTX,
    ),
    case(
        "thing-name-unresolved-without-thing",
        pub(topic("things/${iot:Connection.Thing.ThingName}")),
        "iot:Publish",
        topic("things/dev1"),
        NONE,
    ),
    case(
        "thing-type",
        pub(topic("type/${iot:Connection.Thing.ThingTypeName}/*")),
        "iot:Publish",
        topic("type/sensor/t"),
        OK,
        context=THING_CTX,
    ),
    case(
        "thing-type-unresolved",
        pub(topic("type/${iot:Connection.Thing.ThingTypeName}/*")),
        "iot:Publish",
        topic("type/sensor/t"),
        NONE,
        context=ctx(thing_name="thing1", is_attached=True),
    ),
    case(
        "thing-attribute",
        pub(topic("floor/${iot:Connection.Thing.Attributes[floor]}/*")),
        "iot:Publish",
        topic("floor/3/temp"),
        OK,
        context=THING_CTX,
    ),
    case(
        "thing-attribute-other-value",
        pub(topic("floor/${iot:Connection.Thing.Attributes[floor]}/*")),
        "iot:Publish",
        topic("floor/4/temp"),
        NONE,
        context=THING_CTX,
    ),
    case(
        "thing-attribute-name-case-sensitive",
        pub(topic("floor/${iot:Connection.Thing.Attributes[Floor]}/*")),
        "iot:Publish",
        topic("floor/3/temp"),
        NONE,
        context=THING_CTX,
    ),
    case(
        "is-attached-variable",
        pub(topic("attached/${iot:Connection.Thing.IsAttached}")),
        "iot:Publish",
        topic("attached/true"),
        OK,
        context=THING_CTX,
    ),
    case(
        "is-attached-variable-false",
        pub(topic("attached/${iot:Connection.Thing.IsAttached}")),
        "iot:Publish",
        topic("attached/false"),
        OK,
    ),
    case(
        "subject-cn",
        pub(topic("${iot:Certificate.Subject.CommonName}/*")),
        "iot:Publish",
        topic("dev1/x"),
        OK,
        context=CERT_CTX,
    ),
    case(
        "subject-multi-valued-first",
        pub(topic("org/${iot:Certificate.Subject.Organization}")),
        "iot:Publish",
        topic("org/Acme"),
        OK,
        context=CERT_CTX,
    ),
    case(
        "subject-multi-valued-second",
        pub(topic("org/${iot:Certificate.Subject.Organization}")),
        "iot:Publish",
        topic("org/Beta"),
        OK,
        context=CERT_CTX,
    ),
    case(
        "subject-multi-valued-neither",
        pub(topic("org/${iot:Certificate.Subject.Organization}")),
        "iot:Publish",
        topic("org/Gamma"),
        NONE,
        context=CERT_CTX,
    ),
    case(
        "subject-missing-attribute",
        pub(topic("${iot:Certificate.Subject.Surname}/*")),
        "iot:Publish",
        topic("dev1/x"),
        NONE,
        context=CERT_CTX,
    ),
    case(
        "issuer-cn",
        pub(topic("ca/${iot:Certificate.Issuer.CommonName}")),
        "iot:Publish",
        topic("ca/Local CA"),
        OK,
        context=CERT_CTX,
    ),
    case(
        "san-dns",
        pub(topic("dns/${iot:Certificate.SubjectAltName.DNSName}")),
        "iot:Publish",
        topic("dns/dev1.example.com"),
        OK,
        context=CERT_CTX,
    ),
    case(
        "san-ip",
        pub(topic("ip/${iot:Certificate.SubjectAltName.IPAddress}")),
        "iot:Publish",
        topic("ip/192.0.2.1"),
        OK,
        context=CERT_CTX,
    ),
    case("unknown-variable", pub(topic("${iot:Nonsense}")), "iot:Publish", topic("dev1"), NONE),
    case("empty-variable", pub(topic("${}")), "iot:Publish", topic(""), NONE),
    case("special-star", pub(topic("a/${*}")), "iot:Publish", topic("a/*"), OK),
    case("special-star-literal", pub(topic("a/${*}")), "iot:Publish", topic("a/b"), NONE),
    case("special-question", pub(topic("a/${?}")), "iot:Publish", topic("a/?"), OK),
    case("special-question-literal", pub(topic("a/${?}")), "iot:Publish", topic("a/b"), NONE),
    case("special-dollar", pub(topic("${$}aws/x")), "iot:Publish", topic("$aws/x"), OK),
    case("unclosed-brace-is-text", pub(topic("a/${x")), "iot:Publish", topic("a/${x"), OK),
    case(
        "version-2008-no-variables",
        pub(topic("${iot:ClientId}"), version="2008-10-17"),
        "iot:Publish",
        topic("dev1"),
        NONE,
    ),
    case(
        "version-2008-literal-text",
        pub(topic("${iot:ClientId}"), version="2008-10-17"),
        "iot:Publish",
        topic("${iot:ClientId}"),
        OK,
    ),
    case(
        "no-version-no-variables",
        pub(topic("${iot:ClientId}"), version=None),
        "iot:Publish",
        topic("dev1"),
        NONE,
    ),
    case(
        "unresolved-voids-whole-statement",
        pub([topic("things/${iot:Connection.Thing.ThingName}"), topic("public")]),
        "iot:Publish",
        topic("public"),
        NONE,
    ),
    case(
        "unresolved-voids-deny-too",
        doc(
            allow("iot:Publish", topic("*")),
            deny("iot:Publish", topic("${iot:Connection.Thing.ThingName}/secret")),
        ),
        "iot:Publish",
        topic("x/secret"),
        OK,
    ),
    case(
        "unresolved-voids-not-resource",
        doc(
            stmt(
                "Allow",
                "iot:Publish",
                topic("${iot:Connection.Thing.ThingName}"),
                not_resource=True,
            )
        ),
        "iot:Publish",
        topic("anything"),
        NONE,
    ),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), VARIABLE_CASES)
def test_variables(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# Substituted values are literal: a client cannot widen its own grant by choosing its client ID
# (or certificate fields) to contain "*", "?" or "${...}".
OWN_TOPICS = doc(
    allow("iot:Connect", client("${iot:ClientId}")),
    allow("iot:Publish", topic("${iot:ClientId}/*")),
    allow("iot:Subscribe", tfilter("${iot:ClientId}/*")),
)

INJECTION_CASES = [
    case(
        "star-id-own-topic",
        OWN_TOPICS,
        "iot:Publish",
        topic("a*/x"),
        OK,
        context=ctx(client_id="a*"),
    ),
    case(
        "star-id-other-topic",
        OWN_TOPICS,
        "iot:Publish",
        topic("abc/x"),
        NONE,
        context=ctx(client_id="a*"),
    ),
    case(
        "bare-star-id",
        OWN_TOPICS,
        "iot:Publish",
        topic("victim/x"),
        NONE,
        context=ctx(client_id="*"),
    ),
    case("question-id", OWN_TOPICS, "iot:Publish", topic("v/x"), NONE, context=ctx(client_id="?")),
    case(
        "question-id-own", OWN_TOPICS, "iot:Publish", topic("?/x"), OK, context=ctx(client_id="?")
    ),
    case(
        "variable-syntax-id",
        OWN_TOPICS,
        "iot:Publish",
        topic("*/x"),
        NONE,
        context=ctx(client_id="${*}"),
    ),
    case(
        "variable-syntax-id-own",
        OWN_TOPICS,
        "iot:Publish",
        topic("${*}/x"),
        OK,
        context=ctx(client_id="${*}"),
    ),
    case(
        "nested-variable-id",
        OWN_TOPICS,
        "iot:Publish",
        topic("victim/x"),
        NONE,
        context=ctx(
            client_id="${iot:Certificate.Subject.CommonName}",
            certificate_subject={"CommonName": ("victim",)},
        ),
    ),
    # spec 6.3: AWS warns a client can connect as "+"; the grant then covers the literal filter
    # "+/..." only, which the broker treats as a wildcard. Documented AWS behaviour, not a bug here.
    case(
        "plus-id-literal-filter",
        OWN_TOPICS,
        "iot:Subscribe",
        tfilter("+/x"),
        OK,
        context=ctx(client_id="+"),
    ),
    case(
        "plus-id-other-filter",
        OWN_TOPICS,
        "iot:Subscribe",
        tfilter("a/x"),
        NONE,
        context=ctx(client_id="+"),
    ),
    case(
        "condition-value-literal",
        doc(
            allow(
                "iot:Connect",
                "*",
                {"StringLike": {"iot:ClientId": "${iot:Certificate.Subject.CommonName}-*"}},
            )
        ),
        "iot:Connect",
        client("devX-1"),
        NONE,
        context=ctx(client_id="devX-1", certificate_subject={"CommonName": ("dev?",)}),
    ),
    case(
        "condition-value-literal-own",
        doc(
            allow(
                "iot:Connect",
                "*",
                {"StringLike": {"iot:ClientId": "${iot:Certificate.Subject.CommonName}-*"}},
            )
        ),
        "iot:Connect",
        client("dev?-1"),
        OK,
        context=ctx(client_id="dev?-1", certificate_subject={"CommonName": ("dev?",)}),
    ),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), INJECTION_CASES)
def test_variable_injection(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# ---------------------------------------------------------------------------------------------
# Conditions (IAM condition operators; connect-policy for iot:ConnectAttributes).


def connect_if(condition: dict[str, Any]) -> str:
    return doc(allow("iot:Connect", "*", condition))


PERSISTENT = frozenset({"PersistentConnect"})
WILL = frozenset({"LastWill"})
BOTH = PERSISTENT | WILL
ONLY_PERSISTENT = connect_if(
    {"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}}
)
ANY_WILL = connect_if({"ForAnyValue:StringEquals": {"iot:ConnectAttributes": "LastWill"}})
C = client("dev1")

CONDITION_CASES = [
    case(
        "forall-subset",
        ONLY_PERSISTENT,
        "iot:Connect",
        C,
        OK,
        context=ctx(connect_attributes=PERSISTENT),
    ),
    case("forall-empty-vacuous", ONLY_PERSISTENT, "iot:Connect", C, OK),
    case(
        "forall-refuses-will",
        ONLY_PERSISTENT,
        "iot:Connect",
        C,
        NONE,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "forall-refuses-only-will",
        ONLY_PERSISTENT,
        "iot:Connect",
        C,
        NONE,
        context=ctx(connect_attributes=WILL),
    ),
    case("forany-hit", ANY_WILL, "iot:Connect", C, OK, context=ctx(connect_attributes=BOTH)),
    case(
        "forany-miss", ANY_WILL, "iot:Connect", C, NONE, context=ctx(connect_attributes=PERSISTENT)
    ),
    case("forany-empty", ANY_WILL, "iot:Connect", C, NONE),
    case(
        "deny-last-will",
        doc(
            allow("iot:Connect", "*"),
            deny(
                "iot:Connect",
                "*",
                {"ForAnyValue:StringEquals": {"iot:ConnectAttributes": "LastWill"}},
            ),
        ),
        "iot:Connect",
        C,
        DENY,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "forall-not-equals",
        connect_if({"ForAllValues:StringNotEquals": {"iot:ConnectAttributes": "LastWill"}}),
        "iot:Connect",
        C,
        NONE,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "forany-not-equals",
        connect_if({"ForAnyValue:StringNotEquals": {"iot:ConnectAttributes": "LastWill"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "plain-equals-on-multi-any",
        connect_if({"StringEquals": {"iot:ConnectAttributes": "LastWill"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "plain-not-equals-on-multi-none",
        connect_if({"StringNotEquals": {"iot:ConnectAttributes": "LastWill"}}),
        "iot:Connect",
        C,
        NONE,
        context=ctx(connect_attributes=BOTH),
    ),
    case(
        "bool-attached",
        connect_if({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(is_attached=True),
    ),
    case(
        "bool-not-attached",
        connect_if({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "bool-json-true",
        connect_if({"Bool": {"iot:Connection.Thing.IsAttached": True}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(is_attached=True),
    ),
    case(
        "bool-false-wanted",
        connect_if({"Bool": {"iot:Connection.Thing.IsAttached": "False"}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "like-hit",
        connect_if({"StringLike": {"iot:ClientId": "sensor-*"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(client_id="sensor-1"),
    ),
    case(
        "like-miss",
        connect_if({"StringLike": {"iot:ClientId": "sensor-*"}}),
        "iot:Connect",
        C,
        NONE,
        context=ctx(client_id="pump-1"),
    ),
    case(
        "like-question", connect_if({"StringLike": {"iot:ClientId": "dev?"}}), "iot:Connect", C, OK
    ),
    case(
        "not-like", connect_if({"StringNotLike": {"iot:ClientId": "admin*"}}), "iot:Connect", C, OK
    ),
    case(
        "not-like-hit",
        connect_if({"StringNotLike": {"iot:ClientId": "admin*"}}),
        "iot:Connect",
        C,
        NONE,
        context=ctx(client_id="admin1"),
    ),
    case(
        "equals-star-literal",
        connect_if({"StringEquals": {"iot:ClientId": "dev*"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "equals-star-literal-hit",
        connect_if({"StringEquals": {"iot:ClientId": "dev*"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(client_id="dev*"),
    ),
    case(
        "ignore-case-question-literal",
        connect_if({"StringEqualsIgnoreCase": {"iot:ClientId": "DEV?"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(client_id="dev?"),
    ),
    case(
        "like-special-star-literal",
        connect_if({"StringLike": {"iot:ClientId": "dev${*}"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "equals-values-or",
        connect_if({"StringEquals": {"iot:ClientId": ["x", "dev1"]}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "equals-key-case-insensitive",
        connect_if({"StringEquals": {"IOT:CLIENTID": "dev1"}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "equals-value-case-sensitive",
        connect_if({"StringEquals": {"iot:ClientId": "DEV1"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "equals-ignore-case",
        connect_if({"StringEqualsIgnoreCase": {"iot:ClientId": "DEV1"}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "not-equals-ignore-case",
        connect_if({"StringNotEqualsIgnoreCase": {"iot:ClientId": "DEV1"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "equals-missing-key",
        connect_if({"StringEquals": {"iot:ClientId": "dev1"}}),
        "iot:Connect",
        C,
        NONE,
        context=ctx(client_id=None),
    ),
    case(
        "not-equals-missing-key",
        connect_if({"StringNotEquals": {"iot:ClientId": "dev1"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(client_id=None),
    ),
    case(
        "if-exists-missing",
        connect_if({"StringEqualsIfExists": {"iot:ClientId": "x"}}),
        "iot:Connect",
        C,
        OK,
        context=ctx(client_id=None),
    ),
    case(
        "if-exists-present-miss",
        connect_if({"StringEqualsIfExists": {"iot:ClientId": "x"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "if-exists-present-hit",
        connect_if({"StringLikeIfExists": {"iot:ClientId": "d*"}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "unknown-key-missing",
        connect_if({"StringEquals": {"aws:SourceIp": "1.2.3.4"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "null-true-missing",
        connect_if({"Null": {"iot:Connection.Thing.ThingName": "true"}}),
        "iot:Connect",
        C,
        OK,
    ),
    case(
        "null-false-missing",
        connect_if({"Null": {"iot:Connection.Thing.ThingName": "false"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "null-false-present",
        connect_if({"Null": {"iot:Connection.Thing.ThingName": "false"}}),
        "iot:Connect",
        C,
        OK,
        context=THING_CTX,
    ),
    case(
        "operators-and",
        connect_if(
            {
                "StringLike": {"iot:ClientId": "dev*"},
                "Bool": {"iot:Connection.Thing.IsAttached": "true"},
            }
        ),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "keys-and",
        connect_if(
            {"StringEquals": {"iot:ClientId": "thing1", "iot:Connection.Thing.ThingName": "thing1"}}
        ),
        "iot:Connect",
        C,
        OK,
        context=THING_CTX,
    ),
    case(
        "value-variable",
        connect_if({"StringEquals": {"iot:ClientId": "${iot:Certificate.Subject.CommonName}"}}),
        "iot:Connect",
        C,
        OK,
        context=CERT_CTX,
    ),
    case(
        "value-variable-unresolved",
        connect_if({"StringNotEquals": {"iot:ClientId": "${iot:Certificate.Subject.CommonName}"}}),
        "iot:Connect",
        C,
        NONE,
    ),
    case(
        "cert-list-forany",
        connect_if(
            {"ForAnyValue:StringEquals": {"iot:Certificate.Subject.Organization.List": "Beta"}}
        ),
        "iot:Connect",
        C,
        OK,
        context=CERT_CTX,
    ),
    case(
        "cert-list-forall-like",
        connect_if(
            {"ForAllValues:StringLike": {"iot:Certificate.Subject.Organization.List": "A*"}}
        ),
        "iot:Connect",
        C,
        NONE,
        context=CERT_CTX,
    ),
    case(
        "cert-san-like",
        connect_if({"StringLike": {"iot:Certificate.SubjectAltName.DNSName": "*.example.com"}}),
        "iot:Connect",
        C,
        OK,
        context=CERT_CTX,
    ),
    case(
        "thing-attribute-condition",
        connect_if({"StringEquals": {"iot:Connection.Thing.Attributes[floor]": "3"}}),
        "iot:Connect",
        C,
        OK,
        context=THING_CTX,
    ),
    case(
        "number-value",
        connect_if({"StringEquals": {"iot:Connection.Thing.Attributes[floor]": 3}}),
        "iot:Connect",
        C,
        OK,
        context=THING_CTX,
    ),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), CONDITION_CASES)
def test_conditions(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# ---------------------------------------------------------------------------------------------
# AWS's example policies, written out as on the developer guide pages named above each one
# (transcribed; account 123456789012 and region us-east-1 as in the guide).

# thing-policy-variables / connect-policy: "the client ID must equal the thing name".
AWS_THING_CONNECT = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"],
            "Condition": {
                "Bool": {
                    "iot:Connection.Thing.IsAttached": "true"
                }
            }
        }
    ]
}
"""  # noqa: E501

# pub-sub-policy / example-iot-policies: each client works under topics prefixed by its client ID.
AWS_CLIENT_ID_PUBSUB = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:ClientId}"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:ClientId}/*"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/${iot:ClientId}/*"]
        }
    ]
}
"""

# cert-policy-variables: connect with the certificate's Subject CommonName as the client ID.
AWS_CERT_CN = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Certificate.Subject.CommonName}"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/${iot:Certificate.Subject.CommonName}/*"]
        }
    ]
}
"""  # noqa: E501

# device-shadow-mqtt / example-iot-policies (shadow): a thing may use only its own shadow topics.
AWS_SHADOW = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Publish"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Receive"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]
        }
    ]
}
"""  # noqa: E501

# pub-sub-policy: the Deny that "will not work" (a/# matches the Allow and not the Deny) ...
AWS_DENY_NOT_WORKING = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/a/*"]
        },
        {
            "Effect": "Deny",
            "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/a/restricted/*"]
        }
    ]
}
"""

# ... and AWS's fix: authorize iot:Receive with NotResource.
AWS_RECEIVE_FENCE = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Subscribe"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:topicfilter/a/*"]
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Receive"],
            "NotResource": ["arn:aws:iot:us-east-1:123456789012:topic/a/restricted/*"]
        }
    ]
}
"""

# connect-policy: persistent sessions only, and no Last Will.
AWS_PERSISTENT_ONLY = """
{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["iot:Connect"],
            "Resource": ["arn:aws:iot:us-east-1:123456789012:client/client1"],
            "Condition": {
                "ForAllValues:StringEquals": {
                    "iot:ConnectAttributes": ["PersistentConnect"]
                }
            }
        }
    ]
}
"""

T1 = ctx(client_id="thing1", thing_name="thing1", is_attached=True)
CLIENT1 = ctx(client_id="client1")

AWS_EXAMPLE_CASES = [
    case("thing-connect", AWS_THING_CONNECT, "iot:Connect", client("thing1"), OK, context=T1),
    case(
        "thing-connect-not-attached",
        AWS_THING_CONNECT,
        "iot:Connect",
        client("thing1"),
        NONE,
        context=ctx(client_id="thing1"),
    ),
    case(
        "thing-connect-client-id-not-thing",
        AWS_THING_CONNECT,
        "iot:Connect",
        client("other"),
        NONE,
        context=ctx(client_id="other", is_attached=True),
    ),
    case("pubsub-connect", AWS_CLIENT_ID_PUBSUB, "iot:Connect", client("dev1"), OK),
    case("pubsub-publish-own", AWS_CLIENT_ID_PUBSUB, "iot:Publish", topic("dev1/telemetry"), OK),
    case("pubsub-receive-own", AWS_CLIENT_ID_PUBSUB, "iot:Receive", topic("dev1/cmd/x"), OK),
    case("pubsub-subscribe-own", AWS_CLIENT_ID_PUBSUB, "iot:Subscribe", tfilter("dev1/#"), OK),
    case(
        "pubsub-publish-other", AWS_CLIENT_ID_PUBSUB, "iot:Publish", topic("dev2/telemetry"), NONE
    ),
    case("pubsub-subscribe-all", AWS_CLIENT_ID_PUBSUB, "iot:Subscribe", tfilter("#"), NONE),
    case("pubsub-no-retain", AWS_CLIENT_ID_PUBSUB, "iot:RetainPublish", topic("dev1/x"), NONE),
    case("cert-cn-connect", AWS_CERT_CN, "iot:Connect", client("dev1"), OK, context=CERT_CTX),
    case(
        "cert-cn-connect-other", AWS_CERT_CN, "iot:Connect", client("dev2"), NONE, context=CERT_CTX
    ),
    case("cert-cn-publish", AWS_CERT_CN, "iot:Publish", topic("dev1/data"), OK, context=CERT_CTX),
    case("cert-cn-no-certificate-fields", AWS_CERT_CN, "iot:Connect", client("dev1"), NONE),
    case(
        "shadow-update-own",
        AWS_SHADOW,
        "iot:Publish",
        topic("$aws/things/thing1/shadow/update"),
        OK,
        context=T1,
    ),
    case(
        "shadow-named-own",
        AWS_SHADOW,
        "iot:Publish",
        topic("$aws/things/thing1/shadow/name/cfg/get"),
        OK,
        context=T1,
    ),
    case(
        "shadow-update-other",
        AWS_SHADOW,
        "iot:Publish",
        topic("$aws/things/thing2/shadow/update"),
        NONE,
        context=T1,
    ),
    case(
        "shadow-subscribe-own",
        AWS_SHADOW,
        "iot:Subscribe",
        tfilter("$aws/things/thing1/shadow/update/accepted"),
        OK,
        context=T1,
    ),
    case(
        "shadow-receive-own",
        AWS_SHADOW,
        "iot:Receive",
        topic("$aws/things/thing1/shadow/update/delta"),
        OK,
        context=T1,
    ),
    case(
        "shadow-without-thing",
        AWS_SHADOW,
        "iot:Publish",
        topic("$aws/things/dev1/shadow/update"),
        NONE,
    ),
    case("deny-not-working-hash", AWS_DENY_NOT_WORKING, "iot:Subscribe", tfilter("a/#"), OK),
    case(
        "deny-not-working-direct",
        AWS_DENY_NOT_WORKING,
        "iot:Subscribe",
        tfilter("a/restricted/x"),
        DENY,
    ),
    case("fence-subscribe-hash", AWS_RECEIVE_FENCE, "iot:Subscribe", tfilter("a/#"), OK),
    case("fence-receive-ok", AWS_RECEIVE_FENCE, "iot:Receive", topic("a/b"), OK),
    case(
        "fence-receive-restricted", AWS_RECEIVE_FENCE, "iot:Receive", topic("a/restricted/x"), NONE
    ),
    case(
        "persistent-only-ok",
        AWS_PERSISTENT_ONLY,
        "iot:Connect",
        client("client1"),
        OK,
        context=dataclasses.replace(CLIENT1, connect_attributes=PERSISTENT),
    ),
    case(
        "persistent-only-refuses-last-will",
        AWS_PERSISTENT_ONLY,
        "iot:Connect",
        client("client1"),
        NONE,
        context=dataclasses.replace(CLIENT1, connect_attributes=BOTH),
    ),
]


@pytest.mark.parametrize(("texts", "action", "resource", "context", "reason"), AWS_EXAMPLE_CASES)
def test_aws_examples(
    texts: tuple[str, ...], action: str, resource: str, context: RequestContext, reason: str
) -> None:
    check(texts, action, resource, context, reason)


# ---------------------------------------------------------------------------------------------
# Decision contents.


def test_decision_explicit_deny_names_statement() -> None:
    policies = [
        NamedPolicy("Base", parse_policy_document(ALL_ACTIONS)),
        NamedPolicy(
            "Fence",
            parse_policy_document(
                json.dumps(
                    {
                        "Version": V2012,
                        "Statement": [
                            allow("iot:Connect", "*"),
                            {**deny("iot:Publish", topic("secret/*")), "Sid": "NoSecrets"},
                        ],
                    }
                )
            ),
        ),
    ]
    decision = evaluate(policies, "iot:Publish", topic("secret/x"), CTX)
    assert decision == Decision(
        allowed=False,
        reason=EXPLICIT_DENY,
        matched=(("Fence", 1, "NoSecrets"),),
        details=(
            f"iot:Publish on {topic('secret/x')} denied: explicit Deny in policy 'Fence' "
            "Statement[1] (Sid 'NoSecrets')"
        ),
    )


def test_decision_allowed_lists_every_allow() -> None:
    decision = evaluate(named(ALL_ACTIONS, ALL_ACTIONS), "iot:Connect", client("dev1"), CTX)
    assert decision.allowed
    assert decision.matched == (("P0", 0, None), ("P1", 0, None))
    assert decision.details == (
        f"iot:Connect on {client('dev1')} allowed by policy 'P0' Statement[0] "
        "and policy 'P1' Statement[0]"
    )


def test_decision_no_matching_statement_names_policies() -> None:
    text = doc(allow("iot:Connect", "*"))
    decision = evaluate(named(text, text), "iot:Publish", topic("a/b"), CTX)
    assert decision == Decision(
        False,
        NO_MATCHING_STATEMENT,
        (),
        f"iot:Publish on {topic('a/b')} denied: no statement in policies 'P0', 'P1' allows it",
    )
    single = evaluate(named(text), "iot:Publish", topic("a/b"), CTX)
    assert single.details.endswith("no statement in policy 'P0' allows it")


def test_decision_no_policy() -> None:
    decision = evaluate([], "iot:Connect", client("dev1"), CTX)
    assert decision == Decision(
        False,
        NO_POLICY_ATTACHED,
        (),
        f"iot:Connect on {client('dev1')} denied: the certificate has no policy attached",
    )


# ---------------------------------------------------------------------------------------------
# Parsing.


def test_parse_structure() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "example",
            "Statement": {
                "Sid": "One",
                "Effect": "Allow",
                "Action": "iot:Connect",
                "NotResource": ["arn:aws:iot:us-east-1:123456789012:client/admin"],
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": True}},
            },
        }
    )
    assert parse_policy_document(text) == PolicyDocument(
        version="2012-10-17",
        statements=(
            Statement(
                effect="Allow",
                actions=("iot:Connect",),
                resources=("arn:aws:iot:us-east-1:123456789012:client/admin",),
                conditions={"Bool": {"iot:Connection.Thing.IsAttached": ("true",)}},
                sid="One",
                index=0,
                not_action=False,
                not_resource=True,
            ),
        ),
    )


def test_parse_missing_version_is_2008() -> None:
    assert parse_policy_document(doc(allow("iot:*", "*"), version=None)).version == "2008-10-17"


def test_parse_accepts_2048_non_white_space_characters() -> None:
    def counted(text: str) -> int:
        return sum(1 for ch in text if not ch.isspace())

    padding = 2048 - counted(doc(allow("iot:Publish", topic(""))))
    text = doc(allow("iot:Publish", topic("x" * padding)))
    assert counted(text) == 2048
    spaced = text.replace(",", ",\n        ")  # white space does not count
    assert len(spaced) > 2048
    parse_policy_document(spaced)
    with pytest.raises(PolicyError, match="2049 characters"):
        parse_policy_document(doc(allow("iot:Publish", topic("x" * (padding + 1)))))


GOOD_STATEMENT = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}

PARSE_ERRORS = [
    pytest.param("{", "not valid JSON", id="bad-json"),
    pytest.param("", "not valid JSON", id="empty"),
    pytest.param("[]", "must be a JSON object", id="not-object"),
    pytest.param('{"Version": "2012-10-17", "Statement": NaN}', "NaN", id="nan"),
    pytest.param(
        '{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}',
        "duplicate key 'Version'",
        id="duplicate-key",
    ),
    pytest.param(
        json.dumps({"Version": "2012-10-18", "Statement": GOOD_STATEMENT}),
        "Version '2012-10-18' is not supported",
        id="bad-version",
    ),
    pytest.param(
        json.dumps({"Version": 2012, "Statement": GOOD_STATEMENT}),
        "Version 2012 is not supported",
        id="version-not-string",
    ),
    pytest.param(json.dumps({"Version": V2012}), "Statement is required", id="no-statement"),
    pytest.param(
        json.dumps({"Version": V2012, "Statement": []}), "non-empty array", id="empty-statements"
    ),
    pytest.param(
        json.dumps({"Version": V2012, "Statement": GOOD_STATEMENT, "Extra": 1}),
        "unknown element 'Extra'",
        id="unknown-top-level",
    ),
    pytest.param(
        json.dumps({"Version": V2012, "Statement": [GOOD_STATEMENT, "x"]}),
        r"Statement\[1\] must be an object",
        id="statement-not-object",
    ),
    pytest.param(
        doc({"Action": "iot:Connect", "Resource": "*"}),
        r"Statement\[0\]\.Effect is required",
        id="missing-effect",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Effect": "allow"}),
        r"Statement\[0\]\.Effect must be 'Allow' or 'Deny', not 'allow'",
        id="effect-case",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Principal": "*"}), "Principal is not allowed", id="principal"
    ),
    pytest.param(doc({**GOOD_STATEMENT, "Bogus": 1}), "unknown element 'Bogus'", id="unknown-key"),
    pytest.param(doc({**GOOD_STATEMENT, "Sid": 5}), "Sid must be a string", id="sid-type"),
    pytest.param(
        doc({**GOOD_STATEMENT, "NotAction": "iot:Publish"}),
        "exactly one of Action and NotAction",
        id="action-and-not-action",
    ),
    pytest.param(
        doc({"Effect": "Allow", "Action": "iot:Connect"}),
        "exactly one of Resource and NotResource",
        id="no-resource",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Action": []}), "non-empty array of strings", id="empty-actions"
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Resource": ["*", 3]}),
        r"Statement\[0\]\.Resource must be a string",
        id="resource-type",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Action": "iotConnect"}),
        "action 'iotConnect' must be",
        id="action-format",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Resource": "topic/a"}),
        "resource 'topic/a' must be '\\*' or an ARN",
        id="resource-format",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"NumericEquals": {"iot:ClientId": "1"}}}),
        "condition operator 'NumericEquals' is not supported",
        id="unknown-operator",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"ForSomeValues:StringEquals": {"iot:ClientId": "1"}}}),
        "condition operator 'ForSomeValues:StringEquals' is not supported",
        id="unknown-qualifier",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"NullIfExists": {"iot:ClientId": "true"}}}),
        "Null takes no prefix and no IfExists",
        id="null-if-exists",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "yes"}}}),
        "must be true or false",
        id="bool-value",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"StringEquals": {"iot:ClientId": {"a": 1}}}}),
        "values must be strings",
        id="condition-value-type",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"StringEquals": {"clientid": "a"}}}),
        "key 'clientid' must be 'service:key'",
        id="condition-key-format",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": {"StringEquals": {}}}),
        "must map condition keys to values",
        id="empty-condition-block",
    ),
    pytest.param(
        doc({**GOOD_STATEMENT, "Condition": ["StringEquals"]}),
        "Condition must be an object",
        id="condition-not-object",
    ),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as raised:
        parse_policy_document(text)
    assert str(raised.value).startswith("Policy document is malformed: ")
    assert isinstance(raised.value, BrokerError)


def test_parse_size_limit_over_2048() -> None:
    text = doc(allow("iot:Publish", topic("x" * 2100)))
    with pytest.raises(PolicyError, match="excluding white space; AWS IoT allows at most 2048"):
        parse_policy_document(text)


# ---------------------------------------------------------------------------------------------
# resource_arn and certificate_context.


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("client", "dev1", "arn:aws:iot:us-east-1:123456789012:client/dev1"),
        (
            "topic",
            "$aws/things/t/shadow/get",
            "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/t/shadow/get",
        ),
        ("topicfilter", "a/+/#", "arn:aws:iot:us-east-1:123456789012:topicfilter/a/+/#"),
        ("thing", "t1", "arn:aws:iot:us-east-1:123456789012:thing/t1"),
    ],
)
def test_resource_arn(kind: str, name: str, expected: str) -> None:
    assert resource_arn(REGION, ACCOUNT, kind, name) == expected


def test_resource_arn_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown resource kind 'cert'"):
        resource_arn(REGION, ACCOUNT, "cert", "x")


def make_certificate(*, with_san: bool) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Beta"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Sensors"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "SN-42"),
            x509.NameAttribute(NameOID.COMMON_NAME, "dev1"),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Local CA")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if with_san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("dev1.example.com"),
                    x509.DNSName("alt.example.com"),
                    x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
                    x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                    x509.RFC822Name("dev1@example.com"),
                    x509.UniformResourceIdentifier("urn:dev:1"),
                ]
            ),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256())


def test_certificate_context() -> None:
    subject, issuer, san = certificate_context(make_certificate(with_san=True))
    assert dict(subject) == {
        "CommonName": ("dev1",),
        "Country": ("US",),
        "Organization": ("Acme", "Beta"),
        "OrganizationalUnit": ("Sensors",),
        "State": ("WA",),
        "SerialNumber": ("SN-42",),
    }
    assert dict(issuer) == {"CommonName": ("Local CA",)}
    assert dict(san) == {
        "DNSName": ("dev1.example.com", "alt.example.com"),
        "IPAddress": ("192.0.2.1", "2001:db8::1"),
        "RFC822Name": ("dev1@example.com",),
        "UniformResourceIdentifier": ("urn:dev:1",),
    }


def test_certificate_context_feeds_evaluation() -> None:
    subject, issuer, san = certificate_context(make_certificate(with_san=False))
    assert dict(san) == {}
    context = ctx(certificate_subject=subject, certificate_issuer=issuer, certificate_san=san)
    check((AWS_CERT_CN,), "iot:Connect", client("dev1"), context, OK)


# ---------------------------------------------------------------------------------------------
# Properties.

LITERALS = st.text(
    alphabet=st.characters(exclude_characters="*?", exclude_categories=["Cs"]), max_size=40
).filter(lambda s: "${" not in s)


@given(name=LITERALS, other=st.text(max_size=40))
def test_literal_pattern_matches_exactly_itself(name: str, other: str) -> None:
    policies = named(pub(topic(name)))
    assert evaluate(policies, "iot:Publish", topic(name), CTX).allowed
    assert evaluate(policies, "iot:Publish", topic(other), CTX).allowed is (other == name)


@given(name=st.text(max_size=40))
def test_star_matches_everything(name: str) -> None:
    assert evaluate(named(pub("*")), "iot:Publish", topic(name), CTX).allowed
    assert evaluate(named(pub(topic("*"))), "iot:Publish", topic(name), CTX).allowed


@given(client_id=st.text(max_size=20), other=st.text(max_size=20))
def test_client_id_substitution_is_literal(client_id: str, other: str) -> None:
    policies = named(pub(topic("${iot:ClientId}")))
    context = ctx(client_id=client_id)
    assert evaluate(policies, "iot:Publish", topic(client_id), context).allowed
    assert evaluate(policies, "iot:Publish", topic(other), context).allowed is (other == client_id)


# ---------------------------------------------------------------------------------------------
# Pathological patterns stay polynomial (a backtracking glob or a cartesian expansion of
# multi-valued variables would not finish).


def test_many_stars_do_not_backtrack() -> None:
    policies = named(pub(topic("*a" * 400)))
    assert not evaluate(policies, "iot:Publish", topic("a" * 300 + "b"), CTX).allowed
    assert evaluate(policies, "iot:Publish", topic("ba" * 400), CTX).allowed


def test_many_multi_valued_variables_do_not_explode() -> None:
    organizations = tuple(f"o{i}" for i in range(30))
    context = ctx(certificate_subject={"Organization": organizations})
    policies = named(pub(topic("${iot:Certificate.Subject.Organization}" * 40)))
    assert evaluate(policies, "iot:Publish", topic("o7" * 40), context).allowed
    assert evaluate(policies, "iot:Publish", topic("o12o3" * 20), context).allowed
    assert not evaluate(policies, "iot:Publish", topic("o7" * 39 + "x"), context).allowed
