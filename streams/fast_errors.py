"""Error events on the fast path of the rollup step: the sink's msgspec mirror of the
error model (:data:`schemas.fast_events.SINK_DECODERS`) decodes the line, and the
:class:`~schemas.events.ErrorEvent` is built from what it decoded without validating it
again (:func:`streams.built.built`).

The mirror accepts only what the models accept, read to the same values
(``tests/unit/test_fast_events.py``); this module takes only lines that carry their own
``ts`` and ``event_id`` (what the re-key passes on as they came) and gives the event the
models would give: ``ts`` in UTC to the millisecond, ``event_id`` as a UUID, the frames
as :class:`~schemas.events.Frame` s. Anything else goes to
:func:`schemas.validation.parse_event_as_given`, which decides as always
(``tests/unit/test_fast_errors.py`` holds the two equal). Decoding a typical error with
its frames this way costs a fraction of validating it by the models.

The attach step reads the lines of ``errors.byhost.v1`` the same way when the rollup step
did not hand their events over (:func:`read_error`; another worker's partition, a replay,
a backlog): a line the mirror decodes gives the event ``ErrorEvent.model_validate_json``
gives; any other line goes to the model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import msgspec
from shiftright_server.schemas.events import ErrorEvent, Frame, utc_ms
from shiftright_server.schemas.fast_events import (
    SINK_DECODERS,
    UNSET,
    Accepted,
    FastError,
    FastFrame,
    Window,
    accept,
)
from shiftright_server.schemas.fast_lines import accept_lines
from shiftright_server.schemas.validation import (
    AnyEvent,
    Limits,
    Rejection,
    parse_event_as_given,
)
from shiftright_server.streams.built import built

_DECODERS: Final = {"error": SINK_DECODERS["error"]}
_DECODER: Final = SINK_DECODERS["error"]
#: Frame models kept for reuse (all dropped when full).
FRAMES_KEPT: Final = 20_000
_FRAMES: dict[tuple[str, str, str, int, bool], Frame] = {}
_FRAME_FIELDS: Final = ("module", "function", "filename", "lineno", "in_app")


def parse_error(
    raw: bytes | None,
    now_ms: int,
    limits: Limits,
    event_id: uuid.UUID | Callable[[], uuid.UUID] | None = None,
) -> tuple[AnyEvent | Rejection, bool]:
    """:func:`~schemas.validation.parse_event_as_given` for an error line of a record
    whose time is ``now_ms``."""
    event = fast_errors(None, [raw], now_ms, limits)[0]
    if event is not None:
        return event, True
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    return parse_event_as_given(raw, "error", now, limits, event_id)


def fast_errors(
    value: bytes | None, lines: list[bytes | None], now_ms: int, limits: Limits
) -> list[ErrorEvent | None]:
    """For each of ``lines`` (the batch message ``value`` split into its events), the event
    :func:`parse_error` reads on the fast path; None where it leaves the line to the
    models. The message is decoded in one call where
    :func:`~schemas.fast_lines.accept_lines` can vouch for it, else line by line."""
    window = Window.around(now_ms, limits)
    vouched = accept_lines(value, lines, "error", now_ms, window, limits, _DECODERS)
    if vouched is None:
        vouched = [accept(raw, "error", now_ms, window, limits, _DECODERS) for raw in lines]
    return [_fast(fast) for fast in vouched]


def _fast(fast: Accepted | None) -> ErrorEvent | None:
    if fast is not None and isinstance(fast.event, FastError):
        return error_event(fast.event)
    return None


def read_error(line: bytes) -> ErrorEvent | None:
    """The event of a line that carries its own ts and event id, read on the mirror (what
    ``ErrorEvent.model_validate_json`` gives for it); None: let the model read it."""
    try:
        fast = _DECODER.decode(line)
        return error_event(fast) if isinstance(fast, FastError) else None
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, OverflowError):
        return None  # e.g. month 13 in ts: the model says what is wrong


def error_event(fast: FastError) -> ErrorEvent | None:
    """The model of a decoded error that carries its own ts and event id; None without."""
    if fast.ts is UNSET or fast.event_id is UNSET:
        return None
    return built(
        ErrorEvent,
        event_id=uuid.UUID(fast.event_id),
        ts=utc_ms(datetime.fromisoformat(fast.ts)),
        app=fast.app,
        env=fast.env,
        release=fast.release,
        host=fast.host,
        instance=fast.instance,
        session_id=fast.session_id,
        user_id=fast.user_id,
        customer_id=fast.customer_id,
        origin="user" if fast.origin is UNSET else fast.origin,
        attributes=fast.attributes,
        kind="error",
        exception_type=fast.exception_type,
        exception_message=fast.exception_message,
        stacktrace=fast.stacktrace,
        frames=_frames(fast.frames),
        handled=fast.handled,
        level=fast.level,
        route=fast.route,
        flags=fast.flags,
    )


def _frames(frames: list[FastFrame]) -> list[Frame]:
    """The frame models (shared: frozen), from a cache of those seen: the same frames
    recur in error after error, and building one costs more than finding it."""
    keys = [(f.module, f.function, f.filename, f.lineno, f.in_app) for f in frames]
    return [_FRAMES.get(key) or kept_frame(key) for key in keys]


def frame_of(item: object) -> Frame:
    """``Frame.model_validate(item)`` for a frame as JSON gives it (a cause of an
    exception chain): from the cache when it names every field with a value of the
    model's type, else by the model."""
    if type(item) is dict and len(item) == len(_FRAME_FIELDS):
        module, function, filename, lineno, in_app = (item.get(n) for n in _FRAME_FIELDS)
        if (
            type(module) is str
            and type(function) is str
            and type(filename) is str
            and type(lineno) is int
            and lineno >= 0
            and type(in_app) is bool
        ):
            return kept_frame((module, function, filename, lineno, in_app))
    return Frame.model_validate(item)


def kept_frame(key: tuple[str, str, str, int, bool]) -> Frame:
    """The frame of these (module, function, filename, lineno, in_app), valid values of
    the model's types, from the cache of those seen."""
    found = _FRAMES.get(key)
    if found is None:
        if len(_FRAMES) >= FRAMES_KEPT:
            _FRAMES.clear()
        found = _FRAMES[key] = built(Frame, **dict(zip(_FRAME_FIELDS, key, strict=True)))
    return found
