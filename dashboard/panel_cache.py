"""The shared panel-result cache: everyone watching the same page asks the warehouse once.

Contract:

- *Key*: the exact SQL, its parameters and the caller's permission scope
  (:func:`scope_of`): a share link's visitor never gets an answer read for a team member
  or another link, and the reverse.
- *Fresh*: an answer is served for ``cache_seconds`` after its query *started* (so what a
  panel shows is never older than that, plus the page's own poll interval); ranges are
  whole minutes (:mod:`.timerange`), so every page asking for ``range=1h`` within a minute
  sends the same SQL and parameters.
- *Single flight*: while a query runs, the same query from other requests waits for it
  and takes its answer (``coalesced``) instead of sending its own.
- *Failures are not kept*: :class:`~.warehouse.WarehouseDown` or a refused query reaches
  the requests that shared its flight and nothing is stored; the next request asks the
  warehouse again (the banner appears and goes by itself).
- *Bounded*: at most ``cache_entries`` answers and ``cache_megabytes`` of them (an
  estimate of their size in memory); the least recently used go first, expired ones
  before them. An answer bigger than an eighth of the budget is never kept.
- *Writes through the dashboard* (resolving a group, applying rules, flipping a flag …)
  empty it (:meth:`PanelCache.clear`), so the page that follows an action reads anew;
  a query in flight across the clear is answered but not kept.

Answers are shared between requests: each gets its own list of rows, but the values in
them (maps, arrays) are the same objects, which pages read and never change.

Only reads bound to a scope go through it (:meth:`CachingReader.for_scope`, which every
page's reader is); the SQL console, which sets its own limits, and the list of apps and
environments, which has its own cache, bypass it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from shiftright_server.dashboard.warehouse import Reader, Result, record_timing

Clock = Callable[[], float]


@dataclass
class CacheStats:
    """Counters since the dashboard started (``GET /api/panel-cache``)."""

    hits: int = 0  # answered from a kept answer
    misses: int = 0  # sent to the warehouse
    coalesced: int = 0  # waited for the same query already in flight
    failures: int = 0  # flights that failed (nothing kept)
    evictions: int = 0  # kept answers dropped for room (expired ones not counted)
    entries: int = 0
    bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class _Entry:
    value: Any
    size: int
    expires: float


@dataclass
class _Flight:
    generation: int
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class PanelCache:
    """Answers by key for ``ttl_s`` seconds, one flight per key, LRU within bounds."""

    def __init__(
        self, ttl_s: float, max_entries: int, max_bytes: int, clock: Clock = time.monotonic
    ) -> None:
        self.ttl_s, self.max_entries, self.max_bytes = ttl_s, max_entries, max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._generation = 0
        self._stats = CacheStats()

    def get(
        self, key: Hashable, fetch: Callable[[], Any], size: Callable[[Any], int]
    ) -> tuple[Any, str]:
        """The answer for ``key`` and how it was found: ``hit``, ``coalesced`` or ``miss``
        (``fetch`` ran in this thread). ``fetch``'s exception reaches every sharer."""
        with self._lock:
            found = self._fresh(key)
            if found is not None:
                self._stats.hits += 1
                return found.value, "hit"
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight(self._generation)
                self._stats.misses += 1
            else:
                self._stats.coalesced += 1
        if not leader:
            return self._follow(flight), "coalesced"
        return self._lead(key, flight, fetch, size), "miss"

    def clear(self) -> None:
        """Forget every answer; flights under way are answered but not kept, and reads
        from now on do not join them."""
        with self._lock:
            self._generation += 1
            self._flights.clear()
            self._entries.clear()
            self._stats.bytes = self._stats.entries = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._stats.as_dict())

    def _fresh(self, key: Hashable) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires:
            self._forget(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _follow(self, flight: _Flight) -> Any:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value

    def _lead(
        self,
        key: Hashable,
        flight: _Flight,
        fetch: Callable[[], Any],
        size: Callable[[Any], int],
    ) -> Any:
        expires = self._clock() + self.ttl_s  # counted from the query's start
        try:
            value = fetch()
            nbytes = size(value)
        except BaseException as exc:
            with self._lock:
                self._land(key, flight)
                self._stats.failures += 1
            flight.error = exc
            flight.done.set()
            raise
        with self._lock:
            self._land(key, flight)
            if flight.generation == self._generation and nbytes <= self.max_bytes // 8:
                self._keep(key, _Entry(value, nbytes, expires))
        flight.value = value
        flight.done.set()
        return value

    def _land(self, key: Hashable, flight: _Flight) -> None:
        if self._flights.get(key) is flight:  # not when a clear let a newer one start
            del self._flights[key]

    def _keep(self, key: Hashable, entry: _Entry) -> None:
        if key in self._entries:
            self._forget(key)
        self._entries[key] = entry
        self._stats.entries += 1
        self._stats.bytes += entry.size
        now = self._clock()
        for old in [k for k, e in self._entries.items() if e.expires <= now]:
            self._forget(old)
        while self._stats.entries > self.max_entries or self._stats.bytes > self.max_bytes:
            self._forget(next(iter(self._entries)))
            self._stats.evictions += 1

    def _forget(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._stats.entries -= 1
        self._stats.bytes -= entry.size


def estimated_bytes(result: Result) -> int:
    """About what an answer holds in memory: a row tuple, its values and their contents."""
    return 64 * len(result.columns) + sum(56 + 8 * len(r) + _values(r) for r in result.rows)


def _values(values: Any) -> int:
    total = 0
    for v in values:
        if isinstance(v, str | bytes):
            total += 49 + len(v)
        elif isinstance(v, list | tuple):
            total += 56 + 8 * len(v) + _values(v)
        elif isinstance(v, dict):
            total += 232 + 100 * len(v) + _values(v.keys()) + _values(v.values())
        else:
            total += 32
    return total


def scope_of(visitor: Any) -> str:
    """The permission scope a visitor reads under: a share link's own (its id, apps, envs
    and pages) or, for people and API tokens, their role. Answers are never shared across
    scopes."""
    link = getattr(visitor, "link", None)
    if link is not None:
        return f"link:{link.id}:{','.join(link.apps)}:{','.join(link.envs)}:{','.join(link.pages)}"
    return f"{getattr(visitor, 'kind', '')}:{getattr(visitor, 'role', '')}"


class CachingReader:
    """The app's reader: reads pass through to ``inner``; :meth:`for_scope` gives the
    reader a page uses, whose reads go through the shared :class:`PanelCache`."""

    def __init__(self, inner: Reader, cache: PanelCache) -> None:
        self.inner, self.cache = inner, cache
        self.url = inner.url

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        return self.inner.query(sql, params, settings)

    def for_scope(self, scope: str) -> Reader:
        return _ScopedReader(self, scope)

    def close(self) -> None:
        self.inner.close()


class _ScopedReader:
    def __init__(self, owner: CachingReader, scope: str) -> None:
        self._owner, self._scope = owner, scope
        self.url = owner.url

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        if settings:  # a read with its own limits is its own
            return self._owner.query(sql, params, settings)
        key = (self._scope, sql, _frozen(params))
        began = time.perf_counter()
        result, how = self._owner.cache.get(
            key, lambda: self._owner.inner.query(sql, params), estimated_bytes
        )
        if how != "miss":  # the warehouse reader timed a miss itself
            record_timing(sql, (time.perf_counter() - began) * 1000, how)
        answer: Result = result
        return Result(answer.columns, list(answer.rows), answer.elapsed_ms)

    def close(self) -> None:
        """The inner reader belongs to the app."""


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return (type(value).__name__, tuple(_frozen(v) for v in items))
    return (type(value).__name__, value)


def scoped(reader: Reader, visitor: Any) -> Reader:
    """The reader a page of this visitor uses: through the cache when the app has one."""
    if isinstance(reader, CachingReader):
        return reader.for_scope(scope_of(visitor))
    return reader


def clear_cache(reader: Reader) -> None:
    """Empty the app's panel cache, if it has one (after a write through the dashboard)."""
    if isinstance(reader, CachingReader):
        reader.cache.clear()


def cache_report(reader: Reader) -> dict[str, Any]:
    """The panel cache's settings and counters (``enabled`` false when it is off)."""
    if not isinstance(reader, CachingReader):
        return {"enabled": False}
    cache = reader.cache
    limits = {"ttl_seconds": cache.ttl_s, "max_entries": cache.max_entries}
    return {"enabled": True, **limits, "max_bytes": cache.max_bytes, **cache.stats().as_dict()}
