"""The stream steps' intake: each fetched batch of a source partition handed to the
drivers that read it as one list of :class:`~streams.step.Record` s.

Faust hands every fetched message to its streams one at a time: a message object, the
conductor's callback, a stream event in the stream's buffer, ``take_events``' append and
an ack of each message. The steps work on lists of records, so the worker's consumer
(``streams/transport.py``) takes the records of the steps' source topics out of each
fetch and hands each partition's list over here in one pass; Faust's path keeps every
other topic (table changelogs).

::

    fetch (aiokafka) ─▶ {partition: records}
        │  a step's source topic                      any other topic
        ▼                                             ▼
    Intake.hand_over: positions checked,          Faust's streams
    Records built, one Ticket per partition list
        ▼
    Batches (one per driver) ── take(max, within) ─▶ Driver.run ─▶ done(): ack

The guarantees are Faust's for a stream:

- Positions. Records before the consumer's read offset of their partition (already
  handed over) are dropped; a jump past it is acked with the records after it, as
  Faust's gap tracking does, so commits pass offsets that hold no record.
- Acks. A partition's list is acked once every driver reading its topic is done with
  it (delivered and saved); Faust commits acked offsets as for any stream
  (``broker_commit_interval``).
- Rebalances. A list handed over in a consumer generation other than the current one,
  or taken while the flow is stopped, is dropped unacked: after a rebalance Faust seeks
  every partition back to the group's committed offset, so those records are read again
  (and skipped by any step whose saved state applied them already).
- Back-pressure. A driver's queue holds at most ``limit`` records; the consumer waits
  for room, or for a stopped flow (a rebalance), before it hands over more, as it waits
  on a full stream buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from faust.types import TP
from faust.types.tuples import ack_lock
from shiftright_server.streams.step import Record

#: Records a driver's queue holds before the consumer waits (Faust's stream buffer
#: holds 4,096 messages; one of these records is one message).
QUEUE_RECORDS = 4096


class Ticket:
    """One partition's fetched list, acked once every driver reading it is done."""

    __slots__ = ("tp", "start", "last", "generation", "pending")

    def __init__(self, tp: TP, start: int, last: int, generation: int, pending: int) -> None:
        self.tp, self.start, self.last = tp, start, last  # acks offsets start..last
        self.generation, self.pending = generation, pending


class Piece(NamedTuple):
    """Records of one ticket taken into a batch; ``final``: the ticket's last piece."""

    ticket: Ticket
    records: list[Record]
    final: bool


