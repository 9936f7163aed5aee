"""Event ids and ``ts`` text, cut from cached pieces.

An id is a valid UUIDv7 whose timestamp is the event's ``ts`` and whose random bits come
from the seeded RNG. Formatting a 128-bit int per event costs more than joining cached text.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

MS_SUFFIX = [f"{i:03d}Z" for i in range(1000)]
#: a hex digit -> the RFC 4122 variant digit with the same low two bits
HEX_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
#: ms bits 0..15 as hex, then the version digit
UUID_LOW = [f"{i:04x}-7" for i in range(1 << 16)]


class Stamper:
    """Timestamps and ids for events built one at a time (the request loop inlines both)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._sec = -1
        self._sec_text = ""

    def ts(self, ms: int) -> str:
        """``2026-03-04T14:00:00.123Z`` for an epoch millisecond."""
        sec = ms // 1000
        if sec != self._sec:
            self._sec = sec
            self._sec_text = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return self._sec_text + MS_SUFFIX[ms % 1000]

    def event_id(self, ms: int) -> str:
        """A UUIDv7 for an event at ``ms``; draws 80 random bits."""
        h = self._rng.randbytes(10).hex()
        return (
            f"{ms >> 16:08x}-{UUID_LOW[ms & 0xFFFF]}{h[:3]}-{HEX_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}"
        )
