"""Anomaly rules through the evaluator: one alert per episode, held while it lasts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter
from shiftright_server.schemas.alerts import Rule
from shiftright_server.streams.alerting.evaluator import Evaluator

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
RULE = TypeAdapter(Rule).validate_python(
    {"name": "odd", "kind": "anomaly", "scope": {"app": "checkout"}, "direction": "up"}
)


def transitions(values: list[float]) -> list[tuple[int, str]]:
    ev = Evaluator([RULE])
    out: list[tuple[int, str]] = []
    for i, v in enumerate(values):
        ts = T0 + timedelta(minutes=i)
        ev.observe("odd", {"feature": "pay"}, ts, v, volume=v)
        out += [(i, t.state) for t in ev.evaluate(ts + timedelta(seconds=30))]
    return out


def test_a_level_shift_raises_one_alert_that_resolves_once_the_series_settles() -> None:
    rng = random.Random(1)
    values = [200.0 + rng.gauss(0, 8) for _ in range(600)]
    values[400:] = [v + 150.0 for v in values[400:]]  # a lasting jump
    got = transitions(values)
    assert [state for _, state in got] == ["firing", "resolved"]
    (fired, _), (resolved, _) = got
    assert 400 <= fired <= 402 and resolved > fired + 1  # held, not one point


def test_an_alert_survives_a_restore_mid_episode() -> None:
    rng = random.Random(2)
    values = [50.0 + rng.gauss(0, 2) for _ in range(300)]
    values[200:] = [v + 40.0 for v in values[200:]]
    ev = Evaluator([RULE])
    states = []
    for i, v in enumerate(values):
        if i == 202:
            ev = Evaluator.loads(ev.dumps(), [RULE])
        ts = T0 + timedelta(minutes=i)
        ev.observe("odd", {"feature": "pay"}, ts, v, volume=v)
        states += [t.state for t in ev.evaluate(ts + timedelta(seconds=30))]
    assert states == ["firing", "resolved"]
