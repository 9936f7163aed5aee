"""Logging that says a thing once a minute, with how often it happened meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any


class RateLimitedLog:
    """One record per key per ``every`` seconds; the next one reports how many were held back."""

    def __init__(self, logger: logging.Logger, every: float = 60.0) -> None:
        self._logger = logger
        self._every = every
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, event: str, key: str, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._every:
                self._held[key] = self._held.get(key, 0) + 1
                return
            self._last[key] = now
            held = self._held.pop(key, 0)
        try:
            suffix = f" ({held} more since the last report)" if held else ""
            self._logger.warning(f"{event}: {fmt}{suffix}", *args)
        except Exception:  # a broken log handler must not reach the app
            pass
