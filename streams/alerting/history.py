"""Alerting history from the warehouse: the alerts firing now, recent transitions, and
replaying stored rollups through a rule (``shiftright backtest``).

Every function takes a clickhouse-connect client (or anything with its ``query`` and
``query_row_block_stream``), so the CLI and the HTTP API read the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shiftright_server.schemas.alerts import AlertTransition, AnomalyRule, Rule

if TYPE_CHECKING:
    from shiftright_server.schemas.records import Rollup


_ALERT_COLUMNS = "rule, fingerprint, state, labels, annotations, starts_at, active_since, value, threshold, updated_at"


def _where(filters: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """``labels['app'] = …`` conditions for the given (non-empty) label filters."""
    wanted = {k: v for k, v in filters.items() if v}
    cond = " AND ".join(f"labels[{{k_{k}:String}}] = {{v_{k}:String}}" for k in wanted) or "1"
    params = {f"k_{k}": k for k in wanted} | {f"v_{k}": v for k, v in wanted.items()}
    return cond, params


def current_alerts(client: Any, app: str = "", env: str = "") -> list[dict[str, Any]]:
    """Alerts firing or pending now (``alerts_current``), firing first, oldest first."""
    cond, params = _where({"app": app, "env": env})
    sql = (
        f"SELECT {_ALERT_COLUMNS} FROM alerts_current WHERE {cond} "
        "ORDER BY state = 'firing' DESC, starts_at, active_since, rule, fingerprint"
    )
    return _rows(client.query(sql, parameters=params))


def alert_history(
    client: Any,
    app: str = "",
    env: str = "",
    rule: str = "",
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Recent transitions from ``alerts``, newest first."""
    cond, params = _where({"app": app, "env": env})
    extra = ""
    if rule:
        extra += " AND rule = {rule:String}"
        params["rule"] = rule
    if since is not None:
        extra += " AND ts >= {since:DateTime64(3)}"
        params["since"] = since
    sql = (
        "SELECT ts, rule, rule_kind, fingerprint, previous, state, labels, value, threshold, "
        f"starts_at, ends_at, seq FROM alerts FINAL WHERE {cond}{extra} "
        "ORDER BY ts DESC, rule, fingerprint, seq DESC LIMIT {limit:UInt32}"
    )
    return _rows(client.query(sql, parameters={**params, "limit": limit}))


def _rows(result: Any) -> list[dict[str, Any]]:
    return [
        {k: _utc(v) for k, v in zip(result.column_names, row, strict=True)}
        for row in result.result_rows
    ]


def _utc(value: Any) -> Any:
    """Warehouse times are UTC; some clients hand them over without a zone."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}


_ROLLUP_COLUMNS = (
    "app, env, kind, key, bucket_start, bucket_seconds, count, sums, mins, maxs, "
    "first_ts, last_ts, source_partition, emitted_at"
)


def rollup_query(rule: Rule, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """The closed rollups a rule watches between ``start`` and ``end`` (SQL, parameters)."""
    from shiftright_server.streams.alerting.measures import KEY_LABEL

    scope = rule.scope
    cond = [
        "kind = {kind:String}",
        "bucket_start >= {start:DateTime64(3)}",
        "bucket_start < {end:DateTime64(3)}",
    ]
    params: dict[str, Any] = {"kind": scope.source, "start": start, "end": end}
    for name, value in (("app", scope.app), ("env", scope.env)):
        if value != "*":
            cond.append(f"{name} = {{{name}:String}}")
            params[name] = value
    for name, value in scope.filters.items():
        if name in ("key", KEY_LABEL[scope.source]):
            cond.append("key = {key:String}")
            params["key"] = value
    where = " AND ".join(cond)
    return f"SELECT {{cols}} FROM rollups FINAL WHERE {where}", params


def read_rollups(
    client: Any,
    rule: Rule,
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[Rollup]:
    """The rollups :func:`rollup_query` selects, in bucket order; ``progress(done, total)``
    after each block read."""
    from shiftright_server.schemas.records import Rollup

    sql, params = rollup_query(rule, start, end)
    total = int(client.query(sql.replace("{cols}", "count()"), parameters=params).result_rows[0][0])
    progress(0, total)
    names = [c.strip() for c in _ROLLUP_COLUMNS.split(",")]
    found: list[Rollup] = []
    ordered = sql.replace("{cols}", _ROLLUP_COLUMNS) + " ORDER BY bucket_start, app, env, key"
    with client.query_row_block_stream(ordered, parameters=params) as blocks:
        for block in blocks:
            for row in block:
                found.append(Rollup(**{n: _utc(v) for n, v in zip(names, row, strict=True)}))
            progress(len(found), max(total, len(found)))
    return found


def warmup_for(rule: Rule) -> timedelta:
    """History read before the period so the rule starts the period as the stream would
    (windows full, baselines known; an anomaly detector past its warm-up points)."""
    from shiftright_server.streams.alerting.series import keep_seconds

    seconds = keep_seconds(rule) + rule.for_
    if isinstance(rule, AnomalyRule):  # its seasonal profile learns the hours of a week
        seconds = max(seconds, 7 * 86400.0)
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Episode:
    """One firing of one alert: from firing to resolved (None: still firing at the end)."""

    labels: dict[str, str]
    fired: datetime
    resolved: datetime | None
    value: float | None  # the value when it fired


def episodes(transitions: Iterable[AlertTransition]) -> list[Episode]:
    """Firing episodes with the labels of their series, in the order they fired."""
    open_: dict[str, AlertTransition] = {}
    done: list[Episode] = []
    for t in transitions:
        if t.state == "firing":
            open_[t.fingerprint] = t
        elif t.state == "resolved" and t.fingerprint in open_:
            f = open_.pop(t.fingerprint)
            done.append(Episode(dict(f.labels), f.ts, t.ts, f.value))
    done += [Episode(dict(f.labels), f.ts, None, f.value) for f in open_.values()]
    return sorted(done, key=lambda e: (e.fired, sorted(e.labels.items())))


def run_backtest(
    rule: Rule, rollups: list[Rollup], since: datetime, until: datetime | None
) -> list[Episode]:
    """Episodes of ``rule`` over ``rollups`` that were firing at some point after ``since``."""
    from shiftright_server.streams.alerting.backtest import backtest

    found = episodes(backtest([rule.model_copy(update={"enabled": True})], rollups, until=until))
    return [e for e in found if e.resolved is None or e.resolved > since]
