"""The local Kafka launcher against the clients the project uses: confluent-kafka for
producers and sinks, aiokafka (under Faust) for stream processors."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from shiftright_server.infra.kafka.launcher import KafkaLauncher, KafkaLaunchError
from shiftright_server.infra.kafka.topics import ensure_topics

from tests.integration.kafka_fixture import free_ports, stop_kafka

pytestmark = pytest.mark.integration

PARTITIONS = 8
MESSAGES = 1_000


def _topic(kind: str) -> str:
    return f"test.{kind}.{uuid.uuid4().hex[:8]}"


def _key(i: int) -> bytes:
    return f"tenant-{i % 97}".encode()


def _murmur2_partition(key: bytes) -> int:
    """Where Java's and aiokafka's (so Faust's) default partitioner put ``key``."""
    partitions = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, partitions, partitions))


def _produce_with_confluent(bootstrap: str, topic: str) -> dict[bytes, set[int]]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "compression.type": "lz4",
            "linger.ms": 20,
            "message.timeout.ms": 30_000,
        }
    )
    landed: dict[bytes, set[int]] = {}
    errors: list[object] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            key, partition = msg.key(), msg.partition()
            assert key is not None and partition is not None
            landed.setdefault(key, set()).add(partition)

    for i in range(MESSAGES):
        producer.produce(topic, key=_key(i), value=f"event-{i}".encode(), on_delivery=delivered)
    assert producer.flush(30) == 0
    assert errors == []
    return landed


async def _consume_with_aiokafka(
    bootstrap: str, topic: str, group: str
) -> list[tuple[int, bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[tuple[int, bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(seen) < MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    seen.extend((tp.partition, r.key, r.value) for r in records)
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
    finally:
        await consumer.stop()
    assert sum(c or 0 for c in committed) == MESSAGES
    return seen


def test_confluent_lz4_murmur2_messages_reach_an_aiokafka_group(
    kafka_launcher: KafkaLauncher,
) -> None:
    topic = _topic("confluent-to-aiokafka")
    assert ensure_topics(kafka_launcher.bootstrap, {topic: PARTITIONS}) == [topic]

    landed = _produce_with_confluent(kafka_launcher.bootstrap, topic)
    seen = asyncio.run(_consume_with_aiokafka(kafka_launcher.bootstrap, topic, f"g-{topic}"))

    assert sorted(v for _, _, v in seen) == sorted(f"event-{i}".encode() for i in range(MESSAGES))
    # A keyed message must sit where Faust would look for that key's table state.
    assert {k: {_murmur2_partition(k)} for k in landed} == landed
    assert all(p == _murmur2_partition(k) for p, k, _ in seen)
    assert len({p for p, _, _ in seen}) > 1


async def _produce_with_aiokafka(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type="lz4", enable_idempotence=True, linger_ms=20
    )
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=_key(i), value=f"event-{i}".encode())
            for i in range(MESSAGES)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _consume_with_confluent(
    bootstrap: str, topic: str, group: str
) -> list[tuple[int | None, bytes | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[tuple[int | None, bytes | None]] = []
    try:
        for _ in range(120):
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None, msg.error()
                seen.append((msg.partition(), msg.key()))
            if len(seen) >= MESSAGES:
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert _committed_total(bootstrap, topic, group) == MESSAGES
    return seen


def _committed_total(bootstrap: str, topic: str, group: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [ConfluentTopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
    finally:
        consumer.close()


def test_aiokafka_lz4_idempotent_messages_reach_a_confluent_group(
    kafka_launcher: KafkaLauncher,
) -> None:
    topic = _topic("aiokafka-to-confluent")
    ensure_topics(kafka_launcher.bootstrap, {topic: PARTITIONS})

    asyncio.run(_produce_with_aiokafka(kafka_launcher.bootstrap, topic))
    seen = _consume_with_confluent(kafka_launcher.bootstrap, topic, f"g-{topic}")

    assert len(seen) == MESSAGES
    assert all(k is not None and p == _murmur2_partition(k) for p, k in seen)


def test_ensure_topics_is_idempotent_and_keeps_existing_partitions(
    kafka_launcher: KafkaLauncher,
) -> None:
    topic = _topic("idempotent")
    assert ensure_topics(kafka_launcher.bootstrap, {topic: 3}, {"retention.ms": "3600000"}) == [
        topic
    ]
    assert ensure_topics(kafka_launcher.bootstrap, {topic: PARTITIONS}) == []

    landed = _produce_with_confluent(kafka_launcher.bootstrap, topic)
    assert {p for parts in landed.values() for p in parts} <= {0, 1, 2}


def test_unknown_topics_are_not_auto_created(kafka_launcher: KafkaLauncher) -> None:
    producer = Producer(
        {"bootstrap.servers": kafka_launcher.bootstrap, "message.timeout.ms": 3_000}
    )
    errors: list[object] = []
    producer.produce(_topic("typo"), b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 1 and errors[0] is not None


def test_a_port_in_use_fails_fast_with_a_clear_error(
    tmp_path: Path, kafka_launcher: KafkaLauncher
) -> None:
    (controller_port,) = free_ports(1)
    clash = KafkaLauncher(tmp_path, port=kafka_launcher.port, controller_port=controller_port)
    with pytest.raises(KafkaLaunchError, match="in use"):
        clash.launch()


def test_data_and_offsets_survive_a_restart_without_reformatting(
    restartable_kafka: KafkaLauncher,
) -> None:
    kafka = restartable_kafka
    topic, group = _topic("durable"), f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.bootstrap, {topic: PARTITIONS})
    _produce_with_confluent(kafka.bootstrap, topic)
    asyncio.run(_consume_with_aiokafka(kafka.bootstrap, topic, group))
    meta_before = (kafka.data_dir / "meta.properties").read_text()
    stop_kafka(kafka)

    kafka.launch()
    assert kafka.format() is False
    assert (kafka.data_dir / "meta.properties").read_text() == meta_before
    assert _committed_total(kafka.bootstrap, topic, group) == MESSAGES
    seen = asyncio.run(_consume_with_aiokafka(kafka.bootstrap, topic, group + "-after"))
    assert len(seen) == MESSAGES
