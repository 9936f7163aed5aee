"""The sink's restart frontier: per partition of each topic it reads, the highest offset
the warehouse already holds from that topic's incarnation (:mod:`sinks.incarnations`).

It is read on every assignment, and a message at or below it is skipped: it was stored
before a crash or by the partition's previous owner. A partition whose offsets go back
(to the frontier or below it, or below the last offset seen) makes the sink store what it
holds and read the topic's id again: a topic deleted and created again under the running
sink, whose consumer position was reset to the new topic's start, is stored from its first
message. A replay after a crash reads the id once per partition and goes on skipping.
The sink also asks for its topics' ids every ``CHECK_SECONDS``: a topic created again
gets its own id in stored rows from then on, also on partitions that had nothing stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

import structlog
from confluent_kafka import KafkaException
from shiftright_server.sinks import incarnations
from shiftright_server.sinks.event_columns import Coded
from shiftright_server.sinks.incarnations import Incarnation, TopicIds
from shiftright_server.sinks.warehouse import Warehouse

log = structlog.get_logger("shiftright.sink")
T = TypeVar("T")
CHECK_SECONDS = 10.0


class LookUp(Protocol):
    def __call__(self, what: str, call: Callable[[], T]) -> T | None:
        """``call()``, retried until it succeeds; None when the sink stops first."""


class Frontier:
    def __init__(
        self,
        warehouse: Warehouse,
        topic_ids: TopicIds,
        table_for: Callable[[str], str],
        look_up: LookUp,
    ) -> None:
        self._warehouse = warehouse
        self._topic_ids = topic_ids
        self._table_for = table_for
        self._look_up = look_up
        self.topic_id: dict[str, str] = {}  # the incarnation of each topic read
        self._upto: dict[tuple[str, int], int] = {}
        self._last: dict[tuple[str, int], int] = {}  # the last offset seen per partition
        self._next_check = 0.0

    def assign(self, topics: Sequence[str]) -> None:
        """Read the frontier of ``topics``. A topic whose incarnation could not be read
        (the sink stopped first) stays unknown: its messages are neither stored nor
        committed."""
        self._forget(topics)
        ids = self._look_up("topic_ids", partial(self._topic_ids.topic_ids, topics))
        recorded = self._look_up("incarnations", self._warehouse.incarnations)
        if ids is None or recorded is None:
            return
        for topic in topics:
            self._take_up(topic, ids[topic], recorded.get(topic, {}))

    def revoke(self, partitions: Sequence[tuple[str, int]]) -> None:
        for key in partitions:
            self._upto.pop(key, None)
            self._last.pop(key, None)

    def known(self, topic: str) -> bool:
        return topic in self.topic_id

    def went_back(self, topic: str, partition: int, offset: int) -> bool:
        """Note the offset seen; True when it is not past the last one seen."""
        key = (topic, partition)
        back = offset <= self._last.get(key, -1)
        self._last[key] = offset
        return back

    def holds(self, topic: str, partition: int, offset: int) -> bool:
        return offset <= self._upto.get((topic, partition), -1)

    def read_again(self, topic: str) -> None:
        """Read ``topic``'s id again; a new one's frontier replaces the old one's."""
        ids = self._look_up("topic_ids", partial(self._topic_ids.topic_ids, [topic]))
        log.info("topic_id_read_again", topic=topic, was=self.topic_id.get(topic), ids=ids)
        if ids is None or ids[topic] == self.topic_id.get(topic):
            return
        recorded = self._look_up("incarnations", self._warehouse.incarnations)
        self._forget([topic])
        if recorded is not None:
            self._take_up(topic, ids[topic], recorded.get(topic, {}))

    def moved(self) -> list[str]:
        """The topics read whose id changed, asked at most every ``CHECK_SECONDS`` and
        once: a cluster that does not answer is asked again next time."""
        now = time.monotonic()
        if now < self._next_check or not self.topic_id:
            return []
        self._next_check = now + CHECK_SECONDS
        try:
            ids = self._topic_ids.topic_ids(sorted(self.topic_id))
        except (KafkaException, TimeoutError) as exc:  # e.g. a topic deleted, not yet back
            log.info("topic_ids_unread", error=str(exc)[:300])
            return []
        return [topic for topic, found in ids.items() if found != self.topic_id.get(topic)]

    def ids_column(self, topics: Sequence[str]) -> Sequence[str]:
        """The ``_topic_id`` column of rows from ``topics``."""
        if isinstance(topics, Coded):
            return topics.mapped(lambda topic: self.topic_id.get(topic, incarnations.LEGACY))
        if topics and (len(self.topic_id) == 1 or len(set(topics)) == 1):
            return [self.topic_id.get(topics[0], incarnations.LEGACY)] * len(topics)
        return [self.topic_id.get(t, incarnations.LEGACY) for t in topics]

    def ids_of(self, topics: Sequence[str]) -> str:
        """The topic ids of ``topics``, sorted, for a deduplication token."""
        return ",".join(sorted({self.topic_id.get(t, incarnations.LEGACY) for t in topics}))

    def _forget(self, topics: Sequence[str]) -> None:
        gone = set(topics)
        for topic in gone:
            self.topic_id.pop(topic, None)
        for held in (self._upto, self._last):
            for key in [k for k in held if k[0] in gone]:
                del held[key]

    def _take_up(self, topic: str, topic_id: str, recorded: dict[str, bool]) -> None:
        lookup = partial(self._warehouse.stored_offsets, self._table_for(topic), topic)
        stored = self._look_up("stored_offsets", lookup)
        if stored is None:
            return
        found = incarnations.resolve(topic, topic_id, recorded, stored)
        if found.new and not self._record(found):
            return
        self.topic_id[topic] = topic_id
        for partition, offset in found.positions.items():
            # A replay's first message reads the topic's id again: a topic created again
            # while no sink ran reads from its start, below the frontier.
            self._upto[(topic, partition)] = self._last[(topic, partition)] = offset

    def _record(self, found: Incarnation) -> bool:
        """Record a new incarnation (False when the sink stops first)."""
        if found.others:
            log.warning(
                "topic_incarnation_found",
                topic=found.topic,
                topic_id=found.topic_id,
                stored_incarnations=found.others,
                meaning="the topic was created again or is read from another cluster: "
                "every message of this incarnation is stored; positions stored from "
                "the others (their highest offset shown) do not apply to it",
            )
        values = (found.topic, found.topic_id, found.adopts_legacy, datetime.now(UTC))
        token = f"{incarnations.TABLE}:{found.topic}:{found.topic_id}"
        insert = partial(
            self._warehouse.insert,
            incarnations.TABLE,
            [[v] for v in values],
            incarnations.COLUMNS,
            token,
        )
        return self._look_up("incarnation_record", partial(_done, insert)) is not None


def _done(call: Callable[[], None]) -> bool:
    call()
    return True
