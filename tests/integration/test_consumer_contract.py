"""One contract, two implementations: the FakeConsumer the sink's unit tests run on behaves
like a confluent-kafka Consumer (configured as the sink configures it) on the real broker,
in everything the sink relies on: assignment, order, positions, commits, pause and resume."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition
from shiftright_server.infra.kafka.topics import ensure_topics
from shiftright_server.infra.settings import KafkaSettings, Settings
from shiftright_server.sinks.__main__ import consumer_config

from tests.fakes import FakeConsumer, FakeMessage

T_MS = 1_764_000_000_000  # a fixed create time, in ms


class Log(Protocol):
    """A broker to the test: topics to append to, consumers to read them with."""

    def topic(self, partitions: int) -> str: ...
    def append(
        self, topic: str, partition: int, values: list[bytes], headers: Any = None
    ) -> None: ...
    def consumer(self, group: str) -> Any: ...


@dataclass
class FakeLog:
    messages: dict[tuple[str, int], list[FakeMessage]] = field(default_factory=dict)
    groups: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)

    def topic(self, partitions: int) -> str:
        name = f"contract.{uuid.uuid4().hex[:8]}"
        for p in range(partitions):
            self.messages[(name, p)] = []
        return name

    def append(self, topic: str, partition: int, values: list[bytes], headers: Any = None) -> None:
        log = self.messages[(topic, partition)]
        for value in values:
            log.append(FakeMessage(topic, partition, len(log), value, T_MS, headers))

    def consumer(self, group: str) -> FakeConsumer:
        return FakeConsumer(self.messages, committed=self.groups.setdefault(group, {}))


@dataclass
class KafkaLog:
    bootstrap: str
    opened: list[Consumer] = field(default_factory=list)

    def topic(self, partitions: int) -> str:
        name = f"contract.{uuid.uuid4().hex[:8]}"
        ensure_topics(self.bootstrap, {name: partitions})
        return name

    def append(self, topic: str, partition: int, values: list[bytes], headers: Any = None) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap})
        for value in values:
            producer.produce(topic, value, partition=partition, headers=headers, timestamp=T_MS)
        assert producer.flush(30) == 0, "the broker did not acknowledge every message"

    def consumer(self, group: str) -> Consumer:
        settings = Settings(kafka=KafkaSettings(bootstrap=self.bootstrap))
        made = Consumer({**consumer_config(settings), "group.id": group})
        self.opened.append(made)
        return made


@pytest.fixture(params=["fake", "kafka"])
def log(request: pytest.FixtureRequest) -> Iterator[Log]:
    if request.param == "fake":
        yield FakeLog()
        return
    real = KafkaLog(request.getfixturevalue("kafka_bootstrap"))
    yield real
    for consumer in real.opened:
        consumer.close()


def drain(consumer: Any, want: int, timeout: float = 30.0) -> list[Any]:
    """Consume until ``want`` messages arrived; fail after ``timeout`` seconds."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        batch = consumer.consume(num_messages=want - len(got), timeout=0.2)
        got += [m for m in batch if m.error() is None]
    assert len(got) == want, f"{len(got)} of {want} messages within {timeout:.0f}s"
    return got


def positions(messages: list[Any]) -> list[tuple[int, int]]:
    return [(m.partition(), m.offset()) for m in messages]


def values(n: int, tag: str = "v") -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def test_a_new_group_gets_every_partition_and_reads_each_from_the_start_in_order(
    log: Log,
) -> None:
    topic = log.topic(partitions=2)
    log.append(topic, 0, values(5, "a"))
    log.append(topic, 1, values(4, "b"))
    assigned: list[tuple[str, int]] = []
    consumer = log.consumer(group())
    consumer.subscribe(
        [topic], on_assign=lambda _c, tps: assigned.extend((tp.topic, tp.partition) for tp in tps)
    )
    got = drain(consumer, 9)
    for partition, expected in ((0, values(5, "a")), (1, values(4, "b"))):
        mine = [m for m in got if m.partition() == partition]
        assert [m.offset() for m in mine] == list(range(len(expected)))
        assert [m.value() for m in mine] == expected
    assert sorted(assigned) == [(topic, 0), (topic, 1)]
    assert sorted((tp.topic, tp.partition) for tp in consumer.assignment()) == sorted(assigned)


