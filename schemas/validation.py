"""One validation function shared by the stream workers and the sink.

It turns raw message bytes into an event model or a :class:`Rejection` carrying a
machine-readable reason and a human-readable detail. It never raises for bad input.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError
from shiftright_server.schemas.events import (
    EVENT_ADAPTER,
    ChangeEvent,
    ErrorEvent,
    HealthEvent,
    UsageEvent,
    utc_ms,
)

AnyEvent = UsageEvent | ErrorEvent | HealthEvent | ChangeEvent

#: Reasons a raw message is dead-lettered.
OVERSIZED: Final = "oversized"
MALFORMED_JSON: Final = "malformed_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_KIND: Final = "missing_kind"
UNKNOWN_KIND: Final = "unknown_kind"
WRONG_TOPIC: Final = "wrong_topic"
SCHEMA_VIOLATION: Final = "schema_violation"
TS_IN_FUTURE: Final = "ts_in_future"
TS_TOO_OLD: Final = "ts_too_old"
WAREHOUSE_REJECTED: Final = "warehouse_rejected"

REASONS: Final = (
    OVERSIZED,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_KIND,
    UNKNOWN_KIND,
    WRONG_TOPIC,
    SCHEMA_VIOLATION,
    TS_IN_FUTURE,
    TS_TOO_OLD,
    WAREHOUSE_REJECTED,
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str


def parse_event(
    raw: bytes | None,
    expected_kind: str | None,
    now: datetime,
    limits: Limits = Limits(),
    event_id: uuid.UUID | Callable[[], uuid.UUID] | None = None,
) -> AnyEvent | Rejection:
    """Validate one raw message: size, JSON, schema, kind/topic agreement, time bounds.

    ``now`` is the record's own timestamp; it is also the event time of an event that
    carries none. ``event_id`` is the id given to an event that carries none (or a function
    making it, called only for such an event).
    """
    return parse_event_as_given(raw, expected_kind, now, limits, event_id)[0]


def parse_event_as_given(
    raw: bytes | None,
    expected_kind: str | None,
    now: datetime,
    limits: Limits = Limits(),
    event_id: uuid.UUID | Callable[[], uuid.UUID] | None = None,
) -> tuple[AnyEvent | Rejection, bool]:
    """:func:`parse_event`, and whether ``raw`` carries its own ts and event id (nothing
    is filled in from the record or generated), so it can be passed on for the event."""
    if raw is None:
        return Rejection(MALFORMED_JSON, "empty message (no value)"), False
    if len(raw) > limits.max_bytes:
        reason = f"{len(raw)} bytes exceeds the limit of {limits.max_bytes}"
        return Rejection(OVERSIZED, reason), False
    try:
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return _rejection_from(exc), False
    if expected_kind is not None and event.kind != expected_kind:
        return Rejection(WRONG_TOPIC, f"kind {event.kind!r} on the {expected_kind} topic"), False
    given = event.model_fields_set
    if "ts" not in given or ("event_id" not in given and event_id is not None):
        event = _with_record_defaults(event, given, now, event_id)
    return _check_time(event, now, limits), "ts" in given and "event_id" in given


def _with_record_defaults(
    event: AnyEvent,
    given: set[str],
    now: datetime,
    event_id: uuid.UUID | Callable[[], uuid.UUID] | None,
) -> AnyEvent:
    """On ingest, a missing ts/event_id comes from the Kafka record, not the clock, so every
    consumer of the same record derives the same event. (Filled in after validation rather
    than by a "before" validator: that one would make pydantic build a Python dict of every
    event first, which doubled the cost of parsing.)"""
    update: dict[str, object] = {}
    if "ts" not in given:
        update["ts"] = utc_ms(now)
    if "event_id" not in given and event_id is not None:
        update["event_id"] = event_id() if callable(event_id) else event_id
    return event.model_copy(update=update)


def _check_time(event: AnyEvent, now: datetime, limits: Limits) -> AnyEvent | Rejection:
    if event.ts > now + limits.max_future:
        return Rejection(
            TS_IN_FUTURE, f"ts {event.ts.isoformat()} is ahead of now {now.isoformat()}"
        )
    if event.ts < now - limits.max_age:
        return Rejection(TS_TOO_OLD, f"ts {event.ts.isoformat()} is older than {limits.max_age}")
    return event


def _rejection_from(exc: ValidationError) -> Rejection:
    first = exc.errors(include_url=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return Rejection(MALFORMED_JSON, f"invalid JSON: {first['msg']}")
    if kind in ("dict_type", "model_attributes_type", "model_type") and not first["loc"]:
        return Rejection(NOT_AN_OBJECT, "the event must be a JSON object")
    if kind == "union_tag_not_found":
        return Rejection(MISSING_KIND, "field 'kind' is required (usage, error, health, change)")
    if kind == "union_tag_invalid":
        given = first.get("input")
        kind_value = given.get("kind") if isinstance(given, dict) else given
        return Rejection(
            UNKNOWN_KIND, f"unknown kind {kind_value!r}; expected usage, error, health or change"
        )
    return Rejection(SCHEMA_VIOLATION, _describe(exc))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"][1:]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
