"""The reference detector of the detection-quality bench: a seasonality-aware, robust
anomaly detector for one series (scores use past points only) that scores absolute
deviations, with no calibration per series and no debounce.

Model: ``expected(t) = seasonal(t) + level``.

* ``seasonal(t)``: per hour-of-day slot, the median over past days of that slot's mean
  (per hour-of-week slot once two weeks are known, so weekends get their own shape),
  interpolated between slot centres. Unknown slots count as 0, so with no seasonal
  history the model is a robust local level.
* ``level``: the median of the last ``level_window`` de-seasonalised values; it follows
  level shifts after about ``level_window / 2`` points, so a shift is flagged at its onset and then
  becomes the new normal.
* ``scale``: 1.4826 × the MAD of the last ``window`` residuals (robust to the outliers
  it is looking for; the mean absolute deviation where the MAD is 0), floored at half
  its slow-moving long-run value (so a quiet spell does not make ordinary noise news)
  and at 1 % of the expected value.
* ``bias``: the residuals' median, added to the expectation, takes out the level's lag
  behind a ramp.

``z = (x − expected) / scale``, or 1.3 × the smallest z of a same-signed run of three
points each beyond 3σ when that is stronger (only the rule's direction counts), and
``score = z² / (z² + z_fire²)``, where ``z_fire`` comes from the sensitivity: a score of
0.5 is the firing point at any sensitivity. Warm-up: 0 for the first ``warmup`` points.
Minimum volume: 0 while the point's volume (and, when the value is itself a volume, the
expected value) is below it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field
from statistics import median
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
_EPOCH_MONDAY_OFFSET = 3 * DAY_MS  # 1970-01-01 was a Thursday


@dataclass(frozen=True)
class DetectorConfig:
    direction: str = "both"  # up, down, both
    sensitivity: float = 0.5  # 0 (only huge deviations) … 1 (small ones)
    min_volume: float = 0.0
    warmup: int = 30
    level_window: int = 12  # points for the level (a shift is the new normal after half)
    window: int = 48  # points for the residual scale
    #: the value is itself the volume (a count; any CSV): the guard also looks at the
    #: expected value, so a drop from busy to nothing still counts; otherwise (latency,
    #: CPU …) the guard looks at the point's volume only
    value_is_volume: bool = True
    days_kept: int = 8  # per hour-of-day slot
    weeks_kept: int = 4  # per hour-of-week slot

    def z_fire(self) -> float:
        return 3.0 + 7.0 * (1.0 - self.sensitivity)


@dataclass
class _Slot:
    """Means of one seasonal slot, one per past day (or week): ``[period, mean]``."""

    means: deque[list[float]]
    period: int = -1  # index of the day/week being accumulated
    total: float = 0.0
    n: int = 0

    def add(self, period: int, value: float) -> None:
        if period != self.period:
            if self.n:
                self.means.append([self.period, self.total / self.n])
            self.period, self.total, self.n = period, 0.0, 0
        self.total += value
        self.n += 1

    def _before(self, period: int) -> list[float]:
        """Means of periods before ``period`` only, so the answer never changes later."""
        past = [m for p, m in self.means if p < period]
        if self.n and self.period < period:
            past.append(self.total / self.n)
        return past[-(self.means.maxlen or len(past)) :]  # the same before and after a close

    def typical(self, period: int) -> float | None:
        past = self._before(period)
        return median(past) if past else None

    def count(self, period: int) -> int:
        return len(self._before(period))


@dataclass
class AnomalyDetector:
    config: DetectorConfig = field(default_factory=DetectorConfig)
    seen: int = 0
    last_ms: int | None = None
    daily: dict[int, _Slot] = field(default_factory=dict)
    weekly: dict[int, _Slot] = field(default_factory=dict)
    values: deque[list[float]] = field(default_factory=deque)  # [ts_ms, value]
    residuals: deque[float] = field(default_factory=deque)
    slow_scale: float = 0.0  # long-run spread: a quiet hour does not make noise news
    _means: dict[int, float | None] = field(default_factory=dict, repr=False)
    _profiles: dict[tuple[int, int, int, int], float | None] = field(
        default_factory=dict, repr=False
    )

    def score(self, ts_ms: int, value: float, volume: float | None = None) -> float:
        """Score ``value`` at ``ts_ms`` against the past, then learn it. In [0, 1].
        A value that is not a finite number scores 0 and is not learnt."""
        if not math.isfinite(value):
            return 0.0
        seasonal = self._seasonal(ts_ms, ts_ms)
        out = self._score(ts_ms, seasonal, value, value if volume is None else volume)
        self._learn(ts_ms, seasonal, value)
        return out

    def expected(self, ts_ms: int) -> tuple[float, float] | None:
        """(expected value, scale) at ``ts_ms`` from the past; None before any data."""
        return self._expected(ts_ms, self._seasonal(ts_ms, ts_ms))

    def _level(self, now_ms: int) -> float:
        """Median of recent values less the profile as known now (not when they came)."""
        return median(v - self._seasonal(int(t), now_ms) for t, v in self.values)

    def _expected(self, ts_ms: int, seasonal: float) -> tuple[float, float] | None:
        """Expected value and scale; the residuals' median corrects the level's lag
        behind a ramp (the level is a median of the last points, centred behind now)."""
        if not self.values:
            return None
        mid = median(self.residuals) if self.residuals else 0.0
        exp = seasonal + self._level(ts_ms) + mid
        return exp, max(self._spread(mid), 0.5 * self.slow_scale, 0.01 * abs(exp), 1e-9)

    def _spread(self, mid: float) -> float:
        """Robust spread of recent residuals: 1.4826·MAD, or 1.2533·mean absolute
        deviation when more than half of them are equal (MAD 0 on integer or flat data)."""
        if not self.residuals:
            return 0.0
        dev = [abs(r - mid) for r in self.residuals]
        mad = median(dev)
        return 1.4826 * mad if mad > 0 else 1.2533 * sum(dev) / len(dev)

    def _score(self, ts_ms: int, seasonal: float, value: float, volume: float) -> float:
        if self.seen < self.config.warmup or len(self.residuals) < 8:
            return 0.0
        found = self._expected(ts_ms, seasonal)
        if found is None:
            return 0.0
        exp, scale = found
        seen = max(volume, exp) if self.config.value_is_volume else volume
        if self.config.min_volume > 0 and seen < self.config.min_volume:
            return 0.0
        z = self._run((value - exp) / scale, scale)
        if self.config.direction == "up":
            z = max(z, 0.0)
        elif self.config.direction == "down":
            z = min(z, 0.0)
        z2, zf = z * z, self.config.z_fire()
        return z2 / (z2 + zf * zf)

    def _run(self, z: float, scale: float) -> float:
        """``z``, or stronger evidence from a run: when this point and the two before it
        all deviate the same way by more than 3σ, the smallest of the three × 1.3 — a
        level shift 4.5σ out for three points in a row is as sure as one 5.9σ out."""
        if len(self.residuals) < 3 or abs(z) < 3.0:
            return z
        mid = median(self.residuals)
        prev = [(r - mid) / scale for r in list(self.residuals)[-2:]]
        if all(p * z > 0 and abs(p) >= 3.0 for p in prev):
            run = min(abs(p) for p in [*prev, z]) * 1.3
            return math.copysign(max(run, abs(z)), z)
        return z

    def _learn(self, ts_ms: int, seasonal: float, value: float) -> None:
        if self.values:
            self.residuals.append(value - seasonal - self._level(ts_ms))
            if len(self.residuals) > self.config.window:
                self.residuals.popleft()
            spread = self._spread(median(self.residuals))
            self.slow_scale = spread if self.seen < 2 else 0.99 * self.slow_scale + 0.01 * spread
        self.values.append([ts_ms, value])
        if len(self.values) > self.config.level_window:
            self.values.popleft()
        hour, week_hour = _slots(ts_ms)
        self._slot(self.daily, hour, self.config.days_kept).add(ts_ms // DAY_MS, value)
        weekly = self._slot(self.weekly, week_hour, self.config.weeks_kept)
        weekly.add((ts_ms + _EPOCH_MONDAY_OFFSET) // WEEK_MS, value)
        if self.last_ms is not None and ts_ms // DAY_MS < self.last_ms // DAY_MS:
            self._means.clear()  # a point from an earlier day changes what was known then
            self._profiles.clear()
        self.seen += 1
        self.last_ms = ts_ms if self.last_ms is None else max(self.last_ms, ts_ms)

    @staticmethod
    def _slot(table: dict[int, _Slot], index: int, kept: int) -> _Slot:
        slot = table.get(index)
        if slot is None:
            slot = table[index] = _Slot(deque(maxlen=kept))
        return slot

    def _seasonal(self, ts_ms: int, now_ms: int) -> float:
        """Profile at ``ts_ms`` as known at ``now_ms``, interpolated between hour-slot
        centres (0 while unknown)."""
        pos = (ts_ms % DAY_MS) / HOUR_MS - 0.5  # hours past the centre of slot 0
        lo = int(pos // 1)
        frac = pos - lo
        a = self._profile(ts_ms + int((lo - pos) * HOUR_MS), now_ms)
        b = self._profile(ts_ms + int((lo + 1 - pos) * HOUR_MS), now_ms)
        if a is None or b is None:
            return 0.0
        return a * (1 - frac) + b * frac

    def _profile(self, at: int, now_ms: int) -> float | None:
        """Typical value of the slot holding ``at`` less the typical daily mean, from the
        days (weeks) before ``now_ms``'s (cached: fixed while points come in order)."""
        day = now_ms // DAY_MS
        week = (now_ms + _EPOCH_MONDAY_OFFSET) // WEEK_MS
        hour, week_hour = _slots(at)
        key = (hour, week_hour, day, week)
        if key not in self._profiles:
            if len(self._profiles) > 4096:
                self._profiles.clear()
            self._profiles[key] = self._profile_of(hour, week_hour, day, week)
        return self._profiles[key]

    def _profile_of(self, hour: int, week_hour: int, day: int, week: int) -> float | None:
        slot, period = self.daily.get(hour), day
        wslot = self.weekly.get(week_hour)
        if wslot is not None and wslot.count(week) >= 2:
            slot, period = wslot, week
        if slot is None or slot.count(period) < 2:
            return None
        typical, base = slot.typical(period), self._daily_mean(day)
        return None if typical is None or base is None else typical - base

    def _daily_mean(self, day: int) -> float | None:
        """Mean of the typical slot values as known on ``day`` (cached: fixed for a day)."""
        if day not in self._means:
            found = [t for s in self.daily.values() if (t := s.typical(day)) is not None]
            if len(self._means) > 2:
                del self._means[min(self._means)]
            self._means[day] = sum(found) / len(found) if len(found) >= 12 else None
        return self._means[day]

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "last_ms": self.last_ms,
            "daily": {str(k): _slot_state(s) for k, s in self.daily.items()},
            "weekly": {str(k): _slot_state(s) for k, s in self.weekly.items()},
            "values": list(self.values),
            "residuals": list(self.residuals),
            "slow_scale": self.slow_scale,
        }

    @classmethod
    def from_state(cls, config: DetectorConfig, s: dict[str, Any]) -> AnomalyDetector:
        return cls(
            config,
            s["seen"],
            s["last_ms"],
            {int(k): _slot_load(v, config.days_kept) for k, v in s["daily"].items()},
            {int(k): _slot_load(v, config.weeks_kept) for k, v in s["weekly"].items()},
            deque([list(v) for v in s["values"]]),
            deque(s["residuals"]),
            s["slow_scale"],
        )

    def dumps(self) -> bytes:
        return json.dumps(self.to_state(), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, config: DetectorConfig, raw: bytes) -> AnomalyDetector:
        return cls.from_state(config, json.loads(raw))


def _slots(ts_ms: int) -> tuple[int, int]:
    return (ts_ms % DAY_MS) // HOUR_MS, ((ts_ms + _EPOCH_MONDAY_OFFSET) % WEEK_MS) // HOUR_MS


def _slot_state(s: _Slot) -> list[Any]:
    return [list(s.means), s.period, s.total, s.n]


def _slot_load(v: list[Any], kept: int) -> _Slot:
    return _Slot(deque(v[0], maxlen=kept), v[1], v[2], v[3])
