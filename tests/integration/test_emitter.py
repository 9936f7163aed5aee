"""The emitter's batches: every event sits on the partition its own key maps to (as if it
had been sent alone), and batching per partition makes far fewer messages than keys."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Message
from shiftright_server.infra.settings import Settings
from shiftright_server.producers.emitter import Emitter
from shiftright_server.schemas import topics, wire

from tests.integration.pipeline import make_events


def consume_all(
    settings: Settings, topic: str, events: int, carried: Callable[[Message], int] = lambda m: 1
) -> list[Message]:
    """The topic's messages, once they carry ``events`` events (``carried`` counts them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.namespace}-check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics.named(topic, settings.namespace)])
    got: list[Message] = []
    deadline = time.monotonic() + 60
    try:
        while sum(map(carried, got)) < events and time.monotonic() < deadline:
            got += [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
    finally:
        consumer.close()
    return got


def key_of(event: dict[str, Any]) -> bytes:
    return f"{event['app']}|{event['env']}|{event['name']}".encode()


def test_single_events_land_where_our_murmur2_says(kafka_settings: Settings) -> None:
    settings = kafka_settings
    events = [e for e in make_events(300) if e["kind"] == "usage"]
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    for e in events:
        assert emitter.emit_dict(e)
    assert emitter.flush(30) == 0
    messages = consume_all(settings, topics.EVENTS_USAGE, len(events))
    assert len(messages) == len(events)
    for m in messages:  # librdkafka's murmur2_random placed it; ours must agree
        assert m.partition() == wire.partition_of(m.key(), settings.kafka.partitions)


def test_batches_group_by_partition_and_keep_each_event_on_its_keys_partition(
    kafka_settings: Settings,
) -> None:
    settings = kafka_settings
    events = [e for e in make_events(3000) if e["kind"] == "usage"]
    emitter = Emitter(settings.kafka.bootstrap_servers, settings.namespace)
    assert emitter.emit_many(events) == len(events)
    assert emitter.flush(30) == 0
    messages = consume_all(
        settings,
        topics.EVENTS_USAGE,
        len(events),
        lambda m: len(wire.split_events(m.value(), m.headers())),
    )
    lines = [
        (m.partition(), json.loads(line or b""))
        for m in messages
        for line in wire.split_events(m.value(), m.headers())
    ]
    assert len(lines) == len(events)
    assert Counter(e["event_id"] for _, e in lines) == Counter(e["event_id"] for e in events)
    for partition, event in lines:
        assert partition == wire.partition_of(key_of(event), settings.kafka.partitions)
    # One message per partition instead of one per key.
    assert len({key_of(e) for e in events}) == 14
    assert len(messages) == len({p for p, _ in lines}) <= settings.kafka.partitions
