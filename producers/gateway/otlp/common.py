"""Attributes, resources and times of OTLP data, turned into event fields."""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from shiftright_server.producers.gateway.intake import Item
from shiftright_server.schemas.events import EVENT_MODELS, OTEL_NAMES

#: OTel attribute → our field, for top-level fields of the event models.
FIELD_OF_ATTRIBUTE: dict[str, str] = {
    otel: ours for ours, otel in OTEL_NAMES.items() if "." not in ours
} | {"deployment.environment": "env"}  # the name before semantic conventions 1.27
_FIELDS_OF_KIND = {kind: set(model.model_fields) for kind, model in EVENT_MODELS.items()}
_INT_FIELDS = {"status_code"}
_SECONDS_TO_MS = {"http.server.request.duration"}

#: OTel SDKs name a service ``unknown_service[:process]`` when the app configured none.
UNKNOWN_SERVICE = "unknown_service"

#: An event keeps at most this many attributes; the rest go, JSON-encoded, into one more.
MAX_ATTRIBUTES = 64
OVERFLOW_ATTRIBUTE = "otel.attributes.overflow"


@dataclass
class Translation:
    """What a request turned into: items to validate, and what mapped to no event."""

    items: list[Item] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason → records

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def value_of(value: AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value (bytes as base64 text)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which)


def text_of(value: Any) -> str:
    """How an attribute value is stored in ``attributes`` (a string map)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def attributes(kvs: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(kvs)
    return {kv.key: value_of(kv.value) for kv in pairs}


def hex_id(raw: bytes) -> str:
    return raw.hex() if raw.strip(b"\0") else ""


def iso_from_nanos(nanos: int) -> str | None:
    """RFC 3339 UTC with ms, or None for 0 ("unknown": the gateway's clock is used)."""
    if nanos <= 0:
        return None
    ts = datetime.fromtimestamp(nanos // 1_000_000 / 1000, UTC)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Draft:
    """An event being assembled: its fields, and attributes that map to no field."""

    def __init__(self, kind: str, resource: dict[str, Any]) -> None:
        self.kind = kind
        self.fields: dict[str, Any] = {"kind": kind}
        self.attrs: dict[str, str] = {}
        self.absorb(resource)

    def absorb(self, attrs: dict[str, Any]) -> None:
        """Attributes that name one of this kind's fields set it; the rest are kept."""
        for name, value in attrs.items():
            target = FIELD_OF_ATTRIBUTE.get(name)
            if name == "service.name" and str(value).startswith(UNKNOWN_SERVICE):
                target = None  # the SDK's default: the app is the key's (kept as an attribute)
            if target in _FIELDS_OF_KIND[self.kind] and self._set(target, name, value):
                continue
            self.attrs[name] = text_of(value)

    def _set(self, target: str, name: str, value: Any) -> bool:
        if target in _INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int | str):
                return False
            if isinstance(value, str) and not value.isdigit():
                return False
            self.fields[target] = int(value)
        elif name in _SECONDS_TO_MS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            self.fields[target] = float(value) * 1000.0
        else:
            self.fields[target] = text_of(value)
        return True

    def set_time(self, nanos: int) -> None:
        if ts := iso_from_nanos(nanos):
            self.fields["ts"] = ts

    def note(self, name: str, value: str) -> None:
        if value:
            self.attrs[name] = value

    def build(self) -> dict[str, Any]:
        out = dict(self.fields)
        attrs = self.attrs
        if len(attrs) > MAX_ATTRIBUTES:
            names = list(attrs)
            kept = {n: attrs[n] for n in names[: MAX_ATTRIBUTES - 1]}
            rest = {n: attrs[n] for n in names[MAX_ATTRIBUTES - 1 :]}
            kept[OVERFLOW_ATTRIBUTE] = json.dumps(rest, separators=(",", ":"))
            attrs = kept
        if attrs:
            out["attributes"] = attrs
        return out
