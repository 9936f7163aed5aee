"""What every middleware does around a request: push a request scope (request id, W3C trace
context, so the request's usage event and any error event share them), then send one usage
event with the route template, method, status and duration."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from shiftright import api
from shiftright.client import Client
from shiftright.context import Scope, current


def begin(method: str, path: str, header: Callable[[str], str | None]) -> Scope:
    """A child of the current scope for one request; the caller sets it as current."""
    scope = current.get().child()
    attributes = scope.attributes
    attributes["request.id"] = (header("x-request-id") or uuid.uuid4().hex)[:64]
    attributes["http.request.method"] = method
    attributes["url.path"] = path[:200]
    traceparent = header("traceparent")
    if traceparent:
        parts = traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
            attributes["trace_id"], attributes["span_id"] = parts[1], parts[2]
    return scope


def finish(
    client: Client, scope: Scope, method: str, route: str, status: int, started: float
) -> None:
    """The request's usage event (sent from within its scope, so it shares the request id)."""
    duration_ms = (time.perf_counter() - started) * 1000.0
    client.requests += 1
    token = current.set(scope)
    try:
        client.enqueue("usage", {"name": f"{method} {route or '<unmatched>'}", "route": route,
                                 "method": method, "status_code": status,
                                 "duration_ms": round(duration_ms, 3)})  # fmt: skip
    finally:
        current.reset(token)


def capture(scope: Scope, error: BaseException, route: str, mechanism: str) -> None:
    """An exception the handler did not handle, linked to the request by its scope."""
    scope.route = route
    token = current.set(scope)
    try:
        api._capture(error, handled=False, mechanism=mechanism, route=route)
    finally:
        current.reset(token)
