"""The anomaly detector and ``detect --csv``: it flags spikes and level shifts, not the
daily cycle, alarms once per episode, means the same on different noise, stays quiet on
low volume, and never looks ahead."""

from __future__ import annotations

import io
import math
import random
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from shiftright_server.streams.alerting.detect import main
from shiftright_server.streams.alerting.detector import AnomalyDetector, DetectorConfig

T0 = 1_795_392_000_000  # 2026-11-23 00:00 UTC, a Monday
STEP = 5 * 60 * 1000  # a point every 5 minutes
DAY = 288  # points a day


def daily(i: int, rng: random.Random, base: float = 200.0) -> float:
    """Traffic with a strong day/night cycle (peak 15:00) and 3 % noise."""
    hour = (i % DAY) / 12
    level = base * (0.35 + 1.4 * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2)
    return level * (1 + rng.gauss(0, 0.03))


def scores(values: list[float], **config: Any) -> list[float]:
    det = AnomalyDetector(DetectorConfig(**config))
    return [det.score(T0 + i * STEP, v) for i, v in enumerate(values)]


def test_a_normal_daily_cycle_raises_no_alarm_after_warm_up() -> None:
    rng = random.Random(7)
    got = scores([daily(i, rng) for i in range(DAY * 6)])
    assert max(got) < 0.5  # 0.5 is the firing point


def test_a_spike_is_flagged_at_the_point_it_happens() -> None:
    rng = random.Random(7)
    values = [daily(i, rng) for i in range(DAY * 4)]
    spike = DAY * 3 + 100
    values[spike] *= 1.6
    got = scores(values)
    assert got[spike] > 0.5
    assert max(got[DAY:spike] + got[spike + 1 :]) < 0.5


def test_a_level_shift_alarms_once_at_its_onset_then_becomes_normal() -> None:
    rng = random.Random(3)
    values = [daily(i, rng) for i in range(DAY * 4)]
    shift = DAY * 3 + 30
    values[shift:] = [v * 0.5 for v in values[shift:]]
    det = AnomalyDetector(DetectorConfig(direction="down"))
    got, levels = [], []
    for i, v in enumerate(values):
        got.append(det.score(T0 + i * STEP, v))
        levels.append(det.level)
    alarms = [i for i, s in enumerate(got) if s >= 0.5]
    assert len(alarms) == 1 and shift <= alarms[0] <= shift + 2  # once, not on every point
    assert max(levels[shift + 24 :]) < 0.35  # normal again within two hours (5-min points)


def test_direction_up_ignores_drops() -> None:
    rng = random.Random(5)
    values = [daily(i, rng) for i in range(DAY * 3)]
    values[DAY * 2 + 50] *= 0.2
    assert scores(values, direction="up")[DAY * 2 + 50] == 0.0
    assert scores(values, direction="both")[DAY * 2 + 50] > 0.3


def test_warm_up_scores_zero() -> None:
    assert scores([1.0, 1.0, 50.0, 1.0, 900.0], warmup=30) == [0.0] * 5


def test_minimum_volume_guard_keeps_low_traffic_quiet() -> None:
    rng = random.Random(11)
    trickle = [float(rng.choice([0, 0, 0, 1, 1, 2])) for _ in range(400)]
    trickle[300] = 15.0  # a burst of 15 events is no page at this volume
    assert scores(trickle, min_volume=20)[300] == 0.0
    assert scores(trickle)[300] > 0.5  # without the guard it would page
    busy = [100.0 + rng.gauss(0, 3) for _ in range(400)]
    busy[300] = 0.0  # a drop from busy to nothing still counts: the expected is high
    assert scores(busy, min_volume=20)[300] > 0.5


def test_state_round_trips_to_bytes_with_identical_scores() -> None:
    rng = random.Random(2)
    values = [daily(i, rng) for i in range(DAY * 11)]  # past the 8 days a slot keeps
    cut = DAY * 10 + 17
    a = AnomalyDetector(DetectorConfig())
    for i, v in enumerate(values[:cut]):
        a.score(T0 + i * STEP, v)
    b = AnomalyDetector.loads(DetectorConfig(), a.dumps())
    rest = list(enumerate(values))[cut:]
    assert [a.score(T0 + i * STEP, v) for i, v in rest] == [
        b.score(T0 + i * STEP, v) for i, v in rest
    ]


def _csv(path: Path, values: list[float]) -> None:
    rows = ["timestamp,value"] + [
        f"2026-11-23 {i // 12:02d}:{(i % 12) * 5:02d}:00,{v}" for i, v in enumerate(values)
    ]
    path.write_text("\n".join(rows) + "\n")


def _detect(path: Path) -> list[float]:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--csv", str(path)]) == 0
    return [float(line) for line in out.getvalue().splitlines()]


def test_detect_csv_prints_one_score_per_row_using_only_past_rows(tmp_path: Path) -> None:
    rng = random.Random(4)
    values = [100 + rng.gauss(0, 2) for _ in range(280)]
    values[200] = 160.0
    _csv(tmp_path / "a.csv", values)
    first = _detect(tmp_path / "a.csv")
    assert len(first) == len(values) and all(0.0 <= s <= 1.0 for s in first)
    assert first[200] > 0.5 and max(first[:200]) < 0.5
    changed = list(values)
    changed[250] = 10_000.0  # a future row changes ...
    changed[260:] = [0.0] * 20
    _csv(tmp_path / "b.csv", changed)
    second = _detect(tmp_path / "b.csv")
    assert second[:250] == first[:250]  # ... no earlier score
    assert second[250] > 0.5


