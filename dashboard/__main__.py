"""``python -m shiftright_server.dashboard``: serve the dashboard on the configured
host and port (``SHIFTRIGHT_DASHBOARD__HOST`` / ``__PORT``) without the alerting service,
so its alert pages show rules read-only; ``shiftright up`` runs
``python -m shiftright_server.infra.ops.dashboard``, which can change them."""

from __future__ import annotations

from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.serve import serve
from shiftright_server.infra.settings import load_settings


def main() -> None:
    settings = load_settings()
    serve(settings, create_app(settings))


if __name__ == "__main__":
    main()
