"""The shared panel cache: answers kept for their time to live by SQL, parameters and
permission scope; one warehouse read for concurrent identical queries; failures never
kept; bounded by entries and bytes; emptied by an action. A fake clock and the fake
reader stand in for time and the warehouse (checked against the real one in
tests/integration/test_panel_cache_warehouse.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shiftright_server.dashboard.panel_cache import (
    CachingReader,
    PanelCache,
    estimated_bytes,
    scope_of,
)
from shiftright_server.dashboard.visitor import Visitor
from shiftright_server.dashboard.warehouse import Result, WarehouseDown
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.access.links import ShareLink

from tests.unit.dashboard.conftest import (
    FakeCommands,
    FakeReader,
    group_row,
    make_app,
    sign_in_as,
)

SIZE = estimated_bytes
SQL = "/* dashboard.usage_series */ SELECT 1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def one_row(value: Any) -> Result:
    return Result(["v"], [(value,)], 1.0)


def answer(value: Any) -> Callable[[], Result]:
    return lambda: one_row(value)


def test_an_answer_is_served_until_its_time_to_live_then_read_anew() -> None:
    clock = Clock()
    cache = PanelCache(1.0, 10, 1 << 20, clock)
    reads = iter([one_row("old"), one_row("new")])

    def fetch() -> Result:
        return next(reads)

    assert cache.get("k", fetch, lambda _: 10) == (one_row("old"), "miss")
    clock.now += 0.99
    assert cache.get("k", fetch, lambda _: 10) == (one_row("old"), "hit")
    clock.now += 0.01
    assert cache.get("k", fetch, lambda _: 10) == (one_row("new"), "miss")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 2, 1)


def test_concurrent_identical_queries_share_one_warehouse_read() -> None:
    cache = PanelCache(1.0, 10, 1 << 20, Clock())
    release, calls = threading.Event(), []

    def slow() -> Result:
        calls.append(1)
        release.wait(10)
        return one_row(42)

    got: list[tuple[Any, str]] = []
    _in_one_flight(cache, lambda: got.append(cache.get("k", slow, SIZE)), 8, release)
    assert len(calls) == 1
    assert sorted(how for _, how in got) == ["coalesced"] * 7 + ["miss"]
    assert all(value == one_row(42) for value, _ in got)


def test_a_failed_read_reaches_everyone_sharing_it_and_is_not_kept() -> None:
    cache = PanelCache(1.0, 10, 1 << 20, Clock())
    release, failures = threading.Event(), []

    def down() -> Result:
        release.wait(10)
        raise WarehouseDown("connection refused")

    def ask() -> None:
        try:
            cache.get("k", down, SIZE)
        except WarehouseDown as exc:
            failures.append(str(exc))

    _in_one_flight(cache, ask, 3, release)
    assert failures == ["connection refused"] * 3
    assert cache.get("k", lambda: one_row("back"), SIZE) == (one_row("back"), "miss")
    assert cache.stats().failures == 1


def test_the_least_recently_used_answer_goes_first_when_entries_run_out() -> None:
    cache = PanelCache(10.0, 2, 1 << 20, Clock())
    for key in ("a", "b"):
        cache.get(key, answer(key), SIZE)
    assert cache.get("a", lambda: one_row("?"), SIZE)[1] == "hit"  # "b" is now the oldest
    cache.get("c", lambda: one_row("c"), SIZE)
    assert cache.get("a", lambda: one_row("?"), SIZE)[1] == "hit"
    assert cache.get("c", lambda: one_row("?"), SIZE)[1] == "hit"
    assert cache.get("b", lambda: one_row("b"), SIZE)[1] == "miss"
    assert cache.stats().evictions == 2  # "b", then "a" or "c" to make room for "b" again


def test_answers_are_dropped_to_stay_within_the_byte_budget() -> None:
    cache = PanelCache(10.0, 100, 800, Clock())
    for key in range(9):
        cache.get(key, answer(key), lambda _: 100)
    stats = cache.stats()
    assert (stats.entries, stats.bytes, stats.evictions) == (8, 800, 1)
    assert cache.get(0, lambda: one_row("again"), SIZE)[1] == "miss"


def test_an_answer_over_an_eighth_of_the_byte_budget_is_not_kept() -> None:
    cache = PanelCache(10.0, 10, 800, Clock())
    cache.get("huge", lambda: one_row("huge"), lambda _: 101)
    assert cache.stats().entries == 0


def test_a_read_after_a_clear_does_not_join_a_flight_from_before_it() -> None:
    cache = PanelCache(10.0, 10, 1 << 20, Clock())
    release, got = threading.Event(), []

    def before_the_write() -> Result:
        release.wait(10)
        return one_row("before")

    early = threading.Thread(target=lambda: got.append(cache.get("k", before_the_write, SIZE)))
    early.start()
    _wait_until(lambda: cache.stats().misses == 1)
    cache.clear()
    assert cache.get("k", answer("after"), SIZE) == (one_row("after"), "miss")
    release.set()
    early.join(10)
    assert got == [(one_row("before"), "miss")]
    assert cache.get("k", answer("?"), SIZE) == (one_row("after"), "hit")


def test_a_clear_forgets_answers_and_the_one_in_flight_is_not_kept() -> None:
    cache = PanelCache(10.0, 10, 1 << 20, Clock())
    cache.get("k", lambda: one_row(1), SIZE)

    def read_across_a_clear() -> Result:
        cache.clear()
        return one_row(2)

    assert cache.get("j", read_across_a_clear, SIZE)[0] == one_row(2)
    assert cache.stats().entries == 0
    assert cache.get("k", lambda: one_row(3), SIZE) == (one_row(3), "miss")


def test_answers_are_kept_apart_by_scope_parameters_and_sql(reader: FakeReader) -> None:
    reader.answers["usage_series"] = [{"v": 1}]
    cached = CachingReader(reader, PanelCache(1.0, 100, 1 << 20, Clock()))
    viewer, link = cached.for_scope("user:viewer"), cached.for_scope("link:abc")
    viewer.query(SQL, {"app": "checkout"})
    viewer.query(SQL, {"app": "checkout"})
    link.query(SQL, {"app": "checkout"})
    viewer.query(SQL, {"app": "catalog"})
    viewer.query(SQL + " ", {"app": "checkout"})
    viewer.query(SQL, {"app": "checkout"}, settings={"readonly": 1})  # the console's: its own
    assert len(reader.asked) == 5


def test_a_share_link_reads_under_its_own_scope_not_a_role() -> None:
    link = ShareLink(
        "abc", "ann", ("checkout",), ("prod",), ("overview",), "", "", "", None, None, 0
    )
    other = ShareLink(
        "def", "ann", ("catalog",), ("prod",), ("overview",), "", "", "", None, None, 0
    )
    scopes = {
        scope_of(Visitor("user", "a@x", "viewer")),
        scope_of(Visitor("token", "t", "viewer")),
        scope_of(Visitor("user", "b@x", "admin")),
        scope_of(Visitor("share", "l", link=link)),
        scope_of(Visitor("share", "l", link=other)),
    }
    assert len(scopes) == 5
    assert scope_of(Visitor("user", "a@x", "viewer")) == scope_of(Visitor("user", "c@x", "viewer"))


def test_polling_the_overview_reads_the_warehouse_once_per_time_to_live(
    reader: FakeReader, identity: Identity, audit: MemoryAudit
) -> None:
    clock = Clock()
    cached = CachingReader(reader, PanelCache(1.0, 100, 1 << 20, clock))
    with TestClient(make_app(cached, FakeCommands(), identity, audit)) as client:  # type: ignore[arg-type]  # a Reader, not the fake itself
        sign_in_as(client, identity, "viewer")
        assert client.get("/panels/overview?range=1h").status_code == 200
        asked = len(reader.asked)
        second = client.get("/panels/overview?range=1h")
        assert len(reader.asked) == asked  # every panel query answered from the cache
        timing = second.headers["server-timing"]
        assert "q-usage_series;dur=" in timing and "desc=hit" in timing
        clock.now += 1.0
        client.get("/panels/overview?range=1h")
        assert len(reader.asked) > asked  # and read anew once it expired
        report = client.get("/api/panel-cache").json()
        assert report["enabled"] and report["hits"] >= 6 and report["misses"] >= 12
        reader.down = "connection refused"
        clock.now += 1.0
        assert "Warehouse unreachable" in client.get("/panels/overview?range=1h").text
        reader.down = ""
        assert "Warehouse unreachable" not in client.get("/panels/overview?range=1h").text


def test_an_action_empties_the_cache(client: TestClient, reader: FakeReader) -> None:
    reader.answers["error_group"] = [group_row()]
    client.get("/panels/overview?range=1h")
    assert client.get("/api/panel-cache").json()["entries"] > 0
    sent = client.post("/errors/g1/resolve", data={"app": "checkout"}, follow_redirects=False)
    assert sent.status_code == 303
    assert client.get("/api/panel-cache").json()["entries"] == 0


def _in_one_flight(
    cache: PanelCache, ask: Callable[[], None], n: int, release: threading.Event
) -> None:
    """``n`` threads ``ask`` while the first one's read is held; then it is let go."""
    threads = [threading.Thread(target=ask) for _ in range(n)]
    for t in threads:
        t.start()
    _wait_until(lambda: cache.stats().coalesced == n - 1)
    release.set()
    for t in threads:
        t.join(10)


def _wait_until(done: Any, seconds: float = 10.0) -> None:
    finished = threading.Event()
    for _ in range(int(seconds * 100)):
        if done():
            return
        finished.wait(0.01)
    pytest.fail("the condition did not hold in time")
