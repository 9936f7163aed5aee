"""Templates and the context every page shares: the time range, the app/env filter
(checked against the warehouse), links that keep the query string, the warehouse banner."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from shiftright_server.dashboard.csrf import csrf_token
from shiftright_server.dashboard.panel_cache import scoped
from shiftright_server.dashboard.permissions import Action
from shiftright_server.dashboard.policy import permits
from shiftright_server.dashboard.scopes import Scope, Scopes
from shiftright_server.dashboard.timerange import PRESETS, TimeRange, parse_range
from shiftright_server.dashboard.visitor import visitor_of
from shiftright_server.dashboard.warehouse import Reader, WarehouseDown


def templates(folder: Path) -> Jinja2Templates:
    """Jinja2 with autoescape on for every template (app data is never marked safe)."""
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    env.filters["num"] = _num
    env.filters["when"] = _when
    env.globals["csrf_token"] = csrf_token
    return Jinja2Templates(env=env)


@dataclass
class PageContext:
    """What every page reads from the request: range, filters, and the warehouse state."""

    request: Request
    rng: TimeRange
    scope: Scope
    pairs: list[tuple[str, str]] = field(default_factory=list)
    down: str = ""  # why the warehouse cannot be reached ('' when it can)

    @property
    def reader(self) -> Reader:
        """The app's reader, bound to the visitor's permission scope for the panel cache;
        for a share link's visitor, one that masks personal data."""
        visitor = visitor_of(self.request)
        reader = scoped(self.request.app.state.reader, visitor)  # the shared panel cache
        if visitor.link is not None:
            from shiftright_server.dashboard.masking import MaskingReader

            return MaskingReader(reader)
        return reader

    def link(self, path: str, **changes: str) -> str:
        """``path`` with this page's query string, some parameters changed ('' drops one)."""
        query = {**dict(self.request.query_params), **changes}
        kept = {k: v for k, v in query.items() if v}
        return f"{path}?{urlencode(kept)}" if kept else path

    @property
    def live(self) -> bool:
        """Whether the range reaches now (a past custom range never changes)."""
        return bool(self.rng.preset) or self.rng.end > datetime.now(UTC)

    def range_link(self, preset: str) -> str:
        return self.link(self.request.url.path, range=preset, **{"from": "", "to": ""})


def page_context(request: Request, app: str = "", env: str = "") -> PageContext:
    """Parse and check the common query parameters (BadRange / UnknownScope propagate)."""
    q = request.query_params
    rng = parse_range(q.get("range"), q.get("from"), q.get("to"), datetime.now(UTC))
    scopes: Scopes = request.app.state.scopes
    try:
        scope = scopes.check(app, env)
        pairs = scopes.selected(scope)
    except WarehouseDown as exc:
        return PageContext(request, rng, Scope(app, env), down=str(exc))
    return PageContext(request, rng, scope, pairs)


def render(ctx: PageContext, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    state = ctx.request.app.state
    visitor = visitor_of(ctx.request)
    all_pairs = [] if ctx.down else state.scopes.pairs()
    if visitor.link is not None:  # a share link's visitor picks only within its scope
        all_pairs = [(a, e) for a, e in all_pairs if visitor.link.covers(a, e)]
    poll_ms = int(state.settings.dashboard.poll_seconds * 1000)
    live_trigger = f"every {poll_ms}ms, visible-again from:body"
    return state.templates.TemplateResponse(  # type: ignore[no-any-return]  # Starlette's response is untyped here
        ctx.request,
        template,
        {
            "ctx": ctx,
            "presets": list(PRESETS),
            "apps": sorted({a for a, _ in all_pairs}),
            "envs": sorted({e for _, e in all_pairs}),
            "poll_ms": poll_ms,
            "live_trigger": live_trigger,
            "trigger": live_trigger if ctx.live else "visible-again from:body",
            "warehouse_url": state.reader.url,
            "visitor": visitor,
            "can": lambda action: permits(visitor, Action(action)),
            **values,
        },
        status_code=status,
    )


def render_problem(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A 4xx page that says what was wrong, with a way back."""
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]  # as above
        request,
        "problem.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


def _num(value: float | int | None, digits: int = 0) -> str:
    if value is None or value != value:  # NaN: nothing to average
        return "–"
    if isinstance(value, int) or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _when(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
