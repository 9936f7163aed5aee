"""The flags HTTP API, served by the ingest gateway under ``/api/v1/flags``.

* ``GET /flags?app=`` — every applied flag: kind, variants, and per environment the
  state apps evaluate, the file's state, the flip in force and its last actor and time.
* ``GET /flags/{app}/{flag}`` — one of them.
* ``GET /files/{app}`` — the applied flag file (``ETag`` = its version).
  ``PUT /files/{app}`` — a YAML body: 422 naming the line and field of every problem;
  else the diff and the new version (``?dry_run=true`` applies nothing; ``If-Match:
  "<version>"`` refuses with 412 when someone applied in between).
* ``POST /flags/{app}/{flag}/environments/{env}/flip`` ``{"to": "off", "reason": …}`` —
  force on, off or a variant until restored (an alert never undoes it);
  ``POST …/restore`` — the file's state holds again (409 when nothing is flipped).

Every request carries ``Authorization: Bearer <token>``, a personal API token
(``shiftright tokens create``; ``read`` reads, ``write`` of an editor or admin also
changes) or a service token; ingest keys are refused. Each change is the same records
and change events as ``shiftright flags`` writes (actor: the token owner's e-mail, or
``token:<label>`` for a token owned by no one) and an entry in the audit trail.
Errors have the gateway's shape: ``{"error": reason, "message": …, "errors": [...]}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, Field
from shiftright_server.infra.api.alerting import api_app, put_file_route, yaml_body
from shiftright_server.infra.api.alerting_bodies import (
    ERRORS,
    MALFORMED,
    DryRun,
    ErrorBody,
    Source,
)
from shiftright_server.infra.api.flags_handler import FlagsApi
from shiftright_server.infra.api.gate import Editor, Viewer
from shiftright_server.infra.api.tokens import open_tokens
from shiftright_server.schemas.flags import FlagStatus
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

PREFIX = "/api/v1/flags"


class FlagsOut(BaseModel):
    flags: list[FlagStatus]


class FileOut(BaseModel):
    app: str
    version: int
    applied_by: str
    applied_at: str | None
    source: str
    yaml: str


class FlipIn(BaseModel):
    to: str = Field(description="on, off or one of the flag's variants", min_length=1)
    reason: str = Field(default="", max_length=2000, description="Why (shown with the flip).")


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}}


def flags_router(api: FlagsApi) -> APIRouter:
    router = APIRouter()
    _reads(router, api)
    _changes(router, api)
    return router


def _reads(router: APIRouter, api: FlagsApi) -> None:
    @router.get("/flags", response_model=FlagsOut, responses=ERRORS, summary="Every flag")
    def get_flags(_: Viewer, app: str = "") -> dict[str, Any]:
        return api.statuses(app)

    @router.get(
        "/flags/{app}/{flag}",
        response_model=FlagStatus,
        responses={**ERRORS, **NOT_FOUND},
        summary="One flag",
    )
    def get_flag(app: str, flag: str, _: Viewer) -> FlagStatus:
        return api.status(app, flag)

    @router.get(
        "/files/{app}",
        response_model=FileOut,
        responses={**ERRORS, **NOT_FOUND},
        summary="The applied flag file",
    )
    def get_file(app: str, response: Response, _: Viewer) -> dict[str, Any]:
        body = api.file(app)
        response.headers["ETag"] = f'"{body["version"]}"'
        return body


def _changes(router: APIRouter, api: FlagsApi) -> None:
    @put_file_route(router, "/files/{app}", "Apply a flag file (YAML body)")
    async def put_file(
        app: str,
        request: Request,
        who: Editor,
        dry_run: DryRun = False,
        source: Source = "api",
    ) -> dict[str, Any]:
        text = await yaml_body(request, "flag file")
        if_match = request.headers.get("if-match")
        return await run_in_threadpool(api.put_file, app, text, who, dry_run, if_match, source)

    where = "/flags/{app}/{flag}/environments/{env}"
    refusals: dict[int | str, dict[str, Any]] = {
        **ERRORS,
        **MALFORMED,
        **NOT_FOUND,
        422: {"model": ErrorBody},
    }

    @router.post(f"{where}/flip", response_model=FlagStatus, responses=refusals, summary="Flip")
    def post_flip(app: str, flag: str, env: str, body: FlipIn, who: Editor) -> FlagStatus:
        return api.flip(app, flag, env, body.to, body.reason, who)

    @router.post(
        f"{where}/restore",
        response_model=FlagStatus,
        responses={**refusals, 409: {"model": ErrorBody, "description": "not flipped"}},
        summary="End the flip in force",
    )
    def post_restore(app: str, flag: str, env: str, who: Editor) -> FlagStatus:
        return api.restore(app, flag, env, who)


def create_flags_app(api: FlagsApi) -> FastAPI:
    """The API as an application of its own (the gateway mounts it at :data:`PREFIX`)."""
    description = (
        "Feature flags: list, apply, flip, restore. Bearer token: shiftright tokens create."
    )
    app = api_app("shiftright flags", description, flags_router(api), api)
    return app


def flags_app(settings: Settings) -> FastAPI:
    """The API on the configured Kafka and identity store."""
    from shiftright_server.infra.access.audit import WarehouseAudit
    from shiftright_server.infra.flags_config import FlagTopic
    from shiftright_server.sinks.flags.admin import FlagAdmin

    tokens = open_tokens(settings)
    topic = FlagTopic(settings.kafka.bootstrap_servers, settings.namespace)
    api = FlagsApi(
        FlagAdmin(topic),
        tokens,
        anonymous_reads=not settings.gateway.require_key,
        audit=WarehouseAudit(tokens.identity.db, settings.clickhouse),
    )
    return create_flags_app(api)
