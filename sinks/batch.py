"""A batch of rows for several tables, with the Kafka offset ranges it covers.

The deduplication token of a table's insert is derived from the exact offset ranges in
the batch, so a retried insert of the same batch is a no-op in ClickHouse. A table gets
one column-oriented insert per batch: the columns of its fast-validated events
(:mod:`sinks.event_columns`, added to as each message is routed) followed by the rows the
models made.

While a batch is written, and until it is freed, the cyclic collector waits
(:func:`schemas.fast_lines.collector_paused`): a collection then would walk every value
of every column (tens of milliseconds for a batch of 20,000 rows); once the batch is
freed by reference counts, the next collection finds little of it."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.sinks import event_columns
from shiftright_server.sinks.event_columns import MessageEvents, TableColumns

TopicPartition = tuple[str, int]


@dataclass
class Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    fast: dict[str, TableColumns] = field(default_factory=dict)
    fast_rows: int = 0
    ranges: dict[TopicPartition, list[int]] = field(default_factory=dict)
    messages: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)

    def add_events(self, events: MessageEvents) -> None:
        made = self.fast.get(events.table)
        if made is None:
            made = self.fast[events.table] = TableColumns(events.table)
        made.add(events)
        self.fast_rows += len(events)

    def cover(self, topic: str, partition: int, offset: int) -> None:
        """Record that the message at this position is part of the batch."""
        span = self.ranges.get((topic, partition))
        if span is None:
            self.ranges[(topic, partition)] = [offset, offset]
        else:
            span[1] = offset
        self.messages += 1

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values()) + self.fast_rows

    def age(self) -> float:
        return time.monotonic() - self.started

    def token(self, table: str) -> str:
        """Deterministic deduplication token: table + the sorted offset ranges."""
        spans = ",".join(f"{t}:{p}:{a}-{b}" for (t, p), (a, b) in sorted(self.ranges.items()))
        digest = hashlib.sha256(spans.encode()).hexdigest()[:32]
        return f"{table}:{digest}"

    def tables(self) -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
        """Each table's columns: its fast-validated events', then the models' rows."""
        yield from event_columns.tables(self.fast, self.rows)

    def commit_positions(self) -> dict[TopicPartition, int]:
        """Offsets to commit: one past the last message of each range."""
        return {tp: last + 1 for tp, (_, last) in self.ranges.items()}

    def first_positions(self) -> dict[TopicPartition, int]:
        return {tp: first for tp, (first, _) in self.ranges.items()}
