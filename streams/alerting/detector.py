"""A streaming anomaly detector whose score means the same on every series.

Three layers, each using only the past (a point is scored, then learnt):

1. :class:`~shiftright_server.streams.alerting.robust_model.RobustModel` predicts the
   value (a robust level plus daily and weekly profiles) and gives a raw score in
   [0, 1): the deviation in robust scale units, a stuck value, a gap in the timestamps.
2. :class:`~shiftright_server.streams.alerting.likelihood.Likelihood` turns raw scores
   into a *surprise*: −log10 of the tail probability of the latest raw score, and of the
   mean of the last ten, under the distribution of this series' own raw scores. A series
   whose raw scores are always high (heavy tails, sparse counts) is not news; the same
   surprise is equally rare on any series.
3. One alarm per episode: a surprise is reported only when it exceeds the decaying
   envelope of the surprises before it — by an order of magnitude, or a quarter more,
   once the envelope holds anything rarer than 10⁻² — or is the first to reach the
   firing point. An anomaly that persists or slowly worsens alarms once; the next alarm
   needs the score to have been down for a while, or a much rarer event.

``score = surprise / (surprise + fire)``, where ``fire`` comes from the sensitivity
(``−log10`` of the tail probability that alarms: 10⁻⁵ at 0.5, 10⁻² at 1, 10⁻⁸ at 0), so
0.5 is the firing point at any sensitivity. :attr:`AnomalyDetector.level` is the same
mapping before the debounce (how anomalous the series is now, for holding an alert).
Warm-up: 0 for the first ``warmup`` points. Minimum volume: 0 while the point's volume
(and, when the value is itself a volume, the expected value) is below it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.streams.alerting.likelihood import Likelihood
from shiftright_server.streams.alerting.robust_model import RobustModel

_ENVELOPE_DECAY = 0.97  # per point: an alarm's surprise stops shadowing after ~40 points
_ALARM_MARGIN = 1.0  # orders of magnitude a new alarm must add while the last is recent
_ALARM_GROWTH = 0.25  # ... or this share of the last one, whichever is more
_NOTABLE = 2.0  # envelope (a 10⁻² surprise) from which the margin applies


@dataclass(frozen=True)
class DetectorConfig:
    direction: str = "both"  # up, down, both
    sensitivity: float = 0.5  # 0 (only huge deviations) … 1 (small ones)
    min_volume: float = 0.0
    warmup: int = 30
    #: the value is itself the volume (a count; any CSV): the guard also looks at the
    #: expected value, so a drop from busy to nothing still counts; otherwise (latency,
    #: CPU …) the guard looks at the point's volume only
    value_is_volume: bool = True

    def fire_surprise(self) -> float:
        """−log10 of the tail probability that scores 0.5."""
        return 2.0 + 6.0 * (1.0 - self.sensitivity)


@dataclass
class AnomalyDetector:
    config: DetectorConfig = field(default_factory=DetectorConfig)
    model: RobustModel = field(default_factory=RobustModel)
    likelihood: Likelihood = field(default_factory=Likelihood)
    seen: int = 0
    envelope: float = 0.0  # decaying peak of past surprises
    level: float = 0.0  # the latest score before the debounce

    def score(self, ts_ms: int, value: float, volume: float | None = None) -> float:
        """Score ``value`` at ``ts_ms`` against the past, then learn it. In [0, 1].
        A value that is not a finite number scores 0 and is not learnt."""
        if not math.isfinite(value):
            return 0.0
        cfg = self.config
        raw = self.model.observe(ts_ms, value, cfg.direction)
        surprise = max(self.likelihood.observe(raw), self.model.stuck)
        self.seen += 1
        if self.seen <= cfg.warmup or self._guarded(value, volume):
            surprise = 0.0
        fire = cfg.fire_surprise()
        self.level = surprise / (surprise + fire)
        return self._debounce(surprise, fire)

    def _guarded(self, value: float, volume: float | None) -> bool:
        cfg = self.config
        if cfg.min_volume <= 0:
            return False
        seen = value if volume is None else volume
        if cfg.value_is_volume:
            seen = max(seen, self.model.expected_before)
        return seen < cfg.min_volume

    def _debounce(self, surprise: float, fire: float) -> float:
        """The score if the surprise tops the envelope of earlier ones (by a margin once
        the envelope is notable) or is the first to reach the firing point; else 0."""
        envelope = self.envelope
        bar = envelope
        if envelope >= _NOTABLE:
            bar += max(_ALARM_MARGIN, _ALARM_GROWTH * envelope)
        self.envelope = max(surprise, envelope * _ENVELOPE_DECAY)
        if surprise > bar or envelope < fire <= surprise:
            return surprise / (surprise + fire)
        return 0.0

    # -- persistence ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "model": self.model.to_state(),
            "likelihood": self.likelihood.to_state(),
            "seen": self.seen,
            "envelope": self.envelope,
            "level": self.level,
        }

    @classmethod
    def from_state(cls, config: DetectorConfig, s: dict[str, Any]) -> AnomalyDetector:
        return cls(
            config,
            RobustModel.from_state(s["model"]),
            Likelihood.from_state(s["likelihood"]),
            s["seen"],
            s["envelope"],
            s["level"],
        )

    def dumps(self) -> bytes:
        return json.dumps(self.to_state(), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, config: DetectorConfig, raw: bytes) -> AnomalyDetector:
        return cls.from_state(config, json.loads(raw))
