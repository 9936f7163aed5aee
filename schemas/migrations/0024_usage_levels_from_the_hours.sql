-- Fewer materialized views on every usage insert. Each view writes a part of its own per
-- insert into events_usage (and the engine merges it later), for a few ms of CPU whatever
-- its rows, so the levels that copied other levels one view each are built here from the
-- hours of migration 0012 (usage_features_hourly, usage_routes_hourly) in one view per
-- table, every level at once (ARRAY JOIN over the levels' sizes, each block starting at
-- a multiple of its size since the epoch, as before; merging states is exact, so every
-- level holds what it held):
--
-- - the features' sketches (0019): one view writes the six levels, each feature's
--   releases merged, in place of six views over 0014's any-release levels;
-- - the choice of the busiest features and routes of every release (0016): one table
--   each, usage_feature_choices and usage_route_choices, each period's uses per hour,
--   quarter day and day (`span`, in seconds) sorted by the level and the period first,
--   in place of three tables each;
-- - 0013's hours, quarter days and days of one release: one table each for features
--   and routes (usage_feature_list_levels, usage_route_list_levels: `span` 3600, 21600
--   or 86400), one view each over 0012's hours in place of three (the hours were a copy
--   of 0012's); choosing the busiest of one release reads 0012's hours, sorted by day
--   first, for its whole hours (as it read 0013's copy);
-- - the routes of every release get sketch levels like the features' (0019), in
--   usage_route_sketches, filled by one view, and 0014's any-release levels go (the
--   sketches were the only reader of the features' ones).
--
-- On an existing database the old views are dropped first, the choices and 0013's
-- levels are copied into the new tables and the routes' sketches built
-- from 0012's hours (migrations run before the stream workers and sinks start, so no
-- insert lands in between), then the old tables are dropped. The features' sketches
-- keep their rows.

DROP VIEW IF EXISTS {db}.usage_feature_sketches_3600_mv;
DROP VIEW IF EXISTS {db}.usage_feature_sketches_7200_mv;
DROP VIEW IF EXISTS {db}.usage_feature_sketches_21600_mv;
DROP VIEW IF EXISTS {db}.usage_feature_sketches_43200_mv;
DROP VIEW IF EXISTS {db}.usage_feature_sketches_86400_mv;
DROP VIEW IF EXISTS {db}.usage_feature_sketches_172800_mv;
DROP VIEW IF EXISTS {db}.usage_feature_choice_any_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_choice_any_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_choice_any_daily_mv;
DROP VIEW IF EXISTS {db}.usage_route_choice_any_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_choice_any_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_choice_any_daily_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_any_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_any_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_any_daily_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_any_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_any_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_any_daily_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_six_hourly_mv;
DROP VIEW IF EXISTS {db}.usage_feature_list_daily_mv;
DROP VIEW IF EXISTS {db}.usage_route_list_daily_mv;

-- The levels of one release (0013): one table each for features and routes, `span`
-- 3600, 21600 or 86400, sorted by the level, then by feature (route) and release:
-- choosing the busiest of a release reads the quarter days' and days' rows alone, the
-- chosen ones' states come from a few ranges of the key. Granules of 16 KiB compressed
-- in blocks of at most 16 KiB (as 0019's sketches): few neighbours' states are read.
CREATE TABLE IF NOT EXISTS {db}.usage_feature_list_levels
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    release     LowCardinality(String),
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
ORDER BY (span, app, env, name, release, period)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384,
    min_compress_block_size = 4096, max_compress_block_size = 16384;

INSERT INTO {db}.usage_feature_list_levels
SELECT app, env, name, release, 3600 AS span, hour AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_hourly;

INSERT INTO {db}.usage_feature_list_levels
SELECT app, env, name, release, 21600 AS span, quarter_day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_six_hourly;

INSERT INTO {db}.usage_feature_list_levels
SELECT app, env, name, release, 86400 AS span, day AS period, events, failures, origins, users, customers, duration_ms
FROM {db}.usage_feature_list_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_list_levels_mv TO {db}.usage_feature_list_levels AS
SELECT
    app, env, name, release, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_features_hourly
ARRAY JOIN [3600, 21600, 86400] AS span
GROUP BY app, env, name, release, span, period;

CREATE TABLE IF NOT EXISTS {db}.usage_route_list_levels
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    release     LowCardinality(String),
    span        UInt32,
    period      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period)
ORDER BY (span, app, env, route, release, period)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384,
    min_compress_block_size = 4096, max_compress_block_size = 16384;

INSERT INTO {db}.usage_route_list_levels
SELECT app, env, route, release, 3600 AS span, hour AS period, events, failures, users, duration_ms
FROM {db}.usage_route_list_hourly;

INSERT INTO {db}.usage_route_list_levels
SELECT app, env, route, release, 21600 AS span, quarter_day AS period, events, failures, users, duration_ms
FROM {db}.usage_route_list_six_hourly;

INSERT INTO {db}.usage_route_list_levels
SELECT app, env, route, release, 86400 AS span, day AS period, events, failures, users, duration_ms
FROM {db}.usage_route_list_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_list_levels_mv TO {db}.usage_route_list_levels AS
SELECT
    app, env, route, release, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_routes_hourly
