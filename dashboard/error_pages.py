"""``/errors`` (the groups), ``/errors/{group_id}`` (one group) and the resolve / ignore /
unresolve actions, which send the command the CLI sends and come back to the group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from shiftright_server.dashboard import compare as cmp
from shiftright_server.dashboard import errors
from shiftright_server.dashboard.audit_trail import record_change
from shiftright_server.dashboard.commands import DECISIONS, IGNORE_FOR, CommandFailed, command
from shiftright_server.dashboard.errors import GroupFilter, GroupPage
from shiftright_server.dashboard.errors_sql import SORTS, STATUSES
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.visitor import visitor_of
from shiftright_server.dashboard.warehouse import Row, WarehouseDown

router = APIRouter(dependencies=[Depends(check_permission)])
VIEW = route_action(Action.VIEW_ERRORS)
DECIDE = route_action(Action.DECIDE_ERRORS)


def _filter(status: str, text: str, release: str, sort: str) -> GroupFilter:
    if status and status not in STATUSES:
        raise HTTPException(400, f"status={status!r} is not one of {', '.join(STATUSES)}")
    if sort not in SORTS:
        raise HTTPException(400, f"sort={sort!r} is not one of {', '.join(SORTS)}")
    return GroupFilter(status, text.strip(), release.strip(), sort)


def _groups(ctx: PageContext, f: GroupFilter, compare: str) -> list[Row]:
    if ctx.down:
        return []
    try:
        return errors.list_groups(ctx.reader, ctx.rng, ctx.scope, f, compare)
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return []


@router.get("/errors", response_class=HTMLResponse, openapi_extra=VIEW)
def errors_page(
    request: Request,
    app: str = "",
    env: str = "",
    status: str = "",
    q: str = "",
    release: str = "",
    sort: str = "events",
    compare: str = "",
) -> HTMLResponse:
    """Error groups with errors in the range, filtered and sorted; ``compare=ENV`` draws
    each group's errors in that env beside its own."""
    f = _filter(status, q, release, sort)
    ctx = page_context(request, app, env)
    compare = cmp.checked(ctx, compare)
    groups = _groups(ctx, f, compare)
    return render(
        ctx,
        "errors.html",
        groups=groups,
        f=f,
        statuses=STATUSES,
        sorts=list(SORTS),
        compare=compare,
    )


@router.get("/panels/errors", response_class=HTMLResponse, openapi_extra=VIEW)
def errors_panel(
    request: Request,
    app: str = "",
    env: str = "",
    status: str = "",
    q: str = "",
    release: str = "",
    sort: str = "events",
    compare: str = "",
) -> HTMLResponse:
    """The groups table alone (what the page polls)."""
    f = _filter(status, q, release, sort)
    ctx = page_context(request, app, env)
    compare = cmp.checked(ctx, compare)
    return render(ctx, "_groups.html", groups=_groups(ctx, f, compare), f=f, compare=compare)


def _group(ctx: PageContext, group_id: str, app: str) -> GroupPage | None:
    if ctx.down:
        return None
    try:
        return errors.group_page(ctx.reader, ctx.rng, group_id, app)
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return None


@router.get("/errors/{group_id}", response_class=HTMLResponse, openapi_extra=VIEW)
def group_page(request: Request, group_id: str, app: str = "", sent: str = "") -> HTMLResponse:
    """One group: latest stack trace, counts per env and release, timeline, actions."""
    ctx = page_context(request, app)
    page = _group(ctx, group_id, app)
    return render(
        ctx,
        "group.html",
        group_id=group_id,
        page=page,
        sent=sent if sent in DECISIONS else "",
        ignore_for=list(IGNORE_FOR),
    )


@router.get("/panels/errors/{group_id}", response_class=HTMLResponse, openapi_extra=VIEW)
def group_panel(request: Request, group_id: str, app: str = "") -> HTMLResponse:
    """The group's status and counts alone (what the page polls)."""
    ctx = page_context(request, app)
    page = _group(ctx, group_id, app)
    return render(ctx, "_group_state.html", group_id=group_id, page=page)


@router.post("/errors/{group_id}/{decision}", openapi_extra=DECIDE)
def decide(
    request: Request,
    group_id: str,
    decision: str,
    app: Annotated[str, Form()],
    ignore_for: Annotated[str, Form()] = "",
    ignore_count: Annotated[int, Form(ge=0)] = 0,
) -> RedirectResponse:
    """Resolve, ignore (for ever, for a while, or for a number of errors) or unresolve a
    group (applied by the stream worker)."""
    if decision not in DECISIONS:
        raise HTTPException(
            404, f"{decision!r} is not an action; use one of {', '.join(DECISIONS)}"
        )
    if ignore_for and ignore_for not in IGNORE_FOR:
        raise HTTPException(400, f"ignore_for={ignore_for!r} is not one of {', '.join(IGNORE_FOR)}")
    ctx = page_context(request, app)
    group = errors.find_group(ctx.reader, group_id, app)  # 404 for an unknown group
    who = visitor_of(request)
    try:
        cmd = command(app, group_id, decision, who.name, ignore_for, ignore_count)
        request.app.state.commands.send(cmd)
    except CommandFailed as exc:
        raise HTTPException(503, f"the {decision} command was not delivered: {exc}") from exc
    after = {"status": decision, "ignore_for": ignore_for, "ignore_count": ignore_count}
    before = {"status": group.get("status")}
    record_change(request, f"errors.{decision}", f"{app}/{group_id}", before, after)
    back = ctx.link(f"/errors/{group_id}", sent=decision)
    return RedirectResponse(back, status_code=303)
