"""Where each migration statement runs: one server, or a ClickHouse cluster.

The migration files are written once, for one server. :class:`SingleNode` runs them as
they are. :class:`Cluster` places the same statements on a cluster:

    CREATE TABLE db.t (...) ENGINE = XMergeTree(args) ...
        -> db.t_local ON CLUSTER c  ENGINE = ReplicatedXMergeTree(path, replica, args)
           db.t       ON CLUSTER c  AS db.t_local ENGINE = Distributed(c, db, t_local, key)
    CREATE MATERIALIZED VIEW db.mv TO db.t AS SELECT ... FROM db.s
        -> ON CLUSTER c, TO db.t_local, FROM db.s_local (each shard aggregates its rows)
    CREATE [OR REPLACE] VIEW db.v AS SELECT ...
        -> ON CLUSTER c; reads the Distributed tables; a JOIN of co-sharded tables joins
           shard-locally (distributed_product_mode = 'local')
    ALTER TABLE db.t ...      -> on db.t_local and on db.t, ON CLUSTER c
    INSERT INTO db.t SELECT ... FROM db.s  (a migration filling a new table from older ones)
        -> once, as written: it reads and writes the Distributed tables, so each row is
           copied once and lands on the shard its key picks
    DROP VIEW IF EXISTS db.mv  -> ON CLUSTER c
    DROP TABLE IF EXISTS db.t  -> db.t and db.t_local, ON CLUSTER c; later statements
           can no longer name it

Every reader and writer keeps using the plain names (``db.t``): on a cluster those are
the Distributed tables. Rows are sharded by a deterministic key, so a retried insert
splits into the same per-shard blocks and each shard's replicated deduplication window
recognises them: by ``(app, env, host)`` for raw events (an error and its host's health
land on one shard, which the health join needs), and by the sorting key elsewhere (rows
that a Replacing/Aggregating merge must meet land on one shard).

A statement of any other shape is refused, so a migration the cluster cannot place fails
its test instead of a deployment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

SHARD_BY_HOST = "cityHash64(app, env, host)"
SHARD_KEYS = {
    "events_usage": SHARD_BY_HOST,
    "events_error": SHARD_BY_HOST,
    "events_health": SHARD_BY_HOST,
    "events_change": SHARD_BY_HOST,
    # The copy sorted by hour (migration 0022) on the shard of its source row, where a
    # row stored twice meets its twin (FINAL deduplicates within a shard).
    "errors_grouped_by_hour": "cityHash64(app, env, group_id, ts, event_id)",
}
DEFAULT_REPLICA_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
DEFAULT_REPLICA_NAME = "{replica}"

_NAME = r"(?P<db>[A-Za-z_]\w*)\.(?P<name>[A-Za-z_]\w*)"
_CREATE_TABLE = re.compile(rf"^CREATE TABLE IF NOT EXISTS {_NAME}\s*(?P<rest>\(.*)$", re.S)
_ENGINE = re.compile(r"ENGINE\s*=\s*(?P<kind>\w*)MergeTree(?:\((?P<args>[^)]*)\))?")
_ORDER_BY = re.compile(r"^ORDER BY\s+(?P<key>.+)$", re.M)
_MV = re.compile(
    rf"^CREATE MATERIALIZED VIEW IF NOT EXISTS {_NAME}\s+TO\s+(?P<to>\w+\.\w+)\s+AS\s(?P<q>.*)$",
    re.S,
)
_VIEW = re.compile(
    rf"^CREATE (?P<how>OR REPLACE VIEW|VIEW IF NOT EXISTS) {_NAME}\s+AS\s(?P<q>.*)$", re.S
)
_ALTER = re.compile(rf"^ALTER TABLE {_NAME}\s(?P<rest>.*)$", re.S)
_INSERT_SELECT = re.compile(rf"^INSERT INTO {_NAME}\s+SELECT\s.*$", re.S)
_DROP_VIEW = re.compile(rf"^DROP VIEW IF EXISTS {_NAME}$")
_DROP_TABLE = re.compile(rf"^DROP TABLE IF EXISTS {_NAME}$")
_TABLE_REF = re.compile(r"\b(FROM|JOIN)\s+(?P<db>[A-Za-z_]\w*)\.(?P<name>[A-Za-z_]\w*)\b")


class PlacementError(ValueError):
    """A statement the cluster layout does not know how to place."""


class Layout(Protocol):
    """Turns one server's statements into the statements to run."""

    def create_database(self, database: str) -> str: ...
    def place(self, statement: str) -> list[str]: ...


