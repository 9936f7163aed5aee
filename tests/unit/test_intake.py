"""The steps' intake: fetched partition lists to the drivers' queues and back as acks.

The acks are read back through Faust's own commit bookkeeping (``Consumer._new_offset``
on the consumer's ``_acked`` / ``_gap`` / ``_committed_offset``), so these tests check
the offsets Faust would commit, not the intake's idea of them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from shiftright_server.streams.intake import QUEUE_RECORDS, Batches, Intake

USAGE, HEALTH, CHANGELOG = TP("usage", 0), TP("health", 0), TP("state-changelog", 0)


class FakeFlow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


class FakeConsumer:
    """The bookkeeping attributes of Faust's consumer that the intake reads and writes."""

    def __init__(self) -> None:
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._acked: defaultdict[TP, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[TP, set[int]] = defaultdict(set)
        # Faust's interval trees of skipped offsets: the intake acks holes instead
        self._gap: defaultdict[TP, list[Any]] = defaultdict(list)
        self._n_acked = 0
        self._buffered_partitions: set[TP] = set()
        self.flow_active = True
        self.suspend_flow = asyncio.Event()

    def commit_offset(self, tp: TP) -> int | None:
        """What Faust would commit for ``tp`` now."""
        return FaustConsumer._new_offset(self, tp)  # type: ignore[arg-type]  # Faust's own method on its attributes


class FakeApp:
    def __init__(self) -> None:
        self.consumer_generation_id = 1
        self.flow_control = FakeFlow()
        self.consumer = FakeConsumer()


def fetched(tp: TP, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(tp.topic, tp.partition, o, 1_000 + o, 0, None, b"v%d" % o, None, 0, 3, ())
        for o in offsets
    ]


def one_queue(topics: list[str], limit: int = QUEUE_RECORDS) -> tuple[FakeApp, Intake, Batches]:
    """An intake over a fake app with one driver's queue reading ``topics``."""
    app = FakeApp()
    intake = Intake(app)
    return app, intake, intake.queue(topics, limit)


def test_each_partition_list_reaches_every_driver_of_its_topic_and_is_acked_when_all_are_done() -> (
    None
):
    async def run() -> None:
        app = FakeApp()
        intake = Intake(app)
        rollup = intake.queue(["usage", "health"])
        segments = intake.queue(["usage"])
        fetch = {
            USAGE: fetched(USAGE, 10, 11, 12),
            HEALTH: fetched(HEALTH, 5, 6),
            CHANGELOG: fetched(CHANGELOG, 0),
        }
        rest = await intake.hand_over(app.consumer, fetch, None)
        assert list(rest) == [CHANGELOG]  # Faust's streams keep what no step reads

        taken = await rollup.take(100, 0.0)
        records = [r for p in taken for r in p.records]
        assert [(r.topic, r.offset, r.value, r.timestamp_ms) for r in records] == [
            ("usage", 10, b"v10", 1010),
            ("usage", 11, b"v11", 1011),
            ("usage", 12, b"v12", 1012),
            ("health", 5, b"v5", 1005),
            ("health", 6, b"v6", 1006),
        ]
        intake.done(taken)
        consumer = app.consumer
        assert consumer.commit_offset(HEALTH) == 7
        assert consumer.commit_offset(USAGE) is None  # the segments driver is not done

        intake.done(await segments.take(100, 0.0))
        assert consumer.commit_offset(USAGE) == 13

    asyncio.run(run())


def test_records_before_the_read_offset_are_dropped_and_holes_in_the_log_do_not_stop_commits() -> (
    None
):
    async def run() -> None:
        app, intake, queue = one_queue(["usage"])
        consumer = app.consumer
        await intake.hand_over(consumer, {USAGE: fetched(USAGE, 0, 1, 2)}, None)
        # a seek back to the committed offset 1 (Faust's perform_seek), the fetch
        # returning its record batch from 0, then a hole 4..7 (e.g. transaction markers)
        consumer._read_offset[USAGE] = consumer._committed_offset[USAGE] = 1
        await intake.hand_over(consumer, {USAGE: fetched(USAGE, 0, 1, 2, 3, 8, 9)}, None)
        taken = await queue.take(100, 0.0)
        assert [r.offset for p in taken for r in p.records] == [0, 1, 2, 1, 2, 3, 8, 9]
        intake.done(taken)
        assert consumer.commit_offset(USAGE) == 10

    asyncio.run(run())


def test_a_batch_holds_at_most_max_records_in_offset_order_and_stale_lists_are_never_acked() -> (
    None
):
    async def run() -> None:
        app, intake, queue = one_queue(["usage", "health"])
        consumer = app.consumer
        await intake.hand_over(consumer, {HEALTH: fetched(HEALTH, 0, 1)}, None)
        app.consumer_generation_id = 2  # a rebalance: Faust seeks back to the committed offset
        await intake.hand_over(consumer, {USAGE: fetched(USAGE, *range(5))}, None)

        first = await queue.take(3, 0.0)
        assert [(r.topic, r.offset) for p in first for r in p.records] == [
            ("usage", 0),
            ("usage", 1),
            ("usage", 2),
        ]
        intake.done(first)
        assert consumer.commit_offset(USAGE) is None  # the list is acked whole
        second = await queue.take(3, 0.0)
        assert [r.offset for p in second for r in p.records] == [3, 4]
        intake.done(second)
        assert consumer.commit_offset(USAGE) == 5
        assert consumer.commit_offset(HEALTH) is None  # handed before the rebalance
        assert len(queue) == 0

    asyncio.run(run())


def test_a_full_queue_holds_the_consumer_until_there_is_room_or_the_flow_stops() -> None:
    async def run() -> None:
        app, intake, queue = one_queue(["usage"], limit=2)
        consumer = app.consumer
        await intake.hand_over(consumer, {USAGE: fetched(USAGE, 0, 1)}, None)
        waiting = asyncio.ensure_future(
            intake.hand_over(consumer, {USAGE: fetched(USAGE, 2)}, None)
        )
        await asyncio.sleep(0)
        assert not waiting.done() and len(queue) == 2
        intake.done(await queue.take(10, 0.0))
        await asyncio.wait_for(waiting, 5.0)
        assert [r.offset for p in await queue.take(10, 0.0) for r in p.records] == [2]

        await intake.hand_over(consumer, {USAGE: fetched(USAGE, 3, 4)}, None)
        waiting = asyncio.ensure_future(
            intake.hand_over(consumer, {USAGE: fetched(USAGE, 5)}, None)
        )
        await asyncio.sleep(0)
        consumer.flow_active = False  # a rebalance stops the flow
        consumer.suspend_flow.set()
        assert await asyncio.wait_for(waiting, 5.0) == {}
        assert consumer._read_offset[USAGE] == 4  # 5 is read again after the seek back

    asyncio.run(run())
