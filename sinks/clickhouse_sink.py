"""The ClickHouse sink: a confluent-kafka consumer with manual commits.

Contract:
- takes: raw event topics, ``rollups.v1`` and ``dlq.events.v1``;
- emits: per table per batch, one column-oriented insert (Native): the columns of the
  events the fast validator vouches for (every kind), taken from its
  decoded events (:mod:`sinks.event_columns`), and the rows the models made for the
  rest; batches are cut by size or by time;
- commits: only after every insert of the batch succeeded;
- under back-pressure (warehouse away or overloaded): pauses its partitions and retries
  the same batch with the same deduplication token, backing off exponentially;
- poison rows: isolates them by bisection and stores them in ``dead_letters``;
- after a crash: on assignment it asks each table for the highest offset it already
  holds per partition of the topic's incarnation (every row carries the topic id) and
  skips up to there (:mod:`sinks.frontier`), so a replay inserts nothing twice and a
  recreated topic, or one on another cluster, is stored from its first message.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from shiftright_server.schemas import wire
from shiftright_server.schemas.fast_lines import collector_paused
from shiftright_server.schemas.positions import Position
from shiftright_server.sinks.batch import Batch
from shiftright_server.sinks.errors import RejectedRowsError, RetryableWriteError
from shiftright_server.sinks.event_columns import MessageEvents
from shiftright_server.sinks.frontier import Frontier
from shiftright_server.sinks.incarnations import TopicIds
from shiftright_server.sinks.router import Record, Router, Row
from shiftright_server.sinks.rows import COLUMNS, DeadLetter, dead_letter_row
from shiftright_server.sinks.warehouse import Warehouse

log = structlog.get_logger("shiftright.sink")
T = TypeVar("T")


@dataclass(frozen=True)
class SinkConfig:
    batch_rows: int = 100_000
    batch_seconds: float = 1.0
    retry_initial: float = 0.5
    retry_max: float = 15.0
    status_path: Path | None = None


@dataclass
class SinkStats:
    consumed: int = 0
    stored: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    batches: int = 0
    retries: int = 0
    commit_failures: int = 0  # Kafka commits that failed (harmless; see _commit)
    last_error: str = ""
    last_insert_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "stored": dict(self.stored),
            "skipped": dict(self.skipped),
            "rejected": self.rejected,
            "commit_failures": self.commit_failures,
            "batches": self.batches,
            "retries": self.retries,
            "last_error": self.last_error,
            "last_insert_ms": round(self.last_insert_ms, 1),
            "updated_at": datetime.now(UTC).isoformat(),
        }


#: The most messages one fetch takes.
_MAX_FETCH = 5000
#: The oldest a batch grows while every fetch comes back full (the sink is behind).
_BEHIND_SECONDS = 5.0


class _Abandoned(Exception):
    """The batch was given up (partitions revoked or shutdown during retry)."""


class ClickHouseSink:
    def __init__(
        self,
        consumer: Consumer,
        warehouse: Warehouse,
        router: Router,
        config: SinkConfig,
        topic_ids: TopicIds,
    ) -> None:
        self._consumer = consumer
        self._warehouse = warehouse
        self._router = router
        self._config = config
        self._frontier = Frontier(warehouse, topic_ids, router.table_for, self._look_up)
        self._batch = Batch()
        self._pending: list[Record] = []  # handled, in the batch, not routed yet
        self._retrying = False
        self._abandon = False
        self._stop = threading.Event()
        self._last_status = 0.0
        self._rows_per_message = wire.MAX_BATCH_EVENTS
        self._fetched_full = False  # the last fetch came back as full as asked
        self.stats = SinkStats()

    # -- lifecycle ---------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> None:
        """Consume until ``stop`` is set; flush and commit what is pending on the way out."""
        self._stop = stop or threading.Event()
        self._consumer.subscribe(
            self._router.subscriptions, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info("sink_started", topics=self._router.subscriptions)
        try:
            while not self._stop.is_set():
                self.poll_once()
            self._flush_quietly()
        finally:
            self._consumer.close()
            self._write_status(force=True)
            log.info("sink_stopped", **self.stats.as_dict())

    def poll_once(self, timeout: float = 0.2) -> None:
        asked = self._room()
        messages = self._consumer.consume(num_messages=asked, timeout=timeout)
        self._fetched_full = len(messages) >= asked
        self._check_topics()  # before the messages: they may be a new topic's
        for message in messages:
            self._handle(message)
        self._route_pending()
        if self._due():
            with collector_paused():  # until the batch is freed: see sinks.batch
                self._flush()
        self._write_status()

    def _room(self) -> int:
        """How many messages to fetch: about as many as the batch has room for, at the
        rows per message seen so far (a batch message holds up to
        ``wire.MAX_BATCH_EVENTS``), so that a backlog is written in batches of about
        ``batch_rows``, not all in one."""
        batch = self._batch
        if batch.messages:
            self._rows_per_message = max(1, batch.row_count // batch.messages)
        left = max(0, self._config.batch_rows - batch.row_count)
        return max(1, min(_MAX_FETCH, left // self._rows_per_message + 1))

    def _check_topics(self) -> None:
        moved = self._frontier.moved()
        if moved:  # created again under the running sink
            if self._batch.messages:
                self._flush()
            for topic in moved:
                self._frontier.read_again(topic)

    def _due(self) -> bool:
        """Cut at ``batch_rows``, or by age: at ``batch_seconds`` when the sink is at the
        head of its topics; a sink behind them keeps filling its batch, up to
        ``batch_rows`` or ``_BEHIND_SECONDS``, since the warehouse pays per insert for
        every materialized view on the table."""
        batch = self._batch
        if not batch.messages:
            return False
        if batch.row_count >= self._config.batch_rows:
            return True
        age, seconds = batch.age(), self._config.batch_seconds
        if age < seconds:
            return False
        return age >= max(seconds, _BEHIND_SECONDS) or not self._behind()

    def _behind(self) -> bool:
        """Behind its topics: the last fetch came back as full as asked, or the broker
        holds more messages past the batch, in the batch's partitions, than the batch
        has (as of the consumer's last fetch of each partition)."""
        if self._fetched_full:
            return True
        waiting = 0
        for (topic, partition), (_, last) in self._batch.ranges.items():
            tp = TopicPartition(topic, partition)
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            waiting += max(0, high - last - 1)
        return waiting > self._batch.messages

    # -- one record ----------------------------------------------------------------
    def _handle(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume_failed", error=str(error))
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        self.stats.consumed += 1
        frontier = self._frontier
        if not frontier.known(topic):  # its incarnation unread (stopped while assigning)
            self.stats.skipped["incarnation_unknown"] += 1
            return
        if frontier.went_back(topic, partition, offset):
            if self._batch.messages:
                self._flush()  # what came before, with its topic's id as it was read
            frontier.read_again(topic)
        self._batch.cover(topic, partition, offset)
        if frontier.holds(topic, partition, offset):
            self.stats.skipped["already_stored"] += 1
            return
        self._pending.append(
            Record(
                Position(topic, partition, offset),
                message.value(),
                # a consumed message's headers are (str, bytes) pairs; the stub gives the
                # producer's wider type
                cast(wire.Headers, message.headers()),
                message.timestamp()[1],
            )
        )

    def _route_pending(self) -> None:
        """Route the messages handled since the last time into the batch (those of a
        fetch together: see :meth:`Router.route_all`)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for item in self._router.route_all(pending):
            if isinstance(item, MessageEvents):
                self._batch.add_events(item)
            elif isinstance(item, Row):
                self._batch.add(item.table, item.values)
            else:
                self.stats.skipped[item.reason] += 1

    # -- writing -------------------------------------------------------------------
    def _flush(self) -> None:
        self._route_pending()  # the batch's messages not routed yet
        batch, self._batch = self._batch, Batch()
        started = time.monotonic()
        try:
            for table, columns in batch.tables():
                self._write(table, columns, self._token(batch, table))
        except _Abandoned:
            log.warning("batch_abandoned", messages=batch.messages)
            return
        self._commit(batch)
        self.stats.batches += 1
        self.stats.last_insert_ms = (time.monotonic() - started) * 1000
        log.debug("batch_inserted", rows=batch.row_count, ms=self.stats.last_insert_ms)

    def _flush_quietly(self) -> None:
        try:
            self._flush()
        except Exception as exc:  # shutting down: uncommitted data is redelivered later
            log.warning("final_flush_failed", error=str(exc))

    def _write(self, table: str, columns: Sequence[Sequence[Any]], token: str) -> None:
        try:
            self._insert_with_retry(table, columns, token)
        except RejectedRowsError as exc:
            log.warning("rows_rejected", table=table, rows=len(columns[0]), error=str(exc)[:300])
            self._isolate(table, columns, token)

    def _token(self, batch: Batch, table: str) -> str:
        """The batch's token, told apart from the same offsets of another incarnation."""
        ids = self._frontier.ids_of([t for t, _ in batch.ranges])
        return f"{batch.token(table)}@{hashlib.sha256(ids.encode()).hexdigest()[:16]}"

    def _insert_with_retry(self, table: str, columns: Sequence[Sequence[Any]], token: str) -> None:
        names = COLUMNS[table]
        ids = self._frontier.ids_column(columns[names.index("_topic")])
        insert = partial(
            self._warehouse.insert, table, [*columns, ids], (*names, "_topic_id"), token
        )
        self._with_retry(table, insert, len(columns[0]))

    def _with_retry(self, table: str, insert: Callable[[], None], rows: int) -> None:
        delay = self._config.retry_initial
        while True:
            try:
                insert()
                self.stats.stored[table] += rows
                if self._retrying:
                    self._resume()
                return
            except RetryableWriteError as exc:
                self._back_off(table, exc, delay)
                delay = min(delay * 2, self._config.retry_max)

    def _back_off(self, table: str, exc: Exception, delay: float) -> None:
        self.stats.retries += 1
        self.stats.last_error = str(exc)[:500]
        log.warning("insert_retrying", table=table, in_seconds=delay, error=str(exc)[:300])
        if not self._retrying:
            self._retrying = True
            self._consumer.pause(self._consumer.assignment())
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            # Paused: returns nothing, but serves rebalances and keeps us in the group.
            for message in self._consumer.consume(num_messages=1, timeout=0.1):
                self._handle(message)
            self._write_status()
            if self._abandon or self._stop.is_set():
                self._abandon = False
                self._resume()
                raise _Abandoned()

    def _resume(self) -> None:
        self._retrying = False
        self._consumer.resume(self._consumer.assignment())

    def _isolate(self, table: str, columns: Sequence[Sequence[Any]], token: str) -> None:
        """Bisect a refused batch; store the good halves, dead-letter single bad rows."""
        rows = list(zip(*columns, strict=True))
        letters: list[tuple[Any, ...]] = []
        self._bisect(table, rows, token, letters)
        if letters:
            self.stats.rejected += len(letters)
            self._insert_with_retry(
                "dead_letters", [list(c) for c in zip(*letters, strict=True)], f"{token}/rejected"
            )

    def _bisect(
        self, table: str, rows: list[tuple[Any, ...]], token: str, letters: list[tuple[Any, ...]]
    ) -> None:
        try:
            self._insert_with_retry(table, [list(c) for c in zip(*rows, strict=True)], token)
        except RejectedRowsError as exc:
            if len(rows) == 1:
                letters.append(_rejected_row(table, rows[0], str(exc)))
                return
            mid = len(rows) // 2
            self._bisect(table, rows[:mid], f"{token}/a", letters)
            self._bisect(table, rows[mid:], f"{token}/b", letters)

    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.commit_positions().items()]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # e.g. the group coordinator is still loading after a broker restart. The rows
            # are stored and carry their offsets, which a (re)assignment reads back from the
            # warehouse, so nothing is stored twice; the next batch's commit moves on.
            self.stats.commit_failures += 1
            log.warning("commit_deferred", error=str(exc)[:300])

    # -- rebalancing -----------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        topics = sorted({tp.topic for tp in partitions})
        if topics:
            self._frontier.assign(topics)
        log.info("partitions_assigned", count=len(partitions))

    def _look_up(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()``, retried until it succeeds (None when stopped first). Runs in a
        rebalance callback, so it waits without consuming."""
        delay = self._config.retry_initial
        while True:
            try:
                return call()
            except (RetryableWriteError, RejectedRowsError, KafkaException, TimeoutError) as exc:
                log.warning("lookup_retrying", what=what, error=str(exc)[:300])
                if self._stop.wait(delay):
                    return None
                delay = min(delay * 2, self._config.retry_max)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._retrying:
            self._abandon = True
            return
        self._flush_quietly()
        self._batch = Batch()
        self._frontier.revoke([(tp.topic, tp.partition) for tp in partitions])

    # -- status ------------------------------------------------------------------------
    def _write_status(self, force: bool = False) -> None:
        path = self._config.status_path
        now = time.monotonic()
        if path is None or (not force and now - self._last_status < 2.0):
            return
        self._last_status = now
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats.as_dict()))
        tmp.replace(path)


def _rejected_row(table: str, row: tuple[Any, ...], error: str) -> tuple[Any, ...]:
    """A dead letter for a row the warehouse refused, pointing at its Kafka position."""
    values = dict(zip(COLUMNS[table], row, strict=True))
    pos = Position(
        str(values["_topic"]),
        int(values["_partition"]),
        int(values["_offset"]),
        int(values.get("_index", 0)),
    )
    payload = repr(row).encode()
    letter = DeadLetter("sink", "warehouse_rejected", error[:2000], payload, len(payload), pos)
    return dead_letter_row(letter, datetime.now(UTC), pos)