class SingleNode:
    """Statements run as written, on one server (also ClickHouse Cloud's SharedMergeTree,
    which the service substitutes for MergeTree by itself)."""

    def create_database(self, database: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {database}"

    def place(self, statement: str) -> list[str]:
        return [statement]


@dataclass
class Cluster:
    """Replicated local tables on every node of ``name``, Distributed tables in front.

    Placing is stateful: the layout remembers which tables it made local, so views read
    from (and alterations reach) the right ones. Place every migration in order, applied
    or not, before running the pending ones.
    """

    name: str
    replica_path: str = DEFAULT_REPLICA_PATH
    replica_name: str = DEFAULT_REPLICA_NAME
    sharded: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][\w-]*", self.name):
            raise PlacementError(f"invalid cluster name {self.name!r}: use letters, digits, _ -")

    @property
    def _on(self) -> str:
        return f"ON CLUSTER `{self.name}`"

    def create_database(self, database: str) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {database} {self._on}"

    def place(self, statement: str) -> list[str]:
        for pattern, place in (
            (_CREATE_TABLE, self._table),
            (_MV, self._materialized_view),
            (_VIEW, self._view),
            (_ALTER, self._alter),
            (_INSERT_SELECT, self._insert_select),
            (_DROP_VIEW, self._drop_view),
            (_DROP_TABLE, self._drop_table),
        ):
            match = pattern.match(statement)
            if match:
                return place(match)
        head = statement.split("\n", 1)[0][:80]
        raise PlacementError(f"the cluster layout cannot place this statement: {head}")

    def _table(self, m: re.Match[str]) -> list[str]:
        db, name, rest = m["db"], m["name"], m["rest"]
        engine = _ENGINE.search(rest)
        order = _ORDER_BY.search(rest)
        if engine is None or order is None:
            raise PlacementError(f"{db}.{name}: a MergeTree-family engine and ORDER BY needed")
        args = [f"'{self.replica_path}'", f"'{self.replica_name}'"]
        if engine["args"]:
            args.append(engine["args"])
        replicated = f"ENGINE = Replicated{engine['kind']}MergeTree({', '.join(args)})"
        rest = rest[: engine.start()] + replicated + rest[engine.end() :]
        rest = rest.replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"
        )
        key = SHARD_KEYS.get(name) or f"cityHash64{_as_tuple(order['key'].strip())}"
        self.sharded.add(f"{db}.{name}")
        return [
            f"CREATE TABLE IF NOT EXISTS {db}.{name}_local {self._on}\n{rest}",
            f"CREATE TABLE IF NOT EXISTS {db}.{name} {self._on} AS {db}.{name}_local\n"
            f"ENGINE = Distributed(`{self.name}`, {db}, {name}_local, {key})",
        ]

    def _materialized_view(self, m: re.Match[str]) -> list[str]:
        target = self._local(m["to"])
        query = _TABLE_REF.sub(lambda r: f"{r[1]} {self._local(f'{r[2]}.{r[3]}')}", m["q"])
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {m['db']}.{m['name']} {self._on} "
            f"TO {target} AS\n{query}"
        ]

    def _view(self, m: re.Match[str]) -> list[str]:
        query = m["q"]
        if re.search(r"\bJOIN\b", query):
            query += "\nSETTINGS distributed_product_mode = 'local'"
        return [f"CREATE {m['how']} {m['db']}.{m['name']} {self._on} AS\n{query}"]

    def _alter(self, m: re.Match[str]) -> list[str]:
        table = f"{m['db']}.{m['name']}"
        if table not in self.sharded:
            raise PlacementError(f"ALTER of {table}, which no migration created as a table")
        return [
            f"ALTER TABLE {table}_local {self._on}\n{m['rest']}",
            f"ALTER TABLE {table} {self._on}\n{m['rest']}",
        ]

    def _insert_select(self, m: re.Match[str]) -> list[str]:
        self._local(f"{m['db']}.{m['name']}")  # a table a migration created
        return [m[0]]

    def _drop_view(self, m: re.Match[str]) -> list[str]:
        return [f"DROP VIEW IF EXISTS {m['db']}.{m['name']} {self._on}"]

    def _drop_table(self, m: re.Match[str]) -> list[str]:
        table = f"{m['db']}.{m['name']}"
        self._local(table)  # a table a migration created
        self.sharded.discard(table)
        return [
            f"DROP TABLE IF EXISTS {table} {self._on}",
            f"DROP TABLE IF EXISTS {table}_local {self._on}",
        ]

    def _local(self, table: str) -> str:
        if table not in self.sharded:
            raise PlacementError(f"{table} is not a table a migration created")
        return f"{table}_local"


def _as_tuple(key: str) -> str:
    return key if key.startswith("(") else f"({key})"


def layout_for(cluster: str | None, replica_path: str, replica_name: str) -> Layout:
    """The layout the settings ask for: a cluster when one is named."""
    if cluster:
        return Cluster(cluster, replica_path, replica_name)
    return SingleNode()
