"""The pure part of the rollup step: a batch of raw records in; dead letters, closed
rollups and the changed partition states out. No I/O here (:mod:`streams.rollup_step`
makes the step's messages; :mod:`streams.driver` does the I/O)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from shiftright_server.schemas import wire
from shiftright_server.schemas.events import ROLLUP_KEY_FIELD, ErrorEvent
from shiftright_server.schemas.fast_events import DECODERS, Window, accept
from shiftright_server.schemas.fast_lines import (
    Message,
    Messages,
    accept_lines,
    accept_message,
    accept_messages,
)
from shiftright_server.schemas.positions import Position, position_id_later
from shiftright_server.schemas.records import Rollup
from shiftright_server.schemas.validation import (
    AnyEvent,
    Limits,
    Rejection,
    parse_event,
    parse_event_as_given,
)
from shiftright_server.streams.fast_errors import fast_errors
from shiftright_server.streams.rekey import Handoff, Item, byhost_item
from shiftright_server.streams.rollup import PartitionRollup
from shiftright_server.streams.rollup_columns import EventColumns, apply_columns
from shiftright_server.streams.step import Holes, Record, TopicPartition

__all__ = ["DeadLetterOut", "Outcome", "Processor", "Record", "TopicPartition"]


@dataclass(frozen=True, slots=True)
class DeadLetterOut:
    record: Record
    index: int  # of the event within a batch message
    payload: bytes | None  # the offending event (one line of a batch)
    reason: str
    detail: str


@dataclass
class Outcome:
    dead_letters: list[DeadLetterOut] = field(default_factory=list)
    rollups: list[Rollup] = field(default_factory=list)
    touched: set[TopicPartition] = field(default_factory=set)
    valid: int = 0
    replayed: int = 0
    late: int = 0
    #: Partitions whose saved state is behind what Kafka delivers: (expected, got).
    gaps: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    #: Valid errors re-keyed by host for error analytics (``streams.rekey``), in order.
    byhost: list[Item] = field(default_factory=list)


StateLoader = Callable[[TopicPartition], bytes | None]
#: Messages of fewer lines are read line by line: reading a message whole costs a few
#: NumPy calls whatever its size, more than it saves below about five lines.
WHOLE_FROM_LINES = 8


def accept_whole(
    value: bytes | None, headers: wire.AnyHeaders, kind: str, window: Window, limits: Limits
) -> Message | None:
    """:func:`~schemas.fast_lines.accept_message` for a batch message of at least
    :data:`WHOLE_FROM_LINES` lines, without splitting it into lines first (it then
    declines a message with a blank line); None (read it line by line) for a shorter
    one, or one that is not a batch."""
    if value is None or not _lines_at_least(value, WHOLE_FROM_LINES) or not wire.is_batch(headers):
        return None
    return accept_message(value, None, kind, window, limits)


def _lines_at_least(value: bytes, lines: int) -> bool:
    """``value`` holds at least this many lines (without counting every newline of it)."""
    at = -1
    for _ in range(lines - 1):
        at = value.find(b"\n", at + 1)
        if at < 0:
            return False
    return True


def accept_partition(records: list[Record], kind: str, limits: Limits) -> Messages | None:
    """:func:`~schemas.fast_lines.accept_messages` for these records of one partition
    (batch messages, each event's time held to its own record's window): every event of
    every one of them, in order, or None (read them one by one)."""
    if any(r.value is None or not wire.is_batch(r.headers) for r in records):
        return None
    values = [cast(bytes, r.value) for r in records]
    windows = [Window.around(r.timestamp_ms, limits) for r in records]
    return accept_messages(values, kind, windows, limits)


class Processor:
    """Validates records and keeps one :class:`PartitionRollup` per source partition;
    with ``rekey_errors``, also re-keys each valid error by host (``Outcome.byhost``).
    With ``columns``, usage, health and change events are validated on the fast path
    (:mod:`schemas.fast_events`), errors by the models, and a batch's valid events are
    added to each partition's rollup at once (:mod:`streams.rollup_columns`)."""

    def __init__(
        self,
        kind_by_topic: dict[str, str],
        limits: Limits,
        bucket_seconds: int,
        lateness_seconds: int,
        load_state: StateLoader = lambda tp: None,
        clock: Callable[[], float] = time.monotonic,
        signal_seconds: int = 0,
        rekey_errors: bool = False,
        columns: bool = True,
        handoff: Handoff[ErrorEvent] | None = None,
    ) -> None:
        self._kinds = kind_by_topic
        #: where validated errors wait for this worker's attach step (``rekey_errors``)
        self.handoff = handoff
        self._columns = columns
        self._rekey = rekey_errors
        self._limits = limits
        self._bucket_ms = bucket_seconds * 1000
        self._lateness_ms = lateness_seconds * 1000
        self._load_state = load_state
        self._clock = clock
        self._signal_ms = signal_seconds * 1000
        self.states: dict[TopicPartition, PartitionRollup] = {}
        self._last_seen: dict[TopicPartition, float] = {}
        self._gaps: dict[TopicPartition, tuple[int, float]] = {}  # expected offset, since
        self._holes = Holes()

    def state(self, tp: TopicPartition) -> PartitionRollup:
        found = self.states.get(tp)
        if found is None:
            raw = self._load_state(tp)
            found = (
                PartitionRollup.loads(raw)
                if raw
                else PartitionRollup(self._kinds[tp[0]], tp[1], self._bucket_ms, self._lateness_ms)
            )
            if found.signal_ms != self._signal_ms:  # signals switched on, off or resized
                found.signal_ms, found.signals, found.dirty = self._signal_ms, {}, set()
            self.states[tp] = found
            # A restored partition counts as seen now: if it stays quiet, its open
            # buckets close on the wall clock like those of any other quiet partition.
            self._last_seen.setdefault(tp, self._clock())
        return found

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop in-memory state of partitions this worker no longer owns."""
        for tp in tps:
            self.states.pop(tp, None)
            self._last_seen.pop(tp, None)
            self._gaps.pop(tp, None)
        self._holes.forget(lambda tp: tp in self.states)

    def process(self, records: Sequence[Record]) -> Outcome:
        out = Outcome()
        emitted_at = datetime.now(UTC)
        batch: dict[TopicPartition, EventColumns] = {}
        together = self._read_together(records) if self._columns else {}
        for record in records:
            tp, kind = (record.topic, record.partition), self._kinds[record.topic]
            if tp in together:
                state = self._fresh(record, out)
                if state is not None:
                    state.skip(record.offset)
            elif self._columns and kind in DECODERS:
                cols = batch.get(tp)
                if cols is None:
                    cols = batch[tp] = EventColumns()
                self._columns_of(record, out, cols)
            elif self._columns and kind == "error":
                cols = batch.get(tp)
                if cols is None:
                    cols = batch[tp] = EventColumns()
                self._errors_of(record, out, cols)
            else:
                self._one(record, out, emitted_at)
        for tp, read in together.items():
            cols = batch[tp] = EventColumns()
            cols.add_message(read.events, ROLLUP_KEY_FIELD[self._kinds[tp[0]]], read.ts_ms)
        for tp, cols in batch.items():
            state = self.states[tp]
            applied = apply_columns(state, cols)
            out.valid += applied.valid
            out.late += applied.late
            out.rollups.extend(state.close(state.watermark_ms(), emitted_at))
        return out

    def _read_together(self, records: Sequence[Record]) -> dict[TopicPartition, Messages]:
        """The usage, health and change events of each partition's records of the batch
        not yet applied, read at once (:func:`accept_partition`) where every line of them
        is vouched for; a partition left out is read record by record. The records of a
        partition not yet applied are those past its state's offset, in offset order."""
        runs: dict[TopicPartition, list[Record]] = {}
        kinds = self._kinds
        for record in records:
            if kinds[record.topic] in DECODERS:
                tp = (record.topic, record.partition)
                run = runs.get(tp)
                if run is None:
                    run = runs[tp] = []
                run.append(record)
        together: dict[TopicPartition, Messages] = {}
        for tp, run in runs.items():
            last, fresh = self.state(tp).offset, []
            for record in run:
                if record.offset > last:
                    fresh.append(record)
                    last = record.offset
            if fresh:
                read = accept_partition(fresh, kinds[tp[0]], self._limits)
                if read is not None:
                    together[tp] = read
        return together

    def _columns_of(self, record: Record, out: Outcome, cols: EventColumns) -> None:
        """The record's events as columns (valid ones) and dead letters (the others)."""
        state = self._fresh(record, out)
        if state is None:
            return
        kind, now_ms, limits = state.kind, record.timestamp_ms, self._limits
        window, field = Window.around(now_ms, limits), ROLLUP_KEY_FIELD[kind]
        now: datetime | None = None
        whole = accept_whole(record.value, record.headers, kind, window, limits)
        if whole is not None:
            state.skip(record.offset)
            cols.add_message(whole.events, field, whole.ts_ms)
            return
        payloads = wire.split_events(record.value, record.headers)
        if payloads:
            state.skip(record.offset)
        vouched = accept_lines(record.value, payloads, kind, now_ms, window, limits)
        for index, payload in enumerate(payloads):
            if vouched is None:
                fast = accept(payload, kind, now_ms, window, limits)
            else:
                fast = vouched[index]
            if fast is not None:
                cols.add_fast(fast.event, getattr(fast.event, field), fast.ts_ms)
                continue
            now = now or datetime.fromtimestamp(now_ms / 1000, UTC)
            parsed = parse_event(payload, kind, now, limits)
            if isinstance(parsed, Rejection):
                out.dead_letters.append(
                    DeadLetterOut(record, index, payload, parsed.reason, parsed.detail)
                )
                continue
            cols.add_model(parsed, int(parsed.ts.timestamp() * 1000))

    def _errors_of(self, record: Record, out: Outcome, cols: EventColumns) -> None:
        """The record's error events as columns (valid ones) and dead letters (the others),
        read by the models (and re-keyed, with ``rekey_errors``)."""
        state = self._fresh(record, out)
        if state is None:
            return
        payloads = wire.split_events(record.value, record.headers)
        if payloads:
            state.skip(record.offset)
        fast = fast_errors(record.value, payloads, record.timestamp_ms, self._limits)
        for index, payload in enumerate(payloads):
            parsed = self._error(record, index, payload, fast[index], out)
            if isinstance(parsed, Rejection):
                out.dead_letters.append(
                    DeadLetterOut(record, index, payload, parsed.reason, parsed.detail)
                )
                continue
            cols.add_model(parsed, int(parsed.ts.timestamp() * 1000))

    def _one(self, record: Record, out: Outcome, emitted_at: datetime) -> None:
        state = self._fresh(record, out)
        if state is None:
            return
        now = datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        for index, payload in enumerate(wire.split_events(record.value, record.headers)):
            parsed = self._parse(record, index, payload, state.kind, now, out)
            if isinstance(parsed, Rejection):
                state.skip(record.offset)
                out.dead_letters.append(
                    DeadLetterOut(record, index, payload, parsed.reason, parsed.detail)
                )
                continue
            out.valid += 1
            if not state.apply(record.offset, parsed):
                out.late += 1
            # Closing after every event (not every batch) keeps "late or not" a function
            # of the records alone, so a replay with other batch bounds decides the same.
            out.rollups.extend(state.close(state.watermark_ms(), emitted_at))

    def _fresh(self, record: Record, out: Outcome) -> PartitionRollup | None:
        """The record's partition state; None (counted) for a record already applied."""
        tp = (record.topic, record.partition)
        state = self.state(tp)
        if state.seen(record.offset):
            out.replayed += 1
            return None
        self._behind(tp, state, record.offset, out)
        out.touched.add(tp)
        self._last_seen[tp] = self._clock()
        return state

    def _parse(
        self,
        record: Record,
        index: int,
        payload: bytes | None,
        kind: str,
        now: datetime,
        out: Outcome,
    ) -> AnyEvent | Rejection:
        """One event read by the models (an error on its fast path first,
        :mod:`streams.fast_errors`); with ``rekey_errors`` a valid error is re-keyed."""
        if kind != "error":
            return parse_event(payload, kind, now, self._limits)
        fast = fast_errors(None, [payload], record.timestamp_ms, self._limits)[0]
        return self._error(record, index, payload, fast, out)

    def _error(
        self,
        record: Record,
        index: int,
        payload: bytes | None,
        fast: ErrorEvent | None,
        out: Outcome,
    ) -> AnyEvent | Rejection:
        """An error line as its fast path read it (``fast``), or where that left it to
        the models (None), as they read it; with ``rekey_errors`` a valid one is re-keyed."""
        now_ms, limits = record.timestamp_ms, self._limits
        if fast is not None:
            parsed: AnyEvent | Rejection = fast
            as_given = True
        else:  # re-keyed, the sink's position id for an error without one: it joins its raw row
            at = Position(record.topic, record.partition, record.offset)
            made = position_id_later(at, index) if self._rekey else None
            now = datetime.fromtimestamp(now_ms / 1000, UTC)
            parsed, as_given = parse_event_as_given(payload, "error", now, limits, made)
        if not self._rekey:
            return parsed
        if isinstance(parsed, ErrorEvent):
            origin = (record.partition, record.offset, index)
            out.byhost.append(byhost_item(parsed, payload or b"", as_given, origin))
            if as_given and payload and self.handoff is not None:
                self.handoff.put(payload, parsed)
        return parsed

    def _behind(
        self, tp: TopicPartition, state: PartitionRollup, offset: int, out: Outcome
    ) -> None:
        """Report (once per gap) records missing between the saved state and this one.
        The worker reads such gaps before processing (:meth:`missing`), so this only fires
        when a gap could not be read (e.g. the records were deleted by retention)."""
        expected = state.offset + 1
        if state.offset >= 0 and offset > expected and self._gaps.get(tp, (None,))[0] != expected:
            self._gaps[tp] = (expected, self._clock())
            out.gaps[tp] = (expected, offset)

    def missing(self, records: Iterable[Record]) -> dict[TopicPartition, tuple[int, int]]:
        """Offset spans ``[first, end)`` holding records that are neither in the saved state
        nor in this batch, which must be read and processed with it.

        Kafka's committed position can be ahead of the state a restarted worker restores,
        and Faust's consumer skips offsets it believes empty (it treats jumps in fetched
        offsets as gaps and commits them as done); either way the state, not Kafka's
        bookkeeping, says what was applied. A partition with no saved state but records
        after offset 0 is re-read from the start of its log (``first`` = 0). A hole is
        asked for once; if reading it yields nothing (e.g. transaction markers), it is
        not asked again."""
        return self.missing_before((r.topic, r.partition, r.offset) for r in records)

    def missing_before(
        self, positions: Iterable[tuple[str, int, int]]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Like :meth:`missing`, for (topic, partition, offset) positions, e.g. the group's
        committed offsets (where the consumer resumes)."""
        return self._holes.spans(positions, lambda tp: self.state(tp).offset)

    def signals_due(self) -> list[Rollup]:
        """Cumulative snapshots of every signal bucket that changed since the last call."""
        emitted_at = datetime.now(UTC)
        return [r for state in self.states.values() for r in state.signals_due(emitted_at)]

    def idle(self, idle_seconds: float) -> list[TopicPartition]:
        """Partitions with open buckets that received nothing for ``idle_seconds``."""
        now = self._clock()
        return [
            tp
            for tp, state in self.states.items()
            if state.buckets and now - self._last_seen.get(tp, now) >= idle_seconds
        ]

    def caught_up(self, ends: dict[TopicPartition, int]) -> list[TopicPartition]:
        """Of these partitions, those whose every record (up to the log end) is applied."""
        return [
            tp
            for tp, end in ends.items()
            if tp in self.states and self.states[tp].offset + 1 >= end
        ]

    def close_idle(
        self, tps: Iterable[TopicPartition], wall_ms: int, lateness_ms: int | None = None
    ) -> Outcome:
        """Close buckets of quiet, caught-up partitions, with wall-clock time as watermark.

        Only for partitions known to be at the end of their log: while the broker is
        unreachable nothing is closed, so events buffered by producers during an outage
        still count when they arrive.
        """
        out = Outcome()
        emitted_at = datetime.now(UTC)
        for tp in tps:
            lateness = self._lateness_ms if lateness_ms is None else lateness_ms
            closed = self.states[tp].close(wall_ms - lateness, emitted_at)
            if closed:
                out.rollups.extend(closed)
                out.touched.add(tp)
        return out
