"""Measurement: where an engine process's CPU goes, by thread group, from Linux's /proc.

A snapshot maps ``group|tid`` to the thread's CPU milliseconds (user + kernel), next to
the whole process's user and kernel milliseconds and its minor page faults (/proc/PID/stat
fields 10, 14 and 15). Differences of two snapshots (as :class:`EngineCounters` takes them)
count a thread that started in between from zero and leave out one that ended: what
ended threads used is the process's total minus every live thread's.

Groups: the warehouse's threads by their name with the numbers cut off (``MergeMutate``:
background merges; ``python``: the HTTP threads running the statements; ``ThreadPool``
and ``RuntimeDat…``: the engine's query pipelines). The broker's by what they are to a
JVM: ``GC`` (garbage collection and VM operations), ``JIT`` (compiler threads), and
``java`` (the broker's own threads, split further over JMX by ``KafkaRequests.java``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

PROCESS_USER = "process user ms"
PROCESS_SYSTEM = "process system ms"
MINOR_FAULTS = "minor page faults"

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
_NUMBERED = re.compile(r"[\s#:_-]*\d+$")
_JVM_GROUPS = (("GC", ("GC Thread", "G1 ", "VM Thread", "VM Periodic")), ("JIT", ("C1 ", "C2 ")))


def warehouse_group(comm: str) -> str:
    """A warehouse thread's group: its name with the trailing number cut off."""
    return _NUMBERED.sub("", comm) or comm


def jvm_group(comm: str) -> str:
    """A JVM thread's group: ``GC``, ``JIT`` or ``java``."""
    for group, prefixes in _JVM_GROUPS:
        if comm.startswith(prefixes):
            return group
    return "java"


def snapshot(pid: int, group_of: str) -> dict[str, int] | None:
    """CPU ms per ``group|tid`` of ``pid``, with the process's totals; None once it is gone.
    ``group_of``: ``"warehouse"`` or ``"jvm"``."""
    grouping = jvm_group if group_of == "jvm" else warehouse_group
    try:
        fields = _stat(Path(f"/proc/{pid}/stat"))
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (OSError, IndexError, ValueError):
        return None
    out = {
        PROCESS_USER: round(int(fields[11]) * _TICK_MS),
        PROCESS_SYSTEM: round(int(fields[12]) * _TICK_MS),
        MINOR_FAULTS: int(fields[7]),
    }
    for task in tasks:
        try:
            comm = (task / "comm").read_text().strip()
            stat = _stat(task / "stat")
        except (OSError, IndexError, ValueError):
            continue  # the thread ended while we looked
        out[f"{grouping(comm)}|{task.name}"] = round((int(stat[11]) + int(stat[12])) * _TICK_MS)
    return out


def _stat(path: Path) -> list[str]:
    """The fields of a /proc stat file after the command name (field 3 onwards)."""
    return path.read_text().rsplit(")", 1)[1].split()


def per_event(delta: Mapping[str, int], events: int) -> dict[str, float]:
    """µs of CPU per event by thread group (largest first, under 0.1 left out), the
    threads that ended, the kernel's share, and minor page faults per event."""
    groups: dict[str, int] = {}
    for key, ms in delta.items():
        if "|" in key:
            group = key.split("|", 1)[0]
            groups[group] = groups.get(group, 0) + ms
    total = delta.get(PROCESS_USER, 0) + delta.get(PROCESS_SYSTEM, 0)
    groups["(threads that ended)"] = max(0, total - sum(groups.values()))
    out = {
        f"{name} µs/event": round(ms * 1000 / events, 1)
        for name, ms in sorted(groups.items(), key=lambda item: -item[1])
        if ms * 1000 / events >= 0.1
    }
    out["of all: kernel µs/event"] = round(delta.get(PROCESS_SYSTEM, 0) * 1000 / events, 1)
    out["minor page faults/event"] = round(delta.get(MINOR_FAULTS, 0) / events, 3)
    return out
