"""Signals for alert rules: open-bucket snapshots from the rollup state, turned back into
exact increments, evaluated per input partition; replays and restarts change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from shiftright_server.schemas import wire
from shiftright_server.schemas.alerts import Rule
from shiftright_server.schemas.events import EVENT_ADAPTER
from shiftright_server.schemas.records import Rollup
from shiftright_server.streams.alerting.signals import (
    CLOSED,
    HEADER_SIGNAL,
    OPEN,
    TICK,
    AlertPartition,
    SignalBoard,
)
from shiftright_server.streams.processor import Record
from shiftright_server.streams.rollup import PartitionRollup

from tests.builders import event

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
ERRORS = TypeAdapter(Rule).validate_python(
    {
        "name": "errors-high",
        "kind": "threshold",
        "measure": "count",
        "aggregate": "sum",
        "window": "30s",
        "op": ">",
        "threshold": 5,
        "severity": "critical",
        "scope": {"app": "checkout", "env": "prod", "source": "error", "per_key": False},
    }
)


def error_at(seconds: float, kind: str = "TimeoutError") -> Any:
    e = event("error", T0 + timedelta(seconds=seconds), "checkout", "prod", exception_type=kind)
    return EVENT_ADAPTER.validate_python(e)


def state() -> PartitionRollup:
    return PartitionRollup("error", 2, 60_000, 10_000, signal_ms=10_000)


def test_snapshots_are_cumulative_and_only_for_buckets_that_changed() -> None:
    s = state()
    for i, second in enumerate([1, 2, 3, 12]):
        s.apply(i, error_at(second))
    first = {r.bucket_start: r.count for r in s.signals_due(NOW)}
    assert first == {T0: 3, T0 + timedelta(seconds=10): 1}
    assert s.signals_due(NOW) == []  # nothing changed since
    s.apply(4, error_at(4))
    (again,) = s.signals_due(NOW)
    assert (again.bucket_start, again.count, again.bucket_seconds) == (T0, 4, 10)
    # the stored per-minute rollup is unaffected by the signals
    assert sum(a.count for a in s.buckets.values()) == 5


def test_a_fine_bucket_sent_for_good_takes_no_more_events() -> None:
    s = state()
    s.apply(0, error_at(1))
    s.apply(1, error_at(25))  # watermark 15 s: the 0–10 s bucket is done
    s.signals_due(NOW)
    assert all(k[3] >= 10_000 + int(T0.timestamp() * 1000) for k in s.signals)
    assert s.apply(2, error_at(5))  # still counts in the minute rollup ...
    assert [r.bucket_start for r in s.signals_due(NOW)] == []  # ... but sends no snapshot


def test_signal_buckets_survive_a_restart_with_the_state() -> None:
    s = state()
    for i in range(3):
        s.apply(i, error_at(i))
    s.signals_due(NOW)
    restored = PartitionRollup.loads(s.dumps())
    restored.apply(3, error_at(4))
    (snap,) = restored.signals_due(NOW)
    assert snap.count == 4  # continues from the saved bucket, not from zero


def snapshot(count: int, start: datetime = T0, **sums: float) -> Rollup:
    return Rollup(
        app="checkout",
        env="prod",
        kind="error",
        key="TimeoutError",
        bucket_start=start,
        bucket_seconds=10,
        count=count,
        sums=sums,
        first_ts=start,
        last_ts=start + timedelta(seconds=count % 10),
        source_partition=2,
        emitted_at=NOW,
    )


def test_the_board_turns_snapshots_into_increments_and_ignores_replays() -> None:
    board = SignalBoard()
    got = [board.increment(snapshot(c, unhandled=float(c))) for c in (3, 5, 3, 5, 9)]
    assert [g.count if g else None for g in got] == [3, 2, None, None, 4]
    assert [g.sums["unhandled"] for g in got if g] == [3.0, 2.0, 4.0]
    restored = SignalBoard.from_state(json.loads(json.dumps(board.to_state())))
    assert restored.increment(snapshot(9)) is None


def signal_record(offset: int, rollups: list[Rollup], kind: bytes = OPEN) -> Record:
    value = b"\n".join(r.model_dump_json().encode() for r in rollups)
    headers = [*wire.BATCH_HEADERS, (HEADER_SIGNAL, kind)]
    return Record("signals.v1", 0, offset, value, 0, headers)


def fired(part: AlertPartition, at: datetime) -> list[tuple[str, str]]:
    return [(t.state, t.idempotency_key) for t in part.evaluate(int(at.timestamp() * 1000))]


def test_an_error_burst_fires_from_open_buckets_and_a_replay_does_not_double_it() -> None:
    part = AlertPartition([ERRORS])
    part.apply([signal_record(0, [snapshot(4)])])
    assert fired(part, T0 + timedelta(seconds=5)) == []  # 4 is not > 5
    saved = part.dumps()
    part.apply([signal_record(1, [snapshot(7)])])
    (firing,) = fired(part, T0 + timedelta(seconds=6))
    assert firing[0] == "firing"
    # restarted from the earlier save; Kafka redelivers both records and one more
    again = AlertPartition([ERRORS], saved)
    again.apply(
        [
            signal_record(0, [snapshot(4)]),
            signal_record(1, [snapshot(7)]),
            signal_record(2, [snapshot(7)]),
        ]
    )
    assert again.evaluator.series["errors-high"]  # the series is there ...
    (refired,) = fired(again, T0 + timedelta(seconds=6))
    assert refired == firing  # ... fires once, with the same idempotency key
    value = next(iter(again.evaluator.series["errors-high"].values())).value
    assert value == 7.0  # counted once: 4, then the 3 more


def test_closed_rollups_reach_anomaly_rules_only() -> None:
    anomaly = TypeAdapter(Rule).validate_python(
        {
            "name": "odd",
            "kind": "anomaly",
            "measure": "count",
            "scope": {"app": "checkout", "env": "prod", "source": "error", "per_key": False},
        }
    )
    part = AlertPartition([ERRORS, anomaly])
    minute = snapshot(50).model_copy(update={"bucket_seconds": 60})
    part.apply([signal_record(0, [minute], CLOSED)])
    assert list(part.evaluator.series) == ["odd"]
    part.apply([signal_record(1, [snapshot(50)], OPEN)])
    assert sorted(part.evaluator.series) == ["errors-high", "odd"]
    assert len(next(iter(part.evaluator.series["odd"].values())).points) == 1


def test_records_that_are_not_signals_are_counted_not_fatal() -> None:
    part = AlertPartition([ERRORS])
    part.apply(
        [
            signal_record(0, [snapshot(1)]),
            Record("signals.v1", 0, 1, b"{oops", 0, [(HEADER_SIGNAL, OPEN)]),
        ]
    )
    assert part.rejected == 1 and part.offset == 1


def test_a_burst_that_stops_resolves_once_its_window_slides_past_it() -> None:
    part = AlertPartition([ERRORS], signal_seconds=10)
    part.apply([signal_record(0, [snapshot(9)])])
    assert [s for s, _ in fired(part, T0 + timedelta(seconds=8))] == ["firing"]
    # no more errors, so no more snapshots: 30 s window + 20 s of lag later it is over
    assert fired(part, T0 + timedelta(seconds=45)) == []
    assert [s for s, _ in fired(part, T0 + timedelta(seconds=51))] == ["resolved"]


def tick(offset: int, frontier: datetime, sender: str = "w1") -> Record:
    value = json.dumps({"sender": sender, "frontier_ms": int(frontier.timestamp() * 1000)})
    return Record("signals.v1", 0, offset, value.encode(), 0, [(HEADER_SIGNAL, TICK)])


def test_windows_slide_only_as_far_as_the_input_is_known_to_be_complete() -> None:
    part = AlertPartition([ERRORS], signal_seconds=10)
    part.apply([signal_record(0, [snapshot(9)]), tick(1, T0 + timedelta(seconds=8))])
    assert [s for s, _ in fired(part, T0 + timedelta(seconds=8))] == ["firing"]
    # the worker died at +8 s and is catching up: a minute later nothing is known past +8 s,
    # so the burst still fills the window (no resolve, and no second firing after it)
    restarted = AlertPartition([ERRORS], part.dumps(), signal_seconds=10)
    assert fired(restarted, T0 + timedelta(seconds=70)) == []
    # caught up: the input is complete to +60 s and holds no more errors
    restarted.apply([tick(2, T0 + timedelta(seconds=60))])
    assert [s for s, _ in fired(restarted, T0 + timedelta(seconds=70))] == ["resolved"]


def test_a_worker_that_is_gone_stops_holding_the_frontier_back() -> None:
    part = AlertPartition([ERRORS])
    part.apply([tick(0, T0, "old"), tick(1, T0 + timedelta(seconds=20), "new")])
    assert part.frontier() == int(T0.timestamp() * 1000)  # both may still be working
    part.apply([tick(2, T0 + timedelta(seconds=31), "new")])
    assert part.frontier() == int((T0 + timedelta(seconds=31)).timestamp() * 1000)
    assert set(part.frontiers) == {"new"}
