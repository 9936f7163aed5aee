"""Pydantic v2 models of the four event kinds apps emit.

Every event shares one envelope. Wire names are snake_case; each maps one-to-one onto an
OpenTelemetry semantic-convention attribute (see :data:`OTEL_NAMES`), so OTLP data can be
translated without loss and analysts find familiar names in ClickHouse.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
)

Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=200)]
#: Flag name -> the variant evaluated in the event's scope (request), at most 16.
Flags = Annotated[dict[str, str], Field(max_length=16)]

#: Our field name -> OpenTelemetry semantic-convention attribute.
OTEL_NAMES: dict[str, str] = {
    "app": "service.name",
    "env": "deployment.environment.name",
    "release": "service.version",
    "host": "host.name",
    "instance": "service.instance.id",
    "session_id": "session.id",
    "user_id": "enduser.id",
    "customer_id": "enduser.tenant",  # not yet an OTel standard name; closest in spirit
    "route": "http.route",
    "method": "http.request.method",
    "status_code": "http.response.status_code",
    "duration_ms": "http.server.request.duration",  # OTel uses seconds; we store ms
    "exception_type": "exception.type",
    "exception_message": "exception.message",
    "stacktrace": "exception.stacktrace",
    "frames.function": "code.function.name",
    "frames.filename": "code.file.path",
    "frames.lineno": "code.line.number",
    "frames.module": "code.namespace",
}

#: Health metric names the agent and simulator use (OpenTelemetry hostmetrics names).
HEALTH_METRICS: tuple[str, ...] = (
    "system.cpu.utilization",
    "system.memory.utilization",
    "system.filesystem.utilization",
    "system.cpu.load_average.1m",
    "process.memory.usage",
    "process.open_file_descriptor.count",
    "process.thread.count",
    "app.sessions.open",
    "app.throughput.requests_per_second",
)


def uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7 (RFC 9562): 48-bit ms timestamp, then random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def now_utc() -> datetime:
    return datetime.now(UTC)


def utc_ms(value: datetime) -> datetime:
    """An aware datetime in ``datetime.UTC`` (the same tzinfo object, so comparisons and
    ``timestamp()`` take CPython's fast path), truncated to milliseconds."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    if value.microsecond % 1000:
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


class Envelope(BaseModel):
    """Fields every event carries."""

    # NaN and Infinity are not JSON, and one would poison every sum it joins.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    event_id: uuid.UUID = Field(default_factory=uuid7)
    ts: datetime = Field(default_factory=now_utc, description="Event time, UTC, ms precision")
    app: Name
    env: Name
    release: ShortText = ""
    host: ShortText = ""
    instance: ShortText = ""
    session_id: ShortText = ""
    user_id: ShortText = ""
    customer_id: ShortText = ""
    origin: Literal["user", "test", "synthetic"] = "user"
    attributes: dict[str, str] = Field(default_factory=dict, max_length=64)

    @field_validator("ts")
    @classmethod
    def _utc_ms(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("ts must carry a timezone (use UTC, e.g. 2026-01-01T12:00:00Z)")
        return utc_ms(value)


class UsageEvent(Envelope):
    """Something a user did: a feature used, a request served."""

    kind: Literal["usage"] = "usage"
    name: Name = Field(description="Feature or event name, e.g. checkout.submit")
    route: ShortText = ""
    method: ShortText = ""
    status_code: int = Field(default=0, ge=0, le=999)
    duration_ms: float | None = Field(default=None, ge=0)
    value: float | None = None
    flags: Flags = Field(default_factory=dict)


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str = ""
    function: str = ""
    filename: str = ""
    lineno: int = Field(default=0, ge=0)
    in_app: bool = True


class ErrorEvent(Envelope):
    """An exception thrown in the app."""

    kind: Literal["error"] = "error"
    exception_type: Name
    exception_message: Annotated[str, Field(max_length=8192)] = ""
    stacktrace: Annotated[str, Field(max_length=65536)] = ""
    frames: list[Frame] = Field(default_factory=list, max_length=256)
    handled: bool = False
    level: Literal["debug", "info", "warning", "error", "fatal"] = "error"
    route: ShortText = ""
    flags: Flags = Field(default_factory=dict)


class HealthEvent(Envelope):
    """A snapshot of a host's and process's health (OpenTelemetry hostmetrics names)."""

    kind: Literal["health"] = "health"
    metrics: dict[str, float] = Field(min_length=1, max_length=128)


class ChangeEvent(Envelope):
    """A deploy, a feature-flag flip, a configuration change or a QA gate's decision."""

    kind: Literal["change"] = "change"
    change_type: Literal["deploy", "flag", "config", "gate"]  # gate: a QA gate decision
    name: Name = Field(description="Release for a deploy, flag name for a flag flip")
    value: ShortText = ""
    previous_value: ShortText = ""
    actor: ShortText = ""
    description: Annotated[str, Field(max_length=2000)] = ""


Event = Annotated[UsageEvent | ErrorEvent | HealthEvent | ChangeEvent, Field(discriminator="kind")]
EVENT_ADAPTER: TypeAdapter[UsageEvent | ErrorEvent | HealthEvent | ChangeEvent] = TypeAdapter(Event)
EVENT_MODELS: dict[str, type[Envelope]] = {
    "usage": UsageEvent,
    "error": ErrorEvent,
    "health": HealthEvent,
    "change": ChangeEvent,
}


#: The field each kind is rolled up (and partitioned) by.
ROLLUP_KEY_FIELD: dict[str, str] = {
    "usage": "name",
    "error": "exception_type",
    "health": "host",
    "change": "change_type",
}


def rollup_key(event: UsageEvent | ErrorEvent | HealthEvent | ChangeEvent) -> str:
    """The per-kind key rollups aggregate on (feature, exception type, host, change type)."""
    return str(getattr(event, ROLLUP_KEY_FIELD[event.kind]))


def partition_key(event: UsageEvent | ErrorEvent | HealthEvent | ChangeEvent) -> bytes:
    """Kafka message key: all events of one rollup key share a partition."""
    return f"{event.app}|{event.env}|{rollup_key(event)}".encode()
