"""Fakes at the sink's boundaries, for unit tests. ``FakeWarehouse`` is checked against
the real warehouse by tests/integration/test_warehouse_contract.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.sinks.errors import RejectedRowsError


class FakeWarehouse:
    """In-memory tables with ClickHouse's token deduplication and offset lookups."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.tokens: set[tuple[str, str]] = set()
        self.inserts = 0
        self.fail_next: list[Exception] = []  # raised by the next inserts, in order
        self.fail_lookups: list[Exception] = []  # raised by the next stored_offsets calls
        self.reject_if: Callable[[dict[str, Any]], bool] = lambda row: False

    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        if any(self.reject_if(r) for r in rows):
            raise RejectedRowsError("Code: 53. DB::Exception: Type mismatch (fake)")
        self.inserts += 1
        if (table, token) in self.tokens:
            return
        self.tokens.add((table, token))
        self.tables.setdefault(table, []).extend(rows)

    def stored_offsets(self, table: str, topic: str) -> dict[int, int]:
        if self.fail_lookups:
            raise self.fail_lookups.pop(0)
        best: dict[int, int] = {}
        for row in self.tables.get(table, []):
            if row["_topic"] == topic:
                best[row["_partition"]] = max(best.get(row["_partition"], -1), row["_offset"])
        return best


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _timestamp_ms: int
    _headers: list[tuple[str, bytes]] | None = None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)


@dataclass
class FakeConsumer:
    """A single-member consumer group over in-memory partitions, with committed offsets."""

    log: dict[tuple[str, int], list[FakeMessage]]
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    paused: bool = False
    closed: bool = False
    _positions: dict[tuple[str, int], int] = field(default_factory=dict)
    _assigned: list[Any] = field(default_factory=list)

    def subscribe(self, topics: list[str], on_assign: Any = None, on_revoke: Any = None) -> None:
        from confluent_kafka import TopicPartition

        self._assigned = [TopicPartition(t, p) for (t, p) in self.log if t in topics]
        self._positions = {tp: self.committed.get(tp, 0) for tp in self.log}
        if on_assign:
            on_assign(self, self._assigned)

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[FakeMessage]:
        if self.paused:
            return []
        out: list[FakeMessage] = []
        for tp, messages in self.log.items():
            pos = self._positions[tp]
            take = messages[pos : pos + num_messages - len(out)]
            self._positions[tp] = pos + len(take)
            out.extend(take)
        return out

    def commit(self, offsets: list[Any], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def pause(self, partitions: Any) -> None:
        self.paused = True

    def resume(self, partitions: Any) -> None:
        self.paused = False

    def assignment(self) -> list[Any]:
        return self._assigned

    def close(self) -> None:
        self.closed = True
