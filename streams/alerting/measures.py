"""From closed rollups to the measure points rules evaluate.

A point keeps a numerator and a denominator so points of several keys in one bucket can
be merged (a rule scoped to a whole app adds its features up) before the measure is
read: ``count`` n/1, ``rate`` n/bucket seconds, ``failure_rate`` 1000·failures/n (per
1,000 requests), ``avg:m`` Σm/n, ``sum:m`` Σm/1, ``max:m`` / ``min:m`` kept as extremes.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftright_server.schemas.alerts import Scope
from shiftright_server.schemas.records import Rollup

#: The label a series of each source is split by (the rollup key).
KEY_LABEL = {"usage": "feature", "error": "exception_type", "health": "host"}


@dataclass(frozen=True, slots=True)
class Sample:
    ts_ms: int
    num: float
    den: float
    volume: float  # events behind the point (the minimum-volume guard reads this)
    merge: str  # "add" (num and den add up), "add_num" (den fixed), "max", "min"

    def value(self) -> float:
        return self.num / self.den if self.den else 0.0


def scope_matches(scope: Scope, app: str, env: str, source: str, key: str) -> bool:
    if scope.source != source or scope.app not in ("*", app) or scope.env not in ("*", env):
        return False
    for name, want in scope.filters.items():
        if name in ("key", KEY_LABEL[source]) and want != key:
            return False
    return True


def sample_of(measure: str, rollup: Rollup) -> Sample | None:
    """The rollup's contribution to ``measure``; None when it does not carry the measure."""
    ts = int(rollup.bucket_start.timestamp() * 1000)
    n = float(rollup.count)
    if measure == "count":
        return Sample(ts, n, 1.0, n, "add_num")
    if measure == "rate":
        return Sample(ts, n, float(rollup.bucket_seconds), n, "add_num")
    if measure == "failure_rate":
        return Sample(ts, 1000.0 * rollup.sums.get("failures", 0.0), n, n, "add")
    agg, _, name = measure.partition(":")
    table = {"avg": rollup.sums, "sum": rollup.sums, "max": rollup.maxs, "min": rollup.mins}[agg]
    if name not in table:
        return None
    if agg == "avg":
        return Sample(ts, table[name], n, n, "add")
    return Sample(ts, table[name], 1.0, n, {"sum": "add_num"}.get(agg, agg))
