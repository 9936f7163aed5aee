"""The stored form of an error: the event, its group assignment and its health snapshot.

Every value comes from a validated :class:`~schemas.events.ErrorEvent`, an
:class:`~streams.grouping.assign.Assignment` and a cached snapshot, already of the
record's types, so the record is built without validating them again
(:func:`streams.built.built`); ``tests/unit/test_grouping_enrich.py`` holds it equal to
the validated record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.streams.built import built
from shiftright_server.streams.grouping.assign import Assignment
from shiftright_server.streams.grouping.health import Snapshot


def grouped_error(
    event: ErrorEvent,
    a: Assignment,
    snapshot: Snapshot | None,
    age_ms: int | None,
    position: tuple[int, int, int] = (0, -1, 0),
    after_error: bool = False,
) -> GroupedError:
    """``position``: (partition, offset, index) of the error where it was grouped from;
    ``after_error``: the snapshot was taken after the error (none before it)."""
    return built(
        GroupedError,
        event_id=event.event_id,
        ts=event.ts,
        app=event.app,
        env=event.env,
        release=event.release,
        host=event.host,
        instance=event.instance,
        user_id=event.user_id,
        customer_id=event.customer_id,
        route=event.route,
        handled=event.handled,
        level=event.level,
        exception_type=event.exception_type,
        root_type=a.exception_type,
        title=a.title,
        culprit=a.culprit,
        group_id=a.group_id,
        fingerprint=a.fingerprint,
        basis=a.basis,
        rules_version=a.rules_version,
        rule=a.rule,
        merged_from=a.merged_from,
        source_partition=position[0],
        source_offset=position[1],
        source_index=position[2],
        health_ts=datetime.fromtimestamp(snapshot.ts_ms / 1000, UTC) if snapshot else None,
        health_age_ms=age_ms if snapshot else None,
        health=dict(snapshot.metrics) if snapshot else {},
        health_after_error=after_error and snapshot is not None,
    )
