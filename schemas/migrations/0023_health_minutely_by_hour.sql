-- Each host's health per minute (migration 0003's health_minutely), sorted by the hour
-- first: the health page charts every host of an app over its range, and
-- health_minutely, sorted by host and metric first and partitioned by month, holds
-- minutes of every day in each granule, so a day's chart read the app's whole month so
-- far (a cost growing through the month). Here a range reads the hours it covers
-- (queries bound toStartOfHour(minute), which the warehouse does not narrow from a
-- condition on minute alone).
--
-- Only the columns the page reads. The sort key is health_minutely's with the hour in
-- front, a function of the minute, so the rows merged into one here are those merged
-- into one there, and each row's average state is the same merge.
--
-- The table fills from health_minutely as that is inserted; the minutes already there
-- are copied when this migration runs (migrations run before the stream workers and
-- sinks start, so no insert lands in between).
CREATE TABLE IF NOT EXISTS {db}.health_minutely_by_hour
(
    app LowCardinality(String), env LowCardinality(String), host LowCardinality(String),
    metric LowCardinality(String), minute DateTime('UTC'), avg AggregateFunction(avg, Float64)
)
ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(minute)
ORDER BY (toStartOfHour(minute), app, env, host, metric, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Each minute inserted, and those already there.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.health_minutely_by_hour_mv TO {db}.health_minutely_by_hour AS
SELECT app, env, host, metric, minute, avg FROM {db}.health_minutely;

INSERT INTO {db}.health_minutely_by_hour
SELECT app, env, host, metric, minute, avg FROM {db}.health_minutely;
