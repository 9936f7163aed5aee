"""Event-time buckets: when they close, what they hold, how state survives a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.schemas.events import EVENT_ADAPTER, Event
from shiftright_server.streams.rollup import PartitionRollup

from tests.builders import event

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
EMITTED = T0 + timedelta(hours=1)


def usage_at(seconds: float, **fields: Any) -> Event:
    return EVENT_ADAPTER.validate_python(event("usage", T0 + timedelta(seconds=seconds), **fields))


def fresh() -> PartitionRollup:
    return PartitionRollup("usage", 3, bucket_ms=60_000, lateness_ms=10_000)


def test_a_bucket_closes_only_when_the_watermark_passes_its_end() -> None:
    state = fresh()
    for i, second in enumerate([1, 20, 59, 65]):
        state.apply(i, usage_at(second, duration_ms=float(second)))
    assert state.close(state.watermark_ms(), EMITTED) == []  # 65s - 10s lateness < 60s
    state.apply(4, usage_at(71))
    (rollup,) = state.close(state.watermark_ms(), EMITTED)
    assert (rollup.key, rollup.count, rollup.bucket_start) == ("cart.add", 3, T0)
    assert rollup.sums["duration_ms"] == 80.0
    assert (rollup.mins["duration_ms"], rollup.maxs["duration_ms"]) == (1.0, 59.0)
    assert rollup.source_partition == 3


def test_out_of_order_events_within_lateness_count_and_later_ones_are_late() -> None:
    state = fresh()
    state.apply(0, usage_at(65))
    assert state.apply(1, usage_at(30))  # 35 s behind, bucket still open
    state.apply(2, usage_at(75))
    (closed,) = state.close(state.watermark_ms(), EMITTED)
    assert closed.count == 1
    assert not state.apply(3, usage_at(40))  # its bucket has closed
    assert state.late == 1


def test_keys_and_environments_roll_up_separately() -> None:
    state = fresh()
    state.apply(0, usage_at(1, name="a"))
    state.apply(1, usage_at(2, name="b"))
    state.apply(2, usage_at(3, name="a", env="preprod"))
    state.apply(3, usage_at(200))
    got = {(r.env, r.key): r.count for r in state.close(state.watermark_ms(), EMITTED)}
    assert got == {("prod", "a"): 1, ("prod", "b"): 1, ("preprod", "a"): 1}


def test_state_round_trips_and_remembers_the_offset_applied() -> None:
    state = fresh()
    for i in range(5):
        state.apply(100 + i, usage_at(i * 20))
    state.close(state.watermark_ms(), EMITTED)
    restored = PartitionRollup.loads(state.dumps())
    assert restored == state
    assert restored.seen(104) and not restored.seen(105)
