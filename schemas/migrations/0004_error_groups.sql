-- Error analytics. The stream worker groups every error (fingerprint, rules version) and
-- attaches the latest health snapshot its host took within 60 s before it; it emits the
-- groups' state after each change and their transitions. Replays re-emit identical rows,
-- so each table deduplicates on its natural key, and retried inserts on their token.

-- One row per error event (topic errors.grouped.v1); join events_error on event_id for
-- the stack trace. health_* are NULL/empty when the host had no snapshot in the window.
CREATE TABLE IF NOT EXISTS {db}.errors_grouped
(
    event_id       UUID,
    ts             DateTime64(3, 'UTC'),
    app            LowCardinality(String),
    env            LowCardinality(String),
    release        LowCardinality(String),
    host           LowCardinality(String),
    instance       String,
    user_id        String,
    customer_id    String,
    route          LowCardinality(String),
    handled        Bool,
    level          LowCardinality(String),
    exception_type LowCardinality(String),
    root_type      LowCardinality(String),
    title          String,
    culprit        String,
    group_id       String,
    fingerprint    String,
    basis          LowCardinality(String),
    rules_version  UInt32,
    rule           LowCardinality(String),
    merged_from    String,
    source_partition UInt16,
    source_offset  Int64,
    source_index   UInt16,
    health_ts      Nullable(DateTime64(3, 'UTC')),
    health_age_ms  Nullable(UInt32),
    health         Map(LowCardinality(String), Float64),
    _topic         LowCardinality(String),
    _partition     UInt16,
    _offset        UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, env, group_id, ts, event_id)
TTL toDateTime(ts) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- A group's state after each change (topic errors.groups.v1). Read with FINAL (or
-- argMax(..., version)): the row with the highest version is the current state.
CREATE TABLE IF NOT EXISTS {db}.error_groups
(
    group_id            String,
    app                 LowCardinality(String),
    fingerprint         String,
    basis               LowCardinality(String),
    rules_version       UInt32,
    rule                LowCardinality(String),
    exception_type      LowCardinality(String),
    title               String,
    culprit             String,
    status              LowCardinality(String),
    first_seen          DateTime64(3, 'UTC'),
    last_seen           DateTime64(3, 'UTC'),
    count               UInt64,
    users               UInt64,
    customers           UInt64,
    counts_exact        Bool,
    first_release       LowCardinality(String),
    last_release        LowCardinality(String),
    env_first_seen      Map(LowCardinality(String), DateTime64(3, 'UTC')),
    env_last_seen       Map(LowCardinality(String), DateTime64(3, 'UTC')),
    env_count           Map(LowCardinality(String), UInt64),
    release_first_seen  Map(String, DateTime64(3, 'UTC')),
    release_last_seen   Map(String, DateTime64(3, 'UTC')),
    release_count       Map(String, UInt64),
    resolved_at         Nullable(DateTime64(3, 'UTC')),
    resolved_in_release String,
    ignored_until       Nullable(DateTime64(3, 'UTC')),
    ignored_until_count UInt64,
    merged_from         Array(String),
    version             UInt64,
    updated_at          DateTime64(3, 'UTC'),
    _topic              LowCardinality(String),
    _partition          UInt16,
    _offset             UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (app, group_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- new / new_in_env / regressed / spiking / unignored (topic errors.transitions.v1).
CREATE TABLE IF NOT EXISTS {db}.error_group_transitions
(
    group_id        String,
    app             LowCardinality(String),
    env             LowCardinality(String),
    release         LowCardinality(String),
    kind            LowCardinality(String),
    ts              DateTime64(3, 'UTC'),
    event_id        UUID,
    previous_status LowCardinality(String),
    status          LowCardinality(String),
    title           String,
    exception_type  LowCardinality(String),
    count           UInt64,
    minute_count    UInt64,
    baseline        Float64,
    detail          String,
    _topic          LowCardinality(String),
    _partition      UInt16,
    _offset         UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, group_id, kind, env, event_id)
TTL toDateTime(ts) + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- The same health attachment as the stream, for ad-hoc questions over the raw tables:
-- each error with the latest snapshot of its host (app, env, host) taken at or before it,
-- kept only when it is at most 60 s old.
CREATE VIEW IF NOT EXISTS {db}.errors_with_health AS
SELECT
    e.event_id AS event_id,
    e.ts AS ts,
    e.app AS app,
    e.env AS env,
    e.release AS release,
    e.host AS host,
    e.instance AS instance,
    e.user_id AS user_id,
    e.customer_id AS customer_id,
    e.route AS route,
    e.exception_type AS exception_type,
    e.exception_message AS exception_message,
    h.ts AS _snapshot_ts,
    dateDiff('millisecond', h.ts, e.ts) AS _age_ms,
    h.event_id != toUUID('00000000-0000-0000-0000-000000000000') AND _age_ms <= 60000 AS has_health,
    if(has_health, _snapshot_ts, NULL) AS health_ts,
    if(has_health, toUInt32(_age_ms), NULL) AS health_age_ms,
    if(has_health, h.metrics, CAST(map(), 'Map(LowCardinality(String), Float64)')) AS health
FROM {db}.events_error AS e
ASOF LEFT JOIN {db}.events_health AS h
    ON e.app = h.app AND e.env = h.env AND e.host = h.host AND e.ts >= h.ts;
