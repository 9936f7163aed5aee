"""The SQL behind ``/alerts`` (tables of migration 0005): alerts firing or pending now,
their transitions in a range and the notifications sent about them. ``rule`` '' means
every rule; ``app``/``env`` match the alerts' labels ('' = any)."""

from __future__ import annotations

from typing import Final

_LABELS: Final = (
    "({app:String} = '' OR labels['app'] = {app:String})"
    " AND ({env:String} = '' OR labels['env'] = {env:String})"
    " AND ({rule:String} = '' OR rule = {rule:String})"
)
_TS: Final = "ts >= {start:DateTime('UTC')} AND ts < {end:DateTime('UTC')}"

#: Alerts firing or pending now (the latest transition of each alert).
NOW: Final = f"""/* dashboard.alerts_now */
SELECT rule, fingerprint, state, labels, annotations, starts_at, active_since, value,
       threshold, updated_at
FROM alerts_current
WHERE {_LABELS}
ORDER BY state = 'firing' DESC, starts_at
LIMIT 200
"""

#: Every transition in the range, newest first.
HISTORY: Final = f"""/* dashboard.alerts_history */
SELECT rule, fingerprint, labels, previous, state, ts, value, threshold
FROM alerts FINAL
WHERE {_TS} AND {_LABELS}
ORDER BY ts DESC
LIMIT 200
"""

#: Notification outcomes in the range (delivered, retrying, failed, rate limited).
NOTIFICATIONS: Final = f"""/* dashboard.alert_notifications */
SELECT ts, kind, subscription, channel, target, alert_status, rules, status, attempt, error
FROM alert_notifications FINAL
WHERE {_TS} AND ({{rule:String}} = '' OR has(rules, {{rule:String}}))
ORDER BY ts DESC
LIMIT 100
"""
