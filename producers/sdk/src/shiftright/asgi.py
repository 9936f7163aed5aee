"""ASGI middleware (Starlette, FastAPI): ``app.add_middleware(ShiftrightMiddleware)``.

The route template is read from ``scope["route"]`` after the app ran (Starlette's router
stores the matched route there), so ``/items/{item_id}`` is reported, never ``/items/42``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shiftright import api, hooks, web
from shiftright.context import current

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ShiftrightMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = api.get_client()
        if client is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if client.config.hooks:
            with contextlib.suppress(Exception):
                hooks.install_loop_handler(api._capture, asyncio.get_running_loop())
        started = time.perf_counter()
        method = str(scope.get("method", ""))
        request_scope = web.begin(method, str(scope.get("path", "")), lambda n: _header(scope, n))
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        token = current.set(request_scope)
        try:
            await self.app(scope, receive, send_status)
        except Exception as exc:
            web.capture(
                request_scope, exc, lambda: route_template(scope), "asgi", lambda: _headers(scope)
            )
            status = status or 500
            raise
        finally:
            current.reset(token)
            web.finish(
                client,
                request_scope,
                method,
                lambda: route_template(scope),
                status or 500,
                started,
                lambda: _user(scope),
            )


def route_template(scope: Scope) -> str:
    """The matched route's path template, with the literal prefix of any Mount."""
    route = scope.get("route")
    if route is None:
        return ""
    path = getattr(route, "path_format", None) or getattr(route, "path", "") or ""
    root = scope.get("root_path", "")
    app_root = scope.get("app_root_path", root)
    prefix = root[len(app_root) :] if root.startswith(app_root) else ""
    return f"{prefix}{path}"


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())]


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return str(value.decode("latin-1"))
    return None


def _user(scope: Scope) -> str:
    """Starlette's AuthenticationMiddleware user, when there is one."""
    user = scope.get("user")
    if getattr(user, "is_authenticated", False):
        return str(getattr(user, "identity", "") or "")
    return ""
