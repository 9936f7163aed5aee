"""Django middleware: add ``"shiftright.django.ShiftrightMiddleware"`` to MIDDLEWARE (first,
so it times the whole request). The route is ``request.resolver_match.route``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from shiftright import api, web
from shiftright.client import Client
from shiftright.context import Scope, current

SCOPE_ATTR = "_shiftright_scope"


class ShiftrightMiddleware:
    """Sync or async, as the rest of the middleware chain is (Django picks per request)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        client = api.get_client()
        if self._async:
            return self._acall(request, client)
        if client is None:
            return self.get_response(request)
        started, scope = self._begin(request)
        status = 500
        token = current.set(scope)
        try:
            response = self.get_response(request)
            status = int(getattr(response, "status_code", 500))
            return response
        finally:
            current.reset(token)
            self._finish(client, request, scope, status, started)

    async def _acall(self, request: Any, client: Client | None) -> Any:
        if client is None:
            return await self.get_response(request)
        started, scope = self._begin(request)
        status = 500
        token = current.set(scope)
        try:
            response = await self.get_response(request)
            status = int(getattr(response, "status_code", 500))
            return response
        finally:
            current.reset(token)
            self._finish(client, request, scope, status, started)

    def _begin(self, request: Any) -> tuple[float, Scope]:
        started = time.perf_counter()
        scope = web.begin(str(request.method or ""), str(request.path), request.headers.get)
        setattr(request, SCOPE_ATTR, scope)
        return started, scope

    def _finish(
        self, client: Client, request: Any, scope: Scope, status: int, started: float
    ) -> None:
        web.finish(
            client,
            scope,
            str(request.method or ""),
            lambda: route_of(request),
            status,
            started,
            lambda: _user(request),
        )

    def process_exception(self, request: Any, exception: Exception) -> None:
        scope = getattr(request, SCOPE_ATTR, None)
        if scope is not None:
            web.capture(
                scope,
                exception,
                lambda: route_of(request),
                "django",
                lambda: request.headers.items(),
            )


def route_of(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return "/" + route.lstrip("/").lstrip("^") if route else ""


def _user(request: Any) -> str:
    user = getattr(request, "_cached_user", None)  # only if the app already loaded the user
    if getattr(user, "is_authenticated", False):
        return str(getattr(user, "pk", ""))
    return ""
