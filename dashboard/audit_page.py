"""``/audit`` (admins): the latest changes from the ``audit_log`` table — who, what,
before, after, when and from where — newest first, filtered by a text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import page_context, render
from shiftright_server.dashboard.timerange import sql_time
from shiftright_server.dashboard.warehouse import Row, WarehouseDown

router = APIRouter(dependencies=[Depends(check_permission)])
LIMIT = 500
AUDIT = f"""/* dashboard.audit */
SELECT ts, actor, role, action, target, before, after, address, via
FROM audit_log FINAL
WHERE ts >= {{start:DateTime64(3)}} AND ts < {{end:DateTime64(3)}}
  AND ({{q:String}} = '' OR positionCaseInsensitiveUTF8(
        concat(actor, ' ', action, ' ', target, ' ', before, ' ', after), {{q:String}}) > 0)
ORDER BY ts DESC
LIMIT {LIMIT}
"""


@router.get("/audit", response_class=HTMLResponse, openapi_extra=route_action(Action.AUDIT))
def audit_page(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> HTMLResponse:
    """Every change in the range, newest first (at most 500)."""
    ctx = page_context(request)
    entries: list[Row] = []
    flush = getattr(request.app.state.audit, "flush", None)
    if flush is not None:
        flush()  # entries waiting in the outbox first
    if not ctx.down:
        params = {"start": sql_time(ctx.rng.start), "end": sql_time(ctx.rng.end), "q": q.strip()}
        try:
            entries = ctx.reader.query(AUDIT, params).dicts()
        except WarehouseDown as exc:
            ctx.down = str(exc)
    return render(ctx, "audit.html", entries=entries, q=q, limit=LIMIT)
