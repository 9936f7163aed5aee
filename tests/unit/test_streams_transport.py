"""The stream worker's Kafka consumer takes its fetch and group-membership settings from
StreamSettings, not Faust's defaults (fetch_min_bytes=1: a fetch per few messages, a fifth
of the worker's CPU when live; no static membership: a restart waits for the dead member's
session to expire), and after a rebalance's recovery it reads a partition the group never
committed from the log's beginning."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP
from shiftright_server.infra.settings import Settings, StreamSettings
from shiftright_server.streams.app import build_app
from shiftright_server.streams.transport import LZ4_LEVEL


def _consumer_fetch(streams: StreamSettings) -> tuple[int, int]:
    # (without the error and alert agents, which declare their changelogs at once)
    streams = streams.model_copy(update={"error_analytics": False, "alerting": False})
    app = build_app(Settings(streams=streams))

    async def create() -> tuple[int, int]:  # aiokafka wants a running loop; no connection
        thread = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread is not on its abstract type
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    return asyncio.run(create())


def test_the_worker_consumer_waits_for_fuller_fetches_by_default() -> None:
    defaults = StreamSettings()
    assert _consumer_fetch(defaults) == (defaults.fetch_min_bytes, defaults.fetch_max_wait_ms)
    assert defaults.fetch_min_bytes >= 64 * 1024 and defaults.fetch_max_wait_ms <= 500


def test_fetch_settings_reach_the_consumer() -> None:
    custom = StreamSettings(fetch_min_bytes=1, fetch_max_wait_ms=40)
    assert _consumer_fetch(custom) == (1, 40)


def _consumer_membership(streams: StreamSettings) -> tuple[str | None, int]:
    streams = streams.model_copy(update={"error_analytics": False, "alerting": False})
    app = build_app(Settings(streams=streams))

    async def create() -> tuple[str | None, int]:
        thread = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread is not on its abstract type
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._group_instance_id, consumer._session_timeout_ms

    return asyncio.run(create())


def test_a_restarted_worker_rejoins_as_the_same_static_member() -> None:
    # A stable instance id is what lets the broker hand a killed worker's partitions to
    # its successor at once rather than after the dead member's session expires.
    assert _consumer_membership(StreamSettings()) == ("worker-0", 30_000)
    custom = StreamSettings(instance_id="worker-3", session_timeout_seconds=12)
    assert _consumer_membership(custom) == ("worker-3", 12_000)


def test_an_empty_instance_id_means_dynamic_membership() -> None:
    assert _consumer_membership(StreamSettings(instance_id=""))[0] is None


class _Consumer:
    """What the consumer thread asks of aiokafka when Faust seeks after recovery."""

    def __init__(self, committed: dict[Any, int | None]) -> None:
        self.committed = committed
        self.to_beginning: list[Any] = []

    async def seek_to_committed(self) -> dict[Any, int | None]:
        return self.committed

    async def seek_to_beginning(self, *partitions: Any) -> bool:
        self.to_beginning.extend(partitions)
        return True


def test_after_recovery_a_partition_the_group_never_committed_is_read_from_its_beginning() -> None:
    # The fetcher may have drained records while the changelogs were restored; they are
    # read again from where the group resumes, which for an uncommitted partition is the
    # log's beginning (aiokafka's own seek leaves such a partition where it is).
    streams = StreamSettings(error_analytics=False, alerting=False, flag_segments=False)
    app = build_app(Settings(streams=streams))
    (changelog,) = app.tables.changelog_topics
    never, zero, committed = (TP("events.error.v1", p) for p in range(3))
    restored = TP(changelog, 0)
    consumer = _Consumer({never: None, zero: 0, committed: 7, restored: None})
    thread = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread is not on its abstract type
    thread._ensure_consumer = lambda: consumer

    found = asyncio.run(thread._seek_to_committed_or_beginning())

    assert found == consumer.committed
    assert set(consumer.to_beginning) == {never, zero}


def _batch(values: list[bytes], codec: int) -> bytes:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for offset, value in enumerate(values):
        builder.append(
            offset=offset, timestamp=1_764_900_000_000, key=None, value=value, headers=[]
        )
    return bytes(builder.build())


def test_the_worker_sends_lz4_batches_in_the_fast_mode_that_any_consumer_reads() -> None:
    from aiokafka.codec import lz4_encode
    from aiokafka.record.default_records import DefaultRecordBatch

    streams = StreamSettings(error_analytics=False, alerting=False, flag_segments=False)
    app = build_app(Settings(streams=streams))
    assert app.conf.producer_compression_type == "lz4"
    values = [b'{"app":"shop","route":"/cart/%d","count":%d}' % (i % 7, i) for i in range(300)]
    sent = _batch(values, DefaultRecordBatch.CODEC_LZ4)
    assert [r.value for r in DefaultRecordBatch(sent)] == values
    header = 61  # a v2 record batch's header; the records follow, compressed
    records = _batch(values, DefaultRecordBatch.CODEC_NONE)[header:]
    assert sent[header:] == lz4_encode(records, level=LZ4_LEVEL)
    assert sent[header:] != lz4_encode(records, level=9)  # aiokafka's own level


def _handover_consumer() -> Any:
    """The worker's consumer, made in the running event loop (as the worker makes it)."""
    streams = StreamSettings(error_analytics=False, alerting=False, flag_segments=False)
    return build_app(Settings(streams=streams)).consumer


