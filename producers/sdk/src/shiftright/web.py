"""What every middleware does around a request: push a request scope (request id, W3C trace
context, so the request's usage event and any error event share them), then send one usage
event with the route template, method, status and duration.

Each function here is guarded: a failure in the SDK's own request handling costs that
request its events, never its response.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

from shiftright import api, testing
from shiftright.client import Client
from shiftright.context import Scope, current

Header = Callable[[str], str | None]
#: Request headers attached to error events (as OTel ``http.request.header.<name>``),
#: scrubbed like every attribute before they leave the process.
MAX_HEADERS = 24
MAX_HEADER_VALUE = 1024


def begin(method: str, path: str, header: Header) -> Scope:
    """A child of the current scope for one request; the caller sets it as current."""
    scope = current.get().child()
    try:
        attributes = scope.attributes
        attributes["request.id"] = (header("x-request-id") or uuid.uuid4().hex)[:64]
        attributes["http.request.method"] = method
        attributes["url.path"] = path[:200]
        traceparent = header("traceparent")
        if traceparent:
            parts = traceparent.split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                attributes["trace_id"], attributes["span_id"] = parts[1], parts[2]
        client = api.get_client()
        attributes.update(
            testing.request_marks(header("baggage"), client.config if client is not None else None)
        )
    except Exception:
        pass
    return scope


def finish(
    client: Client,
    scope: Scope,
    method: str,
    route: Callable[[], str],
    status: int,
    started: float,
    user: Callable[[], str] | None = None,
) -> None:
    """The request's usage event (sent from within its scope, so it shares the request id)."""
    duration_ms = (time.perf_counter() - started) * 1000.0
    try:
        client.requests += 1
        if user is not None and not scope.user_id:
            scope.user_id = user()
        template = route()
    except Exception:
        template = ""
    token = current.set(scope)
    try:
        client.enqueue(
            "usage",
            {
                "name": f"{method} {template or '<unmatched>'}",
                "route": template,
                "method": method,
                "status_code": status,
                "duration_ms": round(duration_ms, 3),
            },
        )
    except Exception:
        pass
    finally:
        current.reset(token)


def capture(
    scope: Scope,
    error: BaseException,
    route: Callable[[], str],
    mechanism: str,
    headers: Callable[[], Iterable[tuple[str, str]]] | None = None,
) -> None:
    """An exception the handler did not handle, linked to the request by its scope."""
    token = current.set(scope)
    try:
        scope.route = route()
        attributes: dict[str, str] = {}
        for name, value in list(headers() if headers is not None else ())[:MAX_HEADERS]:
            if name.lower() == "baggage":
                value = testing.without_token(value)
            attributes[f"http.request.header.{name.lower()}"] = value[:MAX_HEADER_VALUE]
        api._capture(
            error, handled=False, mechanism=mechanism, route=scope.route, attributes=attributes
        )
    except Exception:
        pass
    finally:
        current.reset(token)
