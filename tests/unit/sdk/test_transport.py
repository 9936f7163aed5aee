"""The producer settings every confluent-kafka producer of shiftright needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import confluent_kafka
import pytest
import shiftright
from shiftright.transport import KafkaTransport, producer_config
from shiftright_server.producers.emitter import producer_config as emitter_config
from shiftright_server.schemas import wire

from tests.unit.sdk.conftest import SDK
from tests.unit.test_durable_producer import LibrdkafkaLike


def test_producer_settings_match_the_pipeline_expectations() -> None:
    config = shiftright.Config(
        app="a",
        env="e",
        kafka="b1:9092,b2:9092",
        message_timeout_ms=9000,
        producer_config={"linger.ms": 5},
    )
    settings = producer_config(config)
    assert settings["bootstrap.servers"] == "b1:9092,b2:9092"
    assert settings["partitioner"] == "murmur2_random"  # where Faust expects keys
    assert settings["enable.idempotence"] is True and settings["compression.type"] == "lz4"
    assert settings["message.timeout.ms"] == 9000 < 300_000  # librdkafka's default is 5 min
    assert settings["linger.ms"] == 5  # overrides win
    assert settings["message.max.bytes"] == emitter_config("x")["message.max.bytes"]


def test_the_sdks_partitioner_is_the_pipelines() -> None:
    from shiftright.partition import partition_of

    keys = [f"checkout|prod|feature.{i}".encode() * (1 + i % 3) for i in range(500)] + [b""]
    for n in (1, 3, 8, 24):
        assert [partition_of(k, n) for k in keys] == [wire.partition_of(k, n) for k in keys]


def test_events_are_batched_per_partition_once_the_partition_count_is_known(sdk: SDK) -> None:
    sdk.init(flush_interval=30)  # the sender drains once, at flush()
    sdk.transport.partition_count = 4
    names = [f"feature.{i}" for i in range(40)]
    for name in names * 5:
        shiftright.track(name)
    assert shiftright.flush(5) == 0
    messages = sdk.transport.messages
    assert len(messages) <= 4 < len(names)  # one message per partition, not per key
    for m in messages:  # every event sits on the partition its own key maps to
        for line in m.value.split(b"\n"):
            name = json.loads(line)["name"]
            own = wire.partition_of(f"checkout|test|{name}".encode(), 4)
            assert wire.partition_of(m.key, 4) == own
    assert sorted(e["name"] for e in sdk.transport.events()) == sorted(names * 5)


def test_until_the_partition_count_is_known_events_are_batched_per_key(sdk: SDK) -> None:
    sdk.init(flush_interval=30)  # the fake broker has not answered metadata
    for name in ("a", "b", "a", "c"):
        shiftright.track(name)
    assert shiftright.flush(5) == 0
    assert sorted(m.key for m in sdk.transport.messages) == [
        b"checkout|test|a",
        b"checkout|test|b",
        b"checkout|test|c",
    ]


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[LibrdkafkaLike]:
    """The librdkafka stand-ins the transport makes, in order."""
    made: list[LibrdkafkaLike] = []

    def make(config: dict[str, Any]) -> LibrdkafkaLike:
        made.append(LibrdkafkaLike(config))
        return made[-1]

    monkeypatch.setattr(confluent_kafka, "Producer", make)
    return made


Outcomes = list[tuple[int, str | None]]


def reporter(outcomes: Outcomes) -> Callable[[int], Callable[[str | None], None]]:
    def outcome_of(i: int) -> Callable[[str | None], None]:
        return lambda err: outcomes.append((i, err))

    return outcome_of


def test_a_fatal_producer_error_loses_nothing_handed_to_the_transport(
    made: list[LibrdkafkaLike],
) -> None:
    transport = KafkaTransport(shiftright.Config(app="a", env="e", kafka="b:9092"))
    outcomes: Outcomes = []
    outcome_of = reporter(outcomes)
    for i in range(4):
        transport.produce("t", b"%d" % i, b"k", [("h", b"v")], outcome_of(i))
    made[0].strike()  # librdkafka's error callback: the producer is done for
    transport.poll(0)
    transport.produce("t", b"4", b"k", [], outcome_of(4))
    assert transport.flush(1) == 0
    assert len(made) == 2
    assert sorted(outcomes) == [(i, None) for i in range(5)]  # each delivered, once


def test_purge_queued_gives_back_what_waits_and_a_later_fatal_purge_still_resends(
    made: list[LibrdkafkaLike],
) -> None:
    """The disk spill's purge hands messages back (PURGED) without replacing the producer;
    the purge librdkafka makes on a fatal error still means "send again"."""
    from shiftright.transport import PURGED

    transport = KafkaTransport(shiftright.Config(app="a", env="e", kafka="b:9092"))
    outcomes: Outcomes = []
    outcome_of = reporter(outcomes)
    for i in range(3):
        transport.produce("t", b"%d" % i, b"k", [], outcome_of(i))
    transport.purge_queued()
    assert outcomes == [(0, PURGED), (1, PURGED), (2, PURGED)] and len(made) == 1

    transport.produce("t", b"3", b"k", [], outcome_of(3))
    made[0].strike_purging_first()
    transport.poll(0)
    assert transport.flush(1) == 0
    assert outcomes[3:] == [(3, None)] and len(made) == 2, "sent again by the successor"
