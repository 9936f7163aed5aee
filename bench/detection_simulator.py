"""Detection of the simulator's incidents, end to end through the pure pipeline.

The traffic simulator (``producers.simulator``) runs for a few hours at a modest rate with
scheduled incidents of each kind (error spike, CPU saturation of a host, usage drop of a
feature after a bad deploy, latency jump of a feature), 15 minutes each, after a warm-up.
Its events go through the real validator and event-time rollups (one-minute buckets,
10 s lateness), and the closed rollups through :func:`streams.alerting.backtest.backtest`
with one rule set per rule kind. An alert is a true positive when it fires for the
incident's app during the incident or up to 5 minutes after it (a saturated host slows
every feature it serves, so several alerts can be true for one incident); recall is
per incident kind.

    python -m bench.detection_simulator [--hours 12] [--rate 20] [--seed 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from shiftright_server.producers.simulator import INCIDENT_KINDS, Incident, Simulator
from shiftright_server.schemas.alerts import AlertTransition, Rule
from shiftright_server.schemas.events import EVENT_ADAPTER
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alerting.backtest import backtest
from shiftright_server.streams.rollup import PartitionRollup

START = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # a Tuesday morning
WARMUP = timedelta(hours=2)
LENGTH = timedelta(minutes=15)
GRACE = timedelta(minutes=5)
ENVS = (("checkout", "prod"), ("catalog", "prod"))


def schedule(hours: float) -> list[Incident]:
    """Incidents of every kind in turn, one every 30 minutes after the warm-up."""
    out, at, i = [], START + WARMUP, 0
    while at + LENGTH < START + timedelta(hours=hours):
        app, env = ENVS[i // len(INCIDENT_KINDS) % len(ENVS)]
        out.append(Incident(INCIDENT_KINDS[i % len(INCIDENT_KINDS)], at, LENGTH, app, env))
        at, i = at + timedelta(minutes=30), i + 1
    return out


def rollups(sim: Simulator, hours: float) -> list[Rollup]:
    states = {k: PartitionRollup(k, 0, 60_000, 10_000) for k in ("usage", "error", "health")}
    out: list[Rollup] = []
    clock = START
    while clock < START + timedelta(hours=hours):
        for raw in sim.tick(clock, 60):
            state = states.get(raw["kind"])
            if state is None:
                continue
            state.apply(0, EVENT_ADAPTER.validate_python(raw))
            out.extend(state.close(state.watermark_ms(), clock))
        clock += timedelta(seconds=60)
    return out


def rules() -> dict[str, list[Rule]]:
    adapter: TypeAdapter[Rule] = TypeAdapter(Rule)
    specs: dict[str, list[dict[str, Any]]] = {
        "threshold": [
            {
                "name": "cpu",
                "kind": "threshold",
                "scope": {"app": "*", "source": "health"},
                "measure": "avg:system.cpu.utilization",
                "threshold": 0.94,
                "resolve_threshold": 0.9,
                "for": "1m",
            },
            {
                "name": "cart-latency",
                "kind": "threshold",
                "measure": "avg:duration_ms",
                "scope": {"app": "checkout", "filters": {"feature": "cart.view"}},
                "threshold": 150,
                "resolve_threshold": 100,
                "for": "1m",
            },
            {
                "name": "product-latency",
                "kind": "threshold",
                "measure": "avg:duration_ms",
                "scope": {"app": "catalog", "filters": {"feature": "product.view"}},
                "threshold": 120,
                "resolve_threshold": 80,
                "for": "1m",
            },
        ],
        "change": [
            {
                "name": "usage-change",
                "kind": "change",
                "scope": {"app": "*"},
                "percent": 60,
                "window": "5m",
                "min_volume": 100,
                "for": "1m",
            },
            {
                "name": "error-change",
                "kind": "change",
                "percent": 200,
                "window": "5m",
                "scope": {"app": "*", "source": "error"},
                "min_volume": 10,
                "direction": "up",
                "for": "1m",
            },
        ],
        "anomaly": [
            {"name": "usage-anomaly", "kind": "anomaly", "scope": {"app": "*"}, "min_volume": 20},
            {
                "name": "latency-anomaly",
                "kind": "anomaly",
                "scope": {"app": "*"},
                "measure": "avg:duration_ms",
                "direction": "up",
                "min_volume": 20,
            },
            {
                "name": "error-anomaly",
                "kind": "anomaly",
                "direction": "up",
                "min_volume": 10,
                "scope": {"app": "*", "source": "error"},
            },
            {
                "name": "cpu-anomaly",
                "kind": "anomaly",
                "direction": "up",
                "scope": {"app": "*", "source": "health"},
                "measure": "avg:system.cpu.utilization",
            },
        ],
        "absence": [
            {
                "name": "feature-silent",
                "kind": "absence",
                "scope": {"app": "*"},
                "after": "3m",
                "min_volume": 5,
            },
        ],
    }
    return {
        kind: [adapter.validate_python({**s, "scope": {"env": "*", **s["scope"]}}) for s in rs]
        for kind, rs in specs.items()
    }


def score(
    incidents: list[Incident], fired: list[AlertTransition]
) -> tuple[dict[str, list[float | None]], int, int]:
    """Per incident kind the delays (None: missed); true and false alert counts."""
    delays: dict[str, list[float | None]] = defaultdict(list)
    true = 0
    hits = [t for t in fired if t.state == "firing" and t.ts >= START + WARMUP]
    for inc in incidents:
        lo, hi = inc.start, inc.start + inc.duration + GRACE
        mine = [t for t in hits if lo <= t.ts < hi and t.labels.get("app") == inc.app]
        true += len(mine)
        first = min((t.ts for t in mine), default=None)
        delays[inc.kind].append((first - lo).total_seconds() / 60 if first else None)
    in_any = sum(
        1
        for t in hits
        if any(
            i.start <= t.ts < i.start + i.duration + GRACE and t.labels.get("app") == i.app
            for i in incidents
        )
    )
    return delays, true, len(hits) - in_any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=12.0)
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s at diurnal factor 1")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    began = time.perf_counter()
    incidents = schedule(args.hours)
    closed = rollups(Simulator(args.seed, args.rate, 10.0, incidents), args.hours)
    print(
        f"{len(incidents)} incidents, {len(closed)} rollups ({time.perf_counter() - began:.0f} s)"
    )
    print(
        f"{'kind':10}" + "".join(f"{k:>22}" for k in INCIDENT_KINDS) + "   false alarms  precision"
    )
    for kind, kind_rules in rules().items():
        delays, true, false = score(incidents, backtest(kind_rules, closed))
        cells = []
        for k in INCIDENT_KINDS:
            got = delays[k]
            found = sorted(d for d in got if d is not None)
            med = f" {found[len(found) // 2]:.1f}m" if found else ""
            cells.append(f"{len(found)}/{len(got)}{med}")
        precision = true / (true + false) if true + false else float("nan")
        print(f"{kind:10}" + "".join(f"{c:>22}" for c in cells) + f"{false:>15}{precision:>11.2f}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
