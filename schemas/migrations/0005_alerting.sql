-- Alerting. The stream worker evaluates rules on open-bucket signals and emits every
-- alert transition (topic alerts.v1); the notifier records each delivery outcome (topic
-- notifications.v1). Replays re-emit identical rows: the tables deduplicate on their
-- natural keys, and retried inserts on their token.

-- The alert history: inactive → pending → firing → resolved, one row per transition.
-- An alert is (rule, fingerprint); seq counts its transitions.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    rule            LowCardinality(String),
    rule_kind       LowCardinality(String),
    fingerprint     String,
    labels          Map(LowCardinality(String), String),
    annotations     Map(LowCardinality(String), String),
    previous        LowCardinality(String),
    state           LowCardinality(String),
    ts              DateTime64(3, 'UTC'),
    active_since    Nullable(DateTime64(3, 'UTC')),
    starts_at       Nullable(DateTime64(3, 'UTC')),
    ends_at         Nullable(DateTime64(3, 'UTC')),
    value           Nullable(Float64),
    threshold       Nullable(Float64),
    seq             UInt32,
    idempotency_key String,
    action_webhook  Nullable(String),
    _topic          LowCardinality(String),
    _partition      UInt16,
    _offset         UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (rule, fingerprint, seq)
TTL toDateTime(ts) + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Every delivery outcome of a notification (e-mail, webhook, Slack) or action webhook:
-- delivered, retrying (with the error), failed for good, or held back by a rate limit.
CREATE TABLE IF NOT EXISTS {db}.alert_notifications
(
    idempotency_key String,
    kind            LowCardinality(String),
    subscription    LowCardinality(String),
    channel         LowCardinality(String),
    target          String,
    group_key       String,
    alert_status    LowCardinality(String),
    rules           Array(String),
    alert_keys      Array(String),
    status          LowCardinality(String),
    attempt         UInt16,
    error           String,
    ts              DateTime64(3, 'UTC'),
    first_ts        DateTime64(3, 'UTC'),
    _topic          LowCardinality(String),
    _partition      UInt16,
    _offset         UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (idempotency_key, attempt, status)
TTL toDateTime(ts) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- What is firing now: the latest transition of each alert, when it is firing or pending.
CREATE VIEW IF NOT EXISTS {db}.alerts_current AS
SELECT
    rule,
    fingerprint,
    argMax(state, seq) AS state,
    argMax(labels, seq) AS labels,
    argMax(annotations, seq) AS annotations,
    argMax(starts_at, seq) AS starts_at,
    argMax(active_since, seq) AS active_since,
    argMax(value, seq) AS value,
    argMax(threshold, seq) AS threshold,
    max(ts) AS updated_at
FROM {db}.alerts
GROUP BY rule, fingerprint
HAVING state IN ('pending', 'firing');
