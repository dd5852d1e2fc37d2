"""AWS IoT SQL built-in functions.

Source: AWS IoT developer guide, "Functions"
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html); each function's
argument-type table is followed here. "Functions called with invalid arguments (for example,
wrong types, wrong number of arguments, and so on) return Undefined" ("Data types"), so no
function raises.

External functions (``aws_lambda``, ``get_dynamodb``, ``get_thing_shadow``, ``get_secret``,
``machinelearning_predict``, ``get_registry_data``) are not here: they are listed in
:data:`NOT_EMULATED`, refused at parse time unless the caller provides them.

Pure: the clock, UUIDs and random numbers come from the :class:`EvaluationContext`.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import math
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from aws_iot_mock.rules import sql_time
from aws_iot_mock.rules.sql_operators import arithmetic
from aws_iot_mock.rules.sql_values import (
    DECIMAL_CONTEXT,
    UNDEFINED,
    Value,
    from_double,
    parse_json_document,
    serialize,
    to_boolean,
    to_decimal,
    to_int_floor,
    to_int_nearest,
    to_string,
    whole_decimals_as_int,
)

__all__ = [
    "FUNCTIONS",
    "NOT_EMULATED",
    "EvaluationContext",
    "FunctionEnv",
    "FunctionSpec",
    "cast",
    "get_item",
]


def _new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """What the SQL functions know about a message besides its payload and topic.

    Attributes:
        timestamp_ms: the rules engine's clock reading, ``timestamp()`` ("as observed by the AWS
            IoT rules engine").
        client_id: ``clientid()``; None when the message did not come over MQTT (``"n/a"``).
        principal: ``principal()``: the certificate ID (64 hex digits) for X.509 clients; None
            gives Undefined.
        trace_id: ``traceid()``; None (not sent over MQTT) gives Undefined.
        account_id: ``accountid()``.
        source_ip: ``sourceip()``; None gives Undefined.
        new_uuid: returns the string for each ``newuuid()`` call.
        random: returns each ``rand()`` value in [0.0, 1.0).
        external: called as ``external(name, args)`` for the external functions the statement
            was parsed to allow (e.g. ``get_thing_shadow``); None makes them Undefined.
    """

    timestamp_ms: int = 0
    client_id: str | None = None
    principal: str | None = None
    trace_id: str | None = None
    account_id: str = "123456789012"
    source_ip: str | None = None
    new_uuid: Callable[[], str] = _new_uuid
    random: Callable[[], float] = random.random
    external: Callable[[str, Sequence[Value]], Value] | None = None


@dataclass(frozen=True, slots=True)
class FunctionEnv:
    """Everything a function may read besides its arguments.

    Attributes:
        context: the message's evaluation context.
        topic: the topic ``topic()`` reports.
        raw_payload: the payload bytes (``encode(*, 'base64')`` encodes them).
        sql_version: the rule's SQL version string (``sql_version()``).
        v2: True for SQL 2016-03-23 and later.
        star_args: for each argument, whether it was written ``*``.
    """

    context: EvaluationContext
    topic: str
    raw_payload: bytes
    sql_version: str
    v2: bool
    star_args: tuple[bool, ...]


Impl = Callable[[Sequence[Value], FunctionEnv], Value]


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A built-in function.

    Attributes:
        impl: computes the result from evaluated arguments.
        v2_only: "Supported by SQL version 2016-03-23 and later" (refused at parse for 2015-10-08).
        accepts_star: whether ``*`` may be an argument (``encode(*, 'base64')``).
    """

    impl: Impl
    v2_only: bool = False
    accepts_star: bool = False


_EXTERNAL_WHY = (
    "it calls another AWS service; the rules engine must provide it "
    "(parse(..., allow_external=...) and EvaluationContext.external)"
)

# AWS functions that parse on AWS but are not computed here, and why.
NOT_EMULATED: Final[dict[str, str]] = {
    "aws_lambda": _EXTERNAL_WHY,
    "get_dynamodb": _EXTERNAL_WHY,
    "get_thing_shadow": _EXTERNAL_WHY,
    "get_secret": _EXTERNAL_WHY,
    "machinelearning_predict": _EXTERNAL_WHY,
    "get_registry_data": _EXTERNAL_WHY,
    "md2": "no MD2 implementation is available (OpenSSL 3 dropped the algorithm)",
    "get_or_default": "its semantics are not in the documentation this emulator follows",
    "get_mqtt_property": "MQTT 5 message properties do not reach the SQL evaluator yet",
    "get_user_properties": "MQTT 5 user properties do not reach the SQL evaluator yet",
}


