"""Errors and usage events by a flag's variant, as SQL over the warehouse (the ``flags``
column of migration 0008): the dashboard's error rate by variant and the cohort rules
both read it.

Parameters (ClickHouse server-side, ``{name:Type}``): ``start``/``end`` UTC bounds,
``app``, ``env`` ('' = any), ``flag``, ``variants`` (the variants to count; [] = every
one), ``step`` the bucket size in seconds. Rows: ``t, variant, errors, requests`` (usage
events of the scopes that evaluated the flag to that variant).
"""

from __future__ import annotations

from typing import Final

_WHERE: Final = (
    "ts >= {start:DateTime64(3, 'UTC')} AND ts < {end:DateTime64(3, 'UTC')}"
    " AND app = {app:String} AND ({env:String} = '' OR env = {env:String})"
    " AND mapContains(flags, {flag:String})"
    " AND (empty({variants:Array(String)}) OR has({variants:Array(String)}, flags[{flag:String}]))"
)
_BUCKET: Final = "toStartOfInterval(ts, toIntervalSecond({step:UInt32}))"

#: Errors and usage events per bucket and variant of the flag.
BY_VARIANT: Final = f"""
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
