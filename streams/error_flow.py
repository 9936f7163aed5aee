"""The error-analytics steps of the stream worker after the re-key as pure batch
functions: Kafka records in; what to send and partition states to save out
(:mod:`streams.error_steps` wraps them as steps; :mod:`streams.driver` does the I/O).

1. The rollup step re-keys each valid error by host while it validates it
   (:mod:`streams.rekey`, same event id as the sink gives it): ``events.error.v1`` ->
   ``errors.byhost.v1`` keyed ``app|env|host``, so it lands on the partition number of
   its host's health. Errors travel in NDJSON batch messages per partition
   (:func:`streams.packing.pack_messages`) whose header lists each line's origin position.
2. :class:`Attach` ``events.health.v1`` + ``errors.byhost.v1`` -> ``errors.assigned.v1``
   (each error as soon as it is grouped) and ``errors.grouped.v1`` (each error with its
   host's health, the stored row): :class:`~streams.grouping.stages.AttachStage`. A re-key
   replayed after a crash sends some errors twice, at new offsets; each origin
   partition's errors reach a byhost partition in origin order, so an error at or before
   the last origin position applied from that origin partition is a duplicate.
3. :class:`Group` ``errors.assigned.v1`` + ``errors.commands.v1`` -> transitions and
   group rows: :class:`~streams.grouping.stages.GroupStage`. It never waits for health,
   so a new group is announced within a batch or two of its first error.

Every step keeps, per source (topic, partition), the last offset it applied. Records at
or before it are replays and skipped; :meth:`Offsets.missing_before` names the records
the state lacks (Kafka's committed offset can be ahead of the restored state after a
``kill -9``, and Faust's consumer can skip offsets), which the driver reads and processes
first. States are saved per partition number after the batch's outputs were delivered.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError
from shiftright_server.schemas import wire
from shiftright_server.schemas.events import ErrorEvent, HealthEvent
from shiftright_server.schemas.fast_events import FastHealth, Window, accept
from shiftright_server.schemas.fast_lines import accept_lines
from shiftright_server.schemas.records import (
    ErrorGroup,
    ErrorGroupCommand,
    ErrorGroupTransition,
    GroupedError,
)
from shiftright_server.schemas.validation import Limits, parse_event
from shiftright_server.streams.fast_errors import read_error
from shiftright_server.streams.grouping.health import HealthJoin, Reading
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
from shiftright_server.streams.grouping.state import GroupBook
from shiftright_server.streams.processor import accept_whole
from shiftright_server.streams.rekey import Handoff, origins_of
from shiftright_server.streams.step import Holes, Record, TopicPartition

Loader = Callable[[int], bytes | None]
RecordsLoader = Callable[[int], Iterable[bytes]]  # a partition's per-group/per-host records


def pack_state(state: dict[str, Any]) -> bytes:
    """A state as a changelog value (compressed: health caches and stacks repeat a lot).
    orjson and zlib level 1: the attach state holds a health cache, and the standard json
    module with level 3 took a quarter of the stream worker to write it."""
    return zlib.compress(orjson.dumps(state), 1)


def unpack_state(raw: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(zlib.decompress(raw))
    return loaded


@dataclass
class Offsets:
    """The last applied offset per source (topic, partition)."""

    last: dict[TopicPartition, int] = field(default_factory=dict)
    _holes: Holes = field(default_factory=Holes)

    def seen(self, tp: TopicPartition, offset: int) -> bool:
        return offset <= self.last.get(tp, -1)

    def applied(self, tp: TopicPartition, offset: int) -> None:
        self.last[tp] = max(offset, self.last.get(tp, -1))

    def of(self, partition: int) -> dict[str, int]:
        return {t: o for (t, p), o in self.last.items() if p == partition}

    def restore(self, partition: int, saved: dict[str, int]) -> None:
        for topic, offset in saved.items():
            self.last[(topic, partition)] = offset

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        self.last = {tp: o for tp, o in self.last.items() if tp[1] not in gone}
        self._holes.forget(lambda tp: tp[1] not in gone)

    def missing_before(
        self, positions: Iterable[tuple[str, int, int]]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """Spans ``[first, end)`` before these positions that were never applied (each
        hole asked for once; ``first`` 0 means from the start of the log)."""
        return self._holes.spans(positions, lambda tp: self.last.get(tp, -1))

    def missing(self, records: Iterable[Record]) -> dict[TopicPartition, tuple[int, int]]:
        return self.missing_before((r.topic, r.partition, r.offset) for r in records)


@dataclass
class Out:
    """What one batch produced: messages per output, and the partitions to save."""

    grouped: list[GroupedError] = field(default_factory=list)
    assigned: list[GroupedError] = field(default_factory=list)  # grouped, health to come
    transitions: list[ErrorGroupTransition] = field(default_factory=list)
    rows: list[ErrorGroup] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    changed_groups: dict[int, set[str]] = field(default_factory=dict)
    replayed: int = 0
    skipped: int = 0  # invalid events (the rollup step dead-letters them)
    handed_over: int = 0  # lines whose model the step before passed on (``Handoff``)


class _Step:
    """Offsets and per-partition state loading shared by the steps."""

    def __init__(self, load: Loader) -> None:
        self._load = load
        self.offsets = Offsets()
        self.loaded: set[int] = set()

    def ensure(self, partition: int) -> None:
        if partition in self.loaded:
            return
        raw = self._load(partition)
        state = unpack_state(raw) if raw else {}
        self.offsets.restore(partition, state.get("offsets", {}))
        self._restore(partition, state)
        self.loaded.add(partition)

    def _restore(self, partition: int, state: dict[str, Any]) -> None:
        """Load the step's own part of a saved state."""

    def missing(self, records: list[Record]) -> dict[TopicPartition, tuple[int, int]]:
        for r in records:
            self.ensure(r.partition)
        return self.offsets.missing(records)

    def missing_before(
        self, positions: list[tuple[str, int, int]]
    ) -> dict[TopicPartition, tuple[int, int]]:
        for _, p, _ in positions:
            self.ensure(p)
        return self.offsets.missing_before(positions)

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        self.offsets.forget(gone)
        self.loaded -= gone

    def _fresh(self, r: Record, out: Out) -> bool:
        """Load the partition; False (counted) for a record already applied."""
        self.ensure(r.partition)
        if self.offsets.seen((r.topic, r.partition), r.offset):
            out.replayed += 1
            return False
        self.offsets.applied((r.topic, r.partition), r.offset)
        out.touched.add(r.partition)
        return True


