"""A producer struck by a fatal error is replaced, and everything it had not delivered
is delivered by its successor, once and in order (librdkafka cannot be made to raise a
fatal error on demand, so a fake librdkafka producer stands in for it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Message
from shiftright_server.producers.durable_producer import DurableProducer


@dataclass
class Sent:
    """What librdkafka hands a delivery callback (a Message's accessors)."""

    _topic: str
    _value: bytes | None
    _key: bytes | None
    _partition: int
    _headers: list[tuple[str, bytes]] | None

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def partition(self) -> int:
        return self._partition

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


Report = tuple[KafkaError | None, Sent, Callable[..., None]]


class LibrdkafkaLike:
    """Delivers on flush; after ``strike`` refuses new messages and fails what it holds."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.held: list[tuple[Sent, Callable[..., None]]] = []
        self.reports: list[Report] = []
        self.fatal = False

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None, **kw: Any) -> None:
        if self.fatal:
            raise KafkaException(KafkaError(KafkaError._FATAL, "fatal error raised", fatal=True))
        message = Sent(topic, value, key, kw.get("partition", -1), kw.get("headers"))
        self.held.append((message, kw["on_delivery"]))

    def strike(self, code: int = KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER) -> None:
        self.fatal = True
        self.config["error_cb"](KafkaError(code, "sequence desynchronised", fatal=True))

    def strike_purging_first(self) -> None:
        """librdkafka purges its queue on a fatal error; those reports may be served
        before the error callback."""
        self.purge()
        self.poll()
        self.strike()

    def time_out(self) -> None:
        self._fail(KafkaError(KafkaError._MSG_TIMED_OUT))

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self._fail(KafkaError(KafkaError._PURGE_QUEUE))

    def _fail(self, err: KafkaError) -> None:
        self.reports += [(err, m, cb) for m, cb in self.held]
        self.held.clear()

    def poll(self, timeout: float = 0.0) -> int:
        reports, self.reports = self.reports, []
        for err, message, callback in reports:
            callback(err, message)
        return len(reports)

    def flush(self, timeout: float = 0.0) -> int:
        if not self.fatal:
            self.reports += [(None, m, cb) for m, cb in self.held]
            self.held.clear()
        self.poll()
        return len(self)

    def __len__(self) -> int:
        return len(self.held) + len(self.reports)


class Recorder:
    def __init__(self) -> None:
        self.made: list[LibrdkafkaLike] = []
        self.delivered: list[bytes | None] = []
        self.failed: list[str] = []

    def make(self, config: dict[str, Any]) -> LibrdkafkaLike:
        self.made.append(LibrdkafkaLike(config))
        return self.made[-1]

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered.append(msg.value())
        else:
            self.failed.append(err.name())


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


def durable(seen: Recorder) -> DurableProducer:
    return DurableProducer({"bootstrap.servers": "x"}, seen.on_delivery, make=seen.make)


def test_a_fatal_error_replaces_the_producer_and_every_held_message_is_delivered_once(
    seen: Recorder,
) -> None:
    producer = durable(seen)
    for i in range(5):
        producer.produce("t", f"{i}".encode(), b"k", partition=i % 2, headers=[("h", b"v")])
    seen.made[0].strike()
    producer.poll(0)
    producer.produce("t", b"5", b"k")
    assert producer.flush(1) == 0
    assert len(seen.made) == 2 and producer.replaced == 1
    assert seen.delivered == [f"{i}".encode() for i in range(6)] and seen.failed == []
    assert len(seen.made[1]) == 0  # all delivered by the successor
    assert seen.made[1].config["bootstrap.servers"] == "x"


def test_reports_of_the_purge_a_fatal_error_makes_are_not_failures(seen: Recorder) -> None:
    producer = durable(seen)
    for i in range(3):
        producer.produce("t", f"{i}".encode())
    seen.made[0].strike_purging_first()
    assert producer.flush(1) == 0
    assert seen.failed == [] and seen.delivered == [b"0", b"1", b"2"]


def test_a_message_refused_with_a_fatal_error_goes_to_the_successor(seen: Recorder) -> None:
    producer = durable(seen)
    producer.produce("t", b"0")
    seen.made[0].fatal = True  # librdkafka refuses before its error callback was served
    producer.produce("t", b"1")
    assert producer.flush(1) == 0
    assert producer.replaced == 1 and seen.delivered == [b"0", b"1"]


def test_a_healthy_producers_failures_are_reported_not_sent_again(seen: Recorder) -> None:
    producer = durable(seen)
    producer.produce("t", b"0")
    seen.made[0].time_out()
    producer.poll(0)
    assert seen.failed == ["_MSG_TIMED_OUT"] and seen.delivered == []
    assert producer.flush(1) == 0 and producer.replaced == 0 and len(seen.made) == 1


def test_the_applications_error_callback_still_hears_every_error(seen: Recorder) -> None:
    heard: list[str] = []
    producer = DurableProducer(
        {"error_cb": lambda err: heard.append(err.name())}, seen.on_delivery, make=seen.make
    )
    producer.produce("t", b"0")
    seen.made[0].strike()
    assert producer.flush(1) == 0
    assert heard == ["OUT_OF_ORDER_SEQUENCE_NUMBER"] and seen.delivered == [b"0"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Brokers:
    brokers = {1: "up"}


def test_a_producer_that_holds_messages_and_reports_nothing_while_the_broker_answers_is_replaced(
    seen: Recorder,
) -> None:
    clock = Clock()
    producer = DurableProducer({}, seen.on_delivery, make=seen.make, stall_seconds=30, clock=clock)
    for i in range(3):
        producer.produce("t", f"{i}".encode())
    stuck = seen.made[0]
    stuck.fatal = True  # stands for a stall: flush delivers nothing, and no error is raised
    stuck.list_topics = lambda timeout: Brokers()  # type: ignore[attr-defined]  # the broker answers
    clock.now = 29.0
    producer.poll(0)
    assert len(seen.made) == 1, "replaced before stall_seconds without a report"
    clock.now = 31.0
    assert producer.flush(1) == 0
    assert producer.replaced == 1 and seen.delivered == [b"0", b"1", b"2"]


def test_a_producer_waiting_for_an_absent_broker_is_left_alone(seen: Recorder) -> None:
    clock = Clock()
    producer = DurableProducer({}, seen.on_delivery, make=seen.make, clock=clock)
    producer.produce("t", b"0")
    waiting = seen.made[0]
    waiting.fatal = True

    def refused(timeout: float) -> Any:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))

    waiting.list_topics = refused  # type: ignore[attr-defined]  # the broker is away
    clock.now = 100.0
    assert producer.flush(0.1) == 1
    assert producer.replaced == 0 and seen.delivered == [] and seen.failed == []
