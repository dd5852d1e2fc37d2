"""``make bench``: our broker, Mosquitto and amqtt side by side; ``python -m bench.run [--quick]``.

Sets up one PKI (our CLI: root CA, ECDSA server certificate, an ACTIVE device certificate with a
policy for the bench's client IDs and topics), starts the three brokers on 127.0.0.1, and runs
every scenario against them in alternation (ours, mosquitto, amqtt, ours, ...) for several
rounds. Prints the table and writes ``bench/results/<timestamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.brokers import KINDS, REPO, free_port, setup_pki, wait_ready
from bench.procs import cpu_seconds
from bench.report import details_markdown, summarize, table_markdown, table_text
from bench.scenarios import FULL, QUICK, SCENARIOS, Bench, Profile, Sample

__all__ = ["main"]

RESULTS = REPO / "bench" / "results"


def _log(start: float, message: str) -> None:
    print(f"[{time.monotonic() - start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _raise_fd_limit(wanted: int = 0) -> int:
    """Raise the open-files limit (inherited by the brokers and load generators); return it.

    The soft limit goes to the hard one; when ``wanted`` is more than that (50,000 idle
    connections need as many descriptors in the broker) and the process may raise its hard
    limit (root, or CAP_SYS_RESOURCE), the hard limit goes up too, to at most fs.nr_open.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and wanted > hard:
        try:
            ceiling = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            ceiling = wanted
        raised = min(wanted, ceiling)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, raised))
            return raised
        except (ValueError, OSError):
            pass  # not permitted: the soft limit up to the hard one, below
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _load() -> dict[str, str]:
    """The machine's load right now: the bench shares it with whatever else runs."""
    return {
        "loadavg": _read("/proc/loadavg"),
        "cpu_pressure": _read("/proc/pressure/cpu").splitlines()[0]
        if _read("/proc/pressure/cpu")
        else "",
    }


