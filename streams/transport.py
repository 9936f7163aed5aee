"""Faust's Kafka transport with the fetch settings it does not expose.

Faust builds its aiokafka consumer with ``fetch_min_bytes=1`` and
``fetch_max_wait_ms=1500``: the broker answers a fetch as soon as any byte is waiting.
Live traffic arrives in many small slices (producers linger ~20 ms), so the worker made
a fetch, a cross-thread hand-over and a round of Faust's per-fetch bookkeeping for
every few messages: at 20,000 events/s about a fifth of its CPU. :class:`App` asks the
broker to hold each fetch until ``fetch_min_bytes`` are waiting or ``fetch_max_wait_ms``
passed (``StreamSettings``).

The worker is a static member of its consumer group (``StreamSettings.instance_id``,
passed to Faust as ``consumer_group_instance_id``): a successor of a killed worker with
the same id takes over its partitions as soon as it joins, instead of after the dead
member's session expires. A worker that stops cleanly still leaves the group at once.

Once a rebalance's changelog recovery is done, Faust seeks every stream partition back
to where the group resumes, so records its fetcher drained meanwhile without handing
them to a stream are read again. aiokafka's seek leaves out a partition the group never
committed; the consumer thread seeks those to the log's beginning (where
``consumer_auto_offset_reset`` starts them). A replayed record costs nothing: each step
skips records at or before its last applied offset.

The steps' source topics do not go through Faust's streams: the consumer takes their
records out of each fetch and hands each partition's list to the drivers that read it
(:mod:`streams.intake`), where Faust would make a stream event of every message; the
acks of those lists go into Faust's own commit bookkeeping. Every other topic (table
changelogs) keeps Faust's path, and its hand-over of each message runs up to its first
wait (``_Consumer.wait_first``).

Faust's ``Monitor`` sensor keeps statistics of every message in and out (times,
counters per topic and stream) and samples them every second, for Faust's web views and
its ``monitor`` command, neither of which the worker runs. :class:`App` takes it off the
sensors the streams call per message and per send, and does not start its sampler; the
consumer's own calls into it (end offsets, commits) remain and cost nothing per message.

The worker compresses what it sends with LZ4 in its fast mode (:func:`use_fast_lz4`), as
librdkafka's producers do. aiokafka compresses LZ4 at level 9 (the Java client's default,
high compression), which on the worker's outputs cost more than zstd: per byte, offline
on the worker's own messages (rollups, re-keyed and grouped errors, state records; 16 and
64 KiB batches), zstd level 3 encodes in 2.9 / 1.4 ns and decodes in 1.7 / 0.9 ns, LZ4
level 9 in 3.8 / 4.2 and 0.6 / 0.5, LZ4's fast mode in 0.8 / 0.7 and 0.5 / 0.6, at 5.4 /
8.7 times smaller (zstd 8.0 / 13.8). The worker reads its own intermediate topics too,
and the sink reads the rest: both decode LZ4 faster than zstd.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Generator, Iterable, Mapping
from functools import partial
from typing import Any, cast

import aiokafka
import aiokafka.record._crecords.default_records as _c_records
import aiokafka.record.default_records as _py_records
import faust
from aiokafka.codec import lz4_encode
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import ServiceT
from mode.services import WaitResults
from shiftright_server.streams.intake import Intake

#: LZ4 frame level of the worker's sends: below 3, LZ4's fast mode (no high compression).
LZ4_LEVEL = 1
#: The name of the compression the worker's producer uses.
COMPRESSION = "lz4"


def use_fast_lz4() -> None:
    """Make aiokafka's record batches compress LZ4 in the fast mode. Its batch builders
    (the compiled one and the Python one) call the ``lz4_encode`` of their own module,
    with no way to pass a level."""
    fast = partial(lz4_encode, level=LZ4_LEVEL)
    _c_records.lz4_encode = fast  # a module global the compiled builder reads at each call
    _py_records.lz4_encode = fast


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = cast(App, self.app)
        # read by AIOKafkaConsumer.start() when it creates its Fetcher
        consumer._fetch_min_bytes = app.fetch_min_bytes
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        found = await self.call_thread(self._seek_to_committed_or_beginning)
        return cast(Mapping[TP, int], found)

    async def _seek_to_committed_or_beginning(self) -> Mapping[TP, int]:
        # A partition the group never committed would otherwise keep the position its
        # fetcher drained up to: the successor of a worker killed before the group's
        # first commit can skip every record, process nothing and so never commit,
        # idle with all of its partitions assigned until new records arrive.
        consumer = self._ensure_consumer()
        committed: dict[TP, int] = await consumer.seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        uncommitted = [
            tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs
        ]
        if uncommitted:
            await consumer.seek_to_beginning(*uncommitted)
        return committed

    async def on_thread_stop(self) -> None:
        # aiokafka never sends LeaveGroup for a static member, so the broker would keep
        # a stopped worker's partitions from the rest of the group for the session
        # timeout, and refuse offset changes made while no worker runs. A worker that
        # stops (rather than dies) leaves by its member id, as a dynamic member does.
        coordinator = getattr(self._consumer, "_coordinator", None)
        if coordinator is not None:
            coordinator._group_instance_id = None  # read by its _maybe_leave_group()
        await super().on_thread_stop()


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, set[TP] | None]:
        # The steps' source partitions go to their drivers as lists (streams/intake.py);
        # Faust's getmany hands the rest to its streams one message at a time.
        records, active = await super()._wait_next_records(timeout)
        intake = cast(App, self.app).intake
        if records and intake.topics and self.flow_active:
            records = await intake.hand_over(self, records, active)
        return records, active

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        # Faust hands each fetched message to the streams as
        # ``wait_first(callback(message), suspend_flow.wait())``: four tasks and an
        # asyncio.wait per message, so that a suspended flow (a rebalance) can interrupt
        # a hand-over blocked on a full stream buffer. The hand-over is run here up to
        # its first wait instead; only one that waits goes on as Faust runs it.
        if timeout is None and len(coros) == 2 and self._is_flow_wait(coros[1]):
            handover, flow = coros
            if inspect.iscoroutine(handover) and not self.suspend_flow.is_set():
                try:
                    waiting = handover.send(None)
                except StopIteration as done:
                    flow.close()
                    await asyncio.sleep(0)  # other tasks run between messages, as before
                    return WaitResults([handover], [done.value], False)
                coros = (_rest(handover, waiting), flow)
        return await super().wait_first(*coros, timeout=timeout)

    def _is_flow_wait(self, coro: Any) -> bool:
        frame = getattr(coro, "cr_frame", None)
        return (
            frame is not None
            and coro.cr_code is _EVENT_WAIT
            and frame.f_locals.get("self") is self.suspend_flow
        )


_EVENT_WAIT = asyncio.Event.wait.__code__  # Faust's flow events are asyncio's


class _Started:
    """The rest of a coroutine that ran up to its first wait (``waiting``: what it gave
    the event loop to wait on), awaited as the coroutine itself would be."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coro, self.waiting = coro, waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self.coro, self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as exc:  # e.g. cancelled: passed on, as a task does
                step = partial(coro.throw, exc)
            else:
                step = partial(coro.send, sent)
            try:
                waiting = step()
            except StopIteration as done:
                return done.value


async def _rest(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    return await _Started(coro, waiting)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app whose consumer fetches with these settings (``kafka://`` brokers)."""

    def __init__(
        self, *args: Any, fetch_min_bytes: int, fetch_max_wait_ms: int, **kwargs: Any
    ) -> None:
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms
        #: the records of the steps' source topics, handed to their drivers as lists
        self.intake = Intake(self)
        use_fast_lz4()
        super().__init__(*args, producer_compression_type=COMPRESSION, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        services = super().on_init_dependencies()  # adds the monitor to the sensors
        self.sensors.remove(self.monitor)
        return services
