"""Anomaly likelihood: how rare the recent raw scores are for *this* series.

The raw scores a series produces when nothing is wrong differ from series to series
(a heavy-tailed or sparse series scores high often). This layer learns their
distribution over about the last 1,000 points and reports the *surprise* of the newest,
``−log10`` of a tail probability, in two forms, whichever is rarer:

* the mean of the last ten raw scores against the exponentially weighted mean and
  variance of such means (a Gaussian tail): sustained behaviour;
* the latest raw score alone, less one order of magnitude (it has ten times the
  chances): the smaller of its Gaussian tail under the raw scores' mean and variance
  and the tail of a generalised Pareto law fitted by moments to the excesses over the
  raw scores' 95th percentile, once 30 points have exceeded it — so a series whose ordinary bursts are heavy-tailed
  needs a burst beyond its own extremes, while a Gaussian-quiet series flags the first
  point far out.

Values past 6 standard deviations are learnt as 6, so an anomaly does not teach the
series that anomalies are normal. The surprise is scored before the raw score is learnt.
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
_PRIOR_POINTS = 50.0  # variances count as (1 + this / points learnt) times larger
_TAIL = 0.05  # share of raw scores in the fitted tail
_QUANTILE_STEP = 0.05  # of the tail's threshold, in raw-score standard deviations
_SHAPE_MIN, _SHAPE_MAX = -0.2, 0.5
_MIN_EXCESSES = 30  # before the fitted tail is trusted
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
    tail_from: float = 0.0  # the raw score exceeded by a share ``_TAIL`` of points
    excess_mean: float = 0.0  # of raw − tail_from, over the points beyond it
    excess_var: float = 0.0
    excesses: int = 0  # points learnt beyond ``tail_from``

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
        widen = 1.0 + _PRIOR_POINTS / self.n  # few points: wider tails
        point_sd = max(math.sqrt(self.point_var * widen), _MIN_SD)
        avg_sd = max(math.sqrt(self.avg_var * widen), _MIN_SD / 3.0)
        by_point = surprise_of((raw - self.point_mean) / point_sd)
        if self.excesses >= _MIN_EXCESSES:
            by_point = min(by_point, self._tail_surprise(raw))
        by_point -= _POINT_PENALTY
        by_avg = surprise_of((avg - self.avg_mean) / avg_sd)
        return max(by_point, by_avg, 0.0)

    def _tail_surprise(self, raw: float) -> float:
        """−log10 of P(raw score ≥ ``raw``) from a generalised Pareto tail fitted by
        moments to the excesses over ``tail_from`` (at most the share ``_TAIL`` below it)."""
        floor = -math.log10(_TAIL)
        y = raw - self.tail_from
        if y <= 0.0:
            return floor
        m, v = self.excess_mean, max(self.excess_var, 1e-12)
        ratio = m * m / v
        shape = min(_SHAPE_MAX, max(_SHAPE_MIN, 0.5 * (1.0 - ratio)))
        scale = 0.5 * m * (1.0 + ratio)
        if abs(shape) < 1e-6:
            return min(_MAX_SURPRISE, floor + y / scale / _LN10)
        inner = 1.0 + shape * y / scale
        if inner <= 0.0:
            return _MAX_SURPRISE
        return min(_MAX_SURPRISE, floor + math.log10(inner) / shape)

    def _learn(self, raw: float, avg: float) -> None:
        self.n += 1
        rate = max(_RATE, 1.0 / self.n)
        self._learn_tail(raw, rate)
        self.point_mean, self.point_var = _update(self.point_mean, self.point_var, raw, rate)
        self.avg_mean, self.avg_var = _update(self.avg_mean, self.avg_var, avg, rate)

    def _learn_tail(self, raw: float, rate: float) -> None:
        """Move ``tail_from`` towards the (1 − ``_TAIL``) quantile; learn the excesses."""
        sd = max(math.sqrt(self.point_var), _MIN_SD)
        if self.n <= _SHORT:
            self.tail_from = self.point_mean + 2.0 * sd
            return
        beyond = raw > self.tail_from
        self.tail_from += _QUANTILE_STEP * sd * ((1.0 - _TAIL) - (0.0 if beyond else 1.0))
        if beyond:
            self.excesses += 1
            y = min(raw - self.tail_from, _CAP * sd)
            r = min(1.0, max(rate / _TAIL, 1.0 / 50.0)) if self.excesses > 1 else 1.0
            self.excess_mean, self.excess_var = _update(self.excess_mean, self.excess_var, y, r)

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "recent": list(self.recent),
            "point": [self.point_mean, self.point_var],
            "avg": [self.avg_mean, self.avg_var],
            "tail": [self.tail_from, self.excess_mean, self.excess_var, self.excesses],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Likelihood:
        recent: deque[float] = deque(s["recent"], maxlen=_SHORT)
        return cls(s["n"], recent, *s["point"], *s["avg"], *s["tail"])


def _update(mean: float, var: float, x: float, rate: float) -> tuple[float, float]:
    """One step of an exponentially weighted mean and variance, ``x`` capped at
    ``_CAP`` standard deviations (at least ``_MIN_SD``) above the mean."""
    x = min(x, mean + _CAP * max(math.sqrt(var), _MIN_SD))
    d = x - mean
    mean += rate * d
    var = (1.0 - rate) * (var + rate * d * d)
    return mean, var
