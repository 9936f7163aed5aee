"""The health collector: periodic snapshots with host metrics and the app's own gauges."""

from __future__ import annotations

import time

import shiftright
from shiftright.health import HealthCollector

from tests.unit.sdk.conftest import SDK


def test_snapshots_arrive_every_interval_with_gauges_and_callbacks(sdk: SDK) -> None:
    sdk.init(health_interval=0.1)
    shiftright.gauge("sessions.open", 318)
    shiftright.register_gauge("queue.depth", lambda: 7)
    shiftright.register_gauge("broken", lambda: 1 / 0)
    time.sleep(0.45)
    snapshots = sdk.events("health")
    assert len(snapshots) >= 3
    metrics = snapshots[-1]["metrics"]
    assert metrics["app.sessions.open"] == 318 and metrics["app.queue.depth"] == 7
    assert "app.broken" not in metrics  # a failing callback costs its own metric only
    assert snapshots[-1]["host"] and 0 <= metrics["system.cpu.utilization"] <= 1


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
    time.sleep(0.2)
    assert not any(t.name.startswith("shiftright") for t in threading.enumerate())
