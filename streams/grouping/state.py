"""Error groups: counts, first/last seen, status, and the transitions they go through.

:class:`GroupBook` holds the groups of one partition number (grouped errors and commands
both keyed ``app|group_id``, so a group's events and the decisions about it meet in one
place). Each group remembers, per source partition, the position of the last error it
counted (errors arrive in source order: :class:`~streams.grouping.health.HealthJoin`
releases them in order), and the offset of the last command; so a redelivered or
re-emitted error is not counted twice, and the whole book can be saved as one changelog
record (:meth:`GroupBook.dumps`) or each changed group as its own
(:meth:`GroupBook.state_of`, keyed by group id). Everything is a function of the records in order: event time is the only clock.

Status and transitions:

* ``new`` at a group's first event; ``new_in_env`` at its first event in another env.
* ``resolved``: an event with ``ts`` at or after the resolution is ``regressed`` (and
  the group is unresolved again); older, late events are not.
* ``resolved_in_next_release`` after release R: an event in a release newer than R is
  ``regressed``; events still in R or older are expected and change nothing.
  Releases compare as versions (``1.10.0`` > ``1.9.3``); when either is not a version,
  the release the group saw later is newer (an unseen one is the newest).
* ``ignored`` (optionally until an event time or until N more events): when the
  condition is met the group is ``unignored`` and unresolved; ignored groups do not
  report ``spiking``.
* ``spiking``: see :mod:`streams.grouping.spike`, per group and env.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shiftright_server.schemas.records import (
    ErrorGroup,
    ErrorGroupCommand,
    ErrorGroupTransition,
    GroupBasis,
    GroupedError,
    GroupStatus,
    TransitionKind,
)
from shiftright_server.streams.grouping.distinct import DistinctCounter
from shiftright_server.streams.grouping.spike import SpikeDetector, SpikePolicy

_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")
Seen = list[int]  # [first_ms, last_ms, count]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class GroupState:
    group_id: str
    app: str
    fingerprint: str
    basis: GroupBasis
    rules_version: int
    rule: str
    exception_type: str
    title: str
    culprit: str
    status: GroupStatus = "unresolved"
    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    first_release: str = ""
    last_release: str = ""
    envs: dict[str, Seen] = field(default_factory=dict)
    releases: dict[str, Seen] = field(default_factory=dict)
    users: DistinctCounter = field(default_factory=DistinctCounter)
    customers: DistinctCounter = field(default_factory=DistinctCounter)
    resolved_ms: int = 0
    resolved_in_release: str = ""
    ignored_until_ms: int = 0
    ignored_until_count: int = 0  # the group's total count at which ignoring ends
    merged_from: list[str] = field(default_factory=list)
    spikes: dict[str, SpikeDetector] = field(default_factory=dict)
    version: int = 0
    sources: dict[int, list[int]] = field(default_factory=dict)  # partition -> [offset, index]
    command_offset: int = -1  # of the last command applied (commands topic)

    @classmethod
    def start(cls, g: GroupedError) -> GroupState:
        return cls(
            g.group_id,
            g.app,
            g.fingerprint,
            g.basis,
            g.rules_version,
            g.rule,
            g.root_type,
            g.title,
            g.culprit,
        )

    # -- events -----------------------------------------------------------------------------
    def apply(self, event: GroupedError, policy: SpikePolicy) -> list[ErrorGroupTransition]:
        ts = _ms(event.ts)
        before = self.status
        kinds = self._lifecycle(event, ts)
        self._count(event, ts)
        out = [self._transition(event, k, before) for k in kinds]
        spike = self.spikes.setdefault(event.env, SpikeDetector())
        if spike.observe(ts, policy) and self.status != "ignored":
            baseline = spike.baseline  # of the minutes before this one
            out.append(
                self._transition(
                    event,
                    "spiking",
                    before,
                    spike.count,
                    baseline,
                    f"{spike.count} events in a minute against a baseline of "
                    f"{baseline:.2f}/min (threshold {policy.threshold(baseline):.1f})",
                )
            )
        return out

    def _lifecycle(self, event: GroupedError, ts: int) -> list[TransitionKind]:
        kinds: list[TransitionKind] = []
        if self.count == 0:
            kinds.append("new")
        elif event.env not in self.envs:
            kinds.append("new_in_env")
        if (
            self.status == "resolved"
            and ts >= self.resolved_ms
            or self.status == "resolved_in_next_release"
            and self.newer(event.release, self.resolved_in_release)
        ):
            kinds.append("regressed")
        elif self.status == "ignored" and self._ignore_over(ts):
            kinds.append("unignored")
        if "regressed" in kinds or "unignored" in kinds:
            self._clear_status()
        return kinds

    def _ignore_over(self, ts: int) -> bool:
        by_time = self.ignored_until_ms and ts >= self.ignored_until_ms
        by_count = self.ignored_until_count and self.count + 1 >= self.ignored_until_count
        return bool(by_time or by_count)

    def _count(self, event: GroupedError, ts: int) -> None:
        self.version += 1
        if self.count == 0 or ts < self.first_ms:
            self.first_ms, self.first_release = ts, event.release
        if ts >= self.last_ms:
            self.last_ms, self.last_release = ts, event.release
        self.count += 1
        _seen(self.envs, event.env, ts)
        _seen(self.releases, event.release, ts)
        self.users.add(event.user_id)
        self.customers.add(event.customer_id)
        self.rules_version = max(self.rules_version, event.rules_version)
        if event.merged_from and event.merged_from not in self.merged_from:
            self.merged_from.append(event.merged_from)

    def newer(self, release: str, than: str) -> bool:
        """Whether ``release`` came after ``than`` (see the module docstring)."""
        a, b = _VERSION.match(release), _VERSION.match(than)
        if a and b:
            return _version_key(a[1]) > _version_key(b[1])
        if release == than:
            return False
        seen_a, seen_b = self.releases.get(release), self.releases.get(than)
        if seen_a is None:
            return True
        return seen_b is not None and seen_a[0] > seen_b[0]

    # -- commands ---------------------------------------------------------------------------
    def command(self, cmd: ErrorGroupCommand) -> None:
        self.version += 1
        self._clear_status()
        ts = _ms(cmd.ts)
        if cmd.action == "resolve":
            self.status, self.resolved_ms = "resolved", ts
        elif cmd.action == "resolve_in_next_release":
            self.status, self.resolved_ms = "resolved_in_next_release", ts
            self.resolved_in_release = cmd.release or self.last_release
        elif cmd.action == "ignore":
            self.status = "ignored"
            self.ignored_until_ms = _ms(cmd.ignore_until) if cmd.ignore_until else 0
            if cmd.ignore_until_count:
                self.ignored_until_count = self.count + cmd.ignore_until_count

    def _clear_status(self) -> None:
        self.status, self.resolved_ms, self.resolved_in_release = "unresolved", 0, ""
        self.ignored_until_ms = self.ignored_until_count = 0

    # -- output -----------------------------------------------------------------------------
    def _transition(
        self,
        event: GroupedError,
        kind: TransitionKind,
        before: GroupStatus,
        minute_count: int = 0,
        baseline: float = 0.0,
        detail: str = "",
    ) -> ErrorGroupTransition:
        return ErrorGroupTransition(
            group_id=self.group_id,
            app=self.app,
            env=event.env,
            release=event.release,
            kind=kind,
            ts=event.ts,
            event_id=event.event_id,
            previous_status=before,
            status=self.status,
            title=self.title,
            exception_type=self.exception_type,
            count=self.count,
            minute_count=minute_count,
            baseline=baseline,
            detail=detail,
        )

    def row(self) -> ErrorGroup:
        return ErrorGroup(
            group_id=self.group_id,
            app=self.app,
            fingerprint=self.fingerprint,
            basis=self.basis,
            rules_version=self.rules_version,
            rule=self.rule,
            exception_type=self.exception_type,
            title=self.title,
            culprit=self.culprit,
            status=self.status,
            first_seen=_dt(self.first_ms),
            last_seen=_dt(self.last_ms),
            count=self.count,
            users=self.users.estimate(),
            customers=self.customers.estimate(),
            counts_exact=self.users.is_exact and self.customers.is_exact,
            first_release=self.first_release,
            last_release=self.last_release,
            env_first_seen={k: _dt(v[0]) for k, v in self.envs.items()},
            env_last_seen={k: _dt(v[1]) for k, v in self.envs.items()},
            env_count={k: v[2] for k, v in self.envs.items()},
            release_first_seen={k: _dt(v[0]) for k, v in self.releases.items()},
            release_last_seen={k: _dt(v[1]) for k, v in self.releases.items()},
            release_count={k: v[2] for k, v in self.releases.items()},
            resolved_at=_dt(self.resolved_ms) if self.resolved_ms else None,
            resolved_in_release=self.resolved_in_release,
            ignored_until=_dt(self.ignored_until_ms) if self.ignored_until_ms else None,
            ignored_until_count=self.ignored_until_count,
            merged_from=list(self.merged_from),
            version=self.version,
            updated_at=_dt(self.last_ms),
        )

    # -- persistence ------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("users", "customers", "spikes")}
        out["users"], out["customers"] = self.users.dump(), self.customers.dump()
        out["spikes"] = {env: s.dump() for env, s in self.spikes.items()}
        return out

    @classmethod
    def load(cls, raw: dict[str, Any]) -> GroupState:
        raw = dict(raw)
        users = DistinctCounter.load(raw.pop("users"))
        customers = DistinctCounter.load(raw.pop("customers"))
        spikes = {env: SpikeDetector.load(s) for env, s in raw.pop("spikes").items()}
        sources = {int(p): list(pos) for p, pos in raw.pop("sources").items()}  # JSON keys: str
        return cls(**raw, users=users, customers=customers, spikes=spikes, sources=sources)


def _seen(table: dict[str, Seen], key: str, ts: int) -> None:
    found = table.get(key)
    if found is None:
        table[key] = [ts, ts, 1]
    else:
        found[0], found[1], found[2] = min(found[0], ts), max(found[1], ts), found[2] + 1


def _version_key(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass
class GroupBook:
    """The groups of one partition number (see the module docstring)."""

    partition: int = 0
    policy: SpikePolicy = field(default_factory=SpikePolicy)
    groups: dict[str, GroupState] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)

    def apply(self, error: GroupedError) -> list[ErrorGroupTransition]:
        """Count one grouped error; the transitions it causes. An error at or before the
        last position its group counted from the same source partition is skipped."""
        group = self.groups.get(error.group_id)
        if group is None:
            group = self.groups[error.group_id] = GroupState.start(error)
        if error.source_offset >= 0:
            position = [error.source_offset, error.source_index]
            last = group.sources.get(error.source_partition)
            if last is not None and position <= last:
                return []
            group.sources[error.source_partition] = position
        self.changed.add(error.group_id)
        return group.apply(error, self.policy)

    def command(self, offset: int, cmd: ErrorGroupCommand) -> bool:
        """Apply a resolve/ignore decision (``offset`` in the commands topic); False when
        the group is unknown here or the command was applied before."""
        group = self.groups.get(cmd.group_id)
        if group is None or offset <= group.command_offset:
            return False
        group.command_offset = offset
        group.command(cmd)
        self.changed.add(cmd.group_id)
        return True

    def take_rows(self) -> list[ErrorGroup]:
        """Rows of the groups changed since the last call (emit them after each batch)."""
        rows = [self.groups[g].row() for g in sorted(self.changed)]
        self.changed.clear()
        return rows

    # -- persistence ------------------------------------------------------------------------
    def dumps(self) -> bytes:
        """The whole book as one changelog record."""
        state = {
            "partition": self.partition,
            "policy": self.policy.__dict__,
            "groups": [g.dump() for g in self.groups.values()],
            "changed": sorted(self.changed),
        }
        return json.dumps(state, separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw: bytes) -> GroupBook:
        s = json.loads(raw)
        groups = {g["group_id"]: GroupState.load(g) for g in s["groups"]}
        return cls(s["partition"], SpikePolicy(**s["policy"]), groups, set(s["changed"]))

    def state_of(self, group_id: str) -> bytes:
        """One group as a changelog record keyed by its id (smaller writes than the book)."""
        return json.dumps(self.groups[group_id].dump(), separators=(",", ":")).encode()

    def restore(self, states: Iterable[bytes]) -> None:
        """Load groups saved with :meth:`state_of` (e.g. a keyed table's values)."""
        for raw in states:
            group = GroupState.load(json.loads(raw))
            self.groups[group.group_id] = group
