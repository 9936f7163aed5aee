"""Ticket-flag segments: customers by rolling usage volume, with a hysteresis band.

A segment is ``at_least`` usage events named ``event`` per customer within ``window``;
a customer joins when its count reaches ``at_least`` and leaves only when it falls below
``leave_below`` (so a customer oscillating between the two never flaps). Counts are kept
in event-time buckets of ``window / 24`` (at least 1 s), so the rolling count is exact to
a bucket. One :class:`SegmentPartition` holds the counts of one input partition (usage
events are keyed ``app|env|name``: every event of one feature is in one partition).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shiftright_server.schemas.flags import Segment

#: (app, env, event name, customer)
CountKey = tuple[str, str, str, str]
#: (app, flag, env, customer)
MemberKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class TicketFlag:
    app: str
    flag: str
    segment: Segment

    @property
    def bucket_ms(self) -> int:
        return max(1000, int(self.segment.window * 1000) // 24)


@dataclass(frozen=True)
class Change:
    """A customer joined (``joined``) or left a ticket flag's segment."""

    member: MemberKey
    joined: bool
    count: int


class SegmentPartition:
    """Counts and members of one input partition; saved and restored as JSON."""

    def __init__(self, raw: bytes | None = None) -> None:
        self.offset = -1  # the last applied offset of the input partition
        self.counts: dict[CountKey, dict[int, int]] = {}
        self.members: set[MemberKey] = set()
        if raw:
            doc = json.loads(raw)
            self.offset = int(doc["offset"])
            self.counts = {
                tuple(k.split("|", 3)): {int(b): n for b, n in v.items()}
                for k, v in doc["counts"].items()
            }
            self.members = {tuple(m.split("|", 3)) for m in doc["members"]}

    def dumps(self) -> bytes:
        return json.dumps(
            {
                "offset": self.offset,
                "counts": {"|".join(k): v for k, v in self.counts.items()},
                "members": sorted("|".join(m) for m in self.members),
            }
        ).encode()

    def add(self, key: CountKey, ts_ms: int, bucket_ms: int) -> None:
        buckets = self.counts.setdefault(key, {})
        start = ts_ms - ts_ms % bucket_ms
        buckets[start] = buckets.get(start, 0) + 1

    def count(self, key: CountKey, now_ms: int, flag: TicketFlag) -> int:
        """Events of ``key`` in the window ending at ``now_ms`` (older buckets dropped)."""
        buckets = self.counts.get(key)
        if not buckets:
            return 0
        since = now_ms - int(flag.segment.window * 1000)
        for start in [b for b in buckets if b + flag.bucket_ms <= since]:
            del buckets[start]
        if not buckets:
            del self.counts[key]
        return sum(n for b, n in buckets.items() if b + flag.bucket_ms > since)

    def decide(
        self, flags: Iterable[TicketFlag], keys: Iterable[CountKey], now_ms: int
    ) -> list[Change]:
        """Join or leave, for each ticket flag watching these keys' events."""
        changes = []
        by_event: dict[tuple[str, str], list[TicketFlag]] = {}
        for flag in flags:
            by_event.setdefault((flag.app, flag.segment.event), []).append(flag)
        for key in keys:
            app, env, event, customer = key
            for flag in by_event.get((app, event), ()):
                n = self.count(key, now_ms, flag)
                member = (app, flag.flag, env, customer)
                inside = member in self.members
                if not inside and n >= flag.segment.at_least:
                    self.members.add(member)
                    changes.append(Change(member, True, n))
                elif inside and n < flag.segment.exit_below:
                    self.members.discard(member)
                    changes.append(Change(member, False, n))
        return changes

    def members_keys(self, flags: Iterable[TicketFlag]) -> list[CountKey]:
        """The count keys of current members (their counts may have run out)."""
        events = {(f.app, f.flag): f.segment.event for f in flags}
        out = []
        for app, flag, env, customer in self.members:
            event = events.get((app, flag))
            if event is not None:
                out.append((app, env, event, customer))
        return out


def ticket_flags(folder_apps: dict[str, Any]) -> list[TicketFlag]:
    """The ticket flags of every app's applied file (``Folder.apps``)."""
    out = []
    for app, state in folder_apps.items():
        for spec in state.file.get("flags") or ():
            if spec.get("kind") == "ticket":
                out.append(TicketFlag(app, spec["name"], Segment.model_validate(spec["segment"])))
    return out
