"""The SQL parser's shipped LALR tables: current for the grammar, and the same parser.

``rules/sql_grammar.lalr.pickle`` spares a broker with a topic rule the third of a second lark
takes to build the tables at start. A grammar edit without ``python -m
aws_iot_mock.rules.sql_tables`` would silently fall back to building them: this test says so.
"""

from __future__ import annotations

from importlib import resources

import lark
import pytest

from aws_iot_mock.rules import sql
from aws_iot_mock.rules.sql_tables import TABLES_FILE, build_parser, load_tables, tables_bytes

PACKAGE = resources.files("aws_iot_mock.rules")
GRAMMAR = PACKAGE.joinpath("sql_grammar.lark").read_text()

STATEMENTS = (
    "SELECT * FROM 'sensors/+/temperature' WHERE temperature > 50",
    "SELECT state.reported.x AS x, topic(2) AS device, timestamp() FROM '$aws/things/+/shadow/#'",
    "SELECT VALUE payload.readings FROM 'a/b' WHERE NOT (a = 1 OR b <> 'x') AND isNull(c)",
    "SELECT CASE x WHEN 1 THEN 'one' ELSE 'many' END AS n, cast(y AS String) AS d FROM 'c'",
)


def test_the_shipped_tables_are_current_for_the_grammar_and_lark() -> None:
    loaded = load_tables(PACKAGE.joinpath(TABLES_FILE).read_bytes, GRAMMAR)
    assert loaded is not None, "stale tables: run python -m aws_iot_mock.rules.sql_tables"


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_shipped_tables_parse_as_the_grammar_does(statement: str) -> None:
    shipped = load_tables(PACKAGE.joinpath(TABLES_FILE).read_bytes, GRAMMAR)
    assert shipped is not None
    built = build_parser(GRAMMAR)
    assert shipped.parse(statement, start="start") == built.parse(statement, start="start")
    for expression in ("topic(2)", "upper(state.x)"):  # what a ${...} substitution holds
        expected = built.parse(expression, start="template_expression")
        assert shipped.parse(expression, start="template_expression") == expected
    # What the broker uses is the shipped parser.
    assert sql.parse(statement).topic_filter is not None


def test_tables_for_another_grammar_are_not_used() -> None:
    changed = GRAMMAR + "\n// an edit\n"
    assert load_tables(PACKAGE.joinpath(TABLES_FILE).read_bytes, changed) is None
    assert load_tables(lambda: tables_bytes(changed), changed) is not None


def test_missing_or_unreadable_tables_are_not_used() -> None:
    def missing() -> bytes:
        raise FileNotFoundError(TABLES_FILE)

    assert load_tables(missing, GRAMMAR) is None
    assert load_tables(lambda: b"not a pickle", GRAMMAR) is None


def test_tables_from_another_lark_version_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tables_bytes(GRAMMAR)
    monkeypatch.setattr(lark, "__version__", "0.0.0")
    assert load_tables(lambda: data, GRAMMAR) is None
