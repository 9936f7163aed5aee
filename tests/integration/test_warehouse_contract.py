"""One contract, two implementations: the FakeWarehouse unit tests rely on behaves like
ClickHouseWarehouse against the real engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import Settings
from shiftright_server.sinks.errors import RejectedRowsError
from shiftright_server.sinks.rows import COLUMNS
from shiftright_server.sinks.warehouse import ClickHouseWarehouse, Warehouse

from tests.fakes import FakeWarehouse

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def usage_columns(
    offsets: list[int], topic: str = "events.usage.v1", partition: int = 0
) -> list[list[Any]]:
    rows: list[tuple[Any, ...]] = [
        (
            uuid.uuid4(),
            T0,
            "checkout",
            "prod",
            "1.0",
            "h",
            "i",
            "",
            "u",
            "c",
            "user",
            {},
            "cart.add",
            "/cart",
            "POST",
            200,
            1.5,
            None,
            {"new-checkout": "on"},
            T0,
            topic,
            partition,
            off,
            0,
        )
        for off in offsets
    ]
    return [list(c) for c in zip(*rows, strict=True)]


@pytest.fixture(params=["fake", "clickhouse"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    if request.param == "fake":
        yield FakeWarehouse()
        return
    settings: Settings = request.getfixturevalue("warehouse_settings")
    yield ClickHouseWarehouse(
        get_client(settings.clickhouse, database=settings.clickhouse.database)
    )


def test_a_repeated_token_inserts_nothing_new(warehouse: Warehouse) -> None:
    cols = usage_columns([0, 1, 2])
    warehouse.insert("events_usage", cols, COLUMNS["events_usage"], "tok-1")
    warehouse.insert("events_usage", cols, COLUMNS["events_usage"], "tok-1")
    assert warehouse.stored_offsets("events_usage", "events.usage.v1") == {0: 2}


def test_stored_offsets_are_per_topic_and_partition(warehouse: Warehouse) -> None:
    warehouse.insert(
        "events_usage", usage_columns([5, 9], partition=0), COLUMNS["events_usage"], "a"
    )
    warehouse.insert("events_usage", usage_columns([3], partition=4), COLUMNS["events_usage"], "b")
    warehouse.insert(
        "events_usage",
        usage_columns([99], topic="other", partition=4),
        COLUMNS["events_usage"],
        "c",
    )
    assert warehouse.stored_offsets("events_usage", "events.usage.v1") == {0: 9, 4: 3}
    assert warehouse.stored_offsets("events_usage", "nothing.here") == {}


def test_a_row_the_table_cannot_hold_is_rejected_not_retried(warehouse: Warehouse) -> None:
    if isinstance(warehouse, FakeWarehouse):
        warehouse.reject_if = lambda row: row["status_code"] > 65535
    cols = usage_columns([1])
    cols[COLUMNS["events_usage"].index("status_code")] = [70_000]  # UInt16 overflows
    with pytest.raises(RejectedRowsError):
        warehouse.insert("events_usage", cols, COLUMNS["events_usage"], "bad")


def test_a_retried_insert_does_not_count_twice_in_the_minutely_views(
    warehouse_settings: Settings,
) -> None:
    database = warehouse_settings.clickhouse.database
    client = get_client(warehouse_settings.clickhouse, database=database)
    real = ClickHouseWarehouse(client)
    cols = usage_columns([0, 1, 2, 3])
    for _ in range(2):
        real.insert("events_usage", cols, COLUMNS["events_usage"], "retry-token")
    assert client.command("SELECT count() FROM events_usage") == 4
    assert client.command("SELECT sum(events) FROM usage_minutely") == 4
