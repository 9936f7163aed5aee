"""Fakes at the boundaries, for unit tests, each held to the real thing by a contract suite:
``FakeWarehouse`` (tests/integration/test_warehouse_contract.py), ``FakeConsumer``
(test_consumer_contract.py) and the gateway's ``FakeProducer`` (test_producer_contract.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError
from shiftright_server.sinks.errors import RejectedRowsError


class FakeWarehouse:
    """In-memory tables with ClickHouse's token deduplication and offset lookups."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.tokens: set[tuple[str, str]] = set()
        self.inserts = 0
        self.fail_next: list[Exception] = []  # raised by the next inserts, in order
        self.fail_lookups: list[Exception] = []  # raised by the next stored_offsets calls
        self.reject_if: Callable[[dict[str, Any]], bool] = lambda row: False

    def insert(
        self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str], token: str
    ) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
        for row in rows:  # a UUID column reads ids given as text
            if isinstance(row.get("event_id"), str):
                row["event_id"] = uuid.UUID(row["event_id"])
        if any(self.reject_if(r) for r in rows):
            raise RejectedRowsError("Code: 53. DB::Exception: Type mismatch (fake)")
        self.inserts += 1
        if (table, token) in self.tokens:
            return
        self.tokens.add((table, token))
        self.tables.setdefault(table, []).extend(rows)

    def stored_offsets(self, table: str, topic: str) -> dict[str, dict[int, int]]:
        if self.fail_lookups:
            raise self.fail_lookups.pop(0)
        best: dict[str, dict[int, int]] = {}
        for row in self.tables.get(table, []):
            if row["_topic"] == topic:
                of_id = best.setdefault(row.get("_topic_id", ""), {})
                of_id[row["_partition"]] = max(of_id.get(row["_partition"], -1), row["_offset"])
        return best

    def incarnations(self) -> dict[str, dict[str, bool]]:
        found: dict[str, dict[str, bool]] = {}
        for row in self.tables.get("topic_incarnations", []):
            of_topic = found.setdefault(row["topic"], {})
            of_topic[row["topic_id"]] = of_topic.get(row["topic_id"], False) or row["adopts_legacy"]
        return found


@dataclass
class FakeTopicIds:
    """The topic id of each topic, as a cluster's metadata gives it: two fakes are one
    cluster, ``recreate`` gives a topic a new id (deleted and created again). Checked
    against confluent-kafka's admin client by tests/integration/test_topic_incarnations.py."""

    ids: dict[str, str] = field(default_factory=dict)

    def topic_ids(self, topics: Sequence[str]) -> dict[str, str]:
        return {
            t: self.ids.setdefault(t, uuid.uuid5(uuid.NAMESPACE_URL, t).hex[:22]) for t in topics
        }

    def recreate(self, topic: str) -> None:
        self.ids[topic] = uuid.uuid4().hex[:22]


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _timestamp_ms: int
    _headers: list[tuple[str, bytes]] | None = None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp_ms)


@dataclass
class FakeConsumer:
    """A single-member consumer group over in-memory partitions, with committed offsets.
    Checked against confluent-kafka's Consumer by tests/integration/test_consumer_contract.py."""

    log: dict[tuple[str, int], list[FakeMessage]]
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    paused: bool = False
    closed: bool = False
    _positions: dict[tuple[str, int], int] = field(default_factory=dict)
    _assigned: list[Any] = field(default_factory=list)

    def subscribe(self, topics: list[str], on_assign: Any = None, on_revoke: Any = None) -> None:
        from confluent_kafka import TopicPartition

        self._assigned = [TopicPartition(t, p) for (t, p) in self.log if t in topics]
        self._positions = {tp: self.committed.get(tp, 0) for tp in self.log}
        if on_assign:
            on_assign(self, self._assigned)

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[FakeMessage]:
        if self.paused:
            return []
        out: list[FakeMessage] = []
        for key in ((tp.topic, tp.partition) for tp in self._assigned):
            pos = self._positions[key]
            take = self.log[key][pos : pos + num_messages - len(out)]
            self._positions[key] = pos + len(take)
            out.extend(take)
        return out

    def commit(self, offsets: list[Any], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def pause(self, partitions: Any) -> None:
        self.paused = True

    def resume(self, partitions: Any) -> None:
        self.paused = False

    def assignment(self) -> list[Any]:
        return self._assigned

    def get_watermark_offsets(
        self, partition: Any, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        return 0, len(self.log[(partition.topic, partition.partition)])

    def close(self) -> None:
        self.closed = True


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
    full_after: int | None = None  # BufferError while this many messages await their report
    reachable: bool = True  # what list_topics answers
    produced: list[Produced] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    _waiting: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def produce(self, topic: str, value: bytes, key: bytes, **kwargs: Any) -> None:
        callback = kwargs["on_delivery"]
        err = KafkaError(self.error) if self.error is not None else None
        with self._lock:
            if self.full_after is not None and len(self._waiting) >= self.full_after:
                raise BufferError("Local: Queue full")
            self.produced.append(Produced(topic, value, key, kwargs.get("headers")))
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
