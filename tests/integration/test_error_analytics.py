"""Error analytics through the real pipeline: simulator traffic → stream worker (re-key by
host, health join + grouping, group counting) + sink → ClickHouse, and the CLI on top."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.infra.settings import Settings, to_env
from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas import topics
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.streams.gaps import LogEnds
from shiftright_server.streams.grouping import Grouper

from tests.builders import event
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline, emit, emit_batched

Sql = Callable[[str], list[tuple[Any, ...]]]


def shiftright(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **to_env(settings), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def expected_groups(errors: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the groups must say, from the pure grouping of the same events."""
    grouper = Grouper()
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "ts": [], "envs": set()})
    for raw in errors:
        e = ErrorEvent.model_validate(raw)
        g = out[grouper.assign(e).group_id]
        g["count"] += 1
        g["ts"].append(_utc(e.ts))
        g["envs"].add(e.env)
    return out


def test_simulated_errors_become_groups_with_health_and_reports(
    settings: Settings, sql: Sql
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=9)
    traffic = Simulator(seed=11, rate=150, diurnal=False).tick(start, 6 * 60)
    errors = [e for e in traffic if e["kind"] == "error"]
    want = expected_groups(errors)
    assert len(errors) > 300 and len(want) > 10
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        emit_batched(settings, traffic)
        wait_for(
            lambda: (
                sql("SELECT count() FROM errors_grouped FINAL") == [(len(errors),)]
                and sql("SELECT sum(count) FROM error_groups FINAL") == [(len(errors),)]
            ),
            120,
            lambda: (
                f"{len(errors)} grouped errors: {sql('SELECT count() FROM errors_grouped')}"
                f" / counted {sql('SELECT sum(count) FROM error_groups FINAL')}\n{pipeline.log('streams')}"
            ),
        )
        rows = sql(
            "SELECT group_id, count, first_seen, last_seen, mapKeys(env_count) "
            "FROM error_groups FINAL"
        )
        got = {r[0]: (r[1], _utc(r[2]), _utc(r[3]), set(r[4])) for r in rows}
        assert got == {
            gid: (g["count"], min(g["ts"]), max(g["ts"]), g["envs"]) for gid, g in want.items()
        }
        new = sql(
            "SELECT group_id, count() FROM error_group_transitions FINAL "
            "WHERE kind = 'new' GROUP BY group_id"
        )
        assert dict(new) == dict.fromkeys(want, 1)
        in_env = sql("SELECT count() FROM error_group_transitions FINAL WHERE kind = 'new_in_env'")
        assert in_env == [(sum(len(g["envs"]) - 1 for g in want.values()),)]

        # Health at the moment of the error: on >= 99 % of the errors whose host had
        # reported within the 60 s before (what the ASOF view says), and the same snapshot.
        joined = sql(
            "SELECT count(), countIf(g.health_ts IS NOT NULL), "
            "countIf(g.health_ts = v.health_ts AND g.health_age_ms = v.health_age_ms) "
            "FROM errors_grouped AS g FINAL JOIN errors_with_health AS v USING (event_id) "
            "WHERE v.has_health"
        )[0]
        assert joined[0] > 0.9 * len(errors)
        assert joined[1] >= 0.99 * joined[0], joined
        assert joined[2] >= 0.99 * joined[0], joined

        top_type = sql(
            "SELECT root_type FROM errors_grouped FINAL GROUP BY root_type "
            "ORDER BY count() DESC, root_type LIMIT 1"
        )[0][0]
        report = shiftright(settings, "errors", "top", "--since", "1d")
        assert report.returncode == 0, report.stderr
        first_row = next(line for line in report.stdout.splitlines() if top_type in line)
        assert report.stdout.index(first_row) < min(
            report.stdout.index(t)
            for (t,) in sql("SELECT DISTINCT root_type FROM errors_grouped")
            if t != top_type and t in report.stdout
        )
        groups = shiftright(settings, "errors", "groups", "--since", "1d", "--limit", "3")
        assert groups.returncode == 0 and "errors" in groups.stdout, groups.stderr
        top_group = max(want, key=lambda g: want[g]["count"])
        for args in (
            ("trend", top_group, "--step", "minute"),
            ("users", "--app", "catalog"),
            ("new", "--app", "catalog", "--release", "2.8.0"),
            ("promoted",),
            ("health", top_group),
        ):
            answer = shiftright(settings, "errors", *args, "--format", "json")
            assert answer.returncode == 0, (args, answer.stderr)
            answered = [json.loads(line) for line in answer.stdout.splitlines()]
            if args[0] == "trend":  # every error of the group, per minute, with its rate
                assert sum(r["errors"] for r in answered) == want[top_group]["count"]
            if args[0] == "health":
                assert {r["metric"] for r in answered} >= {"system.cpu.utilization"}
            if args[0] == "users":
                assert answered and {r["app"] for r in answered} == {"catalog"}
    finally:
        pipeline.stop()


