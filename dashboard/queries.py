"""The SQL behind the dashboard's panels, read through server-side parameters.

Each query starts with a ``/* dashboard.<name> */`` tag: it names the panel in the
warehouse's query log, and the unit tests' fake reader answers by it. Every query takes
``start``/``end`` (``DateTime('UTC')``, whole minutes, end exclusive) where it has a range,
``step`` (bucket seconds), and ``app``/``env`` filters where '' means any. Queries over
the rollups of migration 0012 also take ``hours_start``/``hours_end``
(:func:`~shiftright_server.dashboard.timerange.spans`), the overview's request series
also ``quarters_start``/``quarters_end`` (migration 0017,
:func:`~shiftright_server.dashboard.overview.quarters`), the usage lists over those of
0013 and 0024 also ``quarter_days_*`` and ``days_*``
(:func:`~shiftright_server.dashboard.timerange.levels`), the features and routes of every
release over their sketch levels (0019, 0024) ``span<seconds>_*``
(:func:`~shiftright_server.dashboard.timerange.sketch_levels`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, partial
from typing import Final

from shiftright_server.dashboard.timerange import SKETCH_SPANS

_SCOPE: Final = (
    "({app:String} = '' OR app = {app:String}) AND ({env:String} = '' OR env = {env:String})"
)
_MINUTES: Final = "minute >= {start:DateTime('UTC')} AND minute < {end:DateTime('UTC')}"
_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"
_BUCKET: Final = "toStartOfInterval({col}, toIntervalSecond({{step:UInt32}}))"
_RELEASE: Final = "({release:String} = '' OR release = {release:String})"
_HOURS: Final = "hour >= {hours_start:DateTime('UTC')} AND hour < {hours_end:DateTime('UTC')}"
_DAYS: Final = "day >= {days_start:DateTime('UTC')} AND day < {days_end:DateTime('UTC')}"
_EDGE_QUARTERS: Final = (
    "(quarter_day >= {quarter_days_start:DateTime('UTC')} AND quarter_day < {days_start:DateTime('UTC')}"
    " OR quarter_day >= {days_end:DateTime('UTC')} AND quarter_day < {quarter_days_end:DateTime('UTC')})"
)
_EDGE_HOURS: Final = (
    "(hour >= {hours_start:DateTime('UTC')} AND hour < {quarter_days_start:DateTime('UTC')}"
    " OR hour >= {quarter_days_end:DateTime('UTC')} AND hour < {hours_end:DateTime('UTC')})"
)
_HEALTH_METRICS: Final = (
    "metric IN ('system.cpu.utilization', 'system.memory.utilization',"
    " 'system.filesystem.utilization')"
)


def _piece(first: str, last: str) -> str:
    """``minute`` in ``first`` … ``last`` (parameters, end exclusive), also bounded by its
    hour: the minutely rollups sorted by their hour first are then read for those hours
    only (the warehouse does not narrow a ``toStartOfHour(minute)`` key by a condition on
    ``minute`` alone, and would read the whole month's partition)."""
    a, b = f"{{{first}:DateTime('UTC')}}", f"{{{last}:DateTime('UTC')}}"
    hour = "toStartOfHour(minute)"
    return (
        f"minute >= {a} AND minute < {b}"
        f" AND {hour} >= toStartOfHour({a}) AND {hour} <= toStartOfHour({b})"
    )


def _ends(first: str, last: str) -> str:
    """The minutes of the range before ``first`` and from ``last`` on."""
    return f"({_piece('start', first)} OR {_piece(last, 'end')})"


#: The minutes of the range outside its whole hours, bounded by their hour too.
_EDGES: Final = _ends("hours_start", "hours_end")


def _span(table: str, columns: str, where: str = "") -> str:
    """The rows of a rollup over the range, each row's time as ``minute``: the hourly table
    for the whole hours inside it (``hours_start`` … ``hours_end``), the minutely table for
    the minutes at either end (migration 0012)."""
    also = f" AND {where}" if where else ""
    return f"""(
    SELECT {columns}, hour AS minute FROM {table}_hourly
    WHERE {_HOURS} AND {_SCOPE}{also}
    UNION ALL
    SELECT {columns}, minute FROM {table}_minutely
    WHERE {_EDGES} AND {_SCOPE}{also}
)"""


_QUARTERS: Final = (
    "(quarter_hour >= {quarters_start:DateTime('UTC')} AND quarter_hour < {hours_start:DateTime('UTC')}"
    " OR quarter_hour >= {hours_end:DateTime('UTC')} AND quarter_hour < {quarters_end:DateTime('UTC')})"
)


def _app_span(columns: str) -> str:
    """The rows of the requests per app and env over the range, each row's time as
    ``minute``: hourly for the whole hours inside it (``hours_start`` … ``hours_end``),
    quarter-hourly for the other whole quarter hours (``quarters_start`` …
    ``quarters_end``, migration 0017) and minutely for the minutes at either end."""
    return f"""(
    SELECT {columns}, hour AS minute FROM usage_app_hourly
    WHERE {_HOURS} AND {_SCOPE}
    UNION ALL
    SELECT {columns}, quarter_hour AS minute FROM usage_app_quarter_hourly
    WHERE {_QUARTERS} AND {_SCOPE}
    UNION ALL
    SELECT {columns}, minute FROM usage_app_minutely
    WHERE {_ends("quarters_start", "quarters_end")} AND {_SCOPE}
)"""


#: The levels of the usage lists, coarsest first, each with the span it reads
#: (:func:`~shiftright_server.dashboard.timerange.filled` says which a range has).
LEVELS: Final = ("days", "quarter_days", "hours", "minutes")


def _on_period(condition: str, column: str) -> str:
    """``condition`` on ``column`` (``day``, ``quarter_day``, ``hour``) asked of ``period``."""
    return re.sub(rf"\b{column} (?=[<>])", "period ", condition)


#: The days and quarter days (``span`` in seconds) with the periods each is read for.
_SPANS: Final = {
    "days": (86400, _on_period(_DAYS, "day")),
    "quarter_days": (21600, _on_period(_EDGE_QUARTERS, "quarter_day")),
}
_HOUR_SPAN: Final = (3600, _on_period(_EDGE_HOURS, "hour"))


def _by_span(table: str, columns: str, where: str, spans: list[tuple[int, str]]) -> str:
    """The rows of ``table`` (sorted or filtered by ``span`` and ``period``) of those
    spans, each for its periods."""
    listed = "\n        OR ".join(f"span = {size} AND {when}" for size, when in spans)
    return f"    SELECT {columns} FROM {table}\n    WHERE ({listed})\n      AND {where}"


def _levels(kind: str, columns: str, where: str, lists: str, filled: tuple[str, ...]) -> str:
    """The rows of a usage list over the range at the coarsest level each part allows:
    the days inside it, then the other whole quarter days, the other whole hours and the
    minutes at either end (:func:`~shiftright_server.dashboard.timerange.levels`), of the
    ``filled`` levels only (a level with an empty span costs a read of its index all the
    same). ``lists`` names where they come from:

    - ``list``: the states of one release (migration 0024's ``usage_*_list_levels``,
      sorted by level, then by feature or route) for the days, quarter days and hours;
    - ``list_top``: the uses of one release, the days and quarter days from there, the
      hours from 0012's hourly rollup (sorted by day first: choosing the busiest reads
      only the days of its range);
    - ``choices``: the uses of every release (0024's ``usage_*_choices``) for the days,
      quarter days and hours;

    the minutes from 0012's minutely rollup."""
    scope = f"{_SCOPE} AND {where}" if where else _SCOPE
    spans = [_SPANS[level] for level in LEVELS[:2] if level in filled]
    hours = "hours" in filled
    branches = []
    if lists != "list_top" and hours:
        spans.append(_HOUR_SPAN)
    if spans:
        table = f"usage_{kind}_choices" if lists == "choices" else f"usage_{kind}_list_levels"
        branches.append(_by_span(table, columns, scope, spans))
    if lists == "list_top" and hours:
        branches.append(
            f"    SELECT {columns} FROM usage_{kind}s_hourly\n    WHERE {_EDGE_HOURS} AND {scope}"
        )
    if "minutes" in filled:
        branches.append(
            f"    SELECT {columns} FROM usage_{kind}s_minutely\n    WHERE {_EDGES} AND {scope}"
        )
    union = "\n    UNION ALL\n".join(branches)
    return f"(\n{union}\n)"


#: Every app × env the warehouse has data for.
SCOPES: Final = """/* dashboard.scopes */
SELECT app, env FROM (
    SELECT DISTINCT app, env FROM usage_app_hourly
    UNION DISTINCT SELECT DISTINCT app, env FROM errors_minutely
    UNION DISTINCT SELECT DISTINCT app, env FROM health_app_hourly
)
ORDER BY app, env
"""

#: Requests (usage events) and failed ones (status ≥ 500) per bucket.
USAGE_SERIES: Final = f"""/* dashboard.usage_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t, sum(events) AS requests,
       sum(failures) AS failures
FROM {_app_span("app, env, events, failures")}
GROUP BY app, env, t
ORDER BY app, env, t
"""

#: Errors per bucket, from the minutely view.
ERROR_SERIES: Final = f"""/* dashboard.error_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t, sum(events) AS errors
FROM errors_minutely
WHERE {_MINUTES} AND {_SCOPE}
GROUP BY app, env, t
ORDER BY app, env, t
"""

#: p50/p95 request duration per bucket, from the quantile states of each app and env.
LATENCY_SERIES: Final = f"""/* dashboard.latency_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t,
       quantilesDDMerge(0.01, 0.5, 0.95)(duration_ms) AS q
FROM {_app_span("app, env, duration_ms")}
GROUP BY app, env, t
ORDER BY app, env, t
"""

#: p50/p95 request duration over the whole range (the same states, merged).
LATENCY_TOTAL: Final = f"""/* dashboard.latency_total */
SELECT app, env, quantilesDDMerge(0.01, 0.5, 0.95)(duration_ms) AS q
FROM {_app_span("app, env, duration_ms")}
GROUP BY app, env
"""

#: Mean CPU, memory and disk utilisation over the app's hosts per bucket.
HEALTH_SERIES: Final = f"""/* dashboard.health_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t, metric, avgMerge(avg) AS value
FROM {_span("health_app", "app, env, metric, avg", _HEALTH_METRICS)}
GROUP BY app, env, t, metric
ORDER BY app, env, t
"""

#: Open sessions and throughput now: each host's latest minute in the last five, summed.
GAUGES: Final = f"""/* dashboard.gauges */
SELECT app, env, metric, sum(v) AS value
FROM (
    SELECT app, env, host, metric, argMax(v, minute) AS v
    FROM (
        SELECT app, env, host, metric, minute, avgMerge(avg) AS v
        FROM health_minutely
        WHERE minute >= {{end:DateTime('UTC')}} - INTERVAL 5 MINUTE
          AND minute < {{end:DateTime('UTC')}} AND {_SCOPE}
          AND metric IN ('app.sessions.open', 'app.throughput.requests_per_second')
        GROUP BY app, env, host, metric, minute
    )
    GROUP BY app, env, host, metric
)
GROUP BY app, env, metric
"""

#: Alerts firing now, by the app and env labels they carry.
ALERTS_FIRING: Final = """/* dashboard.alerts_firing */
SELECT labels['app'] AS app, labels['env'] AS env, rule, fingerprint, starts_at
FROM alerts_current
WHERE state = 'firing'
ORDER BY starts_at
"""

#: Deploys and flag changes in the range (the chart markers).
CHANGES: Final = f"""/* dashboard.changes */
SELECT app, env, ts, change_type, name, value
FROM events_change
WHERE {_TS} AND {_SCOPE}
ORDER BY ts
LIMIT 500
"""

#: The metrics the health page charts, in its order.
HOST_METRICS: Final = (
    "system.cpu.utilization",
    "system.memory.utilization",
    "system.filesystem.utilization",
    "system.cpu.load_average.1m",
    "app.sessions.open",
    "app.throughput.requests_per_second",
)

#: Every host that reported in the range, and the last minute it did (from the host
#: health sorted by hour first, migration 0023: the range's hours only).
HOSTS: Final = f"""/* dashboard.hosts */
SELECT app, env, host, max(minute) AS last_minute
FROM health_minutely_by_hour
WHERE {_piece("start", "end")} AND {_SCOPE}
GROUP BY app, env, host
ORDER BY app, env, host
LIMIT 500
"""

#: Each host's mean per bucket of the charted metrics (as :data:`HOSTS` reads them).
HOST_SERIES: Final = f"""/* dashboard.host_series */
SELECT app, env, host, metric, {_BUCKET.format(col="minute")} AS t, avgMerge(avg) AS value
FROM health_minutely_by_hour
WHERE {_piece("start", "end")} AND {_SCOPE} AND metric IN {{metrics:Array(String)}}
GROUP BY app, env, host, metric, t
ORDER BY t
"""

_FEATURE_COLUMNS: Final = "app, env, name, events, failures, origins, users, customers, duration_ms"
_ROUTE_COLUMNS: Final = "app, env, route, events, failures, users, duration_ms"


def _top(tag: str, kind: str, key: str, n: int, lists: str, filled: tuple[str, ...]) -> str:
    """The ``n`` busiest (app, env, ``key``) in the range, chosen by counts alone: of
    ``release`` from the levels per release (``list``), of every release (``choices``)
    from the choices' levels, which hold no sketches."""
    where, lists = (_RELEASE, "list_top") if lists == "list" else ("", lists)
    source = _levels(kind, f"app, env, {key}, events", where, lists, filled)
    return f"""/* dashboard.{tag} */
SELECT app, env, {key}
FROM {source}
GROUP BY app, env, {key}
ORDER BY sum(events) DESC, app, env, {key}
LIMIT {n}
"""


def _keys(key: str, lists: str) -> str:
    chosen = f"(app, env, {key}) IN {{keys:Array(Tuple(String, String, String))}}"
    return f"{_RELEASE} AND {chosen}" if lists == "list" else chosen


def _features(tag: str, lists: str, filled: tuple[str, ...]) -> str:
    """The ``keys`` features' uses by origin, users, customers and duration quantiles:
    the states of those features only."""
    source = _levels("feature", _FEATURE_COLUMNS, _keys("name", lists), lists, filled)
    return _merged(tag, source)


def _merged(tag: str, source: str) -> str:
    """The features of ``source`` (rows of :data:`_FEATURE_COLUMNS`) merged per feature."""
    return f"""/* dashboard.{tag} */
SELECT app, env, name, sum(events) AS uses, sum(failures) AS failures,
       sumMap(origins) AS origins,
       uniqCombinedMerge(12)(users) AS users, uniqCombinedMerge(12)(customers) AS customers,
       quantilesDDMerge(0.01, 0.5, 0.9, 0.99)(duration_ms) AS q
FROM {source}
GROUP BY app, env, name
ORDER BY uses DESC, app, env, name
"""


def _period(first: str, last: str) -> str:
    return f"period >= {{{first}:DateTime('UTC')}} AND period < {{{last}:DateTime('UTC')}}"


def _sketch_spans(sizes: tuple[int, ...]) -> str:
    """The periods of the sketch levels of ``sizes`` that the range reads: each level's
    whole blocks inside the range but outside the next coarser level's
    (:func:`~shiftright_server.dashboard.timerange.sketch_levels`)."""
    parts = []
    for size in sizes:
        name, at = f"span{size}", SKETCH_SPANS.index(size)
        if at + 1 < len(SKETCH_SPANS):
            coarser = f"span{SKETCH_SPANS[at + 1]}"
            where = (
                f"{_period(f'{name}_start', f'{coarser}_start')}"
                f" OR {_period(f'{coarser}_end', f'{name}_end')}"
            )
        else:
            where = _period(f"{name}_start", f"{name}_end")
        parts.append(f"span = {size} AND ({where})")
    return "\n        OR ".join(parts)


def _sketches(kind: str, key: str, columns: str, filled: tuple[int, ...]) -> str:
    """The rows of the ``keys`` (app, env, ``key``) of every release from their sketch
    levels (one table, each one's periods of every size together) of the sizes in
    ``filled`` and, with 60 in it, the minutely rollup for the minutes at either end
    (:func:`~shiftright_server.dashboard.timerange.sketch_filled`)."""
    chosen = f"(app, env, {key}) IN {{keys:Array(Tuple(String, String, String))}}"
    sizes = tuple(size for size in filled if size in SKETCH_SPANS)
    branches = []
    if sizes:
        branches.append(
            f"    SELECT {columns} FROM usage_{kind}_sketches"
            f"\n    WHERE ({_sketch_spans(sizes)})\n      AND {_SCOPE} AND {chosen}"
        )
    if 60 in filled:
        branches.append(
            f"    SELECT {columns} FROM usage_{kind}s_minutely"
            f"\n    WHERE {_EDGES} AND {_SCOPE} AND {chosen}"
        )
    union = "\n    UNION ALL\n".join(branches)
    return f"(\n{union}\n)"


@cache
def feature_sketches(filled: tuple[int, ...]) -> str:
    """The ``keys`` features of every release, as :func:`_features`, from their sketch
    levels (migration 0019) of the sizes in ``filled``."""
    return _merged("features", _sketches("feature", "name", _FEATURE_COLUMNS, filled))


@cache
def route_sketches(filled: tuple[int, ...]) -> str:
    """The ``keys`` routes of every release, as :func:`_routes`, from their sketch levels
    (migration 0024) of the sizes in ``filled``."""
    return _routes_of("routes", _sketches("route", "route", _ROUTE_COLUMNS, filled))


def _routes(tag: str, lists: str, filled: tuple[str, ...]) -> str:
    """The ``keys`` routes' requests, failures, users and p95 duration."""
    return _routes_of(tag, _levels("route", _ROUTE_COLUMNS, _keys("route", lists), lists, filled))


def _routes_of(tag: str, source: str) -> str:
    """The routes of ``source`` (rows of :data:`_ROUTE_COLUMNS`) merged per route."""
    return f"""/* dashboard.{tag} */
SELECT app, env, route, sum(events) AS uses, sum(failures) AS failures,
       uniqCombinedMerge(12)(users) AS users, quantileDDMerge(0.01, 0.95)(duration_ms) AS p95
FROM {source}
GROUP BY app, env, route
ORDER BY uses DESC, app, env, route
"""


_LISTS: Final[dict[str, Callable[[tuple[str, ...]], str]]] = {
    # the 50 most used features in the range, of every release
    "features_top": partial(_top, "features_top", "feature", "name", 50, "choices"),
    # the 50 most used features of ``release`` in the range
    "release_features_top": partial(_top, "release_features_top", "feature", "name", 50, "list"),
    # the ``keys`` features of ``release``
    "release_features": partial(_features, "release_features", "list"),
    # the 20 busiest routes in the range, of every release
    "routes_top": partial(_top, "routes_top", "route", "route", 20, "choices"),
    # the 20 busiest routes of ``release`` in the range
    "release_routes_top": partial(_top, "release_routes_top", "route", "route", 20, "list"),
    # the ``keys`` routes of ``release``
    "release_routes": partial(_routes, "release_routes", "list"),
}


@cache
def usage_list(panel: str, filled: tuple[str, ...] = LEVELS) -> str:
    """The SQL of the usage-list panel ``panel`` (``features_top``, ``features``,
    ``routes``, ``release_routes_top`` …) reading the ``filled`` levels only, made once
    per panel and set of levels."""
    return _LISTS[panel](filled)


#: Uses per bucket of the listed features (their trend).
FEATURE_SERIES: Final = f"""/* dashboard.feature_series */
SELECT app, env, name, {_BUCKET.format(col="minute")} AS t, sum(events) AS uses
FROM {_span("usage_features", "app, env, name, events", f"{_RELEASE} AND name IN {{names:Array(String)}}")}
GROUP BY app, env, name, t
ORDER BY t
"""

_TAG = re.compile(r"/\* dashboard\.([a-z_]+) \*/")


def name_of(sql: str) -> str:
    """The panel name a query is tagged with."""
    found = _TAG.match(sql)
    if not found:
        raise ValueError("dashboard queries start with a /* dashboard.<name> */ tag")
    return found[1]
