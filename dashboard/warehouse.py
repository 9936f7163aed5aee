"""How the dashboard reads the warehouse: clickhouse-connect over HTTP, with server-side
parameters only (no values spliced into SQL).

Failures split in two: :class:`WarehouseDown` (cannot reach it: pages render with a banner
and retry by themselves) and :class:`QueryFailed` (it answered with an error). The client
is made on first use and dropped after a connection failure, so a warehouse that comes
back is found again without a restart.
"""

from __future__ import annotations

import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from shiftright_server.infra.clickhouse import get_client
from shiftright_server.infra.settings import ClickHouseSettings

Row = dict[str, Any]
#: The queries one request ran, as (panel, ms, how): the Server-Timing header reports
#: them; ``how`` is '' for a query sent to the warehouse, ``hit`` or ``coalesced`` for an
#: answer from the panel cache (:mod:`.panel_cache`).
QUERY_TIMINGS: ContextVar[list[tuple[str, float, str]] | None] = ContextVar(
    "query_timings", default=None
)


class WarehouseDown(Exception):
    """The warehouse cannot be reached."""


class QueryFailed(Exception):
    """The warehouse answered with an error (its first line is the message)."""


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    elapsed_ms: float

    def dicts(self) -> list[Row]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class Reader(Protocol):
    """What the pages need from the warehouse (a fake in unit tests)."""

    url: str

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result: ...

    def close(self) -> None: ...


class WarehouseReader:
    """The real reader: one shared clickhouse-connect client, remade after a failure."""

    def __init__(self, settings: ClickHouseSettings) -> None:
        self._settings = settings
        self.url = settings.http_url
        self._client: Client | None = None
        self._lock = threading.Lock()

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        began = time.perf_counter()
        client = self._connected()
        try:
            got = client.query(sql, parameters=params, settings=settings or {})
        except OperationalError as exc:
            self._drop(client)
            raise WarehouseDown(_first_line(exc)) from exc
        except DatabaseError as exc:
            raise QueryFailed(_first_line(exc)) from exc
        elapsed = (time.perf_counter() - began) * 1000
        record_timing(sql, elapsed)
        rows = [tuple(_aware(v) for v in r) for r in got.result_rows]
        return Result(list(got.column_names), rows, elapsed)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connected(self) -> Client:
        with self._lock:
            if self._client is None:
                try:
                    self._client = get_client(
                        self._settings,
                        database=self._settings.database,
                        connect_timeout=2,
                        send_receive_timeout=30,
                    )
                except (OperationalError, OSError) as exc:
                    raise WarehouseDown(_first_line(exc)) from exc
                except DatabaseError as exc:  # e.g. the database does not exist yet
                    raise WarehouseDown(_first_line(exc)) from exc
            return self._client

    def _drop(self, client: Client) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        client.close()


def record_timing(sql: str, ms: float, how: str = "") -> None:
    """Note a query of this request for its ``Server-Timing`` header."""
    timings = QUERY_TIMINGS.get()
    if timings is not None:
        timings.append((_panel(sql), ms, how))


def _panel(sql: str) -> str:
    found = re.match(r"/\* dashboard\.([a-z_]+) \*/", sql)
    return found[1] if found else "sql"


def _aware(value: Any) -> Any:
    """UTC datetimes as timezone-aware values (the client returns UTC columns naive)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return {k: _aware(v) for k, v in value.items()}
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
