"""The Faust application: one agent validates every raw event, dead-letters the invalid
ones and rolls the valid ones up into per-minute event-time buckets (and, with error
analytics on, re-keys each valid error by host for the agents of ``streams.error_agents``).

Delivery (at-least-once, exactly-once in effect):
1. a batch of records is processed purely (``streams.processor``);
2. dead letters, closed rollups and re-keyed errors are sent and *delivery is awaited*;
3. the touched partition states (with the last applied offset) go to the changelog;
4. only after the changelog acknowledged the state does Faust ack the batch.
A crash anywhere replays the batch; the restored state skips what it already applied,
and duplicate dead letters / rollups collapse on their natural keys in ClickHouse.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from typing import Any

import faust
import structlog
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alert_agents import register_alert_agents
from shiftright_server.streams.alerting.signals import CLOSED, HEADER_SIGNAL, OPEN, TICK
from shiftright_server.streams.error_agents import register_error_agents
from shiftright_server.streams.error_flow import pack_messages
from shiftright_server.streams.gaps import GapReader, merge, record_of
from shiftright_server.streams.processor import (
    DeadLetterOut,
    Outcome,
    Processor,
    Record,
    TopicPartition,
)
from shiftright_server.streams.transport import App

log = structlog.get_logger("shiftright.streams")


def _state_key(tp: TopicPartition) -> bytes:
    return f"{tp[0]}:{tp[1]}".encode()


def build_app(settings: Settings) -> faust.App:
    """Create the Faust app and its agents for these settings."""
    ns = settings.namespace
    s = settings.streams
    app = App(
        f"{ns}.{s.app_id}" if ns else s.app_id,
        fetch_min_bytes=s.fetch_min_bytes,
        fetch_max_wait_ms=s.fetch_max_wait_ms,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_compression_type="zstd",
        producer_linger_ms=5,
        stream_wait_empty=False,
        datadir=str(settings.resolved_state_dir() / "streams"),
    )
    kind_by_topic = {topics.named(t, ns): k for t, k in topics.KIND_BY_EVENT_TOPIC.items()}
    source = app.topic(*kind_by_topic, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(
        topics.named(topics.DLQ_EVENTS, ns), key_serializer="raw", value_serializer="raw"
    )
    rollups = app.topic(
        topics.named(topics.ROLLUPS, ns), key_serializer="raw", value_serializer="raw"
    )
    state_table = app.Table(
        "rollup-state", partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes
    )
    signals = app.topic(
        topics.named(topics.SIGNALS, ns), key_serializer="raw", value_serializer="raw"
    )
    byhost = app.topic(
        topics.named(topics.ERRORS_BY_HOST, ns), key_serializer="raw", value_serializer="raw"
    )
    processor = Processor(
        kind_by_topic,
        s.limits(),
        s.bucket_seconds,
        s.allowed_lateness_seconds,
        load_state=lambda tp: state_table.data.get(_state_key(tp)),
        signal_seconds=s.signal_seconds if s.alerting else 0,
        rekey_errors=s.error_analytics,
    )
    lock = asyncio.Lock()
    totals = {
        "events": 0,
        "dead_letters": 0,
        "rollups": 0,
        "late": 0,
        "replayed": 0,
        "gap_records": 0,  # records skipped past (should stay 0)
        "gap_records_read": 0,  # records read to close a gap after a restart
        "signals": 0,  # open-bucket snapshots published for alert rules
        "errors_rekeyed": 0,  # valid errors sent on keyed by host (error analytics)
    }

    async def publish(out: Outcome) -> None:
        pending = [await _send_dead_letter(dlq, d) for d in out.dead_letters]
        pending += [
            await rollups.send(
                key=f"{r.app}|{r.env}|{r.key}".encode(), value=r.model_dump_json().encode()
            )
            for r in out.rollups
        ]
        if s.alerting:
            pending += await _send_signals(signals, out.rollups, CLOSED)
        pending += [
            await byhost.send(key=k, value=v, headers=h, partition=p)
            for k, v, h, p in pack_messages(out.byhost, settings.kafka.partitions)
        ]
        if pending:
            await asyncio.gather(*pending)  # delivered before the state says "done"
        # Awaited, not send_soon(): Faust's commit flush can miss a message its buffer has
        # dequeued but not yet handed to the client, and the state must be durable before
        # the batch is acked and its offsets committed.
        saved = []
        for tp in out.touched:
            state = processor.states.get(tp)
            if state is None:  # revoked meanwhile: the new owner replays from Kafka
                continue
            data = state.dumps()
            state_table.data[_state_key(tp)] = data
            saved.append(
                await state_table.changelog_topic.send(
                    key=_state_key(tp), value=data, partition=tp[1]
                )
            )
        if saved:
            await asyncio.gather(*saved)
        totals["dead_letters"] += len(out.dead_letters)
        totals["rollups"] += len(out.rollups)
        totals["late"] += out.late
        totals["replayed"] += out.replayed
        totals["errors_rekeyed"] += len(out.byhost)

    def report_gaps(out: Outcome) -> None:
        for (topic, partition), (expected, got) in out.gaps.items():
            log.error(
                "rollup_state_behind",
                topic=topic,
                partition=partition,
                expected_offset=expected,
                delivered_offset=got,
            )
            totals["gap_records"] += got - expected

    gap_reader = GapReader(settings.kafka.bootstrap_servers)
    log_ends = LogEnds(settings.kafka.bootstrap_servers)

    async def read_gaps(missing: dict[TopicPartition, tuple[int, int]]) -> list[Record]:
        """The records in these ranges, read from Kafka. Retries until the broker hands
        them over: processing past a gap would lose those events."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            try:
                found = await loop.run_in_executor(None, gap_reader.read, missing)
                break
            except Exception as exc:  # broker unreachable: wait, keep the batch unacked
                log.warning("gap_read_retry", ranges=len(missing), error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        log.warning(
            "state_behind_committed_offset",
            records_read=len(found),
            ranges={f"{t}:{p}": r for (t, p), r in missing.items()},
        )
        totals["gap_records_read"] += len(found)
        return found

    async def with_gaps(records: list[Record]) -> list[Record]:
        """The batch plus the records the state lacks, in offset order per partition."""
        missing = processor.missing(records)
        return merge(records, await read_gaps(missing)) if missing else records

    checked: set[TopicPartition] = set()

    @app.timer(2.0)
    async def read_committed_gaps() -> None:
        """Once per assignment, compare where Kafka resumes each source partition (the
        group's committed offset) with the restored state, and process what lies between
        at once: the partition may get no new records that would reveal the gap."""
        if not app.tables.recovery.completed.is_set() or app.in_recovery or app.rebalancing:
            return
        todo = [
            (tp.topic, tp.partition)
            for tp in app.consumer.assignment()
            if tp.topic in kind_by_topic and (tp.topic, tp.partition) not in checked
        ]
        if not todo:
            return
        try:
            committed = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(
                    None, log_ends.committed, todo, app.conf.id
                ),
                10.0,
            )
        except Exception as exc:  # try again on the next tick
            log.warning("committed_offsets_unavailable", error=repr(exc))
            return
        async with lock:
            missing = processor.missing_before(
                (t, p, o) for (t, p), o in committed.items() if o > 0
            )
            if missing:
                out = processor.process(await read_gaps(missing))
                report_gaps(out)
                await publish(out)
            checked.update(todo)

    @app.agent(source, concurrency=1)
    async def validate_and_roll_up(stream: Any) -> None:
        async for events in stream.take_events(s.batch_max, within=s.batch_within_seconds):
            records = [record_of(e.message) for e in events]
            async with lock:
                records = await with_gaps(records)
                out = processor.process(records)
                totals["events"] += len(records)
                report_gaps(out)
                await publish(out)
                due = processor.signals_due() if s.alerting else []
            if due:  # at once: a rule should not wait for the next timer tick
                sent = await _send_signals(signals, due, OPEN)
                await asyncio.gather(*sent)
                totals["signals"] += len(due)

    idle_lateness_ms = max(s.idle_lateness_seconds, s.allowed_lateness_seconds) * 1000
    hold_idle_until = [0.0]

    @app.timer(1.0)
    async def close_idle_buckets() -> None:
        """Quiet partitions close on wall clock, but only when the broker confirms that
        nothing is waiting, and not right after an outage (producers are still catching up)."""
        quiet = processor.idle(s.idle_close_seconds)
        if not quiet or time.monotonic() < hold_idle_until[0]:
            return
        try:
            ends = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(None, log_ends.fetch, quiet), 5.0
            )
        except Exception as exc:
            hold_idle_until[0] = time.monotonic() + idle_lateness_ms / 1000
            log.warning("idle_close_deferred", partitions=len(quiet), error=repr(exc))
            return
        async with lock:
            done = processor.caught_up(ends)
            out = processor.close_idle(done, int(time.time() * 1000), idle_lateness_ms)
            if out.rollups:
                await publish(out)

    if s.error_analytics:
        register_error_agents(app, settings)

    if s.alerting:
        sender = uuid.uuid4().hex[:12]
        #: (asked at, log ends then): the input is complete up to "asked at" once every
        #: partition's state has reached the ends asked for then
        checkpoints: deque[tuple[float, dict[TopicPartition, int]]] = deque(maxlen=60)
        last_ask = [0.0]

        @app.timer(s.signal_interval_seconds)
        async def publish_signals() -> None:
            """Snapshots of the open signal buckets that changed: what alert rules read;
            then, when the rollup state has reached the log ends asked for at some moment,
            a tick to every signal partition: the input is complete up to that moment
            (see ``streams.alerting.signals``)."""
            asked_at = time.time()
            if asked_at - last_ask[0] >= 1.0:
                last_ask[0] = asked_at
                ends = await _source_ends(app, kind_by_topic, log_ends)
                if ends is not None:
                    checkpoints.append((asked_at, ends))
            frontier = None
            async with lock:
                due = processor.signals_due()
                while checkpoints and all(
                    processor.state(tp).offset + 1 >= end for tp, end in checkpoints[0][1].items()
                ):
                    frontier = checkpoints.popleft()[0]
            sent = await _send_signals(signals, due, OPEN)
            if frontier is not None:
                tick = json.dumps({"sender": sender, "frontier_ms": int(frontier * 1000)})
                sent += [
                    await signals.send(
                        key=b"tick",
                        value=tick.encode(),
                        partition=p,
                        headers=[(HEADER_SIGNAL, TICK)],
                    )
                    for p in range(settings.kafka.partitions)
                ]
            if sent:
                await asyncio.gather(*sent)
            totals["signals"] += len(due)

        register_alert_agents(app, settings)

    @app.timer(10.0)
    async def report_progress() -> None:
        log.info("streams_progress", open_partitions=len(processor.states), **totals)

    @app.on_partitions_revoked.connect
    async def forget_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        processor.forget((tp.topic, tp.partition) for tp in revoked)
        checked.difference_update((tp.topic, tp.partition) for tp in revoked)

    return app


