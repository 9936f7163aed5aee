"""The simulator: one seeded RNG driving the fleet, its traffic, health and changes."""

from __future__ import annotations

import gc
import math
import random
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from shiftright_server.producers.simulator.catalog.shop import TOPOLOGY
from shiftright_server.producers.simulator.changes import ChangeLog
from shiftright_server.producers.simulator.clock import MINUTE_MS, flat, to_ms
from shiftright_server.producers.simulator.clock import diurnal as diurnal_shape
from shiftright_server.producers.simulator.errors import ErrorReporter
from shiftright_server.producers.simulator.fleet import Env
from shiftright_server.producers.simulator.health import HealthReporter
from shiftright_server.producers.simulator.incidents import Incident, activate
from shiftright_server.producers.simulator.population import Population
from shiftright_server.producers.simulator.regimes import Regimes
from shiftright_server.producers.simulator.sampling import spread
from shiftright_server.producers.simulator.stamps import Stamper
from shiftright_server.producers.simulator.usage import RequestTraffic

EVENT_KINDS: tuple[str, ...] = ("usage", "error", "health", "change")
ORIGINS = ("user", "test", "synthetic")
_TS_KEY = itemgetter("ts")


class Simulator:
    """Seeded generator of usage, error, health and change events (see the package docstring).

    ``rate`` is the mean request rate; the diurnal factor puts weekday 15:00 at 1.75x it and
    03:00 at 0.35x; ``diurnal=False`` keeps the rate flat at ``rate`` at every hour (tests and
    load runs whose volume must not depend on the clock). With ``origin="user"`` health-check
    requests are marked ``synthetic``; any other origin (e.g. ``"test"``) marks every event,
    so simulated traffic can be told apart from real traffic downstream.
    """

    def __init__(
        self,
        seed: int = 7,
        rate: float = 1000.0,
        health_interval: float = 10.0,
        incidents: Sequence[Incident] = (),
        origin: str = "user",
        diurnal: bool = True,
    ) -> None:
        _check(rate, health_interval, origin)
        self.rate, self.origin = rate, origin
        shape: Callable[[int], float] = diurnal_shape if diurnal else flat
        # The order of construction is the order of draws from the RNG: keep it.
        self._rng = rng = random.Random(seed)
        self._envs = [Env(app, env, rng) for app in TOPOLOGY for env in TOPOLOGY[app]]
        hosts = [h for e in self._envs for h in e.hosts]
        interval_ms = max(1, round(health_interval * 1000))
        self._incidents = [activate(i, inc) for i, inc in enumerate(incidents)]
        stamper = Stamper(rng)
        population = Population(rng)
        self._errors = ErrorReporter(rng, stamper, population, origin)
        self._usage = RequestTraffic(rng, stamper, population, self._errors, rate, shape, origin)
        self._health = HealthReporter(
            rng, stamper, hosts, interval_ms, rate, shape, self._incidents, origin
        )
        self._changes = ChangeLog(rng, stamper, self._envs, self._incidents, origin)
        self._regimes = Regimes(self._envs, self._incidents)

    def tick(self, start: datetime, seconds: float) -> list[dict[str, Any]]:
        """Every event with ``ts`` in ``[start, start+seconds)``, sorted by ``ts``."""
        lo, hi = to_ms(start), to_ms(start + timedelta(seconds=seconds))
        out: list[dict[str, Any]] = []
        if hi <= lo:
            return out
        changes = self._changes.draw(lo, hi)
        extra = [t for t, _, _ in changes]
        extra.extend(range(lo - lo % MINUTE_MS + MINUTE_MS, hi, MINUTE_MS))  # diurnal steps
        with _gc_paused():
            for a, b in self._pieces(lo, hi, extra):
                self._changes.incident_edges(a, out)
                while changes and changes[0][0] == a:
                    _, env, change_type = changes.pop(0)
                    self._changes.apply(a, env, change_type, out)
                self._usage.traffic(a, b, self._regimes.at(a), out)
                self._health.between(a, b, out)
            out.sort(key=_TS_KEY)
        return out

    def generate(self, kind: str, n: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Exactly ``n`` events of ``kind`` with ``ts`` spread uniformly over ``[start, end)``."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {EVENT_KINDS}")
        lo, hi = to_ms(start), to_ms(end)
        if n < 0 or (n and hi <= lo):
            raise ValueError(f"need n >= 0 and start < end (ms precision), got {n}, {start}, {end}")
        times = spread(self._rng, lo, hi, n) if n else []
        out: list[dict[str, Any]] = []
        with _gc_paused():
            if kind in ("usage", "error"):
                self._generate_requests(kind, times, lo, hi, out)
            elif kind == "health":
                hosts, r = self._health.hosts, self._rng.random
                for ms in times:
                    self._health.report(ms, hosts[int(r() * len(hosts))], out)
            else:
                envs, r = self._envs, self._rng.random
                for ms in times:
                    env = envs[int(r() * len(envs))]
                    self._changes.apply(ms, env, "deploy" if r() < 0.25 else "flag", out)
        return out

    def _generate_requests(
        self, kind: str, times: list[int], lo: int, hi: int, out: list[dict[str, Any]]
    ) -> None:
        """Usage events without their errors, or error events alone, at ``times``."""
        for a, b in self._pieces(lo, hi, ()):
            batch = times[bisect_left(times, a) : bisect_left(times, b)]
            if not batch:
                continue
            if kind == "usage":
                self._usage.requests(batch, self._regimes.at(a), out, with_errors=False)
            else:
                self._errors.errors(batch, self._regimes.at(a), out)

    def _pieces(self, lo: int, hi: int, extra: Sequence[int]) -> list[tuple[int, int]]:
        """``[lo, hi)`` cut at incident edges and ``extra`` times, as consecutive intervals."""
        cuts = {lo, hi, *extra}
        cuts.update(t for a in self._incidents for t in (a.start_ms, a.end_ms) if lo < t < hi)
        edges = sorted(cuts)
        return list(zip(edges, edges[1:], strict=False))


def _check(rate: float, health_interval: float, origin: str) -> None:
    if rate < 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be a finite number >= 0, got {rate!r}")
    if not health_interval > 0:
        raise ValueError(f"health_interval must be > 0 seconds, got {health_interval!r}")
    if origin not in ORIGINS:
        raise ValueError(f"origin must be user, test or synthetic, got {origin!r}")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cycle collector while a batch is built.

    Each event is a fresh, acyclic dict; a batch of 10^5 of them triggers repeated
    collections that free nothing and cost up to half the generation time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
