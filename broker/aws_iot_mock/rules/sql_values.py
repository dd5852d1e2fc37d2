"""AWS IoT SQL data types, the standard conversions between them, and JSON (de)serialization.

Source: AWS IoT developer guide, "Data types"
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-data-types.html).

Python representation of each AWS IoT SQL type:

=========  ===========================================================================
Int        ``int`` (never ``bool``)
Decimal    ``decimal.Decimal`` computed in :data:`DECIMAL_CONTEXT` (34 digits, E-999..E999)
Boolean    ``bool``
String     ``str``
Array      ``list``
Object     ``dict`` with ``str`` keys (insertion ordered)
Null       ``None``
Undefined  :data:`UNDEFINED`
=========  ===========================================================================

A non-JSON payload selected with ``*`` is ``bytes`` ("If the message payload is not in JSON
format, ``*`` returns the entire message payload as raw bytes", "JSON extensions",
https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-json.html); ``bytes`` is no SQL type
of its own and converts to nothing but a (UTF-8) String.

Pure: no I/O.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from decimal import Decimal
from typing import Final, TypeAlias, Union

__all__ = [
    "DECIMAL_CONTEXT",
    "UNDEFINED",
    "Undefined",
    "Value",
    "from_double",
    "is_number",
    "parse_json_document",
    "serialize",
    "serialize_payload",
    "to_boolean",
    "to_decimal",
    "to_int_floor",
    "to_int_nearest",
    "to_string",
    "type_name",
    "whole_decimals_as_int",
]


class Undefined:
    """The type of :data:`UNDEFINED`: AWS IoT SQL's "not a value".

    "Internally, the SQL language treats Undefined as a value, but it isn't representable in
    JSON"; object members whose value is Undefined are omitted on serialization.
    """

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        """The one instance."""
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        """The constant's name."""
        return "UNDEFINED"

    def __bool__(self) -> bool:
        """Undefined is falsy, like None."""
        return False


UNDEFINED: Final = Undefined()

Value: TypeAlias = Union[  # noqa: UP007 - a recursive alias needs the Union spelling
    bool, int, Decimal, str, bytes, list["Value"], dict[str, "Value"], Undefined, None
]

# "A Decimal with a precision of 34 digits, with a minimum non-zero magnitude of 1E-999 and a
# maximum magnitude 9.999...E999" (Data types). Traps turn overflow and invalid operations into
# exceptions, which the evaluator maps to Undefined.
DECIMAL_CONTEXT: Final = decimal.Context(
    prec=34,
    Emax=999,
    Emin=-999,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

# "AWS IoT attempts to parse strings matching the regular expression:
# ^-?\d+(\.\d+)?((?i)E-?\d+)?$" (Data types, "To decimal").
_DECIMAL_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?")

# Whole-number Decimals outside this range stay Decimal (an Int holds "34 digits maximum").
_INT_LIMIT: Final = 10**34


def type_name(value: Value) -> str:
    """The AWS IoT SQL type name of ``value`` (``"Int"``, ``"Decimal"``, ... ``"Undefined"``)."""
    if value is UNDEFINED:
        return "Undefined"
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, Decimal):
        return "Decimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return "Binary"


def is_number(value: Value) -> bool:
    """True for Int and Decimal values (not Boolean)."""
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def whole_decimals_as_int(value: Decimal) -> int | Decimal:
    """SQL 2016-03-23's number rule: a whole-number Decimal such as ``10.0`` becomes Int ``10``.

    "With SQL V2 (2016-03-23), numeric values that are whole numbers, such as 10.0, are processed
    as an Int value (10) instead of the expected Decimal value (10.0)" (Data types).
    """
    if value.is_finite() and value == value.to_integral_value() and abs(value) < _INT_LIMIT:
        return int(value)
    return value


