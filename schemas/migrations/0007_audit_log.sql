-- The audit trail: every change made through the dashboard, the alerting API or the
-- command line (rules, silences, error-group status, accounts, tokens, share links ...),
-- who made it, from where, and the state before and after it (JSON, '' when none).
CREATE TABLE IF NOT EXISTS {db}.audit_log
(
    ts       DateTime64(3, 'UTC'),
    entry_id String,
    actor    String,
    role     LowCardinality(String),
    action   LowCardinality(String),
    target   String,
    before   String,
    after    String,
    address  String,
    via      LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (ts, entry_id)
SETTINGS non_replicated_deduplication_window = 1000;
