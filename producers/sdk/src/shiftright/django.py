"""Django middleware: add ``"shiftright.django.ShiftrightMiddleware"`` to MIDDLEWARE (first,
so it times the whole request). The route is ``request.resolver_match.route``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shiftright import api, web
from shiftright.context import current

SCOPE_ATTR = "_shiftright_scope"


class ShiftrightMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        client = api.get_client()
        if client is None:
            return self.get_response(request)
        started = time.perf_counter()
        method = str(request.method or "")
        scope = web.begin(method, str(request.path), request.headers.get)
        setattr(request, SCOPE_ATTR, scope)
        status = 500
        token = current.set(scope)
        try:
            response = self.get_response(request)
            status = int(getattr(response, "status_code", 500))
            return response
        finally:
            current.reset(token)
            web.finish(client, scope, method, lambda: route_of(request), status, started,
                       lambda: _user(request))  # fmt: skip

    def process_exception(self, request: Any, exception: Exception) -> None:
        scope = getattr(request, SCOPE_ATTR, None)
        if scope is not None:
            web.capture(scope, exception, lambda: route_of(request), "django",
                        lambda: request.headers.items())  # fmt: skip


def route_of(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return "/" + route.lstrip("/").lstrip("^") if route else ""


def _user(request: Any) -> str:
    user = getattr(request, "_cached_user", None)  # only if the app already loaded the user
    if getattr(user, "is_authenticated", False):
        return str(getattr(user, "pk", ""))
    return ""
