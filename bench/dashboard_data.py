"""Bulk data for ``bench.dashboard``, generated inside the warehouse (``INSERT … SELECT``
from ``numbers()``; nothing goes through Kafka): usage events spread over the last days
(the materialized views fill from them as in production), one health snapshot per host
and minute, errors with their grouped rows and one ``error_groups`` row per group.

Shape: 4 apps × 3 envs (70 % of the traffic in prod, 20 % preprod, 10 % dev), 6 hosts per
app and env. Zipf-like (log-uniform rank: rank k has a share ∝ ln((k+2)/(k+1))): 80
features, 40 routes, 100,000 users, 2,000 customers, 2,000 error groups per app. Ten
releases one after the other over the span, 15 % of the traffic still on the previous
one; origins 92 % user, 6 % test, 2 % synthetic; 2 % of requests fail; durations
log-normal (median ~30 ms) scaled by feature. Each column draws from its own hash of the
row number (``cityHash64(number, k)``), so columns are independent."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

CHUNK = 5_000_000
#: Run each insert's materialized views side by side (about twice as fast on 2 cores).
SETTINGS = {"parallel_view_processing": 1}
APPS = "['checkout', 'catalog', 'search', 'accounts']"
GROUPS = 2000


def zipf(draw: str, n: int) -> str:
    """SQL for a rank in ``[0, n)`` from the hash ``draw``, rank k with share ∝ 1/(k+1)."""
    return f"(toUInt32(floor(exp(({draw} % 1000000) / 1000000 * log({n + 1})))) - 1)"


def _h(k: int) -> str:
    return f"cityHash64(number, {k})"


# Columns every kind of event shares, from the row number (``h`` is its hash).
_COMMON = f"""
    generateUUIDv4(number) AS event_id,
    fromUnixTimestamp64Milli(toInt64({{end_ms}} - intDiv(number * {{span_ms}}, {{total}})), 'UTC') AS ts,
    arrayElement({{apps}}, number % 4 + 1) AS app,
    multiIf(h % 10 < 7, 'prod', h % 10 < 9, 'preprod', 'dev') AS env,
    concat('2.', toString(greatest(0, 9 - intDiv(number * 10, {{total}})
        - if({_h(1)} % 100 < 15, 1, 0)))) AS release,
    concat(app, '-', env, '-', toString(bitShiftRight(h, 4) % 6)) AS host,
    concat('u', toString({zipf(_h(2), 100_000)})) AS user_id,
    concat('c', toString({zipf(_h(3), 2_000)})) AS customer_id,
    concat('/api/r', toString({zipf(_h(4), 40)})) AS route,
    ts AS received_at, 'bench' AS _topic, 0 AS _partition, number AS _offset, 0 AS _index
"""

USAGE = f"""INSERT INTO {{db}}.events_usage
    (event_id, ts, app, env, release, host, user_id, customer_id, route, received_at,
     _topic, _partition, _offset, _index, session_id, origin, name, method, status_code,
     duration_ms)
SELECT {{common}},
    concat('s', toString({_h(5)} % 200000)) AS session_id,
    multiIf({_h(6)} % 100 < 92, 'user', {_h(6)} % 100 < 98, 'test', 'synthetic') AS origin,
    concat('feature.', toString(feature)) AS name,
    'GET' AS method,
    if({_h(8)} % 100 < 2, 500, 200) AS status_code,
    round((1 + feature % 5) * exp(2.7 + 0.8 * sqrt(-2 * log(({_h(9)} % 1000000 + 1) / 1000001))
        * cos(2 * pi() * ({_h(10)} % 1000000) / 1000000)), 2) AS duration_ms
FROM (SELECT number, cityHash64(number) AS h, {zipf(_h(7), 80)} AS feature
      FROM numbers({{offset}}, {{count}}))
"""

_GROUP = zipf("cityHash64({n}, 11)", GROUPS)
ERRORS = f"""INSERT INTO {{db}}.events_error
    (event_id, ts, app, env, release, host, user_id, customer_id, route, received_at,
     _topic, _partition, _offset, _index, exception_type, exception_message, stacktrace,
     handled, level)
SELECT {{common}},
    concat('Bench', toString(g % 50), 'Error') AS exception_type,
    concat('failure ', toString(g), ' at step ', toString(h % 1000)) AS exception_message,
    concat('Traceback (most recent call last):\\n  File "app/step', toString(g), '.py"') AS stacktrace,
    bitShiftRight(h, 44) % 4 != 0 AS handled, 'error' AS level
FROM (SELECT number, cityHash64(number) AS h, {_GROUP.format(n="number")} AS g
      FROM numbers({{offset}}, {{count}}))
