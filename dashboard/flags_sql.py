"""The SQL behind ``/flags/{name}``: errors and usage events by the flag's variant (the
``flags`` column of migration 0008), and the flag's change events (its flips)."""

from __future__ import annotations

from typing import Final

_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"
_WHERE: Final = (
    f"{_TS} AND app = {{app:String}} AND ({{env:String}} = '' OR env = {{env:String}})"
    " AND mapContains(flags, {flag:String})"
)
_BUCKET: Final = "toStartOfInterval(ts, toIntervalSecond({step:UInt32}))"

#: Errors and usage events per bucket and variant of the flag (events that evaluated it).
BY_VARIANT: Final = f"""/* dashboard.flag_variants */
SELECT t, variant, sum(errors) AS errors, sum(requests) AS requests
FROM (
    SELECT {_BUCKET} AS t, flags[{{flag:String}}] AS variant, count() AS errors,
           toUInt64(0) AS requests
    FROM events_error WHERE {_WHERE} GROUP BY t, variant
    UNION ALL
    SELECT {_BUCKET} AS t, flags[{{flag:String}}] AS variant, toUInt64(0) AS errors,
           count() AS requests
    FROM events_usage WHERE {_WHERE} GROUP BY t, variant
)
GROUP BY t, variant
ORDER BY t, variant
"""

#: The flag's flips and restores in the range (and file changes of its state), newest first.
FLIPS: Final = f"""/* dashboard.flag_flips */
SELECT ts, env, previous_value, value, actor, description
FROM events_change
WHERE {_TS} AND change_type = 'flag' AND app = {{app:String}} AND name = {{flag:String}}
  AND ({{env:String}} = '' OR env = {{env:String}})
ORDER BY ts DESC
LIMIT 200
"""
