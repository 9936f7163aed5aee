"""A stream worker killed with SIGKILL while an alert fires: after the restart the alert
is still the same alert — one firing, one resolve, each with one idempotency key — so the
notifier has nothing to send twice and nothing is missed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from shiftright_server.infra.settings import Settings
from shiftright_server.producers.emitter import Emitter

from tests.builders import event
from tests.integration.alerting import ERROR_BURST, Sql, config_store, fast_signals
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline

RULES = "rules:" + ERROR_BURST


def keys(sql: Sql) -> list[tuple[str, int, str]]:
    return sql(
        "SELECT DISTINCT state, seq, idempotency_key FROM alerts "
        "WHERE rule = 'checkout-errors' ORDER BY seq"
    )


def test_an_alert_survives_a_worker_kill_without_a_second_firing(
    settings: Settings, sql: Sql
) -> None:
    s = fast_signals(settings)
    config_store(s).apply(RULES, "qa")
    pipeline = Pipeline(s)
    pipeline.start("streams", "sink")
    stop = threading.Event()

    def errors() -> None:  # 4 errors a second: 80 in any 20 s window, well above 20
        emitter = Emitter(s.kafka.bootstrap_servers, s.namespace)
        while not stop.is_set():
            emitter.emit_dict(
                event("error", datetime.now(UTC), "checkout", "prod", exception_type="TimeoutError")
            )
            emitter.poll(0)
            stop.wait(0.25)
        emitter.flush(30)

    sender = threading.Thread(target=errors, daemon=True)
    sender.start()
    try:
        wait_for(
            lambda: any(k[0] == "firing" for k in keys(sql)),
            90,
            lambda: f"firing; got {keys(sql)}\n{pipeline.log('streams')}",
        )
        log = pipeline.supervisor.log_path("streams")
        loaded = log.read_text().count("alert_rules_loaded")
        pipeline.kill9("streams")
        pipeline.start("streams")
        # errors keep coming while the worker restarts and after it is back
        wait_for(
            lambda: log.read_text().count("alert_rules_loaded") > loaded,
            90,
            lambda: f"the restarted worker's rules\n{pipeline.log('streams')}",
        )
        time.sleep(5.0)  # firing goes on across the restart: nothing new must be emitted
        stop.set()
        sender.join(30)
        wait_for(
            lambda: any(k[0] == "resolved" for k in keys(sql)),
            120,
            lambda: f"resolved; got {keys(sql)}\n{pipeline.log('streams')}",
        )
        got = keys(sql)
        assert [(state, seq) for state, seq, _ in got] == [("firing", 1), ("resolved", 2)], got
    finally:
        stop.set()
        pipeline.stop()
