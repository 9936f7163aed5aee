-- The usage page's feature list of every release merges the chosen features' sketches
-- (distinct users and customers, duration quantiles) from fewer, larger periods: one
-- table holds each feature's states per hour, two hours, quarter day, half day, day and
-- two days (`span`, in seconds; each block starts at a multiple of its span since the
-- epoch), sorted by feature first, so a list reads every level of its 50 features in
-- one pass, in granules of 16 KiB (a few periods: few neighbours' states are read),
-- each column compressed in blocks of at most 16 KiB (reading a granule decompresses
-- about that granule alone, not the 64 KiB to 1 MiB around it; a quarter more on disk). A
-- day (25 whole hours) merges at most 6 states per feature instead of 10, a week (169
-- hours) at most 10 instead of 16.
--
-- The hours, quarter days and days are copies of migration 0014's levels as they are
-- inserted; the two hours, half days and two days merge the states of the copied level
-- below them in each inserted block (exact, like every level). The periods already in
-- 0014's tables are copied when this migration runs (migrations run before the stream
-- workers and sinks start, so no insert lands in between).

CREATE TABLE IF NOT EXISTS {db}.usage_feature_sketches
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    span        UInt32,
    period      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    origins     SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    users       AggregateFunction(uniqCombined(12), String),
    customers   AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantilesDD(0.01, 0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period)
ORDER BY (app, env, name, span, period)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384,
    min_compress_block_size = 4096, max_compress_block_size = 16384;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_3600_mv TO {db}.usage_feature_sketches AS
SELECT app, env, name, 3600 AS span, hour AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_hourly;

INSERT INTO {db}.usage_feature_sketches
SELECT app, env, name, 3600 AS span, hour AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_7200_mv TO {db}.usage_feature_sketches AS
SELECT
    app, env, name, 7200 AS span,
    toDateTime(toStartOfInterval(hour, INTERVAL 2 HOUR), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_hourly
GROUP BY app, env, name, period;

INSERT INTO {db}.usage_feature_sketches
SELECT
    app, env, name, 7200 AS span,
    toDateTime(toStartOfInterval(hour, INTERVAL 2 HOUR), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_hourly
GROUP BY app, env, name, period;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_21600_mv TO {db}.usage_feature_sketches AS
SELECT app, env, name, 21600 AS span, quarter_day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_six_hourly;

INSERT INTO {db}.usage_feature_sketches
SELECT app, env, name, 21600 AS span, quarter_day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_six_hourly;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_43200_mv TO {db}.usage_feature_sketches AS
SELECT
    app, env, name, 43200 AS span,
    toDateTime(toStartOfInterval(quarter_day, INTERVAL 12 HOUR), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_six_hourly
GROUP BY app, env, name, period;

INSERT INTO {db}.usage_feature_sketches
SELECT
    app, env, name, 43200 AS span,
    toDateTime(toStartOfInterval(quarter_day, INTERVAL 12 HOUR), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_six_hourly
GROUP BY app, env, name, period;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_86400_mv TO {db}.usage_feature_sketches AS
SELECT app, env, name, 86400 AS span, day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_daily;

INSERT INTO {db}.usage_feature_sketches
SELECT app, env, name, 86400 AS span, day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_any_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_172800_mv TO {db}.usage_feature_sketches AS
SELECT
    app, env, name, 172800 AS span,
    toDateTime(toStartOfInterval(day, INTERVAL 2 DAY), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_daily
GROUP BY app, env, name, period;

INSERT INTO {db}.usage_feature_sketches
SELECT
    app, env, name, 172800 AS span,
    toDateTime(toStartOfInterval(day, INTERVAL 2 DAY), 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_feature_list_any_daily
GROUP BY app, env, name, period;
