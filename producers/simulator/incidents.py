"""Scheduled incidents: what they are, how the CLI spells them, and their defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shiftright_server.producers.simulator.catalog.features import FEATURES
from shiftright_server.producers.simulator.catalog.shop import TOPOLOGY
from shiftright_server.producers.simulator.clock import to_ms
from shiftright_server.producers.simulator.fleet import sites

INCIDENT_KINDS: tuple[str, ...] = ("error-spike", "cpu-saturation", "usage-drop", "latency-jump")

#: kind -> app -> the target when none is given (cpu-saturation: the env's first host)
DEFAULT_TARGET: dict[str, dict[str, str]] = {
    "error-spike": {"checkout": "checkout-e09", "catalog": "catalog-e09"},
    "usage-drop": {"checkout": "cart.add", "catalog": "search.query"},
    "latency-jump": {"checkout": "cart.view", "catalog": "product.view"},
}


@dataclass(frozen=True)
class Incident:
    """A scheduled disturbance in event time; ``target`` is a feature, site id or host."""

    kind: str
    start: datetime
    duration: timedelta
    app: str = "checkout"
    env: str = "prod"
    target: str | None = None


@dataclass(frozen=True)
class ActiveIncident:
    """An incident with its target resolved and its span in epoch milliseconds."""

    index: int  # position in the simulator's incident list
    incident: Incident
    start_ms: int
    end_ms: int


def activate(index: int, inc: Incident) -> ActiveIncident:
    """``inc`` checked and resolved; ValueError when it cannot apply."""
    target = resolve_target(inc.kind, inc.app, inc.env, inc.target)
    start = to_ms(inc.start)
    return ActiveIncident(
        index,
        replace(inc, target=target),
        start,
        start + max(0, round(inc.duration.total_seconds() * 1000)),
    )


def resolve_target(kind: str, app: str, env: str, target: str | None) -> str:
    """The incident's target, defaulted and checked; ValueError naming what is wrong."""
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {kind!r}; expected one of {INCIDENT_KINDS}")
    if app not in TOPOLOGY:
        raise ValueError(f"unknown app {app!r}; expected one of {tuple(TOPOLOGY)}")
    if env not in TOPOLOGY[app]:
        raise ValueError(f"unknown env {env!r} for {app}; expected one of {tuple(TOPOLOGY[app])}")
    if kind == "cpu-saturation":
        choices = [f"{app}-{env}-{i}" for i in range(1, TOPOLOGY[app][env].hosts + 1)]
        target = target or choices[0]
    elif kind == "error-spike":
        by_type = {s.type: s.id for s in sites(app)}
        target = by_type.get(target or "", target) or DEFAULT_TARGET[kind][app]
        choices = list(by_type.values())
    else:
        choices = [f.name for f in FEATURES[app]]
        target = target or DEFAULT_TARGET[kind][app]
    if target not in choices:
        raise ValueError(f"unknown {kind} target {target!r} for {app}/{env}; one of {choices}")
    return target


def parse_incident(text: str, now: datetime) -> Incident:
    """Parse ``KIND@START/DURATION[:APP[/ENV[/TARGET]]]``, e.g. ``error-spike@+60s/120s``.

    START is an offset from ``now`` (``+60s``, ``-5m``, ``0``); spans take ms, s, m or h.
    """
    text = text.strip()
    kind, at, rest = text.partition("@")
    if not at:
        raise ValueError(f"bad incident {text!r}: expected KIND@START/DURATION[:APP/ENV/TARGET]")
    if kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {kind!r}; expected one of {INCIDENT_KINDS}")
    timing, _, scope = rest.partition(":")
    start, slash, length = timing.partition("/")
    if not slash:
        raise ValueError(f"bad incident {text!r}: missing /DURATION after the start offset")
    offset = _parse_span(start, "start offset", signed=True)
    duration = _parse_span(length, "duration", signed=False)
    parts = scope.split("/", 2) if scope else []
    app = parts[0] if parts else "checkout"
    env = parts[1] if len(parts) > 1 else "prod"
    target = resolve_target(kind, app, env, parts[2] if len(parts) > 2 else None)
    return Incident(
        kind, now + timedelta(seconds=offset), timedelta(seconds=duration), app, env, target
    )


def _parse_span(text: str, what: str, signed: bool) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    unit = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), "")
    try:
        value = float(text[: len(text) - len(unit)]) * units.get(unit, 1.0)
    except ValueError:
        raise ValueError(f"bad {what} {text!r}: expected a number with unit ms/s/m/h") from None
    if not math.isfinite(value):
        raise ValueError(f"bad {what} {text!r}: must be finite")
    if not signed and (value <= 0 or text[:1] == "+"):
        raise ValueError(f"bad {what} {text!r}: must be a positive span without sign")
    return value
