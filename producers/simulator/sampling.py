"""Random draws the simulator shares: weighted pools, spreads, counts and walks."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import accumulate
from typing import TypeVar

T = TypeVar("T")

POOL_BITS = 12  # weighted pools of 4096 entries, indexed by getrandbits
NORMAL_BITS = 16  # pre-drawn standard normals
SLOT_BITS = 6  # host/instance pools: 64 entries


def weighted_pool(items: Sequence[T], weights: Sequence[float], bits: int) -> list[T]:
    """2**bits entries, each item repeated in proportion to its weight (stratified)."""
    cum = list(accumulate(weights))
    size = 1 << bits
    step = cum[-1] / size
    pool: list[T] = []
    j = 0
    for i in range(size):
        while cum[j] <= (i + 0.5) * step:
            j += 1
        pool.append(items[j])
    return pool


def spread(rng: random.Random, lo: int, hi: int, n: int) -> list[int]:
    """``n`` sorted uniform times in ``[lo, hi)``: one per equal slice, so no sort needed."""
    r, step = rng.random, (hi - lo) / n
    times = [lo + int((i + r()) * step) for i in range(n)]
    for i in range(n - 1, -1, -1):  # float rounding can land the last ones on hi
        if times[i] < hi:
            break
        times[i] = hi - 1
    return times


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count with mean ``lam`` (normal approximation above 30)."""
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def walk(rng: random.Random, x: float, step: float, lo: float, hi: float) -> float:
    """One step of a random walk reflected into ``[lo, hi]``."""
    x += rng.gauss(0.0, step)
    if x < lo:
        x = 2 * lo - x
    if x > hi:
        x = 2 * hi - x
    return min(hi, max(lo, x))
