"""The alerting HTTP API, served by the ingest gateway under ``/api/v1/alerting``.

* ``GET /rules`` — the applied rule file: version, author, YAML, rules and subscriptions
  (``ETag`` = the version). ``PUT /rules`` — a YAML body: 422 naming the line and field
  of every problem; else the diff and the new version (``?dry_run=true`` applies nothing;
  ``If-Match: "<version>"`` refuses with 412 when someone applied in between).
* ``GET /silences`` (``?expired=true``), ``POST /silences``, ``DELETE /silences/{id}``.
* ``GET /alerts`` (firing and pending now), ``GET /alerts/history?limit=&since=``.

**Who may do what.** Every request carries ``Authorization: Bearer <token>``, a token
made with ``shiftright alerts tokens create --role viewer|editor``: the gateway's key
mechanism (``sr_<id>_<secret>``, only a SHA-256 stored, revocable, checked on every
request) in its own file, ``<state dir>/alerting/api-tokens.sqlite``, bound to a role
instead of an app. Viewers (people outside the team) read; editors also change rules
and silences. The gateway's ingest keys are not accepted: they are shipped inside apps,
so they must never change who gets paged. With ``gateway.require_key = false`` (local
development) reads need no token; writes always do.

The routes live in their own FastAPI application mounted by the gateway, so they have
their own OpenAPI document (``/api/v1/alerting/openapi.json``) and error handlers, and the
ingest API's contract is unchanged. Errors have the gateway's shape:
``{"error": reason, "message": …, "errors": [...]}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from shiftright_server.infra.api.alerting_bodies import (
    ERRORS,
    MALFORMED,
    AlertsOut,
    ApplyOut,
    ErrorBody,
    HistoryOut,
    RulesOut,
    SilenceIn,
    SilenceOut,
    SilencesOut,
)
from shiftright_server.infra.api.tokens import open_tokens
from shiftright_server.producers.gateway.errors import FieldError, GatewayError, Rejected
from shiftright_server.schemas.rule_file import RuleFileError, diff
from shiftright_server.streams.alerting.history import alert_history, current_alerts, jsonable
from shiftright_server.streams.alerting.service import (
    AlertingStore,
    SilenceError,
    SilenceInFile,
    SilenceNotFound,
    SilenceView,
    change_json,
    delete_silence,
    make_silence,
    open_store,
    parse_rules,
    rule_summary,
    silences_of,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig
    from shiftright_server.infra.settings import Settings
    from shiftright_server.producers.gateway.app import KeyChecker

PREFIX = "/api/v1/alerting"
MAX_RULES_BYTES = 1 << 20
_RANK = {"viewer": 0, "editor": 1}


@dataclass(frozen=True)
class Caller:
    role: str  # viewer | editor
    name: str  # the token's label, or "token <id>"; "anonymous" without a token


@dataclass(frozen=True, slots=True)
class RuleProblem(FieldError):
    """A rule-file problem: the field's path, and the line it is on."""

    line: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "path": self.path,
            "reason": self.reason,
            "message": self.message,
        }


