"""Substitution templates: ``${expression}`` inside rule action parameters.

Source: AWS IoT developer guide, "Substitution templates"
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html):
"expression can be any expression supported by AWS IoT in SELECT clauses, WHERE clauses";
"Because an expression in a substitution template is evaluated separately from the "SELECT ..."
statement, you cannot reference an alias created using the AS clause. You can reference only
information present in the original payload, functions, and operators." Templates mix with
literal text (``"${topic()}/${timestamp()}"``, "S3", s3-rule-action.html). The SET clause's
variables are usable in templates too ("SET clause", iot-sql-set.html).

The expression text is found with the SQL parser itself: at each ``${`` the shortest text up to
a ``}`` that parses as one expression is the expression, so ``}`` inside a string literal or an
object literal does not end it.

Pure: rendering reads the original message (payload, topic, context) and the SET variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_iot_mock.errors import BrokerError
from aws_iot_mock.rules.sql import (
    DEFAULT_SQL_VERSION,
    EvaluationContext,
    Expr,
    SqlParseError,
    SqlVersion,
    evaluate_expressions,
    parse_expression,
)
from aws_iot_mock.rules.sql_values import UNDEFINED, Value, serialize

__all__ = ["Template", "TemplateError", "parse_template", "template_text"]

_OPEN = "${"


class TemplateError(BrokerError):
    """A ``${...}`` template that does not parse (unterminated, or not one expression).

    Attributes:
        template: the parameter text.
    """

    def __init__(self, template: str, reason: str) -> None:
        self.template = template
        super().__init__(f"Invalid substitution template {template!r}: {reason}")


def template_text(value: Value) -> str:
    """How a template expression's value is written into the parameter.

    A String is inserted as is; Undefined is the empty string ("Undefined is converted to an
    empty string when serialized by itself", "Data types"); binary payload bytes as UTF-8 text
    (empty when not UTF-8); everything else as compact JSON (``null``, ``12``, ``{"a":1}``).
    """
    if isinstance(value, str):
        return value
    if value is UNDEFINED:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    return serialize(value)


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed action parameter: literal text and expressions, in order.

    Attributes:
        text: the parameter as written.
        parts: literal strings and parsed expressions.
        version: the rule's SQL version the expressions were parsed with.
    """

    text: str
    parts: tuple[str | Expr, ...]
    version: SqlVersion

    @property
    def is_static(self) -> bool:
        """True when the parameter holds no ``${...}``."""
        return all(isinstance(part, str) for part in self.parts)

    def render(
        self,
        payload: bytes,
        topic: str,
        context: EvaluationContext,
        *,
        variables: dict[str, Value] | None = None,
    ) -> str:
        """The parameter's value for one message.

        Args:
            payload: the *original* message payload (not the SELECT result).
            topic: the topic ``topic()`` reports.
            context: the same context the rule's SQL was evaluated with (so ``timestamp()`` and
                ``newuuid()`` mean what they meant there).
            variables: the SET clause's variables (:attr:`SqlResult.variables`).
        """
        if self.is_static:
            return self.text
        expressions: list[Expr] = [part for part in self.parts if not isinstance(part, str)]
        values = iter(
            evaluate_expressions(
                expressions, payload, topic, context, version=self.version, variables=variables
            )
        )
        return "".join(
            part if isinstance(part, str) else template_text(next(values)) for part in self.parts
        )


def _expression_at(
    text: str, start: int, version: SqlVersion, allow_external: frozenset[str]
) -> tuple[Expr, int]:
    """Parse the expression of the ``${`` at ``start``; returns it and the index after ``}``."""
    body = start + len(_OPEN)
    close = text.find("}", body)
    last_error: SqlParseError | None = None
    while close != -1:
        candidate = text[body:close]
        if candidate.strip():
            try:
                return parse_expression(
                    candidate, version, allow_external=allow_external
                ), close + 1
            except SqlParseError as error:
                last_error = error
        close = text.find("}", close + 1)
    if last_error is None:
        raise TemplateError(text, f"'${{' at {start} has no expression and closing '}}'")
    raise TemplateError(text, f"the expression at {start} does not parse ({last_error.message})")


def parse_template(
    text: str,
    version: SqlVersion | str = DEFAULT_SQL_VERSION,
    *,
    allow_external: frozenset[str] = frozenset(),
) -> Template:
    """Parse an action parameter that may hold ``${expression}`` templates.

    Args:
        text: the parameter text.
        version: the rule's ``awsIotSqlVersion``.
        allow_external: as for :func:`aws_iot_mock.rules.sql.parse`.

    Raises:
        TemplateError: a ``${`` without a parsable expression and ``}``.
        SqlNotEmulatedError: an expression calls an external function that is not allowed.
    """
    sql_version = SqlVersion(version)
    parts: list[str | Expr] = []
    position = 0
    while True:
        start = text.find(_OPEN, position)
        if start == -1:
            break
        if start > position:
            parts.append(text[position:start])
        expression, position = _expression_at(text, start, sql_version, allow_external)
        parts.append(expression)
    if position < len(text) or not parts:
        parts.append(text[position:])
    return Template(text, tuple(parts), sql_version)
