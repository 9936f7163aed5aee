"""The SQL behind the dashboard's panels, read through server-side parameters.

Each query starts with a ``/* dashboard.<name> */`` tag: it names the panel in the
warehouse's query log, and the unit tests' fake reader answers by it. Every query takes
``start``/``end`` (``DateTime('UTC')``, whole minutes, end exclusive) where it has a range,
``step`` (bucket seconds), and ``app``/``env`` filters where '' means any.
"""

from __future__ import annotations

import re
from typing import Final

_SCOPE: Final = (
    "({app:String} = '' OR app = {app:String}) AND ({env:String} = '' OR env = {env:String})"
)
_MINUTES: Final = "minute >= {start:DateTime('UTC')} AND minute < {end:DateTime('UTC')}"
_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"
_BUCKET: Final = "toStartOfInterval({col}, toIntervalSecond({{step:UInt32}}))"

#: Every app × env the warehouse has data for.
SCOPES: Final = """/* dashboard.scopes */
SELECT app, env FROM (
    SELECT DISTINCT app, env FROM usage_minutely
    UNION DISTINCT SELECT DISTINCT app, env FROM errors_minutely
    UNION DISTINCT SELECT DISTINCT app, env FROM health_minutely
)
ORDER BY app, env
"""

#: Requests (usage events) and failed ones (status ≥ 500) per bucket, from the minutely view.
USAGE_SERIES: Final = f"""/* dashboard.usage_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t, sum(events) AS requests,
       sum(failures) AS failures
FROM usage_minutely
WHERE {_MINUTES} AND {_SCOPE}
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

#: p50/p95 request duration per bucket, from the per-minute quantile states of each app
#: and env (migration 0010).
LATENCY_SERIES: Final = f"""/* dashboard.latency_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t,
       quantilesMerge(0.5, 0.95)(duration_ms) AS q
FROM usage_latency_minutely
WHERE {_MINUTES} AND {_SCOPE}
GROUP BY app, env, t
ORDER BY app, env, t
"""

#: p50/p95 request duration over the whole range (the same states, merged).
LATENCY_TOTAL: Final = f"""/* dashboard.latency_total */
SELECT app, env, quantilesMerge(0.5, 0.95)(duration_ms) AS q
FROM usage_latency_minutely
WHERE {_MINUTES} AND {_SCOPE}
GROUP BY app, env
"""

#: Mean CPU, memory and disk utilisation over the app's hosts per bucket.
HEALTH_SERIES: Final = f"""/* dashboard.health_series */
SELECT app, env, {_BUCKET.format(col="minute")} AS t, metric, avgMerge(avg) AS value
FROM health_minutely
WHERE {_MINUTES} AND {_SCOPE}
  AND metric IN ('system.cpu.utilization', 'system.memory.utilization',
                 'system.filesystem.utilization')
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

#: Every host that reported in the range, and the last minute it did.
HOSTS: Final = f"""/* dashboard.hosts */
SELECT app, env, host, max(minute) AS last_minute
FROM health_minutely
WHERE {_MINUTES} AND {_SCOPE}
GROUP BY app, env, host
ORDER BY app, env, host
LIMIT 500
"""

#: Each host's mean per bucket of the charted metrics.
HOST_SERIES: Final = f"""/* dashboard.host_series */
SELECT app, env, host, metric, {_BUCKET.format(col="minute")} AS t, avgMerge(avg) AS value
FROM health_minutely
WHERE {_MINUTES} AND {_SCOPE} AND metric IN {{metrics:Array(String)}}
GROUP BY app, env, host, metric, t
ORDER BY t
"""

#: Features (usage event names) by uses in the range, from the minutely view.
FEATURES: Final = f"""/* dashboard.features */
SELECT app, env, name, sum(events) AS uses, sum(failures) AS failures,
       uniqMerge(users) AS users, uniqMerge(customers) AS customers,
       quantilesMerge(0.5, 0.9, 0.99)(duration_ms) AS q
FROM usage_minutely
WHERE {_MINUTES} AND {_SCOPE}
GROUP BY app, env, name
ORDER BY uses DESC
LIMIT 50
"""

#: Uses per bucket of the listed features (their trend).
FEATURE_SERIES: Final = f"""/* dashboard.feature_series */
SELECT app, env, name, {_BUCKET.format(col="minute")} AS t, sum(events) AS uses
FROM usage_minutely
WHERE {_MINUTES} AND {_SCOPE} AND name IN {{names:Array(String)}}
GROUP BY app, env, name, t
ORDER BY t
"""

_RELEASE: Final = "({release:String} = '' OR release = {release:String})"

#: Features of one release (the view has no release column, so from the raw table).
FEATURES_OF_RELEASE: Final = f"""/* dashboard.features_of_release */
SELECT app, env, name, count() AS uses, countIf(status_code >= 500) AS failures,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(customer_id, customer_id != '') AS customers,
       quantiles(0.5, 0.9, 0.99)(duration_ms) AS q
FROM events_usage
WHERE {_TS} AND {_SCOPE} AND {_RELEASE}
GROUP BY app, env, name
ORDER BY uses DESC
LIMIT 50
"""

#: Uses per bucket of the listed features in one release.
FEATURE_SERIES_OF_RELEASE: Final = f"""/* dashboard.feature_series_of_release */
SELECT app, env, name, {_BUCKET.format(col="ts")} AS t, count() AS uses
FROM events_usage
WHERE {_TS} AND {_SCOPE} AND {_RELEASE} AND name IN {{names:Array(String)}}
GROUP BY app, env, name, t
ORDER BY t
"""

#: Uses of the listed features by origin (user / test / synthetic), from the raw table.
FEATURE_ORIGINS: Final = f"""/* dashboard.feature_origins */
SELECT app, env, name, origin, count() AS uses
FROM events_usage
WHERE {_TS} AND {_SCOPE} AND {_RELEASE} AND name IN {{names:Array(String)}}
GROUP BY app, env, name, origin
"""

#: Routes by requests, from the raw table (the view is per feature name).
ROUTES: Final = f"""/* dashboard.routes */
SELECT app, env, route, count() AS uses, countIf(status_code >= 500) AS failures,
       uniqExactIf(user_id, user_id != '') AS users, quantile(0.95)(duration_ms) AS p95
FROM events_usage
WHERE {_TS} AND {_SCOPE} AND {_RELEASE} AND route != ''
GROUP BY app, env, route
ORDER BY uses DESC
LIMIT 20
"""

_TAG = re.compile(r"/\* dashboard\.([a-z_]+) \*/")


def name_of(sql: str) -> str:
    """The panel name a query is tagged with."""
    found = _TAG.match(sql)
    if not found:
        raise ValueError("dashboard queries start with a /* dashboard.<name> */ tag")
    return found[1]
