"""The panel cache over the real warehouse reader (its unit tests use a fake): a row
inserted after an answer shows once the answer's time to live is over, and at once for
another permission scope; concurrent identical reads send one query; an unreachable
warehouse is reported to every read and nothing is kept."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from shiftright_server.dashboard.panel_cache import CachingReader, PanelCache
from shiftright_server.dashboard.warehouse import WarehouseDown, WarehouseReader
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import ClickHouseSettings

from tests.integration.warehouse_fixture import free_port

COUNT = "/* dashboard.cache_check */ SELECT count() AS n FROM seen WHERE app = {app:String}"
SLOW = "/* dashboard.cache_slow */ SELECT sleepEachRow(0.5) + {x:UInt8} AS v FROM numbers(1)"


def test_answers_over_the_real_warehouse_are_kept_for_their_time_to_live(
    clickhouse_url: str,
) -> None:
    database = f"t{uuid.uuid4().hex[:10]}"
    admin = get_client(ClickHouseSettings(url=clickhouse_url))
    admin.command(f"CREATE DATABASE {database}")
    admin.command(f"CREATE TABLE {database}.seen (app String) ENGINE = MergeTree ORDER BY app")
    now = [0.0]  # the cache's clock, moved by hand
    real = WarehouseReader(ClickHouseSettings(url=clickhouse_url, database=database))
    cached = CachingReader(real, PanelCache(1.0, 100, 1 << 20, lambda: now[0]))
    viewer, link = cached.for_scope("user:viewer"), cached.for_scope("link:abc")
    try:
        assert viewer.query(COUNT, {"app": "checkout"}).rows == [(0,)]
        admin.command(f"INSERT INTO {database}.seen VALUES ('checkout')")
        assert viewer.query(COUNT, {"app": "checkout"}).rows == [(0,)]  # kept
        assert link.query(COUNT, {"app": "checkout"}).rows == [(1,)]  # another scope
        now[0] += 1.0
        assert viewer.query(COUNT, {"app": "checkout"}).rows == [(1,)]  # expired: read anew
        assert _all_at_once(lambda: viewer.query(SLOW, {"x": 1}).rows) == [[(1,)]] * 6
        stats = cached.cache.stats()
        assert stats.misses == 4  # one query for the six at once
        assert stats.hits + stats.coalesced == 6 and stats.coalesced >= 1
    finally:
        cached.close()
        admin.command(f"DROP DATABASE {database}")
        admin.close()


def test_an_unreachable_warehouse_is_reported_each_time_and_not_kept() -> None:
    dead = WarehouseReader(ClickHouseSettings(url=f"http://127.0.0.1:{free_port()}"))
    cached = CachingReader(dead, PanelCache(1.0, 100, 1 << 20))
    for _ in range(2):
        with pytest.raises(WarehouseDown):
            cached.for_scope("user:viewer").query(COUNT, {"app": "checkout"})
    stats = cached.cache.stats()
    assert (stats.misses, stats.failures, stats.entries) == (2, 2, 0)


def _all_at_once(read: Any, n: int = 6) -> list[Any]:
    got: list[Any] = []
    start = threading.Barrier(n)

    def one() -> None:
        start.wait(10)
        got.append(read())

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return got
