"""The contract every stream step keeps, written once.

A *step* is the pure part of one stage of the stream worker: rollups (validate, roll up,
re-key errors), the error attach (health join and grouping), the group counter, and the
alert evaluation. The driver (:mod:`streams.driver`) runs any step on Faust and does
all the I/O; the step never sends, sleeps or reads Kafka itself.

::

    Kafka records                          ┌──────────── Step ─────────────┐
    (topic, partition, offset, value) ───▶ │ missing(positions) -> spans   │ gaps the saved
    in offset order per partition          │ process(records)   -> Output  │ state lacks
                                           │ skip(record)       -> key     │
                                           │ state_writes(keys) -> phases  │
                                           │ restore / forget(partitions)  │
                                           └───────────────┬───────────────┘
                  Output.messages ──▶ sent, delivery awaited │
                  Output.touched  ──▶ state_writes ─▶ changelog, awaited phase by phase
                                                            ▼
                                                     Faust acks the batch

What a step takes
    A batch of :class:`Record` s, each with its Kafka position. Records of one
    partition come in offset order; the driver merges the records the step's state
    lacks (``missing``) in front of them.
What it emits
    :class:`Output`: finished :class:`Message` s (topic name, key, value, headers,
    partition) and the keys of the state it changed. Serialising happens inside
    ``process``, so anything a record can make fail fails there.
Its state
    Per partition, loaded lazily from the changelog table it is given, holding the last
    applied offset of every source partition it reads; ``process`` skips records at or
    before it (a replay after a crash applies nothing twice). ``state_writes`` turns
    changed keys into changelog records, in phases written one after the other (e.g.
    per-group records before the partition record that says they are complete).
    ``forget`` drops in-memory state: the next use reloads the saved one.
A poison record
    ``process`` raised. The driver drops the in-memory state of the batch's partitions
    (back to what was saved), then splits the batch to find the record, marks it
    applied with ``skip`` and sends it to the dead-letter topic (reason
    ``step_failed``); every other record is processed once.
A retryable failure
    The broker did not take or hand over something (sending, saving, reading a gap).
    The driver retries the batch from the saved state with backoff; nothing is acked
    meanwhile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from shiftright_server.schemas import wire

TopicPartition = tuple[str, int]
#: Offset spans ``[first, end)`` per partition that a state has not applied.
Spans = dict[TopicPartition, tuple[int, int]]
#: What a step names as changed state; only the step itself interprets it.
StateKey = Hashable


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as steps see it (timestamp in whole milliseconds)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp_ms: int
    headers: wire.Headers = None


class Message(NamedTuple):
    """One message to send; no partition: the producer's key partitioner decides."""

    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


class StateWrite(NamedTuple):
    """One changelog record: the table key, its value and the changelog partition."""

    key: bytes
    value: bytes
    partition: int


@dataclass
class Output:
    """What processing produced: messages to deliver, state to save, figures to count."""

    messages: list[Message] = field(default_factory=list)
    touched: set[StateKey] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Output) -> None:
        self.messages += other.messages
        self.touched |= other.touched
        self.counts.update(other.counts)


class Step(Protocol):
    """A pure stream step (see the module docstring for the contract)."""

    name: str

    def missing(self, positions: Iterable[tuple[str, int, int]]) -> Spans:
        """Spans before these (topic, partition, offset) positions that the state never
        applied (each hole named once; ``first`` 0 means the start of the log)."""
        ...

    def process(self, records: Sequence[Record]) -> Output: ...

    def skip(self, record: Record) -> StateKey:
        """Mark a record applied without effect (it was dead-lettered)."""
        ...

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        """Changelog records of this changed state, phase by phase (partitions revoked
        meanwhile are left out: their new owner restores its own)."""
        ...

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        """Load the saved state of newly assigned partitions (once per assignment), so
        their timers run even if no record arrives; they count as seen at that moment."""
        ...

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop in-memory state (revoked, or back to the saved state)."""
        ...


class Holes:
    """Finds the spans of offsets a state has not applied (:meth:`Step.missing`)."""

    def __init__(self) -> None:
        self._asked: set[tuple[TopicPartition, int]] = set()

    def spans(
        self, positions: Iterable[tuple[str, int, int]], applied: Callable[[TopicPartition], int]
    ) -> Spans:
        """``applied(tp)`` is the last offset the state applied (-1: none). A hole is
        named once: if reading it yields nothing (e.g. transaction markers), it is not
        asked for again."""
        spans: Spans = {}
        last: dict[TopicPartition, int] = {}
        for topic, partition, offset in positions:
            tp = (topic, partition)
            prev = last.get(tp)
            if prev is None:
                prev = applied(tp)
            hole = (tp, prev + 1)
            if offset > prev + 1 and hole not in self._asked:
                self._asked.add(hole)
                lo, hi = spans.get(tp, (prev + 1, offset))
                spans[tp] = (min(lo, prev + 1), max(hi, offset))
            last[tp] = max(prev, offset)
        return spans

    def forget(self, keep: Callable[[TopicPartition], bool]) -> None:
        self._asked = {hole for hole in self._asked if keep(hole[0])}


def positions_of(records: Iterable[Record]) -> Iterable[tuple[str, int, int]]:
    return ((r.topic, r.partition, r.offset) for r in records)
