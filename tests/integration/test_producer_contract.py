"""One contract, two implementations: the FakeProducer the gateway's unit tests run on
behaves like a confluent-kafka Producer configured as the gateway configures it, on the
real broker and on one that is away, in everything KafkaPublisher relies on: delivery
reports served by ``poll``, their error codes, ``flush``, ``list_topics``, ``error_cb``
and a bounded queue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from confluent_kafka import KafkaError, Producer
from shiftright_server.infra.kafka.topics import ensure_topics
from shiftright_server.producers.emitter import producer_config
from shiftright_server.producers.gateway.publisher import PublisherLimits
from shiftright_server.schemas import wire

from tests.fakes import FakeProducer
from tests.integration.kafka_fixture import free_ports


class Reports(list[Any]):
    """The ``err`` of each delivery report, in arrival order."""


class Brokers(Protocol):
    """Producers as the gateway makes them, against a broker in a given condition."""

    topic: str

    def up(self, config: dict[str, Any]) -> Any: ...
    def away(self, config: dict[str, Any]) -> Any: ...


@dataclass
class FakeBrokers:
    topic: str = "contract.fake"

    def up(self, config: dict[str, Any]) -> FakeProducer:
        full_after = config.get("queue.buffering.max.messages")
        return FakeProducer(config=config, full_after=full_after)

    def away(self, config: dict[str, Any]) -> FakeProducer:
        """Reports wait until the message timeout, then say it timed out. The fake has no
        clock: a timeout a test can wait for (under 10 s) is reported at once, a longer one
        never."""
        timed_out = config["message.timeout.ms"] < 10_000
        made = FakeProducer(
            config=config,
            hold=not timed_out,
            error=KafkaError._MSG_TIMED_OUT if timed_out else None,
            reachable=False,
        )
        if "error_cb" in config:
            made.all_brokers_down()
        return made


@dataclass
class RealBrokers:
    bootstrap: str
    topic: str = ""

    def __post_init__(self) -> None:
        self.topic = f"contract.{uuid.uuid4().hex[:8]}"
        ensure_topics(self.bootstrap, {self.topic: 2})

    def up(self, config: dict[str, Any]) -> Producer:
        return Producer(gateway_config(self.bootstrap, **config))

    def away(self, config: dict[str, Any]) -> Producer:
        [port] = free_ports(1)
        return Producer(gateway_config(f"127.0.0.1:{port}", **config))


def gateway_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """What ``kafka_publisher`` gives confluent-kafka, with the default limits."""
    limits = PublisherLimits()
    return producer_config(
        bootstrap,
        **{
            "message.timeout.ms": max(1000, int(limits.ack_timeout * 1000) - 1000),
            "linger.ms": 5,
            "queue.buffering.max.messages": limits.max_pending_events + 1000,
            "queue.buffering.max.kbytes": limits.max_pending_bytes // 1024 + 1024,
            **overrides,
        },
    )


@pytest.fixture(params=["fake", "kafka"])
def brokers(request: pytest.FixtureRequest) -> Brokers:
    if request.param == "fake":
        return FakeBrokers()
    return RealBrokers(request.getfixturevalue("kafka_bootstrap"))


def produce(producer: Any, topic: str, n: int, reports: Reports) -> None:
    """``n`` messages the way the publisher produces them."""
    for i in range(n):
        producer.produce(
            topic,
            f'{{"i": {i}}}'.encode(),
            b"checkout|prod",
            headers=wire.BATCH_HEADERS,
            on_delivery=lambda err, _msg: reports.append(err),
        )


def poll_until(producer: Any, done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        producer.poll(0.05)
    assert done(), f"not within {timeout:.0f}s"


def errors_seen(config: dict[str, Any]) -> list[Any]:
    """Install an ``error_cb`` (as the publisher does) that collects what it is given."""
    seen: list[Any] = []
    config["error_cb"] = seen.append
    return seen


def test_every_message_is_reported_delivered_once_by_poll_then_flush_has_nothing_left(
    brokers: Brokers,
) -> None:
    producer, reports = brokers.up({}), Reports()
    produce(producer, brokers.topic, 20, reports)
    poll_until(producer, lambda: len(reports) == 20)
    assert reports == [None] * 20
    assert producer.flush(5) == 0
    producer.poll(0.2)
    assert len(reports) == 20


def test_the_broker_is_listed_when_it_is_up(brokers: Brokers) -> None:
    brokers.up({}).list_topics(timeout=10)  # raises when it cannot answer


def test_a_full_queue_raises_buffer_error_and_a_report_frees_a_place(brokers: Brokers) -> None:
    producer, reports = brokers.up({"queue.buffering.max.messages": 2}), Reports()
    produce(producer, brokers.topic, 2, reports)
    with pytest.raises(BufferError):
        produce(producer, brokers.topic, 1, reports)
    poll_until(producer, lambda: len(reports) == 2)
    produce(producer, brokers.topic, 1, reports)
    poll_until(producer, lambda: len(reports) == 3)
    assert reports == [None] * 3


def test_a_broker_that_is_away_holds_reports_says_so_and_cannot_be_listed(
    brokers: Brokers,
) -> None:
    config: dict[str, Any] = {"message.timeout.ms": 60_000}
    errors = errors_seen(config)
    producer, reports = brokers.away(config), Reports()
    produce(producer, brokers.topic, 2, reports)
    poll_until(producer, lambda: KafkaError._ALL_BROKERS_DOWN in {e.code() for e in errors})
    assert all(isinstance(e.str(), str) for e in errors)
    assert reports == []
    assert producer.flush(0.2) == 2  # still waiting for their reports
    with pytest.raises(Exception):  # noqa: B017 - the publisher treats any raise as "still down"
        producer.list_topics(timeout=1.0)


def test_a_message_not_acknowledged_in_time_is_reported_timed_out(brokers: Brokers) -> None:
    config: dict[str, Any] = {"message.timeout.ms": 1000}
    producer, reports = brokers.away(config), Reports()
    produce(producer, brokers.topic, 3, reports)
    poll_until(producer, lambda: len(reports) == 3)
    assert [(e.code(), e.name()) for e in reports] == [
        (KafkaError._MSG_TIMED_OUT, "_MSG_TIMED_OUT")
    ] * 3
    assert producer.flush(1) == 0