class LogEnds:
    """Asks the broker where partitions end, on a client of its own (run it in a thread:
    the calls block, and a hung request must not hang the worker's event loop)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: Consumer | None = None

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": "shiftright-log-ends",
                    "enable.auto.commit": False,
                }
            )
        return self._consumer

    def fetch(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {
            (t, p): int(self._client().get_watermark_offsets(KafkaTopicPartition(t, p), 2.0)[1])
            for t, p in tps
        }

    def committed(self, tps: list[tuple[str, int]], group: str) -> dict[tuple[str, int], int]:
        """The group's committed offsets (negative: none). Reading them does not join it."""
        reader = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        try:
            found = reader.committed([KafkaTopicPartition(t, p) for t, p in tps], timeout=5.0)
        finally:
            reader.close()
        return {(tp.topic, tp.partition): int(tp.offset) for tp in found}


async def _source_ends(
    app: faust.App, kind_by_topic: dict[str, str], log_ends: LogEnds
) -> dict[TopicPartition, int] | None:
    """Log ends of the assigned source partitions; None while recovering or unreachable."""
    if not app.tables.recovery.completed.is_set() or app.in_recovery or app.rebalancing:
        return None
    tps = [
        (tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in kind_by_topic
    ]
    if not tps:
        return None
    try:
        return await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, log_ends.fetch, tps), 2.0
        )
    except Exception:  # unknown: no tick this time
        return None


