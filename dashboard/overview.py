"""The overview's tiles: per app × env, request rate, errors per 1,000 requests, p50/p95
latency, CPU/memory/disk and alerts firing now, each with its series over the range and
the deploy and flag-change markers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shiftright_server.dashboard import queries
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import TimeRange, epoch, grid, spans, sql_time
from shiftright_server.dashboard.warehouse import Reader, Row

HEALTH = {
    "system.cpu.utilization": "cpu",
    "system.memory.utilization": "mem",
    "system.filesystem.utilization": "disk",
}
GAUGES = {"app.sessions.open": "sessions", "app.throughput.requests_per_second": "throughput"}
Key = tuple[str, str]


@dataclass
class Tile:
    app: str
    env: str
    index: int  # its place on the page (names its chart data)
    requests: int = 0
    failures: int = 0
    errors: int = 0
    rate: float = 0.0  # requests per second over the range
    errors_per_1000: float | None = None
    p50: float | None = None
    p95: float | None = None
    latest: dict[str, float | None] = field(default_factory=dict)  # cpu/mem/disk, last bucket
    gauges: dict[str, float] = field(default_factory=dict)  # sessions, throughput: now
    alerts: list[Row] = field(default_factory=list)
    chart: dict[str, Any] = field(default_factory=dict)  # the sparklines' data, as JSON
    versus: Tile | None = None  # compare mode: the same app in the compared env

    @property
    def empty(self) -> bool:
        return not (
            self.requests or self.errors or any(v is not None for v in self.latest.values())
        )


def params(rng: TimeRange, scope: Scope) -> dict[str, Any]:
    """The parameters every overview query takes."""
    return {
        "start": sql_time(rng.start),
        "end": sql_time(rng.end),
        "step": rng.step_s,
        **spans(rng, rng.step_s),
        **quarters(rng, rng.step_s),
        **scope.params(),
    }


QUARTER_S = 900


def quarters(rng: TimeRange, step_s: int = QUARTER_S) -> dict[str, str]:
    """Where the request series read quarter hours (migration 0017): ``quarters_start`` …
    ``quarters_end``, the whole quarter hours inside the range, when its buckets are made
    of whole quarter hours; else none, both at the range's start (minutes only)."""
    begin, stop = rng.start.timestamp(), rng.end.timestamp()
    first = rng.start + timedelta(seconds=-begin % QUARTER_S)
    last = rng.end - timedelta(seconds=stop % QUARTER_S)
    if step_s % QUARTER_S or last <= first:
        first = last = rng.start
    return {"quarters_start": sql_time(first), "quarters_end": sql_time(last)}


def build(reader: Reader, rng: TimeRange, scope: Scope, pairs: list[Key]) -> list[Tile]:
    """One tile per app × env, in the order given."""
    p = params(rng, scope)
    points = grid(rng)
    tiles = {k: Tile(*k, index=i) for i, k in enumerate(pairs)}
    series: dict[Key, dict[str, list[float | None]]] = {k: _blank(len(points)) for k in pairs}
    index = {t: i for i, t in enumerate(points)}

    def slot(row: Row) -> tuple[Key, int] | None:
        key = (row["app"], row["env"])
        i = index.get(epoch(row["t"]))
        return (key, i) if key in tiles and i is not None else None

    for row in reader.query(queries.USAGE_SERIES, p).dicts():
        if (at := slot(row)) is not None:
            (key, i), tile = at, tiles[at[0]]
            tile.requests += row["requests"]
            tile.failures += row["failures"]
            series[key]["rate"][i] = row["requests"] / rng.step_s
            series[key]["requests"][i] = row["requests"]
    for row in reader.query(queries.ERROR_SERIES, p).dicts():
        if (at := slot(row)) is not None:
            key, i = at
            tiles[key].errors += row["errors"]
            series[key]["errors"][i] = row["errors"]
    for row in reader.query(queries.LATENCY_SERIES, p).dicts():
        if (at := slot(row)) is not None:
            key, i = at
            series[key]["p50"][i], series[key]["p95"][i] = _quantiles(row["q"])
    for row in reader.query(queries.LATENCY_TOTAL, {**p, **spans(rng), **quarters(rng)}).dicts():
        if (key := (row["app"], row["env"])) in tiles:
            tiles[key].p50, tiles[key].p95 = _quantiles(row["q"])
    for row in reader.query(queries.HEALTH_SERIES, p).dicts():
        if (at := slot(row)) is not None:
            key, i = at
            series[key][HEALTH[row["metric"]]][i] = round(float(row["value"]), 4)
    for row in reader.query(queries.GAUGES, p).dicts():
        if (key := (row["app"], row["env"])) in tiles:
            tiles[key].gauges[GAUGES[row["metric"]]] = float(row["value"])
    _alerts(reader, tiles)
    found = markers(reader, p)
    for key, tile in tiles.items():
        _finish(tile, series[key], rng)
        if rng.preset:  # the current bucket is still filling: leave it off the charts
            for values in series[key].values():
                values[-1] = None
        tile.chart = {"t": points, **series[key], "markers": found.get(key, [])}
    return list(tiles.values())


def _finish(tile: Tile, s: dict[str, list[float | None]], rng: TimeRange) -> None:
    tile.rate = tile.requests / rng.elapsed_seconds
    if tile.requests:
        tile.errors_per_1000 = 1000 * tile.errors / tile.requests
    for i, (req, err) in enumerate(zip(s["requests"], s["errors"], strict=True)):
        s["err_rate"][i] = 1000 * (err or 0) / req if req else None
    for name in ("cpu", "mem", "disk"):
        tile.latest[name] = next((v for v in reversed(s[name]) if v is not None), None)


def _alerts(reader: Reader, tiles: dict[Key, Tile]) -> None:
    for row in reader.query(queries.ALERTS_FIRING, {}).dicts():
        for key, tile in tiles.items():
            if row["app"] in ("", key[0]) and row["env"] in ("", key[1]):
                tile.alerts.append(row)


def markers(reader: Reader, p: dict[str, Any]) -> dict[Key, list[dict[str, Any]]]:
    """Deploy and flag-change markers per app × env (``p`` as for the other queries)."""
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in reader.query(queries.CHANGES, p).dicts():
        label = row["name"] if row["change_type"] == "deploy" else f"{row['name']}={row['value']}"
        marker = {"t": epoch(row["ts"]), "kind": row["change_type"], "label": label}
        out[(row["app"], row["env"])].append(marker)
    return out


def _blank(n: int) -> dict[str, list[float | None]]:
    names = ("rate", "requests", "errors", "err_rate", "p50", "p95", "cpu", "mem", "disk")
    return {name: [None] * n for name in names}


def _quantiles(q: list[float | None] | None) -> tuple[float | None, float | None]:
    """p50 and p95, or None for both when the bucket had no durations (empty or NaN)."""
    if not q or q[0] is None or q[1] is None or q[0] != q[0]:
        return None, None
    return round(q[0], 2), round(q[1], 2)


CHARTED = ("rate", "err_rate", "p50", "p95", "cpu", "mem", "disk")


def compared(tiles: list[Tile], env: str) -> list[Tile]:
    """Compare mode: each other env's tile carries ``env``'s tile of the same app, whose
    series its charts draw as dashed lines; ``env``'s own tiles are not shown alone."""
    by_app = {t.app: t for t in tiles if t.env == env}
    shown = [t for t in tiles if t.env != env]
    for tile in shown:
        other = by_app.get(tile.app)
        if other is not None:
            tile.versus = other
            tile.chart["compare"] = {name: other.chart[name] for name in CHARTED}
            tile.chart["compare_env"] = env
    return shown
