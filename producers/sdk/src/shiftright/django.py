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
        scope = web.begin(request.method or "", request.path, request.headers.get)
        setattr(request, SCOPE_ATTR, scope)
        status = 500
        token = current.set(scope)
        try:
            response = self.get_response(request)
            status = int(getattr(response, "status_code", 500))
            return response
        finally:
            current.reset(token)
            user = getattr(request, "_cached_user", None)  # only if the app already loaded it
            if not scope.user_id and getattr(user, "is_authenticated", False):
                scope.user_id = str(getattr(user, "pk", ""))
            web.finish(client, scope, request.method or "", route_of(request), status, started)

    def process_exception(self, request: Any, exception: Exception) -> None:
        scope = getattr(request, SCOPE_ATTR, None)
        if scope is not None:
            web.capture(scope, exception, route_of(request), "django")


def route_of(request: Any) -> str:
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None) if match is not None else None
    return "/" + route.lstrip("/").lstrip("^") if route else ""