async def _send_signals(topic: Any, rollups: list[Rollup], kind: bytes) -> list[Any]:
    """Rollups as NDJSON messages, one run per ``app|env`` (the key alert rules are
    partitioned by); returns the delivery futures."""
    by_key: dict[bytes, list[bytes]] = {}
    for r in rollups:
        by_key.setdefault(f"{r.app}|{r.env}".encode(), []).append(r.model_dump_json().encode())
    headers = [*wire.BATCH_HEADERS, (HEADER_SIGNAL, kind)]
    pending = []
    for key, lines in by_key.items():
        for i in range(0, len(lines), wire.MAX_BATCH_EVENTS):
            value = b"\n".join(lines[i : i + wire.MAX_BATCH_EVENTS])
            pending.append(await topic.send(key=key, value=value, headers=headers))
    return pending


async def _send_dead_letter(dlq: Any, letter: DeadLetterOut) -> Any:
    record = letter.record
    value = letter.payload or b""
    headers = [
        (topics.HEADER_REASON, letter.reason.encode()),
        (topics.HEADER_DETAIL, letter.detail[:2000].encode()),
        (topics.HEADER_SOURCE_TOPIC, record.topic.encode()),
        (topics.HEADER_SOURCE_PARTITION, str(record.partition).encode()),
        (topics.HEADER_SOURCE_OFFSET, str(record.offset).encode()),
        (topics.HEADER_SOURCE_INDEX, str(letter.index).encode()),
        (topics.HEADER_PAYLOAD_BYTES, str(len(value)).encode()),
    ]
    # Keep dead letters small; the table stores at most 64 KiB of a payload anyway.
    return await dlq.send(
        key=f"{record.topic}:{record.partition}".encode(), value=value[: 64 * 1024], headers=headers
    )
