"""The whole pipeline for real: Kafka → stream worker + sink → ClickHouse.

N events of each kind go in; exactly N rows per kind come out, and the stream worker's
rollups agree with the raw rows bucket by bucket — also when a process is killed -9.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shiftright_server.infra.settings import Settings

from tests.builders import iso
from tests.integration.conftest import wait_for
from tests.integration.pipeline import KINDS, TABLES, Pipeline, emit, emit_batched, make_events

N = 10_000

Sql = Callable[[str], list[tuple[Any, ...]]]


def stored(sql: Sql) -> dict[str, int]:
    return {k: sql(f"SELECT count() FROM {t}")[0][0] for k, t in TABLES.items()}


def rolled_up(sql: Sql) -> dict[str, int]:
    rows = sql("SELECT kind, sum(count) FROM rollups FINAL GROUP BY kind")
    return {k: int(n) for k, n in rows}


def bucket_mismatches(sql: Sql, limit: int = 20) -> list[tuple[Any, ...]]:
    """Buckets whose rollup total differs from the raw count (should be none)."""
    raw = " UNION ALL ".join(
        f"SELECT app, env, '{k}' AS kind, toString({key}) AS key, toStartOfMinute(ts) AS b "
        f"FROM {TABLES[k]}"
        for k, key in (
            ("usage", "name"),
            ("error", "exception_type"),
            ("health", "host"),
            ("change", "change_type"),
        )
    )
    return sql(
        f"SELECT r.app, r.env, r.kind, r.key, r.b, r.n, s.n FROM "
        f"(SELECT app, env, kind, key, b, count() AS n FROM ({raw}) GROUP BY ALL) AS r "
        f"FULL OUTER JOIN (SELECT app, env, kind, key, toStartOfMinute(bucket_start) AS b, "
        f"sum(count) AS n FROM rollups FINAL GROUP BY ALL) AS s "
        f"USING (app, env, kind, key, b) WHERE r.n != s.n LIMIT {limit}"
    )


def assert_exactly_n_and_consistent(sql: Sql, pipeline: Pipeline) -> None:
    want = dict.fromkeys(KINDS, N)
    wait_for(
        lambda: stored(sql) == want,
        240,
        lambda: f"{N} rows per kind (last: {stored(sql)})\n{pipeline.log('sink')}",
    )
    wait_for(
        lambda: rolled_up(sql) == want,
        240,
        lambda: (
            f"rollups to cover every event (last: {rolled_up(sql)}); buckets that differ "
            f"(app, env, kind, key, bucket, raw, rollups): {bucket_mismatches(sql)}\n{pipeline.log('streams')}"
        ),
    )
    assert stored(sql) == want
    for table in TABLES.values():
        assert sql(f"SELECT uniqExact(event_id) FROM {table}")[0][0] == N, f"duplicates in {table}"
    assert bucket_mismatches(sql) == []


def test_n_events_of_each_kind_become_exactly_n_rows_and_matching_rollups(
    settings: Settings, sql: Sql
) -> None:
    pipeline = Pipeline(settings)
    pipeline.start()
    events = make_events(N)
    try:
        emit(settings, events[: len(events) // 2])  # one event per message
        emit_batched(settings, events[len(events) // 2 :])  # NDJSON batch messages
        assert_exactly_n_and_consistent(sql, pipeline)
        assert sql("SELECT count() FROM dead_letters") == [(0,)]
        # The ClickHouse-side minutely views saw the same events.
        assert sql("SELECT sum(events) FROM usage_minutely") == [(N,)]
        assert sql("SELECT sum(events) FROM errors_minutely") == [(N,)]
    finally:
        pipeline.stop()


def _emit_slowly(settings: Settings, done: threading.Event, stamp_at_send: bool = False) -> None:
    """Send the events in 20 chunks with a pause after each.

    Their times span the last minutes, so buckets close as the chunks go by. With
    ``stamp_at_send`` each chunk carries the time it is sent instead: a quiet partition
    closes on the wall clock (less the idle lateness), so events stamped minutes in the
    past would all be late after the first pause the worker sees as quiet, and a busy test
    host makes such a pause likely; a test that does not need early closes uses it.
    """
    events = make_events(N)
    chunk = len(events) // 20
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        if stamp_at_send:
            sent_at = iso(datetime.now(UTC))
            part = [{**e, "ts": sent_at} for e in part]
        emit(settings, part)
        done.wait(0.3)
    done.set()


def test_sink_killed_9_mid_run_restarts_without_loss_or_duplicates(
    settings: Settings, sql: Sql
) -> None:
    pipeline = Pipeline(settings)
    pipeline.start()
    finished = threading.Event()
    producer = threading.Thread(target=_emit_slowly, args=(settings, finished, True))
    producer.start()
    try:
        wait_for(lambda: sum(stored(sql).values()) > N // 2, 120, "the sink to store some rows")
        pipeline.kill9("sink")
        at_kill = sum(stored(sql).values())
        assert at_kill < 4 * N, (
            "the sink finished before it could be killed; the test proves nothing"
        )
        pipeline.start("sink")
        producer.join()
        assert_exactly_n_and_consistent(sql, pipeline)
    finally:
        finished.set()
        producer.join()
        pipeline.stop()


def test_stream_worker_killed_9_mid_run_restarts_without_loss_or_double_counting(
    settings: Settings, sql: Sql
) -> None:
    pipeline = Pipeline(settings)
    pipeline.start()
    finished = threading.Event()
    producer = threading.Thread(target=_emit_slowly, args=(settings, finished))
    producer.start()
    try:
        wait_for(lambda: sum(rolled_up(sql).values()) > 0, 120, "the stream worker to emit rollups")
        pipeline.kill9("streams")
        assert sum(rolled_up(sql).values()) < 4 * N, "all rollups were out before the kill"
        pipeline.start("streams")
        producer.join()
        want = dict.fromkeys(KINDS, N)
        wait_for(lambda: stored(sql) == want, 240, lambda: f"{N} rows per kind: {stored(sql)}")
        for table in TABLES.values():
            assert sql(f"SELECT uniqExact(event_id) FROM {table}")[0][0] == N, table
        wait_for(
            lambda: rolled_up(sql) == want,
            240,
            lambda: (
                f"rollups: {rolled_up(sql)}; over-counted: {over_counted(sql)[:5]}; "
                f"differing buckets: {bucket_mismatches(sql)[:5]}\n{pipeline.log('streams')}"
            ),
        )
        assert over_counted(sql) == [] and bucket_mismatches(sql) == []
    finally:
        finished.set()
        producer.join()
        pipeline.stop()


def over_counted(sql: Sql) -> list[tuple[Any, ...]]:
    return [row for row in bucket_mismatches(sql, limit=1_000_000) if row[6] > row[5]]
