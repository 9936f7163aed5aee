"""``python -m shiftright_server.dashboard``: serve the dashboard on the configured
host and port (``SHIFTRIGHT_DASHBOARD__HOST`` / ``__PORT``)."""

from __future__ import annotations

import uvicorn
from shiftright_server.dashboard.app import create_app
from shiftright_server.infra.logs import configure_logging
from shiftright_server.infra.settings import load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.dashboard.host,
        port=settings.dashboard.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
