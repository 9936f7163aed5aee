"""Change events: deploys and feature-flag flips, and the bad deploy behind a usage drop.

Deploys and flips arrive as Poisson processes per env (``DEPLOY_EVERY_S``,
``FLAG_FLIP_EVERY_S``). A ``usage-drop`` incident starts with a deploy of the next patch
release and ends with a rollback to the release it replaced.
"""

from __future__ import annotations

import random
from operator import itemgetter
from typing import Any

from shiftright_server.producers.simulator.catalog.shop import (
    ACTORS,
    DEPLOY_EVERY_S,
    FLAG_FLIP_EVERY_S,
)
from shiftright_server.producers.simulator.fleet import Env, bump
from shiftright_server.producers.simulator.incidents import ActiveIncident
from shiftright_server.producers.simulator.sampling import poisson
from shiftright_server.producers.simulator.stamps import Stamper

#: (ms, env, "deploy" or "flag"): a change due at ms
Change = tuple[int, Env, str]


class ChangeLog:
    """Applies changes to the envs (release, flags) and reports each as an event."""

    def __init__(
        self,
        rng: random.Random,
        stamper: Stamper,
        envs: list[Env],
        incidents: list[ActiveIncident],
        origin: str,
    ) -> None:
        self._rng = rng
        self._stamper = stamper
        self._envs = envs
        self._incidents = incidents
        self._origin = origin
        self._rollback: dict[int, str] = {}  # incident index -> release to roll back to

    def draw(self, lo: int, hi: int) -> list[Change]:
        """Deploys and flag flips falling in ``[lo, hi)``: Poisson counts, uniform times."""
        out = []
        seconds = (hi - lo) / 1000
        for env in self._envs:
            for change_type, every in (
                ("deploy", DEPLOY_EVERY_S[env.env]),
                ("flag", FLAG_FLIP_EVERY_S),
            ):
                for _ in range(poisson(self._rng, seconds / every)):
                    out.append((lo + int(self._rng.random() * (hi - lo)), env, change_type))
        out.sort(key=itemgetter(0))
        return out

    def apply(self, ms: int, env: Env, change_type: str, out: list[dict[str, Any]]) -> None:
        """Deploy the next patch release, or flip one of the env's flags."""
        if change_type == "deploy":
            self._deploy(ms, env, bump(env.latest), out, None, "deploy")
            return
        flag = self._rng.choice(sorted(env.flags))
        before = env.flags[flag]
        env.flags[flag] = not before
        actor = self._rng.choice(ACTORS)
        out.append(
            self._event(
                ms,
                env,
                change_type="flag",
                name=flag,
                value=("off", "on")[not before],
                previous=("off", "on")[before],
                actor=actor,
                description=f"{actor} flipped {flag}",
                tag=None,
            )
        )

    def incident_edges(self, ms: int, out: list[dict[str, Any]]) -> None:
        """A usage drop starts with a bad deploy and ends with its rollback."""
        for act in self._incidents:
            if act.incident.kind != "usage-drop" or ms not in (act.start_ms, act.end_ms):
                continue
            env = next(
                e for e in self._envs if (e.app, e.env) == (act.incident.app, act.incident.env)
            )
            if ms == act.start_ms:
                self._rollback[act.index] = env.release
                self._deploy(ms, env, bump(env.latest), out, "usage-drop", "deploy")
            elif act.index in self._rollback:
                self._deploy(ms, env, self._rollback.pop(act.index), out, "usage-drop", "rollback")

    def _deploy(
        self,
        ms: int,
        env: Env,
        release: str,
        out: list[dict[str, Any]],
        tag: str | None,
        verb: str,
    ) -> None:
        before, env.release = env.release, release
        if verb != "rollback":
            env.latest = release
        out.append(
            self._event(
                ms,
                env,
                change_type="deploy",
                name=release,
                value=release,
                previous=before,
                actor="ci-pipeline",
                description=f"{verb} {env.app} {before} -> {release} to {env.env}",
                tag=tag,
            )
        )

    def _event(
        self,
        ms: int,
        env: Env,
        *,
        change_type: str,
        name: str,
        value: str,
        previous: str,
        actor: str,
        description: str,
        tag: str | None,
    ) -> dict[str, Any]:
        return {
            "event_id": self._stamper.event_id(ms),
            "kind": "change",
            "ts": self._stamper.ts(ms),
            "app": env.app,
            "env": env.env,
            "release": env.release,
            "origin": self._origin,
            "attributes": {"sim.incident": tag} if tag else {},
            "change_type": change_type,
            "name": name,
            "value": value,
            "previous_value": previous,
            "actor": actor,
            "description": description,
        }
