"""A labelled corpus of series families, generated from seeds.

Every series is ``(timestamps, values)`` with the onsets of its anomalies and one labelled
window per onset. Windows follow the published windowed-scoring convention: together
they cover 10 % of the series, split evenly between its anomalies, each centred on its
onset. Anomalies fall after the first 30 % of the series (the first 15 % is never scored).

Families:

* synthetic, one per anomaly kind — ``spike``, ``dip``, ``level_shift``,
  ``variance_change``, ``ramp``, ``seasonal_break``, ``flatline``, ``missing`` (rows
  absent for a while; the onset is the first row after the gap) — plus ``quiet`` (no
  anomaly). The base is a level with Gaussian, Student-t (3 degrees of freedom) or
  Laplace noise by seed, a daily cycle on half the seeds and integer counts on a third;
* real-looking: ``cpu`` (AR(1) utilisation with ordinary bursts, clipped to 0–100),
  ``temperature`` (a slowly wandering machine temperature with a daily swing),
  ``requests`` (half-hourly Poisson counts with the simulator's daily and weekend shape),
  ``prices`` (hourly log-normal cost per click on a random walk), ``social`` (sparse,
  bursty five-minute mention counts), and ``traffic`` (the simulator's diurnal traffic
  with its incident kinds: level shift, spike, drift, near-zero drop, dropout, daily
  pattern moved).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from shiftright_server.producers.simulator.clock import diurnal

T0 = 1_772_409_600_000  # 2026-03-02 00:00 UTC, a Monday
MIN = 60_000
SYNTHETIC = (
    "spike",
    "dip",
    "level_shift",
    "variance_change",
    "ramp",
    "seasonal_break",
    "flatline",
    "missing",
    "quiet",
)
REAL = ("cpu", "temperature", "requests", "prices", "social", "traffic")
FAMILIES = SYNTHETIC + REAL


@dataclass(frozen=True)
class Labelled:
    family: str
    kind: str  # the anomaly kind ("none": no anomaly)
    seed: int
    ts: list[int]  # epoch ms, increasing
    values: list[float]
    onsets: list[int]  # row index of each anomaly's start
    windows: list[tuple[int, int]]  # [lo, hi) row indices, one per onset

    @property
    def probation(self) -> int:
        """Rows at the start that are never scored (the detector is learning)."""
        return int(0.15 * len(self.values))


def build(families: tuple[str, ...], seeds: range) -> list[Labelled]:
    return [series(f, s) for f in families for s in seeds]


def series(family: str, seed: int) -> Labelled:
    rng = random.Random(f"{family}/{seed}")
    make = _REAL.get(family, _synthetic)
    kind, ts, values, onsets = make(family, rng, seed)
    return Labelled(family, kind, seed, ts, values, onsets, windows(len(values), onsets))


def windows(n: int, onsets: list[int]) -> list[tuple[int, int]]:
    if not onsets:
        return []
    width = max(2, int(0.1 * n / len(onsets)))
    return [(max(0, o - width // 2), min(n, o - width // 2 + width)) for o in onsets]


def _onsets(rng: random.Random, n: int, count: int) -> list[int]:
    """``count`` onsets in the last 70 % of ``n`` rows, at least a window apart."""
    gap = int(0.1 * n / count) + 10
    while True:
        found = sorted(rng.randrange(int(0.3 * n), int(0.95 * n)) for _ in range(count))
        if all(b - a > gap for a, b in zip(found, found[1:], strict=False)):
            return found


# -- synthetic families --------------------------------------------------------------------
Rows = tuple[str, list[int], list[float], list[int]]


def _noise(rng: random.Random, kind: int) -> float:
    if kind == 0:
        return rng.gauss(0, 1)
    if kind == 1:  # Student-t with 3 degrees of freedom, scaled to unit variance
        chi = sum(rng.gauss(0, 1) ** 2 for _ in range(3))
        return rng.gauss(0, 1) / math.sqrt(chi / 3) / math.sqrt(3)
    return rng.expovariate(1.0) * rng.choice((-1, 1)) / math.sqrt(2)


def _synthetic(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 3000, 5 * MIN
    level = rng.choice((5.0, 40.0, 300.0, 2000.0)) if seed % 3 == 2 else rng.uniform(-50, 500)
    sigma = max(abs(level), 10.0) * rng.uniform(0.02, 0.08)
    amp = rng.uniform(2, 8) * sigma if family == "seasonal_break" or seed % 2 == 0 else 0.0
    integer = seed % 3 == 2
    noise_kind = seed % 3
    kind = "none" if family == "quiet" else family
    count = 0 if family == "quiet" else (1 if family in ("seasonal_break",) else rng.choice((1, 2)))
    onsets = _onsets(rng, n, count) if count else []
    effect = _effect(family, rng, onsets, sigma, amp)
    ts = [T0 + i * step for i in range(n)]
    values: list[float] = []
    for i, t in enumerate(ts):
        hour = (t % 86_400_000) / 3_600_000
        clean = level + amp * math.sin(2 * math.pi * (hour - 9) / 24)
        noise = sigma * _noise(rng, noise_kind)
        v = effect(i, t, clean, noise, values)
        values.append(max(0.0, float(round(v))) if integer else v)
    if family == "missing":
        return _drop_gaps(kind, ts, values, onsets, rng)
    return kind, ts, values, onsets


Effect = Callable[[int, int, float, float, list[float]], float]


def _effect(family: str, rng: random.Random, onsets: list[int], sigma: float, amp: float) -> Effect:
    spans = [(o, o + rng.randrange(60, 300)) for o in onsets]
    sizes = [rng.uniform(6, 12) * sigma for _ in onsets]
    signs = [rng.choice((-1, 1)) for _ in onsets]

    def inside(i: int) -> int:
        return next((k for k, (a, b) in enumerate(spans) if a <= i < b), -1)

    def plain(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        return clean + noise

    def spike(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        k = next((k for k, o in enumerate(onsets) if o <= i < o + 2), -1)
        bump = 0.0 if k < 0 else sizes[k] * (1 if family == "spike" else -1)
        return clean + noise + bump

    def shift(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        after = [k for k, o in enumerate(onsets) if i >= o]
        return clean + noise + (0.6 * sizes[after[-1]] * signs[after[-1]] if after else 0.0)

    def variance(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        return clean + noise * (4.0 if inside(i) >= 0 else 1.0)

    def ramp(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        k = inside(i)
        if k < 0:
            done = [j for j, (a, b) in enumerate(spans) if i >= b]
            return clean + noise + (sizes[done[-1]] * signs[done[-1]] if done else 0.0)
        a, b = spans[k]
        return clean + noise + sizes[k] * signs[k] * (i - a) / (b - a)

    def season(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        if inside(i) < 0:
            return clean + noise
        hour = (t % 86_400_000) / 3_600_000
        return clean - amp * math.sin(2 * math.pi * (hour - 9) / 24) + noise  # pattern inverted

    def flat(i: int, t: int, clean: float, noise: float, past: list[float]) -> float:
        k = inside(i)
        return past[spans[k][0] - 1] if k >= 0 else clean + noise

    return {
        "spike": spike,
        "dip": spike,
        "level_shift": shift,
        "variance_change": variance,
        "ramp": ramp,
        "seasonal_break": season,
        "flatline": flat,
    }.get(family, plain)


def _drop_gaps(
    kind: str, ts: list[int], values: list[float], onsets: list[int], rng: random.Random
) -> Rows:
    """Remove 30–150 rows before each onset; the onset is the first row after the gap."""
    gone: set[int] = set()
    for o in onsets:
        gone.update(range(o - rng.randrange(30, 150), o))
    keep = [i for i in range(len(ts)) if i not in gone]
    index = {i: k for k, i in enumerate(keep)}
    return kind, [ts[i] for i in keep], [values[i] for i in keep], [index[o] for o in onsets]


# -- real-looking families -----------------------------------------------------------------
def _cpu(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 3000, 5 * MIN
    base, ar = rng.uniform(8, 40), 0.0
    onsets = _onsets(rng, n, 1)
    kind = ("level_shift", "ramp", "spike")[seed % 3]
    end = onsets[0] + rng.randrange(20, 80)
    values, burst = [], 0.0
    for i in range(n):
        ar = 0.9 * ar + rng.gauss(0, 1.5)
        burst = burst * 0.5 + (rng.expovariate(1 / 12) if rng.random() < 0.02 else 0.0)
        v = base + ar + burst
        if onsets[0] <= i < end and kind != "spike":
            frac = 1.0 if kind == "level_shift" else (i - onsets[0]) / (end - onsets[0])
            v += (95 - base) * frac
        elif kind == "spike" and onsets[0] <= i < onsets[0] + 3:
            v = rng.uniform(96, 100)
        values.append(min(100.0, max(0.0, round(v, 2))))
    return kind, [T0 + i * step for i in range(n)], values, onsets


def _temperature(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 3000, 5 * MIN
    base, wander = rng.uniform(60, 95), 0.0
    onsets = _onsets(rng, n, 1)
    kind = ("dip", "ramp", "level_shift")[seed % 3]
    values = []
    for i in range(n):
        wander = 0.995 * wander + rng.gauss(0, 0.3)
        hour = (i * step % 86_400_000) / 3_600_000
        v = base + wander + 2 * math.sin(2 * math.pi * (hour - 10) / 24) + rng.gauss(0, 0.4)
        d = i - onsets[0]
        if kind == "dip" and 0 <= d < 100:  # a failure: the machine cools down, restarts
            v -= 25 * min(1.0, d / 12)
        elif kind == "ramp" and d >= 0:  # overheating
            v += 12 * min(1.0, d / 150)
        elif kind == "level_shift" and d >= 0:
            v -= 10
        values.append(round(v, 3))
    return kind, [T0 + i * step for i in range(n)], values, onsets


def _requests(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 2016, 30 * MIN  # six weeks, half-hourly
    base = rng.choice((40.0, 400.0, 4000.0))
    onsets = _onsets(rng, n, 1)
    kind = ("dip", "seasonal_break", "level_shift")[seed % 3]
    ts = [T0 + i * step for i in range(n)]
    values = []
    for i, t in enumerate(ts):
        mean = base * diurnal(t) * math.exp(rng.gauss(0, 0.05))
        d = i - onsets[0]
        if kind == "dip" and 0 <= d < 4:
            mean *= 0.2
        elif kind == "seasonal_break" and 0 <= d < 48:  # a weekday with a night's traffic
            mean = base * 0.4 * math.exp(rng.gauss(0, 0.05))
        elif kind == "level_shift" and 0 <= d < 96:
            mean *= 1.8
        values.append(float(_poisson(rng, mean)))
    return kind, ts, values, onsets


def _prices(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 2000, 60 * MIN
    walk, noise = 0.0, rng.uniform(0.1, 0.3)
    onsets = _onsets(rng, n, 1)
    kind = ("spike", "level_shift")[seed % 2]
    base = rng.uniform(0.05, 3.0)
    values = []
    for i in range(n):
        walk += rng.gauss(0, 0.01)
        hour = i % 24
        log = math.log(base) + walk + 0.1 * math.sin(2 * math.pi * hour / 24)
        log += rng.gauss(0, noise)
        d = i - onsets[0]
        if (kind == "spike" and 0 <= d < 2) or (kind == "level_shift" and d >= 0):
            log += math.log(4.0 if kind == "spike" else 2.2)
        values.append(round(math.exp(log), 4))
    return kind, [T0 + i * step for i in range(n)], values, onsets


def _social(family: str, rng: random.Random, seed: int) -> Rows:
    n, step = 3000, 5 * MIN
    base = rng.choice((0.8, 3.0, 12.0))
    onsets = _onsets(rng, n, rng.choice((1, 2)))
    ts = [T0 + i * step for i in range(n)]
    values, buzz = [], 0.0
    for i, t in enumerate(ts):
        buzz = buzz * 0.8 + (rng.uniform(1, 3) if rng.random() < 0.01 else 0.0)
        mean = base * diurnal(t) * (1 + buzz) * rng.gammavariate(2.0, 0.5)
        for o in onsets:  # a story breaks: a fast rise, a slow decay
            d = i - o
            if d >= 0:
                mean += base * 10 * min(1.0, (d + 1) / 4) * math.exp(-max(0, d - 4) / 25)
        values.append(float(_poisson(rng, mean)))
    return "spike", ts, values, onsets


def _traffic(family: str, rng: random.Random, seed: int) -> Rows:
    incident = ("level_shift", "spike", "ramp", "dip", "missing", "seasonal_break")[seed % 6]
    n, step = 2880, 5 * MIN
    base = rng.choice((60.0, 300.0, 1500.0))
    onsets = _onsets(rng, n, 1)
    o = onsets[0]
    factor = rng.choice((0.4, 1.8))
    ts = [T0 + i * step for i in range(n)]
    values: list[float] = []
    for i, t in enumerate(ts):
        d = i - o
        moved = incident == "seasonal_break" and d >= 0
        mean = base * diurnal(t - (6 * 3_600_000 if moved else 0))
        if incident == "level_shift" and 0 <= d < 24:
            mean *= factor
        elif incident == "spike" and d == 0:
            mean *= 3
        elif incident == "ramp" and d >= 0:
            mean *= 1 + 0.8 * min(1.0, d / 72)
        elif incident == "dip" and 0 <= d < 6:
            mean *= 0.03
        values.append(float(_poisson(rng, mean * math.exp(rng.gauss(0, 0.1)))))
    if incident == "missing":
        return _drop_gaps(incident, ts, values, onsets, rng)
    return incident, ts, values, onsets


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


_REAL: dict[str, Callable[[str, random.Random, int], Rows]] = {
    "cpu": _cpu,
    "temperature": _temperature,
    "requests": _requests,
    "prices": _prices,
    "social": _social,
    "traffic": _traffic,
}
