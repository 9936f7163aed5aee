"""A fake confluent-kafka producer for the gateway's publisher, and app builders."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError
from shiftright_server.infra.settings import GatewaySettings
from shiftright_server.producers.gateway.app import Gateway, create_app
from shiftright_server.producers.gateway.keys import KeyStore
from shiftright_server.producers.gateway.publisher import KafkaPublisher, PublisherLimits
from shiftright_server.schemas.validation import Limits


@dataclass
class Produced:
    topic: str
    value: bytes
    key: bytes
    headers: Any


@dataclass
class FakeProducer:
    """Delivers on ``poll`` (like librdkafka); can fail, hold reports, or be full."""

    error: int | None = None  # KafkaError code every delivery reports
    hold: bool = False  # never report deliveries (a hung broker)
    full_after: int | None = None  # BufferError once this many messages were produced
    reachable: bool = True  # what list_topics answers
    produced: list[Produced] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    _waiting: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def produce(self, topic: str, value: bytes, key: bytes, **kwargs: Any) -> None:
        if self.full_after is not None and len(self.produced) >= self.full_after:
            raise BufferError("Local: Queue full")
        self.produced.append(Produced(topic, value, key, kwargs.get("headers")))
        callback = kwargs["on_delivery"]
        err = KafkaError(self.error) if self.error is not None else None
        with self._lock:
            self._waiting.append(lambda: callback(err, None))

    def poll(self, timeout: float) -> int:
        if self.hold:
            threading.Event().wait(min(timeout, 0.01))
            return 0
        with self._lock:
            ready, self._waiting = self._waiting, []
        for report in ready:
            report()
        if not ready:
            threading.Event().wait(min(timeout, 0.005))
        return len(ready)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self._waiting)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if not self.reachable:
            raise RuntimeError("broker unreachable")
        return object()

    def all_brokers_down(self) -> None:
        self.config["error_cb"](KafkaError(KafkaError._ALL_BROKERS_DOWN))

    def events(self) -> list[bytes]:
        return [line for m in self.produced for line in m.value.split(b"\n")]


NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass
class Harness:
    producer: FakeProducer
    publisher: KafkaPublisher
    keys: KeyStore
    gateway: Gateway
    app: Any


def build(
    tmp_path: Path,
    producer: FakeProducer | None = None,
    settings: GatewaySettings | None = None,
    limits: PublisherLimits | None = None,
) -> Harness:
    producer = producer or FakeProducer()

    def make(config: dict[str, Any]) -> FakeProducer:
        producer.config = config
        return producer

    publisher = KafkaPublisher(make, "ns", limits or PublisherLimits(ack_timeout=2.0))
    keys = KeyStore(tmp_path / "keys.sqlite")
    gateway = Gateway(settings or GatewaySettings(), keys, publisher, Limits(), clock=lambda: NOW)
    return Harness(producer, publisher, keys, gateway, create_app(gateway))
