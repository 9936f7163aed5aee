-- Raw events, one table per kind. Every row keeps its Kafka position (_topic,
-- _partition, _offset, and _index within a batch message): the sink uses it to skip
-- what it already stored after a crash.
-- Deduplication windows make retried inserts with the same token no-ops.

CREATE TABLE IF NOT EXISTS {db}.events_usage
(
    event_id     UUID,
    ts           DateTime64(3, 'UTC'),
    app          LowCardinality(String),
    env          LowCardinality(String),
    release      LowCardinality(String),
    host         LowCardinality(String),
    instance     String,
    session_id   String,
    user_id      String,
    customer_id  String,
    origin       LowCardinality(String),
    attributes   Map(LowCardinality(String), String),
    name         LowCardinality(String),
    route        LowCardinality(String),
    method       LowCardinality(String),
    status_code  UInt16,
    duration_ms  Nullable(Float64),
    value        Nullable(Float64),
    received_at  DateTime64(3, 'UTC'),
    _topic       LowCardinality(String),
    _partition   UInt16,
    _offset      UInt64,
    _index       UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, name, ts)
TTL toDateTime(ts) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.events_error
(
    event_id          UUID,
    ts                DateTime64(3, 'UTC'),
    app               LowCardinality(String),
    env               LowCardinality(String),
    release           LowCardinality(String),
    host              LowCardinality(String),
    instance          String,
    session_id        String,
    user_id           String,
    customer_id       String,
    origin            LowCardinality(String),
    attributes        Map(LowCardinality(String), String),
    exception_type    LowCardinality(String),
    exception_message String,
    stacktrace        String CODEC(ZSTD(3)),
    frames            Array(Tuple(module String, function String, filename String, lineno UInt32, in_app Bool)),
    handled           Bool,
    level             LowCardinality(String),
    route             LowCardinality(String),
    received_at       DateTime64(3, 'UTC'),
    _topic            LowCardinality(String),
    _partition        UInt16,
    _offset           UInt64,
    _index       UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, exception_type, ts)
TTL toDateTime(ts) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.events_health
(
    event_id     UUID,
    ts           DateTime64(3, 'UTC'),
    app          LowCardinality(String),
    env          LowCardinality(String),
    release      LowCardinality(String),
    host         LowCardinality(String),
    instance     String,
    session_id   String,
    user_id      String,
    customer_id  String,
    origin       LowCardinality(String),
    attributes   Map(LowCardinality(String), String),
    metrics      Map(LowCardinality(String), Float64),
    received_at  DateTime64(3, 'UTC'),
    _topic       LowCardinality(String),
    _partition   UInt16,
    _offset      UInt64,
    _index       UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, host, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.events_change
(
    event_id       UUID,
    ts             DateTime64(3, 'UTC'),
    app            LowCardinality(String),
    env            LowCardinality(String),
    release        LowCardinality(String),
    host           LowCardinality(String),
    instance       String,
    session_id     String,
    user_id        String,
    customer_id    String,
    origin         LowCardinality(String),
    attributes     Map(LowCardinality(String), String),
    change_type    LowCardinality(String),
    name           String,
    value          String,
    previous_value String,
    actor          String,
    description    String,
    received_at    DateTime64(3, 'UTC'),
    _topic         LowCardinality(String),
    _partition     UInt16,
    _offset        UInt64,
    _index       UInt16
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, ts)
TTL toDateTime(ts) + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 1000;
