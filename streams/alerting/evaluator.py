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
from datetime import UTC, datetime
from typing import Any

from shiftright_server.schemas.alerts import (
    AbsenceRule,
    AlertState,
    AlertTransition,
    AnomalyRule,
    CohortRule,
    ErrorGroupRule,
    Rule,
)
from shiftright_server.schemas.records import ErrorGroupTransition, Rollup
from shiftright_server.streams.alerting.detector import AnomalyDetector
from shiftright_server.streams.alerting.measures import KEY_LABEL, Sample, sample_of, scope_matches
from shiftright_server.streams.alerting.series import (
    Series,
    condition,
    detector_config,
    keep_seconds,
    merge,
    trim,
)

GC_AFTER_S = 3600.0  # a quiet series is forgotten this long after it stops mattering
ANOMALY_GC_S = 8 * 86400.0  # ... but an anomaly series keeps its learnt profile this long


class Evaluator:
    def __init__(self, rules: Iterable[Rule] = (), lag_ms: int | None = None) -> None:
        #: None: a window ends at its series' newest point (closed rollups, which arrive a
        #: bucket late). A number: data is at most this far behind ``now`` (open-bucket
        #: signals), so a window slides on with the clock once its series goes quiet and an
        #: error burst that stopped resolves instead of holding its last value.
        self.lag_ms = lag_ms
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
            elif detector_config(self.rules[name]) != detector_config(new[name]):
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

    def observe_rollup(self, rollup: Rollup, anomaly: bool | None = None) -> None:
        """Feed a rollup (or an increment of one) to every rule whose scope it matches;
        with ``anomaly`` True only to anomaly rules, False to all others."""
        for rule in self.rules.values():
            if isinstance(rule, ErrorGroupRule | CohortRule):
                continue  # fed by error-group transitions and cohort counts
            if anomaly is not None and isinstance(rule, AnomalyRule) != anomaly:
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

    def observe_cohort(
        self, rule: str, ts: datetime | int, rate: float, limit: float, enough: bool
    ) -> None:
        """A cohort rule's reading (:mod:`.cohort`): the cohort's error rate, the limit it
        is compared with, and whether both cohorts had the volume."""
        found = self.rules.get(rule)
        if isinstance(found, CohortRule):
            labels = {"app": found.scope.app, "env": found.scope.env, "flag": found.flag}
            self._add(rule, labels, Sample(_ms(ts), rate, limit, float(enough), "replace"), ts)

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
            merge(pts[i], s)
        else:
            pts.insert(i, [s.ts_ms, s.num, s.den, s.volume, None])
        trim(rule, pts)

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(
        self, now: datetime | int, data_now: datetime | int | None = None
    ) -> list[AlertTransition]:
        """Transitions at ``now``. ``data_now`` (default ``now``) is how far the input is
        known to be complete: windows, staleness and silence are judged there, so a
        worker catching up after a restart does not mistake its own backlog for quiet."""
        now_ms = _ms(now)
        data_ms = now_ms if data_now is None else min(now_ms, _ms(data_now))
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
                out.extend(self._step(rule, fp, self.series[name][fp], now_ms, data_ms))
            self._forget(rule, data_ms)
        return out

    def _forget(self, rule: Rule, now: int) -> None:
        """Drop quiet series that can no longer alert (a host replaced, a feature gone);
        absence rules keep theirs, since silence is what they report."""
        if isinstance(rule, AbsenceRule):
            return
        extra = ANOMALY_GC_S if isinstance(rule, AnomalyRule) else GC_AFTER_S
        horizon = int((keep_seconds(rule) + extra) * 1000)
        by_fp = self.series[rule.name]
        for fp in [
            fp
            for fp, s in by_fp.items()
            if s.state in ("inactive", "resolved") and now - (s.last_seen or now) > horizon
        ]:
            self.seqs[f"{rule.name}|{fp}"] = by_fp.pop(fp).seq

    def _step(
        self, rule: Rule, fp: str, s: Series, now: int, data_now: int
    ) -> list[AlertTransition]:
        holding = s.state == "firing"  # hysteresis applies once firing
        cond, value, threshold = condition(rule, s, data_now, holding, self.lag_ms)
        s.value = value
        out: list[AlertTransition] = []

        def move(to: AlertState) -> None:
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
    def loads(cls, raw: bytes, rules: Iterable[Rule], lag_ms: int | None = None) -> Evaluator:
        ev = cls(rules, lag_ms)
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
    to: AlertState,
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
        previous=previous,
        state=to,
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
    if rule.flip is not None:  # subscribers are told what the alert turns off
        out["flag_flip"] = rule.flip.describe(rule.scope)
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
    config = detector_config(rule) if rule is not None else None
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
