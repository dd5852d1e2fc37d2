"""Summaries of a bench run: the table of medians and ratios, as text, Markdown and JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from bench.scenarios import METRICS, Metric, Profile, Sample, median

__all__ = ["details_markdown", "summarize", "table_markdown", "table_text"]

KINDS = ("ours", "mosquitto", "amqtt")
Samples = Mapping[str, Mapping[str, Sequence[Sample]]]  # scenario -> broker -> samples


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(ours: float, other: float) -> float:
    if math.isnan(ours) or math.isnan(other) or other == 0:
        return float("nan")
    return ours / other


def summarize(samples: Samples, profile: Profile) -> list[dict[str, Any]]:
    """One row per metric: per broker median/min/max/values, ratios, target and verdict."""
    rows: list[dict[str, Any]] = []
    for metric in METRICS:
        per_broker = samples.get(metric.scenario, {})
        row: dict[str, Any] = {
            "scenario": metric.scenario,
            "metric": metric.key,
            "label": metric.label,
            "unit": metric.unit,
            "higher_is_better": metric.higher_is_better,
            "target": metric.target,
            "brokers": {},
        }
        medians: dict[str, float] = {}
        for kind in KINDS:
            values = [
                s.values[metric.key]
                for s in per_broker.get(kind, ())
                if not math.isnan(s.values.get(metric.key, float("nan")))
            ]
            medians[kind] = median(values)
            row["brokers"][kind] = {
                "median": medians[kind],
                "min": min(values, default=float("nan")),
                "max": max(values, default=float("nan")),
                "values": values,
            }
        row["ours_over_mosquitto"] = _ratio(medians["ours"], medians["mosquitto"])
        row["ours_over_amqtt"] = _ratio(medians["ours"], medians["amqtt"])
        row["met"] = _verdict(metric, medians, profile)
        rows.append(row)
    return rows


def _verdict(metric: Metric, medians: Mapping[str, float], profile: Profile) -> bool | None:
    if metric.check is None or math.isnan(medians["ours"]):
        return None
    mosquitto = None if math.isnan(medians["mosquitto"]) else medians["mosquitto"]
    return metric.check(medians["ours"], mosquitto, profile)


def _cell(stats: Mapping[str, Any]) -> str:
    values = stats["values"]
    if not values:
        return "n/a"
    if len(values) == 1:
        return _fmt(stats["median"])
    return f"{_fmt(stats['median'])} ({_fmt(stats['min'])}-{_fmt(stats['max'])})"


def _met(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: ""}[value]


def _cells(row: Mapping[str, Any]) -> list[str]:
    arrow = "^" if row["higher_is_better"] else "v"
    return [
        f"{row['label']} [{row['unit']}] {arrow}",
        *(_cell(row["brokers"][kind]) for kind in KINDS),
        _fmt(row["ours_over_mosquitto"]),
        _fmt(row["ours_over_amqtt"]),
        row["target"],
        _met(row["met"]),
    ]


HEADER = [
    "metric (^ higher / v lower is better)",
    *KINDS,
    "ours/mosq",
    "ours/amqtt",
    "target",
    "met",
]


def table_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width table for the terminal."""
    body = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in body) for i in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in body
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The same table in Markdown."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def _detail_text(details: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for key, value in details.items():
        if key == "generator" and isinstance(value, Mapping):
            parts.append(
                f"generators: {value['processes']} procs, {value['cores']:.2f} cores, "
                f"busiest {value['busiest_core_share']:.0%}"
            )
        elif key in {"samples_s"}:
            continue
        elif isinstance(value, float):
            parts.append(f"{key} {_fmt(value)}")
        elif value not in ("", None):
            parts.append(f"{key} {value}")
    return "; ".join(parts)


def details_markdown(samples: Samples) -> str:
    """Per run: counts (delivered, duplicates, missing), generator and broker CPU."""
    lines = ["| scenario | broker | round | details |", "|---|---|---|---|"]
    for scenario, per_broker in samples.items():
        for kind in KINDS:
            for index, sample in enumerate(per_broker.get(kind, ()), start=1):
                lines.append(f"| {scenario} | {kind} | {index} | {_detail_text(sample.details)} |")
    return "\n".join(lines)
