"""Rollups of a batch in columns come out as one event at a time: the same closed buckets
with the same counts, sums, minimums and maximums (bit for bit), the same late counts,
signals, dead letters and saved state, whatever the batch bounds."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from shiftright_server.schemas import wire
from shiftright_server.schemas.fast_lines import accept_messages
from shiftright_server.schemas.validation import Limits
from shiftright_server.streams import processor
from shiftright_server.streams.processor import Outcome, Processor, Record
from shiftright_server.streams.rollup_columns import _unique

from tests.builders import event

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
KINDS = {
    "events.usage.v1": "usage",
    "events.health.v1": "health",
    "events.change.v1": "change",
    "events.error.v1": "error",
}
LIMITS = Limits(max_age=timedelta(days=36500))


def payload(rng: random.Random, kind: str, ts: datetime, clean: bool = False) -> bytes:
    roll = rng.uniform(0.1, 0.95) if clean else rng.random()  # clean: each line vouched for
    if roll < 0.04:
        return b"{broken"
    if kind == "usage":
        fields: dict[str, Any] = {
            "name": rng.choice(["cart.add", "search", "checkout"]),
            "status_code": rng.choice([200, 200, 404, 500, 503]),
            "duration_ms": rng.choice([None, rng.random() * 300, 1e15, 0.1]),
            "value": rng.choice([None, rng.uniform(-5, 5)]),
        }
    elif kind == "health":
        names = ["system.cpu.utilization", "process.thread.count", "app.sessions.open"]
        fields = {"host": rng.choice(["web-1", "web-2"])}
        fields["metrics"] = {n: rng.random() * 10 for n in rng.sample(names, rng.randint(1, 3))}
    elif kind == "error":
        fields = {"exception_type": rng.choice(["KeyError", "OSError"]), "handled": roll < 0.5}
    else:
        fields = {"change_type": rng.choice(["deploy", "flag"]), "name": "1.0"}
    body = event(kind, ts, app=rng.choice(["shop", "api"]), **fields)
    if roll < 0.08:
        body["status_code" if kind == "usage" else "release"] = (
            "503" if kind == "usage" else 7
        )  # the models decide: lax for a number, refused for a string
    if roll > 0.95:
        del body["ts"]  # the record's time
    return json.dumps(body).encode()


def log(seed: int, n: int = 1500, clean: bool = False) -> list[Record]:
    """Records of three topics and two partitions, event times wandering forward with
    stragglers (late events), some batch messages, a few bad lines (none if ``clean``)."""
    rng = random.Random(seed)
    clock = T0
    out: list[Record] = []
    offsets: dict[tuple[str, int], int] = {}
    for _ in range(n):
        topic, partition = rng.choice(list(KINDS)), rng.randint(0, 1)
        clock += timedelta(milliseconds=rng.randint(0, 900))
        lines = []
        for _ in range(rng.choice([1, 1, 4, 12])):  # 12: read whole where it can
            lag = rng.choice([0, 0, 0, 5, 40, 200]) * 1000 + rng.randint(0, 999)
            lines.append(payload(rng, KINDS[topic], clock - timedelta(milliseconds=lag), clean))
        headers = wire.BATCH_HEADERS if len(lines) > 1 else None
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        at_ms = int(clock.timestamp() * 1000)
        out.append(Record(topic, partition, offset, b"\n".join(lines), at_ms, headers))
    return out


def run(
    columns: bool, records: list[Record], seed: int, signals: bool
) -> tuple[Outcome, Processor]:
    """Process in random batch bounds; a wall-clock close of every partition midway."""
    proc = Processor(
        KINDS,
        LIMITS,
        60,
        10,
        signal_seconds=10 if signals else 0,
        columns=columns,
        rekey_errors=True,
    )
    rng = random.Random(seed)
    total, i, closed_idle = Outcome(), 0, False
    while i < len(records):
        size = rng.choice([1, 7, 50, 400])
        out = proc.process(records[i : i + size])
        i += size
        if signals:
            out.rollups += proc.signals_due()
        if i > len(records) // 2 and not closed_idle:
            wall = records[i - 1].timestamp_ms - 20_000
            out.rollups += proc.close_idle(list(proc.states), wall, 0).rollups
            closed_idle = True
        total.dead_letters += out.dead_letters
        total.rollups += out.rollups
        total.valid += out.valid
        total.late += out.late
        total.byhost += out.byhost
    return total, proc


def letters(out: Outcome) -> list[tuple[int, int, str]]:
    return sorted((d.record.offset, d.index, d.reason) for d in out.dead_letters)


def rollups(out: Outcome, seconds: int = 0) -> list[str]:
    return sorted(
        r.model_dump_json(exclude={"emitted_at"})  # measures in the same order too
        for r in out.rollups
        if not seconds or r.bucket_seconds == seconds
    )


def state(proc: Processor) -> dict[str, Any]:
    saved = {}
    for tp, s in proc.states.items():
        loaded = json.loads(s.dumps())
        for part in ("buckets", "signals"):
            loaded[part] = sorted(json.dumps(row, sort_keys=True) for row in loaded[part])
        saved[f"{tp[0]}:{tp[1]}"] = loaded
    return saved


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_columns_roll_up_exactly_as_one_event_at_a_time(seed: int) -> None:
    records = log(seed)
    signals = seed % 2 == 0
    one, one_proc = run(False, records, seed, signals)
    cols, cols_proc = run(True, records, seed, signals)
    assert one.late > 0 and one.rollups and one.dead_letters  # the log exercises them all
    assert rollups(cols) == rollups(one)  # signal snapshots included
    other_bounds, _ = run(True, records, seed + 100, signals)
    assert rollups(other_bounds, 60) == rollups(one, 60)
    assert (cols.valid, cols.late) == (one.valid, one.late)
    assert letters(cols) == letters(one)
    assert cols.byhost == one.byhost  # errors re-keyed in the same order
    assert state(cols_proc) == state(one_proc)


@pytest.mark.parametrize("seed", [5, 6])
def test_partitions_read_together_roll_up_as_one_event_at_a_time(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where every line of a partition's records in a batch is vouched for, they are read
    at once; the rest (a single event not in a batch message, a bad line) one by one."""
    read = []

    def counted(*args: Any) -> Any:
        found = accept_messages(*args)
        read.append(found is not None)
        return found

    monkeypatch.setattr(processor, "accept_messages", counted)
    records = log(seed, clean=True)
    at = next(
        i
        for i, r in enumerate(records)
        if i > len(records) // 3 and r.topic == "events.usage.v1" and r.headers
    )
    records[at] = replace(records[at], value=b"{broken\n" + (records[at].value or b""))
    signals = seed % 2 == 0
    one, one_proc = run(False, records, seed, signals)
    cols, cols_proc = run(True, records, seed, signals)
    assert any(read)  # (and declined where a bad line is among them)
    assert one.late > 0 and one.rollups and one.dead_letters
    assert rollups(cols) == rollups(one)
    assert (cols.valid, cols.late) == (one.valid, one.late)
    assert letters(cols) == letters(one)
    assert state(cols_proc) == state(one_proc)


