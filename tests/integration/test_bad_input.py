"""Bad input lands in dead_letters with its reason; counts add up; no worker dies."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.infra.settings import Settings
from shiftright_server.producers.emitter import Emitter
from shiftright_server.schemas import topics, wire

from tests.builders import event
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline

Sql = Callable[[str], list[tuple[Any, ...]]]


def bad_messages(now: datetime) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason)."""
    good = event("usage", now - timedelta(minutes=1))
    return [
        (topics.EVENTS_USAGE, b'{"kind": "usage", "app": ', "malformed_json"),
        (topics.EVENTS_USAGE, b"\xff\xfe not even text", "malformed_json"),
        (topics.EVENTS_ERROR, b'["a", "list"]', "not_an_object"),
        (
            topics.EVENTS_USAGE,
            json.dumps({**good, "duration_ms": "slow"}).encode(),
            "schema_violation",
        ),
        (topics.EVENTS_USAGE, json.dumps({**good, "kind": "telemetry"}).encode(), "unknown_kind"),
        (
            topics.EVENTS_USAGE,
            json.dumps({k: v for k, v in good.items() if k != "kind"}).encode(),
            "missing_kind",
        ),
        (
            topics.EVENTS_USAGE,
            json.dumps({k: v for k, v in good.items() if k != "app"}).encode(),
            "schema_violation",
        ),
        (topics.EVENTS_ERROR, json.dumps(good).encode(), "wrong_topic"),
        (
            topics.EVENTS_USAGE,
            json.dumps({**good, "attributes": {"blob": "x" * 1_000_000}}).encode(),
            "oversized",
        ),
        (
            topics.EVENTS_USAGE,
            json.dumps({**good, "ts": "2031-01-01T00:00:00Z"}).encode(),
            "ts_in_future",
        ),
        (
            topics.EVENTS_USAGE,
            json.dumps({**good, "ts": "2001-01-01T00:00:00Z"}).encode(),
            "ts_too_old",
        ),
    ]


def test_every_kind_of_bad_input_is_dead_lettered_with_its_reason(
    settings: Settings, sql: Sql
) -> None:
    pipeline = Pipeline(settings)
    pipeline.start()
    now = datetime.now(UTC)
    bad = bad_messages(now)
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    good = [event("usage", now - timedelta(seconds=30 + i)) for i in range(200)]
    try:
        for topic, payload, _ in bad:
            assert emitter.emit_raw(topic, payload, b"bad")
        # A batch message with one bad line among good ones: only that line is rejected.
        extra = [event("usage", now - timedelta(seconds=5)) for _ in range(2)]
        lines = [json.dumps(extra[0]).encode(), b"{truncated", json.dumps(extra[1]).encode()]
        assert emitter.emit_raw(topics.EVENTS_USAGE, b"\n".join(lines), b"b", wire.BATCH_HEADERS)
        bad.append((topics.EVENTS_USAGE, b"{truncated", "malformed_json"))
        for e in good:
            emitter.emit_dict(e)
        good += extra
        assert emitter.flush(30) == 0 and not emitter.failed, emitter.failed
        wait_for(
            lambda: sql("SELECT count() FROM dead_letters FINAL")[0][0] == len(bad),
            120,
            f"{len(bad)} dead letters\n{pipeline.log('streams')}",
        )
        wait_for(
            lambda: sql("SELECT count() FROM events_usage")[0][0] == len(good),
            60,
            "the good events",
        )
        got = sql(
            "SELECT source_topic, reason, detail, payload_bytes FROM dead_letters FINAL ORDER BY source_topic, source_offset"
        )
        expected = sorted(((topics.named(t, settings.namespace), r) for t, _, r in bad))
        assert sorted((t, r) for t, r, _, _ in got) == expected
        assert all(detail for _, _, detail, _ in got), "every dead letter says why"
        oversized = [row for row in got if row[1] == "oversized"]
        assert oversized[0][3] > 1_000_000, "the original size of an oversized payload is kept"
        totals = (
            sql("SELECT count() FROM events_usage")[0][0]
            + sql("SELECT count() FROM dead_letters FINAL")[0][0]
        )
        assert totals == len(good) + len(bad), "every message is either stored or dead-lettered"
        assert sql(
            "SELECT source_index, payload FROM dead_letters FINAL WHERE payload = '{truncated'"
        ) == [(1, "{truncated")], "the bad line of a batch is named by its index"
        assert pipeline.alive("streams") and pipeline.alive("sink"), "a worker died on bad input"
    finally:
        pipeline.stop()
