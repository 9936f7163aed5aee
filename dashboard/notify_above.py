""" "Notify me when this goes above …" from a chart (``/alerts/notify-above``, editors): a
small form that makes a threshold rule on the chart's measure for one app and env and
subscribes the person to it by e-mail, through the paths the rule form and "My
subscriptions" take (the rule file applied through the alerting service; the
subscription in the identity store; both audited). A threshold that is not a number, or
a rule the rule file refuses, is answered by field and nothing is saved."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shiftright_server.dashboard import rule_form as rf
from shiftright_server.dashboard.audit_trail import actor, record_change
from shiftright_server.dashboard.desk import AlertingDesk, DeskUnavailable, VersionConflict
from shiftright_server.dashboard.health import LABELS
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.visitor import identity_of, visitor_of

router = APIRouter(dependencies=[Depends(check_permission)])
EDIT_RULES = route_action(Action.RULES_EDIT)
WINDOW = "5m"  # the rule's sliding window: one spike of a minute does not page anyone


@dataclass(frozen=True)
class Chart:
    label: str
    source: str
    measure: str
    unit: str = ""  # "%": typed in percent, stored as a fraction

    def value(self, typed: float) -> float:
        return typed / 100 if self.unit == "%" else typed


CHARTS: dict[str, Chart] = {
    "rate": Chart("requests/s", "usage", "rate", "/s"),
    "latency": Chart("mean latency", "usage", "avg:duration_ms", "ms"),
    **{
        f"health:{m}": Chart(label, "health", f"avg:{m}", unit)
        for m, (label, unit) in LABELS.items()
    },
}


def _chart(key: str) -> Chart:
    if key not in CHARTS:
        raise HTTPException(404, f"no chart {key!r} to be notified about")
    return CHARTS[key]


def _form_page(
    ctx: PageContext, values: dict[str, str], status: int = 200, **shown: Any
) -> HTMLResponse:
    chart = _chart(values["chart"])
    extra = {"problems": {}, "general": [], "window": WINDOW} | shown
    return render(ctx, "notify_above.html", status, chart=chart, form=values, **extra)


@router.get("/alerts/notify-above", response_class=HTMLResponse, openapi_extra=EDIT_RULES)
def notify_above_page(request: Request, app: str, env: str, chart: str) -> HTMLResponse:
    """The form: the chart's measure, its app and env; the threshold to type."""
    ctx = page_context(request, app, env)
    return _form_page(ctx, {"app": app, "env": env, "chart": chart, "threshold": ""})


@router.post("/alerts/notify-above", response_class=HTMLResponse, openapi_extra=EDIT_RULES)
def notify_above(
    request: Request,
    app: Annotated[str, Form(max_length=200)],
    env: Annotated[str, Form(max_length=200)],
    chart: Annotated[str, Form(max_length=200)],
    threshold: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    """Make the rule (unless the same one exists) and the person's e-mail subscription."""
    ctx = page_context(request, app, env)
    values = {"app": app, "env": env, "chart": chart, "threshold": threshold.strip()}
    measure = _chart(chart)
    try:
        typed = float(values["threshold"])
    except ValueError:
        problem = (
            f"{values['threshold']!r} is not a number" if values["threshold"] else "Field required"
        )
        return _form_page(ctx, values, 422, problems={"threshold": problem})
    form = _rule_form(measure, chart, app, env, typed)
    try:
        name = _apply_rule(request, form)
    except (DeskUnavailable, VersionConflict) as exc:
        return _form_page(ctx, values, 503, general=[str(exc)])
    if name is None:
        found = [m for ms in form.problems.values() for m in ms] + form.general
        return _form_page(ctx, values, 422, general=found)
    owner = visitor_of(request).user
    if owner is None:
        raise HTTPException(403, "subscriptions belong to a signed-in person")
    subs = identity_of(request).subscriptions
    mine = [
        s
        for s in subs.list(owner)
        if (s.channel, s.rule, s.app, s.env) == ("email", name, app, env)
    ]
    made = mine[0] if mine else subs.create(owner, "email", "", app, env, "", name)
    if not mine:
        after = {"channel": "email", "to": made.to, "app": app, "env": env, "rule": name}
        record_change(request, "subscription.add", made.id, None, after)
    return RedirectResponse(ctx.link(f"/alerts/{name}", subscribed=made.id), status_code=303)


def _rule_form(measure: Chart, chart: str, app: str, env: str, typed: float) -> rf.RuleForm:
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", chart.removeprefix("health:"))
    form = rf.blank("threshold", app, env)
    form.values |= {
        "name": f"{slug}-above-{typed:g}.{app}.{env}",
        "description": f"{measure.label} of {app} in {env} above {typed:g}{measure.unit}",
        "source": measure.source,
        "measure": measure.measure,
        "window": WINDOW,
        "aggregate": "avg",
        "op": ">",
        "threshold": f"{measure.value(typed):g}",
    }
    return form


def _apply_rule(request: Request, form: rf.RuleForm) -> str | None:
    """The rule's name once applied (or found applied already); None with the form's
    problems set when the rule file refuses it."""
    desk: AlertingDesk = request.app.state.desk
    ruleset = desk.rules()
    name = str(form.values["name"])
    if any(r.name == name for r in ruleset.rules.rules):
        return name
    text, index = rf.new_text(ruleset.text, form)
    rule = rf.check(form, text, index)
    if rule is None:
        return None
    desk.apply(text, actor(request), ruleset.version)
    record_change(request, "rules.apply", rule.name, None, rule.model_dump(mode="json"))
    return name
