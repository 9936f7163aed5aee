"""The alerting HTTP API, served by the ingest gateway under ``/api/v1/alerting``.

* ``GET /rules`` — the applied rule file: version, author, YAML, rules and subscriptions
  (``ETag`` = the version). ``PUT /rules`` — a YAML body: 422 naming the line and field
  of every problem; else the diff and the new version (``?dry_run=true`` applies nothing;
  ``If-Match: "<version>"`` refuses with 412 when someone applied in between).
* ``GET /silences`` (``?expired=true``), ``POST /silences``, ``DELETE /silences/{id}``.
* ``GET /alerts`` (firing and pending now), ``GET /alerts/history?limit=&since=``.

**Who may do what.** Every request carries ``Authorization: Bearer <token>``: a personal
API token (``shiftright tokens create --user EMAIL``, acting with its owner's role) or a
service token (``shiftright alerts tokens create --role viewer|editor|admin``), from the
identity store (:mod:`shiftright_server.infra.access`; only a SHA-256 stored, revocable,
checked on every request). Viewers read; editors and admins also change rules and
silences, each change written to the audit trail. The gateway's ingest keys are not accepted: they are shipped inside apps,
so they must never change who gets paged. With ``gateway.require_key = false`` (local
development) reads need no token; writes always do.

The routes live in their own FastAPI application mounted by the gateway, so they have
their own OpenAPI document (``/api/v1/alerting/openapi.json``) and error handlers, and the
ingest API's contract is unchanged. Errors have the gateway's shape:
``{"error": reason, "message": …, "errors": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from shiftright_server.infra.api.alerting_bodies import (
    APPLY_ERRORS,
    ERRORS,
    MALFORMED,
    YAML_BODY,
    AlertsOut,
    ApplyOut,
    DryRun,
    ErrorBody,
    HistoryOut,
    RulesOut,
    SilenceIn,
    SilenceOut,
    SilencesOut,
    Source,
)
from shiftright_server.infra.api.alerting_handler import AlertingApi
from shiftright_server.infra.api.gate import Editor, TokenGate, Viewer
from shiftright_server.infra.api.tokens import open_tokens
from shiftright_server.producers.gateway.errors import GatewayError, Rejected
from shiftright_server.streams.alerting.service import open_store
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

PREFIX = "/api/v1/alerting"
MAX_RULES_BYTES = 1 << 20
_F = TypeVar("_F", bound=Callable[..., Any])


async def yaml_body(request: Request, what: str = "rule file") -> str:
    """A YAML request body (at most 1 MiB of UTF-8)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_RULES_BYTES:
            raise Rejected(413, "too_large", f"a {what} is at most {MAX_RULES_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_body", f"the {what} must be UTF-8 text") from None


def put_file_route(router: APIRouter, path: str, summary: str) -> Callable[[_F], _F]:
    """The route that applies a YAML file (rules, flags): its answers and body."""
    return router.put(
        path,
        response_model=ApplyOut,
        summary=summary,
        responses=APPLY_ERRORS,
        openapi_extra=YAML_BODY,
    )


