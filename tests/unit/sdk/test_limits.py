"""Sampling, rate limits, the queue bound and the transport's failures: what is dropped is
counted by reason, and the app thread never waits."""

from __future__ import annotations

import logging
import time
from typing import Any

import shiftright

from tests.unit.sdk.conftest import SDK


def test_sample_rate_zero_keeps_nothing_and_counts_it(sdk: SDK) -> None:
    sdk.init(sample_rates={"usage": 0.0})
    for _ in range(100):
        shiftright.track("a")
    shiftright.capture_message("kept: errors are not sampled")
    assert len(sdk.events("usage")) == 0 and len(sdk.events("error")) == 1
    assert shiftright.stats()["dropped"] == {"sampled": 100}


def test_sample_rate_keeps_about_that_fraction(sdk: SDK) -> None:
    sdk.init(sample_rates={"usage": 0.25})
    for _ in range(4000):
        shiftright.track("a")
    kept = len(sdk.events("usage"))
    assert 800 < kept < 1200
    assert shiftright.stats()["dropped"]["sampled"] == 4000 - kept


def test_rate_limit_lets_a_burst_through_then_counts_the_rest(sdk: SDK) -> None:
    sdk.init(rate_limits={"error": 10.0})
    for i in range(50):
        shiftright.capture_exception(ValueError(i))
    assert len(sdk.events("error")) in (10, 11)  # the burst, plus a token refilled meanwhile
    assert shiftright.stats()["dropped"]["rate_limited"] in (39, 40)


def test_slow_broker_fills_the_bounded_queue_then_drops_without_blocking(sdk: SDK) -> None:
    sdk.init(queue_size=1000)
    transport = sdk.transport
    transport.gate.clear()  # the sender is stuck inside produce, as with a hung broker
    shiftright.track("first")
    assert transport.produced.wait(2)
    slowest = 0.0
    for _ in range(5000):
        started = time.perf_counter()
        shiftright.track("b")
        slowest = max(slowest, time.perf_counter() - started)
    stats = shiftright.stats()
    assert stats["queued"] == 1000 and stats["dropped"] == {"queue_full": 4000}
    assert slowest < 1.0, f"track() waited {slowest * 1000:.1f} ms"  # blocked would be forever
    transport.gate.set()
    assert shiftright.flush(5) == 0
    assert len(transport.events("usage")) == 1001


def test_a_full_transport_drops_batches_and_counts_their_events(sdk: SDK) -> None:
    sdk.init()
    sdk.transport.full = True
    for _ in range(30):
        shiftright.track("c")
    shiftright.flush(1)
    stats = shiftright.stats()
    assert stats["dropped"] == {"transport_full": 30} and stats["sent"] == 0


def test_undelivered_events_are_counted_per_kafka_error(sdk: SDK) -> None:
    sdk.init()
    sdk.transport.fail_with = "_MSG_TIMED_OUT"
    for _ in range(25):
        shiftright.track("d")
    assert shiftright.flush(2) == 0
    stats = shiftright.stats()
    assert stats["failed"] == {"_MSG_TIMED_OUT": 25} and stats["delivered"] == 0


def test_delivered_events_are_counted_per_kind(sdk: SDK) -> None:
    sdk.init()
    for _ in range(7):
        shiftright.track("e")
    try:
        raise KeyError("k")
    except KeyError:
        shiftright.capture_exception()
    assert shiftright.flush(2) == 0
    stats = shiftright.stats()
    assert stats["delivered_by_kind"] == {"usage": 7, "error": 1} and stats["delivered"] == 8


def test_events_are_batched_per_topic_and_key(sdk: SDK) -> None:
    sdk.init(flush_interval=5)
    for i in range(300):
        shiftright.track(f"feature.{i % 3}")
    shiftright.capture_message("m")
    assert len(sdk.events()) == 301
    keys = sorted((m.topic, m.key, m.value.count(b"\n") + 1) for m in sdk.transport.messages)
    assert keys == [
        ("events.error.v1", b"checkout|test|Message", 1),
        ("events.usage.v1", b"checkout|test|feature.0", 100),
        ("events.usage.v1", b"checkout|test|feature.1", 100),
        ("events.usage.v1", b"checkout|test|feature.2", 100),
    ]


def test_namespace_prefixes_topics(sdk: SDK) -> None:
    sdk.init(namespace="t123")
    shiftright.track("e")
    sdk.events()
    assert [m.topic for m in sdk.transport.messages] == ["t123.events.usage.v1"]


def test_calls_before_init_and_after_close_are_harmless(sdk: SDK) -> None:
    shiftright.track("nobody listens")
    shiftright.capture_exception(ValueError())
    assert shiftright.flush(0.1) == 0 and shiftright.stats() == {}
    sdk.init()
    shiftright.close()
    shiftright.track("after close")
    assert sdk.transport.closed and sdk.transport.events() == []


def test_delivery_failures_are_logged_at_most_once_a_minute(sdk: SDK, caplog: Any) -> None:
    sdk.init(flush_interval=0.01)
    sdk.transport.fail_with = "_MSG_TIMED_OUT"
    with caplog.at_level(logging.WARNING, logger="shiftright"):
        for _ in range(20):
            shiftright.track("e")
            shiftright.flush(1)
    reports = [r for r in caplog.records if "events_undelivered" in r.getMessage()]
    assert len(reports) == 1 and "_MSG_TIMED_OUT" in reports[0].getMessage()
    assert shiftright.stats()["failed"] == {"_MSG_TIMED_OUT": 20}
