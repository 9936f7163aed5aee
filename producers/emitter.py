"""A minimal, non-blocking event emitter on confluent-kafka (the full SDK is separate).

Never blocks the caller for long and never raises for a full queue or a missing broker:
it counts what it could not hand over and what the broker did not acknowledge.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import structlog
from confluent_kafka import KafkaError, Message, Producer

from schemas import topics, wire
from schemas.events import (
    ROLLUP_KEY_FIELD,
    ChangeEvent,
    ErrorEvent,
    HealthEvent,
    UsageEvent,
    partition_key,
)

log = structlog.get_logger("shiftright.emitter")

AnyEvent = UsageEvent | ErrorEvent | HealthEvent | ChangeEvent


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Settings every shiftright producer uses (see DESIGN decision 6)."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",  # where Faust/Java expect keys to land
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": topics.RAW_TOPIC_MAX_MESSAGE_BYTES,
        "message.timeout.ms": 30_000,
    }
    config.update(overrides)
    return config


class Emitter:
    """Send events (models or ready JSON payloads) to their topics."""

    def __init__(self, bootstrap: str, namespace: str = "", **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **overrides))
        self._namespace = namespace
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()

    def emit(self, event: AnyEvent) -> bool:
        topic = topics.EVENT_TOPIC_BY_KIND[event.kind]
        return self.emit_raw(topic, event.model_dump_json().encode(), partition_key(event))

    def emit_dict(self, event: dict[str, Any]) -> bool:
        """Fast path for generated traffic: a plain dict in the event's wire shape."""
        kind = event["kind"]
        key = f"{event['app']}|{event['env']}|{event.get(ROLLUP_KEY_FIELD[kind], '')}".encode()
        payload = json.dumps(event, separators=(",", ":")).encode()
        return self.emit_raw(topics.EVENT_TOPIC_BY_KIND[kind], payload, key)

    def emit_many(self, events: Iterable[dict[str, Any]]) -> int:
        """Send plain dicts as NDJSON batch messages, one group per topic and key.

        Returns how many events were handed to the producer (the rest are counted in
        ``dropped``). Batches cut per-message costs for every consumer downstream."""
        groups: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
        for event in events:
            kind = event["kind"]
            key = f"{event['app']}|{event['env']}|{event.get(ROLLUP_KEY_FIELD[kind], '')}"
            payload = json.dumps(event, separators=(",", ":")).encode()
            groups[(topics.EVENT_TOPIC_BY_KIND[kind], key.encode())].append(payload)
        sent = 0
        for (topic, key), payloads in groups.items():
            for value in wire.pack(payloads):
                count = value.count(b"\n") + 1
                if self.emit_raw(topic, value, key, wire.BATCH_HEADERS):
                    sent += count
                else:
                    self.dropped["queue_full_events"] += count
        return sent

    def emit_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> bool:
        """Hand bytes to the producer queue; False (and counted) when it is full."""
        try:
            self._producer.produce(
                topics.named(topic, self._namespace), value, key,
                on_delivery=self._delivered, headers=headers,
            )  # fmt: skip
        except BufferError:
            self._producer.poll(0)
            self.dropped["queue_full"] += 1
            return False
        except Exception as exc:  # e.g. message too large for the producer
            self.dropped[type(exc).__name__] += 1
            log.warning("event_dropped", topic=topic, error=str(exc))
            return False
        self._producer.poll(0)
        return True

    def poll(self, timeout: float = 0.0) -> None:
        self._producer.poll(timeout)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for delivery; return how many messages are still undelivered."""
        return int(self._producer.flush(timeout))

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed[err.name()] += 1
