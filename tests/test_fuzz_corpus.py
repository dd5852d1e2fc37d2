"""Replay the fuzzing corpus (``fuzz/corpus/<target>/``) through the fuzz targets' oracles.

``make fuzz`` runs the same targets under a coverage-guided fuzzer; this runs every committed
input once, without the fuzzer, so the seeds stay valid and every input that once found a bug
(copied into the corpus) stays a regression test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS

CORPUS = Path(__file__).parent.parent / "fuzz" / "corpus"
INPUTS = sorted(
    (target, path) for target in TARGETS for path in (CORPUS / target).iterdir() if path.is_file()
)


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=lambda v: getattr(v, "name", v))
def test_corpus_input_passes_its_oracle(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def test_every_target_has_seeds() -> None:
    assert {target for target, _ in INPUTS} == set(TARGETS)