def alerting_router(api: AlertingApi) -> APIRouter:
    """The routes; the application serving them keeps ``api`` in ``state.alerting``."""
    router = APIRouter()

    @router.get(
        "/rules", response_model=RulesOut, responses=ERRORS, summary="The applied rule file"
    )
    def get_rules(response: Response, _: Viewer) -> dict[str, Any]:
        body = api.rules()
        response.headers["ETag"] = f'"{body["version"]}"'
        return body

    @put_file_route(router, "/rules", "Apply a rule file (YAML body)")
    async def put_rules(
        request: Request,
        who: Editor,
        dry_run: DryRun = False,
        author: Annotated[str, Query(description="Recorded as applied_by.")] = "",
        source: Source = "api",
    ) -> dict[str, Any]:
        text = await yaml_body(request)
        if_match = request.headers.get("if-match")
        return await run_in_threadpool(api.put_rules, text, who, dry_run, if_match, author, source)

    @router.get(
        "/silences",
        response_model=SilencesOut,
        responses=ERRORS,
        summary="Active and upcoming silences",
    )
    def get_silences(
        _: Viewer, expired: Annotated[bool, Query(description="Also those that ended.")] = False
    ) -> dict[str, Any]:
        return api.silences(expired)

    @router.post(
        "/silences",
        response_model=SilenceOut,
        status_code=201,
        summary="Add a silence",
        responses={**ERRORS, **MALFORMED},
    )
    def post_silence(body: SilenceIn, who: Editor) -> dict[str, Any]:
        return api.add_silence(body, who)

    @router.delete(
        "/silences/{silence_id}",
        response_model=SilenceOut,
        summary="End a silence now",
        responses={
            **ERRORS,
            404: {"model": ErrorBody},
            409: {"model": ErrorBody, "description": "in the rule file: edit it there"},
        },
    )
    def del_silence(silence_id: str, who: Editor) -> dict[str, Any]:
        return api.delete_silence(silence_id, who)

    @router.get(
        "/alerts",
        response_model=AlertsOut,
        responses=ERRORS,
        summary="Alerts firing or pending now",
    )
    def get_alerts(_: Viewer, app: str = "", env: str = "") -> dict[str, Any]:
        return api.alerts(app, env)

    @router.get(
        "/alerts/history",
        response_model=HistoryOut,
        responses=ERRORS,
        summary="Recent alert transitions, newest first",
    )
    def get_history(
        _: Viewer,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        app: str = "",
        env: str = "",
        rule: str = "",
        since: Annotated[datetime | None, Query(description="ISO time")] = None,
    ) -> dict[str, Any]:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return api.history(app, env, rule, since, limit)

    return router


def create_alerting_app(api: AlertingApi) -> FastAPI:
    """The API as an application of its own (the gateway mounts it at :data:`PREFIX`)."""
    description = "Rules as code, silences and alerts. Bearer token: shiftright tokens create."
    app = api_app("shiftright alerting", description, alerting_router(api), api)
    return app


def api_app(title: str, description: str, router: APIRouter, gate: TokenGate) -> FastAPI:
    """An API as an application of its own (``gate`` checks its callers), its errors in
    the gateway's shape: ``{"error", "message", "errors"}``."""
    app = FastAPI(title=title, version="1", description=description)
    app.state.gate = gate
    app.include_router(router)

    @app.exception_handler(GatewayError)
    async def refused(_: Request, exc: GatewayError) -> Response:
        headers = exc.headers()
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(exc.body(), exc.status, headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        reasons = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}
        reason = reasons.get(exc.status_code, "http_error")
        body = {"error": reason, "message": str(exc.detail)}
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not just its first route's
            headers["Allow"] = _allowed(app, request)
        return JSONResponse(body, exc.status_code, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"path": ".".join(str(p) for p in e["loc"]), "reason": e["type"], "message": e["msg"]}
            for e in exc.errors()
        ]
        body = {"error": "invalid_request", "message": "the request is not valid", "errors": errors}
        return JSONResponse(body, 422)

    return app


def _allowed(app: FastAPI, request: Request) -> str:
    path = request.scope["path"]
    root = request.scope.get("root_path", "")
    paths = {path, path[len(root) :] if root and path.startswith(root) else path}
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and any(route.path_regex.match(p) for p in paths):
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


def alerting_app(settings: Settings) -> FastAPI:
    """The API on the configured Kafka, warehouse and token file."""
    from shiftright_server.infra.access.audit import WarehouseAudit
    from shiftright_server.infra.clickhouse import get_client

    ch = settings.clickhouse
    tokens = open_tokens(settings)
    api = AlertingApi(
        open_store(settings),
        tokens,
        lambda: get_client(ch, database=ch.database),
        anonymous_reads=not settings.gateway.require_key,
        audit=WarehouseAudit(tokens.identity.db, ch),
    )
    return create_alerting_app(api)
