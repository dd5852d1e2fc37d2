"""The AWS IoT SQL parser's LALR tables, computed ahead of time and shipped with the package.

Lark builds an LALR parser from ``sql_grammar.lark`` in about a third of a second (the grammar
analysis and table construction are pure Python); a broker with one topic rule would pay that at
every start, before its first device could publish. The tables do not change unless the grammar
or lark does, so they are computed once (``python -m aws_iot_mock.rules.sql_tables``, which
writes ``sql_grammar.lalr.pickle`` beside the grammar) and loaded in a few milliseconds with
``Lark.load``, lark's own serialization (https://lark-parser.readthedocs.io/en/stable/classes.html#lark.Lark.load).

The file records the SHA-256 of the grammar it was computed from and lark's version: when either
differs, ``load_tables`` answers None and the caller builds the parser from the grammar as
before (slower, same parser). It is package data, as trusted as the modules beside it (pickle
must never load a file from anywhere else); a test checks that the shipped file is current.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import lark
from lark import Lark

__all__ = ["TABLES_FILE", "build_parser", "load_tables", "main", "tables_bytes"]

# Beside the grammar in the package (pyproject.toml's package-data ships both).
TABLES_FILE: Final = "sql_grammar.lalr.pickle"


def build_parser(grammar: str) -> Lark:
    """The SQL parser built from ``grammar``, its LALR tables computed now."""
    return Lark(
        grammar,
        parser="lalr",
        start=["start", "template_expression"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _grammar_digest(grammar: str) -> str:
    return hashlib.sha256(grammar.encode("utf-8")).hexdigest()


def tables_bytes(grammar: str) -> bytes:
    """The file's content for ``grammar``: its digest, lark's version, and the built parser."""
    parser = build_parser(grammar)
    saved = io.BytesIO()
    parser.save(saved)
    document = {
        "grammar_sha256": _grammar_digest(grammar),
        "lark": lark.__version__,
        "parser": saved.getvalue(),
    }
    return pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL)


def load_tables(read: Callable[[], bytes], grammar: str) -> Lark | None:
    """The parser from the shipped tables, or None when they are missing or not for ``grammar``.

    Args:
        read: reads the shipped file (package data only; see the module docstring).
        grammar: the grammar the parser must be for.
    """
    try:
        # Package data, as trusted as this module (see the module docstring).
        document: Any = pickle.loads(read())
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    if document.get("grammar_sha256") != _grammar_digest(grammar):
        return None
    if document.get("lark") != lark.__version__:
        return None
    parser: Lark = Lark.load(io.BytesIO(document["parser"]))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Recompute the shipped tables from the grammar beside this module."""
    del argv
    here = Path(__file__).resolve().parent
    grammar = (here / "sql_grammar.lark").read_text(encoding="utf-8")
    (here / TABLES_FILE).write_bytes(tables_bytes(grammar))
    print(f"wrote {here / TABLES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