def _arity(args: Sequence[Value], *counts: int) -> bool:
    return len(args) in counts


# --------------------------------------------------------------------------------------------
# Numbers


def _number(value: Value) -> int | Decimal | None:
    """An Int stays Int; Decimals and numeric Strings become Decimal; else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return to_decimal(value)


def _double_function(function: Callable[[float], float]) -> Impl:
    """A math function computed "with double precision"; domain errors are Undefined."""

    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        if not _arity(args, 1):
            return UNDEFINED
        number = to_decimal(args[0])
        if number is None:
            return UNDEFINED
        try:
            return from_double(function(float(number)))
        except (ValueError, OverflowError):
            return UNDEFINED  # "Imaginary results are returned as Undefined"

    return impl


def _abs(args: Sequence[Value], env: FunctionEnv) -> Value:
    number = _number(args[0]) if _arity(args, 1) else None
    if number is None:
        return UNDEFINED
    return -number if number < 0 else number


def _sign(args: Sequence[Value], env: FunctionEnv) -> Value:
    number = _number(args[0]) if _arity(args, 1) else None
    if number is None:
        return UNDEFINED
    return (number > 0) - (number < 0)


def _rounding(mode: str) -> Impl:
    """ceil, floor, round: Int in, Int out; Decimals and numeric Strings rounded to an Int."""

    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        number = _number(args[0]) if _arity(args, 1) else None
        if number is None:
            return UNDEFINED
        if isinstance(number, int):
            return number
        if not number.is_finite():
            return UNDEFINED
        return int(number.to_integral_value(rounding=mode))

    return impl


def _trunc(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``trunc(2.3123, 2)`` = 2.31; places clamped to 0..34; trailing zeros stripped."""
    if not _arity(args, 2):
        return UNDEFINED
    number, places = _number(args[0]), to_int_floor(args[1])
    if number is None or places is None or isinstance(args[1], str):
        return UNDEFINED
    if isinstance(number, int):
        return number
    places = min(max(places, 0), 34)
    try:
        with decimal.localcontext(DECIMAL_CONTEXT):
            cut = number.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_DOWN)
    except decimal.DecimalException:
        return UNDEFINED
    if cut == cut.to_integral_value():
        return int(cut)
    return cut.normalize()


def _double_binary(function: Callable[[float, float], float]) -> Impl:
    """A two-argument math function computed "with double precision" (power, atan2)."""

    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        if not _arity(args, 2):
            return UNDEFINED
        first, second = to_decimal(args[0]), to_decimal(args[1])
        if first is None or second is None:
            return UNDEFINED
        try:
            return from_double(function(float(first), float(second)))
        except (ValueError, OverflowError):
            return UNDEFINED

    return impl


def _remainder(args: Sequence[Value], env: FunctionEnv) -> Value:
    """Mod / remainder: "You can also use "%" as an infix operator for the same"."""
    return arithmetic("%", args[0], args[1]) if _arity(args, 2) else UNDEFINED


def _bitwise(combine: Callable[[int, int], int]) -> Impl:
    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        if not _arity(args, 2):
            return UNDEFINED
        a, b = to_int_floor(args[0]), to_int_floor(args[1])
        return UNDEFINED if a is None or b is None else combine(a, b)

    return impl


def _bitnot(args: Sequence[Value], env: FunctionEnv) -> Value:
    # AWS's page shows bitnot(13) = 2; a bitwise NOT of 13 is -14 (two's complement), which is
    # what this returns (UNCONFIRMED which one AWS computes).
    number = to_int_floor(args[0]) if _arity(args, 1) else None
    return UNDEFINED if number is None else ~number


def _rand(args: Sequence[Value], env: FunctionEnv) -> Value:
    return from_double(env.context.random()) if _arity(args, 0) else UNDEFINED


# --------------------------------------------------------------------------------------------
# Strings


def _strings(args: Sequence[Value]) -> list[str] | None:
    converted = [to_string(arg) for arg in args]
    if any(text is None for text in converted):
        return None
    return converted  # type: ignore[return-value]


def _string_function(function: Callable[[str], Value]) -> Impl:
    """One String argument; other types converted by the standard rules (Null -> Undefined)."""

    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        text = to_string(args[0]) if _arity(args, 1) else None
        return UNDEFINED if text is None else function(text)

    return impl


