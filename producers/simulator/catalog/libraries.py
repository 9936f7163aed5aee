"""Library and framework frames: what sits between an app's frames and the raising line."""

from __future__ import annotations

from dataclasses import dataclass

SITE_PACKAGES = "/usr/local/lib/python3.11/site-packages/"
STDLIB = "/usr/local/lib/python3.11/"


@dataclass(frozen=True)
class Frame:
    """One stack frame as a traceback shows it."""

    module: str
    function: str
    filename: str
    lineno: int
    code: str  # the source line
    in_app: bool = False


#: library -> its frames below the app's call, outermost first ("": the app raises itself)
LIBRARIES: dict[str, tuple[Frame, ...]] = {
    "": (),
    "requests": (
        Frame(
            module="requests.api",
            function="post",
            filename=SITE_PACKAGES + "requests/api.py",
            lineno=115,
            code="return request(...)",
        ),
        Frame(
            module="requests.sessions",
            function="send",
            filename=SITE_PACKAGES + "requests/sessions.py",
            lineno=703,
            code="r = adapter.send(request, **kwargs)",
        ),
        Frame(
            module="requests.adapters",
            function="send",
            filename=SITE_PACKAGES + "requests/adapters.py",
            lineno=700,
            code="raise ConnectionError(e, request=request)",
        ),
    ),
    "psycopg": (
        Frame(
            module="psycopg.cursor",
            function="execute",
            filename=SITE_PACKAGES + "psycopg/cursor.py",
            lineno=97,
            code="raise ex.with_traceback(None)",
        ),
    ),
    "redis": (
        Frame(
            module="redis.commands.core",
            function="get",
            filename=SITE_PACKAGES + "redis/commands/core.py",
            lineno=1829,
            code='return self.execute_command("GET", name)',
        ),
        Frame(
            module="redis.connection",
            function="connect",
            filename=SITE_PACKAGES + "redis/connection.py",
            lineno=363,
            code="raise ConnectionError(self._error_message(e))",
        ),
    ),
    "httpx": (
        Frame(
            module="httpx._client",
            function="get",
            filename=SITE_PACKAGES + "httpx/_client.py",
            lineno=1801,
            code="return await self.request(",
        ),
        Frame(
            module="httpx._transports.default",
            function="handle_async_request",
            filename=SITE_PACKAGES + "httpx/_transports/default.py",
            lineno=393,
            code="with map_httpcore_exceptions():",
        ),
    ),
    "json": (
        Frame(
            module="json",
            function="loads",
            filename=STDLIB + "json/__init__.py",
            lineno=346,
            code="return _default_decoder.decode(s)",
        ),
        Frame(
            module="json.decoder",
            function="raw_decode",
            filename=STDLIB + "json/decoder.py",
            lineno=355,
            code='raise JSONDecodeError("Expecting value", s, err.value) from None',
        ),
    ),
    "json_enc": (
        Frame(
            module="json",
            function="dumps",
            filename=STDLIB + "json/__init__.py",
            lineno=238,
            code="**kw).encode(obj)",
        ),
        Frame(
            module="json.encoder",
            function="default",
            filename=STDLIB + "json/encoder.py",
            lineno=180,
            code="raise TypeError(f'Object of type {o.__class__.__name__} '",
        ),
    ),
    "sqlalchemy": (
        Frame(
            module="sqlalchemy.orm.session",
            function="flush",
            filename=SITE_PACKAGES + "sqlalchemy/orm/session.py",
            lineno=4345,
            code="self._flush(objects)",
        ),
        Frame(
            module="sqlalchemy.engine.default",
            function="do_execute",
            filename=SITE_PACKAGES + "sqlalchemy/engine/default.py",
            lineno=941,
            code="cursor.execute(statement, parameters)",
        ),
    ),
    "stripe": (
        Frame(
            module="stripe._api_requestor",
            function="_interpret_response",
            filename=SITE_PACKAGES + "stripe/_api_requestor.py",
            lineno=834,
            code="self.handle_error_response(rbody, rcode)",
        ),
    ),
    "botocore": (
        Frame(
            module="botocore.client",
            function="_api_call",
            filename=SITE_PACKAGES + "botocore/client.py",
            lineno=565,
            code="return self._make_api_call(operation_name, kwargs)",
        ),
        Frame(
            module="botocore.client",
            function="_make_api_call",
            filename=SITE_PACKAGES + "botocore/client.py",
            lineno=1021,
            code="raise error_class(parsed_response, operation_name)",
        ),
    ),
    "pydantic": (
        Frame(
            module="pydantic.main",
            function="model_validate",
            filename=SITE_PACKAGES + "pydantic/main.py",
            lineno=627,
            code="return cls.__pydantic_validator__.validate_python(",
        ),
    ),
    "aiohttp": (
        Frame(
            module="aiohttp.client_reqrep",
            function="raise_for_status",
            filename=SITE_PACKAGES + "aiohttp/client_reqrep.py",
            lineno=1161,
            code="raise ClientResponseError(",
        ),
    ),
    "celery": (
        Frame(
            module="celery.result",
            function="get",
            filename=SITE_PACKAGES + "celery/result.py",
            lineno=251,
            code="return self.backend.wait_for_pending(",
        ),
        Frame(
            module="celery.backends.base",
            function="wait_for_pending",
            filename=SITE_PACKAGES + "celery/backends/base.py",
            lineno=755,
            code="meta = self.wait_for(",
        ),
    ),
    "elasticsearch": (
        Frame(
            module="elasticsearch._sync.client._base",
            function="perform_request",
            filename=SITE_PACKAGES + "elasticsearch/_sync/client/_base.py",
            lineno=271,
            code="raise HTTP_EXCEPTIONS.get(meta.status, ApiError)(",
        ),
    ),
    "jwt": (
        Frame(
            module="jwt.api_jwt",
            function="decode",
            filename=SITE_PACKAGES + "jwt/api_jwt.py",
            lineno=210,
            code="decoded = self.decode_complete(",
        ),
        Frame(
            module="jwt.api_jwt",
            function="_validate_exp",
            filename=SITE_PACKAGES + "jwt/api_jwt.py",
            lineno=363,
            code='raise ExpiredSignatureError("Signature has expired")',
        ),
    ),
}
#: the web framework frames every request runs under, outermost first
FRAMEWORK: tuple[Frame, ...] = (
    Frame(
        module="starlette.routing",
        function="handle",
        filename=SITE_PACKAGES + "starlette/routing.py",
        lineno=288,
        code="await self.app(scope, receive, send)",
    ),
    Frame(
        module="fastapi.routing",
        function="app",
        filename=SITE_PACKAGES + "fastapi/routing.py",
        lineno=301,
        code="raw_response = await run_endpoint_function(",
    ),
)

#: Sites that call through these libraries report the app's generic
#: ``<app>.api.errors.UpstreamError`` raised from the library's error.
WRAPPED_LIBRARIES = frozenset({"requests", "psycopg", "sqlalchemy", "botocore"})
