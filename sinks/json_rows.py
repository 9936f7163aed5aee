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
column-oriented row path (:class:`RawRow` keeps what it needs).
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
class RawRow:
    """One event bound for a table as a JSON line, and where it came from."""

    table: str
    line: bytes
    payload: bytes  # the event as it came, for the row path if the warehouse refuses it
    msg: Position  # the Kafka message (index 0)
    index: int  # of the event in the message
    at_ms: int  # the record's timestamp


class MessageRows:
    """Makes the JSON lines of the events of one Kafka message."""

    __slots__ = ("_msg", "_received", "_tail", "_at_ms")

    def __init__(self, msg: Position, at_ms: int) -> None:
        self._msg, self._at_ms = msg, at_ms
        self._received = _clickhouse_time(at_ms)
        self._tail = b',"_topic":%b,"_partition":%d,"_offset":%d,"_index":' % (
            orjson.dumps(msg.topic),
            msg.partition,
            msg.offset,
        )

    def line(self, payload: bytes, accepted: Accepted, index: int) -> bytes:
        event = accepted.event
        head = payload.rstrip()
        filled = b""
        if event.origin is UNSET:
            filled += b',"origin":"user"'
        if event.ts is UNSET:
            filled += b',"ts":"%b"' % self._received
        if event.event_id is UNSET:
            made = position_id(self._msg.at(index))
            filled += b',"event_id":"%b"' % str(made).encode()
        return b'%b%b%d,"received_at":"%b"%b}' % (
            head[:-1],
            self._tail,
            index,
            self._received,
            filled,
        )

    def raw_row(self, table: str, payload: bytes, accepted: Accepted, index: int) -> RawRow:
        return RawRow(
            table, self.line(payload, accepted, index), payload, self._msg, index, self._at_ms
        )


def _clickhouse_time(ms: int) -> bytes:
    """``YYYY-MM-DD hh:mm:ss.fff`` in UTC (DateTime64(3, 'UTC') reads it as it is)."""
    at = datetime.fromtimestamp(ms // 1000, UTC)
    return b"%b.%03d" % (at.strftime("%Y-%m-%d %H:%M:%S").encode(), ms % 1000)
