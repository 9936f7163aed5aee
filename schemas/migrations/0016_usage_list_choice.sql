-- The choice of the busiest features and routes of every release over a range: the uses
-- (requests) of each per hour, quarter day and day, copied from migration 0013's levels
-- as they are inserted, sorted by the period first. Choosing the 50 busiest over every
-- app reads only the periods of its range here, in narrow rows; 0014's levels, sorted by
-- feature first and holding the sketches, are read afterwards for the chosen ones only.
-- The periods already in 0013's tables are copied when this migration runs (migrations
-- run before the stream workers and sinks start, so no insert lands in between).

CREATE TABLE IF NOT EXISTS {db}.usage_feature_choice_any_hourly
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    name   LowCardinality(String),
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app, env, name)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_choice_any_hourly_mv TO {db}.usage_feature_choice_any_hourly AS
SELECT app, env, name, hour, events FROM {db}.usage_feature_list_hourly;

INSERT INTO {db}.usage_feature_choice_any_hourly
SELECT app, env, name, hour, events FROM {db}.usage_feature_list_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_choice_any_six_hourly
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    name   LowCardinality(String),
    quarter_day DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(quarter_day)
ORDER BY (quarter_day, app, env, name)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_choice_any_six_hourly_mv TO {db}.usage_feature_choice_any_six_hourly AS
SELECT app, env, name, quarter_day, events FROM {db}.usage_feature_list_six_hourly;

INSERT INTO {db}.usage_feature_choice_any_six_hourly
SELECT app, env, name, quarter_day, events FROM {db}.usage_feature_list_six_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_feature_choice_any_daily
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    name   LowCardinality(String),
    day DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, app, env, name)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_feature_choice_any_daily_mv TO {db}.usage_feature_choice_any_daily AS
SELECT app, env, name, day, events FROM {db}.usage_feature_list_daily;

INSERT INTO {db}.usage_feature_choice_any_daily
SELECT app, env, name, day, events FROM {db}.usage_feature_list_daily;

CREATE TABLE IF NOT EXISTS {db}.usage_route_choice_any_hourly
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    route  LowCardinality(String),
    hour DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, app, env, route)
TTL hour + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_choice_any_hourly_mv TO {db}.usage_route_choice_any_hourly AS
SELECT app, env, route, hour, events FROM {db}.usage_route_list_hourly;

INSERT INTO {db}.usage_route_choice_any_hourly
SELECT app, env, route, hour, events FROM {db}.usage_route_list_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_route_choice_any_six_hourly
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    route  LowCardinality(String),
    quarter_day DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(quarter_day)
ORDER BY (quarter_day, app, env, route)
TTL quarter_day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_choice_any_six_hourly_mv TO {db}.usage_route_choice_any_six_hourly AS
SELECT app, env, route, quarter_day, events FROM {db}.usage_route_list_six_hourly;

INSERT INTO {db}.usage_route_choice_any_six_hourly
SELECT app, env, route, quarter_day, events FROM {db}.usage_route_list_six_hourly;

CREATE TABLE IF NOT EXISTS {db}.usage_route_choice_any_daily
(
    app    LowCardinality(String),
    env    LowCardinality(String),
    route  LowCardinality(String),
    day DateTime('UTC'),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, app, env, route)
TTL day + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_route_choice_any_daily_mv TO {db}.usage_route_choice_any_daily AS
SELECT app, env, route, day, events FROM {db}.usage_route_list_daily;

INSERT INTO {db}.usage_route_choice_any_daily
SELECT app, env, route, day, events FROM {db}.usage_route_list_daily;
