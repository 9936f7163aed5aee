"""Cohort rules: the requests that evaluated a flag to one variant against those that
evaluated it to another (the on-cohort against the off-cohort), from the flag-variants
column of ``events_usage`` and ``events_error`` (migration 0008).

Rollups are not split by flag variant, so a cohort rule reads the warehouse: every
``interval`` the :class:`CohortWatcher` counts each cohort's errors and usage events
over the rule's window, and the rule's :class:`Evaluator` (the same lifecycle as every
rule: ``for``, pending, firing, resolved, idempotency keys, the ``flip`` annotation)
turns the reading into transitions on ``alerts.v1``, where the notifier and the flipper
read them. The evaluator's state is saved after each change, so a restarted watcher
neither fires twice nor reuses an idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiftright_server.schemas.alerts import AlertTransition, CohortRule, Rule
from shiftright_server.schemas.flag_queries import BY_VARIANT
from shiftright_server.streams.alerting.evaluator import Evaluator

#: Runs a query with parameters; answers rows of (t, variant, errors, usage events).
Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


Counts = tuple[int, int]  # errors, usage events


@dataclass(frozen=True)
class Cohorts:
    """Errors and usage events of the cohort (``variant``) and of the baseline."""

    cohort: Counts = (0, 0)
    baseline: Counts = (0, 0)


@dataclass(frozen=True)
class Reading:
    rate: float  # the cohort's errors per 1,000 usage events
    limit: float  # the rate at which the rule fires
    enough: bool  # both cohorts had min_volume usage events


def read(rule: CohortRule, c: Cohorts) -> Reading:
    """The cohort's rate and the limit the baseline sets (ratio × and/or + margin)."""
    (errors, uses), (base_errors, base_uses) = c.cohort, c.baseline
    rate = 1000 * errors / uses if uses else 0.0
    base = 1000 * base_errors / base_uses if base_uses else 0.0
    limits = []
    if rule.ratio is not None:
        limits.append(base * rule.ratio)
    if rule.margin is not None:
        limits.append(base + rule.margin)
    limit = max(limits)
    if rule.ratio is not None and base == 0:  # no baseline errors: any rate is worse
        limit = max(limit, 1000 / uses if uses else 0.0)
    enough = min(uses, base_uses) >= rule.min_volume
    return Reading(round(rate, 6), round(limit, 6), enough)


def params(rule: CohortRule, start: datetime, end: datetime, step_s: int) -> dict[str, Any]:
    return {
        "start": start,
        "end": end,
        "app": rule.scope.app,
        "env": rule.scope.env,
        "flag": rule.flag,
        "variants": [rule.variant, rule.baseline],
        "step": max(1, step_s),
    }


def sum_cohorts(rule: CohortRule, rows: Iterable[tuple[Any, ...]]) -> Cohorts:
    sums = {rule.variant: [0, 0], rule.baseline: [0, 0]}
    for _, variant, errors, uses in rows:
        if variant in sums:
            sums[variant][0] += int(errors)
            sums[variant][1] += int(uses)
    (e, u), (be, bu) = sums[rule.variant], sums[rule.baseline]
    return Cohorts((e, u), (be, bu))


def cohort_rules(rules: Iterable[Rule]) -> list[CohortRule]:
    return [r for r in rules if isinstance(r, CohortRule) and r.enabled]


def evaluate_at(
    evaluator: Evaluator, rules: Iterable[CohortRule], query: Query, now: datetime
) -> list[AlertTransition]:
    """Read every cohort rule's window ending at ``now``; the transitions it makes."""
    for rule in rules:
        start = now - timedelta(seconds=rule.window)
        rows = query(BY_VARIANT, params(rule, start, now, int(rule.window)))
        r = read(rule, sum_cohorts(rule, rows))
        evaluator.observe_cohort(rule.name, now, r.rate, r.limit, r.enough)
    return evaluator.evaluate(now)


def backtest(
    rule: CohortRule, query: Query, start: datetime, end: datetime, step_s: float
) -> list[AlertTransition]:
    """When the rule would have fired between ``start`` and ``end``: the buckets of the
    whole span read once, the window slid over them every ``step_s`` seconds."""
    step = max(1, int(step_s))
    rows = query(BY_VARIANT, params(rule, start - timedelta(seconds=rule.window), end, step))
    evaluator = Evaluator([rule])
    out: list[AlertTransition] = []
    at = start
    while at <= end:
        low = at - timedelta(seconds=rule.window)
        inside = [row for row in rows if low <= _utc(row[0]) < at]
        r = read(rule, sum_cohorts(rule, inside))
        evaluator.observe_cohort(rule.name, at, r.rate, r.limit, r.enough)
        out += evaluator.evaluate(at)
        at += timedelta(seconds=step)
    return out


def _utc(ts: datetime) -> datetime:
    from datetime import UTC

    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
