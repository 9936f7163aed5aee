"""One alert's data and the conditions each rule kind checks on it (pure).

A series keeps its points as ``[ts_ms, numerator, denominator, volume, score]`` sorted by
time (``score``: the anomaly score once the point has been scored), trimmed to what its
rule needs.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.schemas.alerts import (
    AbsenceRule,
    AlertState,
    AnomalyRule,
    ChangeRule,
    CohortRule,
    ErrorGroupRule,
    Rule,
    ThresholdRule,
)
from shiftright_server.streams.alerting.detector import AnomalyDetector, DetectorConfig
from shiftright_server.streams.alerting.measures import Sample

WEEK_S = 7 * 86400
STALE_S = 300.0  # a series with no point for window + this has no data
ANOMALY_FIRE, ANOMALY_RESOLVE = 0.5, 0.35
MeasuredRule = ThresholdRule | ChangeRule | AnomalyRule


@dataclass
class Series:
    """One alert: a rule and one set of series labels."""

    labels: dict[str, str]
    points: list[list[Any]] = field(default_factory=list)  # [ts_ms, num, den, vol, score]
    state: AlertState = "inactive"
    active_since: int | None = None
    starts_at: int | None = None
    last_seen: int | None = None  # ms; data covers up to here
    seq: int = 0
    value: float | None = None
    detector: AnomalyDetector | None = None


def condition(
    rule: Rule, s: Series, now: int, holding: bool, lag_ms: int | None = None
) -> tuple[bool, float | None, float | None]:
    """(condition holds, the value it read, the threshold it used). Threshold and change
    windows end at the newest point, or with ``lag_ms`` at ``now - lag_ms`` once that is
    later (see :class:`Evaluator`)."""
    if isinstance(rule, AbsenceRule):
        quiet = (now - s.last_seen) / 1000 if s.last_seen is not None else 0.0
        usual = sum(p[3] for p in s.points) / len(s.points) if s.points else 0.0
        return quiet >= rule.after and usual >= rule.min_volume, quiet, rule.after
    if isinstance(rule, ErrorGroupRule):
        if not s.points:
            return False, None, None
        last = s.points[-1]
        return now - last[0] < rule.resolve_after * 1000, last[1], None
    if isinstance(rule, CohortRule):
        return _cohort(s, now)
    if not s.points or now - s.points[-1][0] > (rule.window + STALE_S) * 1000:
        return False, None, None
    end = s.points[-1][0] if lag_ms is None else max(s.points[-1][0], now - lag_ms)
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, s, holding, end)
    if isinstance(rule, ChangeRule):
        return _change(rule, s, holding, end)
    return _anomaly(rule, s, holding)


def _threshold(
    rule: ThresholdRule, s: Series, holding: bool, end: int
) -> tuple[bool, float, float]:
    value = _window_value(rule, s.points, end)
    limit = rule.threshold
    if holding and rule.resolve_threshold is not None:
        limit = rule.resolve_threshold
    return _compare(value, rule.op, limit), value, limit


def _compare(value: float, op: str, limit: float) -> bool:
    return {
        ">": value > limit,
        ">=": value >= limit,
        "<": value < limit,
        "<=": value <= limit,
    }[op]


def _change(
    rule: ChangeRule, s: Series, holding: bool, end: int
) -> tuple[bool, float | None, float]:
    shift = int((rule.window if rule.compare_to == "previous_period" else WEEK_S) * 1000)
    base_pts = _in_window(s.points, end - shift, rule.window)
    limit = rule.resolve_percent if holding and rule.resolve_percent is not None else rule.percent
    if not base_pts or sum(p[3] for p in base_pts) < rule.min_volume:
        return False, None, limit
    base = _aggregate(rule.aggregate, base_pts)
    now_v = _window_value(rule, s.points, end)
    if base == 0:
        pct = 0.0 if now_v == 0 else float("inf") if now_v > 0 else float("-inf")
    else:
        pct = (now_v - base) / abs(base) * 100.0
    hit = {"up": pct >= limit, "down": pct <= -limit, "both": abs(pct) >= limit}
    return hit[rule.direction], pct, limit


def _anomaly(rule: AnomalyRule, s: Series, holding: bool) -> tuple[bool, float, float]:
    if s.detector is None:
        s.detector = AnomalyDetector(_anomaly_config(rule))
    for p in s.points:
        if p[4] is None:
            p[4] = s.detector.score(p[0], _value(p), p[3])
    if holding:  # an episode alarms once (later points score 0): hold while it lasts
        level = s.detector.level
        return level >= ANOMALY_RESOLVE, level, ANOMALY_RESOLVE
    end = s.points[-1][0]
    pts = _in_window(s.points, end, rule.window) if rule.window > 0 else s.points[-1:]
    score = max(p[4] for p in pts)
    return score >= ANOMALY_FIRE, score, ANOMALY_FIRE


def detector_config(rule: Rule) -> DetectorConfig | None:
    return _anomaly_config(rule) if isinstance(rule, AnomalyRule) else None


def _anomaly_config(rule: AnomalyRule) -> DetectorConfig:
    return DetectorConfig(
        rule.direction,
        rule.sensitivity,
        rule.min_volume,
        rule.warmup_points,
        value_is_volume=rule.measure == "count",
    )


def _window_value(rule: MeasuredRule, pts: list[list[Any]], end: int) -> float:
    return _aggregate(rule.aggregate, _in_window(pts, end, rule.window))


def _in_window(pts: list[list[Any]], end: int, window_s: float) -> list[list[Any]]:
    """Points with ts in (end − window, end] (at least the point at ``end``)."""
    lo = end - int(window_s * 1000)
    i = bisect_left(pts, lo + 1, key=lambda p: p[0])
    j = bisect_left(pts, end + 1, key=lambda p: p[0])
    if i == j:
        i = max(0, j - 1) if j and pts[j - 1][0] == end else j
    return pts[i:j]


def _aggregate(how: str, pts: list[list[Any]]) -> float:
    values = [_value(p) for p in pts]
    if not values:
        return 0.0
    if how == "last":
        return values[-1]
    if how == "sum":
        return sum(values)
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    return sum(values) / len(values)


def _value(p: list[Any]) -> float:
    return float(p[1] / p[2]) if p[2] else 0.0


def merge(p: list[Any], s: Sample) -> None:
    if s.merge == "replace":
        p[1:4] = [s.num, s.den, s.volume]
    elif s.merge == "max":
        p[1], p[3] = max(p[1], s.num), p[3] + s.volume
    elif s.merge == "min":
        p[1], p[3] = min(p[1], s.num), p[3] + s.volume
    else:
        p[1] += s.num
        p[3] += s.volume
        if s.merge == "add":
            p[2] += s.den


def _cohort(s: Series, now: int) -> tuple[bool, float | None, float | None]:
    """A cohort point is ``[ts, the cohort's error rate, its limit, 1 when both cohorts
    had the volume, -]`` (:mod:`.cohort`); the newest decides while it is fresh."""
    if not s.points or now - s.points[-1][0] > STALE_S * 1000:
        return False, None, None
    ts, rate, limit, enough = s.points[-1][:4]
    return bool(enough) and rate >= limit, rate, limit


def keep_seconds(rule: Rule) -> float:
    """How much history a series of this rule needs."""
    if isinstance(rule, ThresholdRule):
        return rule.window + STALE_S
    if isinstance(rule, AnomalyRule):  # the detector's profile spans weeks; points do not
        return rule.window + STALE_S
    if isinstance(rule, ChangeRule):
        shift = rule.window if rule.compare_to == "previous_period" else WEEK_S
        return 2 * rule.window + shift
    if isinstance(rule, ErrorGroupRule):
        return rule.resolve_after
    return 3600.0


def trim(rule: Rule, pts: list[list[Any]]) -> None:
    keep = 0.0 if isinstance(rule, ErrorGroupRule | CohortRule) else keep_seconds(rule)
    cut = pts[-1][0] - int(keep * 1000)
    drop = bisect_left(pts, cut, key=lambda p: p[0])
    if isinstance(rule, AnomalyRule):  # unscored points still have to be learnt
        drop = min(drop, next((i for i, p in enumerate(pts) if p[4] is None), drop))
    if drop:
        del pts[:drop]
