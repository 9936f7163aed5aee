"""Measurement: peak RSS and CPU time of every process involved, per phase."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil


class Monitor:
    """Samples RSS and CPU time of named processes; peaks and CPU seconds per tag."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._procs: dict[str, psutil.Process | CompilerThreads] = {}
        self._last_cpu: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tag: str | None = None
        self._base: dict[str, float] = {}
        self._began = 0.0
        self.peak_rss: dict[str, dict[str, int]] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self.wall: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def watch(self, name: str, pid: int, fresh: bool = False, part: bool = False) -> None:
        """Follow ``pid``; ``fresh``: it started within the current tag (CPU counts from 0);
        ``part``: follow the JIT compiler threads of that JVM, a part of a watched process
        (not added again into "others")."""
        with contextlib.suppress(psutil.Error), self._lock:
            self._procs[name] = CompilerThreads(pid) if part else psutil.Process(pid)
            if fresh:
                self._last_cpu[name] = 0.0
            if self._tag is not None:
                self._base[name] = 0.0 if fresh else self._sample_one(name)[1]

    def unwatch(self, name: str) -> None:
        with self._lock:
            self._procs.pop(name, None)

    @contextlib.contextmanager
    def tag(self, tag: str) -> Iterator[None]:
        with self._lock:
            self._tag, self._began = tag, time.monotonic()
            self.peak_rss.setdefault(tag, {})
            self._base = {name: self._sample_one(name)[1] for name in self._procs}
            machine = _busy_cpu_seconds()
        try:
            yield
        finally:
            with self._lock:
                self._sample_all()
                self.wall[tag] = time.monotonic() - self._began
                self.cpu[tag] = {
                    n: round(self._last_cpu.get(n, b) - b, 2) for n, b in self._base.items()
                }
                self.cpu[tag]["machine"] = round(_busy_cpu_seconds() - machine, 2)
                ours = sum(
                    v
                    for n, v in self.cpu[tag].items()
                    if n != "machine" and not isinstance(self._procs.get(n), CompilerThreads)
                )
                self.cpu[tag]["others"] = round(max(0.0, self.cpu[tag]["machine"] - ours), 2)
                self._tag = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                self._sample_all()

    def _sample_all(self) -> None:
        for name in list(self._procs):
            self._sample_one(name)

    def _sample_one(self, name: str) -> tuple[int, float]:
        proc = self._procs[name]
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                times = proc.cpu_times()
        except psutil.Error:
            return 0, self._last_cpu.get(name, 0.0)
        cpu = times.user + times.system
        self._last_cpu[name] = cpu
        if self._tag is not None and rss:  # (compiler threads have none of their own)
            peaks = self.peak_rss[self._tag]
            peaks[name] = max(peaks.get(name, 0), rss)
        return rss, cpu


class CompilerThreads:
    """The JIT compiler threads (``C1 …``/``C2 …``) of a JVM, sampled like a process from
    Linux's /proc. Compiler threads come and go; each keeps the CPU time last read from it,
    so the total never goes back."""

    def __init__(self, pid: int) -> None:
        self._tasks = Path(f"/proc/{pid}/task")
        self._seen: dict[str, float] = {}
        self._tick = os.sysconf("SC_CLK_TCK")

    def oneshot(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def memory_info(self) -> Any:
        return _NoMemory  # threads share the JVM's memory

    def cpu_times(self) -> Any:
        with contextlib.suppress(OSError):
            for task in self._tasks.iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if (task / "comm").read_text().startswith(("C1 ", "C2 ")):
                        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                        self._seen[task.name] = (int(fields[11]) + int(fields[12])) / self._tick
        return _CpuTimes(sum(self._seen.values()), 0.0)


@dataclass(frozen=True)
class _CpuTimes:
    user: float
    system: float


class _NoMemory:
    rss = 0


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all processes, ours or not)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def resources(monitor: Monitor) -> dict[str, Any]:
    peaks: dict[str, dict[str, int]] = {}
    for tag, by_name in monitor.peak_rss.items():
        system = tag.split(".")[0]
        for name, rss in by_name.items():
            peaks.setdefault(system, {})[name] = max(
                peaks.get(system, {}).get(name, 0), round(rss / 2**20)
            )
    wall = {t: round(w, 2) for t, w in monitor.wall.items()}
    return {"peak_rss_mib": peaks, "cpu": monitor.cpu, "wall": wall}
