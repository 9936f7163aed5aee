"""Windowed scoring with an early-detection reward, a false-positive penalty and 0/100
normalisation.

A detection is a scored row (past the probation rows) whose score is at or above the
threshold. Per labelled window only the first detection counts: it earns
``A_TP × σ(y)``, where ``y`` is its position relative to the window's end (−1 at the
start, 0 at the end) and ``σ(y) = 2 / (1 + e^{5y}) − 1`` (≈ 0.99 at the start, 0 at the
end); later detections in the same window neither earn nor cost. A detection outside every
window costs ``A_FP``, or ``A_FP × −σ(y)`` after a window, with ``y`` its distance past
that window's end in window lengths (an alarm just after a window is nearly forgiven). A
window with no detection costs ``A_FN``. Summed over the corpus and normalised:
``100 × (S − S_null) / (S_perfect − S_null)``, where the null detector never fires and the
perfect one fires at the start of every window and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.detection_quality.corpus import Labelled


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (
    Profile("standard", 1.0, 0.11, 1.0),
    Profile("low_fp", 1.0, 0.22, 1.0),
    Profile("low_fn", 1.0, 0.11, 2.0),
)


def sigma(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass
class Scored:
    """One series with one detector's scores, prepared for threshold sweeps."""

    series: Labelled
    scores: np.ndarray
    window_of: np.ndarray  # per row: window index, or -1
    reward: np.ndarray  # per row in a window: σ(y)
    fp_cost: np.ndarray  # per row outside windows: 1, or −σ(y) after a window

    @classmethod
    def of(cls, s: Labelled, scores: list[float]) -> Scored:
        n = len(s.values)
        window_of = np.full(n, -1, dtype=np.int64)
        reward = np.zeros(n)
        fp_cost = np.ones(n)
        for k, (lo, hi) in enumerate(s.windows):
            width = hi - lo
            for i in range(lo, hi):
                window_of[i] = k
                reward[i] = sigma((i - hi + 1) / width)
            nxt = s.windows[k + 1][0] if k + 1 < len(s.windows) else n
            for i in range(hi, nxt):
                fp_cost[i] = -sigma((i - hi + 1) / width)
        arr = np.asarray(scores, dtype=float)
        arr[: s.probation] = -np.inf
        return cls(s, arr, window_of, reward, fp_cost)

    def counts(self, threshold: float) -> tuple[float, float, int, list[int]]:
        """(Σ rewards of first detections, Σ false-positive costs, missed windows, index of
        the first detection per window or -1)."""
        hits = np.nonzero(self.scores >= threshold)[0]
        wins = self.window_of[hits]
        inside = hits[wins >= 0]
        first = [-1] * len(self.series.windows)
        for i in inside[::-1]:
            first[self.window_of[i]] = int(i)
        reward = sum(self.reward[i] for i in first if i >= 0)
        fp = float(self.fp_cost[hits[wins < 0]].sum())
        return float(reward), fp, first.count(-1), first

    def alarms(self, threshold: float) -> int:
        return int((self.scores >= threshold).sum())


def raw(profile: Profile, reward: float, fp: float, missed: int) -> float:
    return profile.tp * reward - profile.fp * fp - profile.fn * missed


def bounds(profile: Profile, corpus: list[Scored]) -> tuple[float, float]:
    """(null score, perfect score) of these series."""
    windows = sum(len(s.series.windows) for s in corpus)
    best = sum(sigma(-1.0) for s in corpus for _ in s.series.windows)
    return -profile.fn * windows, profile.tp * best


def normalised(profile: Profile, corpus: list[Scored], threshold: float) -> float:
    total = 0.0
    for s in corpus:
        reward, fp, missed, _ = s.counts(threshold)
        total += raw(profile, reward, fp, missed)
    null, perfect = bounds(profile, corpus)
    return 100.0 * (total - null) / (perfect - null) if perfect > null else 0.0


def candidates(corpus: list[Scored], most: int = 300) -> list[float]:
    """Thresholds worth trying: quantiles of the upper scores, plus one above all."""
    values = np.concatenate([s.scores[np.isfinite(s.scores)] for s in corpus])
    top = np.unique(values[values >= np.quantile(values, 0.5)])
    if len(top) > most:
        top = np.quantile(top, np.linspace(0, 1, most))
    return [*(float(t) for t in top), float(values.max()) + 1.0]


def best_threshold(profile: Profile, corpus: list[Scored]) -> float:
    """The one threshold that scores best on ``corpus`` (the training half)."""
    found = max(candidates(corpus), key=lambda t: normalised(profile, corpus, t))
    return float(found)