ARRAY JOIN [3600, 21600, 86400] AS span
GROUP BY app, env, route, release, span, period;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_sketches_mv TO {db}.usage_feature_sketches AS
SELECT
    app, env, name, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    sumMap(origins) AS origins,
    uniqCombinedMergeState(12)(users) AS users,
    uniqCombinedMergeState(12)(customers) AS customers,
    quantilesDDMergeState(0.01, 0.5, 0.9, 0.99)(duration_ms) AS duration_ms
FROM {db}.usage_features_hourly
ARRAY JOIN [3600, 7200, 21600, 43200, 86400, 172800] AS span
GROUP BY app, env, name, span, period;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_choices
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    name   LowCardinality(String),
    span   UInt32,
    period DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period)
ORDER BY (span, period, app, env, name)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.usage_feature_choices
SELECT app, env, name, 3600 AS span, hour AS period, events
FROM {db}.usage_feature_choice_any_hourly;

INSERT INTO {db}.usage_feature_choices
SELECT app, env, name, 21600 AS span, quarter_day AS period, events
FROM {db}.usage_feature_choice_any_six_hourly;

INSERT INTO {db}.usage_feature_choices
SELECT app, env, name, 86400 AS span, day AS period, events
FROM {db}.usage_feature_choice_any_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_choices_mv TO {db}.usage_feature_choices AS
SELECT
    app, env, name, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events
FROM {db}.usage_features_hourly
ARRAY JOIN [3600, 21600, 86400] AS span
GROUP BY app, env, name, span, period;

CREATE TABLE IF NOT EXISTS {db}.usage_route_choices
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    route  LowCardinality(String),
    span   UInt32,
    period DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period)
ORDER BY (span, period, app, env, route)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

INSERT INTO {db}.usage_route_choices
SELECT app, env, route, 3600 AS span, hour AS period, events
FROM {db}.usage_route_choice_any_hourly;

INSERT INTO {db}.usage_route_choices
SELECT app, env, route, 21600 AS span, quarter_day AS period, events
FROM {db}.usage_route_choice_any_six_hourly;

INSERT INTO {db}.usage_route_choices
SELECT app, env, route, 86400 AS span, day AS period, events
FROM {db}.usage_route_choice_any_daily;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_choices_mv TO {db}.usage_route_choices AS
SELECT
    app, env, route, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events
FROM {db}.usage_routes_hourly
ARRAY JOIN [3600, 21600, 86400] AS span
GROUP BY app, env, route, span, period;

-- The routes' sketch levels: as usage_feature_sketches (0019), with the routes' states.
CREATE TABLE IF NOT EXISTS {db}.usage_route_sketches
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    route       LowCardinality(String),
    span        UInt32,
    period      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniqCombined(12), String),
    duration_ms AggregateFunction(quantileDD(0.01, 0.95), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(period)
ORDER BY (app, env, route, span, period)
TTL period + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000, index_granularity_bytes = 16384,
    min_compress_block_size = 4096, max_compress_block_size = 16384;

INSERT INTO {db}.usage_route_sketches
SELECT
    app, env, route, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_routes_hourly
ARRAY JOIN [3600, 7200, 21600, 43200, 86400, 172800] AS span
GROUP BY app, env, route, span, period;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_sketches_mv TO {db}.usage_route_sketches AS
SELECT
    app, env, route, span,
    toDateTime(intDiv(toUInt32(hour), span) * span, 'UTC') AS period,
    sum(events) AS events,
    sum(failures) AS failures,
    uniqCombinedMergeState(12)(users) AS users,
    quantileDDMergeState(0.01, 0.95)(duration_ms) AS duration_ms
FROM {db}.usage_routes_hourly
ARRAY JOIN [3600, 7200, 21600, 43200, 86400, 172800] AS span
GROUP BY app, env, route, span, period;

DROP TABLE IF EXISTS {db}.usage_feature_choice_any_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_choice_any_six_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_choice_any_daily;
DROP TABLE IF EXISTS {db}.usage_route_choice_any_hourly;
DROP TABLE IF EXISTS {db}.usage_route_choice_any_six_hourly;
DROP TABLE IF EXISTS {db}.usage_route_choice_any_daily;
DROP TABLE IF EXISTS {db}.usage_feature_list_any_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_list_any_six_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_list_any_daily;
DROP TABLE IF EXISTS {db}.usage_route_list_any_hourly;
DROP TABLE IF EXISTS {db}.usage_route_list_any_six_hourly;
DROP TABLE IF EXISTS {db}.usage_route_list_any_daily;
DROP TABLE IF EXISTS {db}.usage_feature_list_hourly;
DROP TABLE IF EXISTS {db}.usage_route_list_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_list_six_hourly;
DROP TABLE IF EXISTS {db}.usage_feature_list_daily;
DROP TABLE IF EXISTS {db}.usage_route_list_six_hourly;
DROP TABLE IF EXISTS {db}.usage_route_list_daily;
