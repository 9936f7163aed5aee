"""The rule evaluator: measure points in, alert transitions out. Pure and deterministic.

Contract:

* Points arrive per (rule, series) through :meth:`Evaluator.observe` (or
  :meth:`observe_rollup`, which feeds every rule whose scope matches a closed rollup, and
  :meth:`observe_error_transition` for error-group rules). Points carry event time.
* :meth:`evaluate` takes ``now`` (the caller's clock: the stream's watermark or wall
  time; nothing here reads a clock) and returns the transitions of every alert, in a
  stable order. Lifecycle: inactive → pending (condition holds, waiting out ``for``) →
  firing → resolved; pending falls back to inactive when the condition stops holding
  first. A firing threshold alert resolves only once the resolve threshold is crossed
  (hysteresis); change rules likewise use ``resolve_percent``.
* Measures read the sliding ``window`` that ends at the series' newest point; a series
  whose newest point is older than ``window + stale`` has no data, and its condition is
  false (absence rules are what notice silence).
* :meth:`dumps` / :meth:`loads` save and restore everything (points, detector state,
  lifecycle, transition counters), so the same inputs after a restore give the same
  transitions and idempotency keys.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.alerts import (
    AbsenceRule,
    AlertTransition,
    AnomalyRule,
    ChangeRule,
    ErrorGroupRule,
    Rule,
    ThresholdRule,
)
from schemas.records import ErrorGroupTransition, Rollup
from streams.alerting.detector import AnomalyDetector, DetectorConfig
from streams.alerting.measures import KEY_LABEL, Sample, sample_of, scope_matches

WEEK_S = 7 * 86400
STALE_S = 300.0  # a series with no point for window + this has no data
GC_AFTER_S = 3600.0  # a quiet series is forgotten this long after it stops mattering
ANOMALY_GC_S = 8 * 86400.0  # ... but an anomaly series keeps its learnt profile this long
ANOMALY_FIRE, ANOMALY_RESOLVE = 0.5, 0.35
MeasuredRule = ThresholdRule | ChangeRule | AnomalyRule


@dataclass
class Series:
    """One alert: a rule and one set of series labels."""

    labels: dict[str, str]
    points: list[list[Any]] = field(default_factory=list)  # [ts_ms, num, den, vol, score]
    state: str = "inactive"
    active_since: int | None = None
    starts_at: int | None = None
    last_seen: int | None = None  # ms; data covers up to here
    seq: int = 0
    value: float | None = None
    detector: AnomalyDetector | None = None


class Evaluator:
    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: dict[str, Rule] = {}
        self.series: dict[str, dict[str, Series]] = {}  # rule -> fingerprint -> series
        self._retired: dict[str, dict[str, Series]] = {}
        #: last sequence number of alerts no longer held ("rule|fingerprint"), so an alert
        #: that comes back continues its numbering and never reuses an idempotency key
        self.seqs: dict[str, int] = {}
        self.set_rules(rules)

    # -- rules ------------------------------------------------------------------------------
    def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replace the rule set. Alerts of removed or disabled rules resolve at the next
        :meth:`evaluate`; alerts of changed rules keep their data and lifecycle."""
        new = {r.name: r for r in rules if r.enabled}
        for name in list(self.series):
            if name not in new:
                self._retired[name] = self.series.pop(name)
            elif _detector_config(self.rules[name]) != _detector_config(new[name]):
                for series in self.series[name].values():  # re-learn with the new settings
                    series.detector = None
                    for p in series.points:
                        p[4] = None
        self.rules = new

    # -- input ------------------------------------------------------------------------------
    def observe(
        self,
        rule: str,
        labels: dict[str, str],
        ts: datetime | int,
        value: float,
        volume: float | None = None,
        seen_until: datetime | int | None = None,
    ) -> None:
        """One measure point (value, and the events behind it for volume guards)."""
        vol = 1.0 if volume is None else volume
        found = self.rules.get(rule)
        if found is not None:  # the scope's app and env, unless the caller named them
            scoped = {
                k: v for k, v in (("app", found.scope.app), ("env", found.scope.env)) if v != "*"
            }
            labels = scoped | labels
        self._add(rule, labels, Sample(_ms(ts), value, 1.0, vol, "replace"), seen_until)

    def observe_rollup(self, rollup: Rollup) -> None:
        """Feed a closed rollup to every rule whose scope it matches."""
        for rule in self.rules.values():
            if isinstance(rule, ErrorGroupRule):
                continue
            scope = rule.scope
            if not scope_matches(scope, rollup.app, rollup.env, rollup.kind, rollup.key):
                continue
            labels = {"app": rollup.app, "env": rollup.env}
            if scope.per_key:
                labels[KEY_LABEL[rollup.kind]] = rollup.key
            measure = "count" if isinstance(rule, AbsenceRule) else rule.measure
            sample = sample_of(measure, rollup)
            if sample is not None:
                self._add(rule.name, labels, sample, rollup.last_ts)

    def observe_error_transition(self, t: ErrorGroupTransition) -> None:
        for rule in self.rules.values():
            if not isinstance(rule, ErrorGroupRule) or t.kind not in rule.transitions:
                continue
            scope = rule.scope
            if scope.app not in ("*", t.app) or scope.env not in ("*", t.env):
                continue
            fields = {"group_id": t.group_id, "exception_type": t.exception_type}
            if any(fields.get(k) != v for k, v in scope.filters.items()):
                continue
            labels = {"app": t.app, "env": t.env, "group_id": t.group_id}
            labels |= {"exception_type": t.exception_type, "transition": t.kind}
            sample = Sample(_ms(t.ts), float(t.minute_count or t.count), 1.0, 1.0, "replace")
            self._add(rule.name, labels, sample, t.ts)

    def _add(
        self, rule_name: str, labels: dict[str, str], s: Sample, seen: datetime | int | None
    ) -> None:
        rule = self.rules.get(rule_name)
        if rule is None:
            return
        full = _alert_labels(rule, labels)
        fp = fingerprint(full)
        series = self.series.setdefault(rule_name, {}).get(fp)
        if series is None:
            series = self.series[rule_name][fp] = Series(full)
            series.seq = self.seqs.pop(f"{rule_name}|{fp}", 0)
        until = s.ts_ms if seen is None else _ms(seen)
        series.last_seen = max(series.last_seen or until, until)
        pts = series.points
        i = bisect_left(pts, s.ts_ms, key=lambda p: p[0])
        if i < len(pts) and pts[i][0] == s.ts_ms:
            _merge(pts[i], s)
        else:
            pts.insert(i, [s.ts_ms, s.num, s.den, s.volume, None])
        _trim(rule, pts)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, now: datetime | int) -> list[AlertTransition]:
        now_ms = _ms(now)
        out: list[AlertTransition] = []
        for name in sorted(self._retired):
            for fp in sorted(self._retired[name]):
                s = self._retired[name][fp]
                if s.state == "firing":
                    out.append(_transition(name, "removed", None, s, fp, "resolved", now_ms))
                self.seqs[f"{name}|{fp}"] = s.seq
        self._retired.clear()
        for name in sorted(self.series):
            rule = self.rules[name]
            for fp in sorted(self.series[name]):
                out.extend(self._step(rule, fp, self.series[name][fp], now_ms))
            self._forget(rule, now_ms)
        return out

    def _forget(self, rule: Rule, now: int) -> None:
        """Drop quiet series that can no longer alert (a host replaced, a feature gone);
        absence rules keep theirs, since silence is what they report."""
        if isinstance(rule, AbsenceRule):
            return
        extra = ANOMALY_GC_S if isinstance(rule, AnomalyRule) else GC_AFTER_S
        horizon = int((_keep_seconds(rule) + extra) * 1000)
        by_fp = self.series[rule.name]
        for fp in [
            fp
            for fp, s in by_fp.items()
            if s.state in ("inactive", "resolved") and now - (s.last_seen or now) > horizon
        ]:
            self.seqs[f"{rule.name}|{fp}"] = by_fp.pop(fp).seq

    def _step(self, rule: Rule, fp: str, s: Series, now: int) -> list[AlertTransition]:
        holding = s.state == "firing"  # hysteresis applies once firing
        cond, value, threshold = _condition(rule, s, now, holding)
        s.value = value
        out: list[AlertTransition] = []

        def move(to: str) -> None:
            out.append(_transition(rule.name, rule.kind, rule, s, fp, to, now, threshold))

        if cond and s.state in ("inactive", "resolved"):
            s.active_since = now
            if rule.for_ > 0:
                move("pending")
        if cond and s.state in ("inactive", "resolved", "pending"):
            since = s.active_since if s.active_since is not None else now
            if now - since >= rule.for_ * 1000:
                s.starts_at = now
                move("firing")
        elif not cond and s.state == "pending":
            s.active_since = None
            move("inactive")
        elif not cond and s.state == "firing":
            move("resolved")
            s.active_since = s.starts_at = None
        return out

    # -- persistence ------------------------------------------------------------------------
    def dumps(self) -> bytes:
        state = {
            "series": {
                name: {fp: _series_state(s) for fp, s in by_fp.items()}
                for name, by_fp in self.series.items()
            },
            "retired": {
                name: {fp: _series_state(s) for fp, s in by_fp.items()}
                for name, by_fp in self._retired.items()
            },
            "seqs": self.seqs,
        }
        return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def loads(cls, raw: bytes, rules: Iterable[Rule]) -> Evaluator:
        ev = cls(rules)
        state = json.loads(raw)
        for name, by_fp in state["series"].items():
            rule = ev.rules.get(name)
            target = ev.series if rule is not None else ev._retired
            target[name] = {fp: _series_load(v, rule) for fp, v in by_fp.items()}
        for name, by_fp in state["retired"].items():
            ev._retired.setdefault(name, {}).update(
                {fp: _series_load(v, None) for fp, v in by_fp.items()}
            )
        ev.seqs = dict(state["seqs"])
        return ev


