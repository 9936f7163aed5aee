"""The usage page's data: the most used features per app × env in the range, with users,
customers, failures, duration quantiles, their trend and their split by origin; the
busiest routes. Its queries that do not wait on each other run side by side
(:func:`together`): the features' states and trend, the routes' choice and states."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from shiftright_server.dashboard import queries
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import (
    TimeRange,
    epoch,
    filled,
    grid,
    hourly_step,
    levels,
    sketch_filled,
    sketch_levels,
    spans,
    sql_time,
)
from shiftright_server.dashboard.warehouse import Reader, Row

ORIGINS = ("user", "test", "synthetic")
#: Queries run beside a request's own thread, for every request together
#: (``dashboard.queries_beside``): the bound on how many usage queries one dashboard sends
#: at once beyond one per request. None: one after another.
_POOL: ThreadPoolExecutor | None = None
_THREADS = 0
T = TypeVar("T")


def run_beside(threads: int) -> None:
    """How many queries the dashboard runs beside its requests' own (0: none, a page
    reads its panels one after another)."""
    global _POOL, _THREADS
    if threads == _THREADS:
        return  # the same bound: requests already in flight keep their pool
    old, _THREADS = _POOL, threads
    _POOL = ThreadPoolExecutor(threads, thread_name_prefix="usage-query") if threads else None
    if old is not None:
        old.shutdown(wait=False)


def together(first: Callable[[], T], second: Callable[[], Any]) -> tuple[T, Any]:
    """Both answers: ``second`` runs in the shared pool (with this request's context,
    so its queries are timed with the request's), ``first`` in the calling thread. A
    call in the pool never waits on the pool, so requests cannot starve each other."""
    pool = _POOL
    if pool is None:
        return first(), second()
    beside = pool.submit(contextvars.copy_context().run, second)
    try:
        mine = first()
    finally:
        theirs = beside.result()  # waits for it even when ``first`` failed; re-raises
    return mine, theirs


def lists(
    reader: Reader, rng: TimeRange, features_scope: Scope, routes_scope: Scope, release: str = ""
) -> tuple[list[Row], list[Row]]:
    """The page's features (over ``features_scope``) and routes (over ``routes_scope``)."""
    return together(
        lambda: features(reader, rng, features_scope, release),
        lambda: routes(reader, rng, routes_scope, release),
    )


def features(reader: Reader, rng: TimeRange, scope: Scope, release: str = "") -> list[Row]:
    """Up to 50 features by uses (of every release, or of ``release``), each with a
    ``chart`` and its uses by origin."""
    base = _params(rng, scope, release)
    top, states = list_queries("features", release, rng)
    keys = _keys(reader, top, base)
    names = sorted({name for _, _, name in keys})
    rows, trend = together(
        lambda: reader.query(states, {**base, "keys": keys}).dicts(),
        lambda: _trend(reader, rng, base, names),
    )
    points = grid(rng, hourly_step(rng))
    for r in rows:
        key = (r["app"], r["env"], r["name"])
        r["p50"], r["p90"], r["p99"] = _quantiles(r.pop("q"))
        r["chart"] = {"t": points, "uses": trend.get(key, [0] * len(points))}
        r["origins"] = {str(k): int(v) for k, v in (r.get("origins") or {}).items()}
    return rows


def _trend(
    reader: Reader, rng: TimeRange, base: dict[str, Any], names: list[str]
) -> dict[tuple[str, str, str], list[int]]:
    """Uses per chart bucket of each (app, env, feature) of ``names``, in buckets of at
    least an hour over a day or more (:func:`hourly_step`)."""
    step = hourly_step(rng)
    points = grid(rng, step)
    index = {t: i for i, t in enumerate(points)}
    trend: dict[tuple[str, str, str], list[int]] = {}
    params = {**base, **spans(rng, step), "names": names, "step": step}
    for r in reader.query(queries.FEATURE_SERIES, params).dicts():
        i = index.get(epoch(r["t"]))
        if i is not None:
            trend.setdefault((r["app"], r["env"], r["name"]), [0] * len(points))[i] = r["uses"]
    return trend


def list_queries(kind: str, release: str, rng: TimeRange) -> tuple[str, str]:
    """The queries that choose the busiest ``kind`` (``features`` or ``routes``) and
    merge their states, of every release or of ``release`` alone, reading the levels
    that hold time for ``rng`` (:func:`~shiftright_server.dashboard.timerange.filled`;
    the features and routes of every release from their sketch levels,
    :func:`~shiftright_server.dashboard.timerange.sketch_filled`)."""
    panel = f"release_{kind}" if release else kind
    top = queries.usage_list(f"{panel}_top", filled(rng))
    if panel == "features":
        return top, queries.feature_sketches(sketch_filled(rng))
    if panel == "routes":
        return top, queries.route_sketches(sketch_filled(rng))
    return top, queries.usage_list(panel, filled(rng))


def busiest(reader: Reader, top: str, states: str, params: dict[str, Any]) -> list[Row]:
    """Choose the busiest by counts alone, then merge the states of those only."""
    keys = _keys(reader, top, params)
    return reader.query(states, {**params, "keys": keys}).dicts()


def _keys(reader: Reader, top: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in reader.query(top, params).rows]


def _params(rng: TimeRange, scope: Scope, release: str) -> dict[str, Any]:
    return {
        "start": sql_time(rng.start),
        "end": sql_time(rng.end),
        **levels(rng),
        **sketch_levels(rng),
        **scope.params(),
        "release": release,
    }


def _quantiles(q: Any) -> tuple[float | None, float | None, float | None]:
    if not q or q[0] is None or q[0] != q[0]:  # no durations recorded: NaN
        return None, None, None
    return round(q[0], 1), round(q[1], 1), round(q[2], 1)


def routes(reader: Reader, rng: TimeRange, scope: Scope, release: str = "") -> list[Row]:
    """Up to 20 routes by requests (of every release, or of ``release``), with failures,
    users and p95 duration."""
    queried = list_queries("routes", release, rng)
    rows = busiest(reader, *queried, _params(rng, scope, release))
    for r in rows:
        r["p95"] = None if r["p95"] != r["p95"] else round(r["p95"], 1)  # NaN: no durations
    return rows
