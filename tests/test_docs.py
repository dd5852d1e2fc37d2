"""The documentation keeps its promises: every block is run by a test, install lines install what
the snippets import, links lead somewhere, and the README stays short.

The blocks themselves are run where their feature is tested (``tests/docs_snippets.py`` finds
them by name); this module checks that none is forgotten.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shlex
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.docs_snippets import DOC_PAGES, MANUAL_PAGES, REPO_ROOT, Block, blocks, snippet_block

README = REPO_ROOT / "README.md"
README_MAX_BYTES = 15_000
ALL_BLOCKS = [block for page in DOC_PAGES for block in blocks(page)]
NAMED = [block for block in ALL_BLOCKS if block.kind in ("snippet", "output")]


def _test_sources() -> str:
    here = Path(__file__).resolve()
    return "\n".join(
        path.read_text(encoding="utf-8")
        for path in sorted((REPO_ROOT / "tests").glob("*.py"))
        if path != here and path.name != "docs_snippets.py"
    )


def _where(block: Block) -> str:
    return f"{block.page}:{block.line}"


def test_every_block_is_tagged() -> None:
    untagged = [_where(block) for block in ALL_BLOCKS if block.kind is None]
    assert not untagged, (
        "untagged code blocks (add <!-- snippet: NAME --> or <!-- output: NAME --> on the line "
        f"above and run it in a test): {untagged}"
    )


def test_manual_blocks_only_where_allowed() -> None:
    manual = [block for block in ALL_BLOCKS if block.kind == "manual"]
    assert all(block.page in MANUAL_PAGES for block in manual), [_where(b) for b in manual]
    assert all(block.name for block in manual)  # the reason


def test_names_are_unique() -> None:
    counts = Counter((block.kind, block.name) for block in NAMED)
    assert [key for key, count in counts.items() if count > 1] == []


def test_every_snippet_and_output_is_used_by_a_test() -> None:
    sources = _test_sources()
    # An install line is used by test_install_line_installs_what_the_snippet_needs.
    install_lines = {block.install for block in NAMED if block.install is not None}
    unused = [
        f"{block.kind}: {block.name} ({_where(block)})"
        for block in NAMED
        if f'"{block.name}"' not in sources and block.name not in install_lines
    ]
    assert not unused, f"documentation blocks no test runs: {unused}"


# -- install lines ---------------------------------------------------------------------------


def _installed_by(line: str) -> list[Requirement]:
    """What a ``pip install`` line asks for (``-e /path/to/aws-iot-mock[x]`` is this project)."""
    words = shlex.split(line.split("#", 1)[0])
    words = words[words.index("install") + 1 :]
    wanted = []
    for word in words:
        if word.startswith("-"):
            continue
        name = word.rsplit("/", 1)[-1]
        wanted.append(Requirement(name))
    return wanted


def _closure(wanted: list[Requirement]) -> set[str]:
    """Every distribution that installing ``wanted`` installs, by canonical name."""
    seen: set[str] = set()
    todo = [(requirement.name, frozenset(requirement.extras)) for requirement in wanted]
    while todo:
        name, extras = todo.pop()
        canonical = canonicalize_name(name)
        key = canonical if not extras else f"{canonical}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(canonical)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (extras or {""})
            ):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return seen


def _imported(python: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names)


INSTALLED = [block for block in NAMED if block.install is not None]


@pytest.mark.parametrize("block", INSTALLED, ids=[str(block.name) for block in INSTALLED])
def test_install_line_installs_what_the_snippet_needs(block: Block) -> None:
    assert block.install is not None
    install = snippet_block(block.install).text.strip()
    assert install.startswith("pip install "), install
    installed = _closure(_installed_by(install))
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module in sorted(_imported(block.text)):
        distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not distributions & installed:
            missing.append(f"{module} (from {sorted(distributions)})")
    # An async test function needs an asyncio plugin although it imports none.
    if re.search(r"^async def test_", block.text, re.M) and "pytest-asyncio" not in installed:
        missing.append("pytest-asyncio (async def test_...)")
    assert not missing, f"{install!r} does not install: {missing}"


def test_the_install_check_catches_a_missing_package() -> None:
    installed = _closure(_installed_by("pip install -e /path/to/aws-iot-mock pytest"))
    assert "paho-mqtt" not in installed and "pytest-asyncio" not in installed
    assert "aws-iot-mock" in installed and "pytest" in installed
    assert "cryptography" in installed  # a runtime dependency of ours comes along


# -- links and size ---------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    anchors = set()
    fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading)))
    return anchors


@pytest.mark.parametrize("page", DOC_PAGES, ids=[page.name for page in DOC_PAGES])
def test_links_lead_somewhere(page: Path) -> None:
    broken = []
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists() or (
            anchor and destination.suffix == ".md" and anchor not in _anchors(destination)
        ):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) <= README_MAX_BYTES
    head = "\n".join(text.splitlines()[:60])
    assert "make run" in head and "make test" in head


def test_every_user_page_is_linked_from_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    pages = [page for page in DOC_PAGES if page != README]
    assert [page.name for page in pages if f"(docs/{page.name}" not in text] == []


def test_license_changelog_typed_and_pre_commit_match_the_project() -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license = { text = "Apache-2.0" }' in pyproject
    assert "Apache License\n                           Version 2.0" in (
        REPO_ROOT / "LICENSE"
    ).read_text(encoding="utf-8")
    assert (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")
    assert (REPO_ROOT / "broker" / "aws_iot_mock" / "py.typed").exists()
    assert '"aws_iot_mock" = ["py.typed"]' in pyproject
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    entries = [hook["entry"] for repo in hooks["repos"] for hook in repo["hooks"]]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    for entry in entries:  # each hook is a command `make lint` runs
        assert entry.removeprefix(".venv/bin/") in makefile, entry
    assert {
        hook["files"] for repo in hooks["repos"] for hook in repo["hooks"] if "files" in hook
    } == {"^(broker|tests|bench|stress|fuzz)/"}
