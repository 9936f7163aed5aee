"""One driver that runs any :class:`~streams.step.Step` on Faust.

::

    intake (streams/intake.py) ── take(batch_max, within) ──▶ records
        │                                   (offset order per partition)
        ├─ 1. gaps: step.missing(records) ─▶ GapReader reads those spans from Kafka,
        │        merged in front (a restarted worker's state can be behind the group's
        │        committed offset, and Faust's consumer can skip offsets)
        ├─ 2. step.process(records) ─▶ Output           (pure; raises only on a bug)
        │        └─ raised: forget the batch's partitions (back to the saved state),
        │           bisect; the one record that still raises is skip()ped and sent to
        │           the dead-letter topic, reason step_failed, detail "<step>: <error>"
        ├─ 3. send Output.messages, await every delivery
        ├─ 4. step.state_writes(Output.touched) ─▶ changelog, each phase awaited
        └─ 5. return: the intake acks the batch's partition lists; Faust commits
                       their offsets later (broker_commit_interval)

    Any failure in 1, 3 or 4 (the broker away, a topic not yet in the metadata) is
    retryable: the batch's partitions go back to the saved state and the whole batch is
    tried again with backoff. The driver's loop never raises, so nothing is acked that
    was neither processed nor dead-lettered.

Timers use the same path (:meth:`Driver.every`): a prepare function does the blocking
broker calls outside the lock, an apply function makes an :class:`Output` under it, and
the driver delivers and saves it. The driver also registers, once per assignment, a pass
over the group's committed offsets (:meth:`Driver._read_committed_gaps`): a partition can
resume past its saved state and then receive nothing that would reveal the gap.

Restarts. After a ``kill -9`` the successor restores each step's state from its
changelog, resumes at the group's committed offset (the log's beginning if the group
never committed) and reads whatever lies between; records at or before a restored
state's offset are skipped, so nothing is counted twice whatever the kill interrupted:
the first batch before any commit, the first commit, or a run in full flow. Every
restored partition counts as seen when the driver loads it, so its timers (quiet
close, held-error release) run without a new record.

What bounds the successor's start is the group's view of the dead member. A worker
joins its group as a static member under ``StreamSettings.instance_id`` (Kafka's static
membership): the broker keeps a dead member's partitions for it, and a successor with the
same id takes its place and its partitions as soon as it joins, without a rebalance; it
then recovers the changelog topics (seconds for the states these steps keep) and goes on.
On a 2-core test machine a successor joined 2-4 s after it started (the process's own
start-up) and was ready to consume within a second of joining, whether the kill came
before the group's first commit (within about a second of the first batch), right after
it, or mid-run. A successor under another id, or any worker with
dynamic membership (``instance_id`` empty), waits until the dead member's session
expires (``session_timeout_seconds``). A step that stops while its worker is
still a member shows in the ``step_progress`` log line of each step (records, retries,
gap records read) every ten seconds: a step in a retry loop logs ``step_batch_retry``
with the error, a step waiting for its input logs unchanged figures.
``test_error_analytics.py`` kills the worker at those three points and checks that every
error is counted once; ``test_worker_restarts.py`` checks that a restored open bucket
closes within the quiet-close time of the restarted worker's start plus that bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar, cast

import faust
import structlog
from shiftright_server.schemas import topics
from shiftright_server.schemas.fast_lines import collector_paused
from shiftright_server.streams.gaps import GapReader, LogEnds, merge
from shiftright_server.streams.step import (
    Message,
    Output,
    Record,
    Spans,
    Step,
    TopicPartition,
    positions_of,
)
from shiftright_server.streams.transport import App

log = structlog.get_logger("shiftright.streams")

#: Reason of a dead letter for a record that made a step raise.
STEP_FAILED = "step_failed"
T = TypeVar("T")


@dataclass
class Counters:
    """What one driver did (logged every ten seconds as ``step_progress``)."""

    records: int = 0
    batches: int = 0  # records / batches: how full the batches are
    step_failed: int = 0  # records dead-lettered because the step raised
    retries: int = 0  # batches tried again after a retryable failure
    gap_records_read: int = 0  # records read to close a gap after a restart
    messages: int = 0
    outputs: dict[str, int] = field(default_factory=dict)  # the step's own figures

    def add(self, out: Output) -> None:
        self.messages += len(out.messages)
        for name, n in out.counts.items():
            self.outputs[name] = self.outputs.get(name, 0) + n


@dataclass
class Clock(Generic[T]):
    """A timer of a step: ``prepare`` (outside the lock; may call the broker; None:
    nothing to do this time), then ``apply`` (under the lock, pure)."""

    prepare: Callable[[], Awaitable[T | None]]
    apply: Callable[[T], Output]


def dead_letter(
    record: Record,
    reason: str,
    detail: str,
    dlq_topic: str,
    payload: bytes | None = None,
    index: int = 0,
) -> Message:
    """The dead-letter message of event ``index`` of ``record`` (the headers the sink
    turns into a ``dead_letters`` row); ``payload`` defaults to the record's value."""
    value = record.value if payload is None else payload
    value = value or b""
    headers = [
        (topics.HEADER_REASON, reason.encode()),
        (topics.HEADER_DETAIL, detail[:2000].encode()),
        (topics.HEADER_SOURCE_TOPIC, record.topic.encode()),
        (topics.HEADER_SOURCE_PARTITION, str(record.partition).encode()),
        (topics.HEADER_SOURCE_OFFSET, str(record.offset).encode()),
        (topics.HEADER_SOURCE_INDEX, str(index).encode()),
        (topics.HEADER_PAYLOAD_BYTES, str(len(value)).encode()),
    ]
    # Keep dead letters small; the table stores at most 64 KiB of a payload anyway.
    key = f"{record.topic}:{record.partition}".encode()
    return Message(dlq_topic, key, value[: 64 * 1024], headers)


