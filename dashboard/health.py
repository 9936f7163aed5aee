"""The health page's data: per app × env, its hosts with their latest values, the hosts
that stopped reporting, and one chart per metric with a line per host."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.dashboard import queries
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import TimeRange, epoch, grid, sql_time
from shiftright_server.dashboard.warehouse import Reader
from shiftright_server.schemas.alerts import Rule, ThresholdRule

#: A host whose last report is older than this (before the range's end) is flagged.
SILENT_AFTER = timedelta(minutes=3)
LABELS = {
    "system.cpu.utilization": ("CPU", "%"),
    "system.memory.utilization": ("memory", "%"),
    "system.filesystem.utilization": ("disk", "%"),
    "system.cpu.load_average.1m": ("load (1 min)", ""),
    "app.sessions.open": ("open sessions", ""),
    "app.throughput.requests_per_second": ("throughput", "req/s"),
}


@dataclass
class Host:
    name: str
    last_seen: datetime
    silent: bool
    latest: dict[str, float | None] = field(default_factory=dict)


@dataclass
class HostGroup:
    app: str
    env: str
    index: int
    hosts: list[Host] = field(default_factory=list)
    chart: dict[str, Any] = field(default_factory=dict)  # {"t": [...], metric: {host: [...]}}


def build(reader: Reader, rng: TimeRange, scope: Scope, now: datetime) -> list[HostGroup]:
    base = {"start": sql_time(rng.start), "end": sql_time(rng.end), **scope.params()}
    groups: dict[tuple[str, str], HostGroup] = {}
    silent_before = min(rng.end, now.astimezone(UTC)) - SILENT_AFTER
    for row in reader.query(queries.HOSTS, base).dicts():
        key = (row["app"], row["env"])
        group = groups.setdefault(key, HostGroup(*key, index=len(groups)))
        last = row["last_minute"]
        group.hosts.append(Host(row["host"], last, silent=last < silent_before))
    points = grid(rng)
    index = {t: i for i, t in enumerate(points)}
    series: dict[tuple[str, str], dict[str, dict[str, list[float | None]]]] = {}
    params = {**base, "step": rng.step_s, "metrics": list(queries.HOST_METRICS)}
    for row in reader.query(queries.HOST_SERIES, params).dicts():
        key, i = (row["app"], row["env"]), index.get(epoch(row["t"]))
        if key in groups and i is not None:
            per_host = series.setdefault(key, {}).setdefault(row["metric"], {})
            per_host.setdefault(row["host"], [None] * len(points))[i] = round(row["value"], 4)
    for key, group in groups.items():
        metrics = series.get(key, {})
        group.chart = {"t": points, **{m: metrics.get(m, {}) for m in queries.HOST_METRICS}}
        for host in group.hosts:
            host.latest = {
                m: _last(metrics.get(m, {}).get(host.name)) for m in queries.HOST_METRICS
            }
    return list(groups.values())


def with_thresholds(groups: list[HostGroup], rules: list[Rule]) -> None:
    """Each threshold rule on a charted health metric, as a line on its groups' chart
    (``chart["thresholds"]``: metric → [{value, label}])."""
    for group in groups:
        lines: dict[str, list[dict[str, Any]]] = {}
        for rule in rules:
            metric = _charted_metric(rule, group)
            if metric and isinstance(rule, ThresholdRule):
                label = f"{rule.name} {rule.op} {rule.threshold:g}"
                lines.setdefault(metric, []).append({"value": rule.threshold, "label": label})
        group.chart["thresholds"] = lines


def _charted_metric(rule: Rule, group: HostGroup) -> str:
    """The health metric a rule compares on this group's charts ('' if none)."""
    scope = rule.scope
    if not rule.enabled or scope.source != "health" or not isinstance(rule, ThresholdRule):
        return ""
    if scope.app not in ("*", group.app) or scope.env not in ("*", group.env):
        return ""
    agg, _, metric = rule.measure.partition(":")
    return metric if agg in ("avg", "max", "min") and metric in queries.HOST_METRICS else ""


def _last(values: list[float | None] | None) -> float | None:
    return next((v for v in reversed(values or []) if v is not None), None)
