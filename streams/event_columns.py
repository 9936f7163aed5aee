"""The valid events of one partition in a batch, gathered as columns for the rollup.

Per event: its rollup key (as a small integer), its event time in ms, and its measures
(what :func:`streams.rollup.measures_of` gives). A usage event's measures are kept as
three plain columns (status, duration, value) and turned into measure entries in NumPy;
other events' measures (health metrics; events the models read) are kept as entries
(event, name, value) as they come.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import numpy.typing as npt
from shiftright_server.schemas.events import UsageEvent, rollup_key
from shiftright_server.schemas.fast_events import LAX_DECODERS, FastEvent, FastHealth, FastUsage
from shiftright_server.schemas.validation import AnyEvent
from shiftright_server.streams.rollup import measures_of

Key = tuple[str, str, str]  # app, env, rollup key
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
_USAGE_NAMES = ("duration_ms", "value", "failures")  # measures_of's order
#: The classes of usage events: the mirror's (read line by line) and its lax form's (read
#: whole, :mod:`schemas.fast_lines`); no other class derives from them.
_USAGE_TYPES = frozenset({FastUsage, LAX_DECODERS["usage"].type})
_HEALTH_TYPES = frozenset({FastHealth, LAX_DECODERS["health"].type})


class Measures(NamedTuple):
    """Measure entries in event order: event number, name id, value; ``names[id]``."""

    event: Ints
    name: Ints
    value: Floats
    names: list[str]


@dataclass(frozen=True)
class Columns:
    """:class:`EventColumns` as arrays."""

    keys: list[Key]
    key_id: Ints
    ts: Ints
    measures: Measures


class EventColumns:
    """Gathers valid events of one partition, in offset order."""

    def __init__(self) -> None:
        self._index: dict[Key, int] = {}
        self._key_id: list[int] = []
        self._ts: list[int] = []
        self._status: list[int] = []  # -1: not a usage event
        self._duration: list[float | None] = []
        self._value: list[float | None] = []
        self._m_event: list[int] = []
        self._m_name: list[str] = []
        self._m_value: list[float] = []

    def __len__(self) -> int:
        return len(self._ts)

    def add_fast(self, event: FastEvent, key: str, ts_ms: int) -> None:
        """An event read on the fast path; ``key`` is its rollup key."""
        if isinstance(event, FastUsage):
            self._usage(event.app, event.env, key, ts_ms, event)
        else:
            metrics = event.metrics if isinstance(event, FastHealth) else {}
            self._other((event.app, event.env, key), ts_ms, metrics)

    def add_message(self, events: Sequence[FastEvent], field: str, ts_ms: Sequence[int]) -> None:
        """A message's events read on the fast path, ``field`` their rollup key's field:
        usage events, and health events, gathered a column at a time (one call per event
        cost more than the gathering)."""
        types = set(map(type, events))
        if types <= _USAGE_TYPES:
            usage = cast(Sequence[FastUsage], events)
            self._keys(usage, field)
            self._ts.extend(ts_ms)
            self._status.extend([e.status_code for e in usage])
            self._duration.extend([e.duration_ms for e in usage])
            self._value.extend([e.value for e in usage])
        elif types <= _HEALTH_TYPES:
            health = cast(Sequence[FastHealth], events)
            first, count = len(self._ts), len(health)
            self._keys(health, field)
            self._ts.extend(ts_ms)
            self._status.extend([-1] * count)
            self._duration.extend([None] * count)
            self._value.extend([None] * count)
            m_event, m_name, m_value = self._m_event, self._m_name, self._m_value
            for n, metrics in enumerate([e.metrics for e in health], first):
                m_event.extend([n] * len(metrics))
                m_name.extend(metrics)
                m_value.extend(metrics.values())
        else:
            for event, ts in zip(events, ts_ms, strict=True):
                self.add_fast(event, getattr(event, field), ts)

    def _keys(self, events: Sequence[FastUsage] | Sequence[FastHealth], field: str) -> None:
        """Each event's key id (a new key gets the next one)."""
        index, ids = self._index, self._key_id
        for e in events:
            key = (e.app, e.env, getattr(e, field))
            kid = index.get(key)
            if kid is None:
                kid = index[key] = len(index)
            ids.append(kid)

    def add_model(self, event: AnyEvent, ts_ms: int) -> None:
        """An event the models read."""
        if isinstance(event, UsageEvent):
            self._usage(event.app, event.env, event.name, ts_ms, event)
        else:
            self._other((event.app, event.env, rollup_key(event)), ts_ms, measures_of(event))

    def _usage(self, app: str, env: str, key: str, ts_ms: int, e: FastUsage | UsageEvent) -> None:
        self._start((app, env, key), ts_ms)
        self._status.append(e.status_code)
        self._duration.append(e.duration_ms)
        self._value.append(e.value)

    def _other(self, key: Key, ts_ms: int, measures: dict[str, float]) -> None:
        n = self._start(key, ts_ms)
        self._status.append(-1)
        self._duration.append(None)
        self._value.append(None)
        self._m_event.extend([n] * len(measures))
        self._m_name.extend(measures)
        self._m_value.extend(measures.values())

    def _start(self, key: Key, ts_ms: int) -> int:
        kid = self._index.get(key)
        if kid is None:
            kid = self._index[key] = len(self._index)
        self._key_id.append(kid)
        self._ts.append(ts_ms)
        return len(self._ts) - 1

    def rows(self) -> Iterator[tuple[Key, int, dict[str, float]]]:
        """Each event's key, time and measures (as ``measures_of`` gives them), in order."""
        keys, m_event, m = list(self._index), self._m_event, 0
        for i, (kid, ts, status) in enumerate(
            zip(self._key_id, self._ts, self._status, strict=True)
        ):
            measures: dict[str, float] = {}
            if status >= 0:
                duration, value = self._duration[i], self._value[i]
                if duration is not None:
                    measures["duration_ms"] = float(duration)
                if value is not None:
                    measures["value"] = float(value)
                measures["failures"] = 1.0 if status >= 500 else 0.0
            while m < len(m_event) and m_event[m] == i:
                measures[self._m_name[m]] = float(self._m_value[m])
                m += 1
            yield keys[kid], ts, measures

    def arrays(self) -> Columns:
        return Columns(
            list(self._index),
            np.asarray(self._key_id, dtype=np.int64),
            np.asarray(self._ts, dtype=np.int64),
            self._measures(),
        )

    def _measures(self) -> Measures:
        status = np.asarray(self._status, dtype=np.int64)
        usage = status >= 0
        names = list(_USAGE_NAMES)
        parts = [(np.asarray(self._m_event, dtype=np.int64), self._other_names(names))]
        values = [np.asarray(self._m_value, dtype=np.float64)]
        slots = [np.arange(len(self._m_event), dtype=np.int64)]  # order within an event
        for slot, column in enumerate((self._duration, self._value)):
            given = np.asarray(column, dtype=np.float64)  # None: NaN (JSON has no NaN)
            rows = np.flatnonzero(usage & ~np.isnan(given))
            parts.append((rows, np.full(rows.size, slot, dtype=np.int64)))
            values.append(given[rows])
            slots.append(np.full(rows.size, slot - 3, dtype=np.int64))
        rows = np.flatnonzero(usage)
        parts.append((rows, np.full(rows.size, 2, dtype=np.int64)))
        values.append((status[rows] >= 500).astype(np.float64))
        slots.append(np.full(rows.size, -1, dtype=np.int64))
        event = np.concatenate([p[0] for p in parts])
        order = np.lexsort((np.concatenate(slots), event))
        name = np.concatenate([p[1] for p in parts])
        return Measures(event[order], name[order], np.concatenate(values)[order], names)

    def _other_names(self, names: list[str]) -> Ints:
        names[:] = dict.fromkeys([*names, *self._m_name])  # new names in order of arrival
        ids = {n: i for i, n in enumerate(names)}
        return np.fromiter(map(ids.__getitem__, self._m_name), np.int64, len(self._m_name))
