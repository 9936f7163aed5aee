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
then checked together: each id in its canonical form, each time as the SDK writes it
(``2026-12-05T12:00:00.123Z``) and read (a month, day, hour, minute or second out of
range refused). From :data:`NUMPY_FROM` lines NumPy checks each byte against the class
of text its place takes and reads the times; in smaller messages its fixed cost a call
outweighs its speed, and the punctuation is checked in place by slices of the joined
texts, the ids' digits by ``bytes.fromhex`` and the times by
``datetime.fromisoformat``. Where any line has neither or another form, it
declines, and the caller reads the lines with :func:`accept_lines` or one by one. The
lines of a batch message need not be split out for it: where the message holds as many
events as lines, blank ones included, each line holds one.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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


#: The classes of text each byte of an id or a time belongs to, one bit each: the
#: digits up to 1, 2, 3, 5 and 9 (each a class of its own), hex digits, and each
#: punctuation mark the forms hold.
_UP_TO_1, _UP_TO_2, _UP_TO_3, _UP_TO_5, _DIGIT, _HEX = (1 << b for b in range(6))
_PUNCTUATION: Final = {c: 1 << b for b, c in enumerate("-T:.Z\n", start=6)}
_CLASSES: Final = np.zeros(256, np.uint16)
for _digit in range(10):
    _CLASSES[ord("0") + _digit] = (
        _DIGIT
        | _HEX
        | (_UP_TO_1 if _digit <= 1 else 0)
        | (_UP_TO_2 if _digit <= 2 else 0)
        | (_UP_TO_3 if _digit <= 3 else 0)
        | (_UP_TO_5 if _digit <= 5 else 0)
    )
for _letter in "abcdefABCDEF":
    _CLASSES[ord(_letter)] = _HEX
for _mark, _bit in _PUNCTUATION.items():
    _CLASSES[ord(_mark)] |= _bit


_CODES: Final = {"H": _HEX, "D": _DIGIT, "1": _UP_TO_1, "2": _UP_TO_2, "3": _UP_TO_3, "5": _UP_TO_5}


def _form(pattern: str) -> np.ndarray:
    """The class each place of a line must be of: ``H`` a hex digit, ``D`` a digit, ``1``
    to ``5`` a digit up to that one; a punctuation mark stands for itself."""
    return np.array([_CODES.get(c) or _PUNCTUATION[c] for c in pattern], np.uint16)


class _Form(NamedTuple):
    """A form of text: the class of each place (and the newline after it) for NumPy, and
    where each of its punctuation marks stands (for :func:`_marks_in_place`)."""

    places: np.ndarray
    marks: tuple[tuple[int, str], ...]


def _of(form: str) -> _Form:
    marks = tuple((place, c) for place, c in enumerate(form + "\n") if c in _PUNCTUATION)
    return _Form(_form(form + "\n"), marks)


#: An event id in canonical form.
_ID_FORM: Final = _of("HHHHHHHH-HHHH-HHHH-HHHH-HHHHHHHHHHHH")
#: A time as the SDK writes it (UTC, milliseconds). Digits out of range for their place
#: (month 13, day 32, hour 24, ...) are refused when the time is read.
_STAMP_FORM: Final = _of("DDDD-1D-3DT2D:5D:5D.DDDZ")
_STAMP_LENGTH: Final = len(_STAMP_FORM.places) - 1
#: From this many lines NumPy checks and reads them; below, Python's own parsers (NumPy's
#: fixed cost a call outweighs its speed per line in smaller messages). The same lines
#: pass either way, with the same times.
NUMPY_FROM = 40


def _joined(texts: list[str], form: _Form) -> str | None:
    """The texts joined by newlines, if they are as long as that many of ``form``."""
    try:
        text = "\n".join(texts)
    except TypeError:  # UNSET
        return None
    return text if len(text) == len(form.places) * len(texts) - 1 else None


def _marks_in_place(text: str, count: int, form: _Form) -> bool:
    """Each punctuation mark of ``form`` (the newline after each line included) in its
    place on each of ``count`` lines of ``text`` (as long as that many lines)."""
    width = len(form.places)
    return all(
        text[place::width] == mark * (count if place < width - 1 else count - 1)
        for place, mark in form.marks
    )


def _lines_of(texts: list[str], form: _Form) -> bytes | None:
    """The texts, each followed by a newline, if each is exactly of ``form`` (so none
    holds a newline, and each is as long as the form); else None (NumPy)."""
    text = _joined(texts, form)
    if text is None:
        return None
    try:
        raw = text.encode("ascii") + b"\n"
    except UnicodeEncodeError:  # a character the form has not
        return None
    places = np.frombuffer(raw, np.uint8).reshape(len(texts), len(form.places))
    return raw if (_CLASSES.take(places) & form.places).all() else None


def _ids_by_python(ids: list[str]) -> bool:
    """Each id of the canonical form: hyphens and newlines in place, and the rest read as
    hex digits, as many as the ids hold (``bytes.fromhex`` skips whitespace, so a blank
    in place of a digit gives fewer bytes)."""
    text, count = _joined(ids, _ID_FORM), len(ids)
    if text is None or not _marks_in_place(text, count, _ID_FORM):
        return False
    try:
        octets = bytes.fromhex(text.replace("-", "").replace("\n", ""))
    except ValueError:
        return False
    return len(octets) == 16 * count


