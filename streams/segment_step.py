"""Ticket-flag segments as a step around :mod:`streams.segments`.

::

    events.usage.v1 ──segments──▶ flags.config.v1 (member:<app>|<flag>|<env>|<customer>)
    flags.config.v1 (which ticket flags exist) ─┘

Each input partition has its own :class:`SegmentPartition`, saved to the changelog table
``segment-state`` as one record. Only usage events named like a ticket flag's segment
event are decoded (a byte search first: the step costs nothing for other traffic). A
join writes ``{"in": true, "count": n}``, a leave ``{"in": false, "count": n}`` on the
member's key; apps' SDKs fetch them as soon as the broker has them. A clock re-decides the
members every ``TICK_SECONDS`` on the wall clock, so a customer whose usage stops leaves
without a new event. Nothing is decided before the flag topic was read to its end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import structlog
from shiftright.flags.feed import Follower
from shiftright.flags.topic import Folder, member_key
from shiftright_server.schemas import wire
from shiftright_server.streams.driver import Driver, wall_ms
from shiftright_server.streams.partition_state import PartitionStates
from shiftright_server.streams.segments import (
    Change,
    CountKey,
    SegmentPartition,
    TicketFlag,
    ticket_flags,
)
from shiftright_server.streams.step import (
    Message,
    Output,
    Record,
)
from shiftright_server.streams.step import (
    TopicPartition as TP,
)

log = structlog.get_logger("shiftright.streams.segments")
TICK_SECONDS = 2.0


class FlagBook:
    """The ticket flags of every app, from the flag topic a thread follows."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.folder = Folder()
        self.flags: list[TicketFlag] = []
        self.follower = Follower(bootstrap, topic, self.folder, self._changed)
        self.loaded = self.follower.loaded

    def start(self) -> None:
        self.follower.start()

    def _changed(self) -> None:
        self.flags = ticket_flags(self.folder.apps)


class SegmentStep(PartitionStates[SegmentPartition]):
    name = "segments"

    def __init__(self, table: Any, flags_topic: str, book: FlagBook) -> None:
        super().__init__(table)
        self.flags_topic, self.book = flags_topic, book

    async def until_loaded(self) -> None:
        while not self.book.loaded.is_set():
            await asyncio.sleep(0.1)

    def make(self, saved: bytes | None) -> SegmentPartition:
        return SegmentPartition(saved)

    def process(self, records: Sequence[Record]) -> Output:
        flags = self.book.flags
        wanted = {(f.app, f.segment.event): f for f in flags}
        needles = {json.dumps(event).encode() for _, event in wanted}
        out = Output()
        touched: dict[TP, set[CountKey]] = {}
        for rec in records:
            tp = (rec.topic, rec.partition)
            part = self.partition(tp)
            if rec.offset <= part.offset:
                continue
            part.offset = rec.offset
            out.touched.add(tp)
            keys = touched.setdefault(tp, set())
            for line in wire.split_events(rec.value, rec.headers) if needles else ():
                if line and any(n in line for n in needles):
                    self._count(part, line, wanted, keys)
        now = wall_ms()
        for tp, keys in touched.items():
            self._emit(self.parts[tp].decide(flags, keys, now), out)
        out.counts["records"] += len(records)
        return out

    def _count(
        self,
        part: SegmentPartition,
        line: bytes,
        wanted: dict[tuple[str, str], TicketFlag],
        keys: set[CountKey],
    ) -> None:
        event = json.loads(line)
        flag = wanted.get((event.get("app"), event.get("name")))
        customer = event.get("customer_id") or ""
        if flag is None or not customer or event.get("kind") != "usage":
            return
        key = (flag.app, str(event.get("env", "")), flag.segment.event, str(customer))
        part.add(key, _ms(event.get("ts", "")), flag.bucket_ms)
        keys.add(key)

    def tick(self) -> Output:
        """Re-decide every member on the wall clock (counts run out of the window)."""
        flags, now, out = self.book.flags, wall_ms(), Output()
        for tp, part in self.parts.items():
            changes = part.decide(flags, part.members_keys(flags), now)
            if changes:
                out.touched.add(tp)
                self._emit(changes, out)
        return out

    def _emit(self, changes: list[Change], out: Output) -> None:
        for change in changes:
            app, flag, env, customer = change.member
            value = {"in": change.joined, "count": change.count, "at": wall_ms()}
            out.messages.append(
                Message(
                    self.flags_topic,
                    member_key(app, flag, env, customer),
                    json.dumps(value).encode(),
                    partition=0,
                )
            )
            out.counts["joined" if change.joined else "left"] += 1


class SegmentClock:
    def __init__(self, step: SegmentStep, driver: Driver) -> None:
        self.step, self.driver = step, driver

    async def prepare(self) -> bool | None:
        return True if self.step.book.loaded.is_set() and self.step.parts else None

    def apply(self, _: bool) -> Output:
        return self.step.tick()


def _ms(ts: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(ts).timestamp() * 1000)
    except ValueError:
        return wall_ms()
