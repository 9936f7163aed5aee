"""The per-partition state of a step (segments, alerts): one object per input partition,
saved to the step's changelog table as one record keyed ``<topic>:<partition>``.

:class:`PartitionStates` gives a step the state half of the Step contract
(``streams/step.py``): a partition's state is made from its saved record on first use
(``restore`` makes them at assignment), ``missing`` names the offsets it has not applied,
``skip`` moves it past a poison record, ``state_writes`` saves the touched ones after a
batch, ``forget`` drops the revoked ones. The state object keeps ``offset`` (the last
offset applied) and saves itself with ``dumps()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, Protocol, TypeVar, cast

from shiftright_server.streams.step import (
    Holes,
    Record,
    Spans,
    StateKey,
    StateWrite,
    TopicPartition,
)


class PartitionState(Protocol):
    offset: int

    def dumps(self) -> bytes: ...


P = TypeVar("P", bound=PartitionState)


class PartitionStates(Generic[P]):
    def __init__(self, table: Any) -> None:
        self.table = table  # the changelog table: ``table.data`` maps keys to saved bytes
        self.parts: dict[TopicPartition, P] = {}
        self._holes = Holes()

    def make(self, saved: bytes | None) -> P:
        """A partition's state from its saved record (None: a new one)."""
        raise NotImplementedError

    def saving(self, tp: TopicPartition) -> None:
        """Told before a partition's state is written (a step may note when)."""

    def partition(self, tp: TopicPartition) -> P:
        found = self.parts.get(tp)
        if found is None:
            found = self.parts[tp] = self.make(self.table.data.get(state_key(tp)))
        return found

    def missing(self, positions: Iterable[tuple[str, int, int]]) -> Spans:
        return self._holes.spans(positions, lambda tp: self.partition(tp).offset)

    def skip(self, record: Record) -> StateKey:
        tp = (record.topic, record.partition)
        part = self.partition(tp)
        part.offset = max(part.offset, record.offset)
        return tp

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        writes = []
        for key in touched:
            tp = cast(TopicPartition, key)  # this step's state keys
            part = self.parts.get(tp)
            if part is None:  # revoked meanwhile
                continue
            self.saving(tp)
            writes.append(StateWrite(state_key(tp), part.dumps(), tp[1]))
        return [writes]

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.partition(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        for tp in gone:
            self.parts.pop(tp, None)
        self._holes.forget(lambda tp: tp not in gone)


def state_key(tp: TopicPartition) -> bytes:
    return f"{tp[0]}:{tp[1]}".encode()
