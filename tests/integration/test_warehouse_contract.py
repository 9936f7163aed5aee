"""One contract, two implementations: the FakeWarehouse unit tests rely on behaves like
ClickHouseWarehouse against the real engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
    assert warehouse.stored_offsets("events_usage", "events.usage.v1") == {"": {0: 2}}


def test_stored_offsets_are_per_topic_incarnation_and_partition(warehouse: Warehouse) -> None:
    names = (*COLUMNS["events_usage"], "_topic_id")

    def with_id(columns: list[list[Any]], topic_id: str) -> list[list[Any]]:
        return [*columns, [topic_id] * len(columns[0])]

    warehouse.insert(
        "events_usage", usage_columns([5, 9], partition=0), COLUMNS["events_usage"], "a"
    )
    warehouse.insert("events_usage", with_id(usage_columns([3], partition=4), "id-1"), names, "b")
    warehouse.insert("events_usage", with_id(usage_columns([1], partition=4), "id-2"), names, "c")
    other = usage_columns([99], topic="other", partition=4)
    warehouse.insert("events_usage", with_id(other, "id-3"), names, "d")
    assert warehouse.stored_offsets("events_usage", "events.usage.v1") == {
        "": {0: 9},  # stored without a topic id
        "id-1": {4: 3},
        "id-2": {4: 1},
    }
    assert warehouse.stored_offsets("events_usage", "nothing.here") == {}


def test_recorded_incarnations_tell_which_adopts_the_rows_without_a_topic_id(
    warehouse: Warehouse,
) -> None:
    from shiftright_server.sinks import incarnations

    assert warehouse.incarnations() == {}
    for topic, topic_id, adopts in (("u", "id-1", True), ("u", "id-2", False), ("e", "id-3", True)):
        columns: list[list[Any]] = [[topic], [topic_id], [adopts], [T0]]
        warehouse.insert(incarnations.TABLE, columns, incarnations.COLUMNS, f"{topic}:{topic_id}")
    assert warehouse.incarnations() == {"u": {"id-1": True, "id-2": False}, "e": {"id-3": True}}


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


def test_each_way_of_storing_events_stores_the_same_values(
    warehouse_settings: Settings,
) -> None:
    """The same messages through each way the sink's router stores events: partition 0
    through the models one row at a time, 1 as columns of the fast validator's events
    (with the one line only the models read appended), 2 as those columns written by
    clickhouse-connect's own encoders (not :mod:`sinks.native`'s); every stored value
    agrees."""
    from shiftright_server.schemas import wire
    from shiftright_server.schemas.positions import Position, position_id
    from shiftright_server.schemas.validation import Limits
    from shiftright_server.sinks.batch import Batch
    from shiftright_server.sinks.event_columns import MessageEvents
    from shiftright_server.sinks.router import Router, Row

    from tests.builders import encoded

    client = get_client(
        warehouse_settings.clickhouse, database=warehouse_settings.clickhouse.database
    )
    real = ClickHouseWarehouse(client)
    at = T0.replace(minute=1)
    messages = {
        "usage": [
            encoded("usage", T0, name="plain", flags={"f": "on"}, attributes={"k": "v"}),
            encoded("usage", T0, name="zoned").replace(b"15:00:00.000Z", b"17:00:00.5+02:00"),
            b'{"kind":"usage","app":"a","env":"e","name":"no-id","value":-1.25e-7}',
            encoded("usage", T0, name="caf\u00e9 \U0001f600", duration_ms=None, value=3),
            encoded("usage", T0, name="lax", status_code="503"),  # only the models read it
        ],
        "health": [encoded("health", T0, metrics={"a": 1, "b": 0.1}, origin="test")],
        "change": [encoded("change", T0, description='say "hi"\n', previous_value="1")],
        "error": [
            encoded("error", T0, frames=[{"function": "f", "lineno": 3, "in_app": False}, {}]),
            encoded("error", T0, level="fatal", handled=True, stacktrace="T\n  at f"),
            encoded("error", T0, handled="yes"),  # only the models read it
        ],
    }
    limits = Limits(max_age=timedelta(days=36500))
    for partition, event_rows in enumerate(("models", "columns", "columns")):
        router, batch = Router("", limits, event_rows=event_rows), Batch()
        for kind, lines in messages.items():
            pos = Position(f"events.{kind}.v1", partition, 5)
            routed = router.route(
                pos, b"\n".join(lines), wire.BATCH_HEADERS, int(at.timestamp() * 1000)
            )
            for item in routed:
                if isinstance(item, Row):
                    batch.add(item.table, item.values)
                elif isinstance(item, MessageEvents):
                    batch.add_events(item)
        assert batch.row_count == sum(map(len, messages.values()))
        for table, columns in batch.tables():
            if partition < 2:
                real.insert(table, columns, COLUMNS[table], f"{table}-{partition}")
            else:
                client.insert(table, columns, column_names=COLUMNS[table], column_oriented=True)
    for kind, lines in messages.items():
        stored = client.query(
            f"SELECT _partition, * EXCEPT (_partition, event_id) FROM events_{kind} "
            "ORDER BY _index, _partition"
        ).result_rows
        assert len(stored) == 3 * len(lines)
        for models, fast, plain in zip(stored[::3], stored[1::3], stored[2::3], strict=True):
            assert (models[0], fast[0], plain[0]) == (0, 1, 2)
            assert models[1:] == fast[1:] == plain[1:]
    ids = client.query(
        "SELECT _partition, arraySort(groupArray(toString(event_id))) FROM events_usage "
        "WHERE name != 'no-id' GROUP BY _partition ORDER BY _partition"
    ).result_rows
    assert ids[0][1] == ids[1][1] == ids[2][1]  # the ids events carry are stored as they are
    made = client.query(
        "SELECT _partition, event_id FROM events_usage WHERE name = 'no-id' ORDER BY _partition"
    ).result_rows
    usage = "events.usage.v1"  # an event without an id gets its position's every way
    assert made == [(p, position_id(Position(usage, p, 5, 2))) for p in range(3)]
