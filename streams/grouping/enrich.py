"""The stored form of an error: the event, its group assignment and its health snapshot.

Every value comes from a validated :class:`~schemas.events.ErrorEvent`, an
:class:`~streams.grouping.assign.Assignment` and a cached snapshot, already of the
record's types, so the record is built without validating them again
(:func:`streams.built.built`); ``tests/unit/test_grouping_enrich.py`` holds it equal to
the validated record.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from datetime import UTC, datetime
from operator import itemgetter
from typing import Final

from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.streams.built import built_of, json_bytes
from shiftright_server.streams.grouping.assign import Assignment
from shiftright_server.streams.grouping.health import Snapshot

#: The record's fields taken from the event as they are (those of the event's, in the
#: record's order), then from the assignment.
_FROM_EVENT: Final = tuple(f for f in GroupedError.model_fields if f in ErrorEvent.model_fields)
_FROM_ASSIGNMENT: Final = {
    "root_type": "exception_type",
    "title": "title",
    "culprit": "culprit",
    "group_id": "group_id",
    "fingerprint": "fingerprint",
    "basis": "basis",
    "rules_version": "rules_version",
    "rule": "rule",
    "merged_from": "merged_from",
}
_FIELDS: Final = (*_FROM_EVENT, *_FROM_ASSIGNMENT)


_POSITION: Final = ("source_partition", "source_offset", "source_index")
_HEALTH: Final = ("health_ts", "health_age_ms", "health", "health_after_error")
_ALL: Final = (*_FIELDS, *_POSITION, *_HEALTH)  # the record's order


def grouped_error(
    event: ErrorEvent,
    a: Assignment,
    snapshot: Snapshot | None,
    age_ms: int | None,
    position: tuple[int, int, int] = (0, -1, 0),
    after_error: bool = False,
) -> GroupedError:
    """``position``: (partition, offset, index) of the error where it was grouped from;
    ``after_error``: the snapshot was taken after the error (none before it).

    The values are written out field by field, in the record's order (one dict display
    costs about half of pairing :data:`_ALL` with the values); ``test_grouping_enrich.py``
    holds the fields to the record's and each value to the validated record's."""
    e = event.__dict__
    health_ts, health_age_ms, health, health_after_error = _health(snapshot, age_ms, after_error)
    return built_of(
        GroupedError,
        {
            "event_id": e["event_id"],
            "ts": e["ts"],
            "app": e["app"],
            "env": e["env"],
            "release": e["release"],
            "host": e["host"],
            "instance": e["instance"],
            "user_id": e["user_id"],
            "customer_id": e["customer_id"],
            "route": e["route"],
            "handled": e["handled"],
            "level": e["level"],
            "exception_type": e["exception_type"],
            "root_type": a.exception_type,
            "title": a.title,
            "culprit": a.culprit,
            "group_id": a.group_id,
            "fingerprint": a.fingerprint,
            "basis": a.basis,
            "rules_version": a.rules_version,
            "rule": a.rule,
            "merged_from": a.merged_from,
            "source_partition": position[0],
            "source_offset": position[1],
            "source_index": position[2],
            "health_ts": health_ts,
            "health_age_ms": health_age_ms,
            "health": health,
            "health_after_error": health_after_error,
        },
    )


def with_health(
    at_once: GroupedError, snapshot: Snapshot | None, age_ms: int | None, after_error: bool
) -> GroupedError:
    """The record sent at once (built without health) with this health instead: what
    :func:`grouped_error` gives for the same error, assignment, position and health."""
    values = dict(at_once.__dict__)
    values.update(zip(_HEALTH, _health(snapshot, age_ms, after_error), strict=True))
    return built_of(GroupedError, values)


def _health(
    snapshot: Snapshot | None, age_ms: int | None, after_error: bool
) -> tuple[datetime | None, int | None, dict[str, float], bool]:
    """The values of the health fields."""
    if snapshot is None:
        return None, None, {}, False
    return _when(snapshot.ts_ms), age_ms, dict(snapshot.metrics), after_error


@functools.lru_cache(maxsize=1024)  # the errors of a host share its latest snapshot
def _when(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


#: The record's serialiser, and the last four fields: what the record sent with its
#: host's health adds to the one sent at once.
_record_json: Final = GroupedError.__pydantic_serializer__.to_json
_HEALTH_ONLY: Final = set(_HEALTH)


_HEAD_END: Final = b',"health_ts":'
_head_values: Final = itemgetter(*_FIELDS, "source_partition", "source_offset", "source_index")
_Key = tuple[int, int, int]


class GroupedLines:
    """Grouped errors as the JSON lines they are sent as, each error's fields before its
    health serialised once. An error leaves twice: at once without health
    (``errors.assigned.v1``) and with its host's health once known (``errors.grouped.v1``);
    the two records differ only in the four health fields, which come last. So the line
    sent at once is kept, up to ``,"health_ts":``, by the error's position, and the line
    sent with health is that head and the health fields (the same bytes
    ``model_dump_json`` writes: ``tests/unit/test_grouping_enrich.py``). A head is used
    only for a record of the same values; at most ``limit`` are kept, the oldest dropped
    first (a record without one is serialised whole)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._heads: OrderedDict[_Key, tuple[tuple[object, ...], bytes]] = OrderedDict()

    def at_once(self, g: GroupedError) -> bytes:
        """The line of a record sent without health; its head is kept for the other."""
        line = json_bytes(g)
        head = line[: line.rindex(_HEAD_END)]
        heads = self._heads
        heads[(g.source_partition, g.source_offset, g.source_index)] = (
            _head_values(g.__dict__),
            head,
        )
        if len(heads) > self.limit:
            heads.popitem(last=False)
        return line

    def with_health(self, g: GroupedError) -> bytes:
        """The line of a record sent once its health is known (or known absent)."""
        found = self._heads.pop((g.source_partition, g.source_offset, g.source_index), None)
        if found is None or not _same_head(found[0], _head_values(g.__dict__)):
            return json_bytes(g)
        health = _record_json(g, include=_HEALTH_ONLY)  # {"health_ts":...}
        return b",".join((found[1], health[1:]))

    def forget(self, partitions: set[int]) -> None:
        self._heads = OrderedDict((k, v) for k, v in self._heads.items() if k[0] not in partitions)


def _same_head(kept: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """Values that serialise alike: equal, and the same time object (two equal times in
    other zones would be written differently)."""
    return kept == now and kept[1] is now[1]
