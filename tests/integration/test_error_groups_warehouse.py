"""Error analytics in the real ClickHouse engine: the 0004 migration applies (and re-applies
as a no-op), the records the grouping emits fit their tables, and the SQL view
``errors_with_health`` attaches the same health snapshots as the stream's HealthJoin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import ClickHouseSettings
from shiftright_server.producers.simulator import Simulator
from shiftright_server.schemas.error_queries import QUERIES
from shiftright_server.schemas.events import EVENT_ADAPTER, HEALTH_METRICS, ErrorEvent, HealthEvent
from shiftright_server.schemas.migrate import load_migrations, migrate
from shiftright_server.schemas.positions import Position
from shiftright_server.schemas.records import ErrorGroupCommand
from shiftright_server.sinks.rows import COLUMNS, event_row
from shiftright_server.streams.grouping import GroupBook, Grouper, HealthJoin, grouped_error

# Recent: the raw tables expire rows after 90-180 days, at insert too.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
POSITION = {"_topic": "t", "_partition": 0, "_offset": 0}


@pytest.fixture
def client(clickhouse_url: str) -> Iterator[Client]:
    database = f"t{uuid.uuid4().hex[:10]}"
    made = get_client(ClickHouseSettings(url=clickhouse_url), database=None)
    migrate(made, database)
    made.close()
    scoped = get_client(ClickHouseSettings(url=clickhouse_url), database=database)
    yield scoped
    scoped.command(f"DROP DATABASE IF EXISTS {database}")
    scoped.close()


def ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def insert_models(client: Client, table: str, models: list[Any]) -> None:
    dicts = [{**m.model_dump(), **POSITION} for m in models]
    names = list(dicts[0])
    client.insert(table, [[d[n] for n in names] for d in dicts], column_names=names)


def test_migrations_apply_once_and_again_as_a_no_op(client: Client) -> None:
    database = client.database
    assert database is not None
    assert migrate(client, database) == []  # idempotent: nothing pending
    versions = {
        r[0] for r in client.query("SELECT version FROM schema_migrations FINAL").result_rows
    }
    assert versions == {m.version for m in load_migrations()}
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert {
        "errors_grouped",
        "error_groups",
        "error_group_transitions",
        "errors_with_health",
    } <= tables


def test_a_warehouse_on_the_schema_before_0004_upgrades_with_just_the_newer_ones(
    clickhouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"t{uuid.uuid4().hex[:10]}"
    client = get_client(ClickHouseSettings(url=clickhouse_url))
    try:
        everything = load_migrations()
        previous = [m for m in everything if m.version < 4]
        monkeypatch.setattr("shiftright_server.schemas.migrate.load_migrations", lambda: previous)
        assert [m.version for m in migrate(client, database)] == [1, 2, 3]
        monkeypatch.setattr("shiftright_server.schemas.migrate.load_migrations", lambda: everything)
        newer = [m.name for m in everything if m.version >= 4]
        assert newer[:2] == ["error_groups", "alerting"]
        assert [m.name for m in migrate(client, database)] == newer
        assert migrate(client, database) == []
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database}")
        client.close()


def test_health_view_and_stream_attach_the_same_snapshots(client: Client) -> None:
    raw = Simulator(seed=21, rate=40, diurnal=False).tick(T0, 300)
    events = [EVENT_ADAPTER.validate_python(e) for e in raw]
    health = [e for e in events if isinstance(e, HealthEvent)]
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    sources: list[tuple[str, Sequence[HealthEvent | ErrorEvent]]] = [
        ("events_health", health),
        ("events_error", errors),
    ]
    for table, rows in sources:
        data = [event_row(e, ms(e.ts), Position("t", 0, i)) for i, e in enumerate(rows)]
        client.insert(table, data, column_names=list(COLUMNS[table]))

    join = HealthJoin()
    attached = []
    for event in events:  # the stream's order: by event time, topics interleaved
        if isinstance(event, HealthEvent):
            attached += join.add_health(event)
        elif isinstance(event, ErrorEvent):
            attached += join.add_error(event)
    attached += join.flush()
    stream = {
        a.error.event_id: (a.snapshot.ts_ms if a.snapshot else None, a.age_ms, a.after_error)
        for a in attached
    }

    viewed = client.query(
        "SELECT event_id, toUnixTimestamp64Milli(health_ts), health_age_ms, "
        "health_after_error, health FROM errors_with_health"
    ).result_rows
    view = {r[0]: (r[1], r[2], r[3]) for r in viewed}
    assert len(errors) > 50 and len(view) == len(errors) == len(stream)
    assert view == stream
    # Every host reports every 10 s, so after its first report every error has a snapshot.
    after_first = [e.event_id for e in errors if e.ts >= T0 + timedelta(seconds=10)]
    with_health = sum(view[i][1] is not None for i in after_first)
    assert with_health == len(after_first)
    assert all(0 <= age <= 60_000 for _, age, _ in view.values() if age is not None)
    # Errors before a host's first report get its first snapshot after them instead.
    early = [e.event_id for e in errors if e.ts < T0 + timedelta(seconds=10)]
    marked = [view[i] for i in early if view[i][2]]
    assert marked and all(0 < age <= 10_000 for _, age, _ in marked)
    assert all(r[4]["system.cpu.utilization"] > 0 for r in viewed if r[2] is not None)


def test_grouping_records_land_in_their_tables(client: Client) -> None:
    raw = Simulator(seed=5).generate("error", 400, T0, T0 + timedelta(hours=1))
    errors = [ErrorEvent.model_validate(e) for e in raw]
    grouper, book = Grouper(), GroupBook()
    grouped, transitions = [], []
    for event in errors:
        grouped.append(grouped_error(event, grouper.assign(event), None, None))
        transitions += book.apply(grouped[-1])
    target = grouped[0]
    book.command(
        len(errors),
        ErrorGroupCommand(
            app=target.app,
            group_id=target.group_id,
            action="resolve_in_next_release",
            ts=T0 + timedelta(hours=1),
            release="1.4.2",
        ),
    )
    rows = book.take_rows()
    insert_models(client, "errors_grouped", grouped)
    insert_models(client, "error_groups", rows)
    insert_models(client, "error_group_transitions", transitions)

    stored = client.query(
        "SELECT group_id, count, status, resolved_in_release, env_count, users FROM error_groups FINAL"
    ).result_rows
    assert len(stored) == len(rows) == len({g.group_id for g in grouped})
    assert sum(r[1] for r in stored) == len(errors)
    resolved = [r for r in stored if r[0] == target.group_id]
    assert resolved[0][2:4] == ("resolved_in_next_release", "1.4.2")
    per_group = {
        r[0]: r[1]
        for r in client.query(
            "SELECT group_id, count() FROM errors_grouped GROUP BY group_id"
        ).result_rows
    }
    assert per_group == {r[0]: r[1] for r in stored}
    kinds = {
        r[0]: r[1]
        for r in client.query(
            "SELECT kind, count() FROM error_group_transitions GROUP BY kind"
        ).result_rows
    }
    assert kinds["new"] == len(rows)


def test_the_documented_questions_answer_from_the_tables(client: Client) -> None:
    start, minutes = T0, 20
    raw = Simulator(seed=12, rate=150, diurnal=False).tick(start, minutes * 60)
    events = [EVENT_ADAPTER.validate_python(e) for e in raw]
    for kind, table in (("usage", "events_usage"), ("health", "events_health")):
        rows = [e for e in events if e.kind == kind]
        data = [event_row(e, ms(e.ts), Position("t", 0, i)) for i, e in enumerate(rows)]
        client.insert(table, data, column_names=list(COLUMNS[table]))
    grouper, book, join = Grouper(), GroupBook(), HealthJoin()
    attached = []
    for e in events:
        if isinstance(e, HealthEvent):
            attached += join.add_health(e)
        elif isinstance(e, ErrorEvent):
            attached += join.add_error(e)
    attached += join.flush()
    attached.sort(key=lambda a: a.error.ts)
    grouped = [
        grouped_error(a.error, grouper.assign(a.error), a.snapshot, a.age_ms) for a in attached
    ]
    transitions = [t for g in grouped for t in book.apply(g)]
    top = max(book.groups.values(), key=lambda g: g.count)
    book.command(
        0, ErrorGroupCommand(app=top.app, group_id=top.group_id, action="resolve", ts=start)
    )
    again = next(g for g in grouped if g.group_id == top.group_id)
    again = again.model_copy(
        update={"ts": start + timedelta(minutes=minutes), "event_id": uuid.uuid4()}
    )
    transitions += book.apply(again)
    grouped.append(again)
    insert_models(client, "errors_grouped", grouped)
    insert_models(client, "error_groups", book.take_rows())
    insert_models(client, "error_group_transitions", transitions)

    def ask(name: str, **params: Any) -> list[tuple[Any, ...]]:
        window = {"start": start, "end": start + timedelta(minutes=minutes + 1)}
        return [
            tuple(r)
            for r in client.query(QUERIES[name], parameters={**window, **params}).result_rows
        ]

    types = ask("top-types", limit=1000)
    assert sum(r[3] for r in types) == len(grouped) and types[0][3] >= types[-1][3]
    groups = ask("top-groups", limit=5)
    assert groups[0][2] == top.group_id or groups[0][5] >= top.count // 2
    rate = ask("group-rate", group_id=top.group_id, step_s=300)
    assert sum(r[4] for r in rate) == top.count
    end = (start + timedelta(minutes=minutes)).replace(tzinfo=None)
    during = [r for r in rate if r[0].replace(tzinfo=None) < end]  # not the re-thrown one
    assert during and all(r[5] >= r[4] and 0 < r[6] <= 1000 for r in during), during
    affecting = ask("most-affecting", limit=10)
    assert [r[4] for r in affecting] == sorted((r[4] for r in affecting), reverse=True)
    new = ask("new-in-release", app="catalog", release="2.8.0")
    assert new and all(r[1] in book.groups for r in new)
    regressed = ask("regressed")
    assert [(r[3], r[5]) for r in regressed] == [(top.group_id, "resolved")]
    promoted = ask("promoted", from_env="preprod", to_env="prod")
    assert all(r[5] >= 0 and r[3] < r[4] for r in promoted)
    health = ask("health-at-errors", group_id=top.group_id)
    assert {r[0] for r in health} == set(HEALTH_METRICS)
    assert all(r[4] > 0 and r[2] is not None and 0.2 < r[3] < 5 for r in health)
