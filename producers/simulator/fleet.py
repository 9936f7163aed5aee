"""The catalog made runnable: each app in each env with its hosts, endpoints and error sites.

Built once per :class:`~.engine.Simulator`; environments and hosts keep the state that
drifts as traffic runs (the release deployed, flag values, host metric walks).
"""

from __future__ import annotations

import math
import random
import string
import zlib
from dataclasses import dataclass

from shiftright_server.producers.simulator.catalog.error_sites import ERROR_SITES, ZIPF_S
from shiftright_server.producers.simulator.catalog.features import FAIL_STATUS, FEATURES, OK_STATUS
from shiftright_server.producers.simulator.catalog.libraries import (
    FRAMEWORK,
    LIBRARIES,
    WRAPPED_LIBRARIES,
    Frame,
)
from shiftright_server.producers.simulator.catalog.shop import ERROR_RATE, FLAGS, TOPOLOGY

SYNTHETIC_FEATURE = "health.check"  # requests made by probes, not by users


@dataclass(frozen=True)
class Feature:
    """An endpoint ready for the request loop."""

    name: str
    route: str
    method: str
    weight: float
    mu: float  # log of the median latency in ms
    sigma: float
    statuses: tuple[int, ...]  # 128 entries: the share of 4xx among them is the spec's
    value_median: float
    synthetic: bool


@dataclass(frozen=True)
class Site:
    """An error site of one app, with the frames it raises through."""

    id: str
    type: str
    weight: float
    template: str
    fields: tuple[str, ...]  # the template's placeholders
    frames: tuple[Frame, ...]  # outermost first
    status: int
    handled: bool
    wrapped: bool = False  # reported as UpstreamError raised from this site's error


def features(app: str) -> tuple[Feature, ...]:
    """The app's endpoints from the catalog."""
    out = []
    for spec in FEATURES[app]:
        fails = FAIL_STATUS[spec.method]
        n_fail = round(spec.client_error_share * 128)
        statuses = tuple(fails[i % len(fails)] for i in range(n_fail))
        statuses += (OK_STATUS[spec.method],) * (128 - n_fail)
        out.append(
            Feature(
                name=spec.name,
                route=spec.route,
                method=spec.method,
                weight=spec.popularity,
                mu=math.log(spec.median_ms),
                sigma=spec.sigma,
                statuses=statuses,
                value_median=spec.order_value,
                synthetic=spec.name == SYNTHETIC_FEATURE,
            )
        )
    return tuple(out)


def sites(app: str) -> tuple[Site, ...]:
    """The app's error sites from the catalog, ids ``<app>-e01`` … in rank order."""
    out = []
    for rank, spec in enumerate(ERROR_SITES, 1):
        site_id = f"{app}-e{rank:02d}"
        out.append(
            Site(
                id=site_id,
                type=spec.type,
                weight=rank**-ZIPF_S,
                template=spec.message,
                fields=tuple(f for _, f, _, _ in string.Formatter().parse(spec.message) if f),
                frames=_site_frames(app, site_id, spec.module, spec.function, spec.code)
                + LIBRARIES[spec.library],
                status=spec.status,
                handled=spec.handled,
                wrapped=spec.library in WRAPPED_LIBRARIES,
            )
        )
    return tuple(out)


def _site_frames(
    app: str, site_id: str, module: str, function: str, code: str
) -> tuple[Frame, ...]:
    """Framework and app frames down to the raising line; their shape is stable per site."""
    shape = zlib.crc32(site_id.encode())
    path = f"/srv/{app}/{app}/"
    frames = list(FRAMEWORK[-(1 + shape % 2) :])
    frames.append(
        Frame(
            module=f"{app}.api.handlers",
            function="dispatch",
            filename=path + "api/handlers.py",
            lineno=42,
            code="return await endpoint(request, **params)",
            in_app=True,
        )
    )
    if shape & 4:
        frames.append(
            Frame(
                module=f"{app}.services.workflow",
                function="run_step",
                filename=path + "services/workflow.py",
                lineno=117,
                code="return step.run(ctx)",
                in_app=True,
            )
        )
    frames.append(
        Frame(
            module=f"{app}.{module}",
            function=function,
            filename=path + module.replace(".", "/") + ".py",
            lineno=20 + shape % 300,
            code=code,
            in_app=True,
        )
    )
    return tuple(frames)


def line_shift(filename: str, release: str) -> int:
    """How far a file's lines moved in a release: stable per (file, release), often zero."""
    h = zlib.crc32(f"{filename}@{release}".encode())
    return 0 if h % 3 == 0 else h % 9 - 2


def bump(release: str) -> str:
    """The next patch release."""
    major, minor, patch = release.split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


class Host:
    """One machine: its worker instances and the bounded random walks behind its metrics."""

    def __init__(self, env: Env, index: int, rng: random.Random) -> None:
        self.env = env
        self.name = f"{env.app}-{env.env}-{index}"
        self.instances = (f"{self.name}/w1", f"{self.name}/w2")
        self.cores = rng.choice((4, 8))
        self.phase_ms = 0  # offset of its health reports within the interval
        self.cpu_noise = 0.0
        self.mem = rng.uniform(0.4, 0.6)
        self.fs = rng.uniform(0.3, 0.6)
        self.rss = rng.uniform(3e8, 6e8)
        self.fd_noise = rng.uniform(0, 20)
        self.threads = float(rng.randint(24, 40))
        self.sess_noise = 0.0


class Env:
    """One app in one environment: what it runs, where, and how often it fails."""

    def __init__(self, app: str, env: str, rng: random.Random) -> None:
        deployment = TOPOLOGY[app][env]
        self.app, self.env, self.release = app, env, deployment.release
        self.share = deployment.share
        self.latest = self.release  # highest release ever deployed; a rollback goes below it
        self.p_err = ERROR_RATE[env]
        self.features = features(app)
        self.sites = sites(app)
        self.flags = {name: rng.random() < 0.5 for name in FLAGS[app]}
        self.hosts = [Host(self, i, rng) for i in range(1, deployment.hosts + 1)]
