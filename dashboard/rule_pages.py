"""Changing alerting from the dashboard: the rule form (``/alerts/rule-form``: create or
edit a rule, its backtest over the last days before saving) and silences (create,
expire). Each change goes to the alerting service (:mod:`.desk`), the store the CLI and
the HTTP API change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shiftright_server.dashboard import rule_form as rf
from shiftright_server.dashboard.alert_pages import alerts_view
from shiftright_server.dashboard.audit_trail import actor, record_change
from shiftright_server.dashboard.desk import (
    AlertingDesk,
    Backtest,
    DeskUnavailable,
    SilenceInvalid,
    SilenceRefused,
    VersionConflict,
)
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

router = APIRouter(dependencies=[Depends(check_permission)])
EDIT_RULES = route_action(Action.RULES_EDIT)
EDIT_SILENCES = route_action(Action.SILENCES_EDIT)
BACKTEST_DAYS: Final = (1, 3, 7, 14)
#: Matchers are typed one per line or comma-separated (a comma inside a regex stays).
_MATCHERS_SPLIT: Final = re.compile(r"\n|,\s*(?=[A-Za-z_][A-Za-z0-9_.]*\s*(?:=~|!~|!=|>=|<=|=))")


def _desk(request: Request) -> AlertingDesk:
    desk: AlertingDesk = request.app.state.desk
    return desk


def _render_form(
    ctx: PageContext,
    form: rf.RuleForm,
    status: int = 200,
    backtest: Backtest | None = None,
    days: int = 3,
    unavailable: str = "",
) -> HTMLResponse:
    return render(
        ctx,
        "rule_form.html",
        status,
        form=form,
        kinds=rf.KINDS,
        kind_fields=rf.KIND_FIELDS,
        transitions=rf.TRANSITIONS,
        backtest=backtest,
        chart=_chart(backtest, form) if backtest else None,
        days=days,
        day_choices=BACKTEST_DAYS,
        unavailable=unavailable,
    )


@router.get("/alerts/rule-form", response_class=HTMLResponse, openapi_extra=EDIT_RULES)
def rule_form_page(
    request: Request, name: str = "", kind: str = "threshold", app: str = "", env: str = ""
) -> HTMLResponse:
    """The form for a new rule (``kind``), or for the rule ``name`` of the applied file."""
    ctx = page_context(request, app, env)
    try:
        ruleset = _desk(request).rules()
    except DeskUnavailable as exc:
        return _render_form(ctx, rf.blank(kind, app, env), 503, unavailable=str(exc))
    if not name:
        form = rf.blank(kind, app, env)
        form.version = ruleset.version
        return _render_form(ctx, form)
    mapping = rf.rule_mapping(rf.rule_file_data(ruleset.text), name)
    if mapping is None:
        raise HTTPException(404, f"no rule {name!r} in the applied rule file")
    return _render_form(ctx, rf.from_rule(mapping, ruleset.version))


@router.post("/alerts/rule-form", response_class=HTMLResponse, openapi_extra=EDIT_RULES)
async def rule_form_post(request: Request) -> Response:
    """Check the form: its problems by field; else its backtest (``intent=backtest``) or
    the rule file applied with it (``intent=save``)."""
    posted = await request.form()
    fields = {k: v for k, v in posted.items() if isinstance(v, str)}
    transitions = [t for t in posted.getlist("transitions") if isinstance(t, str)]
    return await run_in_threadpool(_submit, request, fields, transitions)


def _submit(request: Request, fields: dict[str, str], transitions: list[str]) -> Response:
    ctx = page_context(request)
    intent = fields.pop("intent", "backtest")
    days = _days(fields.pop("days", "3"))
    form = rf.parse_form(fields, transitions)
    desk = _desk(request)
    try:
        ruleset = desk.rules()
    except DeskUnavailable as exc:
        return _render_form(ctx, form, 503, days=days, unavailable=str(exc))
    text, index = rf.new_text(ruleset.text, form)
    rule = rf.check(form, text, index)
    if rule is None:
        return _render_form(ctx, form, 422, days=days)
    try:
        if intent == "save":
            desk.apply(text, actor(request), form.version)
            old = next((r for r in ruleset.rules.rules if r.name == rule.name), None)
            before = None if old is None else old.model_dump(mode="json")
            record_change(request, "rules.apply", rule.name, before, rule.model_dump(mode="json"))
            return RedirectResponse(ctx.link("/alerts", saved=rule.name), status_code=303)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        found = desk.backtest(rule, end - timedelta(days=days), end)
    except VersionConflict as exc:
        form.general.append(str(exc))
        return _render_form(ctx, form, 409, days=days)
    except DeskUnavailable as exc:
        return _render_form(ctx, form, 503, days=days, unavailable=str(exc))
    return _render_form(ctx, form, backtest=found, days=days)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        return 3
    return days if days in BACKTEST_DAYS else 3


def _chart(found: Backtest, form: rf.RuleForm) -> dict[str, Any]:
    """What the page's chart draws: the measure, the firing spans, the threshold."""
    threshold = form.values.get("threshold") if form.kind == "threshold" else None
    try:
        line = float(threshold) if threshold else None
    except ValueError:
        line = None
    return {
        "t": [int(ts.timestamp()) for ts, _ in found.points],
        "v": [value for _, value in found.points],
        "fired": [
            [int(f.fired.timestamp()), int((f.resolved or found.end).timestamp())]
            for f in found.fired
        ],
        "threshold": line,
        "start": int(found.start.timestamp()),
        "end": int(found.end.timestamp()),
    }


# -- silences ---------------------------------------------------------------------------
@router.post("/alerts/silences", response_class=HTMLResponse, openapi_extra=EDIT_SILENCES)
async def silence_post(request: Request) -> Response:
    """Make a silence: matchers (one per line or comma-separated), a duration, a comment."""
    posted = await request.form()
    fields = {k: v.strip() for k, v in posted.items() if isinstance(v, str)}
    return await run_in_threadpool(_silence, request, fields)


def _silence(request: Request, fields: dict[str, str]) -> Response:
    ctx = page_context(request)
    matchers = [m.strip() for m in _MATCHERS_SPLIT.split(fields.get("matchers", ""))]
    try:
        made = _desk(request).add_silence(
            [m for m in matchers if m],
            fields.get("duration", ""),
            fields.get("comment", ""),
            actor(request),
        )
    except (SilenceInvalid, DeskUnavailable) as exc:
        status = 422 if isinstance(exc, SilenceInvalid) else 503
        view = alerts_view(ctx, "", silence_form=fields, silence_problem=str(exc))
        return render(ctx, "alerts.html", status, **view)
    after = {"matchers": made.matchers, "ends_at": made.ends_at.isoformat()}
    record_change(request, "silence.add", made.id, None, after)
    return RedirectResponse(ctx.link("/alerts", silenced=made.id) + "#silences", status_code=303)


@router.post(
    "/alerts/silences/{silence_id}/expire", response_class=HTMLResponse, openapi_extra=EDIT_SILENCES
)
def silence_expire(request: Request, silence_id: str) -> Response:
    """End a silence now (those written in the rule file are removed by editing it)."""
    ctx = page_context(request)
    try:
        _desk(request).expire_silence(silence_id)
    except SilenceRefused as exc:
        raise HTTPException(409, str(exc)) from None
    except DeskUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    record_change(request, "silence.expire", silence_id, {"state": "active"}, {"state": "expired"})
    return RedirectResponse(ctx.link("/alerts", expired=silence_id) + "#silences", 303)
