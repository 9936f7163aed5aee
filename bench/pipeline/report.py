"""Reporting: the throughput and latency table, and the per-process resource table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

PROCESS_ORDER = (
    "kafka",
    "kafka JIT",
    "warehouse",
    "producer",
    "consumer",
    "streams",
    "sink",
    "bench",
    "others",
    "machine",
)


#: Ratios printed: (numerator, denominator) systems, when both ran.
RATIOS = (("full", "raw"), ("full", "baseline"), ("full", "per-event"))


def report(console: Console, results: dict[str, Any]) -> None:
    systems: dict[str, dict[str, Any]] = results["systems"]
    ratios = [(a, b) for a, b in RATIOS if a in systems and b in systems]
    table = Table(title="End-to-end throughput and latency (events → rows queryable)")
    table.add_column("")
    for label in systems:
        table.add_column(label, justify="right")
    for a, b in ratios:
        table.add_column(f"{a} / {b}", justify="right")
    for title, get, ratio in ROWS:
        values = {label: _get(get, s) for label, s in systems.items()}
        cells = [_fmt(v) for v in values.values()]
        cells += [_ratio(values[a], values[b]) if ratio else "" for a, b in ratios]
        table.add_row(title, *cells)
    console.print(table)
    console.print(_resource_table(results))
    console.print(_cpu_per_event_table(results))
    engines = results.get("engines", {})
    if engines.get("phases"):
        console.print(_engines_table(engines["phases"]))
    for side, note in engines.get("notes", {}).items():
        console.print(f"{side} counters: {note}")
    console.print(f"load average at the end (1, 5, 15 min): {results.get('load_average_at_end')}")


ROWS: list[tuple[str, Callable[[dict[str, Any]], Any], bool]] = [
    ("drain events/s (from start)", lambda s: s["drain"]["events_per_s"], True),
    ("drain events/s (first row → last)", lambda s: s["drain"]["steady_events_per_s"], True),
    ("drain seconds", lambda s: s["drain"]["seconds"], False),
    ("first rows after (s)", lambda s: s["drain"]["first_rows_after_s"], False),
    (
        "drain: stream worker done after last row (s)",
        lambda s: s["drain"]["worker_done_after_s"],
        False,
    ),
    ("live: produced events/s", lambda s: s["live"]["achieved_rate"], True),
    (
        "live: stored events/s while producing",
        lambda s: s["live"]["stored_rate_while_producing"],
        True,
    ),
    ("live: latency p50 (s)", lambda s: s["live"]["latency_p50_s"], False),
    ("live: latency p99 (s)", lambda s: s["live"]["latency_p99_s"], False),
    (
        "live: probes seen / sent",
        lambda s: f"{s['live']['probes_seen']}/{s['live']['probes_sent']}",
        False,
    ),
    ("live: rows behind at producer stop", lambda s: s["live"]["lag_at_stop"], False),
    ("live: catch-up after stop (s)", lambda s: s["live"]["catch_up_s"], False),
    ("live: kept up", lambda s: "yes" if s["live"]["kept_up"] else "no", False),
    ("stream worker done after last row (s)", lambda s: s["worker"]["after_raw_s"], False),
    ("stream worker events/s (whole run)", lambda s: s["worker"]["events_per_s"], False),
    (
        "errors grouped / stored",
        lambda s: f"{s['errors']['grouped']}/{s['errors']['raw']}",
        False,
    ),
    ("errors all grouped after last row (s)", lambda s: s["errors"]["after_raw_s"], False),
]


def _ratio(a: Any, b: Any) -> str:
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    return f"{a / b:.2f}×" if numbers and b else ""


def _get(get: Callable[[dict[str, Any]], Any], system: dict[str, Any] | None) -> Any:
    try:
        return get(system) if system else None
    except (KeyError, TypeError):
        return None


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _process_names(seen: Any) -> list[str]:
    """The processes in the tables' order, each instance after its kind's first
    (``streams``, ``streams-1``, …)."""
    names: list[str] = []
    for name in PROCESS_ORDER:
        names.append(name)
        names += sorted(n for n in seen if n.startswith(f"{name}-"))
    return names


def _tags(results: dict[str, Any]) -> list[str]:
    cpu = results["resources"]["cpu"]
    return [f"{s}.{p}" for s in results["systems"] for p in ("drain", "live") if f"{s}.{p}" in cpu]


def _resource_table(results: dict[str, Any]) -> Table:
    res, tags = results["resources"], _tags(results)
    systems = list(results["systems"])
    table = Table(title="Per process: peak RSS (MiB) and CPU used (cores = CPU s / wall s)")
    table.add_column("process")
    for system in systems:
        table.add_column(f"RSS {system}", justify="right")
    for tag in tags:
        table.add_column(f"cores {tag}", justify="right")
    seen = {n for t in tags for n in res["cpu"][t]}
    for name in _process_names(seen):
        peaks = [res["peak_rss_mib"].get(s, {}).get(name) for s in systems]
        cpus = [res["cpu"][t].get(name) for t in tags]
        cores = [
            None if c is None else round(c / res["wall"][t], 2)
            for c, t in zip(cpus, tags, strict=True)
        ]
        if any(v is not None for v in (*peaks, *cores)):
            table.add_row(name, *(_fmt(v) for v in peaks), *(_fmt(v) for v in cores))
    return table


def cpu_per_event(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """µs of CPU per event, per phase tag and process (machine: the whole machine's busy
    time, other work on it included)."""
    out: dict[str, dict[str, float]] = {}
    for tag in _tags(results):
        system, phase = tag.split(".")
        run = results["systems"][system][phase]
        events = run["events"] if phase == "drain" else run["delivered"]
        cpu = results["resources"]["cpu"][tag]
        out[tag] = {name: round(seconds / max(1, events) * 1e6, 1) for name, seconds in cpu.items()}
    return out


def _cpu_per_event_table(results: dict[str, Any]) -> Table:
    per_event = cpu_per_event(results)
    table = Table(title="CPU per event (µs of CPU time / events of the phase)")
    table.add_column("process")
    for tag in per_event:
        table.add_column(tag, justify="right")
    for name in _process_names({n for figures in per_event.values() for n in figures}):
        values = [per_event[t].get(name) for t in per_event]
        if any(v is not None for v in values):
            table.add_row(name, *(_fmt(v) for v in values))
    return table


def _engines_table(phases: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="The engines' own counters per phase (warehouse system.events, broker JMX)")
    table.add_column("")
    for tag in phases:
        table.add_column(tag, justify="right")
    names = list(dict.fromkeys(name for figures in phases.values() for name in figures))
    for name in names:
        table.add_row(name, *(_fmt(phases[t].get(name)) for t in phases))
    return table
