"""AWS IoT Core policy documents: parsing and evaluation of data-plane requests.

Pure: no I/O, no logging, no asyncio. The caller builds a ``RequestContext`` (who is asking) and
asks ``evaluate`` whether the policies attached to the principal allow one action on one resource.

Sources (the AWS IoT developer guide,
https://docs.aws.amazon.com/iot/latest/developerguide/ pages ``iot-policies``,
``iot-policy-actions``, ``iot-action-resources``, ``iot-policy-variables``,
``thing-policy-variables``, ``cert-policy-variables``, ``pub-sub-policy``, ``connect-policy``):

* AWS IoT policies "follow the same conventions as IAM policies": every statement of every
  attached policy is considered; an explicit ``Deny`` overrides any ``Allow``; anything not
  allowed is denied ("All publish/subscribe operations are denied by default").
* Wildcards (``pub-sub-policy``): "``*`` represents any combination of characters and a question
  mark ``?`` represents any single character. In policy documents, the MQTT wildcard characters,
  ``+`` and ``#`` are treated as those characters with no special meaning". ``*`` crosses ``/``.
  Resource ARNs are compared case-sensitively; action names case-insensitively (IAM).
* Policy variables (``iot-policy-variables``) are substituted in ``Resource``/``NotResource`` and in
  condition values, never in ``Action``. ``${*}``, ``${?}`` and ``${$}`` stand for the literal
  characters. Substitution happens *before* wildcard matching and the substituted text is always
  literal: a client ID ``a*`` matches only ``a*``, never ``ab``. Substitution is single-pass, so a
  client ID containing ``${iot:ClientId}`` is just those characters.
* Policy size: "The maximum size of a policy document is 2048 characters, excluding white space".

Decisions where AWS is silent or this mock deliberately narrows what it accepts:

* **Version.** ``"2012-10-17"`` enables policy variables. ``"2008-10-17"``, and a document with no
  ``Version`` at all, are accepted as IAM accepts them, and there ``${...}`` is plain text (IAM:
  "policy variables ... are treated as literal strings" before version 2012-10-17). Any other
  version is a ``PolicyError``.
* **NotAction / NotResource** are supported with IAM semantics: the statement applies to every
  action (resource) that matches none of the listed patterns. AWS's own ``pub-sub-policy`` page
  uses ``NotResource`` to fence ``iot:Receive``. ``Principal``/``NotPrincipal`` are refused: an
  AWS IoT policy's principal is whatever it is attached to.
* **Unresolved variables.** If any variable in a statement's ``Resource``/``NotResource`` or
  condition values cannot be resolved (for example ``${iot:Connection.Thing.ThingName}`` when no
  thing is attached, or a misspelt name), the whole statement does not match, whatever its effect
  (spec 6.3: "leave the variable unresolved, so it matches nothing"). This applies to ``Deny``
  statements too, as in IAM.
* **Multi-valued variables** (certificate fields that occur several times,
  ``iot:ConnectAttributes``) expand to one candidate per value; a resource pattern matches if
  *any* candidate matches, and in a condition each candidate is one more allowed value. AWS
  documents ``.List`` condition keys (``iot:Certificate.Subject.Organization.List``) for these;
  both spellings resolve here to all values. **UNCONFIRMED** for resource patterns.
* **Names are case-insensitive** for condition keys and variables (IAM: "Condition key names are
  not case-sensitive"), except the attribute name inside ``Attributes[...]``.
* **Condition operators**: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
  ``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike``, ``Bool`` (each with an optional
  ``ForAllValues:``/``ForAnyValue:`` prefix and ``IfExists`` suffix) and ``Null``. Any other
  operator (``NumericEquals``, ``IpAddress``, ...) is a ``PolicyError`` rather than being
  silently mis-evaluated. ``Bool`` and ``Null`` values must be ``true``/``false``.
* **Missing condition keys** follow IAM ("Condition operators" page): a positive operator is
  false; a negated one (``StringNotEquals``, ``StringNotLike``, ...) is true; ``...IfExists`` is
  true; ``ForAllValues:`` is true (vacuously, the IAM pitfall); ``ForAnyValue:`` is false.
  A multi-valued key under an operator with no set prefix behaves as "any value matches" for
  positive operators and as "no value matches" for negated ones.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple, NoReturn

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from aws_iot_mock.errors import BrokerError

__all__ = [
    "ACTIONS",
    "ALLOWED",
    "EXPLICIT_DENY",
    "NO_MATCHING_STATEMENT",
    "NO_POLICY_ATTACHED",
    "POLICY_MAX_CHARS",
    "RESOURCE_KINDS",
    "SUPPORTED_VERSIONS",
    "CertificateContext",
    "Decision",
    "NamedPolicy",
    "PolicyDocument",
    "PolicyError",
    "RequestContext",
    "Statement",
    "certificate_context",
    "evaluate",
    "parse_policy_document",
    "resource_arn",
]

# iot-policy-actions / iot-action-resources: the data-plane actions. Documents may name any other
# iot:* action; the broker simply never asks about them.
ACTIONS: Final[tuple[str, ...]] = (
    "iot:Connect",
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:RetainPublish",
    "iot:GetRetainedMessage",
    "iot:ListRetainedMessages",
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DeleteThingShadow",
    "iot:ListNamedShadowsForThing",
)

# iot-action-resources: client/<clientId>, topic/<topicName>, topicfilter/<filter>, thing/<name>.
RESOURCE_KINDS: Final[tuple[str, ...]] = ("client", "topic", "topicfilter", "thing")

VERSION_2012: Final = "2012-10-17"
VERSION_2008: Final = "2008-10-17"
SUPPORTED_VERSIONS: Final[tuple[str, ...]] = (VERSION_2012, VERSION_2008)

# iot-policies: "The maximum size of a policy document is 2048 characters, excluding white space."
POLICY_MAX_CHARS: Final = 2048

# Decision.reason values.
ALLOWED: Final = "ALLOWED"
EXPLICIT_DENY: Final = "EXPLICIT_DENY"
NO_MATCHING_STATEMENT: Final = "NO_MATCHING_STATEMENT"
NO_POLICY_ATTACHED: Final = "NO_POLICY_ATTACHED"

_ALLOW: Final = "Allow"
_DENY: Final = "Deny"

_DOCUMENT_KEYS: Final = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS: Final = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)

_STRING_OPERATORS: Final = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)
_NEGATED_OPERATORS: Final = frozenset(
    {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike"}
)
_SUPPORTED_OPERATORS: Final = (*_STRING_OPERATORS, "Bool", "Null")
_OPERATOR_RE: Final = re.compile(
    r"(?:(?P<qualifier>ForAllValues|ForAnyValue):)?(?P<base>[A-Za-z]+?)(?P<if_exists>IfExists)?"
)
_FOR_ALL: Final = "ForAllValues"
_FOR_ANY: Final = "ForAnyValue"

# IAM requires "service:action" (or "*"); the characters IAM action names use, plus wildcards.
_ACTION_RE: Final = re.compile(r"\*|[A-Za-z0-9_*?-]+:[A-Za-z0-9_*?-]+")

# iot-policy-variables: "${*}", "${?}" and "${$}" are the literal characters.
_SPECIAL_VARIABLES: Final[Mapping[str, str]] = MappingProxyType({"*": "*", "?": "?", "$": "$"})

_THING_ATTRIBUTE_PREFIX: Final = "iot:connection.thing.attributes["


class PolicyError(BrokerError):
    """A policy document is malformed (AWS's ``MalformedPolicyException``).

    The message starts with "Policy document is malformed: " and names the offending element,
    e.g. ``Statement[1].Effect``.
    """


def _malformed(what: str) -> NoReturn:
    raise PolicyError(f"Policy document is malformed: {what}")


@dataclass(frozen=True)
class Statement:
    """One statement of a policy document, as written (variables not yet substituted).

    Attributes:
        effect: ``"Allow"`` or ``"Deny"``.
        actions: the ``Action`` patterns (or ``NotAction`` ones if ``not_action``); never empty.
        resources: the ``Resource`` patterns (or ``NotResource`` ones if ``not_resource``); never
            empty.
        conditions: operator name as written (e.g. ``"ForAllValues:StringEquals"``) -> condition
            key as written -> allowed values. ``Bool``/``Null`` values are ``"true"``/``"false"``;
            JSON booleans and numbers are stored as their JSON text.
        sid: the ``Sid``, if any.
        index: the statement's position in the ``Statement`` array (0 when it is a single object).
        not_action: the statement used ``NotAction``.
        not_resource: the statement used ``NotResource``.
    """

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]
    sid: str | None
    index: int
    not_action: bool = False
    not_resource: bool = False


@dataclass(frozen=True)
class PolicyDocument:
    """A parsed policy document.

    Attributes:
        version: ``"2012-10-17"`` or ``"2008-10-17"`` (the latter also when ``Version`` was absent);
            policy variables are substituted only under ``"2012-10-17"``.
        statements: the statements in document order.
    """

    version: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class NamedPolicy:
    """A policy attached to the requesting principal.

    Attributes:
        name: the policy name, used in ``Decision`` for diagnosis.
        document: the parsed document (its default version, for a versioned policy).
    """

    name: str
    document: PolicyDocument


# Read-only and empty: one shared copy, not one per request context (one per connection).
_NO_ATTRIBUTES: Mapping[str, tuple[str, ...]] = MappingProxyType({})
_NO_STRINGS: Mapping[str, str] = MappingProxyType({})


def _empty_attributes() -> Mapping[str, tuple[str, ...]]:
    return _NO_ATTRIBUTES


def _empty_strings() -> Mapping[str, str]:
    return _NO_STRINGS


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything policy variables and condition keys can refer to.

    Attributes:
        region: the endpoint's AWS region, e.g. ``"us-east-1"``.
        account_id: the 12-digit account ID.
        client_id: ``${iot:ClientId}`` / ``iot:ClientId``; None when the request has no MQTT
            client ID (the variable is then unresolved).
        thing_name: ``${iot:Connection.Thing.ThingName}``. Set it ONLY when the client ID equals
            the name of a thing attached to the presenting certificate (spec 6.3); None leaves the
            variable unresolved.
        thing_type_name: ``${iot:Connection.Thing.ThingTypeName}``; None if no thing or no type.
        thing_attributes: ``${iot:Connection.Thing.Attributes[name]}`` values by attribute name.
        is_attached: ``${iot:Connection.Thing.IsAttached}``; always resolves, to ``"true"`` or
            ``"false"``.
        certificate_subject: ``iot:Certificate.Subject.<Name>`` values by AWS attribute name
            (``CommonName``, ``Organization``, ...); see ``certificate_context``.
        certificate_issuer: ``iot:Certificate.Issuer.<Name>``, same names.
        certificate_san: ``iot:Certificate.SubjectAltName.<Name>`` (``DNSName``, ``IPAddress``,
            ``RFC822Name``, ``UniformResourceIdentifier``).
        connect_attributes: ``iot:ConnectAttributes`` of the CONNECT being authorized
            (``"PersistentConnect"``, ``"LastWill"``); empty for other requests.
        global_keys: AWS global condition keys and IAM policy variables of the caller, by
            lower-case name: for an IAM user ``aws:username``, ``aws:userid``,
            ``aws:principaltype``, ``aws:principalarn``, ``aws:principalaccount``
            (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
            Empty for certificates, so there they stay unresolved.
    """

    region: str
    account_id: str
    client_id: str | None = None
    thing_name: str | None = None
    thing_type_name: str | None = None
    thing_attributes: Mapping[str, str] = field(default_factory=_empty_strings)
    is_attached: bool = False
    certificate_subject: Mapping[str, tuple[str, ...]] = field(default_factory=_empty_attributes)
    certificate_issuer: Mapping[str, tuple[str, ...]] = field(default_factory=_empty_attributes)
    certificate_san: Mapping[str, tuple[str, ...]] = field(default_factory=_empty_attributes)
    connect_attributes: frozenset[str] = frozenset()
    global_keys: Mapping[str, tuple[str, ...]] = field(default_factory=_empty_attributes)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``evaluate``.

    Attributes:
        allowed: True only if some statement allows the request and none denies it.
        reason: ``ALLOWED``, ``EXPLICIT_DENY``, ``NO_MATCHING_STATEMENT`` or ``NO_POLICY_ATTACHED``.
        matched: (policy name, statement index, sid) of the statements that decided: every
            matching ``Deny`` for ``EXPLICIT_DENY``, every matching ``Allow`` for ``ALLOWED``,
            empty otherwise. Order: policy order, then statement order.
        details: one human sentence naming the action, the resource and why.
    """

    allowed: bool
    reason: str
    matched: tuple[tuple[str, int, str | None], ...]
    details: str


class CertificateContext(NamedTuple):
    """The certificate mappings of a ``RequestContext``, with AWS's attribute names."""

    subject: Mapping[str, tuple[str, ...]]
    issuer: Mapping[str, tuple[str, ...]]
    san: Mapping[str, tuple[str, ...]]


# ---------------------------------------------------------------------------------------------
# Parsing


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _malformed(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    _malformed(f"{name} is not valid JSON")


def parse_policy_document(text: str) -> PolicyDocument:
    """Parse and validate a policy document's JSON text.

    Args:
        text: the document, as given to CreatePolicy.

    Returns:
        The document. Everything ``evaluate`` needs has been validated, so evaluating it never
        raises.

    Raises:
        PolicyError: the text has more than ``POLICY_MAX_CHARS`` characters excluding white space;
            is not JSON (NaN/Infinity and duplicate keys included); is not an object; has an
            unknown element, a ``Principal``, an unsupported ``Version``, no or an empty
            ``Statement``; a statement lacks
            ``Effect``, has both or neither of ``Action``/``NotAction`` (``Resource``/
            ``NotResource``), an action not of the form ``service:action`` or ``*``, a resource
            that is neither ``*`` nor an ARN, an unsupported condition operator, or a
            ``Bool``/``Null`` value other than true/false. The message names the element.
    """
    size = sum(1 for ch in text if not ch.isspace())
    if size > POLICY_MAX_CHARS:
        _malformed(
            f"the document has {size} characters excluding white space; "
            f"AWS IoT allows at most {POLICY_MAX_CHARS}"
        )
    try:
        raw = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        _malformed(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if not isinstance(raw, dict):
        _malformed("the document must be a JSON object")
    unknown = sorted(set(raw) - _DOCUMENT_KEYS)
    if unknown:
        _malformed(f"unknown element {unknown[0]!r}; a policy has Version, Id and Statement")
    version = raw.get("Version", VERSION_2008)
    if version not in SUPPORTED_VERSIONS:
        _malformed(f"Version {version!r} is not supported; use {VERSION_2012!r}")
    if "Id" in raw and not isinstance(raw["Id"], str):
        _malformed("Id must be a string")
    if "Statement" not in raw:
        _malformed("Statement is required")
    body = raw["Statement"]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not body:
        _malformed("Statement must be an object or a non-empty array of objects")
    return PolicyDocument(
        version=version,
        statements=tuple(_parse_statement(item, i) for i, item in enumerate(body)),
    )


def _parse_statement(raw: object, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        _malformed(f"{where} must be an object")
    for principal in ("Principal", "NotPrincipal"):
        if principal in raw:
            _malformed(
                f"{where}.{principal} is not allowed: an AWS IoT policy applies to the "
                "certificate or identity it is attached to"
            )
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        _malformed(f"{where} has unknown element {unknown[0]!r}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        _malformed(f"{where}.Sid must be a string")
    if "Effect" not in raw:
        _malformed(f"{where}.Effect is required")
    effect = raw["Effect"]
    if effect not in (_ALLOW, _DENY):
        _malformed(f"{where}.Effect must be 'Allow' or 'Deny', not {effect!r}")
    actions, not_action = _either(raw, "Action", "NotAction", where)
    for action in actions:
        if not _ACTION_RE.fullmatch(action):
            _malformed(f"{where}: action {action!r} must be '*' or of the form 'iot:Action'")
    resources, not_resource = _either(raw, "Resource", "NotResource", where)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            _malformed(f"{where}: resource {resource!r} must be '*' or an ARN ('arn:...')")
    conditions = _parse_conditions(raw.get("Condition", {}), where)
    return Statement(
        effect=effect,
        actions=actions,
        resources=resources,
        conditions=conditions,
        sid=sid,
        index=index,
        not_action=not_action,
        not_resource=not_resource,
    )


def _either(
    raw: dict[str, Any], name: str, not_name: str, where: str
) -> tuple[tuple[str, ...], bool]:
    if (name in raw) == (not_name in raw):
        _malformed(f"{where} must have exactly one of {name} and {not_name}")
    key = name if name in raw else not_name
    value = raw[key]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        _malformed(f"{where}.{key} must be a string or a non-empty array of strings")
    return tuple(values), key == not_name


@dataclass(frozen=True)
class _Operator:
    qualifier: str | None
    base: str
    if_exists: bool


@lru_cache(maxsize=256)
def _parse_operator(name: str) -> _Operator:
    match = _OPERATOR_RE.fullmatch(name)
    if match is None or match["base"] not in _SUPPORTED_OPERATORS:
        _malformed(
            f"condition operator {name!r} is not supported; use one of "
            f"{', '.join(_SUPPORTED_OPERATORS)} (optionally ForAllValues:/ForAnyValue: and "
            "IfExists)"
        )
    operator = _Operator(match["qualifier"], match["base"], match["if_exists"] is not None)
    if operator.base == "Null" and (operator.qualifier or operator.if_exists):
        _malformed(f"condition operator {name!r}: Null takes no prefix and no IfExists")
    return operator


def _condition_value(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def _parse_conditions(raw: object, where: str) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    if not isinstance(raw, dict):
        _malformed(f"{where}.Condition must be an object")
    result: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for name, block in raw.items():
        operator = _parse_operator(name)
        if not isinstance(block, dict) or not block:
            _malformed(f"{where}.Condition.{name} must map condition keys to values")
        keys: dict[str, tuple[str, ...]] = {}
        for key, value in block.items():
            if ":" not in key:
                _malformed(f"{where}.Condition.{name}: key {key!r} must be 'service:key'")
            items = value if isinstance(value, list) else [value]
            values = [_condition_value(item) for item in items]
            strings = [v for v in values if v is not None]
            if len(strings) != len(values):
                _malformed(f"{where}.Condition.{name}.{key} values must be strings")
            if operator.base in ("Bool", "Null"):
                strings = [v.lower() for v in strings]
                if not all(v in ("true", "false") for v in strings):
                    _malformed(f"{where}.Condition.{name}.{key} must be true or false")
            keys[key] = tuple(strings)
        result[name] = MappingProxyType(keys)
    return MappingProxyType(result)


# ---------------------------------------------------------------------------------------------
# Patterns and variables


class _Wild(enum.Enum):
    STAR = "*"  # any run of characters, including none and including "/"
    ONE = "?"  # exactly one character


@dataclass(frozen=True)
class _Var:
    name: str


# A template is a sequence of tokens: one literal character, a wildcard or a variable. Binding the
# variables turns it into pieces: a wildcard, or a set of literal alternatives (one string for a
# literal character, one per value for a variable).
_Token = str | _Wild | _Var
_Piece = _Wild | tuple[str, ...]


def _wild(ch: str) -> str | _Wild:
    if ch == "*":
        return _Wild.STAR
    if ch == "?":
        return _Wild.ONE
    return ch


@lru_cache(maxsize=4096)
def _tokenize(template: str, variables: bool) -> tuple[_Token, ...]:
    """Split a pattern into literal characters, wildcards and (if ``variables``) variables.

    ``${name}`` is a variable; ``${*}``, ``${?}``, ``${$}`` are literal characters. A ``${``
    with no closing ``}`` is literal text.
    """
    tokens: list[_Token] = []
    i = 0
    while i < len(template):
        if variables and template.startswith("${", i):
            end = template.find("}", i + 2)
            if end != -1:
                name = template[i + 2 : end]
                special = _SPECIAL_VARIABLES.get(name)
                tokens.append(special if special is not None else _Var(name))
                i = end + 1
                continue
        tokens.append(_wild(template[i]))
        i += 1
    return tuple(tokens)


def _bind(tokens: tuple[_Token, ...], context: RequestContext) -> tuple[_Piece, ...] | None:
    """Substitute variables; None if any is unresolved.

    A variable becomes the set of its values, each matched as literal text, so a value's own
    ``*``, ``?`` or ``${...}`` never act as wildcards or variables (single pass).
    """
    pieces: list[_Piece] = []
    for token in tokens:
        if isinstance(token, _Var):
            values = _lookup(token.name, context)
            if not values:
                return None
            pieces.append(tuple(dict.fromkeys(values)))
        elif isinstance(token, _Wild):
            pieces.append(token)
        else:
            pieces.append((token,))
    return tuple(pieces)


def _literal(pieces: tuple[_Piece, ...], *, fold: bool = False) -> tuple[_Piece, ...]:
    """The same pattern with wildcards as plain characters (StringEquals), optionally casefolded."""
    result: list[_Piece] = []
    for piece in pieces:
        options = (piece.value,) if isinstance(piece, _Wild) else piece
        result.append(tuple(option.casefold() for option in options) if fold else options)
    return tuple(result)


def _match(pieces: Sequence[_Piece], text: str) -> bool:
    """Whether ``text`` matches ``pieces`` in full.

    Simulates the pattern as an automaton over the set of reachable positions in ``text``, so a
    pattern with many ``*`` or many multi-valued variables costs
    O(len(pieces) * len(text) * values), never exponential time.
    """
    end = len(text)
    positions = {0}
    for piece in pieces:
        if piece is _Wild.STAR:
            positions = set(range(min(positions), end + 1))
        elif piece is _Wild.ONE:
            positions = {p + 1 for p in positions if p < end}
        else:
            positions = {
                p + len(option) for p in positions for option in piece if text.startswith(option, p)
            }
        if not positions:
            return False
    return end in positions


@lru_cache(maxsize=1024)
def _action_pattern(pattern: str) -> tuple[_Piece, ...]:
    # IAM: action names are case-insensitive ("iot:publish" is "iot:Publish").
    return tuple(
        piece if isinstance(piece, _Wild) else (piece,) for piece in map(_wild, pattern.casefold())
    )


def _lookup(name: str, context: RequestContext) -> tuple[str, ...]:
    """Values of a policy variable / condition key; empty when missing (unresolved)."""
    if not name.isascii():  # every key is ASCII; also keeps lower() length-preserving
        return ()
    key = name.lower()
    if key.startswith(_THING_ATTRIBUTE_PREFIX) and key.endswith("]"):
        # thing-policy-variables: ${iot:Connection.Thing.Attributes[attributeName]}; attribute
        # names are case-sensitive in the registry.
        value = context.thing_attributes.get(name[len(_THING_ATTRIBUTE_PREFIX) : -1])
        return () if value is None else (value,)
    single: str | None
    if key == "iot:clientid":
        single = context.client_id
    elif key == "iot:connection.thing.thingname":
        single = context.thing_name
    elif key == "iot:connection.thing.thingtypename":
        single = context.thing_type_name
    elif key == "iot:connection.thing.isattached":
        single = "true" if context.is_attached else "false"
    elif key == "iot:connectattributes":
        return tuple(sorted(context.connect_attributes))
    else:
        values = context.global_keys.get(key)
        return values if values is not None else _certificate_lookup(key, context)
    return () if single is None else (single,)


def _certificate_lookup(key: str, context: RequestContext) -> tuple[str, ...]:
    # cert-policy-variables: iot:Certificate.Subject.<attr>, .Issuer.<attr>,
    # .SubjectAltName.<attr>, and ".List" condition keys for multi-valued attributes.
    for prefix, mapping in (
        ("iot:certificate.subject.", context.certificate_subject),
        ("iot:certificate.issuer.", context.certificate_issuer),
        ("iot:certificate.subjectaltname.", context.certificate_san),
    ):
        if key.startswith(prefix):
            attribute = key[len(prefix) :].removesuffix(".list")
            for aws_name, values in mapping.items():
                if aws_name.lower() == attribute:
                    return tuple(values)
            return ()
    return ()


# ---------------------------------------------------------------------------------------------
# Evaluation


def _resource_matches(
    patterns: tuple[str, ...], resource: str, context: RequestContext, variables: bool
) -> bool | None:
    """Whether any pattern matches; None if any pattern has an unresolved variable."""
    hit = False
    for pattern in patterns:
        pieces = _bind(_tokenize(pattern, variables), context)
        if pieces is None:
            return None
        hit = hit or _match(pieces, resource)
    return hit


def _positive_test(
    base: str, values: tuple[str, ...], context: RequestContext, variables: bool
) -> Callable[[str], bool] | None:
    """The un-negated test one request value must pass; None if a value is unresolved."""
    if base == "Bool":
        booleans = frozenset(values)
        return lambda value: value.lower() in booleans
    patterns: list[tuple[_Piece, ...]] = []
    for value in values:
        pieces = _bind(_tokenize(value, variables), context)
        if pieces is None:
            return None
        patterns.append(pieces)
    if base in ("StringLike", "StringNotLike"):
        return lambda value: any(_match(pattern, value) for pattern in patterns)
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        folded = [_literal(pattern, fold=True) for pattern in patterns]
        return lambda value: any(_match(pattern, value.casefold()) for pattern in folded)
    exact = [_literal(pattern) for pattern in patterns]
    return lambda value: any(_match(pattern, value) for pattern in exact)


def _condition_holds(
    operator: _Operator, request: tuple[str, ...], positive: Callable[[str], bool]
) -> bool:
    negated = operator.base in _NEGATED_OPERATORS
    if not request:
        # IAM "Condition operators": a missing key makes a condition false, but true for negated
        # operators; IfExists makes it true; ForAllValues over no values is vacuously true.
        if operator.if_exists or operator.qualifier == _FOR_ALL:
            return True
        if operator.qualifier == _FOR_ANY:
            return False
        return negated
    if operator.qualifier == _FOR_ALL:
        return all(positive(value) != negated for value in request)
    if operator.qualifier == _FOR_ANY:
        return any(positive(value) != negated for value in request)
    return any(positive(value) for value in request) != negated


def _conditions_hold(statement: Statement, context: RequestContext, variables: bool) -> bool:
    # IAM: operators are ANDed, keys within an operator are ANDed, values of a key are ORed.
    for name, block in statement.conditions.items():
        operator = _parse_operator(name)
        for key, values in block.items():
            request = _lookup(key, context)
            if operator.base == "Null":
                # "true": the key must be absent; "false": it must be present.
                if not any((value == "true") == (not request) for value in values):
                    return False
                continue
            positive = _positive_test(operator.base, values, context, variables)
            if positive is None or not _condition_holds(operator, request, positive):
                return False
    return True


def _applies(
    statement: Statement, action: str, resource: str, context: RequestContext, variables: bool
) -> bool:
    folded = action.casefold()
    named = any(_match(_action_pattern(pattern), folded) for pattern in statement.actions)
    if named == statement.not_action:
        return False
    hit = _resource_matches(statement.resources, resource, context, variables)
    if hit is None or hit == statement.not_resource:
        return False
    return _conditions_hold(statement, context, variables)


def _describe(policy: str, index: int, sid: str | None) -> str:
    where = f"policy {policy!r} Statement[{index}]"
    return f"{where} (Sid {sid!r})" if sid else where


def evaluate(
    policies: Sequence[NamedPolicy], action: str, resource: str, context: RequestContext
) -> Decision:
    """Decide whether the attached policies allow ``action`` on ``resource``.

    Every statement of every policy is considered. A statement matches when its action patterns
    match ``action`` (case-insensitively; inverted by ``NotAction``), its resource patterns match
    ``resource`` (case-sensitively, after substituting variables; inverted by ``NotResource``)
    and all its conditions hold; a statement with an unresolved variable never matches.
    Any matching ``Deny`` denies; otherwise any matching ``Allow`` allows; otherwise denied.

    Args:
        policies: the policies attached to the principal (any order; empty means none attached).
        action: the requested action, e.g. ``"iot:Publish"`` (any string; see ``ACTIONS``).
        resource: the concrete resource ARN (see ``resource_arn``); its characters are all
            literal, so ``*``, ``?``, ``+`` and ``#`` in it match only themselves.
        context: the request's variables and condition keys.

    Returns:
        The decision, with the deciding statements and a one-sentence explanation. Never raises
        for documents from ``parse_policy_document``.
    """
    subject = f"{action} on {resource}"
    if not policies:
        return Decision(
            False,
            NO_POLICY_ATTACHED,
            (),
            f"{subject} denied: the certificate has no policy attached",
        )
    allows: list[tuple[str, int, str | None]] = []
    denies: list[tuple[str, int, str | None]] = []
    for policy in policies:
        variables = policy.document.version == VERSION_2012
        for statement in policy.document.statements:
            if _applies(statement, action, resource, context, variables):
                found = (policy.name, statement.index, statement.sid)
                (denies if statement.effect == _DENY else allows).append(found)
    if denies:
        where = " and ".join(_describe(*found) for found in denies)
        return Decision(
            False, EXPLICIT_DENY, tuple(denies), f"{subject} denied: explicit Deny in {where}"
        )
    if allows:
        where = " and ".join(_describe(*found) for found in allows)
        return Decision(True, ALLOWED, tuple(allows), f"{subject} allowed by {where}")
    names = ", ".join(repr(name) for name in dict.fromkeys(p.name for p in policies))
    noun = "policy" if len(policies) == 1 else "policies"
    return Decision(
        False,
        NO_MATCHING_STATEMENT,
        (),
        f"{subject} denied: no statement in {noun} {names} allows it",
    )


def resource_arn(region: str, account_id: str, kind: str, name: str) -> str:
    """Build the resource ARN AWS IoT authorizes (``iot-action-resources``).

    Args:
        region: e.g. ``"us-east-1"``.
        account_id: the 12-digit account ID.
        kind: one of ``RESOURCE_KINDS``: ``client`` (client ID, for iot:Connect), ``topic`` (topic
            name: Publish, Receive, RetainPublish), ``topicfilter`` (the literal filter string:
            Subscribe), ``thing`` (thing name, or ``thing/shadowName`` for a named shadow).
        name: inserted verbatim, wildcards and ``$`` included.

    Returns:
        ``arn:aws:iot:<region>:<account_id>:<kind>/<name>``.

    Raises:
        ValueError: ``kind`` is not one of ``RESOURCE_KINDS``.
    """
    if kind not in RESOURCE_KINDS:
        raise ValueError(f"unknown resource kind {kind!r}; expected one of {RESOURCE_KINDS}")
    return f"arn:aws:iot:{region}:{account_id}:{kind}/{name}"


# cert-policy-variables: the Subject and Issuer attributes AWS exposes, by AWS name. (AWS lists
# no Locality variable.)
_NAME_ATTRIBUTES: Final[tuple[tuple[str, ObjectIdentifier], ...]] = (
    ("CommonName", NameOID.COMMON_NAME),
    ("Country", NameOID.COUNTRY_NAME),
    ("Organization", NameOID.ORGANIZATION_NAME),
    ("OrganizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("DistinguishedNameQualifier", NameOID.DN_QUALIFIER),
    ("State", NameOID.STATE_OR_PROVINCE_NAME),
    ("SerialNumber", NameOID.SERIAL_NUMBER),
    ("Title", NameOID.TITLE),
    ("Surname", NameOID.SURNAME),
    ("GivenName", NameOID.GIVEN_NAME),
    ("Initials", NameOID.INITIALS),
    ("Pseudonym", NameOID.PSEUDONYM),
    ("GenerationQualifier", NameOID.GENERATION_QUALIFIER),
)


def _name_attributes(name: x509.Name) -> Mapping[str, tuple[str, ...]]:
    result: dict[str, tuple[str, ...]] = {}
    for aws_name, oid in _NAME_ATTRIBUTES:
        values = tuple(
            attribute.value
            for attribute in name.get_attributes_for_oid(oid)
            if isinstance(attribute.value, str)
        )
        if values:
            result[aws_name] = values
    return MappingProxyType(result)


def certificate_context(cert: x509.Certificate) -> CertificateContext:
    """Build the ``certificate_*`` mappings of a ``RequestContext`` from a client certificate.

    Keys are AWS's attribute names (``cert-policy-variables``): Subject and Issuer use
    ``CommonName``, ``Country``, ``Organization``, ``OrganizationalUnit``,
    ``DistinguishedNameQualifier``, ``State``, ``SerialNumber``, ``Title``, ``Surname``,
    ``GivenName``, ``Initials``, ``Pseudonym``, ``GenerationQualifier``; the subject alternative
    name uses ``DNSName``, ``IPAddress`` (``str`` of the address), ``RFC822Name`` and
    ``UniformResourceIdentifier``. Values keep certificate order; absent attributes have no key.

    Args:
        cert: the certificate the client presented.

    Returns:
        (subject, issuer, san), each a read-only mapping.

    Raises:
        ValueError: from ``cryptography`` if the certificate's extensions cannot be parsed.
    """
    san: dict[str, tuple[str, ...]] = {}
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        pass
    else:
        names = extension.value
        for aws_name, values in (
            ("DNSName", tuple(names.get_values_for_type(x509.DNSName))),
            ("IPAddress", tuple(str(ip) for ip in names.get_values_for_type(x509.IPAddress))),
            ("RFC822Name", tuple(names.get_values_for_type(x509.RFC822Name))),
            (
                "UniformResourceIdentifier",
                tuple(names.get_values_for_type(x509.UniformResourceIdentifier)),
            ),
        ):
            if values:
                san[aws_name] = values
    return CertificateContext(
        subject=_name_attributes(cert.subject),
        issuer=_name_attributes(cert.issuer),
        san=MappingProxyType(san),
    )
