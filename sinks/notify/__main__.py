"""``python -m shiftright_server.sinks.notify``: run the notifier in the foreground until SIGTERM/SIGINT.

Settings (environment, prefix ``SHIFTRIGHT_``): the Kafka bootstrap and namespace as for
every component, and ``SHIFTRIGHT_ALERTING__*`` (see ``infra.settings.AlertingSettings``):
``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_FROM``, ``SMTP_USER``, ``SMTP_PASSWORD``,
``SMTP_STARTTLS``, ``EXTERNAL_URL``, ``RETRY_*``, ``*_PER_MINUTE``, ``WEBHOOK_TIMEOUT_SECONDS``.
Subscriptions, silences and inhibit rules come from the alerting configuration topic.
The flipper (rules' ``flip`` actions, :mod:`sinks.flags.flipper`) runs as a thread here.
"""

from __future__ import annotations

from shiftright_server.infra.logs import start_service
from shiftright_server.infra.settings import load_settings
from shiftright_server.sinks.flags.flipper import Flipper
from shiftright_server.sinks.notify.service import NotifyService


def main() -> None:
    settings = load_settings()
    stop = start_service(settings)
    Flipper(settings).start(stop)
    NotifyService(settings).run(stop)


if __name__ == "__main__":
    main()
