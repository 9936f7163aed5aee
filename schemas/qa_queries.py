"""The QA questions as SQL over the views of migration 0009 (``docs/qa.md``): behind
``shiftright qa …``, the release gate and the dashboard's ``/qa`` page.

Parameters are ClickHouse server-side (``{name:Type}``); ``app`` = '' means every app,
``days`` is the window of prod usage, ``limit`` caps the rows.
"""

from __future__ import annotations

from typing import Final

_APP: Final = "({app:String} = '' OR app = {app:String})"

#: Features and routes customers used in prod, never-tested first (qa_untested).
UNTESTED: Final = f"""
SELECT * FROM qa_untested(days = {{days:UInt32}}) WHERE {_APP}
LIMIT {{limit:UInt32}}
"""

#: What tests exercise that customers did not use in prod (qa_unused).
UNUSED: Final = f"""
SELECT * FROM qa_unused(days = {{days:UInt32}}) WHERE {_APP}
LIMIT {{limit:UInt32}}
"""

#: Features used in prod on a release nobody exercised in preprod before it got there.
GAP_FEATURES: Final = f"""
SELECT * FROM qa_gap_features
WHERE {_APP} AND reached_prod >= now64(3) - toIntervalDay({{days:UInt32}})
LIMIT {{limit:UInt32}}
"""

#: Error groups preprod missed (route served there first) or saw first (with lead time).
GAP_ERRORS: Final = f"""
SELECT * FROM qa_error_gaps
WHERE {_APP} AND first_prod >= now64(3) - toIntervalDay({{days:UInt32}})
LIMIT {{limit:UInt32}}
"""

#: Per app × env × release: error rate, p95, CPU and memory per request, and the
#: previous release's (qa_release_health).
RELEASES: Final = f"""
SELECT * FROM qa_release_health
WHERE {_APP} AND first_seen >= now64(3) - toIntervalDay({{days:UInt32}})
ORDER BY app, first_seen, env
LIMIT {{limit:UInt32}}
"""

#: One release's health in one env (the gate's candidate and baseline).
RELEASE_IN_ENV: Final = """
SELECT * FROM qa_release_health
WHERE app = {app:String} AND env = {env:String} AND release = {release:String}
"""

#: Error groups of a release in an env that no other release had before it.
NEW_GROUPS: Final = """
SELECT group_id, any(title) AS title, uniqExact(event_id) AS errors, min(ts) AS first_seen
FROM errors_grouped
WHERE app = {app:String} AND env = {env:String} AND release = {release:String}
  AND group_id NOT IN (
      SELECT group_id FROM errors_grouped
      WHERE app = {app:String} AND release != {release:String} AND ts < {since:DateTime64(3)}
  )
GROUP BY group_id
ORDER BY errors DESC, group_id
"""

#: Routes a release serves in an env that the baseline never served, with their
#: (non-test) requests, that no test ever exercised (in any env or release: tests run
#: in-process often report a release of their own).
UNTESTED_NEW_ROUTES: Final = """
SELECT name, count() AS requests
FROM events_usage
WHERE app = {app:String} AND env = {env:String} AND release = {release:String}
  AND route != '' AND origin != 'test'
  AND name NOT IN (
      SELECT name FROM events_usage
      WHERE app = {app:String} AND release = {baseline:String} AND route != ''
  )
  AND name NOT IN (
      SELECT name FROM events_usage WHERE app = {app:String} AND origin = 'test'
  )
GROUP BY name
ORDER BY requests DESC, name
"""

#: The gates' decisions (change events written by ``shiftright qa gate``).
GATE_DECISIONS: Final = f"""
SELECT ts, app, env, release, value AS decision, previous_value AS baseline, description
FROM events_change
WHERE change_type = 'gate' AND {_APP} AND ts >= now64(3) - toIntervalDay({{days:UInt32}})
ORDER BY ts DESC
LIMIT {{limit:UInt32}}
"""

#: Prod errors per app × route × in-app stack (deepest frame last), for
#: ``shiftright import coverage``: which failing lines any test ever ran.
ERROR_FRAMES: Final = f"""
SELECT app, route, any(exception_type) AS exception_type, uniqExact(event_id) AS errors,
       arrayFilter(f -> tupleElement(f, 'in_app'), frames) AS app_frames
FROM events_error
WHERE env = {{env:String}} AND origin != 'test' AND {_APP}
  AND ts >= now64(3) - toIntervalDay({{days:UInt32}})
GROUP BY app, route, app_frames
ORDER BY errors DESC
LIMIT {{limit:UInt32}}
"""
