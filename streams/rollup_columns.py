"""A partition's valid events of one batch, as columns, added to its rollup in NumPy.

:class:`PartitionRollup.apply` adds one event at a time and closes buckets after each;
:func:`apply_columns` decides the same for a whole batch at once:

- *late or not*: the watermark before event ``i`` is the running maximum of the event
  times before it (``np.maximum.accumulate``) minus the allowed lateness; the bucket
  closes below it are floored to whole buckets and never below the restored state's. An
  event whose bucket ends at or before that is late, as it is one event at a time (a
  late event never moves the cut, so counting it in the running maximum changes nothing);
- *the aggregates*: counts, first/last times, sums, minimums and maximums per (bucket,
  measure) with ``np.bincount`` / ``np.minimum.at``. Sums add in event order, starting
  from the bucket's saved sum, so they come out bit for bit as one event at a time;
- *closing*: once, with the batch's final watermark. A bucket closed in the middle of
  the batch could take no later event (it would be late), so its rollup is the same.

Signals (finer buckets, see :mod:`streams.rollup`) are added the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from shiftright_server.streams.event_columns import Columns, EventColumns, Ints, Measures
from shiftright_server.streams.rollup import Aggregate, BucketKey, PartitionRollup

__all__ = ["Applied", "EventColumns", "apply_columns"]

#: Below this many events a partition's batch is added one event at a time: the NumPy
#: path costs about 0.3 ms per batch whatever its size (a few dozen calls), one event at a
#: time a few µs per event.
SMALL_BATCH = 48


@dataclass(frozen=True)
class Applied:
    valid: int
    late: int


def apply_columns(state: PartitionRollup, gathered: EventColumns) -> Applied:
    """Add a batch of valid events to ``state`` as :meth:`PartitionRollup.apply` would one
    by one (the caller closes buckets afterwards, with the final watermark)."""
    if not len(gathered):
        return Applied(0, 0)
    if len(gathered) < SMALL_BATCH:
        return _apply_rows(state, gathered)
    cols = gathered.arrays()
    kept = np.flatnonzero(~_late(state, cols.ts))
    if kept.size:
        state.max_ts_ms = max(state.max_ts_ms, int(cols.ts[kept].max()))
        _add(state.buckets, cols, kept, state.bucket_ms)
        if state.signal_ms:
            ts = cols.ts[kept]
            fine = kept[ts - ts % state.signal_ms >= state.signals_closed_ms]
            state.dirty.update(_add(state.signals, cols, fine, state.signal_ms))
    late = len(gathered) - int(kept.size)
    state.late += late
    return Applied(len(gathered), late)


def _apply_rows(state: PartitionRollup, gathered: EventColumns) -> Applied:
    """:func:`apply_columns` one event at a time, for batches too small to pay for the
    NumPy calls: the same watermark before each event (the running maximum of the times
    before it), the same aggregates (:meth:`Aggregate.add`, sums in event order)."""
    size, lateness, fine_ms = state.bucket_ms, state.lateness_ms, state.signal_ms
    seen, late = state.max_ts_ms, 0
    for (app, env, key), ts, measures in gathered.rows():
        watermark = seen - lateness
        closed = max(watermark - watermark % size, state.closed_upto_ms)
        seen = max(seen, ts)
        start = ts - ts % size
        if start + size <= closed:
            late += 1
            continue
        state.max_ts_ms = max(state.max_ts_ms, ts)
        _aggregate(state.buckets, (app, env, key, start)).add(ts, measures)
        if fine_ms and ts - ts % fine_ms >= state.signals_closed_ms:
            fine = (app, env, key, ts - ts % fine_ms)
            _aggregate(state.signals, fine).add(ts, measures)
            state.dirty.add(fine)
    state.late += late
    return Applied(len(gathered), late)


def _aggregate(buckets: dict[BucketKey, Aggregate], key: BucketKey) -> Aggregate:
    agg = buckets.get(key)
    if agg is None:
        agg = buckets[key] = Aggregate()
    return agg


def _late(state: PartitionRollup, ts: Ints) -> npt.NDArray[np.bool_]:
    size, lateness = state.bucket_ms, state.lateness_ms
    seen = np.maximum.accumulate(np.concatenate(([state.max_ts_ms], ts[:-1])))
    watermark = seen - lateness
    closed = np.maximum(watermark - watermark % size, state.closed_upto_ms)
    late: npt.NDArray[np.bool_] = ts - ts % size + size <= closed
    return late


def _add(
    buckets: dict[BucketKey, Aggregate], cols: Columns, rows: Ints, size: int
) -> list[BucketKey]:
    """Add events ``rows`` to ``buckets`` of ``size`` ms; the keys of the buckets touched."""
    if not rows.size:
        return []
    ts = cols.ts[rows]
    starts = ts - ts % size
    low = int(starts.min())
    span = int(starts.max() - low) // size + 1
    codes, first_seen, group = _unique(cols.key_id[rows] * span + (starts - low) // size)
    keys = [_bucket(cols, int(c), span, low, size) for c in codes.tolist()]
    counts = np.bincount(group, minlength=len(keys))
    first = _reduce(np.minimum, group, ts, len(keys), np.iinfo(np.int64).max)
    last = _reduce(np.maximum, group, ts, len(keys), np.iinfo(np.int64).min)
    arrival = np.argsort(first_seen, kind="stable").tolist()  # buckets made in order
    aggs = [buckets.get(k) or Aggregate() for k in keys]
    for g in arrival:
        agg, f, la = aggs[g], int(first[g]), int(last[g])
        agg.first_ms = f if not agg.count or f < agg.first_ms else agg.first_ms
        agg.last_ms = max(agg.last_ms, la)
        agg.count += int(counts[g])
        buckets[keys[g]] = agg
    _add_measures(aggs, cols.measures, rows, group)
    return keys


#: Codes up to this many times the values' count (plus a margin) are told apart by
#: counting (:func:`_unique`); wider ones by sorting.
DENSE_SPAN = 4


def _unique(values: Ints) -> tuple[Ints, Ints, Ints]:
    """``np.unique(values, return_index=True, return_inverse=True)`` for non-negative
    codes: the distinct codes in order, the index of each one's first occurrence and each
    value's code number. Codes in a range about as wide as their count (a batch's buckets
    and measures) are counted (``np.bincount``) instead of sorted, at a fraction of the
    cost; ``tests/unit/test_rollup_columns.py`` holds the two equal."""
    n = values.size
    if not n or int(values.max()) >= DENSE_SPAN * n + 1024:
        return np.unique(values, return_index=True, return_inverse=True)
    uniq = np.flatnonzero(np.bincount(values))
    numbers = np.empty(int(uniq[-1]) + 1, dtype=np.int64)
    numbers[uniq] = np.arange(uniq.size)
    inverse = numbers[values]
    first = np.full(uniq.size, n, dtype=np.int64)
    np.minimum.at(first, inverse, np.arange(n))
    return uniq, first, inverse


def _bucket(cols: Columns, code: int, span: int, low: int, size: int) -> BucketKey:
    app, env, key = cols.keys[code // span]
    return (app, env, key, low + code % span * size)


def _add_measures(aggs: list[Aggregate], measures: Measures, rows: Ints, group: Ints) -> None:
    position = np.full(int(rows.max()) + 1, -1, dtype=np.int64)
    position[rows] = np.arange(rows.size)
    inside = measures.event < position.size
    event = np.full(measures.event.size, -1, dtype=np.int64)
    event[inside] = position[measures.event[inside]]
    taken = np.flatnonzero(event >= 0)
    if not taken.size:
        return
    width = len(measures.names)
    pair = group[event[taken]] * width + measures.name[taken]
    values = measures.value[taken]
    pairs, first_seen, inverse = _unique(pair)
    targets = [(aggs[p // width], measures.names[p % width]) for p in pairs.tolist()]
    sums = _ordered_sums(targets, inverse, values)
    lows = _reduce(np.minimum, inverse, values, len(targets), np.inf)
    highs = _reduce(np.maximum, inverse, values, len(targets), -np.inf)
    for i in np.argsort(first_seen, kind="stable").tolist():  # names in order of arrival
        agg, name = targets[i]
        low, high = float(lows[i]), float(highs[i])
        if name in agg.sums:
            low, high = min(agg.mins[name], low), max(agg.maxs[name], high)
        agg.sums[name], agg.mins[name], agg.maxs[name] = float(sums[i]), low, high


def _ordered_sums(
    targets: list[tuple[Aggregate, str]], inverse: Ints, values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per target, its saved sum (if any) plus its values in event order: ``bincount``
    adds in array order, so the saved sums go first."""
    saved = [(i, agg.sums[name]) for i, (agg, name) in enumerate(targets) if name in agg.sums]
    order = np.concatenate((np.asarray([i for i, _ in saved], dtype=np.int64), inverse))
    weights = np.concatenate((np.asarray([s for _, s in saved], dtype=np.float64), values))
    sums = np.bincount(order, weights=weights, minlength=len(targets))
    return sums.astype(np.float64, copy=False)  # (weighted counts are float64 already)


def _reduce(
    op: np.ufunc, group: Ints, values: npt.NDArray[np.generic], n: int, start: float
) -> npt.NDArray[np.generic]:
    out = np.full(n, start, dtype=values.dtype)
    op.at(out, group, values)
    return out
