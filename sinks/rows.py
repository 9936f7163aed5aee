"""Pure mappings from Kafka records to warehouse rows. The Kafka position travels with
every row (``_topic``, ``_partition``, ``_offset``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any, cast

from pydantic import BaseModel
from shiftright_server.schemas.alerts import AlertTransition, NotificationRecord
from shiftright_server.schemas.events import ChangeEvent, ErrorEvent, HealthEvent, UsageEvent
from shiftright_server.schemas.positions import Position
from shiftright_server.schemas.records import ErrorGroup, ErrorGroupTransition, GroupedError, Rollup

ENVELOPE = (
    "event_id",
    "ts",
    "app",
    "env",
    "release",
    "host",
    "instance",
    "session_id",
    "user_id",
    "customer_id",
    "origin",
    "attributes",
)
POSITION = ("received_at", "_topic", "_partition", "_offset", "_index")

COLUMNS: dict[str, tuple[str, ...]] = {
    "events_usage": ENVELOPE
    + ("name", "route", "method", "status_code", "duration_ms", "value", "flags")
    + POSITION,
    "events_error": ENVELOPE
    + (
        "exception_type",
        "exception_message",
        "stacktrace",
        "frames",
        "handled",
        "level",
        "route",
        "flags",
    )
    + POSITION,
    "events_health": ENVELOPE + ("metrics",) + POSITION,
    "events_change": ENVELOPE
    + ("change_type", "name", "value", "previous_value", "actor", "description")
    + POSITION,
    "rollups": (
        "app",
        "env",
        "kind",
        "key",
        "bucket_start",
        "bucket_seconds",
        "count",
        "sums",
        "mins",
        "maxs",
        "first_ts",
        "last_ts",
        "source_partition",
        "emitted_at",
        "_topic",
        "_partition",
        "_offset",
    ),
    "dead_letters": (
        "rejected_at",
        "stage",
        "reason",
        "detail",
        "payload",
        "payload_bytes",
        "source_topic",
        "source_partition",
        "source_offset",
        "source_index",
        "_topic",
        "_partition",
        "_offset",
    ),
}
#: Records the stream jobs and the notifier write (error analytics and alerting):
#: table -> model; columns are the model's fields.
RECORD_MODELS: dict[str, type[BaseModel]] = {
    "errors_grouped": GroupedError,
    "error_groups": ErrorGroup,
    "error_group_transitions": ErrorGroupTransition,
    "alerts": AlertTransition,
    "alert_notifications": NotificationRecord,
}
for _table, _model in RECORD_MODELS.items():
    COLUMNS[_table] = (*_model.model_fields, "_topic", "_partition", "_offset")

TABLE_BY_KIND = {
    "usage": "events_usage",
    "error": "events_error",
    "health": "events_health",
    "change": "events_change",
}
#: How much of a rejected payload the dead_letters table keeps.
MAX_STORED_PAYLOAD = 64 * 1024


def event_row(
    event: UsageEvent | ErrorEvent | HealthEvent | ChangeEvent,
    received_at_ms: int,
    pos: Position,
    index: int | None = None,
) -> tuple[Any, ...]:
    """The row of an event at ``pos`` (``index``, when given, replaces the position's own
    index within a batch message). DateTime64(3) columns get epoch milliseconds:
    clickhouse-connect writes ints as they are, but converts every datetime object on its
    own (a few µs per value)."""
    head = (
        event.event_id,
        round(event.ts.timestamp() * 1000),
        event.app,
        event.env,
        event.release,
        event.host,
        event.instance,
        event.session_id,
        event.user_id,
        event.customer_id,
        event.origin,
        event.attributes,
    )
    return (
        head
        + _kind_fields(event)
        + (
            received_at_ms,
            pos.topic,
            pos.partition,
            pos.offset,
            pos.index if index is None else index,
        )
    )


def _kind_fields(event: UsageEvent | ErrorEvent | HealthEvent | ChangeEvent) -> tuple[Any, ...]:
    if isinstance(event, UsageEvent):
        return (
            event.name,
            event.route,
            event.method,
            event.status_code,
            event.duration_ms,
            event.value,
            event.flags,
        )
    if isinstance(event, ErrorEvent):
        frames = [(f.module, f.function, f.filename, f.lineno, f.in_app) for f in event.frames]
        return (
            event.exception_type,
            event.exception_message,
            event.stacktrace,
            frames,
            event.handled,
            event.level,
            event.route,
            event.flags,
        )
    if isinstance(event, HealthEvent):
        return (event.metrics,)
    return (
        event.change_type,
        event.name,
        event.value,
        event.previous_value,
        event.actor,
        event.description,
    )


def rollup_row(rollup: Rollup, pos: Position) -> tuple[Any, ...]:
    return (
        rollup.app,
        rollup.env,
        rollup.kind,
        rollup.key,
        rollup.bucket_start,
        rollup.bucket_seconds,
        rollup.count,
        rollup.sums,
        rollup.mins,
        rollup.maxs,
        rollup.first_ts,
        rollup.last_ts,
        rollup.source_partition,
        rollup.emitted_at,
        pos.topic,
        pos.partition,
        pos.offset,
    )


def record_row(record: BaseModel, pos: Position) -> tuple[Any, ...]:
    return (*_values_of(type(record))(record), pos.topic, pos.partition, pos.offset)


@cache
def _values_of(model: type[BaseModel]) -> Callable[[BaseModel], tuple[Any, ...]]:
    """What gives a record's field values in the model's order (its fields read once)."""
    names = tuple(model.model_fields)
    if len(names) == 1:
        return lambda record: (getattr(record, names[0]),)
    return cast(Callable[[BaseModel], tuple[Any, ...]], attrgetter(*names))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    stage: str
    reason: str
    detail: str
    payload: bytes
    payload_bytes: int
    source: Position


def dead_letter_row(letter: DeadLetter, rejected_at: datetime, pos: Position) -> tuple[Any, ...]:
    payload = letter.payload[:MAX_STORED_PAYLOAD].decode("utf-8", errors="replace")
    return (
        rejected_at,
        letter.stage,
        letter.reason,
        letter.detail[:4096],
        payload,
        letter.payload_bytes,
        letter.source.topic,
        letter.source.partition,
        letter.source.offset,
        letter.source.index,
        pos.topic,
        pos.partition,
        pos.offset,
    )
