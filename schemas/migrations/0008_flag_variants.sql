-- The flag variants evaluated in each usage and error event's scope (request): flag name
-- -> variant ("on", "off", a variant's name). Error rate by variant is one query:
--   SELECT flags['new-checkout'] AS variant, count() FROM events_error
--   WHERE app = 'checkout' GROUP BY variant
ALTER TABLE {db}.events_usage
    ADD COLUMN IF NOT EXISTS flags Map(LowCardinality(String), LowCardinality(String))
    DEFAULT map() AFTER value;

ALTER TABLE {db}.events_error
    ADD COLUMN IF NOT EXISTS flags Map(LowCardinality(String), LowCardinality(String))
    DEFAULT map() AFTER route;
