"""What a series should do next, and a raw score for how far a point is from it.

* Expected value: ``level + daily(t) + weekly(t)``. ``level`` is an exponentially
  weighted mean of de-seasonalised values (about the last ten) whose steps are clipped
  at 3 scales (a Huber update: an outlier moves it little); ``daily`` is a profile of 24
  hour-of-day slots, interpolated between slot centres, and ``weekly`` a correction per
  hour of the week. The profiles learn against a slow level (a two-day time constant),
  so a fast level cannot absorb the cycle they are learning. Both learn the clipped
  residual at a rate set by time: the daily profile about 30 % of the error per day of
  visits (all of it on the first day, half on the second), the weekly correction, from
  the second week on, 0.3 times that. A series with no cycle keeps them near 0, and
  minute, five-minute and hourly series learn alike.
* Scale: the geometric mean of two spreads of the clipped residuals (1.25 × their
  exponentially weighted mean absolute value): the recent one (about the last 100
  points) and the one of this hour of the day (learnt like the profile, so a count's
  quiet night has a smaller spread than its busy afternoon); floored at a quarter of the
  slow long-run spread (a quiet spell does not make ordinary noise news).
* A confirmed change is re-learnt at once: six points in a row beyond 3 scales put the
  level at their median (a level shift), and, when they straddle the expectation, the
  scale at their median distance (a variance change).
* Raw score: ``ln(1 + z²)`` for the residual ``z`` in scale units, in the rule's
  direction, or after a gap of ``g`` typical intervals ``z = g − 2``, whichever is
  higher. A value stuck for a run of ``k`` repeats has its own surprise,
  ``−log10(same^k) − 3`` (``same``: how often this series repeats a value; a series
  shows about a thousand runs before one as rare as 10⁻³ is news).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
_MONDAY = 3 * DAY_MS  # 1970-01-01 was a Thursday
_START = 10  # points that only seed the level and scale
_LEVEL_RATE = 0.1
_BASE_MS = 2 * DAY_MS  # time constant of the slow level
_SCALE_RATE = 0.01
_LONG_RATE = 0.001
_SEASON_RATE = 0.3  # of the error, per day (week) of visits to a slot
_WEEK_SHARE = 0.3  # the weekly correction learns slower than the daily profile
_CLIP = 3.0
_STUCK_CHANCES = 3.0
_SLOTS = 24  # of the daily profile, one per hour
_RUN = 6  # points beyond the clip that confirm a change
_MAX_RAW = 1000.0  # ln(1 + z²) of z past any real deviation (and of infinity)
_LN10 = math.log(10.0)


@dataclass
class RobustModel:
    n: int = 0
    level: float = 0.0  # recent level, de-seasonalised
    base: float = 0.0  # slow level the profiles are learnt against
    scale: float = 0.0
    long_scale: float = 0.0
    magnitude: float = 0.0  # long-run mean absolute expectation: rounding dust is no news
    daily: list[float] = field(default_factory=lambda: [0.0] * _SLOTS)
    weekly: list[float] = field(default_factory=lambda: [0.0] * 168)
    spread: list[float] = field(default_factory=lambda: [0.0] * 24)  # scale per hour of day
    last_ms: int = 0
    step_ms: float = 0.0  # typical interval between points
    last_value: float = 0.0
    run: int = 0  # identical values in a row, after the first
    same: float = 0.0  # share of points that repeat the one before
    stuck: float = 0.0  # surprise of the latest run of identical values (not saved)
    beyond: int = 0  # points in a row beyond the clip
    recent: deque[list[float]] = field(default_factory=lambda: deque(maxlen=_RUN))
    expected_before: float = 0.0  # what the latest point was expected to be

    def observe(self, ts_ms: int, value: float, direction: str = "both") -> float | None:
        """The raw score of ``value`` at ``ts_ms`` from the past, then learn it; None
        while the model is still seeding."""
        if self.n < _START:
            self._seed(ts_ms, value)
            return None
        gap = self._gap(ts_ms)
        season, lo, frac, week = self._season(ts_ms)
        expected = self.level + season
        self.expected_before = expected
        hour = (ts_ms % DAY_MS) // HOUR_MS
        here = self.spread[hour]
        mixed = math.sqrt(here * self.scale) if here > 0 else self.scale
        scale = max(mixed, 0.25 * self.long_scale, 1e-6 * self.magnitude, 1e-12)
        err = value - expected
        z = err / scale
        zd = z if direction == "both" else max(z, 0.0) if direction == "up" else min(z, 0.0)
        z2 = zd * zd
        if direction != "up":
            z2 = max(z2, gap * gap)
        raw = min(math.log1p(z2), _MAX_RAW)
        self._stuck(value, direction)
        self.magnitude += _LONG_RATE * (abs(expected) - self.magnitude)
        self._learn(err, value - self.base - season, scale, (lo, frac, week, hour))
        self._confirm(z, value - season)
        return raw

    def _stuck(self, value: float, direction: str) -> None:
        """``stuck``: −log10 of the chance of this run of identical values, less the
        ``_STUCK_CHANCES`` orders of magnitude of runs a series has to show one."""
        rate = max(_SCALE_RATE, 1.0 / self.n)
        self.stuck = 0.0
        if value == self.last_value:
            self.run += 1
            surprise = self.run * -math.log10(max(self.same, 0.001)) - _STUCK_CHANCES
            if direction == "both":
                self.stuck = min(surprise, 60.0)
            if surprise > 0.0:  # a run already out of the ordinary teaches little
                rate *= 0.1
            self.same += rate * (1.0 - self.same)
        else:
            self.run = 0
            self.same -= rate * self.same
        self.last_value = value

    def _seed(self, ts_ms: int, value: float) -> None:
        """The first points: level = their mean, scale = 1.25 × mean absolute deviation."""
        self.n += 1
        if self.n > 1:
            self.step_ms += (ts_ms - self.last_ms - self.step_ms) / (self.n - 1)
            repeat = 1.0 if value == self.last_value else 0.0
            self.same += (repeat - self.same) / (self.n - 1)
        self.level += (value - self.level) / self.n
        self.base = self.level
        dev = 1.2533 * abs(value - self.level)
        self.scale += (dev - self.scale) / self.n
        self.long_scale = self.scale
        self.magnitude += (abs(value) - self.magnitude) / self.n
        self.last_ms, self.last_value = ts_ms, value

    def _gap(self, ts_ms: int) -> float:
        """How many typical intervals past the usual one this point came (0: on time)."""
        dt = ts_ms - self.last_ms
        self.last_ms = max(self.last_ms, ts_ms)
        step = self.step_ms
        if dt <= 0:
            return 0.0
        if step <= 0:
            self.step_ms = float(dt)
            return 0.0
        self.step_ms = step + 0.05 * (min(dt, 3.0 * step) - step)
        return dt / step - 2.0 if dt > 3.0 * step else 0.0

    def _season(self, ts_ms: int) -> tuple[float, int, float, int]:
        """(profile value, daily slot below, weight of the slot above, week slot)."""
        slots = len(self.daily)
        pos = (ts_ms % DAY_MS) * slots / DAY_MS - 0.5  # slots past the centre of slot 0
        base = math.floor(pos)
        frac = pos - base
        lo = base % slots
        daily = self.daily
        week = ((ts_ms + _MONDAY) % WEEK_MS) // HOUR_MS
        value = daily[lo] * (1.0 - frac) + daily[(lo + 1) % slots] * frac + self.weekly[week]
        return value, lo, frac, week

    def _learn(
        self, err: float, slow_err: float, scale: float, slot: tuple[int, float, int, int]
    ) -> None:
        """Level and spreads from the clipped residual; profiles from the slow one."""
        self.n += 1
        limit = _CLIP * scale
        clipped = limit if err > limit else -limit if err < -limit else err
        self.level += _LEVEL_RATE * clipped
        dev = 1.2533 * abs(clipped)
        self.scale += _SCALE_RATE * (dev - self.scale)
        self.long_scale += _LONG_RATE * (dev - self.long_scale)
        slow = limit if slow_err > limit else -limit if slow_err < -limit else slow_err
        self.base += min(0.5, self.step_ms / _BASE_MS) * slow
        self._learn_profile(slow, dev, scale, slot)

    def _learn_profile(
        self, slow: float, dev: float, scale: float, slot: tuple[int, float, int, int]
    ) -> None:
        lo, frac, week, hour = slot
        step = self.step_ms
        per_day = max(_SEASON_RATE, 3.0 / (1.0 + self.n * step / DAY_MS))
        rate = min(0.5, per_day * min(1.0, step * len(self.daily) / DAY_MS)) * slow
        self.daily[lo] += rate * (1.0 - frac)
        self.daily[(lo + 1) % len(self.daily)] += rate * frac
        if self.n * step >= WEEK_MS:  # a week's corrections once the daily shape is known
            self.weekly[week] += _WEEK_SHARE * rate
        here = self.spread[hour] or scale
        self.spread[hour] = here + min(0.5, _SEASON_RATE * step / HOUR_MS) * (dev - here)

    def _confirm(self, z: float, deseasoned: float) -> None:
        """Re-learn level (and scale) after ``_RUN`` points in a row beyond the clip."""
        if -_CLIP <= z <= _CLIP:
            self.beyond = 0
            self.recent.clear()
            return
        self.beyond += 1
        self.recent.append([deseasoned, z])
        if self.beyond < _RUN:
            return
        values = sorted(v for v, _ in self.recent)
        mid = values[len(values) // 2]
        if any(z * zz < 0 for _, zz in self.recent):
            spread = sorted(abs(v - mid) for v in values)
            self.scale = max(self.scale, 1.4826 * spread[len(spread) // 2])
        self.base += mid - self.level
        self.level = mid
        self.beyond = 0
        self.recent.clear()

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "level": self.level,
            "base": self.base,
            "scale": self.scale,
            "long_scale": self.long_scale,
            "magnitude": self.magnitude,
            "daily": self.daily,
            "weekly": self.weekly,
            "spread": self.spread,
            "last_ms": self.last_ms,
            "step_ms": self.step_ms,
            "last_value": self.last_value,
            "run": self.run,
            "same": self.same,
            "beyond": self.beyond,
            "recent": list(self.recent),
            "expected_before": self.expected_before,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> RobustModel:
        recent: deque[list[float]] = deque(s["recent"], maxlen=_RUN)
        fields = {k: v for k, v in s.items() if k != "recent"}
        return cls(**fields, recent=recent)