def _concat(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``concat([1, 2, 3], "hello", [4, 5, 6])`` = ``[1, 2, 3, "hello", 4, 5, 6]``."""
    if not args:
        return UNDEFINED
    if len(args) == 1:
        return args[0]
    if any(isinstance(arg, list) for arg in args):
        joined: list[Value] = []
        for arg in args:
            if isinstance(arg, list):
                joined.extend(arg)
            else:
                joined.append(arg)
        return joined
    if not any(isinstance(arg, str) for arg in args):
        return UNDEFINED
    texts = _strings(args)
    return UNDEFINED if texts is None else "".join(texts)


# "Removes all leading white space (tabs and spaces)".
_WHITESPACE: Final = " \t"


def _pad(left: bool) -> Impl:
    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        if not _arity(args, 2):
            return UNDEFINED
        text, count = to_string(args[0]), to_int_floor(args[1])
        if text is None or count is None:
            return UNDEFINED
        padding = " " * min(max(count, 0), 1000)  # "set to the nearest valid value (0 or 1000)"
        return padding + text if left else text + padding

    return impl


def _substring(args: Sequence[Value], env: FunctionEnv) -> Value:
    """0-based, end exclusive; indices clamped to the string; start >= end gives ""."""
    if not _arity(args, 2, 3):
        return UNDEFINED
    text = to_string(args[0])
    bounds = [to_int_floor(arg) for arg in args[1:]]
    if text is None or any(bound is None for bound in bounds):
        return UNDEFINED
    start = min(max(bounds[0] or 0, 0), len(text))
    if len(bounds) == 1:
        return text[start:]
    end = min(max(bounds[1] or 0, 0), len(text))
    return text[start:end] if start < end else ""


def _indexof(args: Sequence[Value], env: FunctionEnv) -> Value:
    # The result when the substring is absent is not documented: -1 here (UNCONFIRMED).
    texts = _strings(args) if _arity(args, 2) else None
    return UNDEFINED if texts is None else texts[0].find(texts[1])


def _affix(starts: bool) -> Impl:
    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        texts = _strings(args) if _arity(args, 2) else None
        if texts is None:
            return UNDEFINED  # "If either argument is Null or Undefined, the result is Undefined"
        return texts[0].startswith(texts[1]) if starts else texts[0].endswith(texts[1])

    return impl


def _replace(args: Sequence[Value], env: FunctionEnv) -> Value:
    texts = _strings(args) if _arity(args, 3) else None
    return UNDEFINED if texts is None else texts[0].replace(texts[1], texts[2])


def _regex(pattern: str) -> re.Pattern[str] | None:
    """Compile a (Java-style) regular expression; None when it is not valid."""
    try:
        return re.compile(pattern)
    except re.error:
        return None


_JAVA_REPLACEMENT_TOKEN: Final = re.compile(r"\\(.)|\$([0-9]+)|\$\{([A-Za-z][A-Za-z0-9]*)\}|(\$)")


def _java_replacement(replacement: str) -> str | None:
    r"""Java's replacement syntax (``$1``, ``${name}``, ``\$``) in Python's (``\g<1>``).

    A lone ``$`` is invalid in Java ("Illegal group reference"): None.
    """
    parts: list[str] = []
    position = 0
    for match in _JAVA_REPLACEMENT_TOKEN.finditer(replacement):
        parts.append(replacement[position : match.start()].replace("\\", "\\\\"))
        escaped, number, name, lone = match.groups()
        if lone is not None:
            return None
        if escaped is not None:
            parts.append(escaped.replace("\\", "\\\\"))
        else:
            parts.append(f"\\g<{number if number is not None else name}>")
        position = match.end()
    parts.append(replacement[position:].replace("\\", "\\\\"))
    return "".join(parts)


def _regexp_matches(args: Sequence[Value], env: FunctionEnv) -> Value:
    """True if the string *contains* a match ("contains a match for the regular expression")."""
    texts = _strings(args) if _arity(args, 2) else None
    pattern = _regex(texts[1]) if texts is not None else None
    if texts is None or pattern is None:
        return UNDEFINED
    return pattern.search(texts[0]) is not None


def _regexp_replace(args: Sequence[Value], env: FunctionEnv) -> Value:
    texts = _strings(args) if _arity(args, 3) else None
    pattern = _regex(texts[1]) if texts is not None else None
    if texts is None or pattern is None:
        return UNDEFINED
    replacement = _java_replacement(texts[2])
    if replacement is None:
        return UNDEFINED
    try:
        return pattern.sub(replacement, texts[0])
    except (re.error, IndexError):
        return UNDEFINED  # a reference to a group the pattern does not have


def _regexp_substr(args: Sequence[Value], env: FunctionEnv) -> Value:
    # No match is not documented: Undefined here (UNCONFIRMED).
    texts = _strings(args) if _arity(args, 2) else None
    pattern = _regex(texts[1]) if texts is not None else None
    if texts is None or pattern is None:
        return UNDEFINED
    match = pattern.search(texts[0])
    return UNDEFINED if match is None else match.group(0)


def _chr(args: Sequence[Value], env: FunctionEnv) -> Value:
    code = to_int_floor(args[0]) if _arity(args, 1) else None
    if code is None or isinstance(args[0], bool) or not 0 <= code <= 127:
        return UNDEFINED  # "If the argument is not a valid ASCII value, the result is Undefined"
    return chr(code)


def _hash(algorithm: str) -> Impl:
    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        text = to_string(args[0]) if _arity(args, 1) else None
        if text is None:
            return UNDEFINED
        return hashlib.new(algorithm, text.encode("utf-8")).hexdigest()

    return impl


def _encode(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``encode(value, 'base64')``: ``*`` is the raw payload, anything else its String.

    "You can specify * to encode the entire payload, regardless of whether it's in JSON format.
    If you supply an expression, the result of the evaluation is converted to a string before it
    is encoded."
    """
    if not _arity(args, 2) or args[1] != "base64":
        return UNDEFINED
    if env.star_args[0]:
        data = env.raw_payload
    else:
        text = to_string(args[0])
        if text is None:
            return UNDEFINED
        data = text.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _decode(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``decode(value, 'base64')``: a JSON document gives its value, other text a String.

    "The function returns NULL if the string cannot be decoded"; decoded bytes that are not
    UTF-8 text cannot be a String and give Null too.
    """
    if not _arity(args, 2) or args[1] != "base64":
        return UNDEFINED
    text = to_string(args[0])
    if text is None:
        return UNDEFINED
    try:
        data = base64.b64decode(text, validate=True)
        decoded = data.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    document = parse_json_document(decoded, whole_as_int=env.v2)
    return decoded if document is UNDEFINED else document


# --------------------------------------------------------------------------------------------
# Collections, types, context


def get_item(collection: Value, key: Value) -> Value:
    """``get(collection, key)``: Array or String by 0-based index, Object by String key."""
    if isinstance(collection, (list, str)):
        index = to_int_nearest(key)
        if index is None or not 0 <= index < len(collection):
            return UNDEFINED
        return collection[index]
    if isinstance(collection, dict) and isinstance(key, str):
        return collection.get(key, UNDEFINED)  # "no conversion is applied"
    return UNDEFINED


def _get(args: Sequence[Value], env: FunctionEnv) -> Value:
    return get_item(args[0], args[1]) if _arity(args, 2) else UNDEFINED


def _is_null(args: Sequence[Value], env: FunctionEnv) -> Value:
    return args[0] is None if _arity(args, 1) else UNDEFINED


def _is_undefined(args: Sequence[Value], env: FunctionEnv) -> Value:
    return args[0] is UNDEFINED if _arity(args, 1) else UNDEFINED


def _nanvl(args: Sequence[Value], env: FunctionEnv) -> Value:
    """The second argument when the first is Undefined, Null or a NaN Decimal."""
    if not _arity(args, 2):
        return UNDEFINED
    first = args[0]
    if first is UNDEFINED or first is None or (isinstance(first, Decimal) and first.is_nan()):
        return args[1]
    return first


def _length(args: Sequence[Value], env: FunctionEnv) -> Value:
    text = to_string(args[0]) if _arity(args, 1) else None
    return UNDEFINED if text is None else len(text)


def _numbytes(args: Sequence[Value], env: FunctionEnv) -> Value:
    text = to_string(args[0]) if _arity(args, 1) else None
    return UNDEFINED if text is None else len(text.encode("utf-8"))


def _transform(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``transform('enrichArray', object, array)``: each element gets the object's attributes.

    Any other mode is Undefined; so is a result over 128 KiB ("The array returned by this
    function is limited to 128 KiB"; what AWS does over the limit is UNCONFIRMED).
    """
    if not _arity(args, 3) or args[0] != "enrichArray":
        return UNDEFINED
    attributes, elements = args[1], args[2]
    if not isinstance(attributes, dict) or not isinstance(elements, list):
        return UNDEFINED
    if not all(isinstance(element, dict) for element in elements):
        return UNDEFINED
    result: list[Value] = [{**element, **attributes} for element in elements]  # type: ignore[dict-item]
    if len(serialize(result).encode("utf-8")) > 128 * 1024:
        return UNDEFINED
    return result


def _topic(args: Sequence[Value], env: FunctionEnv) -> Value:
    """``topic()``: the whole topic; ``topic(n)``: its n-th level, 1-based (else Undefined)."""
    if not args:
        return env.topic
    index = to_int_nearest(args[0]) if _arity(args, 1) else None
    levels = env.topic.split("/")
    if index is None or not 1 <= index <= len(levels):
        return UNDEFINED
    return levels[index - 1]


def _context_value(read: Callable[[EvaluationContext], Value]) -> Impl:
    def impl(args: Sequence[Value], env: FunctionEnv) -> Value:
        if args:
            return UNDEFINED
        value = read(env.context)
        return UNDEFINED if value is None else value

    return impl


def _sql_version(args: Sequence[Value], env: FunctionEnv) -> Value:
    return env.sql_version if not args else UNDEFINED


def _parse_time(args: Sequence[Value], env: FunctionEnv) -> Value:
    if not _arity(args, 2, 3):
        return UNDEFINED
    texts = [to_string(args[0])] + ([to_string(args[2])] if len(args) == 3 else [])
    millis = to_int_floor(args[1])
    if any(text is None for text in texts) or millis is None:
        return UNDEFINED
    zone = texts[1] if len(texts) == 2 else "UTC"
    assert texts[0] is not None and zone is not None
    result = sql_time.format_joda(texts[0], millis, zone)
    return UNDEFINED if result is None else result


def _time_to_epoch(args: Sequence[Value], env: FunctionEnv) -> Value:
    texts = _strings(args) if _arity(args, 2) else None
    if texts is None:
        return UNDEFINED
    result = sql_time.parse_to_epoch_ms(texts[0], texts[1])
    return UNDEFINED if result is None else result


# --------------------------------------------------------------------------------------------
# cast()


def _cast_boolean(value: Value) -> Value:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return value != 0  # "0 = False, any_nonzero_value = True"
    truth = to_boolean(value)
    return UNDEFINED if truth is None else truth


def cast(value: Value, target: str, v2: bool) -> Value:
    """``cast(value as Type)`` ("Casting rules", Functions page).

    Args:
        value: the operand.
        target: ``"String"``, ``"Int"``, ``"Double"``, ``"Decimal"`` or ``"Boolean"``.
        v2: SQL 2016-03-23, where whole-number Decimal results are Ints.
    """
    if target == "String":
        text = to_string(value) if not isinstance(value, bytes) else None
        return UNDEFINED if text is None else text
    if target == "Boolean":
        return _cast_boolean(value)
    # Booleans cast to numbers: "true = 1.0, false = 0.0".
    number = (1 if value else 0) if isinstance(value, bool) else _number(value)
    if number is None:
        return UNDEFINED
    if target == "Int":
        if isinstance(number, int):
            return number
        if not number.is_finite():
            return UNDEFINED
        return int(number.to_integral_value(rounding=decimal.ROUND_FLOOR))  # "rounded down"
    if target == "Double":
        result = from_double(float(number))
    else:
        result = Decimal(number) if isinstance(number, int) else number
    if isinstance(result, Decimal) and v2:
        return whole_decimals_as_int(result)
    return result


# --------------------------------------------------------------------------------------------
# The table


def _log10(number: float) -> float:
    return math.log10(number)


def _ln(number: float) -> float:
    return math.log(number)


FUNCTIONS: Final[dict[str, FunctionSpec]] = {
    "abs": FunctionSpec(_abs),
    "accountid": FunctionSpec(_context_value(lambda context: context.account_id)),
    "acos": FunctionSpec(_double_function(math.acos)),
    "asin": FunctionSpec(_double_function(math.asin)),
    "atan": FunctionSpec(_double_function(math.atan)),
    # Java's Math.atan2(y, x) argument order: atan2(1, 0) = 1.5707963267948966.
    "atan2": FunctionSpec(_double_binary(math.atan2)),
    "bitand": FunctionSpec(_bitwise(lambda a, b: a & b)),
    "bitor": FunctionSpec(_bitwise(lambda a, b: a | b)),
    "bitxor": FunctionSpec(_bitwise(lambda a, b: a ^ b)),
    "bitnot": FunctionSpec(_bitnot),
    "ceil": FunctionSpec(_rounding(decimal.ROUND_CEILING)),
    "chr": FunctionSpec(_chr),
    "clientid": FunctionSpec(
        _context_value(lambda context: "n/a" if context.client_id is None else context.client_id)
    ),
    "concat": FunctionSpec(_concat),
    "cos": FunctionSpec(_double_function(math.cos)),
    "cosh": FunctionSpec(_double_function(math.cosh)),
    "decode": FunctionSpec(_decode, v2_only=True),
    "encode": FunctionSpec(_encode, v2_only=True, accepts_star=True),
    "endswith": FunctionSpec(_affix(starts=False)),
    "exp": FunctionSpec(_double_function(math.exp)),
    "floor": FunctionSpec(_rounding(decimal.ROUND_FLOOR)),
    "get": FunctionSpec(_get),
    "indexof": FunctionSpec(_indexof, v2_only=True),
    "isnull": FunctionSpec(_is_null),
    "isundefined": FunctionSpec(_is_undefined, v2_only=True),
    "length": FunctionSpec(_length, v2_only=True),
    "ln": FunctionSpec(_double_function(_ln)),
    "log": FunctionSpec(_double_function(_log10)),
    "lower": FunctionSpec(_string_function(str.lower)),
    "lpad": FunctionSpec(_pad(left=True)),
    "ltrim": FunctionSpec(_string_function(lambda text: text.lstrip(_WHITESPACE))),
    "md5": FunctionSpec(_hash("md5")),
    "mod": FunctionSpec(_remainder),
    "nanvl": FunctionSpec(_nanvl),
    "newuuid": FunctionSpec(_context_value(lambda context: context.new_uuid())),
    "numbytes": FunctionSpec(_numbytes, v2_only=True),
    "parse_time": FunctionSpec(_parse_time, v2_only=True),
    "power": FunctionSpec(_double_binary(math.pow)),
    "principal": FunctionSpec(_context_value(lambda context: context.principal)),
    "rand": FunctionSpec(_rand),
    "regexp_matches": FunctionSpec(_regexp_matches),
    "regexp_replace": FunctionSpec(_regexp_replace),
    "regexp_substr": FunctionSpec(_regexp_substr),
    "remainder": FunctionSpec(_remainder),
    "replace": FunctionSpec(_replace),
    "round": FunctionSpec(_rounding(decimal.ROUND_HALF_UP)),
    "rpad": FunctionSpec(_pad(left=False)),
    "rtrim": FunctionSpec(_string_function(lambda text: text.rstrip(_WHITESPACE))),
    "sha1": FunctionSpec(_hash("sha1")),
    "sha224": FunctionSpec(_hash("sha224")),
    "sha256": FunctionSpec(_hash("sha256")),
    "sha384": FunctionSpec(_hash("sha384")),
    "sha512": FunctionSpec(_hash("sha512")),
    "sign": FunctionSpec(_sign),
    "sin": FunctionSpec(_double_function(math.sin)),
    "sinh": FunctionSpec(_double_function(math.sinh)),
    "sourceip": FunctionSpec(_context_value(lambda context: context.source_ip)),
    "sql_version": FunctionSpec(_sql_version),
    "sqrt": FunctionSpec(_double_function(math.sqrt)),
    "startswith": FunctionSpec(_affix(starts=True)),
    "substring": FunctionSpec(_substring),
    "tan": FunctionSpec(_double_function(math.tan)),
    "tanh": FunctionSpec(_double_function(math.tanh)),
    "time_to_epoch": FunctionSpec(_time_to_epoch, v2_only=True),
    "timestamp": FunctionSpec(_context_value(lambda context: context.timestamp_ms)),
    "topic": FunctionSpec(_topic),
    "traceid": FunctionSpec(_context_value(lambda context: context.trace_id)),
    "transform": FunctionSpec(_transform, v2_only=True),
    "trim": FunctionSpec(_string_function(lambda text: text.strip(_WHITESPACE))),
    "trunc": FunctionSpec(_trunc),
    "upper": FunctionSpec(_string_function(str.upper)),
}
