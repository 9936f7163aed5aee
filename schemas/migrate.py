"""Idempotent, versioned ClickHouse migrations.

Files ``migrations/NNNN_name.sql`` run in order; each applied version is recorded in
``schema_migrations`` with its checksum. Re-running applies nothing new; editing a file
that was already applied is refused (write a new migration instead).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from shiftright_server.schemas.cluster import Layout, PlacementError, SingleNode

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SqlClient(Protocol):
    """The part of clickhouse_connect's client the runner needs."""

    def command(self, cmd: str, *args: Any, **kwargs: Any) -> Any: ...
    def query(self, query: str, *args: Any, **kwargs: Any) -> Any: ...


class MigrationError(RuntimeError):
    """A migration cannot be applied, or history disagrees with the files."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        """The SQL statements, with ``{db}`` replaced by the (validated) database name."""
        sql = self.sql.replace("{db}", _ident(database))
        lines = [ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations() -> list[Migration]:
    folder = resources.files("shiftright_server.schemas") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


HISTORY = """CREATE TABLE IF NOT EXISTS {db}.schema_migrations
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
ENGINE = ReplacingMergeTree
ORDER BY version"""


@dataclass(frozen=True)
class Plan:
    """Every statement a layout runs: ``setup`` (the database and the history table),
    then each migration's statements in order, applied or not."""

    setup: list[str]
    steps: list[tuple[Migration, list[str]]]


def plan(database: str, layout: Layout) -> Plan:
    """The statements ``layout`` runs for every migration file."""
    db = _ident(database)
    try:
        setup = [layout.create_database(db), *layout.place(HISTORY.replace("{db}", db))]
        steps = [
            (m, [placed for s in m.statements(db) for placed in layout.place(s)])
            for m in load_migrations()
        ]
    except PlacementError as exc:
        raise MigrationError(str(exc)) from exc
    return Plan(setup, steps)


def migrate(client: SqlClient, database: str, layout: Layout | None = None) -> list[Migration]:
    """Create the database if needed and apply pending migrations; return those applied."""
    planned = plan(database, layout or SingleNode())
    for statement in planned.setup:
        client.command(statement)
    applied = _applied(client, database)
    done = []
    for migration, statements in planned.steps:
        if migration.version in applied:
            _check_unchanged(migration, applied[migration.version])
            continue
        _apply(client, database, migration, statements)
        done.append(migration)
    return done


def _applied(client: SqlClient, database: str) -> dict[int, str]:
    rows = client.query(
        f"SELECT version, checksum FROM {_ident(database)}.schema_migrations FINAL"
    ).result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def _check_unchanged(migration: Migration, checksum: str) -> None:
    if checksum != migration.checksum:
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name}.sql changed after it was "
            "applied; add a new migration instead of editing an applied one"
        )


def _apply(client: SqlClient, database: str, migration: Migration, statements: list[str]) -> None:
    for statement in statements:
        try:
            client.command(statement)
        except Exception as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} failed: {exc}"
            ) from exc
    client.command(
        f"INSERT INTO {_ident(database)}.schema_migrations (version, name, checksum) "
        f"VALUES ({migration.version}, '{migration.name}', '{migration.checksum}')"
    )


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise MigrationError(f"invalid database name {name!r}: use letters, digits and _")
    return name
