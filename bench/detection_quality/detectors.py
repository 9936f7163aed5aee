"""The detectors compared, each a causal function from a series to one score per row.

* ``seasonal-median``: the reference (:mod:`bench.detection_quality.seasonal_median`):
  hour-of-day median profile, robust level, MAD scale, ``z² / (z² + z_fire²)``;
* ``windowed-gaussian``: the mean and standard deviation of the last 6,400 values; the
  score is the two-sided Gaussian tail of the new value;
* ``rolling-z``: ``|z|`` against the last 50 values (mean and standard deviation);
* ``calibrated``: :class:`shiftright_server.streams.alerting.detector.AnomalyDetector`,
  the stream's detector (anomaly likelihood, one alarm per episode);
* ``calibrated-raw``: the same likelihood before the debounce (every row of an episode
  can alarm), to show what the debounce is worth.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from shiftright_server.streams.alerting.detector import AnomalyDetector, DetectorConfig
from shiftright_server.streams.alerting.likelihood import surprise_of

from bench.detection_quality import seasonal_median
from bench.detection_quality.corpus import Labelled

Detector = Callable[[Labelled], list[float]]


def seasonal_median_scores(s: Labelled) -> list[float]:
    det = seasonal_median.AnomalyDetector(seasonal_median.DetectorConfig())
    return [det.score(t, v) for t, v in zip(s.ts, s.values, strict=True)]


def windowed_gaussian(s: Labelled, size: int = 6400) -> list[float]:
    window: deque[float] = deque()
    total = squares = 0.0
    out = []
    for v in s.values:
        n = len(window)
        if n >= 2:
            mean = total / n
            std = math.sqrt(max(squares / n - mean * mean, 0.0))
            z = abs(v - mean) / std if std > 0 else (0.0 if v == mean else 50.0)
            out.append(_tail_score(z))
        else:
            out.append(0.0)
        window.append(v)
        total += v
        squares += v * v
        if len(window) > size:
            old = window.popleft()
            total -= old
            squares -= old * old
    return out


def _tail_score(z: float) -> float:
    """The two-sided Gaussian tail of ``z`` as a score that does not saturate:
    ``s / (s + 5)`` for ``s = −log10(tail)``."""
    s = surprise_of(z) + math.log10(0.5) if z > 0 else 0.0
    s = max(s, 0.0)
    return s / (s + 5.0)


def rolling_z(s: Labelled, size: int = 50) -> list[float]:
    window: deque[float] = deque(maxlen=size)
    out = []
    for v in s.values:
        if len(window) >= 10:
            mean = sum(window) / len(window)
            std = math.sqrt(sum((x - mean) ** 2 for x in window) / len(window))
            z = abs(v - mean) / std if std > 0 else (0.0 if v == mean else 50.0)
            out.append(z / (z + 3.0))
        else:
            out.append(0.0)
        window.append(v)
    return out


def calibrated(s: Labelled) -> list[float]:
    det = AnomalyDetector(DetectorConfig())
    return [det.score(t, v) for t, v in zip(s.ts, s.values, strict=True)]


def calibrated_raw(s: Labelled) -> list[float]:
    det = AnomalyDetector(DetectorConfig())
    out = []
    for t, v in zip(s.ts, s.values, strict=True):
        det.score(t, v)
        out.append(det.level)
    return out


DETECTORS: dict[str, Detector] = {
    "seasonal-median": seasonal_median_scores,
    "windowed-gaussian": windowed_gaussian,
    "rolling-z": rolling_z,
    "calibrated": calibrated,
    "calibrated-raw": calibrated_raw,
}
