"""Error groups over time: counts and first/last seen, status changes and the transitions a
team is told about (new, new in env, regressed, spiking, unignored), persistence and replay."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.events import ErrorEvent, Frame
from shiftright_server.schemas.records import (
    ErrorGroupCommand,
    ErrorGroupTransition,
    GroupAction,
)
from shiftright_server.streams.grouping import GroupBook, Grouper, SpikePolicy, grouped_error

T0 = datetime(2026, 3, 4, 14, tzinfo=UTC)


class Run:
    """A book fed events one offset at a time, remembering the transitions."""

    def __init__(self, policy: SpikePolicy | None = None) -> None:
        self.book = GroupBook(policy=policy or SpikePolicy())
        self.grouper = Grouper()
        self.offset = 0
        self.transitions: list[ErrorGroupTransition] = []

    def error(self, seconds: float, **fields: Any) -> list[str]:
        event = make_error(seconds, **fields)
        a = self.grouper.assign(event)
        out = self.book.apply(grouped_error(event, a, None, None, (0, self.offset, 0)))
        self.offset += 1
        self.transitions += out
        return [t.kind for t in out]

    def command(self, action: GroupAction, seconds: float, **fields: Any) -> None:
        gid = self.grouper.assign(make_error(0)).group_id
        cmd = ErrorGroupCommand(
            app="shop", group_id=gid, action=action, ts=T0 + timedelta(seconds=seconds), **fields
        )
        assert self.book.command(self.offset, cmd)
        self.offset += 1

    def row(self) -> Any:
        self.book.changed.add(self.grouper.assign(make_error(0)).group_id)
        return self.book.take_rows()[0]


def make_error(
    seconds: float,
    env: str = "prod",
    release: str = "1.0.0",
    user: str = "u1",
    customer: str = "c1",
    function: str = "fetch_order",
) -> ErrorEvent:
    return ErrorEvent(
        app="shop",
        env=env,
        release=release,
        user_id=user,
        customer_id=customer,
        ts=T0 + timedelta(seconds=seconds),
        exception_type="KeyError",
        exception_message="'o-1'",
        frames=[Frame(module="shop.orders", function=function)],
    )


def test_first_event_is_new_and_first_in_another_env_is_new_in_env() -> None:
    run = Run()
    assert run.error(0, env="preprod") == ["new"]
    assert run.error(5, env="preprod") == []
    assert run.error(3600, env="prod") == ["new_in_env"]
    assert run.error(3700, env="prod") == []
    assert run.error(10, function="other") == ["new"]  # another bug, another group


def test_counts_first_and_last_seen_per_env_and_release() -> None:
    run = Run()
    run.error(60, env="preprod", release="1.1.0", user="a")
    run.error(0, env="preprod", release="1.1.0", user="b")  # late, but earlier in event time
    run.error(600, env="prod", release="1.0.0", user="a", customer="c2")
    row = run.row()
    assert row.count == 3 and row.users == 2 and row.customers == 2 and row.counts_exact
    assert (row.first_seen, row.last_seen) == (T0, T0 + timedelta(seconds=600))
    assert row.first_release == "1.1.0" and row.last_release == "1.0.0"
    assert row.env_first_seen == {"preprod": T0, "prod": T0 + timedelta(seconds=600)}
    assert row.env_count == {"preprod": 2, "prod": 1}
    assert row.release_last_seen["1.1.0"] == T0 + timedelta(seconds=60)
    assert row.title == "KeyError: '<str>'" and row.culprit == "shop.orders in fetch_order"


def test_a_resolved_group_regresses_when_seen_after_the_resolution() -> None:
    run = Run()
    run.error(0)
    run.command("resolve", 100)
    assert run.row().status == "resolved"
    assert run.error(50) == []  # thrown before the resolution, arriving late: not a regression
    assert run.row().status == "resolved"
    assert run.error(150) == ["regressed"]
    row = run.row()
    assert row.status == "unresolved" and row.resolved_at is None
    regressed = run.transitions[-1]
    assert (regressed.previous_status, regressed.status) == ("resolved", "unresolved")


def test_resolved_in_next_release_regresses_only_in_a_later_release() -> None:
    run = Run()
    run.error(0, release="1.4.2")
    run.command("resolve_in_next_release", 10)  # defaults to the latest release seen: 1.4.2
    assert run.row().resolved_in_release == "1.4.2"
    assert run.error(20, release="1.4.2") == []  # the fix is not deployed yet
    assert run.error(30, release="1.4.1") == []  # an older release somewhere
    assert run.row().status == "resolved_in_next_release"
    assert run.error(40, release="1.10.0") == ["regressed"]  # versions compare as numbers


def test_releases_that_are_not_versions_compare_by_when_the_group_saw_them() -> None:
    run = Run()
    run.error(0, release="a1b2c3d")
    run.error(10, release="e4f5a6b")
    run.command("resolve_in_next_release", 20, release="a1b2c3d")
    assert run.error(30, release="a1b2c3d") == []
    assert run.error(40, release="e4f5a6b") == ["regressed"]  # seen after a1b2c3d
    run.command("resolve_in_next_release", 50)
    assert run.error(60, release="0f0f0f0") == ["regressed"]  # never seen before: newer


def test_ignored_until_a_count_or_a_time() -> None:
    run = Run()
    run.error(0)
    run.command("ignore", 1, ignore_until_count=3)
    assert run.error(2) == [] and run.error(3) == []
    assert run.row().status == "ignored"
    assert run.error(4) == ["unignored"]
    assert run.row().status == "unresolved"

    run.command("ignore", 10, ignore_until=T0 + timedelta(minutes=5))
    assert run.error(200) == []
    assert run.error(301) == ["unignored"]

    run.command("ignore", 400)  # forever
    assert all(run.error(400 + i) == [] for i in range(50))


def steady_then_burst(run: Run, per_minute: int, minutes: int, burst: int) -> list[str]:
    for minute in range(minutes):
        for i in range(per_minute):
            run.error(minute * 60 + i)
    kinds = []
    for i in range(burst):
        kinds += run.error(minutes * 60 + i * 0.1)
    return kinds


def test_a_burst_well_above_the_groups_own_baseline_is_spiking_once() -> None:
    run = Run()
    kinds = steady_then_burst(run, per_minute=3, minutes=30, burst=40)
    assert kinds.count("spiking") == 1
    spike = next(t for t in run.transitions if t.kind == "spiking")
    assert spike.minute_count == 15  # 5 x a baseline of ~3/min
    assert 2.5 < spike.baseline < 3.5


def test_no_spike_below_the_minimum_volume_or_for_a_brand_new_group() -> None:
    quiet = Run()
    for minute in range(30):
        quiet.error(minute * 600)  # one event every 10 minutes
    assert [quiet.error(18_000 + i) for i in range(9)] == [[]] * 9  # 9 < 10 events a minute
    fresh = Run()
    assert "spiking" not in [k for i in range(200) for k in fresh.error(i * 0.1)]


def test_an_ignored_group_does_not_spike() -> None:
    run = Run()
    run.error(0)
    run.command("ignore", 1)
    assert "spiking" not in steady_then_burst(run, per_minute=3, minutes=30, burst=40)


def test_spiking_again_needs_a_quiet_minute_in_between() -> None:
    run = Run()
    steady_then_burst(run, per_minute=3, minutes=30, burst=40)
    more = [k for i in range(40) for k in run.error(30 * 60 + 59 + i * 0.01)]  # same minute
    assert more == []
    after_quiet = [k for i in range(60) for k in run.error(40 * 60 + i * 0.5)]
    assert after_quiet.count("spiking") == 1


def test_users_are_exact_up_to_a_bound_then_estimated() -> None:
    run = Run()
    for i in range(100):
        run.error(i, user=f"user-{i}", customer=f"c-{i % 7}")
    row = run.row()
    assert (row.users, row.customers, row.counts_exact) == (100, 7, True)
    for i in range(100, 5000):
        run.error(i, user=f"user-{i}")
    row = run.row()
    assert not row.counts_exact and abs(row.users - 5000) / 5000 < 0.1


def events(n: int = 3000) -> list[ErrorEvent]:
    raw = Simulator(seed=8).generate("error", n, T0, T0 + timedelta(hours=2))
    return [ErrorEvent.model_validate(e) for e in raw]


def play(book: GroupBook, stream: list[ErrorEvent], start: int = 0) -> list[Any]:
    grouper = Grouper()
    out: list[Any] = []
    for offset, event in enumerate(stream[start:], start):
        a = grouper.assign(event)
        out += book.apply(grouped_error(event, a, None, None, (0, offset, 0)))
    return out


def test_replay_gives_the_same_transitions_and_rows() -> None:
    stream = events()
    first, second = GroupBook(), GroupBook()
    assert play(first, stream) == play(second, stream)
    assert first.take_rows() == second.take_rows()
    assert Counter(t.kind for t in play(GroupBook(), stream))["new"] == 60


def test_state_restored_mid_stream_continues_exactly_and_skips_what_it_applied() -> None:
    stream = events()
    whole = GroupBook()
    expected = play(whole, stream)
    part = GroupBook()
    got = play(part, stream[:1700])
    restored = GroupBook.loads(part.dumps())
    assert restored.dumps() == part.dumps()
    got += play(restored, stream)  # Kafka redelivers from before the saved offset
    assert got == expected
    assert restored.take_rows() == whole.take_rows()


def test_a_command_for_a_group_not_held_here_is_refused() -> None:
    book = GroupBook()
    cmd = ErrorGroupCommand(app="shop", group_id="00000000000000ff", action="resolve", ts=T0)
    assert not book.command(0, cmd)


def test_groups_saved_one_by_one_restore_as_exactly_as_the_whole_book() -> None:
    stream = events()
    expected = play(GroupBook(), stream)
    part = GroupBook()
    got = play(part, stream[:1200])
    saved = {row.group_id: part.state_of(row.group_id) for row in part.take_rows()}
    got += play(part, stream[:1500], start=1200)
    for row in part.take_rows():  # a second batch overwrites the groups it changed
        saved[row.group_id] = part.state_of(row.group_id)
    restored = GroupBook()
    restored.restore(saved.values())
    got += play(restored, stream, start=900)  # redelivered from before both saves
    assert got == expected


def test_a_redelivered_command_is_not_applied_twice() -> None:
    run = Run()
    run.error(0)
    gid = run.grouper.assign(make_error(0)).group_id
    resolve = ErrorGroupCommand(app="shop", group_id=gid, action="resolve", ts=T0)
    assert run.book.command(7, resolve)
    run.error(10)  # regressed
    assert not run.book.command(7, resolve)  # redelivered: the regression stands
    assert run.row().status == "unresolved"
