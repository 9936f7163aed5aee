"""Error rate by a flag's variant over a range: errors per 1,000 usage events of the
requests (scopes) that evaluated the flag, per variant — the on-cohort against the
off-cohort — as a chart (one line per variant, the flips as markers) and totals."""

from __future__ import annotations

from typing import Any

from shiftright_server.dashboard import flags_sql as sql
from shiftright_server.dashboard.render import PageContext
from shiftright_server.dashboard.timerange import epoch, grid, sql_time
from shiftright_server.dashboard.warehouse import WarehouseDown


def variant_rates(ctx: PageContext, app: str, flag: str, env: str) -> dict[str, Any]:
    """``chart`` (t, one series per variant, markers), ``totals`` per variant, ``flips``
    (newest first); empty when the warehouse is away (``ctx.down`` says why)."""
    found: dict[str, Any] = {"chart": None, "totals": [], "flips": []}
    if ctx.down:
        return found
    span = {"start": sql_time(ctx.rng.start), "end": sql_time(ctx.rng.end)}
    params = {**span, "app": app, "flag": flag, "env": env, "variants": [], "step": ctx.rng.step_s}
    try:
        rows = ctx.reader.query(sql.BY_VARIANT, params).dicts()
        found["flips"] = ctx.reader.query(sql.FLIPS, params).dicts()
    except WarehouseDown as exc:
        ctx.down = str(exc)
        return found
    found["totals"] = _totals(rows)
    found["chart"] = _chart(ctx, rows, found["flips"])
    return found


def rate(errors: int, requests: int) -> float | None:
    """Errors per 1,000 usage events (None without usage)."""
    return round(1000 * errors / requests, 3) if requests else None


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sums: dict[str, list[int]] = {}
    for r in rows:
        acc = sums.setdefault(r["variant"], [0, 0])
        acc[0] += int(r["errors"])
        acc[1] += int(r["requests"])
    return [
        {"variant": v, "errors": e, "requests": n, "rate": rate(e, n)}
        for v, (e, n) in sorted(sums.items())
    ]


def _chart(ctx: PageContext, rows: list[dict[str, Any]], flips: list[dict[str, Any]]) -> Any:
    points = grid(ctx.rng)
    index = {t: i for i, t in enumerate(points)}
    series: dict[str, list[float | None]] = {}
    for r in rows:
        i = index.get(epoch(r["t"]))
        if i is not None:
            line = series.setdefault(r["variant"], [None] * len(points))
            line[i] = rate(int(r["errors"]), int(r["requests"]))
    marks = [
        {"t": epoch(f["ts"]), "kind": "flag", "label": f"{f['env']}={f['value']}"}
        for f in reversed(flips)
    ]
    return {"t": points, "envs": series, "markers": marks}
