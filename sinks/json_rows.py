"""Warehouse rows as JSON lines (``FORMAT JSONEachRow``), made from the event's own bytes.

An event the fast validator vouched for (:mod:`schemas.fast_events`) is stored by handing
ClickHouse the JSON it came as, with the row's position appended as extra keys:

    {"event_id":"…","kind":"usage",…,"duration_ms":24.5}
    → {"event_id":"…","kind":"usage",…,"duration_ms":24.5,"_topic":"events.usage.v1",
       "_partition":3,"_offset":812,"_index":17,"received_at":"2026-12-05 04:13:50.001"}

ClickHouse parses it (``kind`` is skipped as an unknown key). Only what the event left
out and the models fill in differently from the table's own defaults is appended too:
``origin`` (``user``), ``ts`` (the record's time) and ``event_id`` (from the position).
If ClickHouse refuses such a line anyway, the sink stores that event through the
column-oriented row path (:class:`RawRows` keeps what it needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson
from shiftright_server.schemas.fast_events import UNSET, Accepted
from shiftright_server.schemas.positions import Position, position_id

#: ClickHouse settings of a JSON-lines insert (with the deduplication token).
JSON_INSERT_SETTINGS: Final = {
    "input_format_skip_unknown_fields": 1,  # "kind"
    "date_time_input_format": "best_effort",  # RFC 3339 with a zone
    "input_format_defaults_for_omitted_fields": 1,
}


@dataclass(frozen=True, slots=True)
class RawRows:
    """Events of one Kafka message bound for a table as JSON lines, and where they came
    from (what the row path needs if the warehouse refuses one)."""

    table: str
    msg: Position  # the Kafka message (index 0)
    at_ms: int  # the record's timestamp
    lines: list[bytes]
    payloads: list[bytes]  # the events as they came
    indexes: list[int]  # of the events in the message

    def __len__(self) -> int:
        return len(self.lines)

    def halves(self) -> tuple[RawRows, RawRows]:
        mid = len(self.lines) // 2
        return self._part(slice(None, mid)), self._part(slice(mid, None))

    def _part(self, part: slice) -> RawRows:
        return RawRows(
            self.table,
            self.msg,
            self.at_ms,
            self.lines[part],
            self.payloads[part],
            self.indexes[part],
        )


class MessageRows:
    """Makes the JSON lines of the events of one Kafka message bound for ``table``."""

    __slots__ = ("_rows", "_received", "_tail")

    def __init__(self, table: str, msg: Position, at_ms: int) -> None:
        self._rows = RawRows(table, msg, at_ms, [], [], [])
        self._received = _clickhouse_time(at_ms)
        self._tail = b',"_topic":%b,"_partition":%d,"_offset":%d,"_index":' % (
            orjson.dumps(msg.topic),
            msg.partition,
            msg.offset,
        )

    def add(self, payload: bytes, accepted: Accepted, index: int) -> None:
        rows = self._rows
        rows.lines.append(self._line(payload, accepted, index))
        rows.payloads.append(payload)
        rows.indexes.append(index)

    def rows(self) -> RawRows | None:
        return self._rows if self._rows.lines else None

    def _line(self, payload: bytes, accepted: Accepted, index: int) -> bytes:
        event = accepted.event
        filled = b""
        if event.origin is UNSET:
            filled += b',"origin":"user"'
        if event.ts is UNSET:
            filled += b',"ts":"%b"' % self._received
        if event.event_id is UNSET:
            made = position_id(self._rows.msg.at(index))
            filled += b',"event_id":"%b"' % str(made).encode()
        return b'%b%b%d,"received_at":"%b"%b}' % (
            payload.rstrip()[:-1],
            self._tail,
            index,
            self._received,
            filled,
        )


def _clickhouse_time(ms: int) -> bytes:
    """``YYYY-MM-DD hh:mm:ss.fff`` in UTC (DateTime64(3, 'UTC') reads it as it is)."""
    at = datetime.fromtimestamp(ms // 1000, UTC)
    return b"%b.%03d" % (at.strftime("%Y-%m-%d %H:%M:%S").encode(), ms % 1000)
