"""``make fuzz``: run each fuzz target under atheris (libFuzzer for Python), one at a time.

Usage::

    python -m fuzz.run [--seconds N] [--targets mqtt311,topics] [--work DIR]

Each target runs in its own process for ``--seconds`` (libFuzzer's ``-max_total_time``), starting
from the committed seeds (``fuzz/corpus/<target>/``) plus the corpus earlier runs grew in the work
directory (``$FUZZ_WORK``, default ``$TMPDIR/aws-iot-mock-fuzz``), so repeated runs go deeper.
Findings: an exception that escapes a target (``fuzz/targets.py`` says which are allowed), one
input running longer than ``--timeout`` seconds (a hang), or the process passing ``--rss-mb``
(unbounded memory). libFuzzer stops a target at its first finding and writes the input to
``<work>/<target>/artifacts/``; this prints its path. To keep one as a regression, copy it into
``fuzz/corpus/<target>/`` (``tests/test_fuzz_corpus.py`` replays that directory).

Exit status: 0 when no target found anything, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

# Per target: the libFuzzer dictionary and the largest input worth trying.
_SETTINGS: dict[str, tuple[str, int]] = {
    "mqtt311": ("mqtt.dict", 4096),
    "mqtt5": ("mqtt.dict", 4096),
    "client_hello": ("client_hello.dict", 8192),
    "topics": ("topics.dict", 2048),
}


@dataclass
class Result:
    """What one target's run did."""

    target: str
    inputs: int
    seconds: float
    coverage: int
    corpus: int
    findings: list[Path]
    log: Path
    exit_code: int


def _worker(target: str, libfuzzer_args: list[str]) -> None:
    """Run one target in this process (libFuzzer calls ``exit`` when it is done)."""
    import atheris  # type: ignore[import-untyped]  # noqa: PLC0415 - only the worker needs it

    # Instrument the code under test (not the harness) for coverage feedback.
    with atheris.instrument_imports(include=["aws_iot_mock"]):
        from fuzz.targets import TARGETS  # noqa: PLC0415

    atheris.Setup([sys.argv[0], *libfuzzer_args], TARGETS[target])
    atheris.Fuzz()


def _last_int(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_target(target: str, seconds: int, work: Path, timeout: int, rss_mb: int) -> Result:
    """Fuzz ``target`` for ``seconds`` in a child process and summarise its log."""
    dictionary, max_len = _SETTINGS[target]
    grown = work / target / "corpus"
    artifacts = work / target / "artifacts"
    grown.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    before = set(artifacts.iterdir())
    log = work / target / "last-run.log"
    args = [
        str(grown),
        str(CORPUS / target),
        f"-max_total_time={seconds}",
        f"-timeout={timeout}",
        f"-rss_limit_mb={rss_mb}",
        f"-max_len={max_len}",
        f"-dict={HERE / 'dicts' / dictionary}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
    ]
    command = [sys.executable, "-m", "fuzz.run", "--worker", target, "--", *args]
    started = time.monotonic()
    with log.open("wb") as out:
        exit_code = subprocess.call(command, cwd=HERE.parent, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    text = log.read_text(encoding="utf-8", errors="replace")
    return Result(
        target=target,
        inputs=_last_int(r"stat::number_of_executed_units: (\d+)", text)
        or _last_int(r"^#(\d+)\s", text.replace("\r", "\n")),
        seconds=elapsed,
        coverage=_last_int(r"\bcov: (\d+)", text),
        corpus=len(list(grown.iterdir())) + len(list((CORPUS / target).iterdir())),
        findings=sorted(set(artifacts.iterdir()) - before),
        log=log,
        exit_code=exit_code,
    )


def _report(result: Result) -> str:
    line = (
        f"{result.target}: {result.inputs} inputs in {result.seconds:.0f} s, "
        f"coverage {result.coverage} edges, corpus {result.corpus} inputs, "
    )
    if not result.findings and result.exit_code == 0:
        return line + "findings: none"
    if not result.findings:
        return line + f"the fuzzer exited {result.exit_code} (see {result.log})"
    found = ", ".join(str(path) for path in result.findings)
    return line + f"FINDINGS: {found} (log: {result.log})"


def main(argv: list[str] | None = None) -> int:
    """Run the targets one after the other and print one summary line per target."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(argv[1], argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=45, help="per target (default 45)")
    parser.add_argument("--targets", default=",".join(_SETTINGS), help="comma-separated")
    default_work = Path(tempfile.gettempdir()) / "aws-iot-mock-fuzz"
    parser.add_argument(
        "--work", type=Path, default=Path(os.environ.get("FUZZ_WORK", default_work))
    )
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=1024, help="memory limit of a target")
    options = parser.parse_args(argv)
    targets = [t for t in options.targets.split(",") if t]
    unknown = [t for t in targets if t not in _SETTINGS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(_SETTINGS)}")
    options.work.mkdir(parents=True, exist_ok=True, mode=0o700)
    results = []
    for target in targets:
        print(f"fuzzing {target} for {options.seconds} s ...", flush=True)
        result = run_target(target, options.seconds, options.work, options.timeout, options.rss_mb)
        print(_report(result), flush=True)
        results.append(result)
    print("summary:")
    for result in results:
        print("  " + _report(result))
    return 1 if any(r.findings or r.exit_code for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
