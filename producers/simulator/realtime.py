"""Feeding an emitter the simulator's traffic as it happens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shiftright_server.producers.simulator.engine import Simulator


class DictEmitter(Protocol):
    def emit_dict(self, event: dict[str, Any]) -> bool: ...

    def emit_many(self, events: Iterable[dict[str, Any]]) -> int: ...


def run_realtime(
    emitter: DictEmitter,
    simulator: Simulator,
    *,
    duration: float | None,
    stop: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Emit the simulator's traffic as it happens, in 100 ms steps; return how many were accepted.

    Each step covers event time from the previous step's end to now, so steps that run late
    lose nothing. Stops after ``duration`` seconds (None: never) or when ``stop`` is set;
    waits on ``stop`` between steps rather than spinning. Flushing is the caller's job.
    """
    stop = stop or threading.Event()
    began = time.monotonic()
    deadline = None if duration is None else began + duration
    last = datetime.now(UTC) - timedelta(seconds=0.1)
    next_step, sent = began, 0
    while not stop.is_set():
        now = datetime.now(UTC)
        sent += emitter.emit_many(simulator.tick(last, (now - last).total_seconds()))
        last = now
        if on_progress is not None:
            on_progress(sent)
        clock = time.monotonic()
        if deadline is not None and clock >= deadline:
            break
        next_step = max(next_step + 0.1, clock)
        wake = next_step if deadline is None else min(next_step, deadline)
        stop.wait(max(0.0, wake - clock))
    return sent
