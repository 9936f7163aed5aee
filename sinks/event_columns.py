"""Warehouse columns taken straight from the events the fast validator decoded.

An event :mod:`schemas.fast_events` vouches for is already a typed msgspec struct with
the models' values; the sink keeps the structs of each Kafka message together
(:class:`MessageEvents`) and, when the batch is written, builds each column of the table
in one pass over all of them (no row tuple per event; an error's frames become the
table's tuples). The message's position fills
``_topic``, ``_partition``, ``_offset`` and ``received_at`` once per message.

Where the event left something out that the models fill in — ``origin`` (``user``) and
``event_id`` (made from the position) — the struct gets the models' value when it is
routed; ``ts`` comes from the validator (the record's time when the event has none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import attrgetter
from typing import Any, cast

from shiftright_server.schemas.fast_events import UNSET, Accepted, FastError, FastEvent
from shiftright_server.schemas.positions import Position, position_id
from shiftright_server.sinks.rows import COLUMNS


@dataclass(slots=True)
class MessageEvents:
    """The fast-validated events of one Kafka message bound for ``table``."""

    table: str
    msg: Position  # the Kafka message (index 0)
    at_ms: int  # the record's timestamp: received_at, and ts of events without one
    events: list[FastEvent] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)

    def add(self, accepted: Accepted, index: int) -> None:
        event = accepted.event
        if event.origin is UNSET:
            event.origin = "user"
        if event.event_id is UNSET:
            event.event_id = str(position_id(self.msg.at(index)))
        self.events.append(event)
        self.ts_ms.append(accepted.ts_ms)
        self.indexes.append(index)

    def __len__(self) -> int:
        return len(self.events)


#: A column made from the messages, and from all their events in one list.
Column = Callable[[list[MessageEvents], list[FastEvent]], list[Any]]
_EVENT_ID = 0  # event_id leads every events_* table


def _per_message(value: Callable[[MessageEvents], Any]) -> Column:
    """A column that holds one value per message, repeated for each of its events."""
    return lambda chunks, _: list(chain.from_iterable(repeat(value(c), len(c)) for c in chunks))


def _attribute(name: str) -> Column:
    get = attrgetter(name)
    return lambda _, events: list(map(get, events))


def _frames(_: list[MessageEvents], events: list[FastEvent]) -> list[Any]:
    """Each error's frames as the table's tuples (only error events have frames)."""
    return [
        [(f.module, f.function, f.filename, f.lineno, f.in_app) for f in e.frames]
        for e in cast(list[FastError], events)
    ]


_SPECIAL: dict[str, Column] = {
    "ts": lambda chunks, _: list(chain.from_iterable(c.ts_ms for c in chunks)),
    "_index": lambda chunks, _: list(chain.from_iterable(c.indexes for c in chunks)),
    "received_at": _per_message(lambda c: c.at_ms),
    "_topic": _per_message(lambda c: c.msg.topic),
    "_partition": _per_message(lambda c: c.msg.partition),
    "_offset": _per_message(lambda c: c.msg.offset),
    "frames": _frames,
}
_BUILDERS: dict[str, list[Column]] = {
    table: [_SPECIAL.get(name) or _attribute(name) for name in COLUMNS[table]]
    for table in ("events_usage", "events_health", "events_change", "events_error")
}


def columns(table: str, chunks: list[MessageEvents]) -> list[list[Any]]:
    """The table's columns (in :data:`sinks.rows.COLUMNS` order) of these messages' events."""
    events = list(chain.from_iterable(c.events for c in chunks))
    return [build(chunks, events) for build in _BUILDERS[table]]


def concat(first: list[list[Any]], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``first`` with the rows of the models' path appended, column by column (their
    event ids as text, as the fast path's are: a column holds one kind of value)."""
    added = _transpose(rows)
    added[_EVENT_ID] = [str(v) for v in added[_EVENT_ID]]
    return [a + b for a, b in zip(first, added, strict=True)]


def _transpose(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)]


def tables(
    fast: dict[str, list[MessageEvents]], rows: dict[str, list[tuple[Any, ...]]]
) -> Iterator[tuple[str, list[list[Any]]]]:
    """Each table's columns: the fast-validated events', then the models' rows."""
    for table in {**fast, **rows}:
        chunks, slow = fast.get(table), rows.get(table)
        if chunks:
            made = columns(table, chunks)
            yield table, concat(made, slow) if slow else made
        elif slow:
            yield table, _transpose(slow)
