"""Alert rules as a step around :mod:`streams.alerting.signals`.

::

    signals.v1 (open-bucket snapshots, closed rollups) ─┐
    errors.transitions.v1 (new / regressed / spiking) ──┴─ alert step ─▶ alerts.v1

Each input partition has its own :class:`AlertPartition` (signals are keyed ``app|env``,
so every series of an app and env is whole in one partition), saved to the changelog
table ``alert-state`` as one record. A batch is applied and evaluated at once; a clock
(:class:`RuleClock`) evaluates every ``signal_interval_seconds`` as well, so ``for``
durations and absence rules advance on the wall clock when nothing arrives. A replay
re-emits transitions with the same idempotency keys; the notifier delivers each once.

Rules come from the configuration topic (``ConfigWatcher`` fills the :class:`Rulebook`); nothing is evaluated
before it has been read to its end (:meth:`AlertStep.until_loaded`), and a new version
reaches every evaluator at the next batch or tick.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import structlog
from shiftright_server.infra.alerting_config import AlertingConfig
from shiftright_server.streams.alerting.signals import AlertPartition
from shiftright_server.streams.driver import Driver, wall_ms
from shiftright_server.streams.partition_state import PartitionStates
from shiftright_server.streams.step import (
    Message,
    Output,
    Record,
    TopicPartition,
)

log = structlog.get_logger("shiftright.streams.alerts")
#: A partition whose batches only move the frontier (ticks) is saved this often.
SAVE_TICKS_SECONDS = 5.0


class Rulebook:
    """The latest rules the watcher thread read, and the version the evaluators run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: AlertingConfig | None = None
        self.applied = -1

    def offer(self, config: AlertingConfig) -> None:  # called on the watcher's thread
        with self._lock:
            self._latest = config

    def newer(self) -> AlertingConfig | None:
        """The latest config if the evaluators do not run it yet."""
        with self._lock:
            latest = self._latest
        if latest is None or latest.version == self.applied:
            return None
        self.applied = latest.version
        return latest

    def rules(self) -> list[Any]:
        with self._lock:
            return list(self._latest.rules.rules) if self._latest else []


class AlertStep(PartitionStates[AlertPartition]):
    name = "alerts"

    def __init__(
        self,
        table: Any,
        alerts_topic: str,
        signal_seconds: int,
        rulebook: Rulebook,
        loaded: threading.Event,
    ) -> None:
        super().__init__(table)
        self.alerts_topic = alerts_topic
        self.signal_seconds = signal_seconds
        self.rulebook = rulebook
        self.loaded = loaded  # set once the configuration topic was read to its end
        self.saved_at: dict[TopicPartition, float] = {}

    async def until_loaded(self) -> None:
        """Nothing is evaluated before the configuration topic was read to its end."""
        while not self.loaded.is_set():
            await asyncio.sleep(0.1)

    def make(self, saved: bytes | None) -> AlertPartition:
        return AlertPartition(self.rulebook.rules(), saved, self.signal_seconds)

    def saving(self, tp: TopicPartition) -> None:
        self.saved_at[tp] = time.monotonic()

    def refresh_rules(self) -> None:
        config = self.rulebook.newer()
        if config is None:
            return
        for part in self.parts.values():
            part.set_rules(config.rules.rules)
        log.info(
            "alert_rules_loaded",
            version=config.version,
            rules=len(config.rules.rules),
            applied_by=config.applied_by,
        )

    def process(self, records: Sequence[Record]) -> Output:
        self.refresh_rules()
        by_tp: dict[TopicPartition, list[Record]] = {}
        for rec in records:
            by_tp.setdefault((rec.topic, rec.partition), []).append(rec)
        now_ms = wall_ms()
        out = Output()
        for tp, batch in by_tp.items():
            part = self.partition(tp)
            out.counts["records"] += part.apply(batch)
            found = part.evaluate(now_ms)
            # a batch of ticks only moves the frontier: saved now and then
            if (
                found
                or part.changed
                or time.monotonic() - self.saved_at.get(tp, 0) > SAVE_TICKS_SECONDS
            ):
                out.touched.add(tp)
            self._transitions(found, out)
        return out

    def evaluate(self, assigned: list[TopicPartition]) -> Output:
        """Every partition at the wall clock (restored ones too: absence needs them)."""
        self.refresh_rules()
        for tp in assigned:
            self.partition(tp)
        now_ms = wall_ms()
        out = Output()
        for tp, part in self.parts.items():
            found = part.evaluate(now_ms)
            if found:
                out.touched.add(tp)
                self._transitions(found, out)
        return out

    def _transitions(self, found: list[Any], out: Output) -> None:
        out.messages += [
            Message(
                self.alerts_topic,
                f"{t.rule}|{t.fingerprint}".encode(),
                t.model_dump_json().encode(),
            )
            for t in found
        ]
        out.counts["transitions"] += len(found)
        out.counts["firing"] += sum(t.state == "firing" for t in found)
        out.counts["resolved"] += sum(t.state == "resolved" for t in found)


class RuleClock:
    """Evaluates every partition on the wall clock, once the rules are loaded."""

    def __init__(self, step: AlertStep, driver: Driver) -> None:
        self.step, self.driver = step, driver

    async def prepare(self) -> list[TopicPartition] | None:
        if not self.step.loaded.is_set():
            return None
        return self.driver.assigned() or []

    def apply(self, assigned: list[TopicPartition]) -> Output:
        return self.step.evaluate(assigned)
