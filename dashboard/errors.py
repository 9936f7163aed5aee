"""The error groups list and one group's page: what the queries in :mod:`.errors_sql`
return, shaped for the templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shiftright_server.dashboard import errors_sql as sql
from shiftright_server.dashboard.overview import markers
from shiftright_server.dashboard.scopes import Scope
from shiftright_server.dashboard.timerange import TimeRange, epoch, grid, spans, sql_time
from shiftright_server.dashboard.warehouse import Reader, Row


class UnknownGroup(LookupError):
    """No group with this id (in this app)."""


@dataclass(frozen=True)
class GroupFilter:
    status: str = ""
    text: str = ""
    release: str = ""
    sort: str = "events"


def list_groups(
    reader: Reader, rng: TimeRange, scope: Scope, f: GroupFilter, compare: str = ""
) -> list[Row]:
    """Up to 100 groups with errors in the range, each with badges and a sparkline (and
    with ``compare``, the same groups' errors in that env beside it)."""
    base = {"start": sql_time(rng.start), "end": sql_time(rng.end), **scope.params()}
    query = sql.GROUPS.replace("{order}", sql.SORTS[f.sort])
    params = {**base, "status": f.status, "text": f.text, "release": f.release}
    groups = reader.query(query, params).dicts()
    if not groups:
        return groups
    ids = [g["group_id"] for g in groups]
    badges = {
        (r["app"], r["group_id"]): set(r["kinds"])
        for r in reader.query(sql.BADGES, {**base, "ids": ids}).dicts()
    }
    points = grid(rng)
    counts = _series(reader, {**base, "ids": ids, "step": rng.step_s}, points)
    theirs: dict[tuple[str, str], list[int]] = {}
    if compare:
        theirs = _series(reader, {**base, "ids": ids, "step": rng.step_s, "env": compare}, points)
    for g in groups:
        key = (g["app"], g["group_id"])
        g["badges"] = _badges(g, badges.get(key, set()), rng)
        g["chart"] = {"t": points, "events": counts.get(key, [0] * len(points))}
        if compare:
            g["chart"]["compare"] = {"events": theirs.get(key, [0] * len(points))}
            g["chart"]["compare_env"] = compare
    return groups


def _series(
    reader: Reader, params: dict[str, Any], points: list[int]
) -> dict[tuple[str, str], list[int]]:
    """Errors per bucket of each listed group (in ``params["env"]``; '' = every env)."""
    index = {t: i for i, t in enumerate(points)}
    counts: dict[tuple[str, str], list[int]] = {}
    for r in reader.query(sql.GROUP_SERIES, params).dicts():
        key = (r["app"], r["group_id"])
        i = index.get(epoch(r["t"]))
        if i is not None:
            counts.setdefault(key, [0] * len(points))[i] = r["events"]
    return counts


def _badges(group: Row, kinds: set[str], rng: TimeRange) -> list[str]:
    out = []
    if group["first_seen"] >= rng.start:
        out.append("new")
    out += [k for k in ("regressed", "spiking") if k in kinds]
    return out


@dataclass
class GroupPage:
    group: Row
    latest: Row | None
    envs: list[Row] = field(default_factory=list)
    releases: list[Row] = field(default_factory=list)
    chart: dict[str, Any] = field(default_factory=dict)
    health: list[Row] = field(default_factory=list)  # metric, at_errors, usual, ratio, samples


def find_group(reader: Reader, group_id: str, app: str) -> Row:
    """A group's current state; UnknownGroup when there is none (or several apps have it)."""
    found = reader.query(sql.GROUP, {"group_id": group_id, "app": app}).dicts()
    if not found:
        where = f" in app {app!r}" if app else ""
        raise UnknownGroup(f"no error group {group_id!r}{where}")
    if len(found) > 1:
        apps = ", ".join(repr(g["app"]) for g in found)
        raise UnknownGroup(f"group {group_id!r} is in several apps ({apps}); add app= to the URL")
    return found[0]


def group_page(reader: Reader, rng: TimeRange, group_id: str, app: str) -> GroupPage:
    """A group's state, its latest error and its timeline; UnknownGroup when absent."""
    group = find_group(reader, group_id, app)
    key = {"group_id": group_id, "app": group["app"]}
    latest = reader.query(sql.LATEST_EVENT, key).dicts()
    page = GroupPage(group, latest[0] if latest else None)
    if page.latest is not None:
        page.latest["frames"] = [_frame(f) for f in page.latest["frames"]]
    page.envs = [
        {
            "env": env,
            "count": n,
            "first_seen": group["env_first_seen"].get(env),
            "last_seen": group["env_last_seen"].get(env),
        }
        for env, n in sorted(group["env_count"].items(), key=lambda kv: -kv[1])
    ]
    page.releases = [
        {"release": rel, "count": n, "last_seen": group["release_last_seen"].get(rel)}
        for rel, n in sorted(group["release_count"].items(), key=lambda kv: -kv[1])
    ]
    page.chart = _timeline(reader, rng, key)
    span = {"start": sql_time(rng.start), "end": sql_time(rng.end), **spans(rng)}
    page.health = reader.query(sql.health_at_errors(span), {**span, "group_id": group_id}).dicts()
    return page


def _timeline(reader: Reader, rng: TimeRange, key: dict[str, str]) -> dict[str, Any]:
    points = grid(rng)
    index = {t: i for i, t in enumerate(points)}
    params = {**key, "start": sql_time(rng.start), "end": sql_time(rng.end), "step": rng.step_s}
    per_env: dict[str, list[int]] = {}
    for r in reader.query(sql.GROUP_TIMELINE, params).dicts():
        i = index.get(epoch(r["t"]))
        if i is not None:
            per_env.setdefault(r["env"], [0] * len(points))[i] = r["events"]
    changes = markers(reader, {**params, "env": ""})
    marks = sorted((m for ms in changes.values() for m in ms), key=lambda m: m["t"])
    return {"t": points, "envs": per_env, "markers": marks}


FRAME_FIELDS = ("module", "function", "filename", "lineno", "in_app")


def _frame(raw: Any) -> dict[str, Any]:
    """A stack frame as a dict (the client returns named tuples as tuples or dicts)."""
    return dict(raw) if isinstance(raw, dict) else dict(zip(FRAME_FIELDS, raw, strict=True))