def test_a_message_carries_its_topic_value_headers_and_create_time(log: Log) -> None:
    topic = log.topic(partitions=1)
    headers = [("format", b"ndjson"), ("v", b"1")]
    log.append(topic, 0, [b'{"x": 1}'], headers=headers)
    consumer = log.consumer(group())
    consumer.subscribe([topic])
    [message] = drain(consumer, 1)
    assert message.error() is None
    assert (message.topic(), message.partition(), message.offset()) == (topic, 0, 0)
    assert message.value() == b'{"x": 1}'
    assert message.headers() == headers
    assert message.timestamp() == (TIMESTAMP_CREATE_TIME, T_MS)


def test_only_the_subscribed_topics_are_read(log: Log) -> None:
    wanted, other = log.topic(partitions=1), log.topic(partitions=1)
    log.append(other, 0, values(3, "other"))
    log.append(wanted, 0, values(2, "wanted"))
    consumer = log.consumer(group())
    consumer.subscribe([wanted])
    got = drain(consumer, 2)
    assert {m.topic() for m in got} == {wanted}
    assert not settles_with_more(consumer)


def test_consume_returns_at_most_num_messages_and_the_next_call_goes_on(log: Log) -> None:
    topic = log.topic(partitions=1)
    log.append(topic, 0, values(10))
    consumer = log.consumer(group())
    consumer.subscribe([topic])
    first = wait_for_some(consumer, num_messages=3)
    assert 1 <= len(first) <= 3
    rest = drain(consumer, 10 - len(first))
    assert positions(first + rest) == [(0, i) for i in range(10)]


def test_after_a_fetch_the_consumer_knows_how_far_the_partition_goes(log: Log) -> None:
    topic = log.topic(partitions=1)
    log.append(topic, 0, values(10))
    consumer = log.consumer(group())
    consumer.subscribe([topic])
    wait_for_some(consumer, num_messages=3)
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), cached=True)
    assert high == 10


def test_a_group_resumes_from_its_committed_offsets(log: Log) -> None:
    topic, name = log.topic(partitions=2), group()
    log.append(topic, 0, values(6))
    log.append(topic, 1, values(3))
    first = log.consumer(name)
    first.subscribe([topic])
    drain(first, 9)
    first.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    first.close()
    again = log.consumer(name)
    again.subscribe([topic])
    got = drain(again, 2 + 3)  # offsets 4-5 of partition 0; partition 1 had no commit
    assert sorted(positions(got)) == [(0, 4), (0, 5), (1, 0), (1, 1), (1, 2)]


def test_paused_partitions_yield_nothing_and_resume_where_they_stopped(log: Log) -> None:
    topic = log.topic(partitions=1)
    log.append(topic, 0, values(8))
    consumer = log.consumer(group())
    consumer.subscribe([topic])
    first = wait_for_some(consumer, num_messages=2)
    consumer.pause(consumer.assignment())
    assert not settles_with_more(consumer)
    consumer.resume(consumer.assignment())
    rest = drain(consumer, 8 - len(first))
    assert positions(first + rest) == [(0, i) for i in range(8)]


def wait_for_some(consumer: Any, num_messages: int, timeout: float = 30.0) -> list[Any]:
    """The first non-empty answer of ``consume`` (the group must be joined first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = list(consumer.consume(num_messages=num_messages, timeout=0.2))
        if got:
            return got
    pytest.fail(f"no message within {timeout:.0f}s")


def settles_with_more(consumer: Any, rounds: int = 5) -> bool:
    """Whether ``consume`` still returns anything over ``rounds`` polls of 0.2 s (what the
    sink does while it backs off)."""
    return any(consumer.consume(num_messages=10, timeout=0.2) for _ in range(rounds))
