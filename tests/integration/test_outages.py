"""Services that go away: the pipeline waits, keeps running, and loses nothing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.kafka.launcher import KafkaLauncher
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.settings import Settings
from shiftright_server.producers.emitter import Emitter

from tests.builders import event
from tests.integration.conftest import scalar, wait_for
from tests.integration.pipeline import TABLES, Pipeline, emit, make_events
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

N = 3_000


def test_warehouse_killed_mid_run_then_back_loses_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings  # the warehouse is the test's own
    data = tmp_path / "own-warehouse"
    port = free_port()
    proc, url = start_warehouse(data, port)
    own = settings.model_copy(
        update={"clickhouse": settings.clickhouse.model_copy(update={"url": url})}
    )
    apply_schema(own)
    client = get_client(own.clickhouse, database=own.clickhouse.database)
    count: Callable[[], int] = lambda: sum(  # noqa: E731
        scalar(client, f"SELECT count() FROM {t}") for t in TABLES.values()
    )
    pipeline = Pipeline(own)
    pipeline.start()
    events = make_events(N)
    try:
        emit(own, events[: len(events) // 2])
        wait_for(lambda: count() == 2 * N, 120, "the first half to be stored")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        emit(own, events[len(events) // 2 :])  # accepted by Kafka while the warehouse is away
        wait_for(lambda: "insert_retrying" in pipeline.log("sink"), 60, "the sink to notice")
        assert pipeline.alive("sink") and pipeline.alive("streams")
        proc, _ = start_warehouse(data, port)
        client = get_client(own.clickhouse, database=own.clickhouse.database)
        wait_for(lambda: count() == 4 * N, 120, f"all {4 * N} events after the outage")
        for table in TABLES.values():
            assert client.command(f"SELECT uniqExact(event_id) = count() FROM {table}") == 1
    finally:
        pipeline.stop()
        stop_warehouse(proc)


def test_broker_restarted_mid_run_loses_nothing(
    warehouse_settings: Settings, restartable_kafka: KafkaLauncher
) -> None:
    """Live traffic (event time = now) keeps flowing while the broker restarts; producers
    buffer, and afterwards every event is stored once and counted in the rollups — even
    with an allowed lateness (2 s) far shorter than the outage."""
    launcher, settings = restartable_kafka, warehouse_settings  # the broker is the test's own
    own = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"bootstrap": launcher.bootstrap}),
            "streams": settings.streams.model_copy(
                update={"allowed_lateness_seconds": 2, "bucket_seconds": 10}
            ),
        }
    )
    create_topics(own)
    client = get_client(own.clickhouse, database=own.clickhouse.database)
    pipeline = Pipeline(own)
    pipeline.start()
    # the broker may take a while to come back on a busy machine: buffer events meanwhile
    emitter = Emitter(own.kafka.bootstrap_servers, own.namespace, **{"message.timeout.ms": 180_000})
    stop = threading.Event()
    sent = [0]
    producer = threading.Thread(target=_live_traffic, args=(emitter, stop, sent))
    producer.start()
    try:
        wait_for(lambda: stored_total(client) > 0, 60, "the first live events to be stored")
        # the stream worker too is past its start-up (a broker gone while Faust starts its
        # tables is a different failure: the worker exits, see docs/limits.md)
        wait_for(
            lambda: rolled_up_total(client) > 0,
            90,
            lambda: f"the first rollups\n{pipeline.log('streams')}",
        )
        launcher.stop()
        wait_for(  # librdkafka's and aiokafka's words for a broker that is gone
            lambda: (
                "Connection refused" in pipeline.log("sink")
                and "Connect call failed" in pipeline.log("streams")
            ),
            30,
            lambda: f"both consumers to find the broker gone\n{pipeline.log('streams')}",
            0.1,
        )
        launcher.launch()
        before = sent[0]  # traffic goes on until events sent after the restart are stored
        wait_for(
            lambda: stored_total(client) > before,
            120,
            lambda: (
                f"events sent after the restart stored (stored {stored_total(client)}"
                f" of {sent[0]}; the producer: delivered {emitter.delivered},"
                f" failed {dict(emitter.failed)}, dropped {dict(emitter.dropped)},"
                f" replaced {emitter.replaced})\n{pipeline.log('sink')}"
            ),
        )
        stop.set()
        producer.join()
        assert emitter.flush(60) == 0 and not emitter.failed, emitter.failed
        total = sent[0]
        wait_for(
            lambda: stored_total(client) == total,
            180,
            lambda: (
                f"all {total} events after the restart (stored "
                f"{stored_total(client)})\n{pipeline.log('sink')}"
            ),
        )
        wait_for(
            lambda: rolled_up_total(client) == total,
            180,
            f"rollups for all {total} events\n{pipeline.log('streams')}",
        )
        assert pipeline.alive("sink") and pipeline.alive("streams")
    finally:
        stop.set()
        producer.join()
        pipeline.stop()


def _live_traffic(emitter: Emitter, stop: threading.Event, sent: list[int]) -> None:
    """About 500 usage events a second, stamped with the current time."""
    while not stop.wait(0.1):
        now = datetime.now(UTC)
        for i in range(50):
            while not emitter.emit_dict(event("usage", now, name=f"live.{i % 5}")):
                emitter.poll(0.05)
            sent[0] += 1


def stored_total(client: Client) -> int:
    return sum(scalar(client, f"SELECT count() FROM {t}") for t in TABLES.values())


def rolled_up_total(client: Client) -> int:
    return scalar(client, "SELECT sum(count) FROM rollups FINAL")
