"""The error-analytics questions as SQL over the warehouse tables (migration 0004).

Each query uses ClickHouse server-side parameters (``{name:Type}``): pass them as the
``parameters`` dict of clickhouse-connect's ``query``, or as ``param_<name>`` in the
HTTP URL. ``start``/``end`` are ``DateTime64(3)`` UTC bounds, ``step_s`` a bucket size in
seconds (60 = per minute, 3600 = per hour, 86400 = per day). The same text is in the
error-analytics docs and behind the ``shiftright errors ...`` reports.
"""

from __future__ import annotations

from typing import Final

#: Which exception types are thrown most, per app and environment, in a time range.
TOP_TYPES: Final = """
SELECT app, env, root_type AS exception_type, count() AS errors,
       uniqExact(group_id) AS groups, uniqExactIf(user_id, user_id != '') AS users
FROM errors_grouped FINAL
WHERE ts >= {start:DateTime64(3)} AND ts < {end:DateTime64(3)}
GROUP BY app, env, exception_type
ORDER BY errors DESC
LIMIT {limit:UInt32}
"""

#: Which groups are thrown most in a time range.
TOP_GROUPS: Final = """
SELECT app, env, group_id, any(title) AS title, any(culprit) AS culprit, count() AS errors,
       uniqExactIf(user_id, user_id != '') AS users, min(ts) AS first, max(ts) AS last
FROM errors_grouped FINAL
WHERE ts >= {start:DateTime64(3)} AND ts < {end:DateTime64(3)}
GROUP BY app, env, group_id
ORDER BY errors DESC
LIMIT {limit:UInt32}
"""

#: How often one group occurs over time, and per 1,000 requests of the same route.
GROUP_RATE: Final = """
WITH errors AS (
    SELECT toStartOfInterval(ts, toIntervalSecond({step_s:UInt32})) AS bucket,
           app, env, route, count() AS errors
    FROM errors_grouped FINAL
    WHERE group_id = {group_id:String}
      AND ts >= {start:DateTime64(3)} AND ts < {end:DateTime64(3)}
    GROUP BY bucket, app, env, route
),
requests AS (
    SELECT toStartOfInterval(ts, toIntervalSecond({step_s:UInt32})) AS bucket,
           app, env, route, count() AS requests
    FROM events_usage
    WHERE ts >= {start:DateTime64(3)} AND ts < {end:DateTime64(3)}
      AND (app, env, route) IN (SELECT app, env, route FROM errors)
    GROUP BY bucket, app, env, route
)
SELECT bucket, app, env, route, errors, requests,
       round(1000 * errors / nullIf(requests, 0), 3) AS per_1000_requests
FROM errors LEFT JOIN requests USING (bucket, app, env, route)
ORDER BY bucket, app, env, route
"""

#: Which groups affect the most users (and customers).
MOST_AFFECTING: Final = """
SELECT app, group_id, title, status, users, customers, count, counts_exact,
       first_seen, last_seen
FROM error_groups FINAL
ORDER BY users DESC, customers DESC
LIMIT {limit:UInt32}
"""

#: Groups whose first error ever came from a given release.
NEW_IN_RELEASE: Final = """
SELECT app, group_id, title, first_seen, count, users, env_count
FROM error_groups FINAL
WHERE app = {app:String} AND first_release = {release:String}
ORDER BY first_seen
"""

#: Groups that regressed in a time range, with the release that brought them back.
REGRESSED: Final = """
SELECT t.app AS app, t.env AS env, t.release AS release, t.group_id AS group_id,
       t.title AS title, t.previous_status AS was, t.ts AS regressed_at
FROM error_group_transitions AS t FINAL
WHERE t.kind = 'regressed' AND t.ts >= {start:DateTime64(3)} AND t.ts < {end:DateTime64(3)}
ORDER BY regressed_at DESC
"""

#: Errors that appeared first in one environment and later in another, and how long it took.
PROMOTED: Final = """
SELECT app, group_id, title,
       env_first_seen[{from_env:String}] AS first_in_from,
       env_first_seen[{to_env:String}] AS first_in_to,
       dateDiff('minute', first_in_from, first_in_to) AS minutes_later
FROM error_groups FINAL
WHERE mapContains(env_first_seen, {from_env:String})
  AND mapContains(env_first_seen, {to_env:String})
  AND first_in_from < first_in_to
ORDER BY first_in_to DESC
"""

#: The hosts that ever threw a group.
HOSTS_OF_GROUP: Final = (
    "SELECT DISTINCT app, env, host FROM errors_grouped WHERE group_id = {group_id:String}"
)


def health_at_errors(usual: str) -> str:
    """The health of the hosts when a group's errors were thrown, against their usual
    health over the same range, with ``usual`` the rows (``metric``, ``avg``: a state of
    ``avg``) of the usual health of the hosts that threw the group over the range."""
    return f"""
WITH at_errors AS (
    SELECT metric, avg(value) AS at_errors, count() AS samples
    FROM errors_grouped FINAL
    ARRAY JOIN mapKeys(health) AS metric, mapValues(health) AS value
    WHERE group_id = {{group_id:String}} AND health_ts IS NOT NULL
      AND ts >= {{start:DateTime64(3)}} AND ts < {{end:DateTime64(3)}}
    GROUP BY metric
),
usual AS (
    SELECT metric, avgMerge(avg) AS usual
    FROM ({usual})
    GROUP BY metric
)
SELECT metric, round(at_errors, 4) AS at_errors, round(usual, 4) AS usual,
       round(at_errors / nullIf(usual, 0), 3) AS ratio, samples
FROM at_errors LEFT JOIN usual USING (metric)
ORDER BY metric
"""


#: The health of the hosts when a group's errors were thrown, against their usual health
#: over the same range (hosts that threw the group; per-minute averages). The range is
#: read first (PREWHERE): only its rows are matched against the hosts.
HEALTH_AT_ERRORS: Final = health_at_errors(
    f"""SELECT metric, avg FROM health_minutely
        PREWHERE minute >= {{start:DateTime64(3)}} AND minute < {{end:DateTime64(3)}}
        WHERE (app, env, host) IN ({HOSTS_OF_GROUP})"""
)

QUERIES: Final[dict[str, str]] = {
    "top-types": TOP_TYPES,
    "top-groups": TOP_GROUPS,
    "group-rate": GROUP_RATE,
    "most-affecting": MOST_AFFECTING,
    "new-in-release": NEW_IN_RELEASE,
    "regressed": REGRESSED,
    "promoted": PROMOTED,
    "health-at-errors": HEALTH_AT_ERRORS,
}
