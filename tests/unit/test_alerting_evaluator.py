"""The evaluator: when an alert goes pending, fires and resolves, per rule kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from shiftright_server.schemas.alerts import AlertState, AlertTransition, Rule
from shiftright_server.schemas.records import ErrorGroupTransition, Rollup, TransitionKind
from shiftright_server.streams.alerting.evaluator import Evaluator

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday
RULE = TypeAdapter(Rule)


def rule(**fields: Any) -> Any:
    fields.setdefault("scope", {"app": "checkout", "source": "health"})
    return RULE.validate_python(fields)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(
    ev: Evaluator, name: str, values: list[float], labels: dict[str, str] | None = None
) -> list[tuple[int, AlertState, AlertState]]:
    """Feed one point a minute and evaluate just after each; (minute, prev, state) rows."""
    out: list[tuple[int, AlertState, AlertState]] = []
    for i, v in enumerate(values):
        ev.observe(name, labels or {"host": "h1"}, at(i), v)
        out += [(i, t.previous, t.state) for t in ev.evaluate(at(i + 0.5))]
    return out


CPU = rule(
    name="cpu",
    kind="threshold",
    measure="avg:cpu",
    threshold=0.9,
    resolve_threshold=0.7,
    window=60,
    **{"for": "2m"},
)


def test_threshold_fires_only_after_holding_for_its_for_duration() -> None:
    ev = Evaluator([CPU])
    rows = run(ev, "cpu", [0.5, 0.95, 0.95, 0.5, 0.95, 0.95, 0.95, 0.95])
    assert rows == [
        (1, "inactive", "pending"),
        (3, "pending", "inactive"),  # dipped before 2 minutes: never fired
        (4, "inactive", "pending"),
        (6, "pending", "firing"),  # 2 minutes after it started to hold
    ]


def test_threshold_resolves_only_below_the_resolve_threshold() -> None:
    ev = Evaluator([CPU.model_copy(update={"for_": 0.0})])
    rows = run(ev, "cpu", [0.95, 0.85, 0.8, 0.75, 0.72, 0.69, 0.95])
    assert rows == [(0, "inactive", "firing"), (5, "firing", "resolved"), (6, "resolved", "firing")]


def test_transitions_carry_labels_annotations_and_distinct_idempotency_keys() -> None:
    r = CPU.model_copy(
        update={
            "for_": 0.0,
            "annotations": {"summary": "CPU {value} on {host}"},
            "labels": {"team": "pay"},
        }
    )
    ev = Evaluator([r])
    ev.observe("cpu", {"host": "h1"}, at(0), 0.95)
    (t,) = ev.evaluate(at(0.5))
    assert t.labels == {
        "alertname": "cpu",
        "app": "checkout",
        "env": "prod",
        "host": "h1",
        "severity": "warning",
        "team": "pay",
    }
    assert t.annotations == {"summary": "CPU 0.95 on h1"}
    assert t.starts_at == at(0.5) and t.value == 0.95
    ev.observe("cpu", {"host": "h1"}, at(1), 0.1)
    (r2,) = ev.evaluate(at(1.5))
    assert r2.fingerprint == t.fingerprint and r2.idempotency_key != t.idempotency_key
    assert r2.ends_at == at(1.5) and r2.seq == t.seq + 1


def test_absence_fires_when_a_series_stops_and_resolves_when_it_returns() -> None:
    ev = Evaluator([rule(name="quiet", kind="absence", after="3m")])
    for i in range(5):
        ev.observe("quiet", {"host": "h1"}, at(i), 1.0)
        ev.observe("quiet", {"host": "h2"}, at(i), 1.0)
        assert ev.evaluate(at(i + 0.5)) == []
    ev.observe("quiet", {"host": "h2"}, at(5), 1.0)  # h1 stopped after minute 4
    assert ev.evaluate(at(6.9)) == []
    (fired,) = ev.evaluate(at(7.0))
    assert (fired.state, fired.labels["host"]) == ("firing", "h1")
    ev.observe("quiet", {"host": "h1"}, at(7.5), 1.0)
    (back,) = [t for t in ev.evaluate(at(7.6)) if t.labels["host"] == "h1"]
    assert back.state == "resolved"


def test_change_rule_compares_with_the_previous_period() -> None:
    r = rule(name="drop", kind="change", measure="count", window="5m", percent=50, direction="down")
    ev = Evaluator([r])
    rows = run(ev, "drop", [100.0] * 10 + [40.0] * 6, {"feature": "pay"})
    # 5-minute averages against the 5 minutes before: 64 (-36 %) at minute 12, 52 (-48 %)
    # at 13, 40 (-60 %) at 14
    assert rows[0] == (14, "inactive", "firing")


def test_change_rule_against_the_same_time_last_week() -> None:
    r = rule(
        name="wow",
        kind="change",
        measure="count",
        window="1m",
        percent=30,
        compare_to="same_time_last_week",
    )
    ev = Evaluator([r])
    week = 7 * 24 * 60
    ev.observe("wow", {}, at(0), 100.0)
    ev.observe("wow", {}, at(week), 125.0)  # +25 %: not enough
    assert ev.evaluate(at(week + 0.5)) == []
    ev.observe("wow", {}, at(1), 100.0)
    ev.observe("wow", {}, at(week + 1), 140.0)  # +40 %
    (t,) = ev.evaluate(at(week + 1.5))
    assert t.state == "firing" and round(t.value or 0) == 40


def test_rollups_feed_rules_scoped_to_their_app_and_source() -> None:
    r = rule(
        name="fail",
        kind="threshold",
        measure="failure_rate",
        threshold=50,
        scope={"app": "checkout"},
    )
    ev = Evaluator([r])

    def rollup(app: str, kind: str, key: str, count: int, failures: float) -> Rollup:
        return Rollup(
            app=app,
            env="prod",
            kind=kind,
            key=key,
            bucket_start=at(0),
            bucket_seconds=60,
            count=count,
            sums={"failures": failures},
            first_ts=at(0),
            last_ts=at(0.9),
            source_partition=0,
            emitted_at=at(1),
        )

    ev.observe_rollup(rollup("catalog", "usage", "search", 100, 90))  # other app
    ev.observe_rollup(rollup("checkout", "health", "h1", 100, 90))  # other source
    ev.observe_rollup(rollup("checkout", "usage", "cart.add", 1000, 10))  # 10 per 1,000
    ev.observe_rollup(rollup("checkout", "usage", "pay", 200, 20))  # 100 per 1,000
    (t,) = ev.evaluate(at(1))
    assert t.labels["feature"] == "pay" and t.value == 100.0


def test_error_group_rule_fires_on_a_regression_and_resolves_after_quiet() -> None:
    r = rule(
        name="regress",
        kind="error_group",
        transitions=["regressed"],
        resolve_after="10m",
        scope={"app": "*"},
    )
    ev = Evaluator([r])

    def transition(kind: TransitionKind) -> ErrorGroupTransition:
        return ErrorGroupTransition(
            group_id="g1",
            app="checkout",
            env="prod",
            kind=kind,
            ts=at(0),
            event_id=UUID(int=1),
            previous_status="resolved",
            status="unresolved",
            title="KeyError: 'sku'",
            exception_type="KeyError",
            count=7,
        )

    ev.observe_error_transition(transition("new"))  # not a kind the rule wants
    assert ev.evaluate(at(0.1)) == []
    ev.observe_error_transition(transition("regressed"))
    assert [t.state for t in ev.evaluate(at(0.1))] == ["firing"]
    assert [t.state for t in ev.evaluate(at(10))] == ["resolved"]


def test_a_restored_evaluator_continues_with_the_same_transitions_and_keys() -> None:
    values = [0.5, 0.95, 0.95, 0.95, 0.95, 0.6, 0.6]
    straight = Evaluator([CPU])
    expected = [
        (t.state, t.idempotency_key) for i, v in enumerate(values) for t in _step(straight, i, v)
    ]
    restored = Evaluator([CPU])
    got = []
    for i, v in enumerate(values):
        got += [(t.state, t.idempotency_key) for t in _step(restored, i, v)]
        restored = Evaluator.loads(restored.dumps(), [CPU])
    assert got == expected and [s for s, _ in got] == ["pending", "firing", "resolved"]


def _step(ev: Evaluator, i: int, v: float) -> list[AlertTransition]:
    ev.observe("cpu", {"host": "h1"}, at(i), v)
    return ev.evaluate(at(i + 0.5))


def test_removing_a_rule_resolves_its_firing_alerts() -> None:
    ev = Evaluator([CPU.model_copy(update={"for_": 0.0})])
    run(ev, "cpu", [0.95])
    ev.set_rules([])
    (t,) = ev.evaluate(at(2))
    assert (t.rule, t.state) == ("cpu", "resolved")
    assert ev.evaluate(at(3)) == []


def test_anomaly_rule_fires_on_a_spike_after_warm_up_and_resolves() -> None:
    r = rule(name="odd", kind="anomaly", warmup_points=20, scope={"app": "checkout"})
    ev = Evaluator([r])
    values = [100.0 + (i % 5) for i in range(60)] + [400.0] + [101.0 + (i % 5) for i in range(15)]
    values[10] = 900.0  # during warm-up: no alert
    rows = run(ev, "odd", values, {"feature": "pay"})
    assert rows[0] == (60, "inactive", "firing")  # at once, and once
    (resolved, _, state), *_ = rows[1:]
    assert state == "resolved" and resolved <= 70 and len(rows) == 2  # within ten points


def test_an_alert_that_comes_back_never_reuses_an_idempotency_key() -> None:
    r = CPU.model_copy(update={"for_": 0.0})
    ev = Evaluator([r])
    keys = [t.idempotency_key for t in ev_run_keys(ev, [0.95, 0.1])]
    ev.set_rules([])  # removed ...
    ev.evaluate(at(3))
    ev.set_rules([r])  # ... and applied again
    keys += [t.idempotency_key for t in ev_run_keys(ev, [0.95, 0.1], start=4)]
    restored = Evaluator.loads(ev.dumps(), [r])
    assert restored.evaluate(at(200)) == [] and restored.series["cpu"] == {}  # quiet: forgotten
    keys += [t.idempotency_key for t in ev_run_keys(restored, [0.95], start=300)]
    assert len(keys) == len(set(keys)) == 5


def ev_run_keys(ev: Evaluator, values: list[float], start: int = 0) -> list[AlertTransition]:
    out: list[AlertTransition] = []
    for i, v in enumerate(values, start):
        ev.observe("cpu", {"host": "h1"}, at(i), v)
        out += ev.evaluate(at(i + 0.5))
    return out


def test_backtest_replays_stored_rollups_through_the_same_rules() -> None:
    from shiftright_server.streams.alerting.backtest import backtest, when_fired

    def usage(minute: int, count: int) -> Rollup:
        return Rollup(
            app="checkout",
            env="prod",
            kind="usage",
            key="pay",
            bucket_start=at(minute),
            bucket_seconds=60,
            count=count,
            first_ts=at(minute),
            last_ts=at(minute + 0.9),
            source_partition=0,
            emitted_at=at(minute + 1),
        )

    history = [usage(m, 100) for m in range(30)] + [usage(m, 100) for m in range(40, 50)]
    quiet = rule(name="quiet", kind="absence", after="3m", scope={"app": "checkout"})
    (episode,) = when_fired(backtest([quiet], history))
    # the last bucket before the gap held events up to 29:54; 3 minutes later, at the
    # next evaluation (every minute, 10 s after a bucket ends), it fires; it resolves
    # when the stream would have closed the first bucket after the gap (40:00 + 1 min + 10 s)
    assert episode == (at(33) + timedelta(seconds=10), at(41) + timedelta(seconds=10))


def test_absence_ignores_series_too_rare_to_be_missed() -> None:
    ev = Evaluator([rule(name="quiet", kind="absence", after="3m", min_volume=5)])
    for i in range(10):
        ev.observe("quiet", {"feature": "busy"}, at(i), 50.0, volume=50.0)
        if i % 4 == 0:
            ev.observe("quiet", {"feature": "rare"}, at(i), 1.0, volume=1.0)
    fired = [t.labels["feature"] for t in ev.evaluate(at(20))]
    assert fired == ["busy"]


def test_latency_anomaly_on_a_quiet_feature_is_held_back_by_the_volume_guard() -> None:
    r = rule(
        name="slow",
        kind="anomaly",
        measure="avg:duration_ms",
        direction="up",
        min_volume=20,
        warmup_points=20,
        scope={"app": "checkout"},
    )
    ev = Evaluator([r])
    fired = []
    for feature, requests in (("rare", 3.0), ("busy", 200.0)):
        for i in range(60):
            latency = 400.0 if i == 50 else 40.0 + (i % 7)
            ev.observe("slow", {"feature": feature}, at(i), latency, volume=requests)
            fired += [t.labels["feature"] for t in ev.evaluate(at(i + 0.5)) if t.state == "firing"]
    assert fired == ["busy"]  # 3 slow requests in a minute page nobody; 200 do
