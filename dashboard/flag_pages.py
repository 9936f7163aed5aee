"""``/flags`` and ``/flags/{name}``: every flag's state per environment (the last flip,
who made it and when, whether an alert holds it), and one flag's definition, its flips in
the range and its error rate by variant — the on-cohort against the off-cohort. Editors
flip and restore here; each change goes to the flag service (:mod:`.flag_desk`), the
same core the command line and the HTTP API call."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shiftright_server.dashboard.audit_trail import actor, record_change
from shiftright_server.dashboard.flag_desk import FlagDesk, FlagsUnavailable, FlipInvalid
from shiftright_server.dashboard.flag_rates import variant_rates
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.scopes import UnknownScope
from shiftright_server.schemas.flags import FlagStatus
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

router = APIRouter(dependencies=[Depends(check_permission)])
VIEW = route_action(Action.VIEW)
EDIT = route_action(Action.EDIT_FLAGS)


def _desk(request: Request) -> FlagDesk:
    desk: FlagDesk = request.app.state.flags
    return desk


def _context(request: Request) -> PageContext:
    """The page's context; an app with no traffic stored yet still has flags."""
    q = request.query_params
    try:
        return page_context(request, q.get("app", ""), q.get("env", ""))
    except UnknownScope:
        return page_context(request)


def _statuses(request: Request) -> tuple[list[FlagStatus], str]:
    try:
        return _desk(request).statuses(), ""
    except FlagsUnavailable as exc:
        return [], str(exc)


@router.get("/flags", response_class=HTMLResponse, openapi_extra=VIEW)
def flags_page(request: Request) -> HTMLResponse:
    """Every applied flag: its state per environment, its last flip, alert holds."""
    ctx = _context(request)
    flags, note = _statuses(request)
    app = request.query_params.get("app", "")
    shown = [f for f in flags if not app or f.app == app]
    return render(ctx, "flags.html", flags=shown, note=note)


@router.get("/flags/{name}", response_class=HTMLResponse, openapi_extra=VIEW)
def flag_page(request: Request, name: str) -> HTMLResponse:
    """One flag: definition, state per environment, flips, error rate by variant."""
    ctx = _context(request)
    status = _find(request, name)
    definition = _desk(request).definition(status.app, name)
    env = request.query_params.get("env", "")
    rates = variant_rates(ctx, status.app, name, env)
    return render(
        ctx, "flag.html", flag=status, definition=definition, rates=rates, notice=_notice(request)
    )


def _find(request: Request, name: str) -> FlagStatus:
    flags, note = _statuses(request)
    if note:
        raise HTTPException(503, note)
    app = request.query_params.get("app", "")
    found = [f for f in flags if f.name == name and (not app or f.app == app)]
    if not found:
        raise HTTPException(404, f"no flag {name!r} is applied")
    if len(found) > 1:
        apps = ", ".join(sorted(f.app for f in found))
        raise HTTPException(404, f"flag {name!r} is in several apps ({apps}); add app= to the URL")
    return found[0]


def _notice(request: Request) -> str:
    """What the last change did, named only from fixed words (no URL text on the page)."""
    done = request.query_params.get("done", "")
    return {"flipped": "Flipped.", "restored": "Restored: the flag file's state holds."}.get(
        done, ""
    )


@router.post("/flags/{name}/flip", response_class=HTMLResponse, openapi_extra=EDIT)
async def flip_post(request: Request, name: str) -> Response:
    """Force the flag on, off or to a variant in one environment (until restored)."""
    posted = await request.form()
    fields = {k: v.strip() for k, v in posted.items() if isinstance(v, str)}
    return await run_in_threadpool(_change, request, name, fields, "flip")


@router.post("/flags/{name}/restore", response_class=HTMLResponse, openapi_extra=EDIT)
async def restore_post(request: Request, name: str) -> Response:
    """End the flip in force: the flag file's state holds again."""
    posted = await request.form()
    fields = {k: v.strip() for k, v in posted.items() if isinstance(v, str)}
    return await run_in_threadpool(_change, request, name, fields, "restore")


def _change(request: Request, name: str, fields: dict[str, str], what: str) -> Response:
    app, env = fields.get("app", ""), fields.get("env", "")
    to, reason = fields.get("to", ""), fields.get("reason", "")[:2000]
    desk, who = _desk(request), actor(request)
    try:
        if what == "flip":
            desk.flip(app, name, env, to, who, reason)
        else:
            desk.restore(app, name, env, who)
    except FlipInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    except FlagsUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    after = {"to": to, "reason": reason} if what == "flip" else {"to": "file"}
    record_change(request, f"flags.{what}", f"{app}/{name}/{env}", None, after)
    done = "flipped" if what == "flip" else "restored"
    target = f"/flags/{quote(name, safe='')}?{urlencode({'app': app, 'done': done})}"
    return RedirectResponse(target, status_code=303)
