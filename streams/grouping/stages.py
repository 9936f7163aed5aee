"""The two stateful steps of error analytics, one state per partition number, ready for a
Faust agent to drive (records in, records out, state as bytes; no I/O here).

1. :class:`AttachStage` consumes ``events.health.v1`` and ``errors.byhost.v1`` (errors
   re-keyed ``app|env|host``, same partition count): each error is grouped at once and
   leaves without health for ``errors.assigned.v1`` (:meth:`AttachStage.assigned`);
   once it has met its host's health it leaves again, with the snapshot, as the stored
   :class:`~schemas.records.GroupedError` for ``errors.grouped.v1``. Both are keyed
   ``app|group_id`` (:func:`~streams.grouping.keys.group_key`).
2. :class:`GroupStage` consumes ``errors.assigned.v1`` and ``errors.commands.v1`` (both
   keyed ``app|group_id``): counts, statuses, transitions for ``errors.transitions.v1``
   and group rows for ``errors.groups.v1``. A new group is announced without waiting
   for health, and only once: the group counts each error position once.

Save ``dumps(partition)`` to the changelog once a batch's outputs are delivered (the
stream worker saves the health cache host by host: ``streams.error_flow.Attach``); a restarted worker loads it and skips the records it already applied. When
the first stage re-emits grouped errors after a restart, the second counts each source
position once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from shiftright_server.schemas.events import ErrorEvent, HealthEvent
from shiftright_server.schemas.records import (
    ErrorGroup,
    ErrorGroupCommand,
    ErrorGroupTransition,
    GroupedError,
)
from shiftright_server.streams.grouping.assign import Grouper
from shiftright_server.streams.grouping.enrich import grouped_error, with_health
from shiftright_server.streams.grouping.health import Attached, HealthJoin, Reading
from shiftright_server.streams.grouping.spike import SpikePolicy
from shiftright_server.streams.grouping.state import GroupBook

StateLoader = Callable[[int], bytes | None]


class AttachStage:
    def __init__(
        self,
        grouper: Grouper,
        load_state: StateLoader = lambda partition: None,
        max_wait_ms: int = 15_000,
    ) -> None:
        self.grouper = grouper
        self._load = load_state
        self._max_wait_ms = max_wait_ms
        self.joins: dict[int, HealthJoin] = {}
        #: Held errors as grouped without health, so a release neither groups them again
        #: nor builds their record anew, only adds the health (not saved: after a restart
        #: a released error is grouped again, the same way).
        self._records: dict[tuple[int, int, int], GroupedError] = {}
        #: Errors sent for counting on release (see ``HealthJoin.unannounced``).
        self._late: list[GroupedError] = []

    def join(self, partition: int) -> HealthJoin:
        found = self.joins.get(partition)
        if found is None:
            raw = self._load(partition)
            found = HealthJoin.loads(raw) if raw else _join(self._max_wait_ms)
            self.joins[partition] = found
        return found

    def health(
        self,
        partition: int,
        topic: str,
        offset: int,
        event: HealthEvent | Reading,
        index: int = 0,
    ) -> list[GroupedError]:
        """A health event at (offset, index) of ``topic``; the grouped errors it releases."""
        join = self.join(partition)
        if join.seen(topic, offset, index):
            return []
        return self._grouped(partition, join.add_health(event, topic, offset, index))

    def healths(
        self, partition: int, topic: str, offset: int, readings: list[tuple[int, Reading]]
    ) -> list[GroupedError]:
        """:meth:`health` for each (index, reading) of the message at ``offset``."""
        return self._grouped(partition, self.join(partition).add_healths(readings, topic, offset))

    def error(
        self, partition: int, topic: str, offset: int, event: ErrorEvent, index: int = 0
    ) -> list[GroupedError]:
        """An error at (offset, index) of ``topic``; the grouped errors now ready, in order."""
        return self.assigned(partition, topic, offset, event, index)[1]

    def assigned(
        self, partition: int, topic: str, offset: int, event: ErrorEvent, index: int = 0
    ) -> tuple[GroupedError | None, list[GroupedError]]:
        """An error at (offset, index) of ``topic``: the error grouped now, without health
        (None when it was applied before), and the grouped errors now ready, in order."""
        join = self.join(partition)
        if join.seen(topic, offset, index):
            return None, []
        position = (partition, offset, index)
        record = self._records[position] = grouped_error(
            event, self.grouper.assign(event), None, None, position
        )
        now: GroupedError | None = record
        if join.unannounced:  # behind errors still to be sent: sent after them, in order
            join.unannounced.add((offset, index))
            now = None
        return now, self._grouped(partition, join.add_error(event, topic, offset, index))

    def take_late(self) -> list[GroupedError]:
        """Errors to send for counting that were released since the last call, in order."""
        late, self._late = self._late, []
        return late

    def dumps(self, partition: int) -> bytes:
        return self.join(partition).dumps()

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop in-memory state of partitions this worker no longer owns."""
        gone = set(partitions)
        for p in gone:
            self.joins.pop(p, None)
        self._records = {k: r for k, r in self._records.items() if k[0] not in gone}

    def _record(self, partition: int, a: Attached) -> GroupedError:
        """The held error as grouped without health (grouped again after a restart)."""
        position = (partition, a.offset, a.index)
        found = self._records.pop(position, None)
        if found is None:
            found = grouped_error(a.error, self.grouper.assign(a.error), None, None, position)
        return found

    def _grouped(self, partition: int, attached: list[Attached]) -> list[GroupedError]:
        if not attached:
            return []
        unannounced = self.join(partition).unannounced
        if unannounced:
            for a in attached:
                if (a.offset, a.index) in unannounced:
                    unannounced.discard((a.offset, a.index))
                    record = self._records[(partition, a.offset, a.index)] = self._record(
                        partition, a
                    )
                    self._late.append(record)
        records, out = self._records, []
        for a in attached:
            found = records.pop((partition, a.offset, a.index), None)
            if found is None:
                found = self._record(partition, a)
            out.append(with_health(found, a.snapshot, a.age_ms, a.after_error))
        return out


class GroupStage:
    def __init__(
        self, policy: SpikePolicy | None = None, load_state: StateLoader = lambda partition: None
    ) -> None:
        self.policy = policy or SpikePolicy()
        self._load = load_state
        self.books: dict[int, GroupBook] = {}

    def book(self, partition: int) -> GroupBook:
        found = self.books.get(partition)
        if found is None:
            raw = self._load(partition)
            found = GroupBook.loads(raw) if raw else GroupBook(partition, self.policy)
            self.books[partition] = found
        return found

    def error(self, partition: int, error: GroupedError) -> list[ErrorGroupTransition]:
        """A grouped error; its transitions (none for one its group already counted)."""
        return self.book(partition).apply(error)

    def command(self, partition: int, offset: int, cmd: ErrorGroupCommand) -> bool:
        return self.book(partition).command(offset, cmd)

    def take_rows(self, partition: int) -> list[ErrorGroup]:
        return self.book(partition).take_rows()

    def dumps(self, partition: int) -> bytes:
        return self.book(partition).dumps()

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.books.pop(p, None)


def _join(max_wait_ms: int) -> HealthJoin:
    """A join that waits at most ``max_wait_ms`` for an error's host, however the health
    of the other hosts moves (grace: at most the default 10 s, never more than the wait)."""
    return HealthJoin(max_wait_ms=max_wait_ms, grace_ms=min(HealthJoin.grace_ms, max_wait_ms))
