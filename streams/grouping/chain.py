"""Exceptions as the grouping sees them, and the chain an error event carries.

An :class:`~schemas.events.ErrorEvent` describes the exception that was reported. The
exceptions it was raised from (Python's ``__cause__`` / ``__context__``) travel, until
the event schema has a field for them, as JSON in ``attributes["exception.chain"]``:
a list, nearest first and root cause last, of objects
``{"type", "message", "frames": [{module, function, filename, lineno, in_app}], "relation"}``
with ``relation`` ``"cause"`` (``raise ... from``) or ``"context"`` (raised while handling).
A missing or unreadable chain means the reported exception is its own root cause.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Final

import msgspec
from pydantic import ValidationError
from shiftright_server.schemas.events import ErrorEvent, Frame
from shiftright_server.streams.fast_errors import frame_of, kept_frame

CHAIN_ATTRIBUTE: Final = "exception.chain"
MAX_CHAIN: Final = 16
#: Parsed chains kept by their text (least recently used dropped first).
CHAINS_KEPT: Final = 4096


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """One exception: type, message and frames (outermost first, like the event)."""

    type: str
    message: str
    frames: tuple[Frame, ...]

    def in_app_frames(self) -> tuple[Frame, ...]:
        return tuple(f for f in self.frames if f.in_app)


def reported(event: ErrorEvent) -> ExceptionInfo:
    """The exception the event reports (the outermost of its chain)."""
    return ExceptionInfo(event.exception_type, event.exception_message, tuple(event.frames))


def chain_of(event: ErrorEvent) -> list[ExceptionInfo]:
    """The reported exception followed by those it was raised from, root cause last."""
    out = [reported(event)]
    raw = event.attributes.get(CHAIN_ATTRIBUTE)
    if raw:
        out.extend(_parse_chain(raw))
    return out


def root_cause(event: ErrorEvent) -> ExceptionInfo:
    """The exception at the bottom of the chain: what grouping keys on (the last of
    :func:`chain_of`)."""
    raw = event.attributes.get(CHAIN_ATTRIBUTE)
    causes = _parse_chain(raw) if raw else ()
    return causes[-1] if causes else reported(event)


def encode_chain(causes: list[ExceptionInfo], relations: list[str]) -> str:
    """The attribute value for ``causes`` (nearest first), see the module docstring."""
    return json.dumps(
        [
            {
                "type": c.type,
                "message": c.message,
                "frames": [f.model_dump() for f in c.frames],
                "relation": r,
            }
            for c, r in zip(causes[:MAX_CHAIN], relations, strict=False)
        ],
        separators=(",", ":"),
    )


class _Frame(msgspec.Struct, forbid_unknown_fields=True):
    """A cause's frame naming every field of :class:`~schemas.events.Frame` with a value
    of its type: what :func:`~streams.fast_errors.frame_of` takes from its cache."""

    module: str
    function: str
    filename: str
    lineno: Annotated[int, msgspec.Meta(ge=0)]
    in_app: bool


class _Cause(msgspec.Struct):
    """A cause as :func:`_info` reads it where every value is of the type it keeps as is
    (other fields, e.g. ``relation``, ignored)."""

    type: Annotated[str, msgspec.Meta(min_length=1)]
    message: str = ""
    frames: list[_Frame] | None = None


_CAUSES: Final = msgspec.json.Decoder(list[_Cause])


@lru_cache(maxsize=CHAINS_KEPT)
def _parse_chain(raw: str) -> tuple[ExceptionInfo, ...]:
    """Causes from the attribute; anything malformed yields no causes rather than an error:
    an event must never fail grouping because of a producer's bad chain. Kept by the
    attribute's text: the same chain recurs with every error raised the same way.

    A chain whose every cause and frame is of the types read as they are is decoded by
    msgspec (:class:`_Cause`); any other goes through the standard library and the
    models, which decide as always (``tests/unit/test_grouping_fingerprint.py`` holds
    the two equal)."""
    try:
        causes = _CAUSES.decode(raw)
    except msgspec.DecodeError:  # (ValidationError is one)
        return _read_chain(raw)
    return tuple(
        ExceptionInfo(
            c.type,
            c.message,
            tuple(
                kept_frame((f.module, f.function, f.filename, f.lineno, f.in_app))
                for f in c.frames or ()
            ),
        )
        for c in causes[:MAX_CHAIN]
    )


def _read_chain(raw: str) -> tuple[ExceptionInfo, ...]:
    """:func:`_parse_chain` by the standard library and the models."""
    try:
        items = json.loads(raw)
        if not isinstance(items, list):
            return ()
        return tuple(_info(item) for item in items[:MAX_CHAIN])
    except (ValueError, TypeError, KeyError, ValidationError):
        return ()


def _info(item: Any) -> ExceptionInfo:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not item["type"]:
        raise TypeError("a cause needs a type")
    frames = tuple(frame_of(f) for f in item.get("frames") or ())
    return ExceptionInfo(item["type"], str(item.get("message", "")), frames)