def to_decimal(value: Value) -> Decimal | None:
    """The standard conversion to Decimal; None when the value does not convert.

    Int converts exactly, a Decimal is itself, a String converts when it matches AWS's number
    pattern; Boolean, Array, Object, Null, Undefined and binary do not convert ("To decimal").
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_STRING.fullmatch(value):
        try:
            return DECIMAL_CONTEXT.create_decimal(value)
        except decimal.DecimalException:
            return None
    return None


def to_int_floor(value: Value) -> int | None:
    """Conversion to Int that rounds Decimals and numeric Strings down (toward -infinity).

    The rule functions state for Int arguments ("All non-Int numbers are rounded down to the
    nearest Int", e.g. ``bitand``, ``chr``, ``lpad``, ``cast(... as Int)``).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = to_decimal(value)
    if number is None or not number.is_finite():
        return None
    return int(number.to_integral_value(rounding=decimal.ROUND_FLOOR))


def to_int_nearest(value: Value) -> int | None:
    """The implicit conversion to Int ("To int"): Decimal to the nearest Int, String truncated.

    "Decimal: The source value rounded to the nearest Int"; "String: ... converts the String to a
    Decimal, and then truncates the decimal places of that Decimal to make an Int".
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value.to_integral_value(rounding=decimal.ROUND_HALF_UP))
    number = to_decimal(value)
    if number is None or not number.is_finite():
        return None
    return int(number.to_integral_value(rounding=decimal.ROUND_DOWN))


def to_boolean(value: Value) -> bool | None:
    """The standard conversion to Boolean; None when the value does not convert.

    "String: "true"=True and "false"=False (case insensitive). Other string values are
    Undefined"; every other type but Boolean is Undefined ("To Boolean").
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def decimal_text(value: Decimal) -> str:
    """A Decimal as text ("possibly in scientific notation", "To string")."""
    return str(value)


def to_string(value: Value) -> str | None:
    r"""The standard conversion to String; None when the value does not convert.

    Int and Decimal print as numbers, Booleans as ``true``/``false``, Arrays and Objects as
    compact JSON (``upper(["hello"])`` = ``"[\\"HELLO\\"]"``); Null and Undefined do not convert
    ("To string"). Binary payload bytes convert when they are UTF-8.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, (list, dict)):
        return serialize(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def from_double(number: float) -> int | Decimal | Undefined:
    """A Decimal "with double precision" from a float result; NaN and infinities are Undefined."""
    if math.isnan(number) or math.isinf(number):
        return UNDEFINED
    return Decimal(repr(number))


def _plain(value: Value) -> object:
    """``value`` as plain JSON-able Python data: Undefined members and elements dropped."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not UNDEFINED}
    if isinstance(value, list):
        return [_plain(item) for item in value if item is not UNDEFINED]
    return value


def _dumps(data: object) -> str:
    """Compact JSON with Decimals written as their exact text (json has no raw-number hook)."""
    if isinstance(data, Decimal):
        return decimal_text(data) if data.is_finite() else "null"
    if isinstance(data, dict):
        members = ",".join(
            f"{json.dumps(key, ensure_ascii=False)}:{_dumps(item)}" for key, item in data.items()
        )
        return "{" + members + "}"
    if isinstance(data, list):
        return "[" + ",".join(_dumps(item) for item in data) + "]"
    return json.dumps(data, ensure_ascii=False)


def serialize(value: Value) -> str:
    """``value`` as compact JSON text; Undefined object members and array elements are omitted.

    "{"foo":null, "bar":undefined} is serialized to JSON as: {"foo":null}" and "Undefined is
    converted to an empty string when serialized by itself" (Data types). Binary bytes inside a
    structure are not representable and are omitted like Undefined.
    """
    if value is UNDEFINED:
        return ""
    return _dumps(_plain(_drop_binary(value)))


def _drop_binary(value: Value) -> Value:
    if isinstance(value, bytes):
        return UNDEFINED
    if isinstance(value, dict):
        return {key: _drop_binary(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_drop_binary(item) for item in value]
    return value


def serialize_payload(value: Value) -> bytes:
    """The outgoing payload for a SQL result: raw bytes pass through, the rest is UTF-8 JSON."""
    if isinstance(value, bytes):
        return value
    return serialize(value).encode("utf-8")


def parse_json_document(text: str | bytes, *, whole_as_int: bool) -> Value:
    """Parse JSON text into SQL values; :data:`UNDEFINED` when it is not JSON.

    Numbers with a fraction or exponent become Decimals (34 digits), integers Ints; with
    ``whole_as_int`` (SQL 2016-03-23) whole-number decimals become Ints. ``NaN`` and
    ``Infinity`` are not JSON and are refused. Nesting too deep for the parser is refused too.
    """

    def parse_float(token: str) -> int | Decimal:
        number = DECIMAL_CONTEXT.create_decimal(token)
        return whole_decimals_as_int(number) if whole_as_int else number

    def refuse_constant(token: str) -> object:
        raise ValueError(token)

    try:
        parsed: Value = json.loads(text, parse_float=parse_float, parse_constant=refuse_constant)
    except (ValueError, RecursionError, decimal.DecimalException):
        return UNDEFINED
    return parsed