class Attach(_Step):
    """Saved as one record per partition (offsets, origins, the join without its health
    cache: :meth:`dumps`) plus one per host whose health changed (:meth:`host_states`),
    written first. A host record newer than its partition record only holds snapshots the
    replay adds again, which the cache recognises (same time) and does not duplicate."""

    def __init__(
        self,
        stage: AttachStage,
        health_topic: str,
        limits: Limits,
        load: Loader = lambda p: None,
        load_hosts: RecordsLoader = lambda p: (),
        handoff: Handoff[ErrorEvent] | None = None,
    ) -> None:
        super().__init__(load)
        self.stage = stage
        #: errors the rollup step of this worker validated (None: validate every line)
        self.handoff = handoff
        self._health_topic = health_topic
        self._limits = limits
        self._load_hosts = load_hosts
        self.origins: dict[int, dict[int, list[int]]] = {}  # partition -> origin -> pos

    def _restore(self, partition: int, state: dict[str, Any]) -> None:
        self.stage.joins.pop(partition, None)
        join = state.get("join")
        if isinstance(join, str):  # saved before the join was stored as an object
            self.stage.joins[partition] = HealthJoin.loads(join.encode())
        elif join is not None:
            self.stage.joins[partition] = HealthJoin.from_state(join)
        cache = self.stage.join(partition).cache
        for raw in self._load_hosts(partition):
            cache.restore_host(zlib.decompress(raw))
        saved = state.get("origins", {})
        self.origins[partition] = {int(o): list(pos) for o, pos in saved.items()}

    def process(self, records: Iterable[Record]) -> Out:
        out = Out()
        for r in records:
            if not self._fresh(r, out):
                continue
            if r.topic == self._health_topic:
                self._health(r, out)
            else:
                self._error(r, out)
        return out

    def _health(self, r: Record, out: Out) -> None:
        out.grouped += self.stage.healths(r.partition, r.topic, r.offset, self._readings(r))
        out.assigned += self.stage.take_late()

    def _readings(self, r: Record) -> list[tuple[int, Reading]]:
        """A message's health events (by index) on the fast path: the whole message at
        once where it can vouch for every line, else line by line; the models read what
        it does not vouch for, and skip what they refuse (the rollup step dead-letters
        it)."""
        now_ms, limits = r.timestamp_ms, self._limits
        window, now = Window.around(now_ms, limits), None
        whole = accept_whole(r.value, r.headers, "health", window, limits)
        if whole is not None:
            pairs = zip(cast(list[FastHealth], whole.events), whole.ts_ms, strict=True)
            return [
                (i, Reading(e.app, e.env, e.host, e.instance, ts, e.metrics))  # Reading.fast
                for i, (e, ts) in enumerate(pairs)
            ]
        lines = wire.split_events(r.value, r.headers)
        vouched = accept_lines(r.value, lines, "health", now_ms, window, limits)
        out: list[tuple[int, Reading]] = []
        for i, payload in enumerate(lines):
            fast = (
                accept(payload, "health", now_ms, window, limits) if vouched is None else vouched[i]
            )
            if fast is not None:
                out.append((i, Reading.fast(fast)))
                continue
            now = now or datetime.fromtimestamp(now_ms / 1000, UTC)
            parsed = parse_event(payload, "health", now, limits)
            if isinstance(parsed, HealthEvent):
                out.append((i, Reading.of(parsed)))
        return out

    def _error(self, r: Record, out: Out) -> None:
        origins = origins_of(r.headers)
        seen = self.origins.setdefault(r.partition, {})
        handoff, stage = self.handoff, self.stage
        for index, line in enumerate(wire.split_events(r.value, r.headers)):
            origin = origins[index] if index < len(origins) else None
            if origin is not None:
                last = seen.get(origin[0])
                if last is not None and [origin[1], origin[2]] <= last:
                    out.replayed += 1  # a duplicate sent by a re-key replay
                    continue
                seen[origin[0]] = [origin[1], origin[2]]
            event = handoff.take(line) if handoff is not None and line else None
            if event is not None:
                out.handed_over += 1
            else:
                event = _read_error(line or b"")
                if event is None:
                    out.skipped += 1
                    continue
            now, ready = stage.assigned(r.partition, r.topic, r.offset, event, index)
            out.assigned += stage.take_late()
            if now is not None:
                out.assigned.append(now)
            out.grouped += ready

    def held(self) -> list[int]:
        """Partitions with errors waiting for health."""
        return [p for p, j in self.stage.joins.items() if j.held]

    def flush(self, partition: int) -> Out:
        """Release a quiet partition's held errors with the health known now."""
        out = Out(touched={partition})
        join = self.stage.join(partition)
        out.grouped = self.stage._grouped(partition, join.flush())
        out.assigned = self.stage.take_late()
        return out

    def dumps(self, partition: int) -> bytes:
        origins = {str(o): pos for o, pos in self.origins.get(partition, {}).items()}
        return pack_state(
            {
                "offsets": self.offsets.of(partition),
                "origins": origins,
                "join": self.stage.join(partition).state(hosts=False),
            }
        )

    def host_states(self, partition: int) -> list[tuple[str, bytes]]:
        """(record name, value) for each host whose health changed since the last call;
        save them before :meth:`dumps`."""
        return [
            ("|".join(key), zlib.compress(raw, 1))
            for key, raw in self.stage.join(partition).cache.take_changed()
        ]

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        super().forget(gone)
        self.stage.forget(gone)
        for p in gone:
            self.origins.pop(p, None)


