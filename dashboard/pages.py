"""The overview (``/``), health (``/health``) and usage (``/usage``) pages and their
live panels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard import health, overview, usage
from shiftright_server.dashboard.desk import applied_rules
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


def _hosts(ctx: PageContext) -> list[health.HostGroup]:
    if ctx.down:
        return []
    try:
        groups = health.build(ctx.reader, ctx.rng, ctx.scope, datetime.now(UTC))
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return []
    health.with_thresholds(groups, applied_rules(ctx.request))
    return groups


@router.get("/health", response_class=HTMLResponse, openapi_extra=HEALTH)
def health_page(request: Request, app: str = "", env: str = "") -> HTMLResponse:
    """Hosts per app × env: CPU, memory, disk, load, sessions, throughput; silent hosts."""
    ctx = page_context(request, app, env)
    return render(ctx, "health.html", groups=_hosts(ctx), labels=health.LABELS)


@router.get("/panels/health", response_class=HTMLResponse, openapi_extra=HEALTH)
def health_panel(request: Request, app: str = "", env: str = "") -> HTMLResponse:
    """The health page's hosts and charts alone (what the page polls)."""
    ctx = page_context(request, app, env)
    return render(ctx, "_hosts.html", groups=_hosts(ctx), labels=health.LABELS)


def _usage(ctx: PageContext, release: str) -> dict[str, Any]:
    found: dict[str, Any] = {"features": [], "routes": [], "origins": usage.ORIGINS}
    if ctx.down:
        return found
    try:
        found["features"] = usage.features(ctx.reader, ctx.rng, ctx.scope, release)
        found["routes"] = usage.routes(ctx.reader, ctx.rng, ctx.scope, release)
    except WarehouseDown as exc:
        ctx.down = str(exc)
    return found


@router.get("/usage", response_class=HTMLResponse, openapi_extra=USAGE)
def usage_page(request: Request, app: str = "", env: str = "", release: str = "") -> HTMLResponse:
    """The most used features and routes: uses, users, customers, failures, durations,
    trend, origin; ``release`` narrows them to one release."""
    ctx = page_context(request, app, env)
    return render(ctx, "usage.html", release=release.strip(), **_usage(ctx, release.strip()))


@router.get("/panels/usage", response_class=HTMLResponse, openapi_extra=USAGE)
def usage_panel(request: Request, app: str = "", env: str = "", release: str = "") -> HTMLResponse:
    """The usage tables alone (what the page polls)."""
    ctx = page_context(request, app, env)
    return render(ctx, "_features.html", release=release.strip(), **_usage(ctx, release.strip()))
