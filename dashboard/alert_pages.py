"""``/alerts`` and ``/alerts/{rule}``: what is firing or pending now, the transitions in
the range and the notifications sent, the applied rules and the silences (changed on
the rule form and the silence form, :mod:`.rule_pages`). Notifications link to
``/alerts/{rule}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard import alerts_sql as sql
from shiftright_server.dashboard.desk import AlertingDesk, DeskUnavailable
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.timerange import sql_time
from shiftright_server.dashboard.visitor import identity_of, visitor_of
from shiftright_server.dashboard.warehouse import WarehouseDown


class UnknownRule(LookupError):
    """A rule neither in the applied rule file nor with an alert in the range."""


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


def _config(ctx: PageContext) -> dict[str, Any]:
    """The applied rules and the silences ('desk_note' says why they cannot be shown)."""
    desk: AlertingDesk = ctx.request.app.state.desk
    found: dict[str, Any] = {"rules": [], "silences": [], "version": 0, "desk_note": ""}
    try:
        ruleset = desk.rules()
        found |= {"rules": ruleset.rules.rules, "version": ruleset.version}
        found["silences"] = desk.silences()
    except DeskUnavailable as exc:
        found["desk_note"] = str(exc)
    return found


def _notices(ctx: PageContext, config: dict[str, Any]) -> list[str]:
    """What the last change did, named only from the applied config (no text from the
    URL reaches the page)."""
    q = ctx.request.query_params
    names = {r.name for r in config["rules"]}
    ids = {s.id for s in config["silences"]}
    notices = []
    if q.get("saved") in names:
        notices.append(f"Rule {q['saved']} saved: version {config['version']} is applied.")
    if q.get("silenced") in ids:
        notices.append(f"Silence {q['silenced']} created.")
    if q.get("expired") and q["expired"].isalnum() and q["expired"] not in ids:
        notices.append("Silence expired.")
    owner = visitor_of(ctx.request).user
    if q.get("subscribed") and owner is not None:
        mine = identity_of(ctx.request).subscriptions.list(owner)
        for sub in (s for s in mine if s.id == q["subscribed"] and s.rule in names):
            notices.append(f"Subscribed: an e-mail to {sub.to} when {sub.rule} fires.")
    return notices


def alerts_view(ctx: PageContext, rule: str, **extra: Any) -> dict[str, Any]:
    """Everything the alerts page shows (``extra``: a silence form to show again)."""
    config = _config(ctx)
    found = _alerts(ctx, rule)
    unseen = rule and not ctx.down and not (found["now"] or found["history"])
    if unseen and rule not in {r.name for r in config["rules"]}:
        raise UnknownRule(f"rule {rule!r} is not applied and has no alert in this range")
    view = {"rule": rule, **found, **config, "notices": _notices(ctx, config)}
    return {"silence_form": {}, "silence_problem": "", **view, **extra}


@router.get("/alerts", response_class=HTMLResponse, openapi_extra=VIEW)
def alerts_page(request: Request, app: str = "", env: str = "") -> HTMLResponse:
    """Alerts firing and pending now, their history, notification outcomes, the rules
    and the silences."""
    ctx = page_context(request, app, env)
    return render(ctx, "alerts.html", **alerts_view(ctx, ""))


@router.get("/alerts/{rule}", response_class=HTMLResponse, openapi_extra=VIEW)
def rule_page(request: Request, rule: str, app: str = "", env: str = "") -> HTMLResponse:
    """One rule's alerts: now, history, notifications (notifications link here)."""
    ctx = page_context(request, app, env)
    return render(ctx, "alerts.html", **alerts_view(ctx, rule))


@router.get("/panels/alerts", response_class=HTMLResponse, openapi_extra=VIEW)
def alerts_panel(request: Request, app: str = "", env: str = "", rule: str = "") -> HTMLResponse:
    """The alerts tables alone (what the page polls)."""
    ctx = page_context(request, app, env)
    return render(ctx, "_alerts.html", rule=rule, **_alerts(ctx, rule))
