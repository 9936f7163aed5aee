"""The read-only SQL console (``/sql``): the query lives in the URL so it can be shared;
the warehouse runs it read-only with a time limit, and at most ``sql_max_rows`` rows come
back (the page says when there were more). ``/sql.csv`` is the same answer as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import page_context, render
from shiftright_server.dashboard.warehouse import QueryFailed, Reader, Result, WarehouseDown
from shiftright_server.infra.settings import DashboardSettings

router = APIRouter(dependencies=[Depends(check_permission)])
RUN = route_action(Action.RUN_SQL)
EXAMPLE = (
    "SELECT app, env, count() AS events\nFROM events_usage\nGROUP BY app, env\nORDER BY events DESC"
)
MAX_QUERY_CHARS = 20_000
Sql = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]


@dataclass
class Answer:
    result: Result | None = None
    truncated: bool = False
    error: str = ""


def run(reader: Reader, sql: str, limits: DashboardSettings) -> Answer:
    """Run one statement read-only; errors come back as text, not exceptions."""
    settings: dict[str, Any] = {
        "readonly": 2,  # no writes; settings may still be passed with the query
        "max_execution_time": limits.sql_max_seconds,
        "max_result_rows": limits.sql_max_rows + 1,
        "result_overflow_mode": "break",
    }
    try:
        result = reader.query(sql, {}, settings)
    except QueryFailed as exc:
        return Answer(error=str(exc))
    truncated = len(result.rows) > limits.sql_max_rows
    if truncated:
        result = Result(result.columns, result.rows[: limits.sql_max_rows], result.elapsed_ms)
    return Answer(result, truncated)


@router.get("/sql", response_class=HTMLResponse, openapi_extra=RUN)
def console_page(request: Request, q: Sql = "") -> HTMLResponse:
    """Run read-only SQL at the warehouse; results as a table."""
    ctx = page_context(request)
    answer = Answer()
    if q.strip() and not ctx.down:
        try:
            answer = run(ctx.reader, q, request.app.state.settings.dashboard)
        except WarehouseDown as exc:
            ctx.down = str(exc)
    status = 400 if answer.error else 200
    return render(
        ctx,
        "sql.html",
        status,
        q=q or EXAMPLE,
        ran=bool(q.strip()),
        answer=answer,
        max_rows=request.app.state.settings.dashboard.sql_max_rows,
    )


@router.get("/sql.csv", openapi_extra=RUN)
def console_csv(request: Request, q: Sql) -> Response:
    """The same query's rows as CSV (a header row first)."""
    answer = run(request.app.state.reader, q, request.app.state.settings.dashboard)
    if answer.error or answer.result is None:
        return Response(answer.error, status_code=400, media_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(answer.result.columns)
    writer.writerows(answer.result.rows)
    headers = {"Content-Disposition": 'attachment; filename="shiftright-query.csv"'}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
