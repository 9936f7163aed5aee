"""The rollup step: raw events in; dead letters, closed rollups, alert signals and errors
re-keyed by host out (:class:`~streams.processor.Processor` does the pure work).

Its state is one changelog record per source partition (``rollup-state``, key
``topic:partition``): the open buckets and the last applied offset. Two clocks run it
besides the records: a quiet partition closes its buckets on the wall clock once the
broker confirms nothing is waiting (:class:`QuietClose`), and, with alerting on, the
open signal buckets are published with a tick saying how far the input is complete
(:class:`SignalClock`, see :mod:`streams.alerting.signals`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import structlog
from shiftright_server.schemas import wire
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alerting.signals import CLOSED, HEADER_SIGNAL, OPEN, TICK
from shiftright_server.streams.driver import Driver, dead_letter, wall_ms
from shiftright_server.streams.packing import pack_messages
from shiftright_server.streams.processor import Outcome, Processor
from shiftright_server.streams.step import (
    Message,
    Output,
    Record,
    Spans,
    StateKey,
    StateWrite,
    TopicPartition,
)

log = structlog.get_logger("shiftright.streams")


@dataclass(frozen=True)
class RollupTopics:
    dlq: str
    rollups: str
    signals: str  # "" without alerting
    byhost: str  # "" without error analytics
    partitions: int  # of the topics the worker creates


def state_key(tp: TopicPartition) -> bytes:
    return f"{tp[0]}:{tp[1]}".encode()


class RollupStep:
    name = "rollup"

    def __init__(self, processor: Processor, out: RollupTopics) -> None:
        self.processor = processor
        self.topics = out

    def missing(self, positions: Iterable[tuple[str, int, int]]) -> Spans:
        return self.processor.missing_before(positions)

    def process(self, records: Sequence[Record]) -> Output:
        outcome = self.processor.process(records)
        self._report_gaps(outcome)
        out = self.messages(outcome)
        if self.topics.signals:
            due = self.processor.signals_due()
            out.messages += signal_messages(self.topics.signals, due, OPEN)
            out.counts["signals"] += len(due)
        return out

    def messages(self, outcome: Outcome) -> Output:
        t = self.topics
        msgs = [
            dead_letter(d.record, d.reason, d.detail, t.dlq, d.payload or b"", d.index)
            for d in outcome.dead_letters
        ]
        values = [r.model_dump_json().encode() for r in outcome.rollups]  # once for both
        msgs += [
            Message(t.rollups, f"{r.app}|{r.env}|{r.key}".encode(), v)
            for r, v in zip(outcome.rollups, values, strict=True)
        ]
        if t.signals:
            msgs += signal_messages(t.signals, outcome.rollups, CLOSED, values)
        msgs += [
            Message(t.byhost, k, v, h, p)
            for k, v, h, p in pack_messages(outcome.byhost, t.partitions)
        ]
        out = Output(msgs, set(outcome.touched))
        out.counts.update(
            dead_letters=len(outcome.dead_letters),
            rollups=len(outcome.rollups),
            late=outcome.late,
            replayed=outcome.replayed,
            errors_rekeyed=len(outcome.byhost),
            gap_records=sum(got - expected for expected, got in outcome.gaps.values()),
        )
        return out

    def _report_gaps(self, outcome: Outcome) -> None:
        for (topic, partition), (expected, got) in outcome.gaps.items():
            log.error(
                "rollup_state_behind",
                topic=topic,
                partition=partition,
                expected_offset=expected,
                delivered_offset=got,
            )

    def skip(self, record: Record) -> StateKey:
        tp = (record.topic, record.partition)
        self.processor.state(tp).skip(record.offset)
        return tp

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        states = self.processor.states
        return [
            [
                StateWrite(state_key(tp), states[tp].dumps(), tp[1])
                for tp in sorted(cast(set[TopicPartition], touched))  # this step's state keys
                if tp in states  # not revoked meanwhile
            ]
        ]

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.processor.state(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        self.processor.forget(partitions)


def signal_messages(
    topic: str, rollups: list[Rollup], kind: bytes, values: list[bytes] | None = None
) -> list[Message]:
    """Rollups as NDJSON messages, one run per ``app|env`` (the key alert rules are
    partitioned by); ``values``: the rollups serialised already, in the same order."""
    if values is None:
        values = [r.model_dump_json().encode() for r in rollups]
    by_key: dict[bytes, list[bytes]] = {}
    for r, v in zip(rollups, values, strict=True):
        by_key.setdefault(f"{r.app}|{r.env}".encode(), []).append(v)
    headers = [*wire.BATCH_HEADERS, (HEADER_SIGNAL, kind)]
    return [
        Message(topic, key, b"\n".join(lines[i : i + wire.MAX_BATCH_EVENTS]), headers)
        for key, lines in by_key.items()
        for i in range(0, len(lines), wire.MAX_BATCH_EVENTS)
    ]


class QuietClose:
    """Quiet partitions close on the wall clock, but only when the broker confirms that
    nothing is waiting, and not right after an outage (producers are still catching up)."""

    def __init__(
        self, step: RollupStep, driver: Driver, idle_seconds: float, lateness_seconds: float
    ) -> None:
        self.step, self.driver = step, driver
        self.idle_seconds = idle_seconds
        self.lateness_ms = int(lateness_seconds * 1000)
        self._hold_until = 0.0

    async def prepare(self) -> dict[TopicPartition, int] | None:
        quiet = self.step.processor.idle(self.idle_seconds)
        if not quiet or time.monotonic() < self._hold_until:
            return None
        try:
            return await self.driver.blocking(self.driver.log_ends.fetch, quiet, timeout=5.0)
        except Exception as exc:
            self._hold_until = time.monotonic() + self.lateness_ms / 1000
            log.warning("idle_close_deferred", partitions=len(quiet), error=repr(exc))
            return None

    def apply(self, ends: dict[TopicPartition, int]) -> Output:
        processor = self.step.processor
        done = processor.caught_up(ends)
        return self.step.messages(processor.close_idle(done, wall_ms(), self.lateness_ms))


class SignalClock:
    """Snapshots of the open signal buckets that changed: what alert rules read; then,
    when the rollup state has reached the log ends asked for at some moment, a tick to
    every signal partition: the input is complete up to that moment."""

    def __init__(self, step: RollupStep, driver: Driver) -> None:
        self.step, self.driver = step, driver
        self.sender = uuid.uuid4().hex[:12]
        #: (asked at, log ends then): the input is complete up to "asked at" once every
        #: partition's state has reached the ends asked for then
        self.checkpoints: deque[tuple[float, dict[TopicPartition, int]]] = deque(maxlen=60)
        self._last_ask = 0.0

    async def prepare(self) -> bool:
        asked_at = time.time()
        if asked_at - self._last_ask >= 1.0:
            self._last_ask = asked_at
            ends = await self._source_ends()
            if ends is not None:
                self.checkpoints.append((asked_at, ends))
        return True

    async def _source_ends(self) -> dict[TopicPartition, int] | None:
        tps = self.driver.assigned()
        if not tps:
            return None
        try:
            return await self.driver.blocking(self.driver.log_ends.fetch, tps, timeout=2.0)
        except Exception:  # unknown: no tick this time
            return None

    def apply(self, _: bool) -> Output:
        processor, topic = self.step.processor, self.step.topics.signals
        due = processor.signals_due()
        frontier = None
        while self.checkpoints and all(
            processor.state(tp).offset + 1 >= end for tp, end in self.checkpoints[0][1].items()
        ):
            frontier = self.checkpoints.popleft()[0]
        out = Output(signal_messages(topic, due, OPEN))
        out.counts["signals"] += len(due)
        if frontier is not None:
            tick = json.dumps({"sender": self.sender, "frontier_ms": int(frontier * 1000)})
            out.messages += [
                Message(topic, b"tick", tick.encode(), [(HEADER_SIGNAL, TICK)], p)
                for p in range(self.step.topics.partitions)
            ]
        return out
