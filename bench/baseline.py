"""``python -m bench.baseline``: the floor the pipeline is measured against.

A bare confluent-kafka consumer over the four raw event topics of one namespace: it
``json.loads`` each record, puts its fields into the sink's column order (``sinks.rows``)
and inserts each table's rows column-oriented through clickhouse-connect. No validation,
no stream processing, no deduplication tokens, no retries. It shares the sink's consumer
tuning and batch cut (rows or seconds, whichever first) and commits after each batch.

Contract:
- takes: ``<ns>.events.{usage,error,health,change}.v1``;
- emits: one insert per table per batch into ``events_*`` of ``--database``;
- commits: synchronously, after every insert of the batch returned;
- under back-pressure: none; an insert error ends the process (it is a benchmark);
- counters go to ``--stats`` (JSON) every two seconds and on exit.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import (
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    SinkSettings,
)
from shiftright_server.schemas import topics, wire
from shiftright_server.sinks.__main__ import consumer_config
from shiftright_server.sinks.rows import COLUMNS, ENVELOPE, POSITION, TABLE_BY_KIND

GROUP_ID = "bench-baseline"

# Field defaults where the wire format may omit a field (the models' defaults).
_ENVELOPE_DEFAULTS: dict[str, Any] = {"attributes": {}}
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "usage": {"status_code": 0, "duration_ms": None, "value": None, "flags": {}},
    "error": {"frames": [], "handled": False, "level": "error", "flags": {}},
    "health": {"metrics": {}},
    "change": {},
}

RowBuilder = Callable[[dict[str, Any], Message, int], tuple[Any, ...]]


def _row_builder(kind: str) -> RowBuilder:
    """A function from a decoded event and its record to a row in ``COLUMNS`` order."""
    table = TABLE_BY_KIND[kind]
    fields = COLUMNS[table][len(ENVELOPE) : -len(POSITION)]
    spec = [(f, _ENVELOPE_DEFAULTS.get(f, "")) for f in ENVELOPE]
    spec += [(f, _KIND_DEFAULTS[kind].get(f, "")) for f in fields]

    def build(event: dict[str, Any], message: Message, index: int) -> tuple[Any, ...]:
        get = event.get
        values = [get(f, default) for f, default in spec]
        # DateTime64 takes ISO strings and integer ticks (ms) as they are.
        return (
            *values,
            message.timestamp()[1],
            message.topic(),
            message.partition(),
            message.offset(),
            index,
        )

    if kind != "error":
        return build
    frames_at = len(ENVELOPE) + fields.index("frames")

    def build_error(event: dict[str, Any], message: Message, index: int) -> tuple[Any, ...]:
        row = list(build(event, message, index))
        row[frames_at] = [
            (
                f.get("module", ""),
                f.get("function", ""),
                f.get("filename", ""),
                f.get("lineno", 0),
                f.get("in_app", True),
            )
            for f in row[frames_at]
        ]
        return tuple(row)

    return build_error


class BareConsumer:
    def __init__(
        self,
        consumer: Consumer,
        client: Any,
        namespace: str,
        batch_rows: int,
        batch_seconds: float,
        stats_path: Path | None,
    ) -> None:
        self._consumer = consumer
        self._client = client
        self._batch_rows = batch_rows
        self._batch_seconds = batch_seconds
        self._stats_path = stats_path
        self._routes = {
            topics.named(t, namespace): (TABLE_BY_KIND[k], _row_builder(k))
            for t, k in topics.KIND_BY_EVENT_TOPIC.items()
        }
        self._reset()
        self.stats: dict[str, Any] = {
            "consumed": 0,
            "stored": 0,
            "batches": 0,
            "insert_seconds": 0.0,
            "decode_seconds": 0.0,
        }
        self._last_stats = 0.0

    def _reset(self) -> None:
        self._rows: dict[str, list[tuple[Any, ...]]] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._count = 0
        self._started = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(list(self._routes))
        try:
            while not stop.is_set():
                self._poll_once()
            self._flush()
        finally:
            self._consumer.close()
            self._write_stats(force=True)

    def _poll_once(self) -> None:
        messages = self._consumer.consume(num_messages=5000, timeout=0.2)
        began = time.monotonic()
        for message in messages:
            if message.error() is None:
                self._add(message)
        self.stats["decode_seconds"] += time.monotonic() - began
        due = (
            self._count >= self._batch_rows
            or time.monotonic() - self._started >= self._batch_seconds
        )
        if due and self._count:
            self._flush()
        elif due:
            self._started = time.monotonic()
        self._write_stats()

    def _add(self, message: Message) -> None:
        topic = message.topic()
        assert topic is not None
        table, build = self._routes[topic]
        rows = self._rows.setdefault(table, [])
        payloads = wire.split_events(message.value(), message.headers())
        for index, payload in enumerate(payloads):
            rows.append(build(json.loads(payload or b"{}"), message, index))
        self._offsets[(topic, message.partition() or 0)] = message.offset() or 0
        self._count += len(payloads)
        self.stats["consumed"] += len(payloads)

    def _flush(self) -> None:
        if not self._count:
            return
        began = time.monotonic()
        for table, rows in self._rows.items():
            columns = [list(c) for c in zip(*rows, strict=True)]
            self._client.insert(
                table, columns, column_names=list(COLUMNS[table]), column_oriented=True
            )
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in self._offsets.items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self.stats["insert_seconds"] += time.monotonic() - began
        self.stats["stored"] += self._count
        self.stats["batches"] += 1
        self._reset()

    def _write_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._stats_path is None or (not force and now - self._last_stats < 2.0):
            return
        self._last_stats = now
        tmp = self._stats_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {k: round(v, 3) if isinstance(v, float) else v for k, v in self.stats.items()}
            )
        )
        tmp.replace(self._stats_path)


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings(
        namespace=args.namespace,
        kafka=KafkaSettings(bootstrap=args.bootstrap),
        clickhouse=ClickHouseSettings(url=args.clickhouse, database=args.database),
        sink=SinkSettings(
            group_id=GROUP_ID, batch_rows=args.batch_rows, batch_seconds=args.batch_seconds
        ),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--clickhouse", required=True, help="HTTP URL")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--batch-rows", type=int, default=20_000)
    parser.add_argument("--batch-seconds", type=float, default=1.0)
    parser.add_argument("--stats", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = settings_of(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)
    consumer = Consumer(consumer_config(settings))
    BareConsumer(
        consumer, client, settings.namespace, args.batch_rows, args.batch_seconds, args.stats
    ).run(stop)


if __name__ == "__main__":
    main()
