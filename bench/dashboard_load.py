"""The warehouse ``bench.dashboard`` reads: in a temp folder or a kept one (``--keep``),
its data generated (:mod:`bench.dashboard_data`) or reused, the wait for its merges to
end, and the readings the bench prints beside its figures (load average, a process's
CPU)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dashboard_data import SETTINGS, generate

DB = "bench"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"(machine load average {one:.1f} / {five:.1f} over 1 / 5 min)"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


ROLLUPS = (
    "usage_minutely",
    "usage_features_minutely",
    "usage_features_hourly",
    "usage_routes_minutely",
    "usage_routes_hourly",
    "usage_feature_list_levels",
    "usage_route_list_levels",
    "usage_feature_choices",
    "usage_route_choices",
    "usage_feature_sketches",
    "usage_route_sketches",
    "usage_app_minutely",
    "usage_app_quarter_hourly",
    "usage_app_hourly",
    "health_minutely",
    "health_minutely_by_hour",
    "health_hourly",
    "health_app_minutely",
    "errors_grouped_by_hour",
)


def table_rows(client: Any) -> list[tuple[str, int]]:
    """Rows per rollup table after its background merges so far (what a query reads)."""
    return [(t, int(client.command(f"SELECT count() FROM {t}"))) for t in ROLLUPS]


def shape(args: Any) -> dict[str, float]:
    return {"usage": args.usage, "errors": args.errors, "days": args.days}


def load_data(client: Any, args: Any, warehouse_pid: int, tmp: Path, end: datetime | None) -> None:
    """Generate the data, or reuse what ``--keep`` kept (loaded up to ``end``)."""
    if end is not None:
        age = (datetime.now(UTC) - end).total_seconds() / 60
        print(
            f"kept data from {end:%Y-%m-%d %H:%M} UTC ({age:.0f} min old) in {tmp}: {shape(args)}"
        )
        return
    print(
        f"generating {args.usage:,} usage events and {args.errors:,} errors over {args.days} days:"
    )
    began, cpu_before, end = time.perf_counter(), cpu_seconds(warehouse_pid), datetime.now(UTC)
    took = generate(
        lambda sql: client.command(sql, settings=SETTINGS),
        DB,
        args.usage,
        args.errors,
        end,
        args.days,
    )
    cpu = cpu_seconds(warehouse_pid) - cpu_before
    print(
        f"  generated in {time.perf_counter() - began:.0f} s ({took['usage']:.0f} s for usage), "
        f"{cpu:.0f} s of warehouse CPU {load()}"
    )
    if args.keep:
        remember(tmp, shape(args), end)


@contextlib.contextmanager
def folder(keep: str | None) -> Iterator[Path]:
    """``keep`` (made if missing), or a temp dir removed afterwards."""
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep).resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        yield Path(tmp)


class KeptMismatch(RuntimeError):
    """A kept warehouse that cannot be reused as asked (the message says why)."""


def kept(folder: Path, shape: dict[str, float]) -> datetime | None:
    """When the data of ``shape`` (usage, errors, days) was loaded into ``folder``'s kept
    warehouse, or None when nothing was; a half-finished load or another shape is refused
    (loading again on top would count events twice)."""
    note = folder / "loaded.json"
    if not note.exists():
        if any((folder / "warehouse").glob("*")):
            raise KeptMismatch(f"{folder} holds a warehouse whose load did not finish: remove it")
        return None
    found = json.loads(note.read_text())
    if found["shape"] != shape:
        raise KeptMismatch(f"{folder} holds {found['shape']}, not {shape}: use another folder")
    return datetime.fromisoformat(found["end"])


def remember(folder: Path, shape: dict[str, float], end: datetime) -> None:
    """Note that ``folder``'s warehouse holds the data of ``shape`` up to ``end``."""
    (folder / "loaded.json").write_text(json.dumps({"shape": shape, "end": end.isoformat()}))


MERGING = "SELECT count() FROM system.merges WHERE database = currentDatabase()"
PARTS = "SELECT count() FROM system.parts WHERE active AND database = currentDatabase()"


def settle(client: Any, limit_s: float, still_s: float = 10.0) -> None:
    """Wait, at most ``limit_s``, until the warehouse's background merges of the load are
    over: no merge running and the count of active parts unchanged for ``still_s``. The
    panel queries are then timed on their own, not beside the load's merges."""
    began = time.monotonic()
    parts, since = -1, began
    while (waited := time.monotonic() - began) < limit_s:
        merging, now = int(client.command(MERGING)), int(client.command(PARTS))
        if merging or now != parts:
            parts, since = now, time.monotonic()
        elif time.monotonic() - since >= still_s:
            print(f"  merges settled after {waited:.0f} s: {parts:,} active parts {load()}")
            return
        time.sleep(1.0)
    print(
        f"  merges not settled after {limit_s:.0f} s ({int(client.command(MERGING))} running, "
        f"{int(client.command(PARTS)):,} active parts): timing anyway {load()}"
    )
