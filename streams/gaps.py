"""Reading the records a restarted worker's state has not applied yet.

Faust resumes a partition at the consumer group's committed offset. After a ``kill -9``
that offset can be ahead of the state restored from the changelog (both are written
asynchronously by different clients), so the records in between would never reach the
rollups. :meth:`Step.missing <streams.step.Step.missing>` names those ranges; :class:`GapReader` reads them with
a plain confluent-kafka consumer (no group, nothing committed) so they can be processed
before the batch Faust delivered. :class:`LogEnds` asks where partitions end and where
the group resumes them.
"""

from __future__ import annotations

import time
from typing import cast

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import TopicPartition as KafkaTopicPartition
from shiftright_server.schemas import wire
from shiftright_server.streams.step import Record, TopicPartition

log = structlog.get_logger("shiftright.streams")


class GapReaderError(RuntimeError):
    """The broker did not hand over a gap in time; the batch must not be processed."""


class GapReader:
    """Blocking; run it in an executor thread."""

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s

    def read(self, ranges: dict[TopicPartition, tuple[int, int]]) -> list[Record]:
        """All records with ``first <= offset < end`` per partition, in offset order.
        ``first`` 0 means from the start of the log (whatever retention kept)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": "shiftright-gap-reader",  # required by the client; never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            }
        )
        try:
            return self._read(consumer, ranges)
        finally:
            consumer.close()

    def _read(
        self, consumer: Consumer, ranges: dict[TopicPartition, tuple[int, int]]
    ) -> list[Record]:
        consumer.assign(
            [
                KafkaTopicPartition(t, p, first if first > 0 else OFFSET_BEGINNING)
                for (t, p), (first, _end) in ranges.items()
            ]
        )
        pending = dict(ranges)
        found: list[Record] = []
        deadline = time.monotonic() + self._timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise GapReaderError(f"gap not read within {self._timeout_s:.0f} s: {pending}")
            for msg in consumer.consume(num_messages=2000, timeout=0.5):
                tp = (msg.topic(), msg.partition())
                if tp not in pending:
                    continue
                end = pending[tp][1]
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        del pending[tp]  # the log ends before the gap does: nothing more
                        continue
                    raise GapReaderError(f"reading {tp}: {error}")
                offset = msg.offset()
                if offset is None or offset >= end:
                    del pending[tp]
                    continue
                # Header values arrive as bytes (the stubs also allow str).
                headers = cast("wire.Headers", msg.headers())
                found.append(
                    Record(
                        str(tp[0]),
                        int(tp[1] or 0),
                        offset,
                        msg.value(),
                        msg.timestamp()[1],
                        headers,
                    )
                )
                if offset == end - 1:
                    del pending[tp]
        found.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return found


def merge(batch: list[Record], read: list[Record]) -> list[Record]:
    """Batch and gap records together, each position once, ordered per partition."""
    by_position = {(r.topic, r.partition, r.offset): r for r in read}
    by_position.update({(r.topic, r.partition, r.offset): r for r in batch})
    return [by_position[k] for k in sorted(by_position)]


class LogEnds:
    """Asks the broker where partitions end, on a client of its own (run it in a thread:
    the calls block, and a hung request must not hang the worker's event loop)."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: Consumer | None = None

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": "shiftright-log-ends",
                    "enable.auto.commit": False,
                }
            )
        return self._consumer

    def fetch(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """Each partition's end. A failed ask drops the client, so the next ask starts on
        fresh metadata: after a broker of a cluster restarts, a client can keep reporting
        partitions it led as unknown, and a cached one would never recover."""
        client = self._client()
        try:
            return {
                (t, p): int(client.get_watermark_offsets(KafkaTopicPartition(t, p), 2.0)[1])
                for t, p in tps
            }
        except Exception:
            self._consumer = None
            client.close()
            raise

    def committed(self, tps: list[TopicPartition], group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets (negative: none). Reading them does not join it."""
        reader = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        try:
            found = reader.committed([KafkaTopicPartition(t, p) for t, p in tps], timeout=5.0)
        finally:
            reader.close()
        return {(tp.topic, tp.partition): int(tp.offset) for tp in found}
