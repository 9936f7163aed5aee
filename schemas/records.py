"""Records the stream processors derive from events."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Rollup(BaseModel):
    """Aggregates of one closed event-time bucket of one key, from one source partition.

    Natural key: (app, env, kind, key, bucket_start, source_partition). A replay can
    re-emit a bucket; the re-emission never has a larger ``count`` than the original,
    so the warehouse keeps the row with the largest count (ReplacingMergeTree(count)).
    """

    model_config = ConfigDict(frozen=True)

    app: str
    env: str
    kind: str
    key: str
    bucket_start: datetime
    bucket_seconds: int
    count: int = Field(ge=0)
    sums: dict[str, float] = Field(default_factory=dict)
    mins: dict[str, float] = Field(default_factory=dict)
    maxs: dict[str, float] = Field(default_factory=dict)
    first_ts: datetime
    last_ts: datetime
    source_partition: int
    emitted_at: datetime


# -- error analytics ----------------------------------------------------------------------

GroupStatus = Literal["unresolved", "resolved", "resolved_in_next_release", "ignored"]
TransitionKind = Literal["new", "new_in_env", "regressed", "spiking", "unignored"]
GroupBasis = Literal["stack", "message", "rule"]  # what a fingerprint was computed from
GroupAction = Literal["resolve", "resolve_in_next_release", "ignore", "unresolve"]


class GroupedError(BaseModel):
    """One error event with its group and the health of its host when it was thrown.

    Natural key: ``event_id``. ``health_*`` are empty when the host reported no health
    snapshot in the 60 s before the error, nor (``health_after_error``) in the 10 s after
    it; ``health_age_ms`` is the distance between the error and the snapshot either way. ``source_*`` is the error's position in the
    partition it was grouped from (errors.byhost.v1): a group counts each position once,
    so a stage that re-emits after a restart does not count twice.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    ts: datetime
    app: str
    env: str
    release: str = ""
    host: str = ""
    instance: str = ""
    user_id: str = ""
    customer_id: str = ""
    route: str = ""
    handled: bool = False
    level: str = "error"
    exception_type: str
    root_type: str
    title: str
    culprit: str = ""
    group_id: str
    fingerprint: str
    basis: GroupBasis
    rules_version: int = Field(ge=0)
    rule: str = ""
    merged_from: str = ""  # the group a merge rule redirected this error from
    source_partition: int = Field(default=0, ge=0)
    source_offset: int = Field(default=-1, ge=-1)  # -1: unknown (no de-duplication)
    source_index: int = Field(default=0, ge=0)
    health_ts: datetime | None = None
    health_age_ms: int | None = Field(default=None, ge=0)
    health: dict[str, float] = Field(default_factory=dict)
    health_after_error: bool = False  # the snapshot was taken after the error


class ErrorGroup(BaseModel):
    """The state of one error group after a change; the warehouse keeps the highest
    ``version`` per ``(app, group_id)`` (ReplacingMergeTree(version))."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    app: str
    fingerprint: str
    basis: str
    rules_version: int
    rule: str = ""
    exception_type: str
    title: str
    culprit: str = ""
    status: GroupStatus = "unresolved"
    first_seen: datetime
    last_seen: datetime
    count: int = Field(ge=0)
    users: int = Field(ge=0)
    customers: int = Field(ge=0)
    counts_exact: bool = True  # False once users or customers are HyperLogLog estimates
    first_release: str = ""
    last_release: str = ""
    env_first_seen: dict[str, datetime] = Field(default_factory=dict)
    env_last_seen: dict[str, datetime] = Field(default_factory=dict)
    env_count: dict[str, int] = Field(default_factory=dict)
    release_first_seen: dict[str, datetime] = Field(default_factory=dict)
    release_last_seen: dict[str, datetime] = Field(default_factory=dict)
    release_count: dict[str, int] = Field(default_factory=dict)
    resolved_at: datetime | None = None
    resolved_in_release: str = ""
    ignored_until: datetime | None = None
    ignored_until_count: int = 0
    merged_from: list[str] = Field(default_factory=list)
    version: int = Field(ge=0)
    updated_at: datetime


class ErrorGroupTransition(BaseModel):
    """A group became new (overall or in an env), regressed, spiked or stopped being ignored.

    Natural key: ``(app, group_id, kind, env, event_id)``; the same inputs give the same
    transitions, so a replay re-emits identical rows."""

    model_config = ConfigDict(frozen=True)

    group_id: str
    app: str
    env: str
    release: str = ""
    kind: TransitionKind
    ts: datetime
    event_id: UUID
    previous_status: GroupStatus
    status: GroupStatus
    title: str
    exception_type: str
    count: int = Field(ge=0)  # events of the group so far, this one included
    minute_count: int = Field(default=0, ge=0)  # spiking: events in the minute (this env)
    baseline: float = Field(default=0.0, ge=0)  # spiking: per-minute baseline (this env)
    detail: str = ""


class ErrorGroupCommand(BaseModel):
    """A person's decision about a group, applied in the stream in order with events."""

    model_config = ConfigDict(frozen=True)

    app: str
    group_id: str
    action: GroupAction
    ts: datetime
    actor: str = ""
    release: str = ""  # resolve_in_next_release: fixed after this release (default: latest seen)
    ignore_until: datetime | None = None  # ignore: until this event time ...
    ignore_until_count: int = Field(default=0, ge=0)  # ... or until this many more events
