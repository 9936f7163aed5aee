"""One way to reach the warehouse: clickhouse-connect over HTTP, whether the URL points
at the embedded warehouse or at a ClickHouse server/cluster/cloud."""

from __future__ import annotations

from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from shiftright_server.infra.settings import ClickHouseSettings, Settings
from shiftright_server.schemas.cluster import Layout, layout_for


def get_client(
    settings: ClickHouseSettings, /, *, database: str | None = None, **kwargs: Any
) -> Client:
    """A clickhouse-connect client for the configured URL (database optional)."""
    options: dict[str, Any] = {
        "dsn": settings.http_url,
        "connect_timeout": 5,
        "send_receive_timeout": 60,
        "compress": "lz4",
        "autogenerate_session_id": False,
    }
    if database:
        options["database"] = database
    if settings.user is not None:
        options["username"] = settings.user
        options["password"] = settings.password.get_secret_value() if settings.password else ""
    if settings.cluster:
        # An insert into a Distributed table returns once every shard has stored its
        # block, so a stored insert is a durable one and a retry deduplicates per shard.
        options["settings"] = {"insert_distributed_sync": 1}
    options.update(kwargs)
    return clickhouse_connect.get_client(**options)


def schema_layout(settings: ClickHouseSettings) -> Layout:
    """Plain tables on one server, or replicated + Distributed tables on the cluster."""
    return layout_for(settings.cluster, settings.replica_path, settings.replica_name)


def apply_schema(settings: Settings) -> None:
    """Create the configured database and apply pending migrations (idempotent)."""
    from shiftright_server.schemas.migrate import migrate

    ch = settings.clickhouse
    # A migration that fills new tables from existing rows (0013) runs one long INSERT.
    migrate(get_client(ch, send_receive_timeout=3600), ch.database, schema_layout(ch))
