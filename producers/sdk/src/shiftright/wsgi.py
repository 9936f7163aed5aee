"""WSGI middleware, and Flask instrumentation on top of it.

    from shiftright.wsgi import instrument_flask
    instrument_flask(app)

For other WSGI frameworks wrap the app in :class:`ShiftrightWSGIMiddleware`; a framework
that knows the route template puts it in ``environ["shiftright.route"]``. The duration is
measured until the app returns its response iterable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from shiftright import api, web
from shiftright.context import current

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ROUTE_KEY = "shiftright.route"
SCOPE_KEY = "shiftright.scope"

_App = TypeVar("_App")  # a Flask application, handed back as it came


class ShiftrightWSGIMiddleware:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        client = api.get_client()
        if client is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD", ""))
        request_scope = web.begin(
            method,
            str(environ.get("PATH_INFO", "")),
            lambda name: environ.get("HTTP_" + name.upper().replace("-", "_")),
        )
        environ[SCOPE_KEY] = request_scope
        route: Callable[[], str] = lambda: str(environ.get(ROUTE_KEY, ""))  # noqa: E731
        status = 0

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            try:
                status = int(status_line.split(" ", 1)[0])
            except ValueError:
                status = 0
            return start_response(status_line, headers, exc_info)

        token = current.set(request_scope)
        try:
            return self.app(environ, start)
        except Exception as exc:
            web.capture(request_scope, exc, route, "wsgi", lambda: environ_headers(environ))
            status = status or 500
            raise
        finally:
            current.reset(token)
            web.finish(client, request_scope, method, route, status or 500, started)


def environ_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (k[5:].replace("_", "-").lower(), str(v))
        for k, v in environ.items()
        if k.startswith("HTTP_")
    ]


def instrument_flask(app: _App) -> _App:
    """Usage per request with Flask's ``url_rule`` as the route; handler exceptions as errors."""
    from flask import got_request_exception, request

    flask_app: Any = app  # Flask is optional for the SDK: no Flask types here
    flask_app.wsgi_app = ShiftrightWSGIMiddleware(flask_app.wsgi_app)

    def _route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    def _exception(sender: Any, exception: BaseException, **extra: Any) -> None:
        environ = request.environ
        scope = environ.get(SCOPE_KEY)
        if scope is not None:
            web.capture(
                scope,
                exception,
                lambda: str(environ.get(ROUTE_KEY, "")),
                "flask",
                lambda: environ_headers(environ),
            )

    flask_app.before_request(_route)
    got_request_exception.connect(_exception, flask_app, weak=False)
    return app
