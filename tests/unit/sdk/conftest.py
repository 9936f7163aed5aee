"""The SDK with a fake transport in place of Kafka (the unit guard refuses real producers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import shiftright
from shiftright import context
from shiftright.config import Config


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class FakeTransport:
    """Records messages; ``full`` refuses them like a full librdkafka queue, ``fail_with``
    reports them undelivered, ``gate`` (when cleared) stalls produce like a slow broker."""

    messages: list[Sent] = field(default_factory=list)
    pending: list[Any] = field(default_factory=list)
    full: bool = False
    fail_with: str | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    produced: threading.Event = field(default_factory=threading.Event)
    closed: bool = False
    partition_count: int | None = None  # what the broker would say (None: not known yet)

    def __post_init__(self) -> None:
        self.gate.set()

    def produce(self, topic: str, value: bytes, key: bytes, headers: Any, on_delivery: Any) -> None:
        self.produced.set()
        self.gate.wait()
        if self.full:
            raise BufferError("queue full")
        self.messages.append(Sent(topic, key, value, list(headers)))
        self.pending.append(on_delivery)

    def poll(self, timeout: float) -> None:
        pending, self.pending = self.pending, []
        for report in pending:
            report(self.fail_with)

    def partitions(self, topic: str) -> int | None:
        return self.partition_count

    def flush(self, timeout: float) -> int:
        if self.fail_with == "_MSG_TIMED_OUT_LATER":
            return len(self.pending)
        self.poll(0)
        return 0

    def close(self) -> None:
        self.closed = True

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        out = [json.loads(line) for m in self.messages for line in m.value.split(b"\n")]
        return [e for e in out if kind is None or e["kind"] == kind]


class SDK:
    """One initialised SDK and its fake transport(s) (a forked child makes a new one)."""

    def __init__(self) -> None:
        self.transports: list[FakeTransport] = []

    def factory(self, config: Config) -> FakeTransport:
        transport = FakeTransport()
        self.transports.append(transport)
        return transport

    @property
    def transport(self) -> FakeTransport:
        return self.transports[-1]

    def init(self, **options: Any) -> shiftright.Client:
        defaults: dict[str, Any] = {"health_interval": 0, "flush_interval": 0.02}
        defaults.update(options)
        return shiftright.init(
            app="checkout",
            env="test",
            release="1.4.2",
            kafka="fake:9092",
            transport=self.factory,
            **defaults,
        )

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        assert shiftright.flush(5) == 0, shiftright.stats()
        return self.transport.events(kind)


@pytest.fixture
def sdk() -> Iterator[SDK]:
    made = SDK()
    try:
        yield made
    finally:
        shiftright.close(1)
        context.current.set(
            context.EMPTY
        )  # set_user & co. outside a scope stay in pytest's context
