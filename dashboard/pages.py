"""The overview (``/``), health (``/health``) and usage (``/usage``) pages and their
live panels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard import compare as cmp
from shiftright_server.dashboard import health, overview, usage
from shiftright_server.dashboard.desk import applied_rules
from shiftright_server.dashboard.panel_cache import cache_report
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.scopes import Scope, Scopes
from shiftright_server.dashboard.warehouse import WarehouseDown

router = APIRouter(dependencies=[Depends(check_permission)])
VIEW = route_action(Action.VIEW)
OVERVIEW = route_action(Action.VIEW_OVERVIEW)
HEALTH = route_action(Action.VIEW_HEALTH)
USAGE = route_action(Action.VIEW_USAGE)


def _tiles(ctx: PageContext, compare: str) -> list[overview.Tile]:
    if ctx.down:
        return []
    scope, pairs = ctx.scope, ctx.pairs
    if compare:  # read every env of the app(s), then keep the asked env and the compared one
        scopes: Scopes = ctx.request.app.state.scopes
        scopes.check(ctx.scope.app, compare)  # UnknownScope: a 404 naming the envs
        scope = Scope(ctx.scope.app, "")
        pairs = [(a, e) for a, e in scopes.selected(scope) if e in (ctx.scope.env or e, compare)]
    try:
        tiles = overview.build(ctx.reader, ctx.rng, scope, pairs)
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return []
    return overview.compared(tiles, compare) if compare else tiles


@router.get("/api/openapi.json", openapi_extra=VIEW)
def openapi_schema(request: Request) -> dict[str, Any]:
    """The dashboard's HTTP API (OpenAPI 3)."""
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/api/panel-cache", openapi_extra=VIEW)
def panel_cache(request: Request) -> dict[str, Any]:
    """The shared panel cache: its limits and its hits, misses, coalesced reads, failed
    reads and evictions since the dashboard started."""
    return cache_report(request.app.state.reader)


@router.get("/", response_class=HTMLResponse, openapi_extra=OVERVIEW)
def overview_page(
    request: Request, app: str = "", env: str = "", compare: str = ""
) -> HTMLResponse:
    """Per app × env: traffic, errors, latency, host health and alerts firing; with
    ``compare=ENV`` each chart also draws that env of the same app."""
    ctx = page_context(request, app, env)
    return render(ctx, "overview.html", tiles=_tiles(ctx, compare), compare=compare)


@router.get("/panels/overview", response_class=HTMLResponse, openapi_extra=OVERVIEW)
def overview_panel(
    request: Request, app: str = "", env: str = "", compare: str = ""
) -> HTMLResponse:
    """The overview's tiles alone (what the page polls)."""
    ctx = page_context(request, app, env)
    return render(ctx, "_tiles.html", tiles=_tiles(ctx, compare), compare=compare)


def _hosts(ctx: PageContext, compare: str) -> list[health.HostGroup]:
    if ctx.down:
        return []
    try:
        groups = health.build(ctx.reader, ctx.rng, cmp.wide(ctx, compare), datetime.now(UTC))
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return []
    groups = [g for g in groups if cmp.kept(ctx, compare, g.env)]
    health.with_thresholds(groups, applied_rules(ctx.request))
    if not compare:
        return groups
    metrics = tuple(health.LABELS)
    paired = cmp.pair(groups, compare, lambda g: g.env, lambda g: g.app, lambda g: g.chart, metrics)
    return [g for g, _ in paired]


@router.get("/health", response_class=HTMLResponse, openapi_extra=HEALTH)
def health_page(request: Request, app: str = "", env: str = "", compare: str = "") -> HTMLResponse:
    """Hosts per app × env: CPU, memory, disk, load, sessions, throughput; silent hosts;
    with ``compare=ENV`` each chart also draws that env's hosts of the same app."""
    ctx = page_context(request, app, env)
    compare = cmp.checked(ctx, compare)
    groups = _hosts(ctx, compare)
    return render(ctx, "health.html", groups=groups, labels=health.LABELS, compare=compare)


@router.get("/panels/health", response_class=HTMLResponse, openapi_extra=HEALTH)
def health_panel(request: Request, app: str = "", env: str = "", compare: str = "") -> HTMLResponse:
    """The health page's hosts and charts alone (what the page polls)."""
    ctx = page_context(request, app, env)
    compare = cmp.checked(ctx, compare)
    groups = _hosts(ctx, compare)
    return render(ctx, "_hosts.html", groups=groups, labels=health.LABELS, compare=compare)


def _usage(ctx: PageContext, release: str, compare: str) -> dict[str, Any]:
    found: dict[str, Any] = {"features": [], "routes": [], "origins": usage.ORIGINS}
    found["compare"] = compare
    if ctx.down:
        return found
    try:
        rows, found["routes"] = usage.lists(
            ctx.reader, ctx.rng, cmp.wide(ctx, compare), ctx.scope, release
        )
        rows = [r for r in rows if cmp.kept(ctx, compare, r["env"])]
        if compare:
            paired = cmp.pair(
                rows,
                compare,
                lambda r: r["env"],
                lambda r: (r["app"], r["name"]),
                lambda r: r["chart"],
                ("uses",),
            )
            rows = [{**r, "versus": other} for r, other in paired]
        found["features"] = rows
    except WarehouseDown as exc:
        ctx.down = str(exc)
    return found


@router.get("/usage", response_class=HTMLResponse, openapi_extra=USAGE)
def usage_page(
    request: Request, app: str = "", env: str = "", release: str = "", compare: str = ""
) -> HTMLResponse:
    """The most used features and routes: uses, users, customers, failures, durations,
    trend, origin; ``release`` narrows them to one release; ``compare=ENV`` draws that
    env's trend of each feature beside it."""
    ctx = page_context(request, app, env)
    found = _usage(ctx, release.strip(), cmp.checked(ctx, compare))
    return render(ctx, "usage.html", release=release.strip(), **found)


@router.get("/panels/usage", response_class=HTMLResponse, openapi_extra=USAGE)
def usage_panel(
    request: Request, app: str = "", env: str = "", release: str = "", compare: str = ""
) -> HTMLResponse:
    """The usage tables alone (what the page polls)."""
    ctx = page_context(request, app, env)
    found = _usage(ctx, release.strip(), cmp.checked(ctx, compare))
    return render(ctx, "_features.html", release=release.strip(), **found)
