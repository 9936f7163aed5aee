-- The usage page's feature and route lists when no release is chosen: migration 0013's
-- levels (hour, quarter day, day) without the release in their key, so a list merges one
-- state per feature (route) and level instead of one per release running at the time
-- (two or three while a release rolls out). Same columns and sketches: a list of every
-- release reads these tables, a list of one release reads 0013's.
--
-- Each table is a copy of its level in 0013 as that is inserted, the release left out
-- (nothing is computed twice at ingest): the engine merges the releases' states of a
-- feature and period in each inserted block (optimize_on_insert) and in its background
-- merges, and every read merges what is left, so the lists stay exact. The periods
-- already in 0013's tables are copied when this migration runs (migrations run before
-- the stream workers and sinks start, so no insert lands in between).

-- The features: uses by origin, users, customers and duration quantiles.

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_any_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
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
ORDER BY (toDate(hour), app, env, name, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_any_six_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    quarter_day DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    origins     SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    users       AggregateFunction(uniqCombined(12), String),
    customers   AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(quarter_day)
ORDER BY (app, env, name, quarter_day)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_any_daily
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    day         DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    origins     SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    users       AggregateFunction(uniqCombined(12), String),
    customers   AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (app, env, name, day)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_any_hourly_mv TO {db}.usage_feature_list_any_hourly AS
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_any_six_hourly_mv TO {db}.usage_feature_list_any_six_hourly AS
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_six_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_any_daily_mv TO {db}.usage_feature_list_any_daily AS
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_daily;

INSERT INTO {db}.usage_feature_list_any_hourly
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_hourly;

INSERT INTO {db}.usage_feature_list_any_six_hourly
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_six_hourly;

INSERT INTO {db}.usage_feature_list_any_daily
SELECT * EXCEPT (release) FROM {db}.usage_feature_list_daily;

-- The routes: requests, failures, users and p95 duration.

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_any_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    hour        DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (toDate(hour), app, env, route, hour)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384;

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_any_six_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    quarter_day DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(quarter_day)
ORDER BY (app, env, route, quarter_day)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_any_daily
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    day         DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (app, env, route, day)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_any_hourly_mv TO {db}.usage_route_list_any_hourly AS
SELECT * EXCEPT (release) FROM {db}.usage_route_list_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_any_six_hourly_mv TO {db}.usage_route_list_any_six_hourly AS
SELECT * EXCEPT (release) FROM {db}.usage_route_list_six_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_any_daily_mv TO {db}.usage_route_list_any_daily AS
SELECT * EXCEPT (release) FROM {db}.usage_route_list_daily;

INSERT INTO {db}.usage_route_list_any_hourly
SELECT * EXCEPT (release) FROM {db}.usage_route_list_hourly;

INSERT INTO {db}.usage_route_list_any_six_hourly
SELECT * EXCEPT (release) FROM {db}.usage_route_list_six_hourly;

INSERT INTO {db}.usage_route_list_any_daily
SELECT * EXCEPT (release) FROM {db}.usage_route_list_daily;
