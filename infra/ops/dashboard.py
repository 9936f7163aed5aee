"""``python -m shiftright_server.infra.ops.dashboard``: serve the dashboard on the
configured host and port (``SHIFTRIGHT_DASHBOARD__HOST`` / ``__PORT``), with the alerting
service that lets its pages change rules and silences, and the flag service that lets
them flip flags (what ``shiftright up`` runs)."""

from __future__ import annotations

from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.serve import serve
from shiftright_server.infra.api.dashboard_desk import ServiceDesk
from shiftright_server.infra.api.dashboard_flags import service_flags
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import load_settings
from shiftright_server.streams.alerting.service import open_store


def main() -> None:
    settings = load_settings()
    ch = settings.clickhouse
    desk = ServiceDesk(open_store(settings), lambda: get_client(ch, database=ch.database))
    flags = service_flags(settings.kafka.bootstrap_servers, settings.namespace)
    serve(settings, create_app(settings, desk=desk, flags=flags))


if __name__ == "__main__":
    main()
