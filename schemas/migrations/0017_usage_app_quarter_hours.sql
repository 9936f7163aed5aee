-- The overview's request, failure and latency series in quarter-hour buckets (a range of
-- about a day) read one row per app, env and quarter hour here instead of fifteen rows
-- of usage_app_minutely (migration 0012): a day is 96 quantile states to merge per app
-- and env instead of 1,440. Each row is the minutely rows of its quarter hour merged
-- (sums, and the duration sketches' states merged, which is exact), so a series reads the
-- same numbers from here as from the minutes.
--
-- The table fills from usage_app_minutely as that is inserted; the quarter hours already
-- there are copied when this migration runs (migrations run before the stream workers
-- and sinks start, so no insert lands in between). Sorted by app and env first, without
-- a function of the time in the key: a range reads only the quarter hours it covers.
CREATE TABLE IF NOT EXISTS {db}.usage_app_quarter_hourly
(
    app LowCardinality(String), env LowCardinality(String), quarter_hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64), failures SimpleAggregateFunction(sum, UInt64),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.95), Float64)
)
ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(quarter_hour)
ORDER BY (app, env, quarter_hour)
TTL quarter_hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256;

-- Each quarter hour of the minutes inserted, and of those already there.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_app_quarter_hourly_mv TO {db}.usage_app_quarter_hourly AS
SELECT app, env, toStartOfFifteenMinutes(minute) AS quarter_hour, sum(events) AS events,
       sum(failures) AS failures, quantilesDDMergeState(0.01, 0.5, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_app_minutely GROUP BY app, env, quarter_hour;

INSERT INTO {db}.usage_app_quarter_hourly
SELECT app, env, toStartOfFifteenMinutes(minute) AS quarter_hour, sum(events) AS events,
       sum(failures) AS failures, quantilesDDMergeState(0.01, 0.5, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_app_minutely GROUP BY app, env, quarter_hour;
