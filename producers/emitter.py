"""A minimal, non-blocking event emitter on confluent-kafka (the full SDK is separate).

Never blocks the caller for long and never raises for a full queue or a missing broker:
it counts what it could not hand over and what the broker did not acknowledge.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

import structlog
from confluent_kafka import KafkaError, Message
from shiftright_server.producers.durable_producer import DurableProducer
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.events import (
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
    """Settings every shiftright producer uses: murmur2 places keys where Faust expects them."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "partitioner": "murmur2_random",  # where Faust/Java expect keys to land
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 100,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        "message.max.bytes": topics.RAW_TOPIC_MAX_MESSAGE_BYTES,
        "message.timeout.ms": 30_000,
    }
    config.update(overrides)
    return config


class Emitter:
    """Send events (models or ready JSON payloads) to their topics. Its producer outlives
    fatal errors (see :mod:`producers.durable_producer`): what it accepted is delivered."""

    def __init__(self, bootstrap: str, namespace: str = "", **overrides: Any) -> None:
        self._producer = DurableProducer(producer_config(bootstrap, **overrides), self._delivered)
        self._namespace = namespace
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self._partitions: dict[str, int] = {}  # topic -> partition count
        self._key_partition: dict[tuple[str, bytes], int] = {}
        self._metadata_retry_at = 0.0

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
        """Send plain dicts as NDJSON batch messages, one group per topic and partition.

        Each event goes to the partition its own key maps to (Kafka's murmur2), so batching
        by partition instead of by key changes nothing downstream but makes messages
        several times larger: per-message costs dominate every Python consumer. Until the
        broker has told how many partitions a topic has, events are grouped per key.

        Returns how many events were handed to the producer (the rest are counted in
        ``dropped``)."""
        groups: dict[tuple[str, int | bytes], list[bytes]] = defaultdict(list)
        first_key: dict[tuple[str, int | bytes], bytes] = {}
        for event in events:
            kind = event["kind"]
            topic = topics.EVENT_TOPIC_BY_KIND[kind]
            key = f"{event['app']}|{event['env']}|{event.get(ROLLUP_KEY_FIELD[kind], '')}".encode()
            group = (topic, self._partition(topic, key))
            groups[group].append(json.dumps(event, separators=(",", ":")).encode())
            first_key.setdefault(group, key)
        sent = 0
        for (topic, where), payloads in groups.items():
            partition = where if isinstance(where, int) else None
            for value in wire.pack(payloads):
                count = value.count(b"\n") + 1
                if self.emit_raw(
                    topic, value, first_key[(topic, where)], wire.BATCH_HEADERS, partition=partition
                ):
                    sent += count
                else:
                    self.dropped["queue_full_events"] += count
        return sent

    def _partition(self, topic: str, key: bytes) -> int | bytes:
        """The key's partition, or the key itself while the partition count is unknown."""
        found = self._key_partition.get((topic, key))
        if found is not None:
            return found
        count = self._partition_count(topic)
        if count is None:
            return key
        if len(self._key_partition) > 100_000:
            self._key_partition.clear()
        found = self._key_partition[(topic, key)] = wire.partition_of(key, count)
        return found

    def _partition_count(self, topic: str) -> int | None:
        known = self._partitions.get(topic)
        if known is not None:
            return known
        if time.monotonic() < self._metadata_retry_at:
            return None
        name = topics.named(topic, self._namespace)
        try:
            meta = self._producer.list_topics(name, timeout=2.0).topics.get(name)
            count = len(meta.partitions) if meta is not None and meta.error is None else 0
        except Exception:  # broker away: group per key for now, ask again later
            count = 0
        if count <= 0:
            self._metadata_retry_at = time.monotonic() + 30.0
            return None
        self._partitions[topic] = count
        return count

    def emit_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> bool:
        """Hand bytes to the producer queue; False (and counted) when it is full."""
        try:
            self._producer.produce(
                topics.named(topic, self._namespace),
                value,
                key,
                partition=-1 if partition is None else partition,  # -1: the partitioner's choice
                headers=headers,
            )
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
        return self._producer.flush(timeout)

    @property
    def replaced(self) -> int:
        """How many times a fatal producer error made the emitter start a new producer."""
        return self._producer.replaced

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed[err.name()] += 1
