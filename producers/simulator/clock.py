"""Event time: epoch milliseconds and the day/night shape of traffic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000


def to_ms(ts: datetime) -> int:
    """``ts`` as whole epoch milliseconds, rounded up (naive datetimes count as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return -(-((ts - EPOCH) // timedelta(microseconds=1)) // 1000)


def diurnal_factor(ts: datetime) -> float:
    """Traffic multiplier for the hour of ``ts`` (UTC): peak 15:00, trough 03:00, weekend dip."""
    return diurnal(to_ms(ts))


def diurnal(ms: int) -> float:
    """:func:`diurnal_factor` of an epoch millisecond."""
    hour = (ms % 86_400_000) / 3_600_000
    factor = 0.35 + 1.4 * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2
    weekday = (ms // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday
    return factor * 0.65 if weekday >= 5 else factor


def flat(ms: int) -> float:
    """The diurnal factor with the clock taken out: every hour is an average hour."""
    return 1.0
