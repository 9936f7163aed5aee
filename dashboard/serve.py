"""Serving a dashboard application with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from shiftright_server.infra.logs import configure_logging
from shiftright_server.infra.settings import Settings


def serve(settings: Settings, app: FastAPI) -> None:
    configure_logging(settings.log_level, settings.log_json)
    uvicorn.run(
        app,
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
