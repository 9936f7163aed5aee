"""Error events: the site's exception, its frames and traceback text, and the request it hit.

Every error names its code site in ``attributes["sim.site"]``. Sites that call through a
wrapped library report the app's generic ``<app>.api.errors.UpstreamError`` raised ``from``
the real error, which travels as the root cause in ``attributes["exception.chain"]`` (JSON,
nearest cause first).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from shiftright_server.producers.simulator.catalog.error_sites import WRAPPER_MESSAGE
from shiftright_server.producers.simulator.fleet import Env, Site, line_shift
from shiftright_server.producers.simulator.placeholders import fill
from shiftright_server.producers.simulator.population import USER_BITS, Population
from shiftright_server.producers.simulator.regimes import Regime
from shiftright_server.producers.simulator.sampling import POOL_BITS, SLOT_BITS
from shiftright_server.producers.simulator.stamps import Stamper

Frames = tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The request an error happened in."""

    host: str
    instance: str
    session_id: str
    user_id: str
    customer_id: str
    origin: str
    route: str


class ErrorReporter:
    """Builds error events; caches each site's frames and traceback per release."""

    def __init__(
        self, rng: random.Random, stamper: Stamper, population: Population, origin: str
    ) -> None:
        self._rng = rng
        self._stamper = stamper
        self._population = population
        self._origin = origin
        self._traces: dict[tuple[str, str], tuple[Frames, str]] = {}

    def errors(self, times: list[int], regime: Regime, out: list[dict[str, Any]]) -> None:
        """One error event per time, without the request that raised it."""
        rng, people = self._rng, self._population
        for ms in times:
            er = regime.error_envs[rng.getrandbits(POOL_BITS)]
            site, stag = er.sites[rng.getrandbits(POOL_BITS)]
            host, inst, _, htag = er.slots[rng.getrandbits(SLOT_BITS)]
            feat = er.features[rng.getrandbits(POOL_BITS)][0]
            u = people.user_pool[rng.getrandbits(USER_BITS)]
            sid = people.session_id[u] or f"{rng.getrandbits(64):016x}"
            context = RequestContext(
                host=host.name,
                instance=inst,
                session_id=sid,
                user_id=people.users[u],
                customer_id=people.customer_of[u],
                origin=self._origin,
                route=feat.route,
            )
            out.append(self.event(ms, er.env, site, stag or htag, context))

    def event(
        self, ms: int, env: Env, site: Site, tag: str | None, context: RequestContext
    ) -> dict[str, Any]:
        """The error event of ``site`` raised at ``ms`` in ``context``."""
        frames, prefix = self._trace(site, env.release)
        message = fill(site.template, site.fields, self._rng)
        attributes = {"sim.site": site.id}
        if tag:
            attributes["sim.incident"] = tag
        etype, text = site.type, f"{prefix}{site.type}: {message}"
        if site.wrapped:
            etype, frames, text = _wrap(site, env, message, frames, text, attributes)
            message = WRAPPER_MESSAGE
        return {
            "event_id": self._stamper.event_id(ms),
            "kind": "error",
            "ts": self._stamper.ts(ms),
            "app": env.app,
            "env": env.env,
            "release": env.release,
            "host": context.host,
            "instance": context.instance,
            "session_id": context.session_id,
            "user_id": context.user_id,
            "customer_id": context.customer_id,
            "origin": context.origin,
            "attributes": attributes,
            "exception_type": etype,
            "exception_message": message,
            "stacktrace": text,
            "frames": [dict(f) for f in frames],
            "handled": site.handled,
            "level": "warning" if site.handled else "error",
            "route": context.route,
        }

    def _trace(self, site: Site, release: str) -> tuple[Frames, str]:
        """Frames and traceback text of a site as built in ``release`` (lines shift a little)."""
        cached = self._traces.get((site.id, release))
        if cached is None:
            frames, lines = [], ["Traceback (most recent call last):\n"]
            for f in site.frames:
                lineno = f.lineno + line_shift(f.filename, release) if f.in_app else f.lineno
                frames.append(
                    {
                        "module": f.module,
                        "function": f.function,
                        "filename": f.filename,
                        "lineno": lineno,
                        "in_app": f.in_app,
                    }
                )
                lines.append(
                    f'  File "{f.filename}", line {lineno}, in {f.function}\n    {f.code}\n'
                )
            cached = self._traces[(site.id, release)] = (tuple(frames), "".join(lines))
        return cached


def _wrap(
    site: Site,
    env: Env,
    message: str,
    frames: Frames,
    text: str,
    attributes: dict[str, str],
) -> tuple[str, Frames, str]:
    """The app's UpstreamError raised from the site's error: type, frames, traceback."""
    wrapper = f"{env.app}.api.errors.UpstreamError"
    cause = {"type": site.type, "message": message, "frames": frames, "relation": "cause"}
    attributes["exception.chain"] = json.dumps([cause], separators=(",", ":"))
    # Re-raised in the handler (the first in-app frame), so the outer stack ends there.
    outer = frames[: next(i for i, f in enumerate(frames) if f["in_app"]) + 1]
    lines = "".join(
        f'  File "{f["filename"]}", line {f["lineno"]}, in {f["function"]}\n    '
        + ("raise UpstreamError(MESSAGE) from exc" if f["in_app"] else "...")
        + "\n"
        for f in outer
    )
    text = (
        f"{text}\n\nThe above exception was the direct cause of the following exception:"
        f"\n\nTraceback (most recent call last):\n{lines}{wrapper}: {WRAPPER_MESSAGE}"
    )
    return wrapper, outer, text
