"""The fast path (:mod:`schemas.fast_events`) for every line of a batch message in one
decoder call.

:func:`accept_lines` gives what :func:`~schemas.fast_events.accept` gives for each line
of an NDJSON batch message, or None when it cannot vouch that its answer is the same,
and then the caller asks line by line. msgspec's ``decode_lines`` reads a stream of
JSON values separated by whitespace, not one value per line: a line holding two
objects, and two lines holding one, would read as the same number of values. So it is
used only when no line can hold two objects (no ``}`` followed on the same line by
``{`` after nothing but blanks, anywhere in the message) and it reads exactly as many
values as there are lines: then, every value being an object, each line is exactly one
of them (each non-blank line belongs to one object, and the counts agree).

:func:`accept_message` (the sink and the stream worker): every line of a message at once
or none, read with the mirror less its two patterns
(:data:`~schemas.fast_events.LAX_DECODERS`) and the event ids and times of all lines
then checked together: each id in its canonical form,
each time as the SDK writes it (``2026-12-05T12:00:00.123Z``), read by NumPy. Where any
line has neither or another form, it declines, and the caller reads the lines with
:func:`accept_lines` or one by one.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple, cast

import msgspec
import numpy as np
from shiftright_server.schemas.fast_events import (
    DECODERS,
    LAX_DECODERS,
    MARGIN_MS,
    Accepted,
    Decoders,
    FastEvent,
    Window,
    vouch,
)
from shiftright_server.schemas.validation import Limits

#: Where one line could hold the end of an object and the start of the next.
_SAME_LINE_BOUNDARY: Final = re.compile(rb"\}[ \t\r]*\{")


def accept_lines(
    value: bytes | None,
    lines: list[bytes | None],
    kind: str,
    now_ms: int,
    window: Window,
    limits: Limits,
    decoders: Decoders = DECODERS,
) -> list[Accepted | None] | None:
    """For each of ``lines`` (the message ``value`` split into its events), what
    ``accept`` gives; None: the caller asks line by line."""
    decoder = decoders.get(kind)
    if (
        decoder is None
        or value is None
        or len(lines) < 2
        or len(value) > limits.max_bytes  # then no line is over it either
        or _SAME_LINE_BOUNDARY.search(value)
    ):
        return None
    try:
        events = decoder.decode_lines(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(events) != len(lines):
        return None
    return [vouch(event, now_ms, window) for event in events]


_HEX: Final = "[0-9a-fA-F]"
_ID: Final = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
#: Event ids, one a line: each exactly in the canonical form the mirror's pattern takes.
_IDS: Final = re.compile(f"(?:{_ID}\n)*{_ID}")
_STAMP: Final = (
    "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\\.[0-9]{3}Z"
)
#: Event times, one a line: each UTC with milliseconds (a form the mirror's pattern takes).
_STAMPS: Final = re.compile(f"(?:{_STAMP}\n)*{_STAMP}")
_ID_LENGTH, _STAMP_LENGTH = 36, 24


class Message(NamedTuple):
    """Every event of a message, as the mirror reads each line, and their times (ms)."""

    events: list[FastEvent]
    ts_ms: list[int]


def accept_message(
    value: bytes | None,
    lines: list[bytes | None],
    kind: str,
    window: Window,
    limits: Limits,
) -> Message | None:
    """Every line of the message if :func:`accept` vouches for each with these values;
    None: ask line by line (each line accepted here carries its own id and time)."""
    decoder = LAX_DECODERS.get(kind)
    if decoder is None or value is None or not lines or _SAME_LINE_BOUNDARY.search(value):
        return None
    if max(map(len, cast(list[bytes], lines))) > limits.max_bytes:  # a value: no None
        return None
    try:
        events = decoder.decode_lines(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not events or len(events) != len(lines) or not _canonical_ids(events):
        return None
    ts_ms = _times(events, window)
    return None if ts_ms is None else Message(events, ts_ms)


def _canonical_ids(events: list[FastEvent]) -> bool:
    """Each event's id is a string of the canonical form (joined with newlines, the text
    is exactly as long as that many ids, so no id holds a newline or more than one)."""
    try:
        text = "\n".join([e.event_id for e in events])  # type: ignore[misc]  # UNSET: TypeError
    except TypeError:
        return False
    return len(text) == (_ID_LENGTH + 1) * len(events) - 1 and _IDS.fullmatch(text) is not None


def _times(events: list[FastEvent], window: Window) -> list[int] | None:
    """The events' times in epoch ms if each is in the form and in ``window`` (as
    :func:`~schemas.fast_events.vouch` decides it); else None."""
    try:
        text = "\n".join([e.ts for e in events])  # type: ignore[misc]  # UNSET: TypeError
    except TypeError:
        return None
    size = _STAMP_LENGTH + 1
    if len(text) != size * len(events) - 1 or _STAMPS.fullmatch(text) is None:
        return None
    stamps = np.frombuffer((text + "\n").encode(), f"S{size}")
    try:  # NumPy reads a UTC time without its zone; a day past its month's end raises
        ms = stamps.astype(f"S{_STAMP_LENGTH - 1}").astype("datetime64[ms]").astype(np.int64)
    except ValueError:
        return None
    oldest, newest = window
    if ms.min() < oldest + MARGIN_MS or ms.max() > newest - MARGIN_MS:
        return None
    times: list[int] = ms.tolist()
    return times
