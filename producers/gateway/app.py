"""The gateway's HTTP application (FastAPI/Starlette).

Each request: key → early Kafka check → body within limits → parse → validate every event
with the pipeline's validator → produce → wait for Kafka's acknowledgement → 200. Any
refusal is a :class:`~producers.gateway.errors.GatewayError` answered by one handler, in
JSON (or, on OTLP routes, a ``google.rpc.Status`` in the request's encoding).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from prometheus_client import CONTENT_TYPE_LATEST
from shiftright_server.infra.access.ingest_keys import IngestKey, Lookup
from shiftright_server.infra.settings import GatewaySettings
from shiftright_server.producers.gateway import body as bodies
from shiftright_server.producers.gateway import intake, openapi
from shiftright_server.producers.gateway.errors import GatewayError, Rejected
from shiftright_server.producers.gateway.flags import FlagAnswers, flag_routes
from shiftright_server.producers.gateway.metrics import GatewayMetrics
from shiftright_server.producers.gateway.otlp import decode
from shiftright_server.producers.gateway.otlp.common import Translation
from shiftright_server.producers.gateway.otlp.logs import translate_logs
from shiftright_server.producers.gateway.otlp.metrics import translate_metrics
from shiftright_server.producers.gateway.otlp.traces import translate_traces
from shiftright_server.producers.gateway.publisher import OutMessage
from shiftright_server.schemas.validation import Limits
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

log = structlog.get_logger("shiftright.gateway")

OTLP_ROUTES = ("/v1/logs", "/v1/metrics", "/v1/traces")
_JSON_TYPES = ("", "application/json", "application/x-ndjson")

ExportResponse = (
    logs_pb.ExportLogsServiceResponse
    | metrics_pb.ExportMetricsServiceResponse
    | trace_pb.ExportTraceServiceResponse
)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Publisher(Protocol):
    @property
    def pending_events(self) -> int: ...
    @property
    def kafka_up(self) -> bool: ...
    def check(self) -> None: ...
    async def publish(self, messages: list[OutMessage]) -> None: ...


class KeyChecker(Protocol):
    def check(self, token: str) -> Lookup: ...


class Gateway:
    """The request handling, independent of the web framework's wiring."""

    def __init__(
        self,
        settings: GatewaySettings,
        keys: KeyChecker,
        publisher: Publisher,
        limits: Limits,
        metrics: GatewayMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        flags: FlagAnswers | None = None,
    ) -> None:
        self.flags = flags  # OFREP and flagd JSON (producers.gateway.flags)
        self.settings = settings
        self.keys = keys
        self.publisher = publisher
        self.limits = limits
        self.metrics = metrics or GatewayMetrics()
        self.clock = clock

    def authenticate(self, request: Request) -> IngestKey | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            if not self.settings.require_key:
                return None
            raise _unauthorized("key_missing", "send your ingest key: 'Authorization: Bearer sr_…'")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("key_malformed", "the Authorization header must be 'Bearer <key>'")
        found = self.keys.check(token.strip())
        if found.problem == "revoked":
            raise _unauthorized(
                "key_revoked", f"the ingest key {found.key.id if found.key else ''} was revoked"
            )
        if found.key is None:
            raise _unauthorized(
                "key_unknown", "the ingest key is not known (shiftright gateway keys list)"
            )
        return found.key

    async def read(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        raw = await bodies.read_limited(
            request.stream(), request.headers.get("content-length"), limit
        )
        return bodies.decode(raw, request.headers.get("content-encoding"), limit)

    async def events(self, request: Request) -> Response:
        key = self.authenticate(request)
        kind = decode.media_type(request.headers.get("content-type"))
        if kind not in _JSON_TYPES:
            raise Rejected(
                415,
                "unsupported_media_type",
                f"Content-Type {kind!r} is not supported; send application/json",
            )
        self.publisher.check()
        body = await self.read(request)
        if kind == "application/x-ndjson":
            body = b"[" + b",".join(line for line in body.splitlines() if line.strip()) + b"]"
        items = intake.parse_batch(body, self.settings.max_events_per_request)
        checked = intake.check(items, key, self.clock(), self.limits)
        self._count_refused(checked)
        intake.raise_for(checked, len(items))
        await self._publish(checked.accepted)
        return JSONResponse(
            {
                "accepted": len(checked.accepted),
                "event_ids": [str(e.event_id) for e in checked.accepted],
            }
        )

    async def otlp(
        self,
        request: Request,
        message: type[Message],
        translate: Callable[[Any], Translation],
        answer: ExportResponse,
        rejected_field: str,
        signal: str,
    ) -> Response:
        key = self.authenticate(request)
        ctype = decode.require_media_type(request.headers.get("content-type"))
        self.publisher.check()
        parsed = decode.parse(await self.read(request), ctype, message)
        translation = translate(parsed)
        checked = intake.check(translation.items, key, self.clock(), self.limits)
        self._count_refused(checked)
        if checked.forbidden:
            intake.raise_for(
                intake.Checked(forbidden=checked.forbidden, rejected=checked.rejected),
                len(translation.items),
            )
        await self._publish(checked.accepted)
        rejected = translation.skipped_total + checked.rejected_records
        if rejected:
            self.metrics.records_skipped.labels(signal).inc(translation.skipped_total)
            partial = answer.partial_success
            setattr(partial, rejected_field, rejected)
            partial.error_message = _summary(translation, checked)
        return Response(decode.encode(answer, ctype), media_type=ctype)

    async def _publish(self, events: list[Any]) -> None:
        await self.publisher.publish(intake.messages(events))
        for kind, count in Counter(event.kind for event in events).items():
            self.metrics.events_accepted.labels(kind).inc(count)

    def _count_refused(self, checked: intake.Checked) -> None:
        for problem in checked.invalid + checked.forbidden:
            self.metrics.events_refused.labels(problem.reason).inc()


def _unauthorized(reason: str, message: str) -> Rejected:
    return Rejected(401, reason, message)


def _summary(translation: Translation, checked: intake.Checked) -> str:
    parts = [f"{n} not stored: {why}" for why, n in translation.skipped.items()]
    parts += [f"{e.path}: {e.message}" for e in checked.invalid[:5]]
    if len(checked.invalid) > 5:
        parts.append(f"and {len(checked.invalid) - 5} more invalid")
    return "; ".join(parts)


def create_app(gateway: Gateway, lifespan: Lifespan | None = None) -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="shiftright ingest gateway",
        version="1",
        description="Events from apps in any language: JSON batches and OTLP/HTTP, into Kafka. "
        "A 200 means Kafka has every event of the request.",
    )
    _routes(app, gateway)
    if gateway.flags is not None:
        flag_routes(app, gateway.flags, gateway.authenticate)
    _errors(app, gateway)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way
    app.add_middleware(_Measure, metrics=gateway.metrics)
    return app


