"""The code blocks of README.md and docs/*.md, by name, for the tests that run them.

Every fenced block in the user documentation is preceded by a tag comment on the line above:

- ``<!-- snippet: NAME -->``: something a reader runs (shell, Python); a test runs it;
- ``<!-- output: NAME -->``: what a snippet prints or writes; a test compares it;
- ``<!-- manual: WHY -->``: too long or needing what tests cannot have (a Docker engine, a
  7-minute benchmark); allowed only on the pages ``MANUAL_PAGES`` lists, each with its reason.

A snippet may name its install line: ``<!-- snippet: NAME; install: OTHER -->`` where OTHER is a
``pip install`` snippet; ``tests/test_docs.py`` checks that the line installs what NAME imports.
The reference notes (``docs/*-reference.md``, ``docs/scale-out.md``) quote AWS and design
material; they are not user instructions and are not parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DOC_PAGES",
    "MANUAL_PAGES",
    "REPO_ROOT",
    "VARYING_FIELDS",
    "Block",
    "assert_like_documented",
    "blocks",
    "output",
    "snippet",
    "snippet_block",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTES = ("scale-out.md",)
MANUAL_PAGES = ("docs/docker.md", "docs/performance.md")

_TAG = re.compile(r"<!-- (snippet|output|manual): (.+?) -->")


def _pages() -> tuple[Path, ...]:
    docs = sorted(
        page
        for page in (REPO_ROOT / "docs").glob("*.md")
        if not page.name.endswith("-reference.md") and page.name not in NOTES
    )
    return (REPO_ROOT / "README.md", *docs)


DOC_PAGES = _pages()


@dataclass(frozen=True)
class Block:
    """One fenced block.

    Attributes:
        page: the file, relative to the repository root.
        line: the 1-based line of its opening fence.
        language: the fence's info string (``sh``, ``python``, ``text``, ``json``...).
        text: its content, ending with a newline.
        kind: ``snippet``, ``output``, ``manual``, or None when untagged.
        name: the snippet or output name (for ``manual``, the reason).
        install: the name of the install snippet it declares, if any.
    """

    page: str
    line: int
    language: str
    text: str
    kind: str | None
    name: str | None
    install: str | None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, with their tags."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.startswith("```"):
            index += 1
            continue
        language = line[3:].strip()
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        tag = _TAG.fullmatch(lines[index - 1].strip()) if index else None
        kind = name = install = None
        if tag is not None:
            kind, rest = tag.group(1), tag.group(2)
            name, _, extra = rest.partition(";")
            name = name.strip()
            if extra.strip().startswith("install:"):
                install = extra.strip().removeprefix("install:").strip()
        text = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(
            Block(str(page.relative_to(REPO_ROOT)), index + 1, language, text, kind, name, install)
        )
        index = end + 1
    return found


def _all() -> dict[tuple[str, str], Block]:
    named: dict[tuple[str, str], Block] = {}
    for page in DOC_PAGES:
        for block in blocks(page):
            if block.kind in ("snippet", "output") and block.name is not None:
                named[(block.kind, block.name)] = block
    return named


def snippet_block(name: str) -> Block:
    """The block tagged ``<!-- snippet: NAME -->``."""
    try:
        return _all()[("snippet", name)]
    except KeyError:
        raise AssertionError(f"no documentation block is tagged 'snippet: {name}'") from None


def snippet(name: str) -> str:
    """The text of the block tagged ``<!-- snippet: NAME -->``."""
    return snippet_block(name).text


def output(name: str) -> str:
    """The text of the block tagged ``<!-- output: NAME -->``."""
    try:
        return _all()[("output", name)].text
    except KeyError:
        raise AssertionError(f"no documentation block is tagged 'output: {name}'") from None


# Fields of a log record that differ from run to run.
VARYING_FIELDS = frozenset({"timestamp", "traceId", "principalId", "sourcePort"})


def assert_like_documented(
    documented: str, record: dict[str, object], varying: frozenset[str] = VARYING_FIELDS
) -> None:
    """``record`` has the documented record's fields, in its order, with its values but
    ``varying``'s (which must still be there)."""
    expected = json.loads(documented)
    assert list(record) == list(expected), f"fields differ: {list(record)} != {list(expected)}"
    differing = {
        key: (record[key], value)
        for key, value in expected.items()
        if key not in varying and record[key] != value
    }
    assert not differing, f"values differ (actual, documented): {differing}"
