-- Long-term per-minute rollups kept by ClickHouse itself (materialized views on the raw
-- tables). Read them with the -Merge combinators, e.g. uniqMerge(users).
-- The view targets keep their own deduplication window: a retried insert into a raw
-- table must not count twice here either.

CREATE TABLE IF NOT EXISTS {db}.usage_minutely
(
    app         LowCardinality(String),
    env         LowCardinality(String),
    name        LowCardinality(String),
    minute      DateTime('UTC'),
    events      SimpleAggregateFunction(sum, UInt64),
    failures    SimpleAggregateFunction(sum, UInt64),
    users       AggregateFunction(uniq, String),
    customers   AggregateFunction(uniq, String),
    duration_ms AggregateFunction(quantiles(0.5, 0.9, 0.99), Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, env, name, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_minutely_mv TO {db}.usage_minutely AS
SELECT
    app, env, name,
    toStartOfMinute(ts) AS minute,
    count() AS events,
    countIf(status_code >= 500) AS failures,
    uniqStateIf(user_id, user_id != '') AS users,
    uniqStateIf(customer_id, customer_id != '') AS customers,
    quantilesStateIf(0.5, 0.9, 0.99)(ifNull(duration_ms, 0), duration_ms IS NOT NULL) AS duration_ms
FROM {db}.events_usage
GROUP BY app, env, name, minute;

CREATE TABLE IF NOT EXISTS {db}.errors_minutely
(
    app            LowCardinality(String),
    env            LowCardinality(String),
    exception_type LowCardinality(String),
    minute         DateTime('UTC'),
    events         SimpleAggregateFunction(sum, UInt64),
    unhandled      SimpleAggregateFunction(sum, UInt64),
    users          AggregateFunction(uniq, String),
    customers      AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, env, exception_type, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.errors_minutely_mv TO {db}.errors_minutely AS
SELECT
    app, env, exception_type,
    toStartOfMinute(ts) AS minute,
    count() AS events,
    countIf(NOT handled) AS unhandled,
    uniqStateIf(user_id, user_id != '') AS users,
    uniqStateIf(customer_id, customer_id != '') AS customers
FROM {db}.events_error
GROUP BY app, env, exception_type, minute;

CREATE TABLE IF NOT EXISTS {db}.health_minutely
(
    app     LowCardinality(String),
    env     LowCardinality(String),
    host    LowCardinality(String),
    metric  LowCardinality(String),
    minute  DateTime('UTC'),
    samples SimpleAggregateFunction(sum, UInt64),
    avg     AggregateFunction(avg, Float64),
    max     SimpleAggregateFunction(max, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (app, env, host, metric, minute)
TTL minute + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.health_minutely_mv TO {db}.health_minutely AS
SELECT
    app, env, host,
    metric,
    toStartOfMinute(ts) AS minute,
    count() AS samples,
    avgState(value) AS avg,
    max(value) AS max
FROM {db}.events_health
ARRAY JOIN mapKeys(metrics) AS metric, mapValues(metrics) AS value
GROUP BY app, env, host, metric, minute;
