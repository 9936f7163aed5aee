"""One round on a three-node Kafka cluster: two stream workers and two sinks, a known set
of events, and one worker, one sink and one broker killed -9 at different moments while
the events flow; ``bench/cluster.py`` runs as many rounds as asked."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiftright_server.infra.kafka.cluster import KafkaCluster
from shiftright_server.infra.ops.supervisor import Supervisor, python_components
from shiftright_server.infra.settings import KafkaSettings, Settings, SinkSettings, StreamSettings

from tests.builders import event
from tests.integration.conftest import create_namespace, fresh_settings, sql_on, wait_for
from tests.integration.kafka_fixture import KAFKA_VERSION, free_ports
from tests.integration.pipeline import KINDS, TABLES, emit
from tests.integration.test_pipeline import bucket_mismatches, rolled_up, stored

WORKERS = ("streams", "streams-1")
SINKS = ("sink", "sink-1")


@dataclass
class Round:
    """What one round did and how long each part took (seconds)."""

    events: int
    timeline: list[tuple[float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def mark(self, what: str) -> None:
        self.timeline.append((round(time.monotonic() - self.started, 1), what))


def start_cluster(root: Path, jars: Path) -> KafkaCluster:
    ports = free_ports(6)
    cluster = KafkaCluster(
        root / "kafka", list(zip(ports[::2], ports[1::2], strict=True)), version=KAFKA_VERSION
    )
    for node in cluster.nodes:
        node.lib_dir.parent.mkdir(parents=True, exist_ok=True)
        node.lib_dir.symlink_to(jars, target_is_directory=True)
    cluster.launch()
    return cluster


def cluster_settings(cluster: KafkaCluster, clickhouse_url: str, state: Path) -> Settings:
    base = fresh_settings(cluster.bootstrap, clickhouse_url, state)
    return base.model_copy(
        update={
            "kafka": KafkaSettings(
                bootstrap=cluster.bootstrap, replication_factor=3, min_insync_replicas=2
            ),
            "streams": StreamSettings(workers=2),
            "sink": SinkSettings(batch_seconds=0.5, instances=2),
        }
    )


def run_round(cluster: KafkaCluster, settings: Settings, n: int, broker: int = 2) -> Round:
    """Send ``n`` events of each kind while killing a worker, a sink and broker ``broker``;
    fail unless exactly ``n`` rows per kind, matching rollups and one grouped row per
    error come out."""
    create_namespace(settings)
    sql = sql_on(settings)
    sup = Supervisor(settings)
    components = python_components(settings)
    result = Round(events=n * len(KINDS))
    for name in WORKERS + SINKS:
        sup.start(components[name])
    done = threading.Event()
    producer = threading.Thread(target=_emit_slowly, args=(settings, n, done))
    producer.start()
    result.mark("started")

    def stored_total() -> int:
        return sum(stored(sql).values())

    steps: list[tuple[Callable[[], object], Callable[[], object], str]] = [
        (
            lambda: _kill9(sup, "streams-1"),
            lambda: sup.start(components["streams-1"]),
            "worker",
        ),
        (lambda: _kill9(sup, "sink-1"), lambda: sup.start(components["sink-1"]), "sink"),
        (lambda: cluster.kill(broker), lambda: cluster.restart(broker), "broker"),
    ]
    try:
        for kill, restart, what in steps:
            _after_progress(
                stored_total, result.events // 16, f"rows to land before the {what} dies"
            )
            kill()
            result.mark(f"{what} killed -9")
            _after_progress(stored_total, result.events // 16, f"rows to land with the {what} down")
            restart()
            result.mark(f"{what} back")
        producer.join()
        result.mark("all sent")
        _assert_exact(sql, sup, n)
        result.mark("all stored and rolled up, once")
    finally:
        done.set()
        producer.join()
        for name in WORKERS + SINKS:
            sup.stop(name, timeout=10)
    return result


def _emit_slowly(settings: Settings, n: int, done: threading.Event) -> None:
    """``n`` events of each kind over about half a minute, stamped as they are sent (as
    an app stamps them), so every kill lands mid-flow and event time follows the clock."""
    chunks = 60
    for c in range(chunks):
        first, last = n * c // chunks, n * (c + 1) // chunks
        now = datetime.now(UTC)
        emit(settings, [e for i in range(first, last) for e in _events_at(i, now)])
        done.wait(0.5)
    done.set()


def _events_at(i: int, ts: datetime) -> list[dict[str, Any]]:
    app, env = ("checkout", "prod") if i % 3 else ("catalog", "preprod")
    return [
        event("usage", ts, app, env, name=f"feature.{i % 7}", duration_ms=float(i % 100)),
        event("error", ts, app, env, exception_type=f"Error{i % 5}"),
        event(
            "health", ts, app, env, host=f"host-{i % 4}", metrics={"system.cpu.utilization": 0.5}
        ),
        event("change", ts, app, env, change_type="flag", name=f"flag-{i % 3}", value="on"),
    ]


def _kill9(sup: Supervisor, name: str) -> None:
    pid = sup.pid(name)
    assert pid is not None, f"{name} is not running:\n{sup.tail(name)}"
    os.killpg(pid, signal.SIGKILL)
    sup.pid_path(name).unlink(missing_ok=True)


def _after_progress(total: Callable[[], int], rows: int, what: str) -> None:
    start = total()
    wait_for(lambda: total() >= start + rows, 180, what)


def _assert_exact(sql: Callable[[str], list[tuple[object, ...]]], sup: Supervisor, n: int) -> None:
    want = dict.fromkeys(KINDS, n)
    wait_for(
        lambda: stored(sql) == want,
        300,
        lambda: f"{n} rows per kind: {stored(sql)}\n{sup.tail('sink')}",
    )
    for table in TABLES.values():
        assert sql(f"SELECT uniqExact(event_id) FROM {table}")[0][0] == n, f"duplicates in {table}"
    wait_for(
        lambda: rolled_up(sql) == want,
        300,
        lambda: f"rollups {rolled_up(sql)}; differing buckets {bucket_mismatches(sql)[:5]}",
    )
    assert bucket_mismatches(sql) == []
    wait_for(
        lambda: sql("SELECT count() FROM errors_grouped FINAL")[0][0] == n,
        300,
        lambda: f"{n} grouped errors: {sql('SELECT count() FROM errors_grouped FINAL')}",
    )
    assert sql("SELECT uniqExact(event_id) FROM errors_grouped")[0][0] == n
