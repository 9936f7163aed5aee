"""Anomaly likelihood: how rare the recent raw scores are for *this* series.

The raw scores a series produces when nothing is wrong differ from series to series
(a heavy-tailed or sparse series scores high often). This layer learns their
distribution — exponentially weighted mean and variance over about the last 1,000
points, of each raw score and of the mean of the last ten — and reports the *surprise*
of the newest: ``−log10`` of the Gaussian upper-tail probability of the latest raw score
and of the latest ten-point mean, whichever is rarer (the point form less one order of
magnitude, since it has ten times the chances). Values past 6 standard deviations are
learnt as 6, so an anomaly does not teach the series that anomalies are normal. The
surprise is scored before the raw score is learnt.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_SHORT = 10  # raw scores in the recent mean
_RATE = 1.0 / 1000.0  # of the long-run statistics, once past the first points
_MIN_SD = 0.1  # raw-score spread below which differences are noise
_POINT_PENALTY = 1.0  # orders of magnitude a single point must add
_CAP = 6.0  # learn at most this many standard deviations out
_MAX_SURPRISE = 60.0
_SQRT2 = math.sqrt(2.0)
_LOG10_SQRT_2PI = math.log10(math.sqrt(2.0 * math.pi))
_LN10 = math.log(10.0)


def surprise_of(z: float) -> float:
    """−log10 of the standard Gaussian's upper tail beyond ``z`` (0 for ``z`` ≤ 0)."""
    if z <= 0.0:
        return 0.0
    if z < 30.0:
        return min(_MAX_SURPRISE, -math.log10(0.5 * math.erfc(z / _SQRT2)))
    return min(_MAX_SURPRISE, z * z / (2.0 * _LN10) + math.log10(z) + _LOG10_SQRT_2PI)


@dataclass
class Likelihood:
    n: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_SHORT))
    point_mean: float = 0.0
    point_var: float = 0.0
    avg_mean: float = 0.0
    avg_var: float = 0.0

    def observe(self, raw: float | None) -> float:
        """The surprise of ``raw`` (and the recent mean) before learning it; 0 for None
        and while the statistics are still forming."""
        if raw is None:
            return 0.0
        recent = self.recent
        recent.append(raw)
        avg = sum(recent) / len(recent)
        out = 0.0
        if self.n >= _SHORT:
            out = self._surprise(raw, avg)
        self._learn(raw, avg)
        return out

    def _surprise(self, raw: float, avg: float) -> float:
        point_sd = max(math.sqrt(self.point_var), _MIN_SD)
        avg_sd = max(math.sqrt(self.avg_var), _MIN_SD / 3.0)
        by_point = surprise_of((raw - self.point_mean) / point_sd) - _POINT_PENALTY
        by_avg = surprise_of((avg - self.avg_mean) / avg_sd)
        return max(by_point, by_avg, 0.0)

    def _learn(self, raw: float, avg: float) -> None:
        self.n += 1
        rate = max(_RATE, 1.0 / self.n)
        self.point_mean, self.point_var = _update(self.point_mean, self.point_var, raw, rate)
        self.avg_mean, self.avg_var = _update(self.avg_mean, self.avg_var, avg, rate)

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "recent": list(self.recent),
            "point": [self.point_mean, self.point_var],
            "avg": [self.avg_mean, self.avg_var],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Likelihood:
        recent: deque[float] = deque(s["recent"], maxlen=_SHORT)
        return cls(s["n"], recent, *s["point"], *s["avg"])


def _update(mean: float, var: float, x: float, rate: float) -> tuple[float, float]:
    """One step of an exponentially weighted mean and variance, ``x`` capped at
    ``_CAP`` standard deviations above the mean once there is a spread."""
    if var > 0.0:
        x = min(x, mean + _CAP * math.sqrt(var))
    d = x - mean
    mean += rate * d
    var = (1.0 - rate) * (var + rate * d * d)
    return mean, var
