"""Usage traffic and sessions: requests at the shaped rate, and the errors some of them raise.

The request loop is the hot path: it builds plain dicts from pre-built pools (features,
users, pre-drawn normals, status codes) and cuts ids and timestamps from cached text; no
model is constructed. It is one function on purpose: calls per event cost more than the
event's own work.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from shiftright_server.producers.simulator.errors import ErrorReporter, RequestContext
from shiftright_server.producers.simulator.population import USER_BITS, Population
from shiftright_server.producers.simulator.regimes import Regime
from shiftright_server.producers.simulator.sampling import NORMAL_BITS, POOL_BITS, SLOT_BITS, spread
from shiftright_server.producers.simulator.stamps import HEX_VARIANT, MS_SUFFIX, UUID_LOW, Stamper


class RequestTraffic:
    """Usage events at ``rate`` per second times the traffic shape, with their errors."""

    def __init__(
        self,
        rng: random.Random,
        stamper: Stamper,
        population: Population,
        errors: ErrorReporter,
        rate: float,
        shape: Callable[[int], float],
        origin: str,
    ) -> None:
        self._rng = rng
        self._stamper = stamper
        self._population = population
        self._errors = errors
        self._rate = rate
        self._shape = shape
        self._origin = origin
        self._normals = [rng.gauss(0.0, 1.0) for _ in range(1 << NORMAL_BITS)]
        self._carry = 0.0  # the fraction of a request owed from the previous interval

    def traffic(self, lo: int, hi: int, regime: Regime, out: list[dict[str, Any]]) -> None:
        """The requests (and their errors) of ``[lo, hi)``, an interval with one regime."""
        mid = (lo + hi) // 2
        expected = self._rate * self._shape(mid) * regime.volume * (hi - lo) / 1000 + self._carry
        n = int(expected)
        self._carry = expected - n
        if n:
            self.requests(spread(self._rng, lo, hi, n), regime, out, True)

    def requests(
        self, times: list[int], regime: Regime, out: list[dict[str, Any]], with_errors: bool
    ) -> None:
        """One usage event per time (plus an error event when a request fails)."""
        rng = self._rng
        r, bits = rng.random, rng.getrandbits
        exp = math.exp
        people = self._population
        normals, user_pool, users = self._normals, people.user_pool, people.users
        customer_of, sess_end, sess_id = people.customer_of, people.session_end, people.session_id
        envs, origin, user_origin = regime.envs, self._origin, self._origin
        synthetic_origin = "synthetic" if origin == "user" else origin
        append, variant, low, suffix = out.append, HEX_VARIANT, UUID_LOW, MS_SUFFIX
        hexes, k = rng.randbytes(10 * len(times)).hex(), 0
        sec, sec_text, high, high_text = -1, "", -1, ""
        for ms in times:
            if ms // 1000 != sec:
                sec_text, sec = self._stamper.ts(ms)[:-4], ms // 1000
            if ms >> 16 != high:
                high = ms >> 16
                high_text = f"{high:08x}-"
            er = envs[bits(POOL_BITS)]
            env = er.env
            feat, flat, ftag = er.features[bits(POOL_BITS)]
            host, inst, hlat, htag = er.slots[bits(SLOT_BITS)]
            if feat.synthetic:
                uid = cid = sid = ""
                origin = synthetic_origin
            else:
                u = user_pool[bits(USER_BITS)]
                uid, cid = users[u], customer_of[u]
                if ms >= sess_end[u] or ms < sess_end[u] - 5_000_000:
                    sess_end[u] = ms + 300_000 + bits(22)
                    sess_id[u] = f"{bits(64):016x}"
                sid = sess_id[u]
                origin = user_origin
            dur = exp(feat.mu + feat.sigma * normals[bits(NORMAL_BITS)]) * flat * hlat
            tag = ftag or htag
            status = feat.statuses[bits(7)]
            failed = r() < er.p_err
            if failed:
                site, stag = er.sites[bits(POOL_BITS)]
                status = site.status
            h = hexes[k : k + 20]
            k += 20
            event = {
                "event_id": f"{high_text}{low[ms & 0xFFFF]}{h[:3]}-{variant[h[3]]}{h[4:7]}-{h[7:19]}",
                "kind": "usage",
                "ts": sec_text + suffix[ms % 1000],
                "app": env.app,
                "env": env.env,
                "release": env.release,
                "host": host.name,
                "instance": inst,
                "session_id": sid,
                "user_id": uid,
                "customer_id": cid,
                "origin": origin,
                "attributes": {"sim.incident": tag} if tag else {},
                "name": feat.name,
                "route": feat.route,
                "method": feat.method,
                "status_code": status,
                "duration_ms": int(dur * 100 + 0.5) / 100,
            }
            if feat.value_median and status < 400:
                event["value"] = round(feat.value_median * exp(0.8 * normals[bits(NORMAL_BITS)]), 2)
            append(event)
            if failed and with_errors:
                context = RequestContext(
                    host=host.name,
                    instance=inst,
                    session_id=sid,
                    user_id=uid,
                    customer_id=cid,
                    origin=origin,
                    route=feat.route,
                )
                append(self._errors.event(ms, env, site, stag or htag, context))
