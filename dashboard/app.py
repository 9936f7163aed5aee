"""The dashboard's FastAPI application: routers, templates, static files and the pages
for bad input (4xx that say what was wrong) — see :func:`create_app`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from shiftright_server.dashboard import (
    admin_pages,
    alert_pages,
    audit_page,
    console,
    error_pages,
    flag_pages,
    keys_page,
    notify_above,
    pages,
    qa,
    rule_pages,
    signin,
    subscription_pages,
    usage,
)
from shiftright_server.dashboard.commands import CommandSender, KafkaCommands
from shiftright_server.dashboard.desk import AlertingDesk, NoDesk
from shiftright_server.dashboard.errors import UnknownGroup
from shiftright_server.dashboard.flag_desk import FlagDesk, NoFlags
from shiftright_server.dashboard.panel_cache import CachingReader, PanelCache, clear_cache
from shiftright_server.dashboard.permissions import Policy
from shiftright_server.dashboard.policy import RolePolicy
from shiftright_server.dashboard.render import render_problem, templates
from shiftright_server.dashboard.scopes import Scopes, UnknownScope
from shiftright_server.dashboard.timerange import BadRange
from shiftright_server.dashboard.visitor import GoTo, identify
from shiftright_server.dashboard.warehouse import (
    QUERY_TIMINGS,
    Reader,
    WarehouseDown,
    WarehouseReader,
)
from shiftright_server.infra.access.audit import Audit, WarehouseAudit
from shiftright_server.infra.access.identity import Identity, open_identity
from shiftright_server.infra.settings import Settings
from starlette.exceptions import HTTPException as StarletteHTTPException

HERE = Path(__file__).parent
# Scripts only from this server (no eval: htmx runs with allowEval off); uPlot sets
# element styles, so inline styles stay allowed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def create_app(
    settings: Settings,
    *,
    reader: Reader | None = None,
    commands: CommandSender | None = None,
    policy: Policy | None = None,
    desk: AlertingDesk | None = None,
    identity: Identity | None = None,
    audit: Audit | None = None,
    flags: FlagDesk | None = None,
) -> FastAPI:
    """The dashboard over the configured warehouse, Kafka and identity store (or the given
    fakes); ``desk``: the alerting service that changes rules and silences (none:
    read-only); ``flags``: the flag service (none: no flags shown)."""
    app = FastAPI(
        title="shiftright dashboard",
        # the schema is served behind the permission check (pages.py); no Swagger UI,
        # which would load its files from a CDN
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    usage.run_beside(settings.dashboard.queries_beside)
    app.state.reader = _cached(settings, reader or WarehouseReader(settings.clickhouse))
    app.state.scopes = Scopes(app.state.reader)
    app.state.commands = commands or KafkaCommands(settings)
    app.state.policy = policy or RolePolicy()
    app.state.desk = desk or NoDesk()
    app.state.flags = flags or NoFlags()
    app.state.identity = identity or open_identity(settings)
    app.state.audit = audit or WarehouseAudit(app.state.identity.db, settings.clickhouse)
    app.state.templates = templates(HERE / "templates")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(error_pages.router)
    app.include_router(rule_pages.router)  # before /alerts/{rule}: /alerts/rule-form
    app.include_router(notify_above.router)  # and /alerts/notify-above
    app.include_router(alert_pages.router)
    app.include_router(console.router)
    app.include_router(flag_pages.router)
    app.include_router(qa.router)
    app.include_router(admin_pages.router)
    app.include_router(audit_page.router)
    app.include_router(keys_page.router)
    app.include_router(subscription_pages.router)
    _problems(app)
    app.middleware("http")(identify)
    app.middleware("http")(_headers)
    return app


def _cached(settings: Settings, reader: Reader) -> Reader:
    """The reader behind the shared panel cache (``dashboard.cache_seconds`` 0: none; a
    reader given with its own cache keeps it)."""
    conf = settings.dashboard
    if conf.cache_seconds <= 0 or isinstance(reader, CachingReader):
        return reader
    cache = PanelCache(conf.cache_seconds, conf.cache_entries, conf.cache_megabytes << 20)
    return CachingReader(reader, cache)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.commands.close()
    app.state.reader.close()
    app.state.identity.close()
    if getattr(app.state, "keys", None) is not None:
        app.state.keys.close()


def _problems(app: FastAPI) -> None:
    async def bad_range(request: Request, exc: Exception) -> Response:
        return render_problem(request, 400, "Bad time range", str(exc))

    async def unknown(request: Request, exc: Exception) -> Response:
        return render_problem(request, 404, "Not found", str(exc))

    async def down(request: Request, exc: Exception) -> Response:
        return render_problem(request, 503, "Warehouse unreachable", str(exc))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return render_problem(request, 400, "Bad request", wrong)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return render_problem(request, exc.status_code, "Cannot show this", str(exc.detail))

    async def go_to(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GoTo)
        return RedirectResponse(exc.url, status_code=303)

    app.add_exception_handler(GoTo, go_to)
    app.add_exception_handler(BadRange, bad_range)
    app.add_exception_handler(UnknownScope, unknown)
    app.add_exception_handler(UnknownGroup, unknown)
    app.add_exception_handler(alert_pages.UnknownRule, unknown)
    app.add_exception_handler(WarehouseDown, down)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


async def _headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    began = time.perf_counter()
    timings: list[tuple[str, float, str]] = []
    token = QUERY_TIMINGS.set(timings)
    try:
        response = await call_next(request)
    finally:
        QUERY_TIMINGS.reset(token)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        clear_cache(request.app.state.reader)  # what follows an action reads anew
    took = (time.perf_counter() - began) * 1000
    queries = "".join(
        f", q-{name};dur={ms:.1f}" + (f";desc={how}" if how else "") for name, ms, how in timings
    )
    response.headers["Server-Timing"] = f"app;dur={took:.1f}{queries}"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response
