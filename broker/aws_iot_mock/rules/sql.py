"""AWS IoT SQL: parse a rule's statement once, evaluate it against each message.

Sources (AWS IoT developer guide; the markdown sources are in the archived GitHub repository
awsdocs/aws-iot-docs): "AWS IoT SQL reference" (iot-sql-reference.html), "SELECT clause"
(iot-sql-select.html), "FROM clause" (iot-sql-from.html), "WHERE clause" (iot-sql-where.html),
"SET clause" (iot-sql-set.html), "Operators" (iot-sql-operators.html), "Data types"
(iot-sql-data-types.html), "Literals" (iot-sql-literals.html), "Case statements"
(iot-sql-case.html), "JSON extensions" (iot-sql-json.html), "Nested object queries"
(iot-sql-nested-queries.html), "SQL versions" (iot-rule-sql-version.html), "Working with binary
payloads" (binary-payloads.html), all under https://docs.aws.amazon.com/iot/latest/developerguide/.
``docs/rules-engine-reference.md`` lists every rule implemented here and the UNCONFIRMED choices.

Pure: evaluation takes the payload bytes, the topic and an :class:`EvaluationContext` (client ID,
principal, clock reading, UUID and random sources are injected) and returns a :class:`SqlResult`,
or None when the rule does not match (WHERE not true).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from typing import Final, TypeAlias, Union

import lark
from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from aws_iot_mock.errors import BrokerError
from aws_iot_mock.mqtt.topics import topic_matches, validate_topic_filter
from aws_iot_mock.rules import sql_functions, sql_operators
from aws_iot_mock.rules.sql_functions import EvaluationContext
from aws_iot_mock.rules.sql_tables import TABLES_FILE, build_parser, load_tables
from aws_iot_mock.rules.sql_values import (
    DECIMAL_CONTEXT,
    UNDEFINED,
    Value,
    is_number,
    parse_json_document,
    serialize_payload,
    to_boolean,
    whole_decimals_as_int,
)

__all__ = [
    "DEFAULT_SQL_VERSION",
    "EvaluationContext",
    "SqlNotEmulatedError",
    "SqlParseError",
    "SqlResult",
    "SqlVersion",
    "Statement",
    "evaluate",
    "evaluate_expressions",
    "parse",
    "parse_expression",
]


class SqlVersion(enum.StrEnum):
    """``awsIotSqlVersion`` values ("SQL versions", iot-rule-sql-version.html)."""

    V2015_10_08 = "2015-10-08"
    V2016_03_23 = "2016-03-23"
    # "The most recent beta SQL version"; evaluated as 2016-03-23 here.
    BETA = "beta"

    @property
    def is_v2(self) -> bool:
        """True for 2016-03-23 and beta (nested queries, literals, VALUE arrays, SET)."""
        return self is not SqlVersion.V2015_10_08


# A rule created without awsIotSqlVersion gets 2015-10-08 ("no SQL version is specified, so the
# default of "2015-10-08" is used", github.com/aws-iot-builder-tools/iot-reference-architectures
# issue 9; AWS re:Post QUO71PhvvrQ96GaCq1xrL5OA: "the default version is older").
DEFAULT_SQL_VERSION: Final = SqlVersion.V2015_10_08

# AWS quotas: a rule is "Up to 256 KB of UTF-8 encoded characters (including white space)".
SQL_MAX_BYTES: Final = 256 * 1024


class SqlParseError(BrokerError):
    """The statement does not parse; CreateTopicRule/ReplaceTopicRule answer SqlParseException.

    Attributes:
        message: the exception message sent to the client, ``Line <line>:<column>: <reason>``
            (the format is UNCONFIRMED; see docs/rules-engine-reference.md).
        line: 1-based line of the offending token.
        column: 1-based column of the offending token.
    """

    def __init__(self, reason: str, line: int = 1, column: int = 1) -> None:
        self.message = f"Line {line}:{column}: {reason}"
        self.line = line
        self.column = column
        super().__init__(self.message)


class SqlNotEmulatedError(BrokerError):
    """The statement calls an AWS IoT SQL function this emulator does not provide.

    AWS accepts such statements, so this is not a SqlParseException: the control plane answers
    InvalidRequestException with this message, naming the function.

    Attributes:
        function: the function name as written in the statement.
    """

    def __init__(self, function: str, why: str) -> None:
        self.function = function
        super().__init__(f"The function {function}() is not emulated by aws-iot-mock: {why}")


# --------------------------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value


@dataclass(frozen=True, slots=True)
class Field:
    """A top-level attribute of the current document (the payload, or a nested query's row)."""

    name: str


@dataclass(frozen=True, slots=True)
class Variable:
    name: str


@dataclass(frozen=True, slots=True)
class Member:
    target: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    target: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Star:
    """``*`` as a function argument: the whole payload (raw bytes when it is not JSON)."""


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case
    written: str  # as written, for output keys
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Cast:
    operand: Expr
    type_name: str  # lower case keyword


@dataclass(frozen=True, slots=True)
class Case:
    subject: Expr
    whens: tuple[tuple[Expr, Expr], ...]
    otherwise: Expr | None


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "not" or "-"
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # "and", "or", "=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class ObjectLiteral:
    members: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class ArrayLiteral:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class SelectItem:
    """One SELECT item: ``expr`` (None for ``*``), the output key path, and whether aliased."""

    expr: Expr | None
    key: tuple[str, ...]
    aliased: bool


@dataclass(frozen=True, slots=True)
class Select:
    value: bool  # SELECT VALUE
    items: tuple[SelectItem, ...]


@dataclass(frozen=True, slots=True)
class Nested:
    select: Select
    source: Expr
    where: Expr | None


Expr: TypeAlias = Union[  # noqa: UP007 - recursive alias
    Literal,
    Field,
    Variable,
    Member,
    Index,
    Star,
    Call,
    Cast,
    Case,
    Unary,
    Binary,
    ObjectLiteral,
    ArrayLiteral,
    Nested,
]


@dataclass(frozen=True, slots=True)
class SqlResult:
    """What a matching statement produced.

    Attributes:
        value: the SELECT result: usually an Object, any value for ``SELECT VALUE``, raw
            ``bytes`` for ``SELECT *`` on a non-JSON payload, or Undefined.
        variables: the SET clause's variables (for substitution templates).
    """

    value: Value
    variables: dict[str, Value] = field(default_factory=dict)

    def payload(self) -> bytes:
        """The outgoing payload: JSON text, raw bytes for binary, ``b""`` for Undefined."""
        return serialize_payload(self.value)


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed AWS IoT SQL statement.

    Attributes:
        sql: the statement text as given.
        version: the rule's ``awsIotSqlVersion``.
        topic_filter: the FROM topic filter; None when FROM is omitted (Basic Ingest-only rules).
        assignments: the SET clause, ``(name, expression)`` in order (names without ``@``).
        select: the SELECT clause.
        where: the WHERE condition, or None.
        external_functions: external functions the statement calls (lower case).
    """

    sql: str
    version: SqlVersion
    topic_filter: str | None
    assignments: tuple[tuple[str, Expr], ...]
    select: Select
    where: Expr | None
    external_functions: frozenset[str]

    def matches_topic(self, topic: str) -> bool:
        """Whether a message on ``topic`` triggers this statement (AWS's ``#`` and ``+`` rules).

        ``topic`` is the publish topic; for Basic Ingest the engine picks the rule by name.
        """
        return self.topic_filter is not None and topic_matches(self.topic_filter, topic)

    def evaluate(self, payload: bytes, topic: str, context: EvaluationContext) -> SqlResult | None:
        """Evaluate against one message; None when WHERE is not true. See :func:`evaluate`."""
        return evaluate(self, payload, topic, context)


# --------------------------------------------------------------------------------------------
# Parsing


@functools.cache
def _parser() -> Lark:
    # The grammar's LALR tables are computed ahead of time and shipped beside it (see
    # sql_tables): building them here took a third of a second at every broker start with a
    # topic rule. Stale or missing tables: the parser is built from the grammar, as before.
    package = resources.files("aws_iot_mock.rules")
    grammar = package.joinpath("sql_grammar.lark").read_text()
    shipped = load_tables(package.joinpath(TABLES_FILE).read_bytes, grammar)
    return shipped if shipped is not None else build_parser(grammar)


_CAST_TYPES: Final = {
    # "For SQL version 2015-10-08 and 2016-03-23" (Functions, cast()).
    "string": "String",
    "nvarchar": "String",
    "text": "String",
    "ntext": "String",
    "varchar": "String",
    "int": "Int",
    "integer": "Int",
    "double": "Double",
    # "Additionally, for SQL version 2016-03-23".
    "decimal": "Decimal",
    "bool": "Boolean",
    "boolean": "Boolean",
}
_CAST_TYPES_V2_ONLY: Final = frozenset({"decimal", "bool", "boolean"})


def _string_literal(token: Token) -> str:
    text = str(token)[1:-1]
    quote = str(token)[0]
    # A backslash escapes the quote character (and itself); other backslashes are kept so that
    # regular expressions such as '\d+' reach the regex engine as written.
    return text.replace("\\\\", "\0").replace("\\" + quote, quote).replace("\0", "\\")


def _position(item: Tree[Token] | Token) -> tuple[int, int]:
    if isinstance(item, Token):
        return item.line or 1, item.column or 1
    return item.meta.line, item.meta.column


class _Builder(Transformer[Token, object]):
    """Turns Lark's parse tree into the frozen syntax tree, refusing what the version lacks."""

    def __init__(
        self, version: SqlVersion, allow_external: frozenset[str], bracket_index: bool
    ) -> None:
        super().__init__()
        self.version = version
        self.allow_external = allow_external
        self.bracket_index = bracket_index
        self.external_used: set[str] = set()
        self.item_counter = 0

    def _v2_only(self, what: str, at: Tree[Token] | Token) -> None:
        if not self.version.is_v2:
            line, column = _position(at)
            raise SqlParseError(f"{what} requires SQL version 2016-03-23", line, column)

    # Literals and references -----------------------------------------------------------------

    def number(self, children: list[Token]) -> Expr:
        text = str(children[0])
        if "." in text or "e" in text or "E" in text:
            number = DECIMAL_CONTEXT.create_decimal(text)
            return Literal(whole_decimals_as_int(number) if self.version.is_v2 else number)
        return Literal(int(text))

    def string(self, children: list[Token]) -> Expr:
        return Literal(_string_literal(children[0]))

    def true(self, _: list[Token]) -> Expr:
        return Literal(True)

    def false(self, _: list[Token]) -> Expr:
        return Literal(False)

    def null(self, _: list[Token]) -> Expr:
        return Literal(None)

    def field(self, children: list[Token]) -> Expr:
        return Field(str(children[0]))

    def variable(self, children: list[Token]) -> Expr:
        self._v2_only("A variable", children[0])
        return Variable(str(children[0])[1:])

    def member(self, children: list[object]) -> Expr:
        target, name = children
        assert isinstance(name, Token)
        return Member(_expr(target), str(name))

    @v_args(meta=True)
    def index(self, meta: lark.tree.Meta, children: list[object]) -> Expr:
        if not self.bracket_index:
            # Not in AWS's documentation, which indexes arrays with get() ("JSON extensions").
            raise SqlParseError(
                "Bracket indexing is not supported; use get(array, index)", meta.line, meta.column
            )
        return Index(_expr(children[0]), _expr(children[1]))

    def star_argument(self, _: list[Token]) -> Expr:
        return Star()

    # Operators ---------------------------------------------------------------------------------

    def or_op(self, children: list[object]) -> Expr:
        return Binary("or", _expr(children[0]), _expr(children[2]))

    def and_op(self, children: list[object]) -> Expr:
        return Binary("and", _expr(children[0]), _expr(children[2]))

    def not_op(self, children: list[object]) -> Expr:
        return Unary("not", _expr(children[1]))

    def compare(self, children: list[object]) -> Expr:
        return Binary(str(children[1]), _expr(children[0]), _expr(children[2]))

    def binary(self, children: list[object]) -> Expr:
        return Binary(str(children[1]), _expr(children[0]), _expr(children[2]))

    def negate(self, children: list[object]) -> Expr:
        operand = _expr(children[1])
        if isinstance(operand, Literal) and is_number(operand.value):
            number = operand.value
            assert isinstance(number, (int, Decimal))
            return Literal(-number)
        return Unary("-", operand)

    # Calls -------------------------------------------------------------------------------------

    def call(self, children: list[object]) -> Expr:
        name_token = children[0]
        assert isinstance(name_token, Token)
        written = str(name_token)
        name = written.lower()
        args = tuple(_expr(arg) for arg in children[1:] if arg is not None)
        spec = sql_functions.FUNCTIONS.get(name)
        line, column = _position(name_token)
        if spec is None:
            not_emulated = sql_functions.NOT_EMULATED.get(name)
            if not_emulated is not None and name not in self.allow_external:
                raise SqlNotEmulatedError(written, not_emulated)
            if not_emulated is None:
                raise SqlParseError(f"Unknown function: {written}", line, column)
            self.external_used.add(name)
            return Call(name, written, args)
        if spec.v2_only:
            self._v2_only(f"The function {written}()", name_token)
        if any(isinstance(arg, Star) for arg in args) and not spec.accepts_star:
            raise SqlParseError(f"'*' is not a valid argument of {written}()", line, column)
        return Call(name, written, args)

    def cast(self, children: list[object]) -> Expr:
        operand, type_token = _expr(children[1]), children[3]
        assert isinstance(type_token, Token)
        keyword = str(type_token).lower()
        if keyword not in _CAST_TYPES:
            line, column = _position(type_token)
            raise SqlParseError(f"Unknown type in cast: {type_token}", line, column)
        if keyword in _CAST_TYPES_V2_ONLY:
            self._v2_only(f"cast(... as {type_token})", type_token)
        return Cast(operand, _CAST_TYPES[keyword])

    def case_expr(self, children: list[object]) -> Expr:
        subject = _expr(children[1])
        whens: list[tuple[Expr, Expr]] = []
        otherwise: Expr | None = None
        rest = children[2:]
        for index, item in enumerate(rest):
            if isinstance(item, tuple):
                whens.append(item)
            elif isinstance(item, Token) and item.type == "ELSE":
                otherwise = _expr(rest[index + 1])
                break
        return Case(subject, tuple(whens), otherwise)

    def when_clause(self, children: list[object]) -> tuple[Expr, Expr]:
        return _expr(children[1]), _expr(children[3])

    # Literals of 2016-03-23 --------------------------------------------------------------------

    @v_args(meta=True)
    def object_literal(self, meta: lark.tree.Meta, children: list[object]) -> Expr:
        if not self.version.is_v2:
            raise SqlParseError(
                "Object literals require SQL version 2016-03-23", meta.line, meta.column
            )
        members = tuple(member for member in children if member is not None)
        return ObjectLiteral(members)  # type: ignore[arg-type]

    def member_literal(self, children: list[object]) -> tuple[str, Expr]:
        key = children[0]
        assert isinstance(key, Token)
        return _string_literal(key), _expr(children[1])

    @v_args(meta=True)
    def array_literal(self, meta: lark.tree.Meta, children: list[object]) -> Expr:
        if not self.version.is_v2:
            raise SqlParseError(
                "Array literals require SQL version 2016-03-23", meta.line, meta.column
            )
        return ArrayLiteral(tuple(_expr(item) for item in children if item is not None))

    # SELECT ------------------------------------------------------------------------------------

    def alias(self, children: list[Token]) -> tuple[str, ...]:
        return tuple(str(name) for name in children)

    def star_item(self, children: list[object]) -> SelectItem:
        alias = children[2] if len(children) > 2 else None
        if alias is None:
            return SelectItem(None, (), aliased=False)
        assert isinstance(alias, tuple)
        return SelectItem(Star(), alias, aliased=True)

    def expr_item(self, children: list[object]) -> SelectItem:
        expr = _expr(children[0])
        self.item_counter += 1
        if len(children) > 2 and children[2] is not None:
            alias = children[2]
            assert isinstance(alias, tuple)
            return SelectItem(expr, alias, aliased=True)
        return SelectItem(expr, (_default_key(expr, self.item_counter),), aliased=False)

    def select_value(self, children: list[object]) -> Select:
        expr = _expr(children[1])
        return Select(True, (SelectItem(expr, (), aliased=False),))

    def select_items(self, children: list[object]) -> Select:
        items = tuple(item for item in children if isinstance(item, SelectItem))
        return Select(False, items)

    @v_args(meta=True)
    def nested(self, meta: lark.tree.Meta, children: list[object]) -> Expr:
        if not self.version.is_v2:
            raise SqlParseError(
                "Nested object queries require SQL version 2016-03-23", meta.line, meta.column
            )
        nested = children[0]
        assert isinstance(nested, Nested)
        return nested

    def nested_select(self, children: list[object]) -> Nested:
        select = children[1]
        assert isinstance(select, Select)
        where = children[4] if len(children) > 4 else None
        return Nested(select, _expr(children[3]), _expr(where) if where is not None else None)

    def where_clause(self, children: list[object]) -> Expr:
        return _expr(children[1])

    def from_clause(self, children: list[Token]) -> str:
        token = children[1]
        line, column = _position(token)
        if not str(token).startswith("'"):
            # "You must enclose the topic or topic filter in single quotes" (FROM clause).
            raise SqlParseError("The topic filter must be enclosed in single quotes", line, column)
        topic_filter = _string_literal(token)
        problem = validate_topic_filter(topic_filter)
        if problem is None and topic_filter.startswith("$share/"):
            problem_reason = "a shared subscription is not a valid rule topic filter"
            raise SqlParseError(f"Invalid topic filter: {problem_reason}", line, column)
        if problem is not None:
            raise SqlParseError(f"Invalid topic filter: {problem.reason}", line, column)
        return topic_filter

    def assignment(self, children: list[object]) -> tuple[str, Expr]:
        name = children[0]
        assert isinstance(name, Token)
        return str(name)[1:], _expr(children[1])

    @v_args(meta=True)
    def set_clause(
        self, meta: lark.tree.Meta, children: list[object]
    ) -> tuple[tuple[str, Expr], ...]:
        if not self.version.is_v2:
            raise SqlParseError(
                "The SET clause requires SQL version 2016-03-23", meta.line, meta.column
            )
        assignments = tuple(child for child in children if isinstance(child, tuple))
        seen: set[str] = set()
        for name, _expression in assignments:
            # "Each variable can only be assigned once"; names are "up to 64 characters long".
            if name in seen:
                raise SqlParseError(f"Variable @{name} is assigned twice", meta.line, meta.column)
            if len(name) > 64:
                raise SqlParseError(
                    f"Variable @{name} is longer than 64 characters", meta.line, meta.column
                )
            seen.add(name)
        return assignments

    def template_expression(self, children: list[object]) -> Expr:
        return _expr(children[0])


def _expr(item: object) -> Expr:
    """Narrow a transformed child to an expression (the grammar guarantees it)."""
    assert item is not None and not isinstance(item, (Token, Tree, tuple, SelectItem, Select))
    return item  # type: ignore[return-value]


def _default_key(expr: Expr, position: int) -> str:
    """Output key of an unaliased SELECT item.

    An attribute path keeps its last name (``SELECT state.reported.temp`` gives ``temp``) and a
    function call its name as written; AWS does not document other expressions, which get
    ``_<position>`` here (UNCONFIRMED).
    """
    if isinstance(expr, Field):
        return expr.name
    if isinstance(expr, Member):
        return expr.name
    if isinstance(expr, Variable):
        return expr.name
    if isinstance(expr, Call):
        return expr.written
    if isinstance(expr, Cast):
        return "cast"
    return f"_{position}"


def _refusal(error: UnexpectedInput, text: str) -> SqlParseError:
    line, column = error.line, error.column
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return SqlParseError(
                "Unexpected end of statement",
                line if line > 0 else 1,
                column if column > 0 else len(text) + 1,
            )
        return SqlParseError(f"Unexpected token: {error.token}", line, column)
    if isinstance(error, UnexpectedCharacters):
        return SqlParseError(f"Unexpected character: {error.char}", line, column)
    if isinstance(error, UnexpectedEOF):
        return SqlParseError("Unexpected end of statement", 1, len(text) + 1)
    return SqlParseError("Invalid statement", max(line, 1), max(column, 1))


def _parse_tree(text: str, start: str) -> Tree[Token]:
    if len(text.encode("utf-8", "surrogatepass")) > SQL_MAX_BYTES:
        raise SqlParseError(f"The statement is larger than {SQL_MAX_BYTES} bytes")
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as error:
        raise _refusal(error, text) from None
    except RecursionError:
        raise SqlParseError("The statement is nested too deeply") from None


def _coerce_version(version: SqlVersion | str) -> SqlVersion:
    try:
        return SqlVersion(version)
    except ValueError:
        raise SqlParseError(f"Unknown SQL version: {version}") from None


def _build(
    tree: Tree[Token], version: SqlVersion, allow_external: frozenset[str], bracket_index: bool
) -> tuple[object, _Builder]:
    builder = _Builder(version, allow_external, bracket_index)
    try:
        return builder.transform(tree), builder
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, (SqlParseError, SqlNotEmulatedError)):
            raise error.orig_exc from None
        raise
    except RecursionError:
        raise SqlParseError("The statement is nested too deeply") from None


def parse(
    sql: str,
    version: SqlVersion | str = DEFAULT_SQL_VERSION,
    *,
    allow_external: frozenset[str] = frozenset(),
    bracket_index: bool = False,
) -> Statement:
    """Parse a topic rule's SQL statement.

    Args:
        sql: the ``sql`` member of the TopicRulePayload.
        version: its ``awsIotSqlVersion`` (default ``2015-10-08`` like AWS).
        allow_external: external functions (``get_thing_shadow``, ``aws_lambda``, ...) the caller
            provides through :attr:`EvaluationContext.external`; any other external function is
            refused with :class:`SqlNotEmulatedError`.
        bracket_index: accept ``attribute[n]`` (not documented by AWS, which uses ``get``).

    Returns:
        The statement, ready to evaluate any number of times.

    Raises:
        SqlParseError: the SQL does not parse, uses a construct its version lacks, names an
            unknown function or cast type, or has an invalid FROM topic filter; ``.message`` is
            the SqlParseException message.
        SqlNotEmulatedError: the SQL calls an external function that is not allowed.
    """
    sql_version = _coerce_version(version)
    tree = _parse_tree(sql, "start")
    built, builder = _build(tree, sql_version, allow_external, bracket_index)
    assert isinstance(built, Tree)
    assignments: tuple[tuple[str, Expr], ...] = ()
    select: Select | None = None
    topic_filter: str | None = None
    where: Expr | None = None
    for child in built.children:
        if child is None or isinstance(child, Token):
            continue  # keywords, and the optional clauses that are absent
        if isinstance(child, Select):
            select = child
        elif isinstance(child, str):
            topic_filter = child
        elif isinstance(child, tuple):
            assignments = child
        else:
            where = _expr(child)
    assert select is not None
    return Statement(
        sql=sql,
        version=sql_version,
        topic_filter=topic_filter,
        assignments=assignments,
        select=select,
        where=where,
        external_functions=frozenset(builder.external_used),
    )


def parse_expression(
    text: str,
    version: SqlVersion | str = DEFAULT_SQL_VERSION,
    *,
    allow_external: frozenset[str] = frozenset(),
) -> Expr:
    """Parse one expression (the body of a ``${...}`` substitution template).

    Raises:
        SqlParseError: as :func:`parse`.
        SqlNotEmulatedError: as :func:`parse`.
    """
    sql_version = _coerce_version(version)
    tree = _parse_tree(text, "template_expression")
    built, _builder = _build(tree, sql_version, allow_external, bracket_index=False)
    return _expr(built)


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass(frozen=True, slots=True)
class _Scope:
    """What an expression sees: the current document, ``*``, the message and the variables."""

    document: Value
    star: Value
    raw_payload: bytes
    topic: str
    context: EvaluationContext
    version: SqlVersion
    variables: dict[str, Value]


def _read_payload(payload: bytes, version: SqlVersion) -> Value:
    """The payload as SQL values, or the raw bytes when it is not a JSON object or array.

    AWS's WHERE page calls the payload ``80`` "non-JSON" and reads it with
    ``decode(encode(*, 'base64'), 'base64')``, so only objects and arrays are addressable JSON.
    """
    stripped = payload.lstrip()
    if stripped[:1] not in (b"{", b"["):
        return payload
    parsed = parse_json_document(payload, whole_as_int=version.is_v2)
    if parsed is UNDEFINED:
        return payload
    return parsed


def _scope(payload: bytes, topic: str, context: EvaluationContext, version: SqlVersion) -> _Scope:
    document = _read_payload(payload, version)
    return _Scope(
        document=document,
        star=document,
        raw_payload=payload,
        topic=topic,
        context=context,
        version=version,
        variables={},
    )


def _is_true(value: Value) -> bool:
    return to_boolean(value) is True


def evaluate(
    statement: Statement, payload: bytes, topic: str, context: EvaluationContext
) -> SqlResult | None:
    """Run a statement against one message.

    SET variables are evaluated first, in order; then WHERE ("The WHERE clause is evaluated
    first, to determine if SELECT is evaluated"); the rule matches only when WHERE is true
    (Boolean true, or the String ``"true"``). Topic matching is not checked here: see
    :meth:`Statement.matches_topic`.

    Args:
        statement: from :func:`parse`.
        payload: the message payload bytes.
        topic: the topic ``topic()`` reports (for Basic Ingest, without ``$aws/rules/<rule>/``).
        context: client ID, principal, clock and the other injected inputs.

    Returns:
        The result, or None when WHERE is false, Null or Undefined.
    """
    scope = _scope(payload, topic, context, statement.version)
    for name, expression in statement.assignments:
        scope.variables[name] = _eval(expression, scope)
    if statement.where is not None and not _is_true(_eval(statement.where, scope)):
        return None
    value = _project(statement.select, scope)
    return SqlResult(value, dict(scope.variables))


def evaluate_expressions(
    expressions: Sequence[Expr],
    payload: bytes,
    topic: str,
    context: EvaluationContext,
    *,
    version: SqlVersion | str = DEFAULT_SQL_VERSION,
    variables: dict[str, Value] | None = None,
) -> list[Value]:
    """Evaluate expressions against a message, parsing its payload once (substitution templates).

    Args:
        expressions: from :func:`parse_expression`.
        payload: the original message payload.
        topic: as for :func:`evaluate`.
        context: as for :func:`evaluate`.
        version: the rule's SQL version (number parsing and version-gated behaviour).
        variables: SET variables from :attr:`SqlResult.variables`.

    Returns:
        One value per expression, in order.
    """
    sql_version = _coerce_version(version)
    scope = _scope(payload, topic, context, sql_version)
    if variables:
        scope.variables.update(variables)
    return [_eval(expression, scope) for expression in expressions]


def _set_path(target: dict[str, Value], path: tuple[str, ...], value: Value) -> None:
    """Set ``value`` at a dotted alias path (``AS bar.baz``), creating objects on the way.

    That a dotted alias builds nested objects is UNCONFIRMED ("JSON extensions" shows the syntax
    without the output).
    """
    for name in path[:-1]:
        inner = target.get(name)
        if not isinstance(inner, dict):
            inner = {}
            target[name] = inner
        target = inner
    target[path[-1]] = value


def _project(select: Select, scope: _Scope) -> Value:
    """The SELECT clause's output for one document."""
    if select.value:
        expression = select.items[0].expr
        assert expression is not None
        value = _eval(expression, scope)
        if isinstance(value, list) and not scope.version.is_v2:
            # "With SQL version 2015-10-08, you can select only one item. With SQL version
            # 2016-03-23 or later, you can also select an array to output as a top-level
            # object." What 2015-10-08 outputs instead is UNCONFIRMED: Undefined here.
            return UNDEFINED
        return value
    if len(select.items) == 1 and select.items[0].expr is None:
        return scope.star  # SELECT *: the document itself, raw bytes when not JSON
    result: dict[str, Value] = {}
    for item in select.items:
        if item.expr is None:
            # '*' among other items adds the payload's members; a payload that is not an object
            # (binary, an array) adds nothing (UNCONFIRMED; "Working with binary payloads").
            if isinstance(scope.star, dict):
                result.update(scope.star)
            continue
        value = _eval(item.expr, scope)
        if isinstance(value, bytes):
            value = UNDEFINED  # raw bytes are not representable inside a JSON object
        _set_path(result, item.key, value)
    return result


def _eval_nested(nested: Nested, scope: _Scope) -> Value:
    """``(SELECT ... FROM attribute WHERE ...)``: per element of an Array, once for an Object."""
    source = _eval(nested.source, scope)

    def run(document: Value) -> Value:
        inner = replace(scope, document=document, star=document)
        if nested.where is not None and not _is_true(_eval(nested.where, inner)):
            return UNDEFINED
        return _project(nested.select, inner)

    if isinstance(source, list):
        rows = (run(element) for element in source)
        return [row for row in rows if row is not UNDEFINED]
    if isinstance(source, dict):
        return run(source)
    return UNDEFINED


def _member(target: Value, name: str) -> Value:
    if isinstance(target, dict):
        return target.get(name, UNDEFINED)
    return UNDEFINED


def _eval(expression: Expr, scope: _Scope) -> Value:  # noqa: PLR0912 - one branch per node type
    """Evaluate an expression node in a scope."""
    if isinstance(expression, Literal):
        return expression.value
    if isinstance(expression, Field):
        return _member(scope.document, expression.name)
    if isinstance(expression, Member):
        return _member(_eval(expression.target, scope), expression.name)
    if isinstance(expression, Binary):
        return _binary(expression, scope)
    if isinstance(expression, Call):
        return _call(expression, scope)
    if isinstance(expression, Variable):
        return scope.variables.get(expression.name, UNDEFINED)
    if isinstance(expression, Unary):
        operand = _eval(expression.operand, scope)
        if expression.op == "not":
            truth = to_boolean(operand)
            return UNDEFINED if truth is None else not truth
        return sql_operators.arithmetic("-", 0, operand)
    if isinstance(expression, Star):
        return scope.star
    if isinstance(expression, Case):
        return _case(expression, scope)
    if isinstance(expression, Cast):
        return sql_functions.cast(
            _eval(expression.operand, scope), expression.type_name, scope.version.is_v2
        )
    if isinstance(expression, ObjectLiteral):
        return {key: _eval(value, scope) for key, value in expression.members}
    if isinstance(expression, ArrayLiteral):
        return [_eval(item, scope) for item in expression.items]
    if isinstance(expression, Index):
        return sql_functions.get_item(
            _eval(expression.target, scope), _eval(expression.index, scope)
        )
    assert isinstance(expression, Nested)
    return _eval_nested(expression, scope)


def _case(expression: Case, scope: _Scope) -> Value:
    """``CASE v WHEN t THEN r ... ELSE e END``: first ``t`` equal to ``v`` wins.

    "If v is Undefined, the result of the case statement is Undefined"; no match and no ELSE is
    Undefined (Case statements).
    """
    subject = _eval(expression.subject, scope)
    if subject is UNDEFINED:
        return UNDEFINED
    for test, result in expression.whens:
        if sql_operators.equals(subject, _eval(test, scope)) is True:
            return _eval(result, scope)
    if expression.otherwise is not None:
        return _eval(expression.otherwise, scope)
    return UNDEFINED


def _call(expression: Call, scope: _Scope) -> Value:
    args = [_eval(arg, scope) for arg in expression.args]
    spec = sql_functions.FUNCTIONS.get(expression.name)
    if spec is None:  # an allowed external function
        external = scope.context.external
        return UNDEFINED if external is None else external(expression.name, args)
    env = sql_functions.FunctionEnv(
        context=scope.context,
        topic=scope.topic,
        raw_payload=scope.raw_payload,
        sql_version=scope.version.value,
        v2=scope.version.is_v2,
        star_args=tuple(isinstance(arg, Star) for arg in expression.args),
    )
    return spec.impl(args, env)


def _binary(expression: Binary, scope: _Scope) -> Value:
    left = _eval(expression.left, scope)
    right = _eval(expression.right, scope)
    op = expression.op
    if op in ("and", "or"):
        return sql_operators.logic(op, left, right)
    if op in ("=", "<>", "<", "<=", ">", ">="):
        return sql_operators.compare(op, left, right)
    return sql_operators.arithmetic(op, left, right)
