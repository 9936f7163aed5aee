"""Spike detection on a group's own per-minute event counts, in event time.

Definition. Events are counted per event-time minute. The baseline is an exponentially
weighted moving average of the *closed* minutes' counts (quiet minutes count as zero),
``alpha = 0.1`` (a memory of roughly the last 20 minutes). A minute is a spike when its
count reaches both ``min_count`` (10) and ``factor`` (5) times the baseline, and the
group has at least ``warmup_minutes`` (10) of history, so a brand-new group is reported
as *new*, not as spiking. The spike is reported at the event that crosses the threshold,
once per episode; the episode ends with the first closed minute below the threshold.

Events for a minute older than the current one count in the current minute, so an
out-of-order event cannot reopen the past; the result depends only on the order of
events, never on the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MINUTE_MS = 60_000


@dataclass(frozen=True)
class SpikePolicy:
    alpha: float = 0.1
    factor: float = 5.0
    min_count: int = 10
    warmup_minutes: int = 10

    def threshold(self, baseline: float) -> float:
        return max(float(self.min_count), self.factor * baseline)


@dataclass
class SpikeDetector:
    minute: int = -1  # current event-time minute (epoch minutes)
    count: int = 0  # events in the current minute
    baseline: float = 0.0
    since_minute: int = -1  # first minute with an event
    spiking: bool = False

    def observe(self, ts_ms: int, policy: SpikePolicy) -> bool:
        """Count one event; True when it starts a spike episode."""
        minute = ts_ms // MINUTE_MS
        if self.since_minute < 0:
            self.since_minute = self.minute = minute
        if minute > self.minute:
            self._close_until(minute, policy)
        self.count += 1
        warm = self.minute - self.since_minute >= policy.warmup_minutes
        if not self.spiking and warm and self.count >= policy.threshold(self.baseline):
            self.spiking = True
            return True
        return False

    def _close_until(self, minute: int, policy: SpikePolicy) -> None:
        if self.count < policy.threshold(self.baseline):
            self.spiking = False
        keep = 1 - policy.alpha
        self.baseline = keep * self.baseline + policy.alpha * self.count
        quiet = min(minute - self.minute - 1, 10_000)
        if quiet > 0:
            self.baseline *= keep**quiet
            self.spiking = False
        self.minute, self.count = minute, 0

    def dump(self) -> list[Any]:
        return [self.minute, self.count, self.baseline, self.since_minute, self.spiking]

    @classmethod
    def load(cls, raw: list[Any]) -> SpikeDetector:
        return cls(int(raw[0]), int(raw[1]), float(raw[2]), int(raw[3]), bool(raw[4]))
