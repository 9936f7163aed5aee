"""``python -m shiftright_server.infra.ops.notifier``: the notifier process as ``shiftright
up`` runs it — notifications, the flipper (rules' ``flip`` actions) and the cohort watcher
(cohort rules, evaluated over the warehouse) — until SIGTERM/SIGINT. Settings as for
``python -m shiftright_server.sinks.notify``, which runs the first two alone."""

from __future__ import annotations

import threading

from shiftright_server.infra.logs import start_service
from shiftright_server.infra.settings import load_settings
from shiftright_server.sinks.flags.flipper import Flipper
from shiftright_server.sinks.notify.service import NotifyService
from shiftright_server.streams.alerting.cohort_watch import CohortWatcher


def main() -> None:
    settings = load_settings()
    stop = start_service(settings)
    Flipper(settings).start(stop)
    cohorts = CohortWatcher(settings)
    threading.Thread(target=cohorts.run, args=(stop,), name="cohorts", daemon=True).start()
    NotifyService(settings).run(stop)


if __name__ == "__main__":
    main()