def _read_error(line: bytes) -> ErrorEvent | None:
    """A line of ``errors.byhost.v1`` as its event: on the fast path where it can vouch for
    it, else by the model; None for a line the model refuses."""
    event = read_error(line)
    if event is not None:
        return event
    try:
        return ErrorEvent.model_validate_json(line)
    except ValidationError:
        return None


class Group(_Step):
    """Saved as one record per changed group (``GroupBook.state_of``) plus one per
    partition with the offsets: a book of many groups would not fit one Kafka message.
    A group's record is self-consistent (it knows the positions it counted), so a crash
    between the two writes only makes the replay skip more."""

    def __init__(
        self,
        stage: GroupStage,
        commands_topic: str,
        load: Loader = lambda p: None,
        load_groups: RecordsLoader = lambda p: (),
        handoff: Handoff[GroupedError] | None = None,
    ) -> None:
        super().__init__(load)
        self.stage = stage
        self._commands_topic = commands_topic
        self._load_groups = load_groups
        #: grouped errors the attach step of this worker sent (None: validate every line)
        self.handoff = handoff

    def _restore(self, partition: int, state: dict[str, Any]) -> None:
        book = GroupBook(partition, self.stage.policy)
        book.restore(zlib.decompress(raw) for raw in self._load_groups(partition))
        self.stage.books[partition] = book

    def process(self, records: Iterable[Record]) -> Out:
        out = Out()
        for r in records:
            if not self._fresh(r, out):
                continue
            try:
                if r.topic == self._commands_topic:
                    cmd = ErrorGroupCommand.model_validate_json(r.value or b"")
                    self.stage.command(r.partition, r.offset, cmd)
                    continue
            except ValidationError:
                out.skipped += 1
                continue
            for line in wire.split_events(r.value, r.headers):
                grouped = self._grouped(line or b"", out)
                if grouped is not None:
                    out.transitions += self.stage.error(r.partition, grouped)
        for p in out.touched:
            book = self.stage.book(p)
            out.changed_groups[p] = set(book.changed)
            out.rows += book.take_rows()
        return out

    def _grouped(self, line: bytes, out: Out) -> GroupedError | None:
        found = self.handoff.take(line) if self.handoff is not None else None
        out.handed_over += found is not None
        if found is not None:
            return found
        try:
            return GroupedError.model_validate_json(line)
        except ValidationError:
            out.skipped += 1
            return None

    def group_state(self, partition: int, group_id: str) -> bytes:
        return zlib.compress(self.stage.book(partition).state_of(group_id), 3)

    def dumps(self, partition: int) -> bytes:
        return pack_state({"offsets": self.offsets.of(partition)})

    def forget(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        super().forget(gone)
        self.stage.forget(gone)
