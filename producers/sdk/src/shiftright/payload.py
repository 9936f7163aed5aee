"""Queued items → JSON events in the wire shape of ``schemas/events.py`` (built on the
sender thread). Every field is clamped to the schema's limits here, because an event the
pipeline refuses is only seen again in ``dead_letters``.

The SDK must not import the project's ``schemas`` package, so the envelope is written out
here; ``tests/unit/sdk/test_payloads.py`` validates what this module builds against the
real pydantic models so the two cannot drift.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

from shiftright.config import Config
from shiftright.context import Scope
from shiftright.scrub import Scrubber
from shiftright.stack import RawError, Renderer
from shiftright.testing import SYNTHETIC

TOPICS = {
    "usage": "events.usage.v1",
    "error": "events.error.v1",
    "health": "events.health.v1",
    "change": "events.change.v1",
}
#: The field each kind is partitioned (and rolled up) by: ``app|env|<field>``.
KEY_FIELD = {"usage": "name", "error": "exception_type", "health": "host", "change": "change_type"}

SHORT = 200
MAX_ATTRIBUTES = 64
CHAIN_ATTRIBUTE = "exception.chain"
MAX_ATTRIBUTE_VALUE = 4096
MAX_METRICS = 128
LEVELS = {"debug", "info", "warning", "error", "fatal"}
LEVEL_ALIASES = {"warn": "warning", "critical": "fatal", "exception": "error"}
CHANGE_TYPES = {"deploy", "flag", "config"}


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


class Unsendable(ValueError):
    """An item that cannot become a valid event (its reason is the drop reason)."""


def uuid7(ms: int) -> str:
    """A time-ordered UUIDv7 (RFC 9562) for the given Unix time in ms."""
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class _Clock:
    """ISO 8601 timestamps, formatting the date and time only once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, ms: int) -> str:
        second = ms // 1000
        if second != self._second:
            self._second, self._prefix = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        return f"{self._prefix}.{ms % 1000:03d}Z"


def clip(value: Any, limit: int = SHORT) -> str:
    text = "" if value is None else str(value)
    return text[:limit]


def finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Builder:
    """Builds one event per queued item: (topic, key, JSON bytes)."""

    def __init__(self, config: Config) -> None:
        self._base = {
            "app": clip(config.app) or "unknown",
            "env": clip(config.env) or "unknown",
            "release": clip(config.release),
            "host": clip(config.host),
            "instance": clip(config.instance or f"{config.host}:{os.getpid()}"),
        }
        self._origin = config.origin if config.origin in ("user", "test", "synthetic") else "user"
        self._fixed_json = _encode(self._base)[:-1] + ","  # '{"app":…,"instance":"h:1",'
        self._key_prefix = f"{self._base['app']}|{self._base['env']}|"
        self._clock = _Clock()
        prefix = f"{config.namespace}." if config.namespace else ""
        self.topics = {kind: prefix + topic for kind, topic in TOPICS.items()}
        self.scrubber = Scrubber(config.scrub_keys)
        self.renderer = Renderer(config.in_app_include, config.in_app_exclude)
        self._kinds = {
            "usage": self._usage,
            "error": self._error,
            "health": self._health,
            "change": self._change,
        }

    def event(
        self, kind: str, ts: float, fields: Mapping[str, Any], scope: Scope
    ) -> dict[str, Any]:
        """The whole event as a dict (``encode`` sends the same, spliced for speed)."""
        event = self._varying(kind, ts, fields, scope)
        event.update(self._base)
        return event

    def encode(
        self, kind: str, ts: float, fields: Mapping[str, Any], scope: Scope
    ) -> tuple[str, bytes, bytes]:
        """(topic, key, JSON): the fields that vary per event are encoded, the fixed ones
        (app, env, release, host, instance) were encoded once at start."""
        event = self._varying(kind, ts, fields, scope)
        field = KEY_FIELD[kind]
        key = f"{self._key_prefix}{event[field] if field in event else self._base[field]}"
        try:
            varying = _encode(event)
        except (TypeError, ValueError) as exc:
            raise Unsendable("unserializable") from exc
        return self.topics[kind], key.encode(), (self._fixed_json + varying[1:]).encode()

    def _varying(
        self, kind: str, ts: float, fields: Mapping[str, Any], scope: Scope
    ) -> dict[str, Any]:
        ms = int(ts * 1000)
        event: dict[str, Any] = {"kind": kind, "event_id": uuid7(ms), "ts": self._clock.iso(ms)}
        event["session_id"] = clip(fields.get("session_id") or scope.session_id)
        event["user_id"] = clip(fields.get("user_id") or scope.user_id)
        event["customer_id"] = clip(fields.get("customer_id") or scope.customer_id)
        event["attributes"] = self._attributes(scope.attributes, fields.get("attributes"))
        marked = event["attributes"].get(SYNTHETIC) == "test"  # test traffic (shiftright.testing)
        event["origin"] = "test" if marked else self._origin
        self._kinds[kind](event, fields, scope)
        return event

    def _attributes(self, *sources: Mapping[str, Any] | None) -> dict[str, str]:
        out: dict[str, str] = {}
        for source in sources:
            if not source:
                continue
            for key, value in self.scrubber.mapping(source).items():
                if len(out) >= MAX_ATTRIBUTES:
                    return out
                out[clip(key)] = (
                    value
                    if isinstance(value, str) and len(value) <= MAX_ATTRIBUTE_VALUE
                    else _text(value)
                )
        return out

    def _usage(self, event: dict[str, Any], fields: Mapping[str, Any], scope: Scope) -> None:
        event["name"] = clip(fields.get("name")) or "unnamed"
        event["route"] = clip(fields.get("route") or scope.route)
        event["method"] = clip(fields.get("method"))
        status = fields.get("status_code") or 0
        event["status_code"] = status if isinstance(status, int) and 0 <= status <= 999 else 0
        duration = finite(fields.get("duration_ms"))
        event["duration_ms"] = None if duration is None else max(duration, 0.0)
        event["value"] = finite(fields.get("value"))
        if scope.flags:
            event["flags"] = dict(scope.flags)

    def _error(self, event: dict[str, Any], fields: Mapping[str, Any], scope: Scope) -> None:
        raw: RawError = fields["raw"]
        event["exception_type"] = clip(raw.type) or "Exception"
        event["exception_message"] = raw.message
        event["stacktrace"] = self.renderer.text(raw)
        event["frames"] = self.renderer.frames(raw.frames)
        if raw.chain:  # what it was raised from: grouping keys on the root cause
            attributes = event["attributes"]
            if len(attributes) >= MAX_ATTRIBUTES:
                attributes.pop(next(reversed(attributes)))
            attributes[CHAIN_ATTRIBUTE] = self._chain(raw)
        event["handled"] = bool(fields.get("handled", True))
        level = str(fields.get("level") or "error").lower()
        level = LEVEL_ALIASES.get(level, level)
        event["level"] = level if level in LEVELS else "error"
        event["route"] = clip(fields.get("route") or scope.route)
        if scope.flags:
            event["flags"] = dict(scope.flags)

    def _chain(self, raw: RawError) -> str:
        """``exception.chain``: the exceptions this one was raised from, nearest first and
        root cause last, each with its relation to the one before (``cause``: ``raise …
        from``; ``context``: raised while handling it)."""
        return _encode(
            [
                {
                    "type": clip(etype),
                    "message": message[:2000],
                    "frames": self.renderer.frames(frames),
                    "relation": link,
                }
                for etype, message, frames, link in reversed(raw.chain)
            ]
        )

    def _health(self, event: dict[str, Any], fields: Mapping[str, Any], scope: Scope) -> None:
        metrics: dict[str, float] = {}
        for name, value in fields["metrics"].items():
            number = finite(value)
            if number is not None and len(metrics) < MAX_METRICS:
                metrics[clip(name)] = number
        if not metrics:
            raise Unsendable("no_metrics")
        event["metrics"] = metrics

    def _change(self, event: dict[str, Any], fields: Mapping[str, Any], scope: Scope) -> None:
        change_type = str(fields.get("change_type"))
        if change_type not in CHANGE_TYPES:
            raise Unsendable("bad_change_type")
        event["change_type"] = change_type
        event["name"] = clip(fields.get("name")) or change_type
        for name in ("value", "previous_value", "actor"):
            event[name] = clip(fields.get(name))
        event["description"] = clip(fields.get("description"), 2000)


def _text(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:
        text = "<unprintable>"
    return text[:MAX_ATTRIBUTE_VALUE]