def test_detect_runs_as_a_module(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("1795392000,1\n1795392060,2\n1795392120,x\n1795392180,inf\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shiftright_server.streams.alerting.detect",
            "--csv",
            str(tmp_path / "c.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.splitlines() == ["0.000000"] * 4


def test_shiftright_detect_is_the_same_command(tmp_path: Path) -> None:
    from shiftright_server.infra.cli import app
    from typer.testing import CliRunner

    rng = random.Random(4)
    _csv(tmp_path / "a.csv", [100 + rng.gauss(0, 2) for _ in range(50)])
    result = CliRunner().invoke(app, ["detect", "--csv", str(tmp_path / "a.csv")])
    assert result.exit_code == 0
    assert [float(x) for x in result.output.splitlines()] == _detect(tmp_path / "a.csv")


def test_negative_valued_series_are_scored_too() -> None:
    rng = random.Random(8)
    values = [-50.0 + rng.gauss(0, 1) for _ in range(200)]
    values[150] = -80.0  # e.g. a temperature or a balance
    got = scores(values)
    assert got[150] > 0.5 and max(got[:150]) < 0.5


def _noisy(kind: str, rng: random.Random) -> float:
    if kind == "gaussian":  # a steady gauge: 1,000 ± 5
        return 1000.0 + rng.gauss(0, 5)
    if kind == "heavy":  # log-normal prices: bursts 5× the median are ordinary
        return math.exp(rng.gauss(0, 0.5))
    return float(sum(1 for _ in range(8) if rng.random() < 0.1))  # sparse counts: 0, 1, 2


def test_one_threshold_means_the_same_on_very_different_noise() -> None:
    alarms = {}
    for kind in ("gaussian", "heavy", "sparse"):
        rng = random.Random(kind)
        det = AnomalyDetector(DetectorConfig())
        levels = []
        for i in range(12_000):
            det.score(T0 + i * STEP, _noisy(kind, rng))
            levels.append(det.level)
        alarms[kind] = sum(1 for x in levels[2000:] if x >= 0.3)  # tail 10⁻²·¹ a point
    assert min(alarms.values()) >= 20  # the threshold is reachable on every series ...
    assert max(alarms.values()) <= 2 * min(alarms.values())  # ... and about as often


def test_scores_of_earlier_points_never_depend_on_later_ones() -> None:
    rng = random.Random(6)
    base = [daily(i, rng) for i in range(DAY * 2)]
    later = [rng.choice((0.0, 1e6, -5.0)) for _ in range(50)]
    assert scores(base) == scores(base + later)[: len(base)]


def test_state_stays_under_ten_kilobytes_per_series() -> None:
    rng = random.Random(9)
    det = AnomalyDetector(DetectorConfig())
    for i in range(DAY * 35):  # five weeks: every daily and weekly slot is in use
        det.score(T0 + i * STEP, daily(i, rng) + (500.0 if i % 997 == 0 else 0.0))
    assert len(det.dumps()) <= 10_000


def test_a_stuck_sensor_alarms_within_a_few_points() -> None:
    rng = random.Random(12)
    values = [20.0 + rng.gauss(0, 1) for _ in range(2000)]
    values[1500:1600] = [values[1499]] * 100  # the reading stops changing
    got = scores(values)
    alarms = [i for i, s in enumerate(got) if s >= 0.5]
    assert alarms and 1500 <= alarms[0] <= 1504
    assert not [i for i in alarms if i < 1500]


def test_data_that_comes_back_after_a_silence_is_flagged_when_drops_count() -> None:
    rng = random.Random(13)
    ts = [T0 + i * STEP for i in range(1500)]
    ts[1200:] = [t + 40 * STEP for t in ts[1200:]]  # 40 intervals without data
    values = [100.0 + rng.gauss(0, 3) for _ in ts]
    for direction, fires in (("both", True), ("down", True), ("up", False)):
        det = AnomalyDetector(DetectorConfig(direction=direction))
        got = [det.score(t, v) for t, v in zip(ts, values, strict=True)]
        assert (got[1200] >= 0.5) is fires
        assert max(got[300:1200]) < 0.5


def test_an_absurd_glitch_neither_breaks_the_state_nor_blinds_the_series() -> None:
    rng = random.Random(14)
    values = [rng.gauss(0, 1) for _ in range(400)] + [1e308, -1e308]
    values += [rng.gauss(0, 1) for _ in range(300)] + [40.0]
    det = AnomalyDetector(DetectorConfig())
    got = [det.score(T0 + i * STEP, v) for i, v in enumerate(values)]
    assert got[400] > 0.5 and got[-1] > 0.5  # the glitch, and a real spike after it
    assert max(got[420:-1]) < 0.5
    again = AnomalyDetector.loads(DetectorConfig(), det.dumps())
    assert b"Infinity" not in det.dumps() and again.to_state() == det.to_state()