# -- conditions -----------------------------------------------------------------------------


def _condition(
    rule: Rule, s: Series, now: int, holding: bool
) -> tuple[bool, float | None, float | None]:
    """(condition holds, the value it read, the threshold it used)."""
    if isinstance(rule, AbsenceRule):
        quiet = (now - s.last_seen) / 1000 if s.last_seen is not None else 0.0
        usual = sum(p[3] for p in s.points) / len(s.points) if s.points else 0.0
        return quiet >= rule.after and usual >= rule.min_volume, quiet, rule.after
    if isinstance(rule, ErrorGroupRule):
        if not s.points:
            return False, None, None
        last = s.points[-1]
        return now - last[0] < rule.resolve_after * 1000, last[1], None
    if not s.points or now - s.points[-1][0] > (rule.window + STALE_S) * 1000:
        return False, None, None
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, s, holding)
    if isinstance(rule, ChangeRule):
        return _change(rule, s, holding)
    return _anomaly(rule, s, holding)


def _threshold(rule: ThresholdRule, s: Series, holding: bool) -> tuple[bool, float, float]:
    value = _window_value(rule, s.points, s.points[-1][0])
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


def _change(rule: ChangeRule, s: Series, holding: bool) -> tuple[bool, float | None, float]:
    end = s.points[-1][0]
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
    end = s.points[-1][0]
    pts = _in_window(s.points, end, rule.window) if rule.window > 0 else s.points[-1:]
    score = max(p[4] for p in pts)
    limit = ANOMALY_RESOLVE if holding else ANOMALY_FIRE
    return score >= limit, score, limit


