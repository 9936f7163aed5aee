-- What the usage page's feature and route lists read beyond the minutely rollups of
-- migration 0012: the same states per hour, per quarter day (six hours) and per day, in
-- small granules, so merging the states of the 50 busiest features reads their rows and
-- few of their neighbours' (the states are most of the bytes; 0012's tables keep 256
-- rows a granule for the charts). The hourly table is sorted by day first, like 0012's,
-- in granules of 16 KiB (a few hours of a busy feature); the coarser ones by feature
-- first, in granules of 64 KiB (a feature's quarter days or days of a month lie together,
-- so choosing the busiest reads few granules).
--
-- A list reads the daily table for the whole days inside its range, the six-hourly one
-- for the other whole quarter days, the hourly one for the other whole hours and 0012's
-- minutely one for the minutes at either end: a week is 6 days and at each end up to 3
-- quarter days, 5 hours and 59 minutes.
--
-- The hourly table copies 0012's as it is inserted; each coarser level merges the states
-- of the one below (exact, like every level). The hours already in 0012's table are
-- copied when this migration runs, the coarser levels filling from that copy through
-- their views (migrations run before the stream workers and sinks start, so no insert
-- lands in between).

-- The features: uses by origin, users, customers and duration quantiles.

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_hourly
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
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_hourly_mv TO {db}.usage_feature_list_hourly AS
SELECT app, env, name, release, hour, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_features_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_six_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    release     LowCardinality(String),
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
ORDER BY (app, env, name, release, quarter_day)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_six_hourly_mv TO {db}.usage_feature_list_six_hourly AS
SELECT
    app, env, name, release,
    toStartOfInterval(hour, INTERVAL 6 HOUR) AS quarter_day,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_hourly
GROUP BY app, env, name, release, quarter_day;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_daily
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    release     LowCardinality(String),
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
ORDER BY (app, env, name, release, day)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_daily_mv TO {db}.usage_feature_list_daily AS
SELECT
    app, env, name, release,
    toStartOfDay(quarter_day) AS day,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_six_hourly
GROUP BY app, env, name, release, day;

INSERT INTO {db}.usage_feature_list_hourly
SELECT app, env, name, release, hour, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_features_hourly;

-- The routes: requests, failures, users and p95 duration.

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_hourly
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
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_hourly_mv TO {db}.usage_route_list_hourly AS
SELECT app, env, route, release, hour, events, failures, users, duration_ms
FROM {db}.usage_routes_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_six_hourly
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    release     LowCardinality(String),
    quarter_day DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(quarter_day)
ORDER BY (app, env, route, release, quarter_day)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_six_hourly_mv TO {db}.usage_route_list_six_hourly AS
SELECT
    app, env, route, release,
    toStartOfInterval(hour, INTERVAL 6 HOUR) AS quarter_day,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_route_list_hourly
GROUP BY app, env, route, release, quarter_day;

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_daily
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    release     LowCardinality(String),
    day         DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (app, env, route, release, day)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 65536;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_daily_mv TO {db}.usage_route_list_daily AS
SELECT
    app, env, route, release,
    toStartOfDay(quarter_day) AS day,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_route_list_six_hourly
GROUP BY app, env, route, release, day;

INSERT INTO {db}.usage_route_list_hourly
SELECT app, env, route, release, hour, events, failures, users, duration_ms
FROM {db}.usage_routes_hourly;
