-- What the dashboard's usage page and overview read, per minute and per hour, so a panel
-- merges a few thousand states instead of scanning events_usage or every minute of
-- usage_minutely. A panel reads the hourly table for the whole hours inside its range and
-- the minutely one for the minutes at either end. The states are sketches whose merge is
-- exact: a merged state equals the state of the raw rows, so a panel answers what
-- uniqCombined(12) and quantilesDD(0.01, ...) answer over events_usage for the same
-- range (distinct counts exact up to a few thousand, then HyperLogLog; quantiles within
-- 1 % of the true value), and they are small and quick to merge.
--
-- Each minutely table is sorted by its hour first: a range reads only the hours it
-- covers, whatever the retention. The hourly tables fill from the minutely ones (their
-- states merged per hour), not from the raw events again.
-- Minutes before this migration stay empty here; docs/tables.md has the statements that
-- fill them from events_usage and events_health.

-- Features by release, with their uses by origin: the usage page's feature list, its
-- trend and its split by origin.
CREATE TABLE IF NOT EXISTS {db}.usage_features_minutely
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    release     LowCardinality(String),
    minute      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    origins     SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    users       AggregateFunction(uniqCombined(12), String),
    customers   AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (toStartOfHour(minute), app, env, name, release, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_features_minutely_mv TO {db}.usage_features_minutely AS
SELECT
    app, env, name, release,
    toStartOfMinute(ts) AS minute,
    count() AS events,
    countIf(status_code >= 500) AS failures,
    sumMap(map(if(origin = '', 'user', toString(origin)), toUInt64(1))) AS origins,
    uniqCombinedStateIf(12)(user_id, user_id != '') AS users,
    uniqCombinedStateIf(12)(customer_id, customer_id != '') AS customers,
    quantilesDDStateIf(0.01, 0.5, 0.9, 0.99)(ifNull(duration_ms, 0), duration_ms IS NOT NULL) AS duration_ms
FROM {db}.events_usage
GROUP BY app, env, name, release, minute;

CREATE TABLE IF NOT EXISTS {db}.usage_features_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    release     LowCardinality(String),
    hour        DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    origins     SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    users       AggregateFunction(uniqCombined(12), String),
    customers   AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (toDate(hour), app, env, name, release, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_features_hourly_mv TO {db}.usage_features_hourly AS
SELECT
    app, env, name, release,
    toStartOfHour(minute) AS hour,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_features_minutely
GROUP BY app, env, name, release, hour;

-- Routes by release: the usage page's route list.
CREATE TABLE IF NOT EXISTS {db}.usage_routes_minutely
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    release     LowCardinality(String),
    minute      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (toStartOfHour(minute), app, env, route, release, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_routes_minutely_mv TO {db}.usage_routes_minutely AS
SELECT
    app, env, route, release,
    toStartOfMinute(ts) AS minute,
    count() AS events,
    countIf(status_code >= 500) AS failures,
    uniqCombinedStateIf(12)(user_id, user_id != '') AS users,
    quantileDDStateIf(0.01, 0.95)(ifNull(duration_ms, 0), duration_ms IS NOT NULL) AS duration_ms
FROM {db}.events_usage
WHERE route != ''
GROUP BY app, env, route, release, minute;

CREATE TABLE IF NOT EXISTS {db}.usage_routes_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    release     LowCardinality(String),
    hour        DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (toDate(hour), app, env, route, release, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_routes_hourly_mv TO {db}.usage_routes_hourly AS
SELECT
    app, env, route, release,
    toStartOfHour(minute) AS hour,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_routes_minutely
GROUP BY app, env, route, release, hour;

-- Requests, failures and durations per app and env: the overview's rate, error rate and
-- latency tiles.
CREATE TABLE IF NOT EXISTS {db}.usage_app_minutely
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    minute      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (toStartOfHour(minute), app, env, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_app_minutely_mv TO {db}.usage_app_minutely AS
SELECT
    app, env,
    toStartOfMinute(ts) AS minute,
    count() AS events,
    countIf(status_code >= 500) AS failures,
    quantilesDDStateIf(0.01, 0.5, 0.95)(ifNull(duration_ms, 0), duration_ms IS NOT NULL) AS duration_ms
FROM {db}.events_usage
GROUP BY app, env, minute;

CREATE TABLE IF NOT EXISTS {db}.usage_app_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    hour        DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (app, env, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_app_hourly_mv TO {db}.usage_app_hourly AS
SELECT
    app, env,
    toStartOfHour(minute) AS hour,
    sum(events) AS events,
    sum(failures) AS failures,
    quantilesDDMergeState(0.01, 0.5, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_app_minutely
GROUP BY app, env, hour;

-- Host metrics averaged over each app's and env's hosts: the overview's CPU, memory and
-- disk charts.
CREATE TABLE IF NOT EXISTS {db}.health_app_minutely
(
    app     LowCardinality(String),
    env     LowCardinality(String),
    metric  LowCardinality(String),
    minute  DateTime('UTC'),
    samples SimpleAggregateFunction(sum, UInt64),
    avg     AggregateFunction(avg, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (toStartOfHour(minute), app, env, metric, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.health_app_minutely_mv TO {db}.health_app_minutely AS
SELECT
    app, env, metric,
    toStartOfMinute(ts) AS minute,
    count() AS samples,
    avgState(value) AS avg
FROM {db}.events_health
ARRAY JOIN mapKeys(metrics) AS metric, mapValues(metrics) AS value
GROUP BY app, env, metric, minute;

CREATE TABLE IF NOT EXISTS {db}.health_app_hourly
(
    app     LowCardinality(String),
    env     LowCardinality(String),
    metric  LowCardinality(String),
    hour    DateTime('UTC'),
    samples SimpleAggregateFunction(sum, UInt64),
    avg     AggregateFunction(avg, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (app, env, metric, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.health_app_hourly_mv TO {db}.health_app_hourly AS
SELECT
    app, env, metric,
    toStartOfHour(minute) AS hour,
    sum(samples) AS samples,
    avgMergeState(avg) AS avg
FROM {db}.health_app_minutely
GROUP BY app, env, metric, hour;
