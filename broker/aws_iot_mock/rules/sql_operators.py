"""AWS IoT SQL operators: ``AND OR NOT = <> < <= > >= + - * / %``.

Source: AWS IoT developer guide, "Operators"
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-operators.html). Each function
returns :data:`~aws_iot_mock.rules.sql_values.UNDEFINED` where AWS's tables say "Undefined".

Pure: no I/O.
"""

from __future__ import annotations

import decimal
import operator
from decimal import Decimal
from typing import Final

from aws_iot_mock.rules.sql_values import (
    DECIMAL_CONTEXT,
    UNDEFINED,
    Value,
    is_number,
    to_boolean,
    to_decimal,
    to_string,
)

__all__ = ["arithmetic", "compare", "equals", "logic"]


def equals(left: Value, right: Value) -> bool | None:
    """``=``: None (Undefined) when either side is Undefined; False on mismatched types.

    Int and Decimal compare as numbers; Arrays item by item in order; Objects by keys and
    values, order unimportant. ``Null = Null`` is true (``Null <> Null`` is documented False).
    """
    if left is UNDEFINED or right is UNDEFINED:
        return None
    if is_number(left) and is_number(right):
        assert isinstance(left, (int, Decimal)) and isinstance(right, (int, Decimal))
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        assert isinstance(right, list)
        if len(left) != len(right):
            return False
        return all(equals(a, b) is True for a, b in zip(left, right, strict=True))
    if isinstance(left, dict):
        assert isinstance(right, dict)
        if left.keys() != right.keys():
            return False
        return all(equals(value, right[key]) is True for key, value in left.items())
    return left == right


_ORDERING: Final = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(op: str, left: Value, right: Value) -> Value:
    """``= <> < <= > >=``: Boolean, or Undefined per the operator tables."""
    if op == "=":
        result = equals(left, right)
        return UNDEFINED if result is None else result
    if op == "<>":
        result = equals(left, right)
        return UNDEFINED if result is None else not result
    # "Both operands are converted to a Decimal, and then compared"; anything that does not
    # convert (Boolean, Null, non-numeric String, ...) gives Undefined.
    a, b = to_decimal(left), to_decimal(right)
    if a is None or b is None:
        return UNDEFINED
    return bool(_ORDERING[op](a, b))


def logic(op: str, left: Value, right: Value) -> Value:
    """AND / OR on Booleans or "true"/"false" Strings; any other operand gives Undefined."""
    a, b = to_boolean(left), to_boolean(right)
    if a is None or b is None:
        return UNDEFINED
    return (a and b) if op == "and" else (a or b)


def _int_quotient(a: int, b: int) -> int:
    """Integer division truncating toward zero (Java's ``/`` on Int)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


_DECIMAL_OPERATIONS: Final = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,  # Decimal's % takes the dividend's sign, like Java's remainder
}


def _int_arithmetic(op: str, left: int, right: int) -> Value:
    """Int with Int: Int; ``/`` truncates toward zero and ``%`` takes the dividend's sign."""
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return UNDEFINED
    quotient = _int_quotient(left, right)
    return quotient if op == "/" else left - right * quotient


def arithmetic(op: str, left: Value, right: Value) -> Value:
    """``+ - * / %`` on numbers; ``+`` concatenates when either side is a String.

    Int with Int stays Int; any Decimal, or a String that converts (not for ``+``), makes a
    Decimal. Everything else, and division by zero, is Undefined.
    """
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        a_text, b_text = to_string(left), to_string(right)
        if a_text is None or b_text is None:
            return UNDEFINED
        return a_text + b_text
    if type(left) is int and type(right) is int:
        return _int_arithmetic(op, left, right)
    if op == "+" and not (is_number(left) and is_number(right)):
        return UNDEFINED  # "+" converts no Strings to numbers: they concatenate
    a, b = to_decimal(left), to_decimal(right)
    if a is None or b is None:
        return UNDEFINED
    try:
        with decimal.localcontext(DECIMAL_CONTEXT):
            result: Decimal = _DECIMAL_OPERATIONS[op](a, b)
    except decimal.DecimalException:
        return UNDEFINED
    return result
