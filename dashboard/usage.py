"""The usage page's data: the most used features per app × env in the range, with users,
customers, failures, duration quantiles, their trend and their split by origin."""

from __future__ import annotations

from typing import Any

from shiftright_server.dashboard import queries
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import TimeRange, epoch, grid, levels, spans, sql_time
from shiftright_server.dashboard.warehouse import Reader, Row

ORIGINS = ("user", "test", "synthetic")


def features(reader: Reader, rng: TimeRange, scope: Scope, release: str = "") -> list[Row]:
    """Up to 50 features by uses (of every release, or of ``release``), each with a
    ``chart`` and its uses by origin."""
    base = _params(rng, scope, release)
    rows = busiest(reader, queries.FEATURES_TOP, queries.FEATURES, base)
    if not rows:
        return rows
    names = sorted({r["name"] for r in rows})
    points = grid(rng)
    index = {t: i for i, t in enumerate(points)}
    trend: dict[tuple[str, str, str], list[int]] = {}
    params = {**base, **spans(rng, rng.step_s), "names": names, "step": rng.step_s}
    for r in reader.query(queries.FEATURE_SERIES, params).dicts():
        i = index.get(epoch(r["t"]))
        if i is not None:
            trend.setdefault((r["app"], r["env"], r["name"]), [0] * len(points))[i] = r["uses"]
    for r in rows:
        key = (r["app"], r["env"], r["name"])
        r["p50"], r["p90"], r["p99"] = _quantiles(r.pop("q"))
        r["chart"] = {"t": points, "uses": trend.get(key, [0] * len(points))}
        r["origins"] = {str(k): int(v) for k, v in (r.get("origins") or {}).items()}
    return rows


def busiest(reader: Reader, top: str, states: str, params: dict[str, Any]) -> list[Row]:
    """Choose the busiest by counts alone, then merge the states of those only."""
    keys = [tuple(row) for row in reader.query(top, params).rows]
    return reader.query(states, {**params, "keys": keys}).dicts()


def _params(rng: TimeRange, scope: Scope, release: str) -> dict[str, Any]:
    return {
        "start": sql_time(rng.start),
        "end": sql_time(rng.end),
        **levels(rng),
        **scope.params(),
        "release": release,
    }


def _quantiles(q: Any) -> tuple[float | None, float | None, float | None]:
    if not q or q[0] is None or q[0] != q[0]:  # no durations recorded: NaN
        return None, None, None
    return round(q[0], 1), round(q[1], 1), round(q[2], 1)


def routes(reader: Reader, rng: TimeRange, scope: Scope, release: str = "") -> list[Row]:
    """Up to 20 routes by requests, with failures, users and p95 duration."""
    rows = busiest(reader, queries.ROUTES_TOP, queries.ROUTES, _params(rng, scope, release))
    for r in rows:
        r["p95"] = None if r["p95"] != r["p95"] else round(r["p95"], 1)  # NaN: no durations
    return rows
