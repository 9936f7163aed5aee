"""``/alerts`` and ``/alerts/{rule}``: what is firing or pending now, the transitions in
the range and the notifications sent (read-only; rules are managed with ``shiftright
rules``). Notifications link to ``/alerts/{rule}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard import alerts_sql as sql
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.timerange import sql_time
from shiftright_server.dashboard.warehouse import WarehouseDown


class UnknownRule(LookupError):
    """A rule with no alert in the warehouse in the range."""


router = APIRouter(dependencies=[Depends(check_permission)])
VIEW = route_action(Action.VIEW)


def _alerts(ctx: PageContext, rule: str) -> dict[str, Any]:
    found: dict[str, Any] = {"now": [], "history": [], "notifications": []}
    if ctx.down:
        return found
    span = {"start": sql_time(ctx.rng.start), "end": sql_time(ctx.rng.end)}
    params = {**span, **ctx.scope.params(), "rule": rule}
    try:
        found["now"] = ctx.reader.query(sql.NOW, params).dicts()
        found["history"] = ctx.reader.query(sql.HISTORY, params).dicts()
        found["notifications"] = ctx.reader.query(sql.NOTIFICATIONS, params).dicts()
    except WarehouseDown as exc:
        ctx.down = str(exc)
    return found


def _page(request: Request, app: str, env: str, rule: str, template: str) -> HTMLResponse:
    ctx = page_context(request, app, env)
    found = _alerts(ctx, rule)
    if rule and not ctx.down and not (found["now"] or found["history"]):
        raise UnknownRule(f"rule {rule!r} has no alert in this range (it may not have fired)")
    return render(ctx, template, rule=rule, **found)


@router.get("/alerts", response_class=HTMLResponse, openapi_extra=VIEW)
def alerts_page(request: Request, app: str = "", env: str = "") -> HTMLResponse:
    """Alerts firing and pending now, their history and notification outcomes."""
    return _page(request, app, env, "", "alerts.html")


@router.get("/alerts/{rule}", response_class=HTMLResponse, openapi_extra=VIEW)
def rule_page(request: Request, rule: str, app: str = "", env: str = "") -> HTMLResponse:
    """One rule's alerts: now, history, notifications (notifications link here)."""
    return _page(request, app, env, rule, "alerts.html")


@router.get("/panels/alerts", response_class=HTMLResponse, openapi_extra=VIEW)
def alerts_panel(request: Request, app: str = "", env: str = "", rule: str = "") -> HTMLResponse:
    """The alerts tables alone (what the page polls)."""
    ctx = page_context(request, app, env)
    return render(ctx, "_alerts.html", rule=rule, **_alerts(ctx, rule))
