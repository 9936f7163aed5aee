"""A stream worker whose consumer group committed past its saved state still counts every
event: it reads the records in between from Kafka itself (what a ``kill -9`` can cause,
forced here deterministically by committing the group's offsets ahead of the state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.streams.gaps import GapReader, LogEnds

from tests.integration.conftest import wait_for
from tests.integration.pipeline import KINDS, Pipeline, emit_batched, make_events

Sql = Callable[[str], list[tuple[Any, ...]]]


def source_partitions(settings: Settings) -> list[tuple[str, int]]:
    return [
        (topics.named(t, settings.namespace), p)
        for t in topics.KIND_BY_EVENT_TOPIC
        for p in range(settings.kafka.partitions)
    ]


def group_of(settings: Settings) -> str:
    return f"{settings.namespace}.{settings.streams.app_id}"


def test_gap_reader_returns_exactly_the_records_of_each_range(settings: Settings) -> None:
    topic = topics.named(topics.EVENTS_USAGE, settings.namespace)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for i in range(50):
        producer.produce(topic, f"m{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    got = GapReader(settings.kafka.bootstrap_servers).read(
        {(topic, 0): (10, 20), (topic, 1): (0, 5)}
    )
    assert [(r.partition, r.offset, r.value) for r in got] == [
        (0, i, f"m{i}".encode()) for i in range(10, 20)
    ]  # partition 1 is empty: its range ends at the log end, not in a timeout
    tail = GapReader(settings.kafka.bootstrap_servers).read({(topic, 0): (45, 60)})
    assert [r.offset for r in tail] == [45, 46, 47, 48, 49]
    assert all(r.timestamp_ms > 0 for r in tail)


def test_worker_resumed_past_its_state_reads_the_gap_and_rolls_up_every_event(
    settings: Settings, sql: Sql
) -> None:
    # Phase 1 runs without wall-clock closing, so phase 2's events are not late.
    no_idle_close = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"idle_close_seconds": 3600.0})}
    )
    Pipeline(no_idle_close).start("streams")
    pipeline = Pipeline(settings)
    events = make_events(1500, minutes=3)
    first, second = events[: len(events) // 2], events[len(events) // 2 :]
    ends = LogEnds(settings.kafka.bootstrap_servers)
    tps = source_partitions(settings)
    try:
        emit_batched(settings, first)

        def all_committed() -> bool:
            done = ends.committed(tps, group_of(settings))
            return all(done[tp] == end for tp, end in ends.fetch(tps).items() if end > 0)

        wait_for(
            all_committed,
            120,
            lambda: f"the worker to commit all it read\n{pipeline.log('streams')}",
        )
        pipeline.supervisor.stop("streams", timeout=15)
        emit_batched(settings, second)
        # The group now says "all of it is done" while the saved state knows only `first`.
        skip_ahead = Consumer(
            {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group_of(settings)}
        )
        try:
            skip_ahead.commit(
                offsets=[KafkaTopicPartition(t, p, o) for (t, p), o in ends.fetch(tps).items()],
                asynchronous=False,
            )
        finally:
            skip_ahead.close()
        pipeline.start("streams", "sink")
        want = dict.fromkeys(KINDS, 1500)
        wait_for(
            lambda: dict(sql("SELECT kind, sum(count) FROM rollups FINAL GROUP BY kind")) == want,
            180,
            lambda: (
                f"rollups of every event: "
                f"{sql('SELECT kind, sum(count) FROM rollups FINAL GROUP BY kind')}\n"
                f"{pipeline.log('streams')}"
            ),
        )
        assert "state_behind_committed_offset" in pipeline.supervisor.tail("streams", 10_000)
    finally:
        pipeline.stop()