"""

GROUPED = """INSERT INTO {db}.errors_grouped
    (event_id, ts, app, env, release, host, user_id, customer_id, route, handled, level,
     exception_type, root_type, title, culprit, group_id, fingerprint, basis, _topic,
     _partition, _offset)
SELECT event_id, ts, app, env, release, host, user_id, customer_id, route, handled, level,
    exception_type, exception_type, concat(exception_type, ': ', exception_message),
    concat('app.step', toString(_offset % {groups}), ' in run'),
    concat(app, '-g', toString(GROUP)), toString(cityHash64(app, GROUP)), 'stack', _topic,
    _partition, _offset
FROM {db}.events_error WHERE _offset >= {offset} AND _offset < {offset} + {count}
""".replace("GROUP", _GROUP.format(n="_offset").replace("{", "{{").replace("}", "}}"))

GROUP_ROWS = """INSERT INTO {db}.error_groups
    (group_id, app, fingerprint, basis, exception_type, title, culprit, status, first_seen,
     last_seen, count, users, customers, counts_exact, first_release, last_release,
     env_first_seen, env_last_seen, env_count, version, updated_at)
SELECT group_id, app, any(fingerprint), 'stack', any(exception_type), any(title),
    any(culprit), 'unresolved', min(ts), max(ts), count(), uniq(user_id), uniq(customer_id),
    false, min(release), max(release), CAST(map(), 'Map(LowCardinality(String), DateTime64(3, \\'UTC\\'))'),
    CAST(map(), 'Map(LowCardinality(String), DateTime64(3, \\'UTC\\'))'),
    CAST(map(), 'Map(LowCardinality(String), UInt64)'), 1, now64(3)
FROM {db}.errors_grouped GROUP BY app, group_id
"""

HEALTH = """INSERT INTO {db}.events_health
    (event_id, ts, app, env, host, metrics, received_at, _topic, _partition, _offset, _index)
SELECT generateUUIDv4(number),
    fromUnixTimestamp64Milli(toInt64({end_ms} - intDiv(number, 72) * 60000), 'UTC') AS ts,
    arrayElement({apps}, (number % 72) % 4 + 1) AS app,
    arrayElement(['prod', 'preprod', 'dev'], intDiv(number % 72, 4) % 3 + 1) AS env,
    concat(app, '-', env, '-', toString(intDiv(number % 72, 12))) AS host,
    map('system.cpu.utilization', 0.2 + (h % 600) / 1000.0,
        'system.memory.utilization', 0.4 + (h % 300) / 1000.0,
        'system.filesystem.utilization', 0.55,
        'system.cpu.load_average.1m', (h % 400) / 100.0,
        'app.sessions.open', toFloat64(h % 500),
        'app.throughput.requests_per_second', toFloat64(h % 90)) AS metrics,
    ts, 'bench', 0, number, 0
FROM (SELECT number, cityHash64(number) AS h FROM numbers({count}))
"""


def _chunks(total: int) -> list[tuple[int, int]]:
    return [(o, min(CHUNK, total - o)) for o in range(0, total, CHUNK)]


def generate(
    command: Callable[[str], Any],
    db: str,
    usage: int,
    errors: int,
    end: datetime,
    days: float,
    say: Callable[[str], None] = print,
) -> dict[str, float]:
    """Fill the tables; seconds each kind took."""
    end_ms, span_ms = int(end.timestamp() * 1000), int(days * 86_400_000)
    took: dict[str, float] = {}

    def run(name: str, sql: str, rows: int) -> None:
        began = time.perf_counter()
        command(sql)
        took[name] = took.get(name, 0.0) + time.perf_counter() - began
        say(f"  {name}: {rows:,} rows in {took[name]:.1f} s so far")

    for kind, total, template in (("usage", usage, USAGE), ("errors", errors, ERRORS)):
        common = _COMMON.format(end_ms=end_ms, span_ms=span_ms, total=total, apps=APPS)
        for offset, count in _chunks(total):
            sql = template.format(db=db, common=common, offset=offset, count=count, groups=GROUPS)
            run(kind, sql, offset + count)
            if kind == "errors":
                grouped = GROUPED.format(db=db, offset=offset, count=count, groups=GROUPS)
                run("errors_grouped", grouped, offset + count)
    run("error_groups", GROUP_ROWS.format(db=db), GROUPS * 4)
    minutes = int(days * 1440)
    run("health", HEALTH.format(db=db, end_ms=end_ms, apps=APPS, count=minutes * 72), minutes * 72)
    return took
