"""The SQL behind ``/flags/{name}``: errors and usage events by the flag's variant (the
``flags`` column of migration 0008), and the flag's change events (its flips)."""

from __future__ import annotations

from typing import Final

from shiftright_server.schemas import flag_queries

_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"

#: Errors and usage events per bucket and variant of the flag (every variant).
BY_VARIANT: Final = "/* dashboard.flag_variants */" + flag_queries.BY_VARIANT

#: The flag's flips and restores in the range (and file changes of its state), newest first.
FLIPS: Final = f"""/* dashboard.flag_flips */
SELECT ts, env, previous_value, value, actor, description
FROM events_change
WHERE {_TS} AND change_type = 'flag' AND app = {{app:String}} AND name = {{flag:String}}
  AND ({{env:String}} = '' OR env = {{env:String}})
ORDER BY ts DESC
LIMIT 200
"""
