"""Running the real stream worker and sink as processes, and feeding them events."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.infra.ops.supervisor import Supervisor, python_components
from shiftright_server.infra.settings import Settings
from shiftright_server.producers.emitter import Emitter

from tests.builders import event

KINDS = ("usage", "error", "health", "change")
TABLES = {k: f"events_{k}" for k in KINDS}


class Pipeline:
    """The stream worker and the sink of one test namespace."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.supervisor = Supervisor(settings)
        self.components = python_components(settings)

    def start(self, *names: str) -> None:
        for name in names or ("streams", "sink"):
            self.supervisor.start(self.components[name])

    def kill9(self, name: str) -> None:
        pid = self.supervisor.pid(name)
        assert pid is not None, f"{name} is not running:\n{self.supervisor.tail(name)}"
        os.killpg(pid, signal.SIGKILL)
        self.supervisor.pid_path(name).unlink(missing_ok=True)

    def alive(self, name: str) -> bool:
        return self.supervisor.pid(name) is not None

    def stop(self) -> None:
        for name in ("sink", "streams"):
            self.supervisor.stop(name, timeout=10)

    def log(self, name: str) -> str:
        return self.supervisor.tail(name, 60)


def make_events(n_per_kind: int, minutes: int = 12) -> list[dict[str, Any]]:
    """n events of each kind, spread over the last ``minutes`` (ending two minutes ago)."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    start = end - timedelta(minutes=minutes)
    step = (end - start) / n_per_kind
    out = []
    for i in range(n_per_kind):
        ts = start + step * i
        app, env = ("checkout", "prod") if i % 3 else ("catalog", "preprod")
        out.append(
            event("usage", ts, app, env, name=f"feature.{i % 7}", duration_ms=float(i % 100))
        )
        out.append(event("error", ts, app, env, exception_type=f"Error{i % 5}"))
        out.append(
            event(
                "health",
                ts,
                app,
                env,
                host=f"host-{i % 4}",
                metrics={"system.cpu.utilization": (i % 10) / 10},
            )
        )
        out.append(
            event("change", ts, app, env, change_type="flag", name=f"flag-{i % 3}", value="on")
        )
    return out


def emit(settings: Settings, events: Iterable[dict[str, Any]]) -> Emitter:
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    for e in events:
        while not emitter.emit_dict(e):
            emitter.poll(0.05)
    assert emitter.flush(60) == 0, "the broker did not acknowledge every event"
    return emitter


def emit_batched(settings: Settings, events: list[dict[str, Any]], window: int = 200) -> Emitter:
    """Like :func:`emit`, as NDJSON batch messages (what the simulator sends).

    Events are batched per key within windows of ``window`` consecutive events, as a
    producer batches what it collected in one linger interval; the windows must span
    less event time than the allowed lateness, or batching itself makes events late."""
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    for i in range(0, len(events), window):
        chunk = events[i : i + window]
        assert emitter.emit_many(chunk) == len(chunk), emitter.dropped
        emitter.poll(0)
    assert emitter.flush(60) == 0, "the broker did not acknowledge every batch"
    return emitter
