"""What the gateway process serves: the ingest gateway, with the alerting API mounted at
``/api/v1/alerting`` and the flags API at ``/api/v1/flags`` (each its own application
and OpenAPI document), and uvicorn to serve it.

uvicorn builds the app with :func:`build_app` in each worker process (``--workers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI
    from shiftright_server.infra.settings import Settings


def build_app() -> FastAPI:
    """uvicorn's app factory: settings from the environment, as every component reads them."""
    from shiftright_server.infra.logs import configure_logging
    from shiftright_server.infra.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return assemble(settings)


def assemble(settings: Settings) -> FastAPI:
    """The gateway's application with the alerting and flags APIs mounted beside the ingest
    routes."""
    from shiftright_server.infra.api import alerting, flags
    from shiftright_server.producers.gateway import server

    app = server.assemble(settings)
    app.mount(alerting.PREFIX, alerting.alerting_app(settings))
    app.mount(flags.PREFIX, flags.flags_app(settings))
    return app


def serve(
    settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (the app is built from the environment's settings)."""
    import uvicorn

    g = settings.gateway
    uvicorn.run(
        f"{__name__}:build_app",
        factory=True,
        host=host or g.host,
        port=port or g.port,
        workers=workers or g.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
