"""The stream worker's pure core: validation, dead letters, rollups, and a crash replay."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from shiftright_server.schemas.records import Rollup
from shiftright_server.schemas.validation import Limits
from shiftright_server.streams.processor import Processor, Record, StateLoader

from tests.builders import encoded

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
TOPIC = "events.usage.v1"


def records(n: int, partition: int = 0, bad_every: int = 0) -> list[Record]:
    out = []
    for i in range(n):
        ts = T0 + timedelta(seconds=i)  # one event a second, across several minutes
        value = (
            b"{oops" if bad_every and i % bad_every == 0 else encoded("usage", ts, name=f"f{i % 3}")
        )
        out.append(Record(TOPIC, partition, i, value, int(ts.timestamp() * 1000) + 50))
    return out


def processor(
    load: StateLoader = lambda tp: None, clock: Callable[[], float] = lambda: 0.0
) -> Processor:
    return Processor({TOPIC: "usage"}, Limits(), 60, 10, load_state=load, clock=clock)


def closed_counts(rollups: Iterable[Rollup]) -> Counter[datetime]:
    totals: Counter[datetime] = Counter()
    for r in rollups:
        totals[r.bucket_start] += r.count
    return totals


def expected_counts(recs: list[Record], upto: datetime) -> Counter[datetime]:
    totals: Counter[datetime] = Counter()
    for r in recs:
        if r.value and not r.value.startswith(b"{oops"):
            start = datetime.fromtimestamp((r.timestamp_ms - 50) // 60_000 * 60, UTC)
            if start + timedelta(minutes=1) <= upto:
                totals[start] += 1
    return totals


def test_invalid_records_become_dead_letters_and_valid_ones_roll_up() -> None:
    recs = records(300, bad_every=7)
    out = processor().process(recs)
    assert len(out.dead_letters) == 43
    assert {d.reason for d in out.dead_letters} == {"malformed_json"}
    assert out.valid == 257
    watermark = T0 + timedelta(seconds=299 - 10)
    assert closed_counts(out.rollups) == expected_counts(recs, watermark)


def test_replay_after_a_crash_counts_every_event_exactly_once() -> None:
    recs = records(600)
    saved: dict[tuple[str, int], bytes] = {}
    first = processor(load=lambda tp: saved.get(tp))
    out_a = first.process(recs[:250])
    saved[(TOPIC, 0)] = first.states[(TOPIC, 0)].dumps()  # the last changelog write
    first.process(recs[250:400])  # processed, but the crash loses this state write
    # restart: state restored from the changelog, Kafka replays from an older offset
    second = processor(load=lambda tp: saved.get(tp))
    out_b = second.process(recs[200:])
    assert out_b.replayed == 50
    idle = second.close_idle(second.idle(0), int((T0 + timedelta(hours=1)).timestamp() * 1000))
    got = closed_counts(out_a.rollups + out_b.rollups + idle.rollups)
    assert got == expected_counts(recs, T0 + timedelta(hours=1))
    assert sum(got.values()) == 600


def test_quiet_partitions_close_their_buckets_on_wall_clock() -> None:
    now = [0.0]
    proc = processor(clock=lambda: now[0])
    proc.process(records(30))  # all within the first minute: nothing closes yet
    wall = int((T0 + timedelta(minutes=5)).timestamp() * 1000)
    assert proc.idle(5.0) == []  # not idle long enough
    now[0] = 6.0
    assert proc.idle(5.0) == [(TOPIC, 0)]
    assert proc.caught_up({(TOPIC, 0): 31}) == [], "a record is still to come"
    assert proc.caught_up({(TOPIC, 0): 30}) == [(TOPIC, 0)]
    rollups = proc.close_idle([(TOPIC, 0)], wall).rollups
    assert sum(r.count for r in rollups) == 30


def test_a_restored_partition_that_stays_quiet_closes_its_open_bucket() -> None:
    saved = {(TOPIC, 0): restarted_with_state_upto(records(30), 30).state((TOPIC, 0)).dumps()}
    now = [100.0]
    restored = processor(load=lambda tp: saved.get(tp), clock=lambda: now[0])
    restored.state((TOPIC, 0))  # loaded on assignment; no record arrives after it
    assert restored.idle(5.0) == []  # counts as seen when it was loaded
    now[0] = 106.0
    assert restored.idle(5.0) == [(TOPIC, 0)]
    wall = int((T0 + timedelta(minutes=5)).timestamp() * 1000)
    assert sum(r.count for r in restored.close_idle([(TOPIC, 0)], wall).rollups) == 30


def test_a_batch_message_rolls_up_each_event_and_dead_letters_only_the_bad_line() -> None:
    from shiftright_server.schemas import wire

    ts = T0 + timedelta(seconds=5)
    lines = [encoded("usage", ts, name="a"), b'{"kind": 42}', encoded("usage", ts, name="a")]
    record = Record(TOPIC, 0, 9, b"\n".join(lines), int(ts.timestamp() * 1000), wire.BATCH_HEADERS)
    proc = processor()
    out = proc.process([record])
    assert out.valid == 2
    (letter,) = out.dead_letters
    assert (letter.index, letter.payload, letter.reason) == (1, b'{"kind": 42}', "unknown_kind")
    wall = int((T0 + timedelta(hours=1)).timestamp() * 1000)
    (rollup,) = proc.close_idle([(TOPIC, 0)], wall).rollups
    assert rollup.count == 2


def restarted_with_state_upto(recs: list[Record], applied: int) -> Processor:
    """A worker restarted from a changelog state that applied ``recs[:applied]``."""
    saved: dict[tuple[str, int], bytes] = {}
    first = processor(load=lambda tp: saved.get(tp))
    first.process(recs[:applied])
    saved[(TOPIC, 0)] = first.states[(TOPIC, 0)].dumps()
    return processor(load=lambda tp: saved.get(tp))


def test_a_state_behind_the_delivered_records_is_reported_once() -> None:
    recs = records(300)
    # Kafka's commit got ahead of the state: the restarted worker is handed offset 150 on.
    second = restarted_with_state_upto(recs, 100)
    out = second.process(recs[150:200])
    assert out.gaps == {(TOPIC, 0): (100, 150)}
    assert out.valid == 50
    assert second.process(recs[200:250]).gaps == {}


def test_records_between_the_saved_state_and_the_batch_are_asked_for_once() -> None:
    recs = records(300)
    second = restarted_with_state_upto(recs, 100)
    assert second.missing(recs[150:200]) == {(TOPIC, 0): (100, 150)}
    assert second.missing(recs[150:200]) == {}  # asked already: not again
    assert second.missing(recs[100:200]) == {}  # no gap: the batch starts where the state ends
    # No saved state at all, records after offset 0: read from the start of the log.
    assert processor().missing(recs[40:60]) == {(TOPIC, 0): (0, 40)}
    # Holes inside a batch (offsets the consumer skipped) are one span to read.
    third = restarted_with_state_upto(recs, 100)
    holed = recs[100:120] + recs[130:140] + recs[150:160]
    assert third.missing(holed) == {(TOPIC, 0): (120, 150)}


def test_reading_the_gap_first_makes_the_rollups_whole_after_commit_got_ahead() -> None:
    recs = records(600)
    saved: dict[tuple[str, int], bytes] = {}
    first = processor(load=lambda tp: saved.get(tp))
    out_a = first.process(recs[:250])
    saved[(TOPIC, 0)] = first.states[(TOPIC, 0)].dumps()
    out_lost = first.process(recs[250:400])  # emitted, then the state write was lost...
    second = processor(load=lambda tp: saved.get(tp))
    batch = recs[400:]  # ...while Kafka committed up to offset 399
    (start, end) = second.missing(batch)[(TOPIC, 0)]
    out_b = second.process(recs[start:end] + batch)  # what the worker does with the gap
    assert out_b.gaps == {}
    idle = second.close_idle(second.idle(0), int((T0 + timedelta(hours=1)).timestamp() * 1000))
    # Buckets closed before the crash are emitted again, identically (ReplacingMergeTree
    # collapses them); per bucket, the latest emission equals the true count.
    latest: dict[tuple[datetime, str], int] = {}
    for r in out_a.rollups + out_lost.rollups + out_b.rollups + idle.rollups:
        latest[(r.bucket_start, r.key)] = r.count
    per_bucket: Counter[datetime] = Counter()
    for (bucket, _key), count in latest.items():
        per_bucket[bucket] += count
    assert per_bucket == expected_counts(recs, T0 + timedelta(hours=1))
    assert sum(latest.values()) == 600
