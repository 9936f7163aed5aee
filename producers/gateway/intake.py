"""From request items to validated events and Kafka messages.

Every event goes through :func:`schemas.validation.parse_event` — the validator the stream
workers and the sink use — so the gateway accepts exactly what the pipeline accepts. For
a schema violation the pydantic errors are reported one by one, each with the path of the
bad field in the request (``[3].frames[0].lineno``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic_core
from pydantic import ValidationError
from shiftright_server.infra.access.ingest_keys import IngestKey
from shiftright_server.producers.gateway.errors import FieldError, Rejected
from shiftright_server.producers.gateway.publisher import OutMessage
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.events import EVENT_ADAPTER, partition_key, uuid7
from shiftright_server.schemas.validation import (
    MISSING_KIND,
    OVERSIZED,
    SCHEMA_VIOLATION,
    TS_IN_FUTURE,
    TS_TOO_OLD,
    UNKNOWN_KIND,
    AnyEvent,
    Limits,
    Rejection,
    parse_event,
)

#: Reported field errors per request, at most (the count of the rest is still given).
MAX_REPORTED_ERRORS = 100

_FIELD_OF_REASON = {
    TS_IN_FUTURE: "ts",
    TS_TOO_OLD: "ts",
    MISSING_KIND: "kind",
    UNKNOWN_KIND: "kind",
}


@dataclass(frozen=True, slots=True)
class Item:
    """One would-be event and where it came from in the request (``[3]``, ``""``, …)."""

    path: str
    value: Any
    index: int | None = None
    records: int = 1  # OTLP records (log records, spans, data points) the event stands for


@dataclass
class Checked:
    accepted: list[AnyEvent] = field(default_factory=list)
    invalid: list[FieldError] = field(default_factory=list)  # 422 / 413
    forbidden: list[FieldError] = field(default_factory=list)  # 403
    rejected: int = 0  # items refused (an item can have several field errors)
    rejected_records: int = 0  # the OTLP records those items stood for


def parse_batch(body: bytes, max_events: int) -> list[Item]:
    """The JSON body of ``POST /v1/events``: one event object or a list of them."""
    try:
        value = pydantic_core.from_json(body)
    except ValueError as exc:
        raise Rejected(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if isinstance(value, dict):
        return [Item("", value)]
    if not isinstance(value, list):
        raise Rejected(
            400, "not_an_object", "the body must be an event object or a list of event objects"
        )
    if not value:
        raise Rejected(422, "empty_batch", "the list of events is empty")
    if len(value) > max_events:
        raise Rejected(
            413,
            "too_many_events",
            f"{len(value)} events exceed the limit of {max_events} a request",
        )
    return [Item(f"[{i}]", v, i) for i, v in enumerate(value)]


def check(items: Sequence[Item], key: IngestKey | None, now: datetime, limits: Limits) -> Checked:
    """Validate every item; bind each event to the key's app (and env)."""
    out = Checked()
    for item in items:
        value = _with_key_defaults(item.value, key)
        raw = pydantic_core.to_json(value)
        result = parse_event(raw, None, now, limits, event_id=uuid7)  # made only when absent
        if isinstance(result, Rejection):
            out.invalid.extend(_field_errors(result, raw, item, now))
            out.rejected += 1
            out.rejected_records += item.records
        elif problem := _binding_problem(result, key, item):
            out.forbidden.append(problem)
            out.rejected += 1
            out.rejected_records += item.records
        else:
            out.accepted.append(result)
    return out


def raise_for(checked: Checked, total: int) -> None:
    """Refuse the whole request when any item was refused (nothing is half-accepted)."""
    if not checked.invalid and not checked.forbidden:
        return
    bad = checked.rejected
    if checked.forbidden:
        status, reason = 403, "app_not_allowed"
    elif any(e.reason == OVERSIZED for e in checked.invalid):
        status, reason = 413, "event_too_large"
    else:
        status, reason = 422, "invalid_events"
    errors = checked.forbidden + checked.invalid
    more = len(errors) - MAX_REPORTED_ERRORS
    message = f"{bad} of {total} events refused; nothing was accepted"
    if more > 0:
        message += f" ({more} more field errors not listed)"
    raise Rejected(status, reason, message, errors[:MAX_REPORTED_ERRORS])


def messages(events: Sequence[AnyEvent]) -> list[OutMessage]:
    """NDJSON batch messages, one group per topic and partition key (``schemas.wire``)."""
    groups: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for event in events:
        groups[(topics.EVENT_TOPIC_BY_KIND[event.kind], partition_key(event))].append(
            event.model_dump_json().encode()
        )
    out = []
    for (topic, key), payloads in groups.items():
        for value in wire.pack(payloads):
            out.append(OutMessage(topic, key, value, value.count(b"\n") + 1))
    return out


def _with_key_defaults(value: Any, key: IngestKey | None) -> Any:
    """An event that names no app (env) belongs to the key's app (env)."""
    if key is None or not isinstance(value, dict):
        return value
    if "app" in value and ("env" in value or key.env is None):
        return value
    filled = dict(value)
    filled.setdefault("app", key.app)
    if key.env is not None:
        filled.setdefault("env", key.env)
    return filled


def _binding_problem(event: AnyEvent, key: IngestKey | None, item: Item) -> FieldError | None:
    if key is None:
        return None
    if event.app != key.app:
        return FieldError(
            _join(item.path, "app"),
            "app_not_allowed",
            f"this key ({key.id}) may send events of app {key.app!r}, not {event.app!r}",
            item.index,
        )
    if key.env is not None and event.env != key.env:
        return FieldError(
            _join(item.path, "env"),
            "env_not_allowed",
            f"this key ({key.id}) may send events of env {key.env!r}, not {event.env!r}",
            item.index,
        )
    return None


def _field_errors(rejection: Rejection, raw: bytes, item: Item, now: datetime) -> list[FieldError]:
    if rejection.reason == SCHEMA_VIOLATION:
        try:
            EVENT_ADAPTER.validate_json(raw, context={"now": now})
        except ValidationError as exc:
            return [_from_pydantic(err, item) for err in exc.errors(include_url=False)]
    path = _join(item.path, _FIELD_OF_REASON.get(rejection.reason, ""))
    return [FieldError(path or "(body)", rejection.reason, rejection.detail, item.index)]


def _from_pydantic(err: Any, item: Item) -> FieldError:
    loc = err["loc"][1:]  # the first element is the kind (the union's tag)
    message = err["msg"]
    given = err.get("input")
    if err["type"] != "missing" and isinstance(given, str | int | float | bool):
        message += f" (got {given!r:.80})"
    return FieldError(_join(item.path, _format_loc(loc)), SCHEMA_VIOLATION, message, item.index)


def _format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(prefix: str, name: str) -> str:
    if not prefix:
        return name or "(body)"
    if not name:
        return prefix
    return f"{prefix}{name}" if name.startswith("[") else f"{prefix}.{name}"