def _detector_config(rule: Rule) -> DetectorConfig | None:
    return _anomaly_config(rule) if isinstance(rule, AnomalyRule) else None


def _anomaly_config(rule: AnomalyRule) -> DetectorConfig:
    return DetectorConfig(rule.direction, rule.sensitivity, rule.min_volume, rule.warmup_points)


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


def _merge(p: list[Any], s: Sample) -> None:
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


def _keep_seconds(rule: Rule) -> float:
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


def _trim(rule: Rule, pts: list[list[Any]]) -> None:
    keep = 0.0 if isinstance(rule, ErrorGroupRule) else _keep_seconds(rule)
    cut = pts[-1][0] - int(keep * 1000)
    drop = bisect_left(pts, cut, key=lambda p: p[0])
    if isinstance(rule, AnomalyRule):  # unscored points still have to be learnt
        drop = min(drop, next((i for i, p in enumerate(pts) if p[4] is None), drop))
    if drop:
        del pts[:drop]


# -- records --------------------------------------------------------------------------------


def _alert_labels(rule: Rule, series: dict[str, str]) -> dict[str, str]:
    base = {"alertname": rule.name, "severity": rule.severity}
    return dict(sorted((base | rule.labels | series).items()))


def fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits identifying an alert by its labels (like Alertmanager's)."""
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def idempotency_key(rule: str, fp: str, seq: int, state: str) -> str:
    return hashlib.sha256(f"{rule}|{fp}|{seq}|{state}".encode()).hexdigest()[:32]


def _transition(
    name: str,
    kind: str,
    rule: Rule | None,
    s: Series,
    fp: str,
    to: str,
    now: int,
    threshold: float | None = None,
) -> AlertTransition:
    previous = s.state
    s.seq += 1
    s.state = to
    value = s.value
    annotations = _annotations(rule, s.labels, value, threshold) if rule else {}
    return AlertTransition(
        rule=name,
        rule_kind=kind,
        fingerprint=fp,
        labels=s.labels,
        annotations=annotations,
        previous=previous,  # type: ignore[arg-type]  # a Series state is an AlertState
        state=to,  # type: ignore[arg-type]
        ts=_at(now),
        active_since=_dt(s.active_since),
        starts_at=_dt(s.starts_at),
        ends_at=_at(now) if to == "resolved" else None,
        value=value if value is None or abs(value) != float("inf") else None,
        threshold=threshold,
        seq=s.seq,
        idempotency_key=idempotency_key(name, fp, s.seq, to),
        action_webhook=rule.action_webhook if rule else None,
    )


def _annotations(
    rule: Rule, labels: dict[str, str], value: float | None, threshold: float | None
) -> dict[str, str]:
    """Rule annotations with ``{value}``, ``{threshold}`` and ``{<label>}`` filled in."""
    fill = dict(labels)
    fill["value"] = "" if value is None else f"{value:.4g}"
    fill["threshold"] = "" if threshold is None else f"{threshold:.4g}"
    out = {}
    for key, text in rule.annotations.items():
        for name, val in fill.items():
            text = text.replace("{" + name + "}", val)
        out[key] = text
    return out


def _series_state(s: Series) -> dict[str, Any]:
    return {
        "labels": s.labels,
        "points": s.points,
        "state": s.state,
        "active_since": s.active_since,
        "starts_at": s.starts_at,
        "last_seen": s.last_seen,
        "seq": s.seq,
        "value": s.value,
        "detector": s.detector.to_state() if s.detector else None,
    }


def _series_load(v: dict[str, Any], rule: Rule | None) -> Series:
    config = _detector_config(rule) if rule is not None else None
    det = v["detector"]
    return Series(
        v["labels"],
        v["points"],
        v["state"],
        v["active_since"],
        v["starts_at"],
        v["last_seen"],
        v["seq"],
        v["value"],
        AnomalyDetector.from_state(config, det) if det and config else None,
    )


def _ms(ts: datetime | int) -> int:
    return ts if isinstance(ts, int) else int(ts.timestamp() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else _at(ms)
