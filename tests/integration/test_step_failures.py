"""One failure policy for every stream step: a record that makes a step raise lands in
``dead_letters`` (reason ``step_failed``, the step's name and the error in the detail),
and every other record is processed exactly once (the worker's steps are made to raise
on marked records by ``tests.integration.poisoned_worker``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.infra.ops.supervisor import Component
from shiftright_server.infra.settings import Settings

from tests.builders import event
from tests.integration.alerting import ERROR_BURST, Sql, config_store
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline, emit
from tests.integration.test_error_analytics import expected_groups, shiftright

STEPS = ("rollup", "attach", "group", "alerts")


def traffic(n: int) -> list[dict[str, Any]]:
    """Events of the last few seconds: no bucket they fall in has closed yet."""
    start = datetime.now(UTC) - timedelta(seconds=6)
    out = []
    for i in range(n):
        ts = start + timedelta(seconds=i % 5)
        out.append(event("usage", ts, "checkout", "prod", name=f"feature.{i % 5}"))
        if i % 3 == 0:
            host = f"web-{i % 4}"
            out.append(event("health", ts, "checkout", "prod", host=host))
            out.append(
                event("error", ts, "checkout", "prod", host=host, exception_type=f"E{i % 4}")
            )
    return out


def poison(step: str) -> dict[str, Any]:
    """An event that makes ``step`` raise where it reads it (and only there)."""
    at = datetime.now(UTC) - timedelta(seconds=1)
    marker = f"poison-{step}"
    if step in ("attach", "group"):  # an error: rolled up, then raises in its step
        return event("error", at, "checkout", "prod", host=marker, exception_type=marker)
    app = "poisoned" if step == "alerts" else "checkout"  # a signal message of its own
    return event("usage", at, app, "prod", name=marker)


def step_failures(sql: Sql) -> dict[str, int]:
    rows = sql(
        "SELECT splitByString(': ', detail)[1] AS step, count() FROM dead_letters FINAL "
        "WHERE reason = 'step_failed' GROUP BY step"
    )
    return {step: int(n) for step, n in rows}


def test_a_record_that_makes_a_step_raise_is_dead_lettered_and_the_rest_counted_once(
    settings: Settings, sql: Sql
) -> None:
    # 10 s buckets: the rollup totals are checked once the buckets close on the wall clock
    settings = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"bucket_seconds": 10})}
    )
    config_store(settings).apply("rules:" + ERROR_BURST, "qa")
    pipeline = Pipeline(settings)
    worker = Component("streams", [sys.executable, "-m", "tests.integration.poisoned_worker"])
    pipeline.supervisor.start(worker)
    pipeline.start("sink")
    try:
        first = traffic(300)
        emit(settings, first)
        n_first = sum(e["kind"] == "error" for e in first)
        wait_for(
            lambda: sql("SELECT sum(count) FROM error_groups FINAL") == [(n_first,)],
            120,
            lambda: f"the first errors counted\n{pipeline.log('streams')}",
        )
        # One at a time, each alone in the messages its step reads.
        for step in STEPS:
            emit(settings, [poison(step)])
            wait_for(
                lambda step=step: step in step_failures(sql),  # type: ignore[misc]  # binds the loop variable
                120,
                lambda step=step: (  # type: ignore[misc]  # binds the loop variable
                    f"a step_failed dead letter of {step}: {step_failures(sql)}"
                    f"\n{pipeline.log('streams')}"
                ),
            )
        second = traffic(300)
        emit(settings, second)
        errors = [e for e in first + second if e["kind"] == "error"]
        want = {g: v["count"] for g, v in expected_groups(errors).items()}
        wait_for(
            lambda: dict(sql("SELECT group_id, count FROM error_groups FINAL")) == want,
            120,
            lambda: (
                f"every other error counted once: "
                f"{sql('SELECT sum(count) FROM error_groups FINAL')} of {len(errors)}"
                f"\n{pipeline.log('streams')}"
            ),
        )
        kinds = [e["kind"] for e in first + second]
        # (the poisons of the later steps are rolled up; the rollup step's is not)
        want_rollups = {
            "usage": kinds.count("usage") + 1,
            "error": len(errors) + 2,
            "health": kinds.count("health"),
        }
        wait_for(  # once the buckets close on the wall clock
            lambda: (
                dict(sql("SELECT kind, sum(count) FROM rollups FINAL GROUP BY kind"))
                == want_rollups
            ),
            150,
            lambda: f"rollups: {sql('SELECT kind, sum(count) FROM rollups FINAL GROUP BY kind')}",
        )
        assert sql("SELECT count() FROM errors_grouped FINAL") == [(len(errors) + 1,)]
        failures = step_failures(sql)
        assert set(failures) == set(STEPS), failures
        assert failures["rollup"] == failures["attach"] == failures["group"] == 1, failures
        details = sql("SELECT detail FROM dead_letters FINAL WHERE reason = 'step_failed'")
        assert all("cannot digest offset" in d for (d,) in details), details
        assert pipeline.alive("streams"), "a step failure ended the worker"
        status = shiftright(settings, "status").stdout
        assert "step_failed" in status and "rollup 1" in status and "attach 1" in status, status
    finally:
        pipeline.supervisor.stop("streams", timeout=10)
        pipeline.stop()