# -- the API ----------------------------------------------------------------------------
class AlertingApi:
    """The request handling, with its collaborators passed in (tests give fakes)."""

    def __init__(
        self,
        store: AlertingStore,
        tokens: KeyChecker,
        warehouse: Callable[[], Any],
        anonymous_reads: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.tokens = tokens
        self._warehouse = warehouse
        self._client: Any = None
        self._client_lock = threading.Lock()
        self.anonymous_reads = anonymous_reads
        self.clock = clock

    # -- who is asking ------------------------------------------------------------------
    def caller(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            if self.anonymous_reads and request.method in ("GET", "HEAD"):
                return Caller("viewer", "anonymous")
            raise Rejected(
                401,
                "key_missing",
                "send an alerting API token: "
                "'Authorization: Bearer sr_…' (shiftright alerts tokens create)",
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise Rejected(
                401, "key_malformed", "the Authorization header must be 'Bearer <token>'"
            )
        found = self.tokens.check(token.strip())
        if found.problem == "revoked":
            raise Rejected(
                401, "key_revoked", f"the token {found.key.id if found.key else ''} was revoked"
            )
        if found.key is None or found.key.app not in _RANK:
            raise Rejected(
                401, "key_unknown", "not an alerting API token (shiftright alerts tokens list)"
            )
        return Caller(found.key.app, found.key.label or f"token {found.key.id}")

    def viewer(self, request: Request) -> Caller:
        return self.caller(request)

    def editor(self, request: Request) -> Caller:
        who = self.caller(request)
        if _RANK[who.role] < _RANK["editor"]:
            raise Rejected(
                403,
                "forbidden",
                f"a {who.role} token may read, not change, alerting "
                "(an editor token may: shiftright alerts tokens create --role editor)",
            )
        return who

    # -- collaborators ------------------------------------------------------------------
    def read(self) -> AlertingConfig:
        return _config_call(self.store.read)

    def warehouse(self) -> Any:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = self._warehouse()
                except Exception as exc:
                    raise _unavailable("warehouse_unavailable", exc) from exc
            return self._client

    def query(self, run: Callable[[Any], Any]) -> Any:
        client = self.warehouse()
        try:
            return run(client)
        except Exception as exc:
            raise _unavailable("warehouse_unavailable", exc) from exc

    # -- operations ---------------------------------------------------------------------
    def rules(self) -> dict[str, Any]:
        c = self.read()
        return {
            "version": c.version,
            "applied_by": c.applied_by,
            "applied_at": c.applied_at,
            "source": c.source,
            "yaml": c.text,
            "rules": [rule_summary(r) for r in c.rules.rules],
            "subscriptions": [
                {
                    "name": s.name,
                    "channel": s.channel,
                    "to": s.to,
                    "matchers": [str(m) for m in s.matchers],
                    "rules": s.rules,
                    "send_resolved": s.send_resolved,
                }
                for s in c.rules.subscriptions
            ],
        }

    def put_rules(
        self, text: str, who: Caller, dry_run: bool, if_match: str | None, author: str, source: str
    ) -> dict[str, Any]:
        try:
            new = parse_rules(text, source)
        except RuleFileError as exc:
            problems: list[FieldError] = [
                RuleProblem(p.field, "invalid", p.message, line=p.line) for p in exc.problems
            ]
            n = len(problems)
            raise Rejected(
                422,
                "invalid_rules",
                f"{n} problem{'s' if n != 1 else ''} in the rule file; nothing applied",
                problems,
            ) from None
        current = self.read()
        if if_match is not None and if_match.strip().strip('"') != str(current.version):
            raise Rejected(
                412,
                "version_conflict",
                f"version {current.version} is applied now, "
                f"not {if_match.strip()}: GET /rules, merge, and try again",
            )
        changes = [change_json(c) for c in diff(current.rules, new)]
        result = {
            "applied": False,
            "dry_run": dry_run,
            "version": current.version,
            "previous_version": current.version,
            "changes": changes,
        }
        if dry_run or (current.version and text == current.text):
            return result
        applied = _config_call(lambda: self.store.apply(text, author or who.name, source))
        return result | {"applied": True, "version": applied.version}

    def silences(self, expired: bool) -> dict[str, Any]:
        views = silences_of(self.read(), self.clock(), expired)
        return {"silences": [v.as_json() for v in views]}

    def add_silence(self, body: SilenceIn, who: Caller) -> dict[str, Any]:
        try:
            silence = make_silence(
                body.matchers,
                body.duration,
                body.comment,
                body.created_by or who.name,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                now=self.clock(),
            )
        except SilenceError as exc:
            raise Rejected(422, "invalid_silence", str(exc)) from None
        _config_call(lambda: self.store.add_silence(silence))
        state = "active" if silence.active(self.clock()) else "upcoming"
        return _silence_json(silence, state)

    def delete_silence(self, silence_id: str) -> dict[str, Any]:
        try:
            gone = _config_call(lambda: delete_silence(self.store, silence_id))
        except SilenceNotFound as exc:
            raise Rejected(404, "not_found", str(exc)) from None
        except SilenceInFile as exc:
            raise Rejected(409, "silence_in_rule_file", str(exc)) from None
        return _silence_json(gone, "deleted")

    def alerts(self, app: str, env: str) -> dict[str, Any]:
        rows = self.query(lambda c: current_alerts(c, app, env))
        firing = sum(1 for r in rows if r["state"] == "firing")
        return {
            "firing": firing,
            "pending": len(rows) - firing,
            "alerts": [jsonable(r) for r in rows],
        }

    def history(
        self, app: str, env: str, rule: str, since: datetime | None, limit: int
    ) -> dict[str, Any]:
        rows = self.query(lambda c: alert_history(c, app, env, rule, since, limit))
        return {"transitions": [jsonable(r) for r in rows]}


def _silence_json(silence: Any, state: str) -> dict[str, Any]:
    return SilenceView(silence, "api", state).as_json()


def _config_call(run: Callable[[], Any]) -> Any:
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        return run()
    except ConfigStoreError as exc:
        raise _unavailable("config_unavailable", exc) from exc


def _unavailable(reason: str, exc: Exception) -> GatewayError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return GatewayError(503, reason, first, retry_after=5)


async def _yaml_body(request: Request) -> str:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_RULES_BYTES:
            raise Rejected(413, "too_large", f"a rule file is at most {MAX_RULES_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "malformed_body", "the rule file must be UTF-8 text") from None


def _viewer(request: Request) -> Caller:
    api: AlertingApi = request.app.state.alerting
    return api.viewer(request)


def _editor(request: Request) -> Caller:
    api: AlertingApi = request.app.state.alerting
    return api.editor(request)


Viewer = Annotated[Caller, Depends(_viewer)]
Editor = Annotated[Caller, Depends(_editor)]


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

    @router.put(
        "/rules",
        response_model=ApplyOut,
        summary="Apply a rule file (YAML body)",
        responses={
            **ERRORS,
            **MALFORMED,
            412: {"model": ErrorBody, "description": "If-Match names another version"},
            413: {"model": ErrorBody, "description": "over 1 MiB"},
            422: {"model": ErrorBody, "description": "problems, by line and field"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def put_rules(
        request: Request,
        who: Editor,
        dry_run: Annotated[bool, Query(description="Validate and diff only.")] = False,
        author: Annotated[str, Query(description="Recorded as applied_by.")] = "",
        source: Annotated[str, Query(description="Where the file comes from.")] = "api",
    ) -> dict[str, Any]:
        text = await _yaml_body(request)
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
    def del_silence(silence_id: str, _: Editor) -> dict[str, Any]:
        return api.delete_silence(silence_id)

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
    app = FastAPI(
        title="shiftright alerting",
        version="1",
        description="Rules as code, silences and alerts. Bearer token: shiftright alerts "
        "tokens create --role viewer|editor.",
    )
    app.state.alerting = api
    app.include_router(alerting_router(api))

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
            methods |= route.methods
    return ", ".join(sorted(methods))


def alerting_app(settings: Settings) -> FastAPI:
    """The API on the configured Kafka, warehouse and token file."""
    from shiftright_server.infra.clickhouse import get_client

    ch = settings.clickhouse
    api = AlertingApi(
        open_store(settings),
        open_tokens(settings),
        lambda: get_client(ch, database=ch.database),
        anonymous_reads=not settings.gateway.require_key,
    )
    return create_alerting_app(api)
