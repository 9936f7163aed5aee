"""The health of an error's host at the moment it was thrown.

:class:`HealthCache` keeps, per ``(app, env, host)``, the snapshots of the last couple of
minutes (not only the latest: health and errors arrive on different topics, so a later
snapshot may already be in when an earlier error is processed). :meth:`HealthCache.lookup`
answers "the latest snapshot taken within 60 s before the error" and its age. An error
with none before it (a crash at start-up, before the host's first report) gets the
host's first snapshot taken within ``after_ms`` (10 s, the SDK's health interval) after
it, marked ``after_error``: the host's state just after the crash.

:class:`HealthJoin` adds the timing: an error waits until its host's health has reached
the error's time (then the answer is final: health of one host arrives in order), or
until the error stream itself is ``max_wait_ms`` past the error (the host reports late
or not at all). With health on time the result equals the ASOF JOIN of the warehouse
view ``errors_with_health``, whatever the interleaving of the two topics, for hosts that
report at most once a second (more often, the cache samples: ``min_spacing_ms``).

Co-partitioning: health is keyed ``app|env|host`` but errors ``app|env|exception_type``,
so the two meet in one worker only after errors are re-keyed by host
(``schemas.topics.ERRORS_BY_HOST``, same partition count as the health topic).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import orjson
from shiftright_server.schemas.events import ErrorEvent, HealthEvent
from shiftright_server.schemas.fast_events import Accepted, FastHealth

WINDOW_MS = 60_000
HostKey = tuple[str, str, str]  # app, env, host
Position = tuple[int, int]  # offset, index of the event within a batch message


def _ms(event: ErrorEvent | HealthEvent) -> int:
    return int(event.ts.timestamp() * 1000)


class Reading(NamedTuple):
    """What the join keeps of a health event (read by the models or on the fast path)."""

    app: str
    env: str
    host: str
    instance: str
    ts_ms: int
    metrics: dict[str, float]

    @classmethod
    def of(cls, event: HealthEvent) -> Reading:
        return cls(event.app, event.env, event.host, event.instance, _ms(event), event.metrics)

    @classmethod
    def fast(cls, accepted: Accepted) -> Reading:
        """A health event the fast path accepted: the values the models would give."""
        e = cast(FastHealth, accepted.event)  # (accepted as a health event)
        return cls(e.app, e.env, e.host, e.instance, accepted.ts_ms, e.metrics)


class Snapshot(NamedTuple):
    ts_ms: int
    metrics: dict[str, float]
    instance: str = ""


@dataclass(frozen=True, slots=True)
class Attached:
    """An error and the snapshot found for it (None when there is none within the window),
    with the error's position (offset, index) in its source partition. ``age_ms`` is the
    distance between the two; ``after_error``: the snapshot was taken after the error."""

    error: ErrorEvent
    snapshot: Snapshot | None
    age_ms: int | None
    offset: int = -1
    index: int = 0
    after_error: bool = False


def _when(entry: tuple[int, dict[str, float], str]) -> int:
    return entry[0]


def _after(series: list[tuple[int, dict[str, float], str]], ts_ms: int) -> int:
    """``bisect_right(series, ts_ms, key=_when)``: where the entries after ``ts_ms`` start.
    Errors mostly fall between a host's last two snapshots, so those are tried first."""
    n = len(series)
    if series[-1][0] <= ts_ms:
        return n
    if n > 1 and series[-2][0] <= ts_ms:
        return n - 1
    return bisect_right(series, ts_ms, key=_when)


