"""``python -m streams``: run the stream worker in the foreground."""

from __future__ import annotations

import faust
from shiftright_server.infra.logs import configure_logging, tune_gc_for_throughput
from shiftright_server.infra.settings import load_settings
from shiftright_server.streams.app import build_app


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    app = build_app(settings)
    tune_gc_for_throughput()
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    # No terminal spinner. To spin on every log record, Faust sets the root logger to
    # DEBUG, so every debug call in aiokafka, Faust and mode built a record that the
    # WARNING handler then dropped: 3-5% of the worker's time, and a log full of escapes.
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
