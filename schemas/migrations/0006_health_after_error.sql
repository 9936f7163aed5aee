-- An error thrown before its host's first health report (a crash at start-up) gets the
-- host's first snapshot taken within 10 s after it; health_after_error marks such
-- snapshots (health_age_ms is then how long after the error it was taken).
ALTER TABLE {db}.errors_grouped
    ADD COLUMN IF NOT EXISTS health_after_error Bool DEFAULT false AFTER health;

-- The view attaches the same snapshots as the stream: the latest at or before the error
-- within 60 s, else the first after it within 10 s.
CREATE OR REPLACE VIEW {db}.errors_with_health AS
SELECT
    e.event_id AS event_id,
    e.ts AS ts,
    e.app AS app,
    e.env AS env,
    e.release AS release,
    e.host AS host,
    e.instance AS instance,
    e.user_id AS user_id,
    e.customer_id AS customer_id,
    e.route AS route,
    e.exception_type AS exception_type,
    e.exception_message AS exception_message,
    h.ts AS _snapshot_ts,
    dateDiff('millisecond', h.ts, e.ts) AS _age_ms,
    a.ts AS _after_ts,
    dateDiff('millisecond', e.ts, a.ts) AS _after_ms,
    h.event_id != toUUID('00000000-0000-0000-0000-000000000000') AND _age_ms <= 60000 AS _before,
    NOT _before AND a.event_id != toUUID('00000000-0000-0000-0000-000000000000')
        AND _after_ms <= 10000 AS health_after_error,
    _before OR health_after_error AS has_health,
    multiIf(_before, _snapshot_ts, health_after_error, _after_ts, NULL) AS health_ts,
    multiIf(_before, toUInt32(_age_ms), health_after_error, toUInt32(_after_ms), NULL)
        AS health_age_ms,
    multiIf(_before, h.metrics, health_after_error, a.metrics,
            CAST(map(), 'Map(LowCardinality(String), Float64)')) AS health
FROM {db}.events_error AS e
ASOF LEFT JOIN {db}.events_health AS h
    ON e.app = h.app AND e.env = h.env AND e.host = h.host AND e.ts >= h.ts
ASOF LEFT JOIN {db}.events_health AS a
    ON e.app = a.app AND e.env = a.env AND e.host = a.host AND e.ts < a.ts;
