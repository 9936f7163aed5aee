-- QA meets production: the test identity stored with each event, and the views behind
-- `shiftright qa` and the dashboard's /qa page (docs/qa.md).
-- Test traffic is origin = 'test' (marked by the SDK's pytest plugin, in any env),
-- customers are origin = 'user' in env = 'prod', preproduction is env = 'preprod'.

-- The test that caused an event: its node id, the run and the commit (from the
-- attributes the plugin sets, so rows stored before this migration read them too).
ALTER TABLE {db}.events_usage
    ADD COLUMN IF NOT EXISTS test_id String MATERIALIZED attributes['test.case.name'],
    ADD COLUMN IF NOT EXISTS test_run String MATERIALIZED attributes['test.suite.run.id'],
    ADD COLUMN IF NOT EXISTS test_commit String MATERIALIZED attributes['vcs.ref.head.revision'];

ALTER TABLE {db}.events_error
    ADD COLUMN IF NOT EXISTS test_id String MATERIALIZED attributes['test.case.name'],
    ADD COLUMN IF NOT EXISTS test_run String MATERIALIZED attributes['test.suite.run.id'],
    ADD COLUMN IF NOT EXISTS test_commit String MATERIALIZED attributes['vcs.ref.head.revision'];

-- Untested hot paths: features and routes customers used in prod over the last {days},
-- with the test runs and tests that ever exercised each; never-tested first. Errors are
-- the error events of the feature's route (and method, when the error names one).
-- SELECT * FROM qa_untested(days = 30) WHERE app = 'checkout'
CREATE OR REPLACE VIEW {db}.qa_untested AS
WITH
    used AS (
        SELECT app, name, any(route) AS route, any(method) AS method, count() AS uses,
               uniqExactIf(user_id, user_id != '') AS users,
               uniqExactIf(customer_id, customer_id != '') AS customers,
               countIf(status_code >= 500) AS failures
        FROM {db}.events_usage
        WHERE env = 'prod' AND origin = 'user' AND ts >= now64(3) - toIntervalDay({days:UInt32})
        GROUP BY app, name
    ),
    failed AS (
        SELECT app, route, attributes['http.request.method'] AS method,
               uniqExact(event_id) AS errors
        FROM {db}.events_error
        WHERE env = 'prod' AND origin = 'user' AND route != ''
          AND ts >= now64(3) - toIntervalDay({days:UInt32})
        GROUP BY app, route, method
    ),
    tested AS (
        SELECT app, name, uniqExact(test_run) AS test_runs, uniqExact(test_id) AS tests,
               max(ts) AS last_tested
        FROM {db}.events_usage
        WHERE origin = 'test'
        GROUP BY app, name
    )
SELECT u.app AS app, u.name AS name, u.route AS route, u.uses AS uses, u.users AS users,
       u.customers AS customers, u.failures AS failures,
       f.errors + if(u.method = '', 0, g.errors) AS errors,
       t.test_runs AS test_runs, t.tests AS tests,
       if(t.tests = 0, NULL, t.last_tested) AS last_tested
FROM used AS u
LEFT JOIN failed AS f ON u.app = f.app AND u.route = f.route AND u.method = f.method
LEFT JOIN (SELECT app, route, errors FROM failed WHERE method = '') AS g
    ON u.app = g.app AND u.route = g.route
LEFT JOIN tested AS t ON u.app = t.app AND u.name = t.name
ORDER BY tests = 0 DESC, uses DESC, users DESC, errors DESC, name;

-- Tested but unused: what tests exercise that no customer used in prod over the last
-- {days} (apps with prod traffic in that time only).
CREATE OR REPLACE VIEW {db}.qa_unused AS
WITH
    tested AS (
        SELECT app, name, any(route) AS route, uniqExact(test_run) AS test_runs,
               uniqExact(test_id) AS tests, max(ts) AS last_tested
        FROM {db}.events_usage
        WHERE origin = 'test'
        GROUP BY app, name
    ),
    used AS (
        SELECT app, name, count() AS uses
        FROM {db}.events_usage
        WHERE env = 'prod' AND origin = 'user' AND ts >= now64(3) - toIntervalDay({days:UInt32})
        GROUP BY app, name
    )
SELECT t.app AS app, t.name AS name, t.route AS route, t.test_runs AS test_runs,
       t.tests AS tests, t.last_tested AS last_tested
FROM tested AS t
LEFT ANTI JOIN used AS u ON t.app = u.app AND t.name = u.name
WHERE t.app IN (SELECT app FROM used)
ORDER BY app, tests DESC, name;

-- Preprod gaps, features: per release that reached prod (its first prod event or deploy
-- mark), the features customers used on it that nobody exercised in preprod on that
-- release before it reached prod.
CREATE OR REPLACE VIEW {db}.qa_gap_features AS
WITH
    reached AS (
        SELECT app, release, min(ts) AS reached_prod
        FROM (
            SELECT app, release, ts FROM {db}.events_usage WHERE env = 'prod' AND release != ''
            UNION ALL
            SELECT app, name AS release, ts FROM {db}.events_change
            WHERE env = 'prod' AND change_type = 'deploy'
        )
        GROUP BY app, release
    ),
    used AS (
        SELECT app, release, name, any(route) AS route, count() AS uses,
               uniqExactIf(user_id, user_id != '') AS users
        FROM {db}.events_usage
        WHERE env = 'prod' AND origin = 'user' AND release != ''
        GROUP BY app, release, name
    ),
    exercised AS (
        SELECT p.app AS app, p.release AS release, p.name AS name
        FROM {db}.events_usage AS p
        INNER JOIN reached AS r ON p.app = r.app AND p.release = r.release
        WHERE p.env = 'preprod' AND p.ts < r.reached_prod
        GROUP BY app, release, name
    )
SELECT u.app AS app, u.release AS release, r.reached_prod AS reached_prod, u.name AS name,
       u.route AS route, u.uses AS uses, u.users AS users
FROM used AS u
INNER JOIN reached AS r ON u.app = r.app AND u.release = r.release
LEFT ANTI JOIN exercised AS e ON u.app = e.app AND u.release = e.release AND u.name = e.name
ORDER BY reached_prod DESC, uses DESC, name;

-- Preprod gaps, errors: error groups first seen in prod whose route preprod served before
-- (kind 'missed'), and groups first seen in preprod that still reached prod, with the
-- lead time the team had (kind 'reached_prod').
CREATE OR REPLACE VIEW {db}.qa_error_gaps AS
WITH
    groups AS (
        SELECT app, group_id, any(title) AS title, any(exception_type) AS exception_type,
               argMin(route, ts) AS route,
               uniqExactIf(event_id, env = 'prod') AS prod_errors,
               minIf(ts, env = 'prod') AS first_prod,
               argMinIf(release, ts, env = 'prod') AS prod_release,
               uniqExactIf(event_id, env = 'preprod') AS preprod_errors,
               minIf(ts, env = 'preprod') AS first_preprod
        FROM {db}.errors_grouped
        WHERE env IN ('prod', 'preprod')
        GROUP BY app, group_id
        HAVING prod_errors > 0
    ),
    served AS (
        SELECT app, route, min(ts) AS first_served, count() AS requests
        FROM {db}.events_usage
        WHERE env = 'preprod' AND route != ''
        GROUP BY app, route
    )
SELECT g.app AS app, g.group_id AS group_id, g.title AS title,
       g.exception_type AS exception_type, g.route AS route,
       if(g.preprod_errors > 0 AND g.first_preprod < g.first_prod, 'reached_prod', 'missed')
           AS kind,
       g.first_prod AS first_prod, g.prod_release AS prod_release,
       g.prod_errors AS prod_errors, g.preprod_errors AS preprod_errors,
       if(kind = 'reached_prod', g.first_preprod, NULL) AS first_preprod,
       if(kind = 'reached_prod', dateDiff('second', g.first_preprod, g.first_prod), NULL)
           AS lead_time_s
FROM groups AS g
LEFT JOIN served AS s ON g.app = s.app AND g.route = s.route
WHERE kind = 'reached_prod' OR (s.requests > 0 AND s.first_served < g.first_prod)
ORDER BY first_prod DESC, group_id;

-- Release health: per app × env (prod, preprod) × release, the requests' error rate (5xx),
-- p95 latency, CPU milliseconds and resident memory per request (from the health
-- snapshots of the instances running that release, minute by minute), next to the
-- previous release in the same env (by first event).
CREATE OR REPLACE VIEW {db}.qa_release_health AS
WITH
    served AS (
        SELECT app, env, release, min(ts) AS first_seen, count() AS requests,
               countIf(status_code >= 500) / count() AS error_rate,
               quantileExact(0.95)(duration_ms) AS p95_ms
        FROM {db}.events_usage
        WHERE env IN ('prod', 'preprod') AND release != '' AND method != ''
        GROUP BY app, env, release
    ),
    load AS (
        SELECT app, env, release, toStartOfMinute(ts) AS minute, count() AS requests
        FROM {db}.events_usage
        WHERE env IN ('prod', 'preprod') AND release != '' AND method != ''
        GROUP BY app, env, release, minute
    ),
    instances AS (
        SELECT app, env, release, instance, toStartOfMinute(ts) AS minute,
               avgIf(metrics['process.cpu.utilization'] * metrics['system.cpu.logical.count'],
                     mapContains(metrics, 'process.cpu.utilization')) AS cores,
               avgIf(metrics['process.memory.usage'],
                     mapContains(metrics, 'process.memory.usage')) AS rss
        FROM {db}.events_health
        WHERE env IN ('prod', 'preprod') AND release != ''
        GROUP BY app, env, release, instance, minute
    ),
    cost AS (
        SELECT l.app AS app, l.env AS env, l.release AS release,
               60000 * sum(i.all_cores) / sum(l.requests) AS cpu_ms,
               sum(i.all_rss) / sum(l.requests) / 1048576 AS memory_mb
        FROM load AS l
        INNER JOIN (
            SELECT app, env, release, minute, sum(cores) AS all_cores, sum(rss) AS all_rss
            FROM instances
            WHERE isFinite(cores) AND isFinite(rss)
            GROUP BY app, env, release, minute
        ) AS i ON l.app = i.app AND l.env = i.env AND l.release = i.release
              AND l.minute = i.minute
        GROUP BY app, env, release
    ),
    health AS (
        SELECT s.app AS app, s.env AS env, s.release AS release, s.first_seen AS first_seen,
               s.requests AS requests, s.error_rate AS error_rate, s.p95_ms AS p95_ms,
               if(c.release = '', NULL, c.cpu_ms) AS cpu_ms_per_request,
               if(c.release = '', NULL, c.memory_mb) AS memory_mb_per_request
        FROM served AS s
        LEFT JOIN cost AS c ON s.app = c.app AND s.env = c.env AND s.release = c.release
    )
SELECT app, env, release, first_seen, requests, error_rate, p95_ms, cpu_ms_per_request,
       memory_mb_per_request, previous_release,
       if(previous_release = '', NULL, lag_requests) AS previous_requests,
       if(previous_release = '', NULL, lag_error_rate) AS previous_error_rate,
       if(previous_release = '', NULL, lag_p95_ms) AS previous_p95_ms,
       if(previous_release = '', NULL, lag_cpu) AS previous_cpu_ms_per_request,
       if(previous_release = '', NULL, lag_memory) AS previous_memory_mb_per_request
FROM (
    SELECT *,
           lagInFrame(release) OVER w AS previous_release,
           lagInFrame(requests) OVER w AS lag_requests,
           lagInFrame(error_rate) OVER w AS lag_error_rate,
           lagInFrame(p95_ms) OVER w AS lag_p95_ms,
           lagInFrame(cpu_ms_per_request) OVER w AS lag_cpu,
           lagInFrame(memory_mb_per_request) OVER w AS lag_memory
    FROM health
    WINDOW w AS (PARTITION BY app, env ORDER BY first_seen
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
ORDER BY app, first_seen, env;