class Batches:
    """The records handed over to one driver, taken in batches (:meth:`take`)."""

    def __init__(self, live: Callable[[Ticket], bool], limit: int = QUEUE_RECORDS) -> None:
        self._live = live  # False: the ticket's records are dropped unprocessed
        self._limit = limit
        self._items: deque[tuple[Ticket, list[Record], float]] = deque()  # and arrival
        self._size = 0
        self._want = 1  # records that make a batch worth taking at once
        self._enough = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return self._size

    def full(self) -> bool:
        return self._size >= self._limit

    async def room(self) -> None:
        await self._room.wait()

    def put(self, ticket: Ticket, records: list[Record]) -> None:
        self._items.append((ticket, records, asyncio.get_running_loop().time()))
        self._size += len(records)
        if self._size >= self._want:
            self._enough.set()
        if self._size >= self._limit:
            self._room.clear()

    async def take(self, max_records: int, within: float) -> list[Piece]:
        """The next batch: at once when ``max_records`` wait, else ``within`` seconds
        after this call or after the oldest record arrived, whichever is later (as
        Faust's ``take_events``, a batch of a busy step gathers for ``within`` after the
        last; records of a partition in offset order)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while True:
            await self._wait(1, None)
            remaining = max(asked, self._items[0][2]) + within - loop.time()
            if self._size < max_records and remaining > 0:
                await self._wait(max_records, remaining)
            pieces = self._pop(max_records)
            if pieces:
                return pieces

    async def _wait(self, records: int, timeout: float | None) -> None:
        if self._size >= records:
            return
        self._want = records
        self._enough.clear()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._enough.wait(), timeout)
        finally:
            self._want = 1

    def _pop(self, max_records: int) -> list[Piece]:
        pieces: list[Piece] = []
        taken = 0
        items = self._items
        while items and taken < max_records:
            ticket, records, at = items[0]
            room = max_records - taken
            if not self._live(ticket):
                items.popleft()
                self._size -= len(records)
            elif len(records) <= room:
                items.popleft()
                self._size -= len(records)
                pieces.append(Piece(ticket, records, True))
                taken += len(records)
            else:
                items[0] = (ticket, records[room:], at)
                self._size -= room
                pieces.append(Piece(ticket, records[:room], False))
                taken = max_records
        if self._size < self._limit:
            self._room.set()
        return pieces

    def drop(self, partitions: Iterable[TP]) -> None:
        """Drop the waiting records of these partitions (revoked)."""
        gone = set(partitions)
        kept = [item for item in self._items if item[0].tp not in gone]
        self._items = deque(kept)
        self._size = sum(len(item[1]) for item in kept)
        if self._size < self._limit:
            self._room.set()


class Intake:
    """Hands the fetched records of the steps' source topics to their drivers' queues,
    and acks them into the consumer's commit bookkeeping when the drivers are done."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._queues: dict[str, list[Batches]] = {}

    @property
    def topics(self) -> Mapping[str, list[Batches]]:
        return self._queues

    def queue(self, topics: Sequence[str], limit: int = QUEUE_RECORDS) -> Batches:
        """A new driver's queue of the records of ``topics``."""
        batches = Batches(self._live, limit)
        for topic in topics:
            self._queues.setdefault(topic, []).append(batches)
        return batches

    def _live(self, ticket: Ticket) -> bool:
        app = self.app
        return bool(
            ticket.generation == app.consumer_generation_id and app.flow_control.is_active()
        )

    async def hand_over(
        self, consumer: Any, fetched: Mapping[TP, list[Any]], active: set[TP] | None
    ) -> dict[TP, list[Any]]:
        """Hand the steps' partitions of a fetch to their queues; returns the rest (for
        Faust's streams), or nothing when the flow stopped meanwhile (Faust then seeks
        back to the committed offsets)."""
        rest: dict[TP, list[Any]] = {}
        generation = self.app.consumer_generation_id
        for tp, found in fetched.items():
            queues = self._queues.get(tp.topic)
            if queues is None:
                rest[tp] = found
                continue
            if active is not None and tp not in active and tp not in consumer._buffered_partitions:
                continue  # paused meanwhile: Faust leaves these out as well
            for batches in queues:
                if batches.full() and not await _room(consumer, batches):
                    return {}
            if generation != self.app.consumer_generation_id:
                return {}
            self._put(consumer, tp, found, queues, generation)
        return rest

    def _put(
        self, consumer: Any, tp: TP, found: list[Any], queues: list[Batches], generation: int
    ) -> None:
        read = consumer._read_offset[tp]
        if read is not None and found[0].offset < read:
            found = [r for r in found if r.offset >= read]
            if not found:
                return
        first, last = found[0].offset, found[-1].offset
        start = read + 1 if read is not None and read + 1 < first else first
        records = [
            Record(r.topic, r.partition, r.offset, r.value, r.timestamp, r.headers) for r in found
        ]
        ticket = Ticket(tp, start, last, generation, len(queues))
        for batches in queues:
            batches.put(ticket, records)
        consumer._read_offset[tp] = last

    def done(self, pieces: Iterable[Piece]) -> None:
        """A driver processed these pieces: ack each ticket every driver is done with."""
        for piece in pieces:
            if piece.final:
                ticket = piece.ticket
                ticket.pending -= 1
                if ticket.pending == 0:
                    self._ack(ticket)

    def _ack(self, ticket: Ticket) -> None:
        if ticket.generation != self.app.consumer_generation_id:
            return  # read again from the committed offset after the rebalance
        consumer, tp = self.app.consumer, ticket.tp
        with ack_lock:  # Faust's acks of its own streams share this bookkeeping
            committed = consumer._committed_offset[tp]
            first = ticket.start if committed is None else max(ticket.start, committed)
            offsets: Iterable[int] = range(first, ticket.last + 1)
            index = consumer._acked_index[tp]
            if not index.isdisjoint(offsets):
                offsets = [o for o in offsets if o not in index]
            index.update(offsets)
            acked = consumer._acked[tp]
            before = len(acked)
            acked.extend(offsets)
            consumer._n_acked += len(acked) - before


async def _room(consumer: Any, batches: Batches) -> bool:
    """Wait for room in ``batches``; False if the flow stopped first."""
    room = asyncio.ensure_future(batches.room())
    stopped = asyncio.ensure_future(consumer.suspend_flow.wait())
    try:
        await asyncio.wait({room, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        room.cancel()
        stopped.cancel()
    return consumer.flow_active and not batches.full()
