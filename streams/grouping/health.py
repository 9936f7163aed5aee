"""The health of an error's host at the moment it was thrown.

:class:`HealthCache` keeps, per ``(app, env, host)``, the snapshots of the last couple of
minutes (not only the latest: health and errors arrive on different topics, so a later
snapshot may already be in when an earlier error is processed). :meth:`HealthCache.lookup`
answers "the latest snapshot taken within 60 s before the error" and its age.

:class:`HealthJoin` adds the timing: an error waits until its host's health has reached
the error's time (then the answer is final: health of one host arrives in order), or
until the error stream itself is ``max_wait_ms`` past the error (the host reports late
or not at all). With health on time the result equals the ASOF JOIN of the warehouse
view ``errors_with_health``, whatever the interleaving of the two topics.

Co-partitioning: health is keyed ``app|env|host`` but errors ``app|env|exception_type``,
so the two meet in one worker only after errors are re-keyed by host
(``schemas.topics.ERRORS_BY_HOST``, same partition count as the health topic).
"""

from __future__ import annotations

import json
from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from schemas.events import ErrorEvent, HealthEvent

WINDOW_MS = 60_000
HostKey = tuple[str, str, str]  # app, env, host


def _ms(event: ErrorEvent | HealthEvent) -> int:
    return int(event.ts.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Snapshot:
    ts_ms: int
    metrics: dict[str, float]
    instance: str = ""


@dataclass(frozen=True, slots=True)
class Attached:
    """An error and the snapshot found for it (None when there is none within the window)."""

    error: ErrorEvent
    snapshot: Snapshot | None
    age_ms: int | None


@dataclass
class HealthCache:
    window_ms: int = WINDOW_MS
    # Errors may lag their host's health by up to keep_ms - window (2 min) and still be matched.
    keep_ms: int = 3 * WINDOW_MS
    hosts: dict[HostKey, list[tuple[int, dict[str, float], str]]] = field(default_factory=dict)

    def add(self, event: HealthEvent) -> None:
        series = self.hosts.setdefault((event.app, event.env, event.host), [])
        entry = (_ms(event), dict(event.metrics), event.instance)
        if series and series[-1][0] <= entry[0]:
            series.append(entry)
        else:
            insort(series, entry, key=lambda e: e[0])
        cut = series[-1][0] - self.keep_ms
        while len(series) > 1 and series[0][0] < cut:
            series.pop(0)

    def latest_ms(self, key: HostKey) -> int | None:
        series = self.hosts.get(key)
        return series[-1][0] if series else None

    def lookup(self, app: str, env: str, host: str, ts_ms: int) -> tuple[Snapshot, int] | None:
        """The latest snapshot at or before ``ts_ms`` and no more than the window older."""
        for when, metrics, instance in reversed(self.hosts.get((app, env, host), ())):
            if when <= ts_ms:
                age = ts_ms - when
                return (Snapshot(when, metrics, instance), age) if age <= self.window_ms else None
        return None

    def attach(self, error: ErrorEvent) -> Attached:
        found = self.lookup(error.app, error.env, error.host, _ms(error))
        return Attached(error, *found) if found else Attached(error, None, None)


@dataclass
class HealthJoin:
    """Errors held until their host's health is known up to their time (see module doc).

    Held errors are indexed by host, so a snapshot only looks at its own host's errors;
    the wait is measured in error event time (the highest error ``ts`` seen), never on a
    wall clock. Past ``max_held`` held errors everything held is released (a safety valve
    for a health topic that stopped entirely).
    """

    cache: HealthCache = field(default_factory=HealthCache)
    max_wait_ms: int = 15_000
    max_held: int = 50_000
    held: dict[HostKey, list[ErrorEvent]] = field(default_factory=dict)
    max_error_ms: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # source topic -> last offset applied
    _oldest_ms: int | None = None
    _count: int = 0

    def __post_init__(self) -> None:
        self._recount()

    def seen(self, topic: str, offset: int) -> bool:
        """True when this topic's record at ``offset`` was applied before (skip on replay)."""
        return offset <= self.offsets.get(topic, -1)

    def add_health(self, event: HealthEvent, topic: str = "", offset: int = -1) -> list[Attached]:
        """Cache a snapshot; the held errors of its host it completes."""
        self._advance(topic, offset)
        self.cache.add(event)
        key = (event.app, event.env, event.host)
        waiting = self.held.get(key)
        latest = self.cache.latest_ms(key)
        if not waiting or latest is None:
            return []
        ready = [e for e in waiting if _ms(e) <= latest]
        if not ready:
            return []
        self.held[key] = [e for e in waiting if _ms(e) > latest]
        self._count -= len(ready)
        return [self.cache.attach(e) for e in ready]

    def add_error(self, event: ErrorEvent, topic: str = "", offset: int = -1) -> list[Attached]:
        """Hold an error; the errors now ready (this one first when its host is current)."""
        self._advance(topic, offset)
        ts = _ms(event)
        self.max_error_ms = max(self.max_error_ms, ts)
        key = (event.app, event.env, event.host)
        latest = self.cache.latest_ms(key)
        out = []
        if latest is not None and latest >= ts:
            out.append(self.cache.attach(event))
        else:
            self.held.setdefault(key, []).append(event)
            self._count += 1
            self._oldest_ms = ts if self._oldest_ms is None else min(self._oldest_ms, ts)
        overdue = (
            self._oldest_ms is not None and self.max_error_ms - self._oldest_ms >= self.max_wait_ms
        )
        if overdue or self._count > self.max_held:
            out += self._expire(everything=self._count > self.max_held)
        return out

    def flush(self) -> list[Attached]:
        """Release everything held, with what is known now (e.g. at shutdown)."""
        return self._expire(everything=True)

    def _advance(self, topic: str, offset: int) -> None:
        if topic:
            self.offsets[topic] = max(self.offsets.get(topic, -1), offset)

    def _expire(self, everything: bool) -> list[Attached]:
        cut = self.max_error_ms - self.max_wait_ms
        out = []
        for key in sorted(self.held):
            keep = []
            for error in self.held[key]:
                (out if everything or _ms(error) <= cut else keep).append(error)
            self.held[key] = keep
        self._recount()
        out.sort(key=lambda e: (e.ts, str(e.event_id)))
        return [self.cache.attach(e) for e in out]

    def _recount(self) -> None:
        self.held = {k: v for k, v in self.held.items() if v}
        self._count = sum(len(v) for v in self.held.values())
        times = [_ms(e) for v in self.held.values() for e in v]
        self._oldest_ms = min(times) if times else None

    def dumps(self) -> bytes:
        state: dict[str, Any] = {
            "window_ms": self.cache.window_ms,
            "keep_ms": self.cache.keep_ms,
            "hosts": [[list(k), v] for k, v in self.cache.hosts.items()],
            "max_wait_ms": self.max_wait_ms,
            "max_held": self.max_held,
            "held": [
                [list(k), [e.model_dump(mode="json") for e in v]] for k, v in self.held.items()
            ],
            "max_error_ms": self.max_error_ms,
            "offsets": self.offsets,
        }
        return json.dumps(state, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> HealthJoin:
        s = json.loads(raw)
        hosts = {tuple(k): [(e[0], e[1], e[2]) for e in v] for k, v in s["hosts"]}
        cache = HealthCache(s["window_ms"], s["keep_ms"], hosts)  # type: ignore[arg-type]
        held = {tuple(k): [ErrorEvent.model_validate(e) for e in v] for k, v in s["held"]}
        return cls(cache, s["max_wait_ms"], s["max_held"], held, s["max_error_ms"], s["offsets"])  # type: ignore[arg-type]
