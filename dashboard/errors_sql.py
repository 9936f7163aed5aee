"""The SQL behind ``/errors`` and ``/errors/{group_id}`` (tables of migration 0004).

A group's state is the latest row of ``error_groups`` (FINAL); counts in a range come
from ``errors_grouped``, one row per error, and the list's and its sparklines' from its
copy sorted by hour first, ``errors_grouped_by_hour`` (migration 0022). Parameters as in
:mod:`.queries`; ``status``, ``text``, ``release`` '' mean any.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from shiftright_server.schemas import error_queries

_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"
#: The range, also bounded by its hours: ``errors_grouped_by_hour`` is then read for those
#: hours only (the warehouse does not narrow its ``toStartOfHour(ts)`` key by ``ts`` alone).
_HOURS_TS: Final = (
    f"{_TS} AND toStartOfHour(ts) >= toStartOfHour({{start:DateTime('UTC')}})"
    " AND toStartOfHour(ts) <= toStartOfHour({end:DateTime('UTC')})"
)

#: Sort orders the list offers (the query string names one of these keys).
SORTS: Final = {
    "events": "c.events DESC, g.last_seen DESC",
    "users": "c.users DESC, c.events DESC",
    "last_seen": "g.last_seen DESC",
    "first_seen": "g.first_seen DESC",
}
STATUSES: Final = ("unresolved", "resolved", "ignored", "new", "regressed", "spiking")

#: Groups with errors in the range, their state and their counts in the range. Users
#: are told apart by a 64-bit hash of their id (a set of integers is cheaper to build than
#: one of strings; that any two of a million users share a hash has odds of about 1 in
#: 37 million).
GROUPS: Final = f"""/* dashboard.error_groups */
WITH c AS (
    SELECT app, group_id, count() AS events,
           uniqExactIf(cityHash64(user_id), user_id != '') AS users,
           groupUniqArray(env) AS envs
    FROM errors_grouped_by_hour FINAL
    WHERE {_HOURS_TS}
      AND ({{app:String}} = '' OR app = {{app:String}})
      AND ({{env:String}} = '' OR env = {{env:String}})
      AND ({{release:String}} = '' OR release = {{release:String}})
    GROUP BY app, group_id
)
SELECT g.group_id AS group_id, g.app AS app, g.title AS title, g.culprit AS culprit,
       g.status AS status, g.count AS total, g.users AS total_users,
       g.first_seen AS first_seen, g.last_seen AS last_seen, g.last_release AS last_release,
       c.events AS events, c.users AS users, arraySort(c.envs) AS envs
FROM error_groups AS g FINAL
INNER JOIN c ON g.app = c.app AND g.group_id = c.group_id
WHERE ({{text:String}} = ''
       OR positionCaseInsensitiveUTF8(concat(g.title, ' ', g.culprit, ' ', g.group_id),
                                      {{text:String}}) > 0)
  AND ({{status:String}} = ''
       OR {{status:String}} IN ('unresolved', 'resolved', 'ignored')
          AND startsWith(g.status, {{status:String}})
       OR {{status:String}} = 'new' AND g.first_seen >= {{start:DateTime('UTC')}}
       OR {{status:String}} IN ('regressed', 'spiking') AND (g.app, g.group_id) IN (
           SELECT app, group_id FROM error_group_transitions
           WHERE kind = {{status:String}} AND {_TS}))
ORDER BY {{order}}
LIMIT 100
"""

#: Regressed / spiking transitions of the listed groups in the range (their badges).
BADGES: Final = f"""/* dashboard.error_badges */
SELECT app, group_id, groupUniqArray(kind) AS kinds
FROM error_group_transitions
WHERE {_TS} AND kind IN ('regressed', 'spiking')
  AND group_id IN {{ids:Array(String)}}
GROUP BY app, group_id
"""

#: Errors per bucket of the listed groups (their sparklines).
GROUP_SERIES: Final = f"""/* dashboard.error_group_series */
SELECT app, group_id, toStartOfInterval(ts, toIntervalSecond({{step:UInt32}})) AS t,
       count() AS events
FROM errors_grouped_by_hour FINAL
WHERE {_HOURS_TS} AND group_id IN {{ids:Array(String)}}
  AND ({{env:String}} = '' OR env = {{env:String}})
GROUP BY app, group_id, t
ORDER BY t
"""

#: One group's current state.
GROUP: Final = """/* dashboard.error_group */
SELECT group_id, app, title, culprit, exception_type, status, count, users, customers,
       counts_exact, first_seen, last_seen, first_release, last_release,
       env_first_seen, env_last_seen, env_count, release_count, release_last_seen,
       resolved_at, resolved_in_release, ignored_until, ignored_until_count, version
FROM error_groups FINAL
WHERE group_id = {group_id:String} AND ({app:String} = '' OR app = {app:String})
"""

#: The latest error of a group, with its stack trace.
LATEST_EVENT: Final = """/* dashboard.error_latest */
SELECT e.event_id AS event_id, e.ts AS ts, e.env AS env, e.release AS release,
       e.host AS host, e.route AS route, e.exception_type AS exception_type,
       e.exception_message AS message, e.stacktrace AS stacktrace, e.frames AS frames,
       e.handled AS handled, e.level AS level
FROM events_error AS e
WHERE e.app = {app:String}
  AND (e.event_id, e.ts) IN (
      SELECT argMax(event_id, ts), max(ts) FROM errors_grouped
      WHERE app = {app:String} AND group_id = {group_id:String})
LIMIT 1
"""

#: A group's errors per bucket and env in the range (its timeline).
GROUP_TIMELINE: Final = f"""/* dashboard.error_timeline */
SELECT env, toStartOfInterval(ts, toIntervalSecond({{step:UInt32}})) AS t, count() AS events
FROM errors_grouped FINAL
WHERE {_TS} AND app = {{app:String}} AND group_id = {{group_id:String}}
GROUP BY env, t
ORDER BY t
"""

_HOSTS: Final = f"(app, env, host) IN ({error_queries.HOSTS_OF_GROUP})"
_HOURS: Final = (
    f"SELECT metric, avg FROM health_hourly"
    " WHERE hour >= {hours_start:DateTime64(3)} AND hour < {hours_end:DateTime64(3)}"
    f" AND {_HOSTS}"
)
_MINUTES: Final = (
    "SELECT metric, avg FROM health_minutely"
    " PREWHERE minute >= {start:DateTime64(3)} AND minute < {hours_start:DateTime64(3)}"
    " OR minute >= {hours_end:DateTime64(3)} AND minute < {end:DateTime64(3)}"
    f" WHERE {_HOSTS}"
)


@cache
def _health_at_errors(hours: bool, minutes: bool) -> str:
    usual = " UNION ALL ".join(
        part for part, read in ((_HOURS, hours), (_MINUTES, minutes or not hours)) if read
    )
    return "/* dashboard.health_at_errors */" + error_queries.health_at_errors(usual)


def health_at_errors(span: dict[str, str]) -> str:
    """The hosts' health when the group's errors were thrown, against their usual health
    over the range: the analysts' question (:data:`.error_queries.HEALTH_AT_ERRORS`), the
    same answers, with the usual health of the whole hours inside the range from the
    hourly table (migration 0018) and of the minutes at either end from the minutely one,
    of those the range has (``span``: ``start``, ``end``, ``hours_start``, ``hours_end``
    as :func:`~shiftright_server.dashboard.timerange.spans` makes them)."""
    hours = span["hours_start"] < span["hours_end"]
    minutes = span["start"] < span["hours_start"] or span["hours_end"] < span["end"]
    return _health_at_errors(hours, minutes)
