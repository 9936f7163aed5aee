"""Placing the migrations on a ClickHouse cluster: replicated local tables, Distributed
tables in front, views and alterations aimed at the right ones."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from shiftright_server.infra.settings import ClickHouseSettings
from shiftright_server.schemas.cluster import Cluster, PlacementError, SingleNode
from shiftright_server.schemas.migrate import MigrationError, load_migrations, plan


def _cluster_statements() -> list[str]:
    planned = plan("shiftright", Cluster("prod"))
    return planned.setup + [s for _, statements in planned.steps for s in statements]


def test_single_node_runs_each_file_as_written() -> None:
    planned = plan("shiftright", SingleNode())
    for migration, statements in planned.steps:
        assert statements == migration.statements("shiftright")


def test_every_statement_of_every_migration_runs_on_the_cluster() -> None:
    statements = _cluster_statements()
    assert all("ON CLUSTER `prod`" in s for s in statements if not s.startswith("INSERT"))
    for migration in load_migrations():
        for statement in migration.statements("shiftright"):
            if statement.startswith("CREATE TABLE"):
                name = re.match(r"CREATE TABLE IF NOT EXISTS (\S+)", statement)
                assert name is not None
                assert any(
                    s.startswith(f"CREATE TABLE IF NOT EXISTS {name[1]}_local ") for s in statements
                )


def test_each_table_is_replicated_locally_with_a_distributed_table_in_front() -> None:
    by_head = {s.split("\n", 1)[0]: s for s in _cluster_statements()}
    local = by_head["CREATE TABLE IF NOT EXISTS shiftright.rollups_local ON CLUSTER `prod`"]
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', "
        "'{replica}', count)" in local
    )
    assert "replicated_deduplication_window = 1000" in local
    assert "non_replicated" not in local
    front = by_head[
        "CREATE TABLE IF NOT EXISTS shiftright.rollups ON CLUSTER `prod` AS shiftright.rollups_local"
    ]
    # rows a replacing merge must meet share their sorting key, so they share a shard
    assert front.endswith(
        "Distributed(`prod`, shiftright, rollups_local, "
        "cityHash64(app, env, kind, key, bucket_start, source_partition))"
    )


def test_errors_and_their_hosts_health_land_on_one_shard() -> None:
    statements = _cluster_statements()
    for table in ("events_error", "events_health"):
        front = next(s for s in statements if f"shiftright.{table} ON CLUSTER" in s.split("\n")[0])
        assert front.endswith(f"{table}_local, cityHash64(app, env, host))")
    view = next(s for s in statements if "VIEW shiftright.errors_with_health" in s)
    assert view.startswith("CREATE OR REPLACE VIEW shiftright.errors_with_health ON CLUSTER")
    assert "FROM shiftright.events_error AS e" in view  # the Distributed table
    assert view.endswith("SETTINGS distributed_product_mode = 'local'")


def test_the_errors_sorted_by_hour_share_their_source_rows_shards() -> None:
    statements = _cluster_statements()
    for table in ("errors_grouped", "errors_grouped_by_hour"):
        front = next(s for s in statements if f"shiftright.{table} ON CLUSTER" in s.split("\n")[0])
        assert front.endswith(f"{table}_local, cityHash64(app, env, group_id, ts, event_id))")


def test_materialized_views_aggregate_each_shards_own_rows() -> None:
    mv = next(s for s in _cluster_statements() if "usage_minutely_mv" in s)
    assert "TO shiftright.usage_minutely_local AS" in mv
    assert "FROM shiftright.events_usage_local" in mv


def test_a_table_filled_from_older_ones_is_filled_once_through_the_distributed_tables() -> None:
    inserts = [s for s in _cluster_statements() if s.startswith("INSERT")]
    filled = (
        "INSERT INTO shiftright.usage_",
        "INSERT INTO shiftright.health_hourly",
        "INSERT INTO shiftright.errors_grouped_by_hour",
        "INSERT INTO shiftright.health_minutely_by_hour",
    )
    assert inserts and all(s.startswith(filled) for s in inserts)
    assert all("_local" not in s and "ON CLUSTER" not in s for s in inserts)


def test_an_alteration_reaches_the_local_and_the_distributed_table() -> None:
    layout = Cluster("prod")
    layout.place("CREATE TABLE IF NOT EXISTS db.t\n(a UInt8)\nENGINE = MergeTree\nORDER BY a")
    placed = layout.place("ALTER TABLE db.t ADD COLUMN b UInt8")
    assert placed == [
        "ALTER TABLE db.t_local ON CLUSTER `prod`\nADD COLUMN b UInt8",
        "ALTER TABLE db.t ON CLUSTER `prod`\nADD COLUMN b UInt8",
    ]


def test_a_dropped_table_goes_from_every_node_and_cannot_be_named_after() -> None:
    layout = Cluster("prod")
    layout.place("CREATE TABLE IF NOT EXISTS db.t\n(a UInt8)\nENGINE = MergeTree\nORDER BY a")
    assert layout.place("DROP VIEW IF EXISTS db.t_mv") == [
        "DROP VIEW IF EXISTS db.t_mv ON CLUSTER `prod`"
    ]
    assert layout.place("DROP TABLE IF EXISTS db.t") == [
        "DROP TABLE IF EXISTS db.t ON CLUSTER `prod`",
        "DROP TABLE IF EXISTS db.t_local ON CLUSTER `prod`",
    ]
    with pytest.raises(PlacementError, match=re.escape("db.t is not a table a migration created")):
        layout.place("INSERT INTO db.t SELECT 1")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("INSERT INTO db.t VALUES (1)", "cannot place this statement: INSERT INTO db.t"),
        ("ALTER TABLE db.unknown DROP COLUMN a", "db.unknown, which no migration created"),
        ("INSERT INTO db.unknown SELECT 1", "db.unknown is not a table a migration created"),
        ("CREATE TABLE IF NOT EXISTS db.l\n(a UInt8)\nENGINE = Log", "MergeTree-family engine"),
    ],
)
def test_a_statement_the_cluster_cannot_place_is_refused(statement: str, message: str) -> None:
    with pytest.raises(PlacementError, match=re.escape(message)):
        Cluster("prod").place(statement)


def test_a_bad_cluster_name_is_refused() -> None:
    with pytest.raises(PlacementError, match="invalid cluster name"):
        Cluster("prod; DROP")
    with pytest.raises(MigrationError, match="invalid database name"):
        plan("x; DROP", Cluster("prod"))


def test_a_cluster_needs_a_server_url() -> None:
    with pytest.raises(ValidationError, match="set clickhouse.url"):
        ClickHouseSettings(cluster="prod")
    assert ClickHouseSettings(cluster="prod", url="http://ch:8123").cluster == "prod"
