"""Detection quality of each rule kind on labelled synthetic series.

Every series is per-minute traffic (a usage count per minute, like ``rollups.v1``) with
the simulator's day/night and weekend shape (``producers.simulator.diurnal_factor``),
four days long, at one of three volumes (the base rate ×0.2, ×1, ×5, by seed), with
overdispersed noise: each minute's mean is multiplied by a log-normal factor (σ =
``--noise``, default 0.1) before Poisson sampling, as real traffic is burstier than
Poisson. On day 4, one labelled incident is injected:

* ``level_shift``   traffic ×0.4 or ×1.8 for 2 h
* ``spike``         traffic ×3 for 3 minutes
* ``drift``         traffic rises linearly to +80 % over 6 h (labelled from its start)
* ``season_change`` the daily curve moves 6 h later for the rest of the series
  (labelled for the first 6 h, where the curves differ most)
* ``near_zero``     traffic falls to 3 % for 30 minutes (a feature breaks)
* ``dropout``       no data at all for 30 minutes (an app goes silent: no rollups)
* ``none``          no incident (every alert is a false alarm)

Each rule kind runs through the same :class:`streams.alerting.evaluator.Evaluator` the
stream runs, evaluated 70 s after each bucket starts (a one-minute bucket closes after
10 s of allowed lateness):

* threshold: ``count < 0.12 × base rate`` or ``count > 2.6 × base rate`` (a team's
  static bounds around normal traffic), ``for`` 2 min, resolve with 20 % hysteresis;
* change: 10-minute average vs the 10 minutes before, ±50 %, ``for`` 2 min, at least
  200 events in the earlier 10 minutes;
* anomaly: the seasonal detector, sensitivity 0.5 (the default), both directions, min
  volume 20; anomaly-0.7: the same at sensitivity 0.7;
* absence: no data for 5 minutes.

An alert (a firing transition) is a true positive when it fires between the incident's
start and 15 minutes after its end; otherwise a false positive. Alerts in the first two
days (warm-up) are not counted. Recall: incidents with at least one true alert. Delay:
first true alert − incident start. Prints figures; asserts nothing.

    python -m bench.detection_quality.rule_kinds [--seeds 6] [--rate 300]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter
from shiftright_server.producers.simulator import diurnal_factor
from shiftright_server.schemas.alerts import Rule
from shiftright_server.streams.alerting.evaluator import Evaluator

START = datetime(2026, 3, 2, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
DAYS = 4
WARMUP = 2 * 24 * 60  # minutes
GRACE = 15  # minutes after an incident in which an alert still counts as detection
SCENARIOS = ("level_shift", "spike", "drift", "season_change", "near_zero", "dropout", "none")
KINDS = ("threshold", "change", "anomaly", "anomaly-0.7", "absence")


@dataclass(frozen=True)
class Labelled:
    scenario: str
    seed: int
    values: list[float | None]  # per minute; None: no data
    window: tuple[int, int] | None  # labelled incident [start, end) in minutes


def base_rate(minute: int, rate: float, phase_hours: float = 0.0) -> float:
    ts = START + timedelta(minutes=minute) - timedelta(hours=phase_hours)
    return rate * diurnal_factor(ts)


def poisson(rng: random.Random, mean: float) -> float:
    return (
        max(0.0, round(rng.gauss(mean, math.sqrt(mean))))
        if mean > 30
        else float(sum(1 for _ in range(int(mean * 4)) if rng.random() < 0.25))
    )


def series(scenario: str, seed: int, rate: float, noise: float) -> Labelled:
    rng = random.Random(f"{scenario}-{seed}")
    rate *= (0.2, 1.0, 5.0)[seed % 3]
    n = DAYS * 24 * 60
    start = WARMUP + 24 * 60 + rng.randrange(0, 20 * 60)  # day 4 (day 3 is baseline)
    if scenario == "season_change":
        start = WARMUP + 24 * 60
    shape: Callable[[int, float], float | None] = lambda m, v: v  # noqa: E731
    window: tuple[int, int] | None = None
    if scenario == "level_shift":
        factor = rng.choice([0.4, 1.8])
        window = (start, start + 120)
        shape = lambda m, v: v * factor if start <= m < start + 120 else v  # noqa: E731
    elif scenario == "spike":
        window = (start, start + 3)
        shape = lambda m, v: v * 3 if start <= m < start + 3 else v  # noqa: E731
    elif scenario == "drift":
        window = (start, n)
        shape = lambda m, v: v * (1 + 0.8 * min(1.0, (m - start) / 360)) if m >= start else v  # noqa: E731
    elif scenario == "near_zero":
        window = (start, start + 30)
        shape = lambda m, v: v * 0.03 if start <= m < start + 30 else v  # noqa: E731
    elif scenario == "dropout":
        window = (start, start + 30)
        shape = lambda m, v: None if start <= m < start + 30 else v  # noqa: E731
    elif scenario == "season_change":
        window = (start, start + 360)
    values: list[float | None] = []
    for m in range(n):
        phase = 6.0 if scenario == "season_change" and m >= start else 0.0
        mean = base_rate(m, rate, phase)
        shaped = shape(m, mean)
        burst = math.exp(rng.gauss(0, noise)) if noise > 0 else 1.0
        values.append(None if shaped is None else poisson(rng, shaped * burst))
    return Labelled(scenario, seed, values, window)


def rules(rate: float) -> dict[str, list[Rule]]:
    """The rules a team would write for a series whose base rate is ``rate``."""
    adapter: TypeAdapter[Rule] = TypeAdapter(Rule)
    scope = {"app": "checkout", "env": "prod", "source": "usage", "per_key": False}
    low, high = 0.12 * rate, 2.6 * rate
    specs: dict[str, list[dict[str, object]]] = {
        "threshold": [
            {
                "name": "low",
                "kind": "threshold",
                "op": "<",
                "threshold": low,
                "resolve_threshold": low * 1.2,
                "window": "1m",
                "for": "2m",
            },
            {
                "name": "high",
                "kind": "threshold",
                "op": ">",
                "threshold": high,
                "resolve_threshold": high * 0.8,
                "window": "1m",
                "for": "2m",
            },
        ],
        "change": [
            {
                "name": "change",
                "kind": "change",
                "percent": 50,
                "window": "10m",
                "for": "2m",
                "min_volume": 200,
            },
        ],
        "anomaly": [
            {"name": "anomaly", "kind": "anomaly", "sensitivity": 0.5, "min_volume": 20},
        ],
        "anomaly-0.7": [
            {"name": "anomaly", "kind": "anomaly", "sensitivity": 0.7, "min_volume": 20},
        ],
        "absence": [{"name": "absence", "kind": "absence", "after": "5m"}],
    }
    return {
        kind: [adapter.validate_python({"scope": scope, **spec}) for spec in specs[kind]]
        for kind in KINDS
    }


def alerts(s: Labelled, kind_rules: list[Rule]) -> list[int]:
    """Minutes (since START) at which an alert of these rules fired."""
    ev = Evaluator(kind_rules)
    fired: list[int] = []
    for m, value in enumerate(s.values):
        ts = START + m * MINUTE
        if value is not None:
            for r in kind_rules:
                ev.observe(r.name, {}, ts, value, volume=value, seen_until=ts + MINUTE)
        for t in ev.evaluate(ts + timedelta(seconds=70)):
            if t.state == "firing" and m >= WARMUP:
                fired.append(m)
    return fired


def score(s: Labelled, fired: list[int]) -> tuple[int, int, float | None]:
    """(true alerts, false alerts, detection delay in minutes or None)."""
    if s.window is None:
        return 0, len(fired), None
    lo, hi = s.window
    true = [m for m in fired if lo <= m < hi + GRACE]
    delay = (min(true) - lo + 70 / 60) if true else None  # fired 70 s into bucket m
    return len(true), len(fired) - len(true), delay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--rate", type=float, default=300.0, help="events per minute at factor 1")
    ap.add_argument("--noise", type=float, default=0.1, help="log-normal σ of per-minute bursts")
    args = ap.parse_args()
    run(args.seeds, args.rate, args.noise)


def run(seeds: int, rate: float, noise: float) -> None:
    """Score every rule kind on every scenario and print the tables."""
    began = time.perf_counter()
    table: dict[tuple[str, str], list[tuple[int, int, float | None]]] = defaultdict(list)
    for scenario in SCENARIOS:
        for seed in range(seeds):
            s = series(scenario, seed, rate, noise)
            by_kind = rules(rate * (0.2, 1.0, 5.0)[seed % 3])
            for kind in KINDS:
                table[(kind, scenario)].append(score(s, alerts(s, by_kind[kind])))
    _report(table, seeds)
    print(f"\n{len(SCENARIOS) * seeds} series × {DAYS} days, {time.perf_counter() - began:.1f} s")


def _report(table: dict[tuple[str, str], list[tuple[int, int, float | None]]], seeds: int) -> None:
    print("per rule kind and scenario: detected/incidents, false alarms, delay min (median)")
    print(f"{'':12}" + "".join(f"{sc:>16}" for sc in SCENARIOS))
    for kind in KINDS:
        cells = []
        for sc in SCENARIOS:
            rows = table[(kind, sc)]
            fp = sum(r[1] for r in rows)
            if sc == "none":
                cells.append(f"fa {fp}")
                continue
            hit = [r for r in rows if r[0]]
            delays = [r[2] for r in hit if r[2] is not None]
            med = f" {statistics.median(delays):.0f}m" if delays else ""
            cells.append(f"{len(hit)}/{len(rows)} fa {fp}{med}")
        print(f"{kind:12}" + "".join(f"{c:>16}" for c in cells))
    print("\nper rule kind over all scenarios")
    print(f"{'kind':12} {'precision':>9} {'recall':>7} {'delay p50':>9} {'delay p90':>9}")
    for kind in KINDS:
        rows = [r for sc in SCENARIOS for r in table[(kind, sc)]]
        tp, fp = sum(r[0] for r in rows), sum(r[1] for r in rows)
        labelled = [r for sc in SCENARIOS if sc != "none" for r in table[(kind, sc)]]
        detected = [r for r in labelled if r[0]]
        delays = sorted(r[2] for r in detected if r[2] is not None)
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = len(detected) / len(labelled)
        p50 = f"{statistics.median(delays):.1f}m" if delays else "-"
        p90 = f"{delays[int(0.9 * (len(delays) - 1))]:.1f}m" if delays else "-"
        print(f"{kind:12} {precision:>9.2f} {recall:>7.2f} {p50:>9} {p90:>9}")


if __name__ == "__main__":
    main()
