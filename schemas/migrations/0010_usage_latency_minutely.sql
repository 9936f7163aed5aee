-- Request durations per app, env and minute as a quantile state (a sample of the
-- durations that merges into any levels). The overview's p50/p95 merge one state per
-- minute of each app and env: a day is 1,440 of them, where usage_minutely holds one per
-- feature and minute (about 40 times as many, and slower to merge than the raw rows).
-- Minutes before this migration stay empty here; docs/tables.md has the statement that
-- fills them from events_usage.
CREATE TABLE IF NOT EXISTS {db}.usage_latency_minutely
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    minute      DateTime('UTC'),
    duration_ms AggregateFunction(quantiles(0.5, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, env, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_latency_minutely_mv TO {db}.usage_latency_minutely AS
SELECT
    app, env,
    toStartOfMinute(ts) AS minute,
    quantilesStateIf(0.5, 0.95)(ifNull(duration_ms, 0), duration_ms IS NOT NULL) AS duration_ms
FROM {db}.events_usage
GROUP BY app, env, minute;
