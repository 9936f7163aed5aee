-- The errors of migration 0004's errors_grouped, sorted by their hour first: the errors
-- list counts each group's errors and distinct users in a range, and errors_grouped,
-- sorted by group first and partitioned by month, holds errors of any day in every
-- granule, so a day's list read the whole month's partition (a cost growing through the
-- month). Here a range reads the hours it covers (queries bound toStartOfHour(ts), which
-- the warehouse does not narrow from a condition on ts alone).
--
-- Only the columns the list reads. The sort key is errors_grouped's with the hour in
-- front, a function of ts: two rows are one row here exactly when they are one row
-- there, so FINAL over this table counts an error stored twice once, as FINAL over
-- errors_grouped does.
--
-- The table fills from errors_grouped as that is inserted; the errors already there are
-- copied when this migration runs (migrations run before the stream workers and sinks
-- start, so no insert lands in between).
CREATE TABLE IF NOT EXISTS {db}.errors_grouped_by_hour
(
    event_id UUID, ts DateTime64(3, 'UTC'), app LowCardinality(String),
    env LowCardinality(String), release LowCardinality(String), group_id String,
    user_id String
)
ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(ts)
ORDER BY (toStartOfHour(ts), app, env, group_id, ts, event_id)
TTL toDateTime(ts) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Each error inserted, and those already there.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.errors_grouped_by_hour_mv TO {db}.errors_grouped_by_hour AS
SELECT event_id, ts, app, env, release, group_id, user_id FROM {db}.errors_grouped;

INSERT INTO {db}.errors_grouped_by_hour
SELECT event_id, ts, app, env, release, group_id, user_id FROM {db}.errors_grouped;
