"""The gateway app built on the fake producer (tests/fakes.py), for unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiftright_server.infra.access.ingest_keys import KeyStore
from shiftright_server.infra.settings import GatewaySettings
from shiftright_server.producers.gateway.app import Gateway, create_app
from shiftright_server.producers.gateway.publisher import KafkaPublisher, PublisherLimits
from shiftright_server.schemas.validation import Limits

from tests.fakes import FakeProducer

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
