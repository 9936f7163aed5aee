"""``/subscriptions`` ("My subscriptions"): the alerts a person wants to hear about, by
e-mail to their own address or to a Slack or generic webhook, filtered by app, env,
severity and rule (``?rule=…&app=…`` pre-fills the form: the alerts pages link here);
and ``/unsubscribe/{token}``, the signed one-click link every such e-mail carries, which
needs no sign-in (GET shows a button; POST, also from the mail client, unsubscribes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard.audit_trail import record_change
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import page_context, render
from shiftright_server.dashboard.visitor import identity_of, visitor_of
from shiftright_server.infra.access.subscriptions import (
    CHANNELS,
    MODES,
    SEVERITIES,
    PersonalSubscription,
    SubscriptionError,
    redact,
)

router = APIRouter(dependencies=[Depends(check_permission)])
OWN = route_action(Action.OWN_SUBSCRIPTIONS)
LEAVE = route_action(Action.UNSUBSCRIBE)
FIELDS = ("channel", "to", "app", "env", "severity", "rule", "mode")


def _json(sub: PersonalSubscription) -> dict[str, str]:
    """What the audit trail records of a subscription (a webhook's secret masked)."""
    return {k: getattr(sub, k) for k in FIELDS} | {"to": redact(sub.to, sub.channel)}


def _page(request: Request, status: int = 200, **shown: Any) -> HTMLResponse:
    owner = visitor_of(request).user
    mine = identity_of(request).subscriptions.list(owner) if owner else []
    asked = {k: request.query_params.get(k, "") for k in FIELDS} | {"replace": ""}
    editing = [s for s in mine if s.id == request.query_params.get("edit")]
    if editing:  # ?edit=<id>: the form holds that subscription, to change it
        asked = {k: getattr(editing[0], k) for k in FIELDS} | {"replace": editing[0].id}
    values = {
        "subscriptions": mine,
        "channels": CHANNELS,
        "severities": SEVERITIES,
        "modes": MODES,
        "form": asked,
        "problems": {},
        "saved": "",
        "changed": False,
    }
    return render(page_context(request), "subscriptions.html", status, **(values | shown))


@router.get("/subscriptions", response_class=HTMLResponse, openapi_extra=OWN)
def subscriptions_page(request: Request) -> HTMLResponse:
    """My subscriptions, and a form for another."""
    return _page(request)


@router.post("/subscriptions", response_class=HTMLResponse, openapi_extra=OWN)
def subscribe(
    request: Request,
    channel: Annotated[str, Form(max_length=20)] = "email",
    to: Annotated[str, Form(max_length=2000)] = "",
    app: Annotated[str, Form(max_length=200)] = "",
    env: Annotated[str, Form(max_length=200)] = "",
    severity: Annotated[str, Form(max_length=20)] = "",
    rule: Annotated[str, Form(max_length=200)] = "",
    mode: Annotated[str, Form(max_length=20)] = "immediate",
    replace: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """Subscribe (e-mail goes to one's own address), at once or as a daily digest; with
    ``replace``, change that subscription of one's own instead."""
    owner = visitor_of(request).user
    if owner is None:
        raise HTTPException(403, "subscriptions belong to a signed-in person")
    form = {
        "channel": channel,
        "to": to,
        "app": app,
        "env": env,
        "severity": severity,
        "rule": rule,
        "mode": mode,
    }
    subs = identity_of(request).subscriptions
    asked = (channel, to, app, env, severity, rule, mode)
    try:
        if replace:
            return _change(request, replace, subs.update(replace, owner, asked))
        made = subs.create(owner, *asked)
    except SubscriptionError as exc:
        problems = {exc.field: str(exc)}
        return _page(request, 400, form=form | {"replace": replace}, problems=problems)
    record_change(request, "subscription.add", made.id, None, _json(made))
    return _page(request, saved=made.id)


def _change(
    request: Request,
    sub_id: str,
    changed: tuple[PersonalSubscription, PersonalSubscription] | None,
) -> HTMLResponse:
    if changed is None:
        raise HTTPException(404, f"no subscription {sub_id} of yours")
    before, after = changed
    record_change(request, "subscription.change", sub_id, _json(before), _json(after))
    return _page(request, saved=sub_id, changed=True)


@router.post("/subscriptions/{sub_id}/delete", response_class=HTMLResponse, openapi_extra=OWN)
def unsubscribe_mine(request: Request, sub_id: str) -> HTMLResponse:
    """End one of one's subscriptions."""
    owner = visitor_of(request).user
    gone = identity_of(request).subscriptions.delete(sub_id, owner) if owner else None
    if gone is None:
        raise HTTPException(404, f"no subscription {sub_id} of yours")
    record_change(request, "subscription.remove", sub_id, _json(gone), None)
    return _page(request)


def _leave_page(request: Request, status: int, **values: Any) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]  # Starlette's response is untyped here
        request, "unsubscribe.html", values, status_code=status
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, openapi_extra=LEAVE)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """What the link unsubscribes from, and the button (a GET changes nothing)."""
    identity = identity_of(request)
    sub_id = identity.unsubscribed(token)
    subs = identity.subscriptions.list()
    found = next((s for s in subs if s.id == sub_id), None) if sub_id else None
    return _leave_page(request, 200 if found else 404, sub=found, token=token, done=False)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, openapi_extra=LEAVE)
def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Unsubscribe, no sign-in needed (RFC 8058 one-click POST, or the page's button)."""
    identity = identity_of(request)
    sub_id = identity.unsubscribed(token)
    gone = identity.subscriptions.delete(sub_id) if sub_id else None
    if gone is None:
        return _leave_page(request, 404, sub=None, token="", done=False)
    entry_who = gone.owner
    record_change(
        request,
        "subscription.remove",
        gone.id,
        _json(gone),
        {"via": f"unsubscribe link of {entry_who}"},
    )
    return _leave_page(request, 200, sub=gone, token="", done=True)
