"""The health snapshot stored with each error: the latest one its host took within 60 s
before it, the same whatever order the two topics deliver in; and the keys that make
errors and health meet in one worker."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from aiokafka.partitioner import murmur2
from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import EVENT_ADAPTER, ErrorEvent, HealthEvent, partition_key
from shiftright_server.streams.grouping import HealthCache, HealthJoin
from shiftright_server.streams.grouping.health import Attached
from shiftright_server.streams.grouping.keys import group_key, host_key

T0 = datetime(2026, 3, 4, 14, tzinfo=UTC)


def health(seconds: float, host: str = "h1", cpu: float = 0.5) -> HealthEvent:
    return HealthEvent(
        app="shop",
        env="prod",
        host=host,
        ts=T0 + timedelta(seconds=seconds),
        metrics={"system.cpu.utilization": cpu},
    )


def error(seconds: float, host: str = "h1") -> ErrorEvent:
    return ErrorEvent(
        app="shop",
        env="prod",
        host=host,
        ts=T0 + timedelta(seconds=seconds),
        exception_type="KeyError",
    )


def cpu(attached: Attached) -> float:
    assert attached.snapshot is not None, "no snapshot attached"
    return attached.snapshot.metrics["system.cpu.utilization"]


def test_a_snapshot_within_60_s_before_the_error_is_attached_with_its_age() -> None:
    cache = HealthCache()
    cache.add(health(0, cpu=0.2))
    cache.add(health(30, cpu=0.9))
    attached = cache.attach(error(45))
    assert attached.snapshot is not None and attached.snapshot.metrics == {
        "system.cpu.utilization": 0.9
    }
    assert attached.age_ms == 15_000
    assert cache.attach(error(90)).age_ms == 60_000  # exactly 60 s still counts
    assert cache.attach(error(90.001)).snapshot is None  # older than 60 s: none
    assert cache.attach(error(-10.001)).snapshot is None  # nothing before nor 10 s after
    assert cache.attach(error(45, host="h2")).snapshot is None  # another host's is not used


def test_a_snapshot_taken_after_the_error_is_never_used() -> None:
    cache = HealthCache()
    cache.add(health(0, cpu=0.2))
    cache.add(health(10, cpu=0.9))  # arrived first in the stream, but later than the error
    attached = cache.attach(error(5))
    assert attached.age_ms == 5000 and cpu(attached) == 0.2


def test_an_error_before_the_hosts_first_snapshot_gets_the_first_one_after_it() -> None:
    cache = HealthCache()
    cache.add(health(4, cpu=0.8))  # the host's first report, 4 s after a start-up crash
    cache.add(health(6, cpu=0.3))
    attached = cache.attach(error(0))
    assert attached.after_error and attached.age_ms == 4000 and cpu(attached) == 0.8
    later = cache.attach(error(5))  # one before it exists: that one, not marked
    assert not later.after_error and later.age_ms == 1000 and cpu(later) == 0.8
    assert cache.attach(error(-6.001)).snapshot is None  # the first is > 10 s after it


def test_a_start_up_error_is_held_until_its_hosts_first_snapshot_then_marked() -> None:
    from shiftright_server.streams.grouping import Grouper, grouped_error

    join = HealthJoin()
    assert join.add_error(error(1), "e", 0) == []  # no health from the host yet: held
    (attached,) = join.add_health(health(3, cpu=0.6), "h", 0)
    assert attached.after_error and attached.age_ms == 2000 and cpu(attached) == 0.6
    stored = grouped_error(
        attached.error, Grouper().assign(attached.error), attached.snapshot, 2000, (0, 0, 0), True
    )
    assert stored.health_after_error and stored.health == {"system.cpu.utilization": 0.6}
    assert stored.health_ts == T0 + timedelta(seconds=3)


def test_a_host_reporting_many_times_a_second_is_sampled_so_memory_stays_bounded() -> None:
    cache = HealthCache()
    for i in range(20 * 100):  # 100 reports a second for 20 s
        cache.add(health(i / 100, cpu=i / 10_000))
    series = cache.hosts[("shop", "prod", "h1")]
    assert len(series) == 20  # one a second
    attached = cache.attach(error(12.5))
    assert attached.age_ms == 500  # the one kept for that second, at 12.0 s
    assert cpu(attached) == 0.12


def test_the_saved_join_restores_the_same_answers() -> None:
    join = HealthJoin()
    for s in range(0, 300, 10):
        join.add_health(health(s, cpu=s / 1000), topic="h", offset=s)
    join.add_error(error(305), topic="e", offset=7)  # held: health only up to 290 s
    again = HealthJoin.loads(join.dumps())
    assert again.positions == join.positions and len(again.held) == 1
    for at in (200.5, 249, 290):
        e = error(at)
        found, expected = again.cache.attach(e), join.cache.attach(e)
        assert (found.snapshot, found.age_ms) == (expected.snapshot, expected.age_ms)
    released = again.add_health(health(310, cpu=0.9), topic="h", offset=310)
    assert [a.snapshot.metrics if a.snapshot else None for a in released] == [
        {"system.cpu.utilization": 0.29}
    ]


def test_an_error_waits_for_its_hosts_health_then_gets_the_final_answer() -> None:
    join = HealthJoin()
    join.add_health(health(0, cpu=0.2))
    assert join.add_error(error(15)) == []  # health up to 15 s not seen yet: held
    released = join.add_health(health(10, cpu=0.7))
    assert released == []  # still before the error
    released = join.add_health(health(20, cpu=0.1))
    assert [(a.age_ms, cpu(a)) for a in released] == [(5000, 0.7)]


def test_errors_of_a_silent_host_are_released_after_the_wait_without_health() -> None:
    join = HealthJoin(max_wait_ms=15_000)
    assert join.add_error(error(0, host="silent")) == []
    assert join.add_error(error(10, host="silent")) == []
    released = join.add_error(error(16, host="silent"))
    assert [a.error.ts for a in released] == [T0] and released[0].snapshot is None


def test_the_result_does_not_depend_on_how_the_two_topics_interleave() -> None:
    raw = Simulator(seed=3, rate=60).tick(T0, 240)
    events = [EVENT_ADAPTER.validate_python(e) for e in raw]
    hs = [e for e in events if isinstance(e, HealthEvent)]
    es = [e for e in events if isinstance(e, ErrorEvent)]

    def attach(order: list[HealthEvent | ErrorEvent]) -> dict[object, int | None]:
        join, out = HealthJoin(), []
        for e in order:
            out += join.add_health(e) if isinstance(e, HealthEvent) else join.add_error(e)
        out += join.flush()
        return {a.error.event_id: a.age_ms for a in out}

    both: list[HealthEvent | ErrorEvent] = [*hs, *es]
    in_time_order = attach(sorted(both, key=lambda e: e.ts))
    rng = random.Random(1)
    for _ in range(3):  # each topic in order, merged at random: health up to ~5 s behind
        merged: list[HealthEvent | ErrorEvent] = []
        i, j = 0, 0
        while i < len(hs) or j < len(es):
            take_health = j >= len(es) or (i < len(hs) and rng.random() < 0.5)
            merged.append(hs[i] if take_health else es[j])
            i, j = (i + 1, j) if take_health else (i, j + 1)
        assert attach(merged) == in_time_order
    attached = [age for age in in_time_order.values() if age is not None]
    assert len(attached) >= 0.95 * len(es) and max(attached) <= 10_000  # reports every 10 s


def test_join_state_round_trips_with_held_errors() -> None:
    join = HealthJoin()
    join.add_health(health(0), "events.health.v1", 7)
    join.add_error(error(5), "errors.byhost.v1", 3)
    restored = HealthJoin.loads(join.dumps())
    assert restored.dumps() == join.dumps()
    assert restored.seen("errors.byhost.v1", 3) and not restored.seen("errors.byhost.v1", 4)
    released = restored.add_health(health(10))
    assert [a.age_ms for a in released] == [5000]


def partition(key: bytes, partitions: int = 8) -> int:
    return int(murmur2(key) & 0x7FFFFFFF) % partitions  # what Faust and murmur2_random producers do


def test_raw_errors_do_not_meet_their_hosts_health_until_rekeyed_by_host() -> None:
    raw = Simulator(seed=1, rate=200).tick(T0, 120)
    events = [EVENT_ADAPTER.validate_python(e) for e in raw]
    health_part = {
        (e.app, e.env, e.host): partition(partition_key(e))
        for e in events
        if isinstance(e, HealthEvent)
    }
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    together = sum(
        partition(partition_key(e)) == health_part[(e.app, e.env, e.host)] for e in errors
    )
    assert together < 0.3 * len(errors)  # raw keys: about 1 in 8 by chance
    assert all(partition(host_key(e)) == health_part[(e.app, e.env, e.host)] for e in errors)
    assert all(host_key(e) == partition_key(e) for e in events if isinstance(e, HealthEvent))


def test_a_groups_errors_span_raw_partitions_until_rekeyed_by_group() -> None:
    from shiftright_server.streams.grouping import Grouper, grouped_error

    raw = Simulator(seed=1).generate("error", 2000, T0, T0 + timedelta(hours=1))
    grouper = Grouper()
    by_raw: dict[str, set[int]] = {}
    by_group: dict[str, set[int]] = {}
    for e in (ErrorEvent.model_validate(r) for r in raw):
        g = grouped_error(e, grouper.assign(e), None, None)
        by_raw.setdefault(g.group_id, set()).add(partition(partition_key(e)))
        by_group.setdefault(g.group_id, set()).add(partition(group_key(g)))
    assert any(len(p) > 1 for p in by_raw.values())  # prod and preprod, wrapper vs root type
    assert all(len(p) == 1 for p in by_group.values())


def test_past_the_hold_limit_the_oldest_leave_without_waiting() -> None:
    join = HealthJoin(max_held=3)
    released = [a for i in range(5) for a in join.add_error(error(i * 0.1, host=f"h{i}"))]
    assert [a.error.host for a in released] == ["h0", "h1"] and released[0].snapshot is None


def test_errors_leave_in_the_order_they_came() -> None:
    join = HealthJoin()
    join.add_health(health(0, host="fast"))
    assert join.add_error(error(5, host="slow"), "e", 0) == []
    assert join.add_error(error(6, host="fast"), "e", 1) == []  # waits behind "slow"
    join.add_health(health(8, host="fast"))  # "fast" is current, "slow" is not
    released = join.add_health(health(10, host="slow"))
    assert [(a.error.host, a.offset) for a in released] == [("slow", 0), ("fast", 1)]


def test_a_silent_hosts_errors_leave_once_other_hosts_report_past_them() -> None:
    join = HealthJoin(grace_ms=10_000)
    assert join.add_error(error(5, host="silent")) == []
    assert join.add_health(health(14, host="h1")) == []
    released = join.add_health(health(15, host="h1"))
    assert [(a.error.host, a.snapshot) for a in released] == [("silent", None)]
