"""Per-kind admission: sampling, then a token-bucket rate limit.

Checked on the app thread, so it is a few float operations and no lock: under contention
two threads may both take the last token, which only lets a burst slip by one event.
"""

from __future__ import annotations

import random
import time


class Gate:
    """Admits an event or names why not (``"sampled"``, ``"rate_limited"``)."""

    __slots__ = ("_rate", "_per_second", "_tokens", "_burst", "_stamp", "_random")

    def __init__(self, sample_rate: float = 1.0, per_second: float | None = None) -> None:
        self._rate = min(max(sample_rate, 0.0), 1.0)
        self._per_second = per_second
        self._burst = max(per_second or 0.0, 1.0)
        self._tokens = self._burst
        self._stamp = time.monotonic()
        self._random = random.random

    @property
    def open(self) -> bool:
        """True when every event passes (the caller may skip :meth:`refuse`)."""
        return self._rate >= 1.0 and self._per_second is None

    def refuse(self) -> str | None:
        if self._rate < 1.0 and self._random() >= self._rate:
            return "sampled"
        if self._per_second is not None:
            now = time.monotonic()
            tokens = min(self._burst, self._tokens + (now - self._stamp) * self._per_second)
            self._stamp = now
            if tokens < 1.0:
                self._tokens = tokens
                return "rate_limited"
            self._tokens = tokens - 1.0
        return None
