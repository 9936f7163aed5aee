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
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
from shiftright_server.schemas.fast_events import DECODERS, Accepted, Decoders, Window, vouch
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