@dataclass
class HealthCache:
    window_ms: int = WINDOW_MS
    # Errors may lag their host's health by up to keep_ms - window (2 min) and still be matched.
    keep_ms: int = 3 * WINDOW_MS
    hosts: dict[HostKey, list[tuple[int, dict[str, float], str]]] = field(default_factory=dict)
    # When the error stream runs behind health (a backlog: errors take one more hop than
    # health), snapshots are kept back to where the errors are, up to this far.
    horizon_ms: int = 15 * WINDOW_MS
    # A host reporting more often than this is sampled: a snapshot this close after the
    # host's previous one is not kept (its error then gets the previous one, at most this
    # much older). Keeps memory and the saved state bounded by hosts, not by report rate.
    min_spacing_ms: int = 1000
    #: How long after an error a snapshot may be taken and still be its health, when the
    #: host has none before the error.
    after_ms: int = 10_000
    #: Hosts whose series changed since :meth:`take_changed` (saved per host).
    changed: set[HostKey] = field(default_factory=set, compare=False, repr=False)

    def add(self, event: HealthEvent | Reading, errors_ms: int | None = None) -> None:
        """Cache a snapshot. ``errors_ms``: how far the errors have come (event time); what
        they may still need is kept (within ``horizon_ms`` of the host's latest)."""
        if isinstance(event, HealthEvent):
            event = Reading.of(event)
        key = (event.app, event.env, event.host)
        series = self.hosts.setdefault(key, [])
        ts = event.ts_ms
        if series and 0 <= ts - series[-1][0] < self.min_spacing_ms:
            return
        entry = (ts, dict(event.metrics), event.instance)
        if not series or series[-1][0] <= ts:
            series.append(entry)
        else:
            at = bisect_right(series, ts, key=_when)
            if at and ts - series[at - 1][0] < self.min_spacing_ms:
                return
            series.insert(at, entry)
        self.changed.add(key)  # only when a snapshot was kept: a sampled one writes nothing
        latest = series[-1][0]
        cut = latest - self.keep_ms
        if errors_ms is not None:
            cut = max(min(cut, errors_ms - self.keep_ms), latest - self.horizon_ms)
        drop = bisect_left(series, cut, key=_when)
        if drop:
            del series[: min(drop, len(series) - 1)]

    def take_changed(self) -> list[tuple[HostKey, bytes]]:
        """Each changed host's series as a record :meth:`restore_host` reads; forgets that
        they changed. Saving a cache host by host keeps every record small however many
        hosts a partition has, and writes only the hosts that reported."""
        out = [
            (key, orjson.dumps({"host": key, "series": self.hosts[key]}))
            for key in sorted(self.changed)
            if key in self.hosts
        ]
        self.changed.clear()
        return out

    def restore_host(self, raw: bytes) -> None:
        saved = orjson.loads(raw)
        key = (saved["host"][0], saved["host"][1], saved["host"][2])
        self.hosts[key] = [(e[0], e[1], e[2]) for e in saved["series"]]

    def latest_ms(self, key: HostKey) -> int | None:
        series = self.hosts.get(key)
        return series[-1][0] if series else None

    def lookup(self, app: str, env: str, host: str, ts_ms: int) -> tuple[Snapshot, int] | None:
        """The latest snapshot at or before ``ts_ms`` and no more than the window older."""
        series = self.hosts.get((app, env, host))
        if not series:
            return None
        at = _after(series, ts_ms)
        if not at:
            return None
        when, metrics, instance = series[at - 1]
        age = ts_ms - when
        return (Snapshot(when, metrics, instance), age) if age <= self.window_ms else None

    def lookup_after(
        self, app: str, env: str, host: str, ts_ms: int
    ) -> tuple[Snapshot, int] | None:
        """The first snapshot after ``ts_ms`` and no more than ``after_ms`` later."""
        series = self.hosts.get((app, env, host))
        if not series:
            return None
        at = _after(series, ts_ms)
        if at == len(series):
            return None
        when, metrics, instance = series[at]
        later = when - ts_ms
        return (Snapshot(when, metrics, instance), later) if later <= self.after_ms else None

    def attach(
        self, error: ErrorEvent, ts: int | None = None, position: Position = (-1, 0)
    ) -> Attached:
        """The error's snapshot; ``ts``: the error's time in ms, if known; ``position``:
        the error's (offset, index) in its source partition."""
        key, ts = (error.app, error.env, error.host), _ms(error) if ts is None else ts
        offset, index = position
        found = self.lookup(*key, ts)
        if found:
            return Attached(error, found[0], found[1], offset, index)
        after = self.lookup_after(*key, ts)
        if after:
            return Attached(error, after[0], after[1], offset, index, True)
        return Attached(error, None, None, offset, index)