def _routes(app: FastAPI, gw: Gateway) -> None:
    limit = gw.settings.max_events_per_request

    @app.post(
        "/v1/events",
        summary="Send one event or a list of events",
        responses={200: {"model": openapi.Accepted}, **openapi.ERRORS},
        openapi_extra={"requestBody": openapi.events_body(limit), "security": [{"ingestKey": []}]},
    )
    async def post_events(request: Request) -> Response:
        return await gw.events(request)

    otlp: list[
        tuple[str, type[Message], Callable[[Any], Translation], type[ExportResponse], str, str]
    ] = [
        (
            "/v1/logs",
            logs_pb.ExportLogsServiceRequest,
            translate_logs,
            logs_pb.ExportLogsServiceResponse,
            "rejected_log_records",
            "logs",
        ),
        (
            "/v1/metrics",
            metrics_pb.ExportMetricsServiceRequest,
            translate_metrics,
            metrics_pb.ExportMetricsServiceResponse,
            "rejected_data_points",
            "metrics",
        ),
        (
            "/v1/traces",
            trace_pb.ExportTraceServiceRequest,
            translate_traces,
            trace_pb.ExportTraceServiceResponse,
            "rejected_spans",
            "traces",
        ),
    ]
    for path, message, translate, answer, field, signal in otlp:
        app.add_api_route(
            path,
            _otlp_endpoint(gw, message, translate, answer, field, signal),
            methods=["POST"],
            summary=f"OTLP/HTTP {signal}",
            responses=openapi.otlp_responses(answer.__name__),
            openapi_extra={
                "requestBody": openapi.otlp_body(message.__name__),
                "security": [{"ingestKey": []}],
            },
            name=f"otlp_{signal}",
        )

    @app.get("/healthz", responses={200: {"model": openapi.Health}, 503: {"model": openapi.Health}})
    async def healthz() -> Response:
        up = gw.publisher.kafka_up
        body = {
            "status": "ok" if up else "degraded",
            "kafka": "up" if up else "down",
            "pending_events": gw.publisher.pending_events,
        }
        return JSONResponse(body, status_code=200 if up else 503)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        gw.metrics.pending.set(gw.publisher.pending_events)
        gw.metrics.kafka_up.set(1 if gw.publisher.kafka_up else 0)
        return Response(gw.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _otlp_endpoint(
    gw: Gateway,
    message: type[Message],
    translate: Callable[[Any], Translation],
    answer: type[ExportResponse],
    field: str,
    signal: str,
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await gw.otlp(request, message, translate, answer(), field, signal)

    return endpoint


def _errors(app: FastAPI, gw: Gateway) -> None:
    @app.exception_handler(GatewayError)
    async def refused(request: Request, exc: GatewayError) -> Response:
        return _refusal(request, exc, gw.metrics)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _refusal(request, GatewayError(exc.status_code, reason, str(exc.detail)), gw.metrics)


def _refusal(request: Request, exc: GatewayError, metrics: GatewayMetrics) -> Response:
    metrics.rejects.labels(exc.reason).inc()
    if exc.status >= 500:
        log.warning("request_refused", status=exc.status, reason=exc.reason, detail=exc.message)
    headers = exc.headers()
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if request.url.path in OTLP_ROUTES:
        ctype = decode.media_type(request.headers.get("content-type"))
        ctype = ctype if ctype == decode.PROTOBUF else decode.JSON
        text = exc.message + "".join(f"; {e.path}: {e.message}" for e in exc.errors[:20])
        return Response(
            decode.status(_grpc_code(exc.status), text, ctype),
            exc.status,
            headers,
            media_type=ctype,
        )
    return JSONResponse(exc.body(), exc.status, headers)


def _grpc_code(status: int) -> int:
    """google.rpc.Code for an HTTP status (INVALID_ARGUMENT, UNAUTHENTICATED, …)."""
    return {401: 16, 403: 7, 404: 5, 413: 11, 429: 8, 503: 14}.get(
        status, 3 if status < 500 else 13
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        spec = openapi.add_components(spec)
        spec["components"]["securitySchemes"] = {"ingestKey": {"type": "http", "scheme": "bearer"}}
        app.openapi_schema = spec
    return app.openapi_schema


class _Measure:
    """Requests by route and status, and latency, for every request (pure ASGI)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: AsgiMessage) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            # Templates only (bounded label values): plain routes have no parameters.
            name = getattr(route, "path", None) or (
                scope["path"] if "endpoint" in scope else "unmatched"
            )
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