class Driver:
    """Runs one step on a Faust app: its agent, its committed-gap pass and its timers."""

    def __init__(
        self,
        app: faust.App,
        step: Step,
        sources: Sequence[str],
        table: Any,
        dlq_topic: str,
        bootstrap: str,
        batch: tuple[int, float],
        before_batch: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app, self.step, self.sources = app, step, tuple(sources)
        self.table = table
        self.dlq_topic = dlq_topic
        self.counters = Counters()
        self.lock = asyncio.Lock()
        self.log_ends = LogEnds(bootstrap)
        self._gap_reader = GapReader(bootstrap)
        self._batch_max, self._within = batch
        self._checked: set[TopicPartition] = set()
        #: Called before each batch, outside the lock (e.g. wait for alert rules).
        self.before_batch = before_batch

    # -- registration -----------------------------------------------------------------
    def register(self) -> None:
        app, name = self.app, self.step.name
        # subscribed through Faust's conductor; the records arrive through the intake
        app.topics.add(app.topic(*self.sources, key_serializer="raw", value_serializer="raw"))
        intake = cast(App, app).intake
        batches = intake.queue(self.sources)

        async def consume() -> None:
            while True:
                pieces = await batches.take(self._batch_max, self._within)
                if self.before_batch is not None:
                    await self.before_batch()
                await self.run([r for p in pieces for r in p.records])
                intake.done(pieces)

        app.task(consume)
        app.timer(2.0, name=f"{name}-committed-gaps")(self._read_committed_gaps)
        app.timer(10.0, name=f"{name}-progress")(self._report)
        app.on_partitions_revoked.connect(self._revoked)  # type: ignore[arg-type]  # mode types receivers as (sender, *args); Faust documents (sender, revoked)

    def every(self, seconds: float, clock: Clock[T], name: str) -> None:
        """Run a timer of the step through the same deliver-and-save path."""

        async def tick() -> None:
            found = await clock.prepare()
            if found is None:
                return
            async with self.lock:
                try:
                    out = clock.apply(found)
                    if out.messages or out.touched:
                        await self._publish(out)
                except Exception as exc:  # back to the saved state; a later tick redoes it
                    log.warning("step_timer_deferred", step=self.step.name, error=repr(exc))
                    self.step.forget(self._owned())

        self.app.timer(seconds, name=f"{self.step.name}-{name}")(tick)

    @staticmethod
    async def blocking(fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """A blocking broker call in a thread, bounded (a hung request must not hang the
        event loop)."""
        return await _blocking(fn, *args, timeout=timeout)

    def assigned(self) -> list[TopicPartition] | None:
        """This step's assigned source partitions; None while recovering or rebalancing."""
        app = self.app
        recovery = app.tables.recovery  # type: ignore[attr-defined]  # on Faust's TableManager, not its abstract type
        if not recovery.completed.is_set() or app.in_recovery or app.rebalancing:
            return None
        return self._owned()

    def _owned(self) -> list[TopicPartition]:
        return [
            (tp.topic, tp.partition)
            for tp in self.app.consumer.assignment()
            if tp.topic in self.sources
        ]

    # -- one batch --------------------------------------------------------------------
    async def run(self, records: list[Record]) -> None:
        """Process a batch until it is done: every record processed or dead-lettered."""
        delay = 0.5
        while True:
            try:
                async with self.lock:
                    await self._settle(records)
                self.counters.records += len(records)
                self.counters.batches += 1
                return
            except Exception as exc:  # retryable: the broker did not take or give
                self.counters.retries += 1
                log.warning(
                    "step_batch_retry",
                    step=self.step.name,
                    records=len(records),
                    in_seconds=delay,
                    error=repr(exc),
                )
                self.step.forget(_partitions(records))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _settle(self, records: list[Record]) -> None:
        """Process, deliver and save; on a step failure, bisect down to the record."""
        records = await self._with_gaps(records)
        try:
            # ``process`` holds every event of its batch decoded until it returns; a
            # collection inside it took about 2 % of the worker's CPU at 50,000 events/s
            with collector_paused():
                out = self.step.process(records)
        except Exception as exc:
            self.step.forget(_partitions(records))  # back to the saved state
            if len(records) == 1:
                await self._dead_letter(records[0], exc)
                return
            mid = len(records) // 2
            await self._settle(records[:mid])
            await self._settle(records[mid:])
            return
        await self._publish(out)

    async def _dead_letter(self, record: Record, exc: Exception) -> None:
        # What the saved state lacks before this record is applied first (a state
        # saved less often than it changes can be behind the one that failed).
        before = self.step.missing(positions_of([record]))
        if before:
            await self._settle(await self._read(before))
        key = self.step.skip(record)
        detail = f"{self.step.name}: {exc!r}"
        self.counters.step_failed += 1
        log.error(
            "record_dead_lettered",
            step=self.step.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=repr(exc),
        )
        letter = dead_letter(record, STEP_FAILED, detail, self.dlq_topic)
        await self._publish(Output([letter], {key}))

    async def _with_gaps(self, records: list[Record]) -> list[Record]:
        """The batch plus the records the state lacks, in offset order per partition."""
        missing = self.step.missing(positions_of(records))
        return merge(records, await self._read(missing)) if missing else records

    async def _read(self, missing: Spans) -> list[Record]:
        found: list[Record] = await _blocking(self._gap_reader.read, missing, timeout=60.0)
        self.counters.gap_records_read += len(found)
        log.warning(
            "state_behind_committed_offset",
            step=self.step.name,
            records_read=len(found),
            ranges={f"{t}:{p}": r for (t, p), r in missing.items()},
        )
        return found

    # -- delivery ---------------------------------------------------------------------
    async def _publish(self, out: Output) -> None:
        """Send, await delivery, then save the touched state and await that: only then
        may Faust ack. Awaited, not ``send_soon()``: Faust's commit flush can miss a
        message its buffer has dequeued but not yet handed to the client.

        Straight to Faust's producer, not through ``Topic.send``: the messages are
        bytes already, and the topic layer's per-message work (a pending-message
        object, codecs, sensors, a completion callback) buys a step nothing; each
        future still resolves only once the broker has acknowledged the message."""
        producer = await self.app.maybe_start_producer()
        send = producer.send
        await _gather(
            [
                await send(m.topic, m.key, m.value, m.partition, None, m.headers)
                for m in out.messages
            ]
        )
        changelog = self.table.changelog_topic.get_topic_name()
        for phase in self.step.state_writes(out.touched):
            pending = []
            for w in phase:
                self.table.data[w.key] = w.value
                pending.append(await send(changelog, w.key, w.value, w.partition, None, None))
            await _gather(pending)
        self.counters.add(out)

    # -- timers -----------------------------------------------------------------------
    async def _read_committed_gaps(self) -> None:
        """Once per assignment, compare where Kafka resumes each source partition (the
        group's committed offset) with the restored state, and process what lies
        between at once: the partition may get no new records that would reveal it."""
        todo = [tp for tp in self.assigned() or [] if tp not in self._checked]
        if not todo:
            return
        try:
            committed = await _blocking(self.log_ends.committed, todo, self.app.conf.id)
        except Exception as exc:  # try again on the next tick
            log.warning("committed_offsets_unavailable", step=self.step.name, error=repr(exc))
            return
        positions = [(t, p, o) for (t, p), o in committed.items() if o > 0]
        async with self.lock:
            self.step.restore(todo)
            missing = self.step.missing(positions)
            if missing:
                try:
                    await self._settle(await self._read(missing))
                except Exception as exc:
                    log.warning("committed_gap_deferred", step=self.step.name, error=repr(exc))
                    self.step.forget(todo)
                    return
            self._checked.update(todo)

    async def _report(self) -> None:
        log.info("step_progress", step=self.step.name, **asdict(self.counters))

    async def _revoked(self, sender: Any, revoked: set[Any], **_: Any) -> None:
        gone = [(tp.topic, tp.partition) for tp in revoked if tp.topic in self.sources]
        self.step.forget(gone)
        self._checked.difference_update(gone)


def _partitions(records: Iterable[Record]) -> set[TopicPartition]:
    return {(r.topic, r.partition) for r in records}


async def _gather(pending: list[Any]) -> None:
    if pending:
        await asyncio.gather(*pending)


async def _blocking(fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
    """A blocking broker call in a thread, bounded (a hung request must not hang us)."""
    call = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    return await asyncio.wait_for(call, timeout)


def wall_ms() -> int:
    return int(time.time() * 1000)
