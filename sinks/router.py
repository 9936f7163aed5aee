"""Decide what one Kafka record becomes in the warehouse: a row of some table, a dead
letter, or nothing (an invalid raw event, which the stream workers dead-letter)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, NamedTuple, cast

from pydantic import ValidationError
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.fast_events import SINK_DECODERS, Accepted, Window, accept
from shiftright_server.schemas.fast_lines import accept_lines, accept_message, accept_messages
from shiftright_server.schemas.positions import Position, position_id_later
from shiftright_server.schemas.records import Rollup
from shiftright_server.schemas.validation import SCHEMA_VIOLATION, Limits, Rejection, parse_event
from shiftright_server.sinks.event_columns import MessageEvents
from shiftright_server.sinks.rows import (
    RECORD_MODELS,
    TABLE_BY_KIND,
    DeadLetter,
    dead_letter_row,
    event_row,
    record_row,
    rollup_row,
)


@dataclass(frozen=True, slots=True)
class Row:
    table: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


Routed = Row | MessageEvents | Skipped


class Record(NamedTuple):
    """A Kafka record as the router reads it."""

    pos: Position
    value: bytes | None
    headers: Sequence[tuple[str, bytes | None]] | None
    timestamp_ms: int


#: The most bytes of messages read together (a message over it is read by itself): the
#: decoded events then stay in the processor's cache while their columns are built (a
#: whole fetch's would not, and each value would cost a cache miss).
TOGETHER_BYTES = 64 * 1024


class Router:
    """Maps physical topic names (with the namespace) to row builders. With ``columns``,
    the events the fast validator vouches for are kept as decoded (:class:`MessageEvents`,
    one per message); every other event takes the models and becomes a :class:`Row`."""

    def __init__(self, namespace: str, limits: Limits, event_rows: str = "columns") -> None:
        self._limits = limits
        window = Window.around(0, limits)
        self._window_ms = (-window.oldest_ms, window.newest_ms)  # before and after a record
        self._event_rows = event_rows
        self._kind_by_topic = {
            topics.named(t, namespace): k for t, k in topics.KIND_BY_EVENT_TOPIC.items()
        }
        self.rollups_topic = topics.named(topics.ROLLUPS, namespace)
        self.dlq_topic = topics.named(topics.DLQ_EVENTS, namespace)
        self._record_tables = {
            topics.named(t, namespace): table
            for t, table in (
                (topics.ERRORS_GROUPED, "errors_grouped"),
                (topics.ERRORS_GROUPS, "error_groups"),
                (topics.ERRORS_TRANSITIONS, "error_group_transitions"),
                (topics.ALERTS, "alerts"),
                (topics.NOTIFICATIONS, "alert_notifications"),
            )
        }

    @property
    def subscriptions(self) -> list[str]:
        return [*self._kind_by_topic, self.rollups_topic, self.dlq_topic, *self._record_tables]

    def table_for(self, topic: str) -> str:
        if topic in self._kind_by_topic:
            return TABLE_BY_KIND[self._kind_by_topic[topic]]
        if topic in self._record_tables:
            return self._record_tables[topic]
        return "rollups" if topic == self.rollups_topic else "dead_letters"

    def route_all(self, records: Sequence[Record]) -> Iterator[Routed]:
        """What :meth:`route` gives for each record, the events of several messages of a
        kind read at once where :func:`accept_messages` vouches for every line of them
        (the fixed costs of a read paid once for them all: a fetch holds tens to
        hundreds of small messages when the sink keeps up), up to
        :data:`TOGETHER_BYTES` of them at a time, else each message by itself. Given as
        each read is made, so that its events are added to the batch's columns while
        they are in the processor's cache."""
        together: dict[str, tuple[list[Record], int]] = {}  # kind: its group, their bytes
        for record in records:
            kind = self._kind_by_topic.get(record.pos.topic)
            if kind is None or not self._whole_read(kind, record):
                yield from self.route(*record)
                continue
            group, size = together.get(kind) or ([], 0)
            more = len(cast(bytes, record.value))  # _whole_read: not None
            if group and size + more > TOGETHER_BYTES:
                yield from self._read_together(kind, group)
                group, size = [], 0
            group.append(record)
            together[kind] = (group, size + more)
        for kind, (group, _) in together.items():
            yield from self._read_together(kind, group)

    def _whole_read(self, kind: str, record: Record) -> bool:
        """Whether the record may be read with others: an event kind on the fast path, and
        its lines (a batch message's, or a single event on one line) each an event."""
        value = record.value
        if value is None or self._event_rows != "columns" or kind not in SINK_DECODERS:
            return False
        return wire.is_batch(record.headers) or b"\n" not in value

    def _read_together(self, kind: str, group: list[Record]) -> list[Routed]:
        age, future = self._window_ms
        read = None
        if len(group) > 1:
            windows = [Window(r.timestamp_ms - age, r.timestamp_ms + future) for r in group]
            values = cast(list[bytes], [r.value for r in group])  # _whole_read: not None
            read = accept_messages(values, kind, windows, self._limits)
        if read is None:
            return [routed for record in group for routed in self.route(*record)]
        first = group[0]
        return [
            MessageEvents(
                TABLE_BY_KIND[kind],
                first.pos,
                first.timestamp_ms,
                read.events,
                read.ts_ms,
                list(chain.from_iterable(map(range, read.counts))),
                [(r.pos, r.timestamp_ms, n) for r, n in zip(group, read.counts, strict=True)],
            )
        ]

    def route(
        self,
        pos: Position,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] | None,
        timestamp_ms: int,
    ) -> list[Routed]:
        """One record in; for each event in it, a row or the reason it has none."""
        at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        kind = self._kind_by_topic.get(pos.topic)
        if kind is not None:
            if self._event_rows == "columns" and kind in SINK_DECODERS:
                return self._fast_events(kind, value, headers, at, timestamp_ms, pos)
            payloads = wire.split_events(value, headers)
            return [
                self._event(kind, payload, at, timestamp_ms, pos, i)
                for i, payload in enumerate(payloads)
            ]
        if pos.topic == self.rollups_topic:
            return [self._rollup(value, pos, at)]
        table = self._record_tables.get(pos.topic)
        if table is not None:  # grouped errors come in NDJSON batches
            return [
                self._record(table, line, pos, at) for line in wire.split_events(value, headers)
            ]
        return [Row("dead_letters", dead_letter_row(_letter_from(value, headers), at, pos))]

    def _fast_events(
        self,
        kind: str,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] | None,
        at: datetime,
        at_ms: int,
        msg: Position,
    ) -> list[Routed]:
        """The message's events on the fast path: all at once where :func:`accept_message`
        vouches for every line (a batch message's lines are split out only if it does
        not), else its lines decoded in one call where :func:`accept_lines` can vouch for
        them, else one by one; the models decide (and give the reason for) each line the
        fast path does not vouch for."""
        table, limits = TABLE_BY_KIND[kind], self._limits
        window = Window.around(at_ms, limits)
        batch = wire.is_batch(headers)
        payloads = None if batch else [value]
        whole = accept_message(value, payloads, kind, window, limits)
        if whole is not None:
            indexes = list(range(len(whole.events)))
            return [MessageEvents(table, msg, at_ms, whole.events, whole.ts_ms, indexes)]
        if payloads is None:
            payloads = wire.split_events(value, headers)
        events = MessageEvents(table, msg, at_ms)
        decoders = SINK_DECODERS
        accepted: list[Accepted | None] | None = accept_lines(
            value, payloads, kind, at_ms, window, limits, decoders
        )
        if accepted is None:
            accepted = [accept(p, kind, at_ms, window, limits, decoders) for p in payloads]
        out: list[Routed] = []
        for i, ok in enumerate(accepted):
            if ok is None:
                out.append(self._event(kind, payloads[i], at, at_ms, msg, i))
            else:
                events.add(ok, i)
        if events.events:
            out.append(events)
        return out

    def _event(
        self, kind: str, payload: bytes | None, at: datetime, at_ms: int, msg: Position, index: int
    ) -> Routed:
        """Event ``index`` of the message at ``msg`` (no Position object per event unless it
        needs an id made from it: one costs a microsecond, and the sink routes every event)."""
        # The record's own timestamp is "now", so streams and sink judge alike.
        parsed = parse_event(payload, kind, at, self._limits, position_id_later(msg, index))
        if isinstance(parsed, Rejection):
            return Skipped(parsed.reason)
        return Row(TABLE_BY_KIND[kind], event_row(parsed, at_ms, msg, index))

    def _rollup(self, value: bytes | None, pos: Position, at: datetime) -> Row:
        try:
            rollup = Rollup.model_validate_json(value or b"")
        except ValidationError as exc:
            letter = DeadLetter(
                "sink", SCHEMA_VIOLATION, f"rollup: {exc}", value or b"", len(value or b""), pos
            )
            return Row("dead_letters", dead_letter_row(letter, at, pos))
        return Row("rollups", rollup_row(rollup, pos))

    def _record(self, table: str, value: bytes | None, pos: Position, at: datetime) -> Row:
        """A stream-job record: error analytics (GroupedError, ErrorGroup, ErrorGroupTransition)
        or alerting (AlertTransition, NotificationRecord)."""
        try:
            record = RECORD_MODELS[table].model_validate_json(value or b"")
        except ValidationError as exc:
            letter = DeadLetter(
                "sink", SCHEMA_VIOLATION, f"{table}: {exc}", value or b"", len(value or b""), pos
            )
            return Row("dead_letters", dead_letter_row(letter, at, pos))
        return Row(table, record_row(record, pos))


def _letter_from(
    value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None
) -> DeadLetter:
    h = {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}
    source = Position(
        h.get(topics.HEADER_SOURCE_TOPIC, ""),
        int(h.get(topics.HEADER_SOURCE_PARTITION, "0") or 0),
        int(h.get(topics.HEADER_SOURCE_OFFSET, "0") or 0),
        int(h.get(topics.HEADER_SOURCE_INDEX, "0") or 0),
    )
    payload = value or b""
    size = int(h.get(topics.HEADER_PAYLOAD_BYTES, "0") or 0) or len(payload)
    return DeadLetter(
        "streams",
        h.get(topics.HEADER_REASON, "unknown"),
        h.get(topics.HEADER_DETAIL, ""),
        payload,
        size,
        source,
    )