def _system_busy() -> float:
    """CPU seconds all processes of the machine have used since boot (every core summed)."""
    fields = _read("/proc/stat").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _bench_cpu(bench: Bench) -> float:
    """CPU seconds of the bench itself: this process, its reaped children, the main brokers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return total + sum(cpu_seconds(broker.pid) for broker in bench.brokers.values())


def _measure(bench: Bench, run: Callable[[Bench, str], Sample], kind: str) -> Sample:
    """Run one scenario against one broker, noting how much CPU other users took meanwhile."""
    busy0, ours0, t0 = _system_busy(), _bench_cpu(bench), time.monotonic()
    try:
        sample = run(bench, kind)
    except Exception as exc:
        traceback.print_exc()
        sample = Sample({}, {"error": f"{type(exc).__name__}: {exc}"})
    wall = time.monotonic() - t0
    others = (_system_busy() - busy0) - (_bench_cpu(bench) - ours0)
    # Cores used by processes outside the bench during this run: the noise indicator.
    sample.details["other_load_cores"] = round(max(0.0, others) / wall, 2)
    return sample


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else ""


def _machine() -> dict[str, Any]:
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    mhz = [
        float(line.split(":", 1)[1])
        for line in _read("/proc/cpuinfo").splitlines()
        if line.startswith("cpu MHz")
    ]
    return {
        "cpus": os.cpu_count(),
        # What this process may use: a cgroup quota ("max 100000" = none) or an affinity mask
        # can give the bench fewer cores than the machine has.
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cgroup_cpu_max": _read("/sys/fs/cgroup/cpu.max") or "n/a",
        "cpu_model": model,
        "cpu_mhz": round(sum(mhz) / len(mhz)) if mhz else None,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _machine_line(machine: dict[str, Any]) -> str:
    """The machine facts printed and written with every table."""
    return (
        f"Machine: {machine['cpus']} CPUs ({machine['cpus_usable']} usable, cgroup cpu.max "
        f"{machine['cgroup_cpu_max']}; {machine['cpu_model']}, {machine['cpu_mhz']} MHz), "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python {machine['python']}."
    )


def _versions(mosquitto: str) -> dict[str, str]:
    def dist(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "ours": dist("aws-iot-mock"),
        "mosquitto": _version([mosquitto, "-h"]),
        "mosquitto_clients": _version(["mosquitto_pub", "--help"]),
        "amqtt": dist("amqtt"),
        "uvloop": dist("uvloop"),
    }


def _check_tools() -> str:
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: run bench/ensure-deps.sh")
    from bench.brokers import mosquitto_binary  # noqa: PLC0415

    if importlib.util.find_spec("amqtt") is None:
        raise SystemExit("amqtt not importable: run bench/ensure-deps.sh")
    return mosquitto_binary()


def _start_brokers(bench: Bench, start: float) -> None:
    launched = [bench.launch(kind, free_port(), "main") for kind in KINDS]
    for broker in launched:
        took = wait_ready(broker, bench.pki)
        _log(start, f"{broker.kind} ready on port {broker.port} after {took:.2f} s")
        bench.brokers[broker.kind] = broker


def _restart(bench: Bench, kind: str, start: float) -> None:
    old = bench.brokers[kind]
    if old.proc.poll() is None:
        old.proc.kill()  # discarded with its backlog: no graceful shutdown to wait for
    old.proc.wait()
    fresh = bench.launch(kind, free_port(), f"restart-{bench.uid()}")
    wait_ready(fresh, bench.pki)
    bench.brokers[kind] = fresh
    _log(start, f"{kind} restarted on port {fresh.port}")


def _ensure_alive(bench: Bench, kind: str, start: float) -> None:
    broker = bench.brokers[kind]
    if broker.proc.poll() is None:
        return
    _log(start, f"{kind} died ({broker.proc.returncode}); see {broker.log}")
    _restart(bench, kind, start)


def _describe(sample: Sample) -> str:
    values = ", ".join(f"{key}={value:.4g}" for key, value in sample.values.items())
    details = sample.details
    extra = []
    for key in ("unique", "expected", "duplicates", "partial", "errors", "accepted", "error"):
        if key in details:
            extra.append(f"{key}={details[key]}")
    if "generator" in details:
        generator = details["generator"]
        extra.append(
            f"gen={generator['cores']:.2f} cores, busiest {generator['busiest_core_share']:.0%}"
        )
    if "broker_core_share" in details:
        extra.append(f"broker={details['broker_core_share']:.0%}")
    if "other_load_cores" in details:
        extra.append(f"others={details['other_load_cores']:.2f} cores")
    return f"{values} ({' '.join(extra)})"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, 1 round (< 2 min)")
    parser.add_argument("--rounds", type=int, help="override the profile's rounds")
    parser.add_argument(
        "--only", nargs="+", metavar="SCENARIO", help="run these scenarios only (development)"
    )
    parser.add_argument("--brokers", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--budget", type=float, help="seconds; later runs are skipped after it")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--idle-connections",
        type=int,
        metavar="N",
        help="idle connections held in the idle scenario (e.g. 50000; default: the profile's)",
    )
    return parser.parse_args(argv)


def _profile(args: argparse.Namespace) -> Profile:
    profile = QUICK if args.quick else FULL
    if args.rounds:
        profile = dataclasses.replace(profile, rounds=args.rounds)
    if args.idle_connections:
        profile = dataclasses.replace(
            profile,
            idle_connections=args.idle_connections,
            # Mutual-TLS handshakes run at a few dozen to a few hundred a second on a small,
            # shared machine (RSA-2048 client certificates).
            idle_timeout=max(profile.idle_timeout, args.idle_connections / 20),
        )
    return profile


Samples = dict[str, dict[str, list[Sample]]]


def _run_scenarios(
    args: argparse.Namespace, bench: Bench, start: float, budget: float
) -> tuple[Samples, list[str]]:
    """Every scenario, round after round, brokers in alternation; runs past the budget skipped."""
    profile = bench.profile
    samples: Samples = {}
    skipped: list[str] = []
    for scenario in SCENARIOS:
        if args.only and scenario.key not in args.only:
            continue
        kinds = [kind for kind in scenario.kinds if kind in args.brokers]
        per_broker = samples.setdefault(scenario.key, {kind: [] for kind in kinds})
        for round_number in range(1, scenario.rounds(profile) + 1):
            for kind in kinds:
                label = f"{scenario.key} r{round_number} {kind}"
                if time.monotonic() - start > budget:
                    skipped.append(label)
                    continue
                _ensure_alive(bench, kind, start)
                bench.settle()
                sample = _measure(bench, scenario.run, kind)
                per_broker[kind].append(sample)
                _log(start, f"{label}: {_describe(sample)}")
                if sample.details.get("partial") or "error" in sample.details:
                    # Cut by the deadline (or failed): a fresh broker beats waiting for it to
                    # drain a backlog that would steal CPU from the next broker's run.
                    _restart(bench, kind, start)
    return samples, skipped


SETTINGS = {
    "tls": "TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256, ECDSA P-256 server certificate, client "
    "certificate required (RSA 2048 device certificate from our CA), SNI localhost",
    "ours": "python -m aws_iot_mock serve, bench/ours.yaml (log level ERROR), IoT policy enforced",
    "mosquitto": "max_inflight_messages 100, max_queued_messages 10000000, persistence false",
    "amqtt": "bench/amqtt_server.py: TLS context tightened to CERT_REQUIRED, TLS 1.2, one "
    "cipher; no logging/$SYS plugins; asyncio event loop (as its CLI runs)",
    "clients": "MQTT 3.1.1, clean session; mosquitto_pub -l / mosquitto_sub -C (C) for 1->1 "
    "and fan-out, python -m bench.loadgen worker processes for the rest",
}


def _clean(value: object) -> object:
    """JSON-safe: NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def _write(meta: dict[str, Any], rows: list[dict[str, Any]], samples: Samples) -> list[Path]:
    stamp = str(meta["started_at"]).replace("-", "").replace(":", "").replace("+0000", "Z")
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{stamp}.json"
    md_path = RESULTS / f"{stamp}.md"
    raw = {
        scenario: {
            kind: [{"values": s.values, "details": s.details} for s in runs]
            for kind, runs in per_broker.items()
        }
        for scenario, per_broker in samples.items()
    }
    document = _clean({"meta": meta, "table": rows, "runs": raw})
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    md_path.write_text(_markdown(meta, rows, samples))
    return [json_path, md_path]


