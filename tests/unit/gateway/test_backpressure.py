"""Back-pressure and Kafka outages: 429/503 with Retry-After, never unbounded buffering,
and 200 only once Kafka acknowledged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from confluent_kafka import KafkaError
from fastapi.testclient import TestClient
from shiftright_server.producers.gateway.errors import Backpressure, KafkaUnavailable
from shiftright_server.producers.gateway.publisher import (
    KafkaPublisher,
    OutMessage,
    PublisherLimits,
)

from tests.fakes import FakeProducer
from tests.unit.gateway.fakes import build

EVENT = {"kind": "usage", "name": "a"}


def client_for(
    tmp_path: Path, producer: FakeProducer, limits: PublisherLimits | None = None
) -> tuple[TestClient, dict[str, str], FakeProducer]:
    made = build(tmp_path, producer, limits=limits or PublisherLimits())
    token, _ = made.keys.create("checkout", "prod")
    return TestClient(made.app), {"Authorization": f"Bearer {token}"}, made.producer


def test_full_pending_bound_is_429_with_retry_after_and_nothing_produced(tmp_path: Path) -> None:
    # Deliveries are held (a slow broker): the first 3 events wait for their acks.
    client, auth, producer = client_for(
        tmp_path,
        FakeProducer(hold=True),
        PublisherLimits(max_pending_events=4, ack_timeout=0.3, retry_after=2),
    )
    first = client.post("/v1/events", json=[EVENT] * 3, headers=auth)
    assert first.status_code == 503  # not acknowledged in time
    assert first.headers["retry-after"] == "5"
    second = client.post("/v1/events", json=[EVENT] * 2, headers=auth)
    assert second.status_code == 429 and second.headers["retry-after"] == "2"
    assert second.json()["error"] == "backpressure"
    assert len(producer.produced) == 1  # the second request never reached the queue


def test_producer_queue_full_is_429(tmp_path: Path) -> None:
    client, auth, _ = client_for(tmp_path, FakeProducer(full_after=0))
    response = client.post("/v1/events", json=EVENT, headers=auth)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"


def test_delivery_failure_is_503(tmp_path: Path) -> None:
    client, auth, _ = client_for(tmp_path, FakeProducer(error=KafkaError._MSG_TIMED_OUT))
    response = client.post("/v1/events", json=EVENT, headers=auth)
    assert response.status_code == 503 and response.json()["error"] == "kafka_unavailable"
    assert "_MSG_TIMED_OUT" in response.json()["message"]


def test_brokers_down_is_503_at_once_and_healthz_says_so(tmp_path: Path) -> None:
    producer = FakeProducer(reachable=False)
    client, auth, _ = client_for(tmp_path, producer)
    producer.all_brokers_down()
    response = client.post("/v1/events", json=EVENT, headers=auth)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    otlp = client.post(
        "/v1/logs", content=b"", headers={**auth, "Content-Type": "application/x-protobuf"}
    )
    assert otlp.status_code == 503 and otlp.headers["retry-after"] == "5"
    assert producer.produced == []
    assert client.get("/healthz").status_code == 503
    assert "shiftright_gateway_kafka_up 0.0" in client.get("/metrics").text
    producer.reachable = True  # the broker is back: the poll thread's probe notices
    deadline = time.monotonic() + 5
    while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.post("/v1/events", json=EVENT, headers=auth).status_code == 200


def test_publish_returns_only_after_the_delivery_report() -> None:
    producer = FakeProducer(hold=True)
    publisher = KafkaPublisher(lambda config: producer, limits=PublisherLimits(ack_timeout=5))

    async def scenario() -> tuple[bool, bool]:
        task = asyncio.create_task(
            publisher.publish([OutMessage("events.usage.v1", b"k", b"{}", 1)])
        )
        while not producer.produced:  # published, now waiting for the report
            await asyncio.sleep(0.005)
        waiting = not task.done()
        producer.hold = False  # the broker acknowledges now
        await asyncio.wait_for(task, 2)
        return waiting, task.done()

    waiting, done = asyncio.run(scenario())
    assert waiting and done
    assert publisher.pending_events == 0
    publisher.close(0)


def test_oversized_request_alone_is_admitted_but_bound_holds_for_the_next() -> None:
    producer = FakeProducer(hold=True)
    publisher = KafkaPublisher(
        lambda config: producer, limits=PublisherLimits(max_pending_events=2, ack_timeout=0.2)
    )
    big = [OutMessage("events.usage.v1", b"k", b"x", 5)]

    async def scenario() -> list[type[Exception]]:
        seen: list[type[Exception]] = []
        for _ in range(2):
            try:
                await publisher.publish(big)
            except (Backpressure, KafkaUnavailable) as exc:
                seen.append(type(exc))
        return seen

    assert asyncio.run(scenario()) == [KafkaUnavailable, Backpressure]
    assert publisher.pending_events == 5
    publisher.close(0)
