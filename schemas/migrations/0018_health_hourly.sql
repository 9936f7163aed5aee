-- Each host's health per hour: the rows of health_minutely (migration 0003) merged per
-- hour (sums, averages' states and maxima, all exact), so a question over whole hours of
-- a few hosts' health reads one row per host, metric and hour instead of sixty. The
-- error group page's "usual health of the hosts that threw it" reads the whole hours of
-- its range here and the minutes at either end from health_minutely.
--
-- The table fills from health_minutely as that is inserted; the hours already there are
-- copied when this migration runs (migrations run before the stream workers and sinks
-- start, so no insert lands in between).
CREATE TABLE IF NOT EXISTS {db}.health_hourly
(
    app LowCardinality(String), env LowCardinality(String), host LowCardinality(String),
    metric LowCardinality(String), hour DateTime('UTC'), samples SimpleAggregateFunction(sum, UInt64),
    avg AggregateFunction(avg, Float64), max SimpleAggregateFunction(max, Float64)
)
ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(hour)
ORDER BY (app, env, host, metric, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 1024;

-- Each hour of the minutes inserted, and of those already there.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.health_hourly_mv TO {db}.health_hourly AS
SELECT app, env, host, metric, toStartOfHour(minute) AS hour, sum(samples) AS samples,
       avgMergeState(avg) AS avg, max(max) AS max
FROM {db}.health_minutely GROUP BY app, env, host, metric, hour;

INSERT INTO {db}.health_hourly
SELECT app, env, host, metric, toStartOfHour(minute) AS hour, sum(samples) AS samples,
       avgMergeState(avg) AS avg, max(max) AS max
FROM {db}.health_minutely GROUP BY app, env, host, metric, hour;
