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


def report(console: Console, results: dict[str, Any]) -> None:
    b, f = results["systems"].get("baseline"), results["systems"].get("full")
    table = Table(title="End-to-end throughput and latency (events → rows queryable)")
    table.add_column("")
    table.add_column("baseline", justify="right")
    table.add_column("full pipeline", justify="right")
    table.add_column("full / baseline", justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], Any], bool]] = [
        ("drain events/s (from start)", lambda s: s["drain"]["events_per_s"], True),
        ("drain events/s (first row → last)", lambda s: s["drain"]["steady_events_per_s"], True),
        ("drain seconds", lambda s: s["drain"]["seconds"], False),
        ("first rows after (s)", lambda s: s["drain"]["first_rows_after_s"], False),
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
    for title, get, ratio in rows:
        vb, vf = (_get(get, b), _get(get, f))
        r = (
            f"{vf / vb:.2f}×"
            if ratio and isinstance(vb, int | float) and isinstance(vf, int | float) and vb
            else ""
        )
        table.add_row(title, _fmt(vb), _fmt(vf), r)
    console.print(table)
    console.print(_resource_table(results))


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


def _resource_table(results: dict[str, Any]) -> Table:
    res = results["resources"]
    tags = [
        t for t in ("baseline.drain", "baseline.live", "full.drain", "full.live") if t in res["cpu"]
    ]
    table = Table(title="Per process: peak RSS (MiB) and CPU used (cores = CPU s / wall s)")
    table.add_column("process")
    for system in ("baseline", "full"):
        table.add_column(f"RSS {system}", justify="right")
    for tag in tags:
        table.add_column(f"cores {tag}", justify="right")
    for name in PROCESS_ORDER:
        peaks = [res["peak_rss_mib"].get(s, {}).get(name) for s in ("baseline", "full")]
        cpus = [res["cpu"][t].get(name) for t in tags]
        cores = [
            None if c is None else round(c / res["wall"][t], 2)
            for c, t in zip(cpus, tags, strict=True)
        ]
        if any(v is not None for v in (*peaks, *cores)):
            table.add_row(name, *(_fmt(v) for v in peaks), *(_fmt(v) for v in cores))
    return table