def test_a_batch_past_what_the_state_applied_reads_only_the_rest() -> None:
    """A batch that overlaps the saved state (a replay after a kill, other batch bounds)
    applies only the records past it, read together or not."""
    records = log(10, n=600, clean=True)
    one = Processor(KINDS, LIMITS, 60, 10, columns=False)
    cols = Processor(KINDS, LIMITS, 60, 10, columns=True)
    for proc in (one, cols):
        proc.process(records[:200])
    again = [proc.process(records[100:400]) for proc in (one, cols)]
    assert again[0].replayed == again[1].replayed == 100
    assert (again[1].valid, again[1].late) == (again[0].valid, again[0].late)
    assert rollups(again[1]) == rollups(again[0])
    assert state(cols) == state(one)


def test_a_replayed_batch_applies_nothing_twice() -> None:
    records = log(9, n=300)
    proc = Processor(KINDS, LIMITS, 60, 10, columns=True)
    first = proc.process(records)
    again = proc.process(records)
    assert again.replayed == len(records)
    assert (again.valid, again.rollups, again.dead_letters) == (0, [], [])
    assert first.valid > 0


def test_codes_counted_are_told_apart_as_sorting_tells_them() -> None:
    rng = np.random.default_rng(3)
    for size, high in ((1, 1), (7, 3), (1_400, 200), (4_200, 600), (300, 5_000), (50, 10**9)):
        values = rng.integers(0, high, size).astype(np.int64)
        counted = _unique(values)
        sorted_ = np.unique(values, return_index=True, return_inverse=True)
        for got, expected in zip(counted, sorted_, strict=True):
            assert got.tolist() == expected.tolist()
