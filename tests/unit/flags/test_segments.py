"""Ticket-flag segments in the stream: rolling counts, joins, leaves and the hysteresis band."""

from __future__ import annotations

import json
from typing import Any

from shiftright_server.schemas.flags import Segment
from shiftright_server.streams.segment_step import SegmentStep
from shiftright_server.streams.segments import SegmentPartition, TicketFlag
from shiftright_server.streams.step import Record

BULK = TicketFlag(
    "checkout",
    "bulk-export",
    Segment(event="checkout.submit", at_least=10, window=60, leave_below=6),
)
KEY = ("checkout", "prod", "checkout.submit", "acme")
T0 = 1_800_000_000_000


def _changes(part: SegmentPartition, now: int) -> list[tuple[bool, int]]:
    return [(c.joined, c.count) for c in part.decide([BULK], [KEY], now)]


def test_a_customer_joins_at_the_threshold_and_leaves_below_the_band() -> None:
    part = SegmentPartition()
    for i in range(9):
        part.add(KEY, T0 + i * 100, BULK.bucket_ms)
    assert _changes(part, T0 + 1000) == []
    part.add(KEY, T0 + 1000, BULK.bucket_ms)
    assert _changes(part, T0 + 1000) == [(True, 10)]
    assert ("checkout", "bulk-export", "prod", "acme") in part.members
    assert _changes(part, T0 + 62_000) == []  # counted to a bucket (2.5 s): still in
    assert _changes(part, T0 + 63_000) == [(False, 0)]  # the window slid past every event


def test_a_customer_oscillating_at_the_threshold_does_not_flap() -> None:
    part = SegmentPartition()
    decisions = []
    now = T0
    for second in range(600):  # 10 minutes at 9-11 events a minute
        now = T0 + second * 1000
        if second % 6 == 0 or second % 60 == 1:
            part.add(KEY, now, BULK.bucket_ms)
        decisions += _changes(part, now)
    assert [joined for joined, _ in decisions] == [True]


def test_state_survives_a_restart() -> None:
    part = SegmentPartition()
    for i in range(10):
        part.add(KEY, T0 + i, BULK.bucket_ms)
    part.decide([BULK], [KEY], T0 + 10)
    part.offset = 41
    again = SegmentPartition(part.dumps())
    assert again.offset == 41 and again.members == part.members
    assert again.count(KEY, T0 + 10, BULK) == 10


class Table:
    data: dict[bytes, bytes] = {}


class Book:
    loaded = True
    flags = [BULK]


def _record(offset: int, events: list[dict[str, Any]]) -> Record:
    value = b"\n".join(json.dumps(e).encode() for e in events)
    return Record(
        "events.usage.v1", 3, offset, value, T0, [("content-type", b"application/x-ndjson")]
    )


def test_the_step_counts_matching_usage_and_writes_membership_once() -> None:
    step = SegmentStep(Table(), "flags.config.v1", Book())  # type: ignore[arg-type]  # a fake with the FlagBook's two fields
    submit = {
        "kind": "usage",
        "app": "checkout",
        "env": "prod",
        "name": "checkout.submit",
        "customer_id": "acme",
        "ts": "2027-01-15T08:00:00.000Z",
    }
    other = dict(submit, name="search")
    out = step.process([_record(i, [submit, other]) for i in range(12)])
    keys = [(m.key, json.loads(m.value)["in"]) for m in out.messages]
    assert keys == [(b"member:checkout|bulk-export|prod|acme", True)]
    assert out.messages[0].partition == 0
    replay = step.process([_record(11, [submit])])  # already applied: nothing again
    assert replay.messages == []
