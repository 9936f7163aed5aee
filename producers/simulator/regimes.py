"""Traffic shaping under incidents: the weighted tables requests are drawn from.

A regime is the set of tables in force while one set of incidents is active: which env,
feature, host instance and error site a request lands on, with the latency multipliers and
incident labels that go with them. Regimes are built on first use and cached by the set of
active incidents; building one draws nothing from the RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

from shiftright_server.producers.simulator.fleet import Env, Feature, Host, Site
from shiftright_server.producers.simulator.incidents import ActiveIncident, Incident
from shiftright_server.producers.simulator.sampling import POOL_BITS, SLOT_BITS, weighted_pool


@dataclass(frozen=True)
class EnvRegime:
    """One env's traffic tables while a given set of incidents is active."""

    env: Env
    features: list[tuple[Feature, float, str | None]]  # pool: feature, latency x, incident
    slots: list[tuple[Host, str, float, str | None]]  # host, instance, latency x, incident
    sites: list[tuple[Site, str | None]]  # pool
    p_err: float


@dataclass(frozen=True)
class Regime:
    envs: list[EnvRegime]  # pool weighted by request traffic
    error_envs: list[EnvRegime]  # pool weighted by error traffic
    volume: float  # request traffic relative to no incident


class Regimes:
    """The regime in force at any moment, for a fixed schedule of incidents."""

    def __init__(self, envs: list[Env], incidents: list[ActiveIncident]) -> None:
        self._envs = envs
        self._incidents = incidents
        self._cache: dict[tuple[int, ...], Regime] = {}

    def at(self, ms: int) -> Regime:
        key = tuple(a.index for a in self._incidents if a.start_ms <= ms < a.end_ms)
        regime = self._cache.get(key)
        if regime is None:
            regime = self._cache[key] = self._build([self._incidents[i] for i in key])
        return regime

    def _build(self, active: list[ActiveIncident]) -> Regime:
        env_regimes, volumes = [], []
        for env in self._envs:
            mine = [
                a.incident for a in active if (a.incident.app, a.incident.env) == (env.app, env.env)
            ]
            er, volume = _env_regime(env, mine)
            env_regimes.append(er)
            volumes.append(env.share * volume)
        errors = [v * er.p_err for v, er in zip(volumes, env_regimes, strict=True)]
        return Regime(
            envs=weighted_pool(env_regimes, volumes, POOL_BITS),
            error_envs=weighted_pool(env_regimes, errors, POOL_BITS),
            volume=sum(volumes) / sum(e.share for e in self._envs),
        )


def _env_regime(env: Env, incidents: list[Incident]) -> tuple[EnvRegime, float]:
    """One env's tables under its incidents, and its request volume relative to none."""
    feats = env.features
    fweight = [f.weight for f in feats]
    flat: list[float] = [1.0] * len(feats)
    ftag: list[str | None] = [None] * len(feats)
    sweight = [s.weight for s in env.sites]
    stag: list[str | None] = [None] * len(env.sites)
    saturated = {i.target for i in incidents if i.kind == "cpu-saturation"}
    for inc in incidents:
        if inc.kind == "error-spike":
            i = next(k for k, s in enumerate(env.sites) if s.id == inc.target)
            sweight[i] *= 30
            stag[i] = inc.kind
        elif inc.kind != "cpu-saturation":  # saturation acts per host, below
            i = next(k for k, f in enumerate(feats) if f.name == inc.target)
            if inc.kind == "usage-drop":
                fweight[i] *= 0.002
            else:
                flat[i] *= 5.0
            ftag[i] = inc.kind
    base_sites = sum(s.weight for s in env.sites)
    regime = EnvRegime(
        env=env,
        features=weighted_pool(list(zip(feats, flat, ftag, strict=True)), fweight, POOL_BITS),
        slots=_slots(env, saturated),
        sites=weighted_pool(list(zip(env.sites, stag, strict=True)), sweight, POOL_BITS),
        p_err=env.p_err * sum(sweight) / base_sites,
    )
    return regime, sum(fweight) / sum(f.weight for f in feats)


def _slots(env: Env, saturated: set[str | None]) -> list[tuple[Host, str, float, str | None]]:
    """Every worker instance equally likely; a saturated host's requests run 3x slower."""
    slots: list[tuple[Host, str, float, str | None]] = [
        (h, inst, 3.0, "cpu-saturation") if h.name in saturated else (h, inst, 1.0, None)
        for h in env.hosts
        for inst in h.instances
    ]
    return weighted_pool(slots, [1.0] * len(slots), SLOT_BITS)
