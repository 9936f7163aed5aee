"""The health collector: one health event half a second after start, then every
``health_interval`` seconds, with host and process metrics under OpenTelemetry
hostmetrics names, plus the app's gauges.

Rates and CPU utilization come from the difference to the previous snapshot, so the first
snapshot carries neither. Per-mount filesystem figures carry the mount point in the name
(``system.filesystem.utilization{mountpoint=/data}``); the unlabelled name is the root.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from shiftright.client import Client

MAX_MOUNTS = 16
#: Seconds after start before the first snapshot (then every ``health_interval``).
STARTUP_SNAPSHOT_SECONDS = 0.5


class HostSampler:
    """Reads psutil; keeps the previous counters to turn them into utilization and rates."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._last: dict[str, Any] = {}

    def sample(self) -> dict[str, float]:
        now = time.monotonic()
        metrics: dict[str, float] = {}
        for part in (self._cpu, self._memory, self._load, self._filesystems, self._process_metrics):
            _guarded(part, metrics)
        _guarded(lambda m: self._rates(m, now), metrics)
        return metrics

    def _cpu(self, metrics: dict[str, float]) -> None:
        times = psutil.cpu_times()
        last = self._last.get("cpu")
        self._last["cpu"] = times
        if last is not None:
            total = sum(times) - sum(last)
            idle = (times.idle + getattr(times, "iowait", 0.0)) - (
                last.idle + getattr(last, "iowait", 0.0)
            )
            if total > 0:
                metrics["system.cpu.utilization"] = round(min(max(1 - idle / total, 0.0), 1.0), 4)
        metrics["system.cpu.logical.count"] = float(psutil.cpu_count() or 0)

    def _memory(self, metrics: dict[str, float]) -> None:
        mem = psutil.virtual_memory()
        used = mem.total - mem.available
        metrics["system.memory.usage"] = float(used)
        metrics["system.memory.limit"] = float(mem.total)
        metrics["system.memory.utilization"] = round(used / mem.total, 4) if mem.total else 0.0

    def _load(self, metrics: dict[str, float]) -> None:
        one, five, fifteen = os.getloadavg()
        metrics["system.cpu.load_average.1m"] = round(one, 2)
        metrics["system.cpu.load_average.5m"] = round(five, 2)
        metrics["system.cpu.load_average.15m"] = round(fifteen, 2)

    def _filesystems(self, metrics: dict[str, float]) -> None:
        seen = 0
        for part in psutil.disk_partitions(all=False):
            if seen >= MAX_MOUNTS:
                break
            try:
                usage = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue
            seen += 1
            ratio = round(usage.used / usage.total, 5) if usage.total else 0.0
            label = "" if part.mountpoint == "/" else f"{{mountpoint={part.mountpoint}}}"
            metrics[f"system.filesystem.utilization{label}"] = ratio
            metrics[f"system.filesystem.usage{label}"] = float(usage.used)
        if "system.filesystem.utilization" not in metrics:
            usage = psutil.disk_usage(os.path.abspath(os.sep))
            metrics["system.filesystem.utilization"] = (
                round(usage.used / usage.total, 5) if usage.total else 0.0
            )

    def _process_metrics(self, metrics: dict[str, float]) -> None:
        proc = self._process
        with proc.oneshot():
            metrics["process.memory.usage"] = float(proc.memory_info().rss)
            metrics["process.memory.virtual"] = float(proc.memory_info().vms)
            metrics["process.thread.count"] = float(proc.num_threads())
            if hasattr(proc, "num_fds"):
                metrics["process.open_file_descriptor.count"] = float(proc.num_fds())
            cpu = proc.cpu_times()
        last = self._last.get("proc_cpu")
        self._last["proc_cpu"] = (cpu.user + cpu.system, time.monotonic())
        if last is not None:
            elapsed = time.monotonic() - last[1]
            if elapsed > 0:
                used = (cpu.user + cpu.system - last[0]) / elapsed / (psutil.cpu_count() or 1)
                metrics["process.cpu.utilization"] = round(max(used, 0.0), 4)

    def _rates(self, metrics: dict[str, float], now: float) -> None:
        net = psutil.net_io_counters()
        disk = psutil.disk_io_counters()
        counters = {
            "system.network.io.receive": net.bytes_recv if net else None,
            "system.network.io.transmit": net.bytes_sent if net else None,
            "system.disk.io.read": disk.read_bytes if disk else None,
            "system.disk.io.write": disk.write_bytes if disk else None,
        }
        last = self._last.get("rates")
        self._last["rates"] = (now, counters)
        if last is None or now <= last[0]:
            return
        elapsed = now - last[0]
        for name, value in counters.items():
            before = last[1].get(name)
            if value is not None and before is not None and value >= before:
                metrics[name] = round((value - before) / elapsed, 1)  # bytes per second


def _guarded(part: Callable[[dict[str, float]], None], metrics: dict[str, float]) -> None:
    try:  # noqa: SIM105 - keeps the reason comment next to the except
        part(metrics)
    except Exception:
        pass  # a metric the platform lacks is left out, never the whole snapshot


class HealthCollector:
    """A daemon thread; stops when its client closes or is replaced after a fork."""

    def __init__(self, client: Client, sampler: HostSampler | None = None) -> None:
        self._client = client
        self._sampler = sampler or HostSampler()
        self._generation = client._stop  # a fork gives the client a new stop event
        self._requests = (client.requests, time.monotonic())

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="shiftright-health", daemon=True)
        thread.start()

    def snapshot(self) -> dict[str, float]:
        metrics = self._sampler.sample()
        client = self._client
        metrics.update(client.gauges)
        for name, callback in list(client.gauge_callbacks.items()):
            with contextlib.suppress(Exception):
                metrics[name] = float(callback())
        count, now = client.requests, time.monotonic()
        last_count, last_time = self._requests
        self._requests = (count, now)
        if count and now > last_time:
            metrics["app.throughput.requests_per_second"] = round(
                (count - last_count) / (now - last_time), 3
            )
        stats = client.stats()
        metrics["shiftright.sdk.queue.depth"] = float(stats["queued"])
        metrics["shiftright.sdk.dropped"] = float(sum(stats["dropped"].values()))
        metrics["shiftright.sdk.failed"] = float(sum(stats["failed"].values()))
        if "spill" in stats:
            metrics["shiftright.sdk.spill.events"] = float(stats["spill"]["events"])
        return metrics

    def _run(self) -> None:
        interval = self._client.config.health_interval
        stop = self._generation

        def baseline(_: dict[str, float]) -> None:
            self._sampler.sample()  # the reference point for deltas and rates

        _guarded(baseline, {})
        # The first snapshot comes soon after start (start-up crashes are when health
        # matters most), late enough for CPU utilization to have a difference to take.
        wait = min(STARTUP_SNAPSHOT_SECONDS, interval)
        while not stop.wait(wait):
            if self._client._stop is not stop:
                return
            with contextlib.suppress(Exception):
                self._client.enqueue("health", {"metrics": self.snapshot()})
            wait = interval
