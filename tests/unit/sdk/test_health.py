"""The health collector: periodic snapshots with host metrics and the app's own gauges."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from itertools import pairwise

import shiftright
from shiftright.health import HealthCollector

from tests.unit.sdk.conftest import SDK


def test_snapshots_arrive_every_interval_with_gauges_and_callbacks(sdk: SDK) -> None:
    sdk.init(health_interval=0.1)
    shiftright.gauge("sessions.open", 318)
    shiftright.register_gauge("queue.depth", lambda: 7)
    shiftright.register_gauge("broken", lambda: 1 / 0)
    assert _within(5.0, lambda: len(sdk.events("health")) >= 3)
    snapshots = sdk.events("health")
    taken = [datetime.fromisoformat(e["ts"]) for e in snapshots[:3]]
    assert all(0.05 <= (b - a).total_seconds() <= 0.5 for a, b in pairwise(taken))  # ~0.1 s
    metrics = snapshots[-1]["metrics"]
    assert metrics["app.sessions.open"] == 318 and metrics["app.queue.depth"] == 7
    assert "app.broken" not in metrics  # a failing callback costs its own metric only
    assert snapshots[-1]["host"] and 0 <= metrics["system.cpu.utilization"] <= 1


def test_first_snapshot_comes_at_start_not_one_interval_later(sdk: SDK) -> None:
    sdk.init(health_interval=30)
    assert _within(5.0, lambda: len(sdk.transport.events("health")) >= 1)  # not after 30 s
    first = sdk.events("health")[0]["metrics"]
    assert 0 <= first["system.cpu.utilization"] <= 1  # a difference was already taken
    assert len(sdk.events("health")) == 1  # then nothing until the interval is up


def test_throughput_comes_from_the_requests_the_middleware_counted(sdk: SDK) -> None:
    client = sdk.init()
    collector = HealthCollector(client)
    collector.snapshot()
    client.requests += 50
    time.sleep(0.1)
    rate = collector.snapshot()["app.throughput.requests_per_second"]
    assert 50 < rate <= 500


def test_closing_the_sdk_stops_the_health_thread(sdk: SDK) -> None:
    import threading

    sdk.init(health_interval=0.05)
    assert any(t.name == "shiftright-health" for t in threading.enumerate())
    shiftright.close()
    assert _within(
        2.0, lambda: not any(t.name.startswith("shiftright") for t in threading.enumerate())
    )


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds before ``seconds`` pass (polled every 10 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