def _stamps_by_python(stamps: list[str]) -> list[int] | None:
    """Each time's epoch ms, if each is of the SDK's form: the marks in place, and the
    rest read by ``datetime.fromisoformat`` (which takes only ASCII digits there and
    refuses a month, day, hour, minute or second out of range)."""
    text, count = _joined(stamps, _STAMP_FORM), len(stamps)
    if text is None or not _marks_in_place(text, count, _STAMP_FORM):
        return None
    read = datetime.fromisoformat
    try:
        return [(read(stamp) - _EPOCH) // _MS for stamp in stamps]
    except ValueError:
        return None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


class Message(NamedTuple):
    """Every event of a message, as the mirror reads each line, and their times (ms)."""

    events: list[FastEvent]
    ts_ms: list[int]


def accept_message(
    value: bytes | None,
    lines: list[bytes | None] | None,
    kind: str,
    window: Window,
    limits: Limits,
) -> Message | None:
    """Every line of the message if :func:`accept` vouches for each with these values;
    None: ask line by line (each line accepted here carries its own id and time).
    ``lines`` None: a batch message's lines not split out, each of which must then hold
    an event (no blank line)."""
    decoder = LAX_DECODERS.get(kind)
    if decoder is None or value is None or _SAME_LINE_BOUNDARY.search(value):
        return None
    count = _line_count(value, lines, limits.max_bytes)
    if count is None:
        return None
    try:
        events = decoder.decode_lines(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(events) != count or not _canonical_ids(events):
        return None
    ts_ms = _times(events, window)
    return None if ts_ms is None else Message(events, ts_ms)


class Messages(NamedTuple):
    """Every event of several messages, as the mirror reads each line, their times (ms),
    and how many of them each message holds (in order)."""

    events: list[FastEvent]
    ts_ms: list[int]
    counts: list[int]


def accept_messages(
    values: list[bytes], kind: str, windows: list[Window], limits: Limits
) -> Messages | None:
    """What :func:`accept_message` gives for each of these messages of one kind (their
    lines not split out: each line an event), all read at once, each event's time held
    to its own message's window; None if it would not vouch for every line of every one
    of them. Joined by newlines, the messages' lines are the lines of one message (the
    join puts no two objects on a line), so each message holds as many events as it has
    lines, and the fixed costs of a read are paid once for them all."""
    decoder = LAX_DECODERS.get(kind)
    if decoder is None:
        return None
    joined = b"\n".join(values)
    if _SAME_LINE_BOUNDARY.search(joined):
        return None
    most = limits.max_bytes
    if any(_line_count(value, None, most) is None for value in values if len(value) > most):
        return None
    counts = [value.count(b"\n") + 1 for value in values]
    try:
        events = decoder.decode_lines(joined)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if len(events) != sum(counts) or not _canonical_ids(events):
        return None
    ts_ms = _stamps_ms(events)
    if ts_ms is None or not _each_within(ts_ms, counts, windows):
        return None
    return Messages(events, ts_ms, counts)


def _each_within(ts_ms: list[int], counts: list[int], windows: list[Window]) -> bool:
    """Each message's times (``counts[i]`` of them, in order) within its window."""
    start = 0
    for count, (oldest, newest) in zip(counts, windows, strict=True):
        times = ts_ms[start : start + count]
        start += count
        if min(times) < oldest + MARGIN_MS or max(times) > newest - MARGIN_MS:
            return False
    return True


def _line_count(value: bytes, lines: list[bytes | None] | None, max_bytes: int) -> int | None:
    """How many events the message must hold: one a line (of ``lines``, or of ``value``
    where they are not split out); None if there is none or one is over ``max_bytes``.
    Where as many objects as ``value`` has lines, blank ones included, fill it, and no
    line holds two, each line holds exactly one."""
    if lines is None:
        if len(value) > max_bytes and max(map(len, value.split(b"\n"))) > max_bytes:
            return None
        return value.count(b"\n") + 1
    if not lines or max(map(len, cast(list[bytes], lines))) > max_bytes:  # a value: no None
        return None
    return len(lines)


def _canonical_ids(events: list[FastEvent]) -> bool:
    """Each event's id is a string of the canonical form."""
    ids: list[str] = [e.event_id for e in events]  # type: ignore[misc]  # UNSET: refused
    if len(ids) < NUMPY_FROM:
        return _ids_by_python(ids)
    return _lines_of(ids, _ID_FORM) is not None


def _times(events: list[FastEvent], window: Window) -> list[int] | None:
    """The events' times in epoch ms if each is in the form and in ``window`` (as
    :func:`~schemas.fast_events.vouch` decides it); else None."""
    times = _stamps_ms(events)
    if times is None:
        return None
    oldest, newest = window
    if min(times) < oldest + MARGIN_MS or max(times) > newest - MARGIN_MS:
        return None
    return times


def _stamps_ms(events: list[FastEvent]) -> list[int] | None:
    """The events' times in epoch ms if each is in the SDK's form; else None."""
    stamps: list[str] = [e.ts for e in events]  # type: ignore[misc]  # UNSET: refused
    return _stamps_by_python(stamps) if len(stamps) < NUMPY_FROM else _stamps_by_numpy(stamps)


def _stamps_by_numpy(stamps: list[str]) -> list[int] | None:
    """Each time's epoch ms, if each is of the SDK's form (NumPy)."""
    raw = _lines_of(stamps, _STAMP_FORM)
    if raw is None:
        return None
    texts = np.frombuffer(raw, f"S{_STAMP_LENGTH + 1}")
    try:  # NumPy reads a UTC time without its zone; a day past its month's end raises
        ms = texts.astype(f"S{_STAMP_LENGTH - 1}").astype("datetime64[ms]").astype(np.int64)
    except ValueError:
        return None
    times: list[int] = ms.tolist()
    return times


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as it was after it), for code that
    holds a batch's decoded events (tens of thousands of objects) until it is done with
    them: a collection inside would walk every one of them and free none; once they are
    freed by reference counts, the next collection finds what outlived the batch."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
