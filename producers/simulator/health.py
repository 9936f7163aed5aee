"""Health reports: one per host every interval, metrics that follow load and drift slowly.

Each host's reports are spread over the interval (``Host.phase_ms``). A host under a
``cpu-saturation`` incident reports a pinned CPU, a high load average and extra threads.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from shiftright_server.producers.simulator.fleet import Host
from shiftright_server.producers.simulator.incidents import ActiveIncident
from shiftright_server.producers.simulator.sampling import walk
from shiftright_server.producers.simulator.stamps import Stamper


class HealthReporter:
    """Builds the health events of a fleet of hosts."""

    def __init__(
        self,
        rng: random.Random,
        stamper: Stamper,
        hosts: list[Host],
        interval_ms: int,
        rate: float,
        shape: Callable[[int], float],
        incidents: list[ActiveIncident],
        origin: str,
    ) -> None:
        self._rng = rng
        self._stamper = stamper
        self.hosts = hosts
        self._interval_ms = interval_ms
        self._rate = rate
        self._shape = shape
        self._incidents = incidents
        self._origin = origin
        for i, host in enumerate(hosts):
            host.phase_ms = interval_ms * i // len(hosts)

    def between(self, lo: int, hi: int, out: list[dict[str, Any]]) -> None:
        """Every host's reports due in ``[lo, hi)``, host by host."""
        step = self._interval_ms
        for host in self.hosts:
            ms = host.phase_ms + -(-(lo - host.phase_ms) // step) * step
            while ms < hi:
                self.report(ms, host, out)
                ms += step

    def report(self, ms: int, host: Host, out: list[dict[str, Any]]) -> None:
        """One health event of ``host`` at ``ms``; advances its metric walks."""
        rng = self._rng
        load = self._shape(ms) / 1.75  # 0.13 (weekend night) .. 1 (weekday 15:00)
        rps = self._rate * host.env.share * self._shape(ms) / len(host.env.hosts)
        host.cpu_noise = walk(rng, host.cpu_noise, 0.02, -0.1, 0.1)
        host.mem = walk(rng, host.mem, 0.005, 0.35, 0.8)
        host.fs = host.fs + rng.uniform(0, 2e-5) if host.fs < 0.92 else 0.55  # log cleanup
        host.rss = walk(rng, host.rss + 2e5, 4e6, 2.5e8, 1.6e9)  # a slow leak, then restarts
        host.fd_noise = walk(rng, host.fd_noise, 2.0, 0.0, 40.0)
        host.threads = walk(rng, host.threads, 1.0, 16.0, 64.0)
        host.sess_noise = walk(rng, host.sess_noise, 0.03, -0.2, 0.2)
        cpu = min(0.92, max(0.02, 0.05 + 0.55 * load + host.cpu_noise))
        load_avg = cpu * host.cores * rng.uniform(0.85, 1.1)
        threads = host.threads
        tag = self._saturation(host, ms)
        if tag:
            cpu = rng.uniform(0.95, 1.0)
            load_avg = host.cores * rng.uniform(1.8, 3.0)
            threads, rps = threads + 16, rps * 0.85
        metrics = {
            "system.cpu.utilization": round(cpu, 4),
            "system.memory.utilization": round(host.mem + 0.05 * load, 4),
            "system.filesystem.utilization": round(host.fs, 5),
            "system.cpu.load_average.1m": round(load_avg, 2),
            "process.memory.usage": float(round(host.rss)),
            "process.open_file_descriptor.count": float(round(40 + 0.4 * rps + host.fd_noise)),
            "process.thread.count": float(round(threads)),
            "app.sessions.open": float(round(rps * 25 * (1 + host.sess_noise))),
            "app.throughput.requests_per_second": round(rps * rng.uniform(0.9, 1.1), 2),
        }
        env = host.env
        out.append(
            {
                "event_id": self._stamper.event_id(ms),
                "kind": "health",
                "ts": self._stamper.ts(ms),
                "app": env.app,
                "env": env.env,
                "release": env.release,
                "host": host.name,
                "instance": host.instances[0],
                "origin": self._origin,
                "attributes": {"sim.incident": tag} if tag else {},
                "metrics": metrics,
            }
        )

    def _saturation(self, host: Host, ms: int) -> str | None:
        for act in self._incidents:
            inc = act.incident
            hit = inc.kind == "cpu-saturation" and inc.target == host.name
            if hit and act.start_ms <= ms < act.end_ms:
                return inc.kind
        return None