def test_a_message_handed_over_at_once_reaches_its_stream_without_extra_tasks() -> None:
    delivered: list[str] = []

    async def handover(message: str) -> str:
        delivered.append(message)
        return message

    async def deliver() -> tuple[list[Any], int]:
        consumer = _handover_consumer()
        before = len(asyncio.all_tasks())
        found = await consumer.wait_first(handover("m1"), consumer.suspend_flow.wait())
        return found.results, len(asyncio.all_tasks()) - before

    results, tasks_left = asyncio.run(deliver())
    assert (delivered, results, tasks_left) == (["m1"], ["m1"], 0)


def test_a_hand_over_that_waits_finishes_or_yields_to_a_suspended_flow() -> None:
    # A full stream buffer makes the hand-over wait: it still completes when the buffer
    # drains, and a rebalance that suspends the flow meanwhile interrupts it (else the
    # consumer would wait on a stream that is being stopped).
    async def handover(room: asyncio.Event, log: list[str]) -> str:
        log.append("started")
        try:
            await room.wait()
        except asyncio.CancelledError:
            log.append("cancelled")
            room.set()  # tells the test the handler ran
            raise
        log.append("put")
        return "done"

    async def drains() -> tuple[list[Any], list[str]]:
        consumer, room, log = _handover_consumer(), asyncio.Event(), list[str]()
        asyncio.get_running_loop().call_later(0.01, room.set)
        found = await consumer.wait_first(handover(room, log), consumer.suspend_flow.wait())
        return found.results, log

    async def suspended() -> list[str]:
        consumer, room, log = _handover_consumer(), asyncio.Event(), list[str]()
        asyncio.get_running_loop().call_later(0.01, consumer.suspend_flow.set)
        await consumer.wait_first(handover(room, log), consumer.suspend_flow.wait())
        await asyncio.wait_for(room.wait(), 5.0)  # the cancelled hand-over ran its handler
        return log

    assert asyncio.run(drains()) == (["done"], ["started", "put"])
    assert asyncio.run(suspended()) == ["started", "cancelled"]


def test_a_full_batch_of_the_worker_fits_the_brokers_default_message_size() -> None:
    """The worker's batch limit counts the records uncompressed: a full batch of bytes
    LZ4 cannot shrink stays under Kafka's default ``message.max.bytes``."""
    import os

    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from shiftright_server.streams.app import PRODUCER_BATCH_BYTES
    from shiftright_server.streams.transport import use_fast_lz4

    use_fast_lz4()
    lz4 = 3  # the record batch's codec id
    batch = DefaultRecordBatchBuilder(2, lz4, False, -1, -1, -1, PRODUCER_BATCH_BYTES)
    records = 0
    while batch.append(records, None, b"key", os.urandom(1_000), []) is not None:
        records += 1
    built = len(batch.build())
    assert records > 900 and PRODUCER_BATCH_BYTES * 0.95 < built < 1_048_588
