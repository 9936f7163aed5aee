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
  raw scores' 95th percentile, once 30 points have exceeded it — so a series whose
  ordinary bursts are heavy-tailed needs a burst beyond its own extremes, while a
  Gaussian-quiet series flags the first point far out.

The statistics start from those of Gaussian noise, worth 30 points, so the first raw
scores (which may fall in an incident) cannot define the normal alone. A point whose
surprise passes 10⁻⁴ is learnt at a tenth of the weight while such points are rare
(under 1 % of recent points): an anomaly does not teach the series that anomalies are
normal, but a pattern that recurs becomes normal. Values past 6 standard deviations are
learnt as 6 (as 60 while anomalies recur, so their size is learnt too). The surprise is scored before the raw score is learnt.
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
_PRIOR_POINTS = 30.0  # weight of the prior, in points
_NOISE_MEAN, _NOISE_SD, _NOISE_Q95 = 0.534, 0.518, 1.578  # of ln(1 + z²), z ~ N(0, 1)
_TAIL = 0.05  # share of raw scores in the fitted tail
_QUANTILE_STEP = 0.05  # of the tail's threshold, in raw-score standard deviations
_SHAPE_MIN, _SHAPE_MAX = -0.2, 0.5
_MIN_EXCESSES = 30  # before the fitted tail is trusted
_ANOMALOUS = 4.0  # surprise past which a point is learnt at a reduced weight
_ANOMALY_WEIGHT = 0.1
_ANOMALY_RATE = 1.0 / 1000.0  # of the share of anomalous points
_RARE = 0.01  # anomalies more frequent than this are learnt in full
_CAP = 6.0  # learn at most this many standard deviations out
_RECURRING_CAP = 10.0  # ... times this while anomalies recur
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
    # the prior: raw scores of Gaussian noise, worth ``_PRIOR_POINTS`` points
    point_mean: float = _NOISE_MEAN
    point_var: float = _NOISE_SD**2
    avg_mean: float = _NOISE_MEAN
    avg_var: float = _NOISE_SD**2 / _SHORT
    tail_from: float = _NOISE_Q95  # the raw score exceeded by a share ``_TAIL`` of points
    excess_mean: float = 0.0  # of raw − tail_from, over the points beyond it
    excess_var: float = 0.0
    excesses: int = 0  # points learnt beyond ``tail_from``
    anomalous: float = 0.0  # recent share of points with a surprise past ``_ANOMALOUS``

    def observe(self, raw: float | None) -> float:
        """The surprise of ``raw`` (and the recent mean) before learning it; 0 for None
        and for the first ``_SHORT`` raw scores."""
        if raw is None:
            return 0.0
        recent = self.recent
        recent.append(raw)
        avg = sum(recent) / len(recent)
        out = self._surprise(raw, avg)
        self._learn(raw, avg, out)
        return out if self.n > _SHORT else 0.0

    def _surprise(self, raw: float, avg: float) -> float:
        point_sd = max(math.sqrt(self.point_var), _MIN_SD)
        avg_sd = max(math.sqrt(self.avg_var), _MIN_SD / 3.0)
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

    def _learn(self, raw: float, avg: float, surprise: float) -> None:
        self.n += 1
        hit = surprise >= _ANOMALOUS
        self.anomalous += _ANOMALY_RATE * ((1.0 if hit else 0.0) - self.anomalous)
        # a rare anomaly teaches the normal little; a recurring one is part of it
        rare = self.anomalous < _RARE
        weight = _ANOMALY_WEIGHT if hit and rare else 1.0
        cap = _CAP if rare else _CAP * _RECURRING_CAP
        rate = max(_RATE, 1.0 / (self.n + _PRIOR_POINTS)) * weight
        self._learn_tail(raw, rate, weight)
        self.point_mean, self.point_var = _update(self.point_mean, self.point_var, raw, rate, cap)
        self.avg_mean, self.avg_var = _update(self.avg_mean, self.avg_var, avg, rate, cap)

    def _learn_tail(self, raw: float, rate: float, weight: float) -> None:
        """Move ``tail_from`` towards the (1 − ``_TAIL``) quantile; learn the excesses."""
        sd = max(math.sqrt(self.point_var), _MIN_SD)
        beyond = raw > self.tail_from
        step = _QUANTILE_STEP * sd * weight
        self.tail_from += step * ((1.0 - _TAIL) - (0.0 if beyond else 1.0))
        if beyond:
            self.excesses += 1
            y = min(raw - self.tail_from, _CAP * sd)
            r = min(1.0, max(rate / _TAIL, weight / 50.0)) if self.excesses > 1 else 1.0
            self.excess_mean, self.excess_var = _update(self.excess_mean, self.excess_var, y, r)

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "recent": list(self.recent),
            "point": [self.point_mean, self.point_var],
            "avg": [self.avg_mean, self.avg_var],
            "tail": [self.tail_from, self.excess_mean, self.excess_var, self.excesses],
            "anomalous": self.anomalous,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Likelihood:
        recent: deque[float] = deque(s["recent"], maxlen=_SHORT)
        (point_mean, point_var), (avg_mean, avg_var) = s["point"], s["avg"]
        tail_from, excess_mean, excess_var, excesses = s["tail"]
        return cls(
            n=s["n"],
            recent=recent,
            point_mean=point_mean,
            point_var=point_var,
            avg_mean=avg_mean,
            avg_var=avg_var,
            tail_from=tail_from,
            excess_mean=excess_mean,
            excess_var=excess_var,
            excesses=excesses,
            anomalous=s["anomalous"],
        )


def _update(
    mean: float, var: float, x: float, rate: float, cap: float = _CAP
) -> tuple[float, float]:
    """One step of an exponentially weighted mean and variance, ``x`` capped at ``cap``
    standard deviations (at least ``_MIN_SD``) above the mean."""
    x = min(x, mean + cap * max(math.sqrt(var), _MIN_SD))
    d = x - mean
    mean += rate * d
    var = (1.0 - rate) * (var + rate * d * d)
    return mean, var
