-- Which incarnation of its Kafka topic each stored row came from: the topic's id (a
-- topic deleted and created again, or one of the same name on another cluster, has
-- another id and starts its offsets again at 0). The sink reads back the highest stored
-- offset per topic id and partition, so positions of one incarnation never skip messages
-- of another. Rows stored before this migration hold '' (docs/sink.md says whose they are).

ALTER TABLE {db}.events_usage
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.events_error
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.events_health
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.events_change
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.rollups
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.dead_letters
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.errors_grouped
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.error_groups
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.error_group_transitions
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.alerts
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

ALTER TABLE {db}.alert_notifications
    ADD COLUMN IF NOT EXISTS _topic_id LowCardinality(String) DEFAULT '' AFTER _topic;

-- Each incarnation a sink has read, recorded when the sink first meets it. The first one
-- recorded for a topic adopts the rows stored without a topic id (adopts_legacy).
CREATE TABLE IF NOT EXISTS {db}.topic_incarnations
(
    topic         String,
    topic_id      String,
    adopts_legacy Bool,
    seen_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, topic_id)
SETTINGS non_replicated_deduplication_window = 1000;
