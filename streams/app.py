"""The Faust application: the stream steps of :mod:`streams.step`, each run by a
:class:`~streams.driver.Driver`.

::

    events.*.v1 ──rollup──▶ rollups.v1, dlq.events.v1, signals.v1, errors.byhost.v1
    events.health.v1 + errors.byhost.v1 ──attach──▶ errors.assigned.v1 (at once),
                                                   errors.grouped.v1 (with health)
    errors.assigned.v1 + errors.commands.v1 ──group──▶ errors.transitions.v1, errors.groups.v1
    signals.v1 + errors.transitions.v1 ──alerts──▶ alerts.v1                      (alerting)
    events.usage.v1 ──segments──▶ flags.config.v1 (ticket-flag members)      (flag_segments)

Every step keeps the same delivery contract (:mod:`streams.driver`): outputs delivered,
then state saved, then the batch acked; a record that makes a step raise is dead-lettered
with reason ``step_failed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
import structlog
from shiftright_server.infra.alerting_config import ConfigWatcher
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.streams.alert_step import AlertStep, Rulebook, RuleClock
from shiftright_server.streams.driver import Clock, Driver
from shiftright_server.streams.error_flow import Attach, Group
from shiftright_server.streams.error_steps import (
    BATCH_MAX,
    AttachStep,
    GroupStep,
    HeldRelease,
    load_rules,
    table_loaders,
)
from shiftright_server.streams.grouping import Grouper, SpikePolicy
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
from shiftright_server.streams.processor import Processor
from shiftright_server.streams.rekey import Handoff
from shiftright_server.streams.rollup_step import (
    QuietClose,
    RollupStep,
    RollupTopics,
    SignalClock,
    state_key,
)
from shiftright_server.streams.segment_step import (
    TICK_SECONDS,
    FlagBook,
    SegmentClock,
    SegmentStep,
)
from shiftright_server.streams.transport import App

log = structlog.get_logger("shiftright.streams")
#: Grouped errors kept for the group step: what the attach step sends in a few batches.
GROUPED_HANDOFF = 10_000
#: Most bytes of one partition's record batch in the worker's produce requests. A
#: request carries one batch per partition and a broker one request in flight, so with
#: aiokafka's 16 KiB (one of the steps' messages of up to 64 KiB a batch) a batch's
#: outputs to a partition went in as many requests one after the other; live at 50,000
#: events/s a rollup batch's errors re-keyed by host fill more than 512 KiB a partition.
#: librdkafka's default ``batch.size``: the limit is on the records uncompressed, so a
#: batch stays under the broker's default ``message.max.bytes`` (1,048,588) even if LZ4
#: gains nothing.
PRODUCER_BATCH_BYTES = 1_000_000


class Worker:
    """What the steps of one worker share: the app, its settings and topic names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: errors the rollup step validated, for the attach step (both run here)
        self.handoff = Handoff[ErrorEvent]()
        #: grouped errors the attach step sent, for the group step (both run here)
        self.grouped = Handoff[GroupedError](limit=GROUPED_HANDOFF)
        s = settings.streams
        ns = settings.namespace
        datadir = settings.resolved_state_dir() / "streams" / (s.instance_id or "dynamic")
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.app = App(
            f"{ns}.{s.app_id}" if ns else s.app_id,
            fetch_min_bytes=s.fetch_min_bytes,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            broker=f"kafka://{settings.kafka.bootstrap_servers}",
            consumer_group_instance_id=s.instance_id or None,
            broker_session_timeout=float(s.session_timeout_seconds),
            store="memory://",
            autodiscover=False,
            web_enabled=False,
            topic_partitions=settings.kafka.partitions,
            topic_replication_factor=max(1, settings.kafka.replication_factor),
            table_standby_replicas=0,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            producer_linger_ms=5,
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            stream_wait_empty=False,
            datadir=str(datadir),
        )

    def topic(self, name: str) -> str:
        return topics.named(name, self.settings.namespace)

    def table(self, name: str, declare: bool = False) -> Any:
        table = self.app.Table(
            name, partitions=self.settings.kafka.partitions, key_type=bytes, value_type=bytes
        )
        if declare:
            _declare_changelog(self.settings, table.changelog_topic.get_topic_name())
        return table

    def driver(
        self,
        step: Any,
        sources: list[str],
        table: Any,
        batch: tuple[int, float],
        before_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> Driver:
        """Run ``step`` on this app: batches of up to (records, seconds) from ``sources``."""
        driver = Driver(
            self.app,
            step,
            sources,
            table,
            self.topic(topics.DLQ_EVENTS),
            self.settings.kafka.bootstrap_servers,
            batch,
            before_batch,
        )
        driver.register()
        return driver


def build_app(settings: Settings) -> faust.App:
    """Create the Faust app and its steps for these settings."""
    worker = Worker(settings)
    add_rollups(worker)
    if settings.streams.error_analytics:
        add_error_analytics(worker)
    if settings.streams.alerting:
        add_alerting(worker)
    if settings.streams.flag_segments:
        add_segments(worker)
    return worker.app


def add_rollups(worker: Worker) -> RollupStep:
    s, t = worker.settings.streams, worker.topic
    kind_by_topic = {t(name): kind for name, kind in topics.KIND_BY_EVENT_TOPIC.items()}
    table = worker.table("rollup-state")
    processor = Processor(
        kind_by_topic,
        s.limits(),
        s.bucket_seconds,
        s.allowed_lateness_seconds,
        load_state=lambda tp: table.data.get(state_key(tp)),
        signal_seconds=s.signal_seconds if s.alerting else 0,
        rekey_errors=s.error_analytics,
        columns=s.rollup_columns,
        handoff=worker.handoff,
    )
    out = RollupTopics(
        dlq=t(topics.DLQ_EVENTS),
        rollups=t(topics.ROLLUPS),
        signals=t(topics.SIGNALS) if s.alerting else "",
        byhost=t(topics.ERRORS_BY_HOST) if s.error_analytics else "",
        partitions=worker.settings.kafka.partitions,
    )
    step = RollupStep(processor, out)
    driver = worker.driver(step, list(kind_by_topic), table, (s.batch_max, s.batch_within_seconds))
    lateness = max(s.idle_lateness_seconds, s.allowed_lateness_seconds)
    quiet = QuietClose(step, driver, s.idle_close_seconds, lateness)
    driver.every(1.0, Clock(quiet.prepare, quiet.apply), "quiet-close")
    if s.alerting:
        signals = SignalClock(step, driver)
        driver.every(s.signal_interval_seconds, Clock(signals.prepare, signals.apply), "signals")
    return step


def add_error_analytics(worker: Worker) -> tuple[AttachStep, GroupStep]:
    s, t, parts = worker.settings.streams, worker.topic, worker.settings.kafka.partitions
    table = worker.table("error-state", declare=True)
    load, hosts = table_loaders(table, "attach")
    stage = AttachStage(Grouper(load_rules(s.grouping_rules)), max_wait_ms=s.health_max_wait_ms)
    attach = Attach(stage, t(topics.EVENTS_HEALTH), s.limits(), load, hosts, worker.handoff)
    attach_step = AttachStep(
        attach, t(topics.ERRORS_GROUPED), parts, t(topics.ERRORS_ASSIGNED), worker.grouped
    )
    batch = (BATCH_MAX, s.batch_within_seconds)
    attach_driver = worker.driver(
        attach_step, [t(topics.EVENTS_HEALTH), t(topics.ERRORS_BY_HOST)], table, batch
    )
    release = HeldRelease(attach_step, attach_driver, s.idle_close_seconds)
    attach_driver.every(1.0, Clock(release.prepare, release.apply), "release-held")

    load, groups = table_loaders(table, "group")
    group = Group(
        GroupStage(SpikePolicy()), t(topics.ERRORS_COMMANDS), load, groups, worker.grouped
    )
    group_step = GroupStep(group, t(topics.ERRORS_TRANSITIONS), t(topics.ERRORS_GROUPS))
    worker.driver(group_step, [t(topics.ERRORS_ASSIGNED), t(topics.ERRORS_COMMANDS)], table, batch)
    return attach_step, group_step


def add_alerting(worker: Worker) -> AlertStep:
    s, t = worker.settings.streams, worker.topic
    table = worker.table("alert-state", declare=True)
    rulebook = Rulebook()
    watcher = ConfigWatcher(
        worker.settings.kafka.bootstrap_servers, t(topics.ALERTING_CONFIG), rulebook.offer
    )
    step = AlertStep(table, t(topics.ALERTS), s.signal_seconds, rulebook, watcher.loaded)
    # (batches of up to 0.25 s: each saves the state of every partition it changed, a
    # board of 15 minutes of snapshots; at 0.05 s that took 9% of the worker)
    sources = [t(topics.SIGNALS), t(topics.ERRORS_TRANSITIONS)]
    driver = worker.driver(step, sources, table, (1000, 0.25), step.until_loaded)
    clock = RuleClock(step, driver)
    driver.every(s.signal_interval_seconds, Clock(clock.prepare, clock.apply), "evaluate")

    async def start_watcher() -> None:
        watcher.start()

    worker.app.task(start_watcher)
    return step


def _declare_changelog(settings: Settings, name: str) -> None:
    """Create a state changelog before the steps write to it. Faust declares it too,
    but not always before a step's first write; a send to a topic missing from the
    producer's metadata waits for it (up to the 20-minute request timeout), which stalls
    the step and, once its queue is full, the whole worker."""
    from shiftright_server.infra.kafka.topics import ensure_topics

    k = settings.kafka
    durability = (
        {} if k.min_insync_replicas is None else {"min.insync.replicas": str(k.min_insync_replicas)}
    )
    try:
        ensure_topics(
            k.bootstrap_servers,
            {name: k.partitions},
            {"cleanup.policy": "compact", **durability},
            replication_factor=k.replication_factor,
        )
    except Exception as exc:  # broker away at start: Faust's own declaration remains
        log.warning("changelog_not_declared", topic=name, error=repr(exc))


def add_segments(worker: Worker) -> SegmentStep:
    s, t = worker.settings.streams, worker.topic
    table = worker.table("segment-state", declare=True)
    book = FlagBook(worker.settings.kafka.bootstrap_servers, t(topics.FLAGS_CONFIG))
    step = SegmentStep(table, t(topics.FLAGS_CONFIG), book)
    batch = (s.batch_max, s.batch_within_seconds)
    driver = worker.driver(step, [t(topics.EVENTS_USAGE)], table, batch, step.until_loaded)
    clock = SegmentClock(step, driver)
    driver.every(TICK_SECONDS, Clock(clock.prepare, clock.apply), "segments-tick")

    async def start_book() -> None:
        book.start()

    worker.app.task(start_book)
    return step
