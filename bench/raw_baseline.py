"""``python -m bench.raw_baseline``: the strongest floor, the fastest any Python service can
move these events from Kafka into ClickHouse here.

A bare confluent-kafka consumer over the four raw event topics of one namespace that
does no per-event Python work at all: it joins the message values of a batch (NDJSON
lines as the producers wrote them) and hands them to ClickHouse's own JSON parser
(``INSERT … FORMAT JSONEachRow``, unknown keys skipped). No validation, no positions
(``_topic``, ``_offset`` … stay at their defaults), no deduplication tokens, no retries.
It shares the sink's consumer tuning and batch cut (rows or seconds, whichever first) and
commits after each batch.

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
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.schemas import topics
from shiftright_server.sinks.__main__ import consumer_config
from shiftright_server.sinks.rows import TABLE_BY_KIND

from bench.baseline import settings_of

SETTINGS = {"input_format_skip_unknown_fields": 1, "date_time_input_format": "best_effort"}


class RawConsumer:
    def __init__(
        self, consumer: Consumer, client: Any, namespace: str, args: argparse.Namespace
    ) -> None:
        self._consumer, self._client = consumer, client
        self._batch_rows, self._batch_seconds = args.batch_rows, args.batch_seconds
        self._stats_path: Path | None = args.stats
        self._tables = {
            topics.named(t, namespace): TABLE_BY_KIND[k]
            for t, k in topics.KIND_BY_EVENT_TOPIC.items()
        }
        self.stats: dict[str, Any] = {"consumed": 0, "stored": 0, "batches": 0}
        self._last_stats = 0.0
        self._reset()

    def _reset(self) -> None:
        self._values: dict[str, list[bytes]] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._count = 0
        self._started = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(list(self._tables))
        try:
            while not stop.is_set():
                self._poll_once()
            self._flush()
        finally:
            self._consumer.close()
            self._write_stats(force=True)

    def _poll_once(self) -> None:
        for message in self._consumer.consume(num_messages=5000, timeout=0.2):
            value, topic = message.value(), message.topic()
            if message.error() is None and value and topic:
                self._values.setdefault(self._tables[topic], []).append(value)
                self._offsets[(topic, message.partition() or 0)] = message.offset() or 0
                self._count += value.count(b"\n") + 1  # events in the message (C, not Python)
        due = time.monotonic() - self._started >= self._batch_seconds
        if self._count >= self._batch_rows or (due and self._count):
            self._flush()
        elif due:
            self._started = time.monotonic()
        self._write_stats()

    def _flush(self) -> None:
        if not self._count:
            return
        for table, values in self._values.items():
            body = b"\n".join(values)
            self._client.raw_insert(table, insert_block=body, fmt="JSONEachRow", settings=SETTINGS)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in self._offsets.items()]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self.stats["consumed"] += self._count
        self.stats["stored"] += self._count
        self.stats["batches"] += 1
        self._reset()

    def _write_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._stats_path is None or (not force and now - self._last_stats < 2.0):
            return
        self._last_stats = now
        tmp = self._stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats))
        tmp.replace(self._stats_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    RawConsumer(consumer, client, settings.namespace, args).run(stop)


if __name__ == "__main__":
    main()
