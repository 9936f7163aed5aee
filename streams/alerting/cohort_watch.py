"""The cohort watcher: a thread that evaluates the applied cohort rules over the warehouse
every ``interval_s`` and writes their transitions to ``alerts.v1`` (see :mod:`.cohort`).

Contract: transitions are written (acknowledged by the broker) before the evaluator's
state is saved to ``<state dir>/alerting/cohort-evaluator.json``; a watcher killed in
between writes the same transitions again (same idempotency keys: the notifier and the
flipper act once). A warehouse or broker outage is logged and retried next round; the
watcher runs in the notifier process (``python -m shiftright_server.infra.ops.notifier``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import Producer
from shiftright_server.infra.alerting_config import AlertingConfig, ConfigWatcher
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.alerts import AlertTransition, CohortRule
from shiftright_server.streams.alerting.cohort import Query, cohort_rules, evaluate_at
from shiftright_server.streams.alerting.evaluator import Evaluator

log = structlog.get_logger("shiftright.alerting")


class CohortWatcher:
    def __init__(
        self,
        settings: Settings,
        query: Query | None = None,
        send: Callable[[list[AlertTransition]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.interval_s = settings.alerting.cohort_interval_seconds
        self.path = settings.resolved_state_dir() / "alerting" / "cohort-evaluator.json"
        self.rules: list[CohortRule] = []
        self.evaluator = Evaluator()
        self._restored = _read(self.path)  # taken up with the first rules
        self._query = query
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self.send = send or self._produce
        kafka, ns = settings.kafka.bootstrap_servers, settings.namespace
        self.alerts_topic = topics.named(topics.ALERTS, ns)
        self.watcher = ConfigWatcher(
            kafka, topics.named(topics.ALERTING_CONFIG, ns), self.configure
        )

    def configure(self, config: AlertingConfig) -> None:
        rules = cohort_rules(config.rules.rules)
        with self._lock:
            self.rules = rules
            if self._restored is not None:
                self.evaluator = Evaluator.loads(self._restored, rules)
                self._restored = None
            else:
                self.evaluator.set_rules(rules)

    def run(self, stop: threading.Event) -> None:
        self.watcher.start()
        try:
            while not (self.watcher.loaded.wait(0.2) or stop.is_set()):
                pass
            while not stop.wait(self.interval_s):
                self.round(datetime.now(UTC))
        finally:
            self.watcher.stop()

    def round(self, now: datetime) -> list[AlertTransition]:
        """One evaluation of every cohort rule; never raises (the next round retries)."""
        with self._lock:
            if not self.rules:
                return []
            saved = self.evaluator.dumps()
            try:
                found = evaluate_at(self.evaluator, self.rules, self.query, now)
                if found:
                    self.send(found)
            except Exception as exc:  # the warehouse or the broker away
                self.evaluator = Evaluator.loads(saved, self.rules)
                log.warning("cohort_round_failed", error=str(exc).splitlines()[0][:300])
                return []
            if found:
                _save(self.path, self.evaluator)
                log.info("cohort_transitions", count=len(found))
            return found

    def query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self._query is None:
            from shiftright_server.infra.clickhouse import get_client

            ch = self.settings.clickhouse
            client = get_client(ch, database=ch.database)
            self._query = lambda q, p: [tuple(r) for r in client.query(q, parameters=p).result_rows]
        return self._query(sql, params)

    def _produce(self, found: list[AlertTransition]) -> None:
        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                    "enable.idempotence": True,
                    "linger.ms": 0,
                    "message.timeout.ms": 15_000,
                }
            )
        errors: list[str] = []
        for t in found:
            self._producer.produce(
                self.alerts_topic,
                key=f"{t.rule}|{t.fingerprint}".encode(),
                value=t.model_dump_json().encode(),
                on_delivery=lambda err, _: errors.append(str(err)) if err else None,
            )
        if self._producer.flush(20) or errors:
            self._producer = None
            raise RuntimeError(f"writing {self.alerts_topic}: {errors[:1] or 'no acknowledgement'}")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _save(path: Path, evaluator: Evaluator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(evaluator.dumps())
    tmp.replace(path)