@dataclass
class HealthJoin:
    """Errors held until their host's health is known up to their time (see module doc).

    Errors leave in the order they came (a prefix of the held queue), so the output is an
    ordered function of the input: an error waits for the ones before it. An error is
    ready when its host's health has reached its time; or when the partition's health has
    gone ``grace_ms`` past it (its host is silent or late, and others report); or when the
    errors themselves have gone ``max_wait_ms`` past it (no health flows at all). All of
    these are event time, never a wall clock. Past ``max_held`` held errors the oldest
    leave without waiting.
    """

    cache: HealthCache = field(default_factory=HealthCache)
    max_wait_ms: int = 15_000
    max_held: int = 50_000
    #: (position, error, the error's time in ms)
    held: deque[tuple[Position, ErrorEvent, int]] = field(default_factory=deque)
    max_error_ms: int = 0
    positions: dict[str, Position] = field(default_factory=dict)  # topic -> last applied
    grace_ms: int = 10_000
    max_health_ms: int = 0
    #: Held errors not yet sent for counting (held in a state saved before errors were
    #: sent at once): they, and errors behind them, are sent when released, in order.
    unannounced: set[Position] = field(default_factory=set)
    #: Held errors as saved (their JSON), made once per error: a held error is saved
    #: with every batch until it leaves, and serialising it was most of a save's work.
    _saved: dict[Position, orjson.Fragment] = field(default_factory=dict, compare=False)

    def seen(self, topic: str, offset: int, index: int = 0) -> bool:
        """True when this topic's event at (offset, index) was applied (skip on replay)."""
        return (offset, index) <= self.positions.get(topic, (-1, 0))

    def add_health(
        self, event: HealthEvent | Reading, topic: str = "", offset: int = -1, index: int = 0
    ) -> list[Attached]:
        """Cache a snapshot; the held errors now ready."""
        if isinstance(event, HealthEvent):
            event = Reading.of(event)
        self._advance(topic, (offset, index))
        errors_ms = min(self.max_error_ms, self.held[0][2]) if self.held else self.max_error_ms
        self.cache.add(event, errors_ms)
        self.max_health_ms = max(self.max_health_ms, event.ts_ms)
        return self._release()

    def add_healths(
        self, readings: list[tuple[int, Reading]], topic: str, offset: int
    ) -> list[Attached]:
        """:meth:`add_health` for each (index, reading) of the message at ``offset`` of
        ``topic`` (indices ascending) not applied before; the held errors they release,
        in order. Each reading releases what it makes ready before the next is cached, as
        one :meth:`add_health` call each would."""
        last = self.positions.get(topic, (-1, 0))
        cache, held, out = self.cache, self.held, []
        applied = None
        for index, reading in readings:
            if (offset, index) <= last:
                continue
            applied = index
            if held:
                cache.add(reading, min(self.max_error_ms, held[0][2]))
            else:
                cache.add(reading, self.max_error_ms)
            if reading.ts_ms > self.max_health_ms:
                self.max_health_ms = reading.ts_ms
            if held:
                out += self._release()
        if applied is not None and topic:
            self.positions[topic] = (offset, applied)
        return out

    def add_error(
        self, event: ErrorEvent, topic: str = "", offset: int = -1, index: int = 0
    ) -> list[Attached]:
        """Queue an error; the errors now ready (this one too when its host is current and
        nothing before it waits)."""
        self._advance(topic, (offset, index))
        ts = _ms(event)
        self.max_error_ms = max(self.max_error_ms, ts)
        self.held.append(((offset, index), event, ts))
        return self._release()

    def flush(self) -> list[Attached]:
        """Release everything held, with what is known now (e.g. at shutdown)."""
        out = [self._attach(p, e, ts) for p, e, ts in self.held]
        self.held.clear()
        return out

    def _advance(self, topic: str, position: Position) -> None:
        if topic:
            self.positions[topic] = max(self.positions.get(topic, (-1, 0)), position)

    def _release(self) -> list[Attached]:
        out = []
        held = self.held
        while held and (len(held) > self.max_held or self._ready(held[0][1], held[0][2])):
            position, error, ts = held.popleft()
            out.append(self._attach(position, error, ts))
        return out

    def _ready(self, error: ErrorEvent, ts: int) -> bool:
        latest = self.cache.latest_ms((error.app, error.env, error.host))
        return (
            (latest is not None and latest >= ts)
            or self.max_health_ms - ts >= self.grace_ms
            or self.max_error_ms - ts >= self.max_wait_ms
        )

    def _attach(self, position: Position, error: ErrorEvent, ts: int) -> Attached:
        return self.cache.attach(error, ts, position)

    def dumps(self) -> bytes:
        return orjson.dumps(self.state())

    def state(self, hosts: bool = True) -> dict[str, Any]:
        """What :meth:`loads` (and :meth:`from_state`) restore, for ``orjson.dumps`` (held
        errors are JSON already: ``orjson.Fragment``). Without
        ``hosts`` the cache's series are left out: they are saved host by host
        (:meth:`HealthCache.take_changed`)."""
        return {
            "window_ms": self.cache.window_ms,
            "keep_ms": self.cache.keep_ms,
            "horizon_ms": self.cache.horizon_ms,
            **({"hosts": [[list(k), v] for k, v in self.cache.hosts.items()]} if hosts else {}),
            "max_wait_ms": self.max_wait_ms,
            "max_held": self.max_held,
            "held": self._held_saved(),
            "max_error_ms": self.max_error_ms,
            "positions": {t: list(p) for t, p in self.positions.items()},
            "grace_ms": self.grace_ms,
            "max_health_ms": self.max_health_ms,
            "min_spacing_ms": self.cache.min_spacing_ms,
            "unannounced": sorted(list(p) for p in self.unannounced),
        }

    def _held_saved(self) -> list[list[Any]]:
        before, self._saved, out = self._saved, {}, []
        for p, e, _ in self.held:
            saved = before.get(p)
            if saved is None:
                saved = orjson.Fragment(e.model_dump_json())
            self._saved[p] = saved
            out.append([list(p), saved])
        return out

    @classmethod
    def loads(cls, raw: bytes) -> HealthJoin:
        return cls.from_state(orjson.loads(raw))

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> HealthJoin:
        hosts = {(k[0], k[1], k[2]): [(e[0], e[1], e[2]) for e in v] for k, v in s.get("hosts", ())}
        horizon = s.get("horizon_ms", 15 * WINDOW_MS)  # states saved before it existed
        cache = HealthCache(
            s["window_ms"], s["keep_ms"], hosts, horizon, s.get("min_spacing_ms", 1000)
        )
        cache.changed.update(hosts)  # a state saved whole: the next save writes them per host
        errors = ((tuple(p), ErrorEvent.model_validate(e)) for p, e in s["held"])
        held = deque((p, e, _ms(e)) for p, e in errors)
        positions = {t: (p[0], p[1]) for t, p in s["positions"].items()}
        # A state without the key was saved when errors were sent only once released.
        late = s.get("unannounced", [p for p, _, _ in held])
        return cls(
            cache,
            s["max_wait_ms"],
            s["max_held"],
            held,
            s["max_error_ms"],
            positions,
            s["grace_ms"],
            s["max_health_ms"],
            {(p[0], p[1]) for p in late},
        )
