-- Closed event-time buckets from the stream workers (topic rollups.v1). A replay may
-- re-emit a bucket with a partial count; ReplacingMergeTree(count) keeps the largest.
-- Query with FINAL (or argMax) and sum over source_partition.
CREATE TABLE IF NOT EXISTS {db}.rollups
(
    app              LowCardinality(String),
    env              LowCardinality(String),
    kind             LowCardinality(String),
    key              String,
    bucket_start     DateTime64(3, 'UTC'),
    bucket_seconds   UInt32,
    count            UInt64,
    sums             Map(LowCardinality(String), Float64),
    mins             Map(LowCardinality(String), Float64),
    maxs             Map(LowCardinality(String), Float64),
    first_ts         DateTime64(3, 'UTC'),
    last_ts          DateTime64(3, 'UTC'),
    source_partition UInt16,
    emitted_at       DateTime64(3, 'UTC'),
    _topic           LowCardinality(String),
    _partition       UInt16,
    _offset          UInt64
)
ENGINE = ReplacingMergeTree(count)
PARTITION BY toYYYYMM(bucket_start)
ORDER BY (app, env, kind, key, bucket_start, source_partition)
TTL toDateTime(bucket_start) + INTERVAL 400 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Everything rejected, with why. One row per rejected source message.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    rejected_at      DateTime64(3, 'UTC'),
    stage            LowCardinality(String),
    reason           LowCardinality(String),
    detail           String,
    payload          String CODEC(ZSTD(3)),
    payload_bytes    UInt32,
    source_topic     LowCardinality(String),
    source_partition UInt16,
    source_offset    UInt64,
    source_index     UInt16,
    _topic           LowCardinality(String),
    _partition       UInt16,
    _offset          UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(rejected_at)
ORDER BY (source_topic, source_partition, source_offset, source_index)
TTL toDateTime(rejected_at) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
