"""Alert rules in the stream worker: one agent around :mod:`streams.alerting.signals`.

::

    signals.v1 (open-bucket snapshots, closed rollups) ─┐
    errors.transitions.v1 (new / regressed / spiking) ──┴─evaluate_rules─▶ alerts.v1

Each input partition has its own evaluator (signals are keyed ``app|env``, so every series
of an app and env is whole in one partition). A batch is applied and evaluated at once;
a timer evaluates every ``signal_interval_seconds`` as well, so ``for`` durations and
absence rules advance on the wall clock when nothing arrives. Transitions are sent and
their delivery awaited, then the partition's state goes to the changelog table
``alert-state`` and is awaited, then Faust acks the batch. A replay re-emits transitions
with the same idempotency keys; the notifier delivers each key once.

Rules come from the configuration topic (:class:`ConfigWatcher`); nothing is evaluated
before it has been read to its end, and a new version reaches every evaluator at the next
tick (within ``signal_interval_seconds``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
import structlog
from shiftright_server.infra.alerting_config import AlertingConfig, ConfigWatcher
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.alerts import AlertTransition
from shiftright_server.streams.alerting.signals import AlertPartition
from shiftright_server.streams.error_agents import _declare_changelog
from shiftright_server.streams.gaps import record_of
from shiftright_server.streams.processor import Record, TopicPartition

log = structlog.get_logger("shiftright.streams.alerts")


def register_alert_agents(app: faust.App, settings: Settings) -> None:
    ns, s = settings.namespace, settings.streams
    inputs = (topics.named(topics.SIGNALS, ns), topics.named(topics.ERRORS_TRANSITIONS, ns))
    source = app.topic(*inputs, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(
        topics.named(topics.ALERTS, ns), key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        "alert-state", partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes
    )
    _declare_changelog(settings, table.changelog_topic.get_topic_name())
    parts: dict[TopicPartition, AlertPartition] = {}
    saved_at: dict[TopicPartition, float] = {}
    lock = asyncio.Lock()
    latest: list[AlertingConfig] = []  # set by the watcher thread
    applied = [-1]  # config version the evaluators run
    totals = {"records": 0, "transitions": 0, "firing": 0, "resolved": 0, "rules": 0}
    watcher = ConfigWatcher(
        settings.kafka.bootstrap_servers,
        topics.named(topics.ALERTING_CONFIG, ns),
        lambda config: latest.append(config),
    )

    def rules() -> list[Any]:
        return list(latest[-1].rules.rules) if latest else []

    def key(tp: TopicPartition) -> bytes:
        return f"{tp[0]}:{tp[1]}".encode()

    def partition(tp: TopicPartition) -> AlertPartition:
        found = parts.get(tp)
        if found is None:
            found = parts[tp] = AlertPartition(rules(), table.data.get(key(tp)), s.signal_seconds)
        return found

    def refresh_rules() -> None:
        if latest and latest[-1].version != applied[0]:
            config = latest[-1]
            del latest[:-1]
            for part in parts.values():
                part.set_rules(config.rules.rules)
            applied[0] = config.version
            totals["rules"] = len(config.rules.rules)
            log.info(
                "alert_rules_loaded",
                version=config.version,
                rules=len(config.rules.rules),
                applied_by=config.applied_by,
            )

    async def publish(changed: dict[TopicPartition, list[AlertTransition]]) -> None:
        sent = [
            await alerts.send(
                key=f"{t.rule}|{t.fingerprint}".encode(), value=t.model_dump_json().encode()
            )
            for found in changed.values()
            for t in found
        ]
        if sent:
            await asyncio.gather(*sent)  # delivered before the state says "done"
        saved = []
        for tp in changed:
            part = parts.get(tp)
            if part is None:  # revoked meanwhile
                continue
            data = part.dumps()
            saved_at[tp] = time.monotonic()
            table.data[key(tp)] = data
            saved.append(await table.changelog_topic.send(key=key(tp), value=data, partition=tp[1]))
        if saved:
            await asyncio.gather(*saved)
        for found in changed.values():
            totals["transitions"] += len(found)
            totals["firing"] += sum(t.state == "firing" for t in found)
            totals["resolved"] += sum(t.state == "resolved" for t in found)

    async def until_loaded() -> None:
        while not watcher.loaded.is_set():
            await asyncio.sleep(0.1)
        refresh_rules()

    @app.task
    async def start_watcher() -> None:
        watcher.start()

    @app.agent(source, concurrency=1)
    async def evaluate_rules(stream: Any) -> None:
        # (batches of up to 0.25 s: each saves the state of every partition it changed,
        # a board of 15 minutes of snapshots; at 0.05 s that took 9% of the worker)
        async for events in stream.take_events(1000, within=0.25):
            await until_loaded()
            by_tp: dict[TopicPartition, list[Record]] = {}
            for e in events:
                rec = record_of(e.message)
                by_tp.setdefault((rec.topic, rec.partition), []).append(rec)
            async with lock:
                refresh_rules()
                now_ms = int(time.time() * 1000)
                changed = {}
                for tp, records in by_tp.items():
                    part = partition(tp)
                    totals["records"] += part.apply(records)
                    found = part.evaluate(now_ms)
                    # a batch of ticks only moves the frontier: saved now and then
                    if found or part.changed or time.monotonic() - saved_at.get(tp, 0) > 5:
                        changed[tp] = found
                await publish(changed)

    @app.timer(s.signal_interval_seconds)
    async def evaluate_on_clock() -> None:
        if not watcher.loaded.is_set():
            return
        async with lock:
            refresh_rules()
            if app.tables.recovery.completed.is_set() and not app.rebalancing:
                for tp in app.consumer.assignment():  # restored ones too: absence needs them
                    if tp.topic in inputs:
                        partition((tp.topic, tp.partition))
            now_ms = int(time.time() * 1000)
            changed = {tp: found for tp, part in parts.items() if (found := part.evaluate(now_ms))}
            if changed:
                await publish(changed)

    @app.timer(10.0)
    async def report_alerting() -> None:
        log.info("alerting_progress", partitions=len(parts), config_version=applied[0], **totals)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            parts.pop((tp.topic, tp.partition), None)
