"""A fake warehouse reader for the dashboard's pages: it answers each query by the panel
tag the query starts with (``/* dashboard.<name> */``), from rows a test sets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.flag_desk import FlagDesk
from shiftright_server.dashboard.queries import name_of
from shiftright_server.dashboard.warehouse import Result, WarehouseDown
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity, build_identity
from shiftright_server.infra.settings import AccessSettings, Settings
from shiftright_server.schemas.records import ErrorGroupCommand

from tests.signin import sign_in_as

__all__ = ["sign_in_as"]

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


class FakeReader:
    url = "http://warehouse.invalid:8123"

    def __init__(self) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.down = ""
        self.closed = False

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        name = name_of(sql)
        self.asked.append((name, params))
        if self.down:
            raise WarehouseDown(self.down)
        rows = self.answers.get(name, [])
        columns = list(rows[0]) if rows else []
        return Result(columns, [tuple(r.values()) for r in rows], 0.1)

    def close(self) -> None:
        self.closed = True


class FakeCommands:
    def __init__(self) -> None:
        self.sent: list[ErrorGroupCommand] = []

    def send(self, cmd: ErrorGroupCommand) -> None:
        self.sent.append(cmd)

    def close(self) -> None:
        pass


def minute_ago(n: int) -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=n)


def group_row(**fields: Any) -> dict[str, Any]:
    """A row of the group query (``dashboard.error_group``)."""
    seen = minute_ago(5)
    row: dict[str, Any] = {
        "group_id": "g1",
        "app": "checkout",
        "title": "KeyError: 'sku'",
        "culprit": "shop.cart in add",
        "exception_type": "KeyError",
        "status": "unresolved",
        "count": 12,
        "users": 3,
        "customers": 1,
        "counts_exact": True,
        "first_seen": seen,
        "last_seen": seen,
        "first_release": "1.4.2",
        "last_release": "1.4.2",
        "env_first_seen": {"prod": seen},
        "env_last_seen": {"prod": seen},
        "env_count": {"prod": 12},
        "release_count": {"1.4.2": 12},
        "release_last_seen": {"1.4.2": seen},
        "resolved_at": None,
        "resolved_in_release": "",
        "ignored_until": None,
        "ignored_until_count": 0,
        "version": 3,
    }
    row.update(fields)
    return row


@pytest.fixture
def reader() -> FakeReader:
    fake = FakeReader()
    fake.answers["scopes"] = [
        {"app": "checkout", "env": "preprod"},
        {"app": "checkout", "env": "prod"},
    ]
    return fake


@pytest.fixture
def commands() -> FakeCommands:
    return FakeCommands()


#: argon2id with the least work, so tests that sign in stay fast.
FAST_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def identity(tmp_path: Any) -> Iterator[Identity]:
    store = build_identity(tmp_path / "identity.sqlite", AccessSettings(), FAST_HASH)
    yield store
    store.close()


@pytest.fixture
def audit() -> MemoryAudit:
    return MemoryAudit()


def make_app(
    reader: FakeReader,
    commands: FakeCommands,
    identity: Identity,
    audit: MemoryAudit,
    flags: FlagDesk | None = None,
) -> FastAPI:
    return create_app(
        Settings(), reader=reader, commands=commands, identity=identity, audit=audit, flags=flags
    )


@pytest.fixture
def client(
    reader: FakeReader, commands: FakeCommands, identity: Identity, audit: MemoryAudit
) -> Iterator[TestClient]:
    """A client signed in as an admin (every page and action allowed)."""
    with TestClient(make_app(reader, commands, identity, audit)) as test_client:
        sign_in_as(test_client, identity, "admin")
        yield test_client


@pytest.fixture
def desk_parts() -> tuple[Any, Any, Any]:
    """The alerting service over fakes: (desk, its configuration store, its rollups)."""
    from tests.unit.dashboard.desk_fixture import service_desk

    return service_desk()


@pytest.fixture
def web(
    reader: FakeReader, desk_parts: tuple[Any, Any, Any], identity: Identity, audit: MemoryAudit
) -> Iterator[TestClient]:
    """The dashboard with the alerting service, an editor signed in."""
    app = create_app(
        Settings(),
        reader=reader,
        commands=FakeCommands(),
        desk=desk_parts[0],
        identity=identity,
        audit=audit,
    )
    with TestClient(app) as test_client:
        sign_in_as(test_client, identity, "editor")
        yield test_client
