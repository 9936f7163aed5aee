"""Warehouse columns taken straight from the events the fast validator decoded.

An event :mod:`schemas.fast_events` vouches for is already a typed msgspec struct with
the models' values; the router hands the sink the structs of each Kafka message together
(:class:`MessageEvents`), and the batch adds them to its table's columns at once
(:class:`TableColumns`) while they are fresh in the processor's cache: each event's
values in one C call, the message's values turned into columns in another, after which
the structs are freed (no row tuple per event is kept; an error's frames become the
table's tuples). Text that repeats across events (app, host, route, ...;
:data:`SHARED`) is kept as a :class:`Coded` column: each distinct value once per batch,
and each event's key into them (the order in which the values first appear), which is
what a ``LowCardinality`` column's Native form holds, so writing it takes no step per
event (:mod:`sinks.native`). The message's position fills ``_topic``, ``_partition``,
``_offset`` and ``received_at`` once per message.

Where the event left something out that the models fill in — ``origin`` (``user``) and
``event_id`` (made from the position) — the struct gets the models' value when it is
routed; ``ts`` comes from the validator (the record's time when the event has none).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, count, repeat
from operator import attrgetter
from typing import Any, Final, cast, overload

from msgspec.structs import astuple, fields
from shiftright_server.schemas.fast_events import UNSET, Accepted, FastError, FastEvent
from shiftright_server.schemas.positions import Position, position_id
from shiftright_server.sinks.rows import COLUMNS

#: A Kafka message's position, its record's timestamp (ms) and how many events it holds.
Span = tuple[Position, int, int]


@dataclass(slots=True)
class MessageEvents:
    """The fast-validated events of one Kafka message bound for ``table`` (or of several,
    one after the other, each with its :data:`Span`)."""

    table: str
    msg: Position  # the Kafka message (index 0)
    at_ms: int  # the record's timestamp: received_at, and ts of events without one
    events: list[FastEvent] = field(default_factory=list)
    ts_ms: list[int] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    spans: list[Span] | None = None  # None: every event is ``msg``'s

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


class Coded(Sequence[Any]):
    """A column of values that repeat, as its distinct values in the order they first
    appear and each row's key (its value's place among them). Read as a sequence, it
    gives the values."""

    __slots__ = ("keys", "_codes")

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self.keys: list[int] = []
        self._codes: defaultdict[Any, int] = defaultdict(count().__next__)
        self.extend(values)

    def extend(self, values: Iterable[Any]) -> None:
        """Append the values (each a key of a dict: hashable)."""
        self.keys.extend(map(self._codes.__getitem__, values))

    @property
    def distinct(self) -> list[Any]:
        """The distinct values, each at its key."""
        return list(self._codes)

    def values(self) -> list[Any]:
        return list(map(self.distinct.__getitem__, self.keys))

    def mapped(self, value_of: Callable[[Any], Any]) -> Coded:
        """The column of ``value_of`` each value, called once a distinct value."""
        made = Coded(map(value_of, self._codes))  # their keys in order of first appearance
        made.keys = list(map(made.keys.__getitem__, self.keys))
        return made

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, at: int) -> Any: ...

    @overload
    def __getitem__(self, at: slice) -> list[Any]: ...

    def __getitem__(self, at: int | slice) -> Any:
        if isinstance(at, slice):
            return self.values()[at]
        return self.distinct[self.keys[at]]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return self.values() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Coded({self.values()!r})"


#: Text columns whose values repeat across events: kept as :class:`Coded` columns.
SHARED: Final = frozenset(
    ("app", "env", "release", "host", "instance", "user_id", "customer_id", "origin")
    + ("name", "route", "method", "exception_type", "level", "change_type", "_topic")
)
_EVENT_ID = 0  # event_id leads every events_* table
#: A column of one message's events: one value per message or per event (not a field).
Special = Callable[[MessageEvents], Iterable[Any]]


def _per_message(value: Callable[[Position, int], Any]) -> Special:
    """A column that holds one value per message (of its position and timestamp),
    repeated for each of its events."""

    def fill(chunk: MessageEvents) -> Iterable[Any]:
        if chunk.spans is None:
            return repeat(value(chunk.msg, chunk.at_ms), len(chunk))
        return chain.from_iterable(repeat(value(m, at), n) for m, at, n in chunk.spans)

    return fill


def _frames(chunk: MessageEvents) -> list[Any]:
    """Each error's frames as the table's tuples (only error events have frames)."""
    return [
        [(f.module, f.function, f.filename, f.lineno, f.in_app) for f in e.frames]
        for e in cast(list[FastError], chunk.events)
    ]


_SPECIAL: dict[str, Special] = {
    "ts": lambda chunk: chunk.ts_ms,
    "_index": lambda chunk: chunk.indexes,
    "received_at": _per_message(lambda _, at_ms: at_ms),
    "_topic": _per_message(lambda msg, _: msg.topic),
    "_partition": _per_message(lambda msg, _: msg.partition),
    "_offset": _per_message(lambda msg, _: msg.offset),
    "frames": _frames,
}
#: How to fill one column: from a special, or from a field (its place in each event's
#: tuple of values).
Step = tuple["list[Any] | Coded", Special | None, int]


class TableColumns:
    """The columns (in :data:`sinks.rows.COLUMNS` order) of a table's fast-validated
    events in a batch, added a message at a time: each event's values in one call
    (``msgspec.structs.astuple``, in its struct's field order), the message's values
    then turned into columns in one call (``zip``); the :data:`SHARED` ones
    :class:`Coded`."""

    __slots__ = ("columns", "_names", "_plans")

    def __init__(self, table: str) -> None:
        self._names = COLUMNS[table]
        self.columns: list[list[Any] | Coded] = [
            Coded() if name in SHARED else [] for name in self._names
        ]
        self._plans: dict[type | None, list[Step]] = {}

    def add(self, chunk: MessageEvents) -> None:
        events = chunk.events
        if not events:
            return
        kinds = set(map(type, events))
        kind = kinds.pop() if len(kinds) == 1 else None
        plan = self._plans.get(kind) or self._plan(kind)
        if kind is None:  # structs of several kinds: their values in the table's order
            get = attrgetter(*(n for n in self._names if n not in _SPECIAL))
            values_of = list(zip(*map(get, events), strict=True))
        else:
            values_of = list(zip(*map(astuple, events), strict=True))
        for column, special, index in plan:
            column.extend(values_of[index] if special is None else special(chunk))

    def _plan(self, kind: type | None) -> list[Step]:
        order = (
            [n for n in self._names if n not in _SPECIAL]
            if kind is None
            else [f.name for f in fields(kind)]
        )
        plan: list[Step] = []
        for column, name in zip(self.columns, self._names, strict=True):
            special = _SPECIAL.get(name)
            index = -1 if special is not None else order.index(name)
            plan.append((column, special, index))
        self._plans[kind] = plan
        return plan

    def __len__(self) -> int:
        return len(self.columns[_EVENT_ID])


def columns(table: str, chunks: Iterable[MessageEvents]) -> list[list[Any] | Coded]:
    """The table's columns (in :data:`sinks.rows.COLUMNS` order) of these messages' events."""
    made = TableColumns(table)
    for chunk in chunks:
        made.add(chunk)
    return made.columns


def concat(first: list[list[Any] | Coded], rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """``first`` with the rows of the models' path appended, column by column (their
    event ids as text, as the fast path's are: a column holds one kind of value)."""
    added = _transpose(rows)
    added[_EVENT_ID] = [str(v) for v in added[_EVENT_ID]]
    return [[*a, *b] for a, b in zip(first, added, strict=True)]


def _transpose(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)]


def tables(
    fast: dict[str, TableColumns], rows: dict[str, list[tuple[Any, ...]]]
) -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
    """Each table's columns: the fast-validated events', then the models' rows."""
    for table in {**fast, **rows}:
        made, slow = fast.get(table), rows.get(table)
        if made is not None and len(made):
            yield table, concat(made.columns, slow) if slow else made.columns
        elif slow:
            yield table, _transpose(slow)
