"""``/qa``: QA meets production. What customers use that no test exercises, what preprod
missed, each release's health in preprod next to prod and the previous release, what
tests exercise that nobody uses, and the release gate's decisions (docs/qa.md)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import PageContext, page_context, render
from shiftright_server.dashboard.warehouse import Reader, Row, WarehouseDown
from shiftright_server.schemas import qa_queries as q

UNTESTED: Final = "/* dashboard.qa_untested */" + q.UNTESTED
UNUSED: Final = "/* dashboard.qa_unused */" + q.UNUSED
GAP_FEATURES: Final = "/* dashboard.qa_gap_features */" + q.GAP_FEATURES
GAP_ERRORS: Final = "/* dashboard.qa_error_gaps */" + q.GAP_ERRORS
RELEASES: Final = "/* dashboard.qa_releases */" + q.RELEASES
GATES: Final = "/* dashboard.qa_gates */" + q.GATE_DECISIONS
#: A release is flagged when a measure grew by more than this fraction over the previous.
WORSE: Final = 0.1
MEASURES: Final = ("error_rate", "p95_ms", "cpu_ms_per_request", "memory_mb_per_request")

router = APIRouter(dependencies=[Depends(check_permission)])


def build(reader: Reader, app: str, days: int) -> dict[str, Any]:
    params = {"app": app, "days": days, "limit": 50}
    return {
        "untested": reader.query(UNTESTED, params).dicts(),
        "gap_features": reader.query(GAP_FEATURES, params).dicts(),
        "gap_errors": reader.query(GAP_ERRORS, params).dicts(),
        "releases": paired(reader.query(RELEASES, {**params, "limit": 400}).dicts()),
        "unused": reader.query(UNUSED, params).dicts(),
        "gates": reader.query(GATES, {**params, "limit": 20}).dicts(),
    }


def paired(rows: list[Row]) -> list[dict[str, Any]]:
    """One entry per app × release, newest first: its preprod and prod rows (or None),
    each with the measures that got worse than on the previous release."""
    releases: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = releases.setdefault(
            (row["app"], row["release"]), {"app": row["app"], "release": row["release"]}
        )
        row["worse"] = [m for m in MEASURES if _worse(row[m], row.get(f"previous_{m}"))]
        entry[row["env"]] = row
    return list(reversed(releases.values()))


def _worse(now: Any, then: Any) -> bool:
    if now is None or then is None or now != now or then != then:
        return False
    return bool(now > then * (1 + WORSE) and now - then > 1e-9)


def _qa(ctx: PageContext, days: int) -> dict[str, Any]:
    found: dict[str, Any] = {k: [] for k in ("untested", "gap_features", "gap_errors")}
    found.update(releases=[], unused=[], gates=[])
    if ctx.down:
        return found
    try:
        found.update(build(ctx.reader, ctx.scope.app, days))
    except WarehouseDown as exc:
        ctx.down = str(exc)
    return found


@router.get("/qa", response_class=HTMLResponse, openapi_extra=route_action(Action.VIEW))
def qa_page(request: Request, app: str = "", days: int = Query(30, ge=1, le=365)) -> HTMLResponse:
    """What to test next (prod usage no test exercised), preprod gaps, release health,
    tested-but-unused features and the release gate's decisions, over ``days`` of prod."""
    ctx = page_context(request, app, "")
    return render(ctx, "qa.html", days=days, **_qa(ctx, days))