def test_a_group_resolved_in_release_n_and_thrown_in_n_plus_1_is_reported_regressed(
    settings: Settings, sql: Sql
) -> None:
    now = datetime.now(UTC)
    stack = [
        {
            "module": "checkout.cart",
            "function": "add_item",
            "filename": "cart.py",
            "lineno": 42,
            "in_app": True,
        }
    ]

    def thrown(release: str, n: int, at: datetime) -> list[dict[str, Any]]:
        return [
            event(
                "error",
                at + timedelta(seconds=i),
                "checkout",
                "prod",
                release=release,
                host="web-1",
                exception_type="KeyError",
                exception_message=f"'sku-{i}'",
                frames=stack,
            )
            for i in range(n)
        ]

    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        emit(settings, thrown("1.4.2", 5, now - timedelta(minutes=5)))
        wait_for(
            lambda: sql("SELECT sum(count) FROM error_groups FINAL") == [(5,)],
            90,
            lambda: f"the group to count 5\n{pipeline.log('streams')}",
        )
        (group_id,) = sql("SELECT group_id FROM error_groups FINAL")[0]
        done = shiftright(
            settings, "errors", "resolve", group_id, "--app", "checkout", "--in-next-release"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        wait_for(
            lambda: (
                sql("SELECT status, resolved_in_release FROM error_groups FINAL")
                == [("resolved_in_next_release", "1.4.2")]
            ),
            60,
            "the group to be resolved in the next release",
        )
        emit(settings, thrown("1.4.2", 2, now - timedelta(minutes=3)))  # still the old release
        emit(settings, thrown("1.4.3", 1, now - timedelta(minutes=2)))
        wait_for(
            lambda: sql("SELECT sum(count) FROM error_groups FINAL") == [(8,)],
            90,
            "the group to count 8",
        )
        regressed = sql(
            "SELECT release, previous_status FROM error_group_transitions FINAL "
            "WHERE kind = 'regressed'"
        )
        assert regressed == [("1.4.3", "resolved_in_next_release")]
        assert sql("SELECT status FROM error_groups FINAL") == [("unresolved",)]
        report = shiftright(settings, "errors", "regressed", "--since", "1h", "--format", "json")
        assert report.returncode == 0, report.stderr
        rows = [json.loads(line) for line in report.stdout.splitlines() if line.strip()]
        assert [(r["group_id"], r["release"]) for r in rows] == [(group_id, "1.4.3")]
    finally:
        pipeline.stop()


def test_stream_worker_killed_9_before_its_first_commit_right_after_it_and_mid_run_counts_every_error_once(
    settings: Settings, sql: Sql
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=9)
    traffic = [
        e
        for e in Simulator(seed=23, rate=200, diurnal=False).tick(start, 6 * 60)
        if e["kind"] != "usage"
    ]
    errors = [e for e in traffic if e["kind"] == "error"]
    want = {gid: g["count"] for gid, g in expected_groups(errors).items()}
    ends = LogEnds(settings.kafka.bootstrap_servers)
    sources = [
        (topics.named(t, settings.namespace), p)
        for t in (topics.EVENTS_ERROR, topics.EVENTS_HEALTH)
        for p in range(settings.kafka.partitions)
    ]
    byhost = [
        (topics.named(topics.ERRORS_BY_HOST, settings.namespace), p)
        for p in range(settings.kafka.partitions)
    ]
    group = f"{settings.namespace}.{settings.streams.app_id}"
    first, rest = traffic[: len(traffic) // 4], traffic[len(traffic) // 4 :]
    pipeline = Pipeline(settings)
    emit_batched(settings, first)
    pipeline.start()
    finished = threading.Event()

    def produce() -> None:
        chunk = len(rest) // 20 + 1
        for i in range(0, len(rest), chunk):
            emit_batched(settings, rest[i : i + chunk])
            finished.wait(0.4)

    def counted() -> int:
        return int(sql("SELECT sum(count) FROM error_groups FINAL")[0][0] or 0)

    def committed() -> bool:
        return any(o >= 0 for o in ends.committed(sources, group).values())

    producer = threading.Thread(target=produce)
    try:
        # 1. As soon as its first batch went out, before the group committed anything.
        wait_for(
            lambda: sum(ends.fetch(byhost).values()) > 0,
            90,
            lambda: f"the first batch re-keyed\n{pipeline.log('streams')}",
            interval=0.05,
        )
        pipeline.kill9("streams")
        before_commit = not committed()
        pipeline.start("streams")
        # 2. Right after the successor's first commit.
        wait_for(committed, 90, lambda: f"a commit\n{pipeline.log('streams')}", interval=0.05)
        pipeline.kill9("streams")
        pipeline.start("streams")
        # 3. Mid-run, with traffic still coming.
        producer.start()
        wait_for(
            lambda: counted() >= len(errors) // 2,
            90,
            lambda: f"half of the errors counted\n{pipeline.log('streams')}",
        )
        pipeline.kill9("streams")
        assert counted() < len(errors), "everything was counted before the kill; proves nothing"
        pipeline.start("streams")
        producer.join()

        def counts() -> dict[str, int]:
            return dict(sql("SELECT group_id, count FROM error_groups FINAL"))

        wait_for(
            lambda: counts() == want,
            180,
            lambda: (
                f"counts per group (got {sum(counts().values())} of {len(errors)}; "
                f"differing: {[(g, n, want.get(g)) for g, n in counts().items() if want.get(g) != n][:5]})"
                f"\n{pipeline.log('streams')}"
            ),
        )
        # each stored row follows its count once its host's health is known
        wait_for(
            lambda: sql("SELECT count() FROM errors_grouped FINAL") == [(len(errors),)],
            60,
            lambda: f"stored {sql('SELECT count() FROM errors_grouped FINAL')} of {len(errors)}",
        )
        new = sql(
            "SELECT group_id, count() FROM error_group_transitions FINAL "
            "WHERE kind = 'new' GROUP BY group_id"
        )
        assert dict(new) == dict.fromkeys(want, 1)
        print(f"first kill before the group's first commit: {before_commit}")
    finally:
        finished.set()
        if producer.is_alive():
            producer.join()
        pipeline.stop()