def main(argv: list[str] | None = None) -> int:
    """Run the bench."""
    args = _parse(argv)
    profile = _profile(args)
    budget = args.budget or (100.0 if args.quick else 840.0)
    start = time.monotonic()
    started_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    mosquitto = _check_tools()
    # The broker holds one descriptor per idle connection, plus its own few hundred.
    fd_limit = _raise_fd_limit(profile.idle_connections + 4096)
    if fd_limit < profile.idle_connections + 64:
        # No broker can hold more connections than it may open descriptors (say it up front:
        # the run then shows every broker refusing at the same count).
        print(
            f"bench: the open-files limit is {fd_limit} and cannot be raised (the hard limit "
            "needs root or CAP_SYS_RESOURCE): the idle scenario cannot hold "
            f"{profile.idle_connections} connections in one broker process",
            file=sys.stderr,
        )
    load_before = _load()
    workdir = Path(tempfile.mkdtemp(prefix="aws-iot-mock-bench-"))
    _log(start, f"profile {profile.name}, {profile.rounds} round(s), scratch {workdir}")
    pki = setup_pki(workdir, sys.executable)
    _log(start, "PKI, device certificate and policy created with our CLI")
    bench = Bench(profile, pki, workdir, sys.executable, {})
    try:
        _start_brokers(bench, start)
        samples, skipped = _run_scenarios(args, bench, start, budget)
    finally:
        for broker in bench.brokers.values():
            broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - start
    rows = summarize(samples, profile)
    meta: dict[str, Any] = {
        "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "elapsed_s": round(elapsed, 1),
        "profile": dataclasses.asdict(profile),
        "machine": _machine(),
        "versions": _versions(mosquitto),
        "load_before": load_before,
        "load_after": _load(),
        "fd_limit": fd_limit,
        "skipped_over_budget": skipped,
        "settings": SETTINGS,
    }
    paths = _write(meta, rows, samples)
    print()
    print(table_text(rows))
    print()
    print(_machine_line(meta["machine"]))
    print(f"load before: {load_before['loadavg']} | {load_before['cpu_pressure']}")
    print(f"load after:  {meta['load_after']['loadavg']} | {meta['load_after']['cpu_pressure']}")
    if skipped:
        print(f"skipped (over the {budget:.0f} s budget): {', '.join(skipped)}")
    where = ", ".join(str(path.relative_to(REPO)) for path in paths)
    print(f"{elapsed:.0f} s; results: {where}")
    return 0


def _markdown(meta: dict[str, Any], rows: list[dict[str, Any]], samples: Samples) -> str:
    machine = meta["machine"]
    versions = meta["versions"]
    before, after = meta["load_before"], meta["load_after"]
    lines = [
        f"# Bench {meta['started_at']} ({meta['profile']['name']}, "
        f"{meta['profile']['rounds']} round(s), {meta['elapsed_s']} s)",
        "",
        _machine_line(machine),
        f"Versions: ours {versions['ours']}; {versions['mosquitto']}; amqtt {versions['amqtt']}.",
        f"Load before: `{before['loadavg']}` / `{before['cpu_pressure']}`;"
        f" after: `{after['loadavg']}` / `{after['cpu_pressure']}`.",
        "",
        "Cells: median (min-max over rounds). Ratios are of medians.",
        "",
        table_markdown(rows),
        "",
        "## Settings",
        "",
        *(f"- {key}: {value}" for key, value in meta["settings"].items()),
        "",
        "## Runs: counts, generator and broker CPU",
        "",
        "`busiest` is the busiest load-generator process's share of one core during the run;"
        " `broker_core_share` the broker's.",
        "",
        details_markdown(samples),
        "",
    ]
    if meta["skipped_over_budget"]:
        lines += [f"Skipped over budget: {', '.join(meta['skipped_over_budget'])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
