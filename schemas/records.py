"""Records the stream processors derive from events."""

from __future__ import annotations

from datetime import datetime

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
