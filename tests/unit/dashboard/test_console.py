"""The SQL console: read-only with limits at the warehouse, rows capped, errors shown."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from shiftright_server.dashboard.app import create_app
from shiftright_server.dashboard.warehouse import QueryFailed, Result
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.settings import DashboardSettings, Settings

from tests.unit.dashboard.conftest import XSS, FakeCommands, FakeReader, sign_in_as


class ConsoleReader(FakeReader):
    """Answers console queries (which carry no panel tag) with ``rows``."""

    def __init__(self, rows: list[tuple[Any, ...]], error: str = "") -> None:
        super().__init__()
        self.rows, self.error = rows, error
        self.settings: list[dict[str, Any]] = []

    def query(
        self, sql: str, params: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Result:
        if not sql.startswith("/* dashboard."):
            self.settings.append(settings or {})
            if self.error:
                raise QueryFailed(self.error)
            return Result(["n", "text"], self.rows, 1.5)
        return super().query(sql, params, settings)


def _client(reader: ConsoleReader, identity: Identity, max_rows: int = 3) -> TestClient:
    settings = Settings(dashboard=DashboardSettings(sql_max_rows=max_rows, sql_max_seconds=7))
    app = create_app(
        settings, reader=reader, commands=FakeCommands(), identity=identity, audit=MemoryAudit()
    )
    client = TestClient(app)
    sign_in_as(client, identity, "viewer")
    return client


def test_queries_run_read_only_with_a_time_limit_and_rows_are_capped(identity: Identity) -> None:
    reader = ConsoleReader([(i, f"row {i}") for i in range(4)])
    page = _client(reader, identity).get("/sql", params={"q": "SELECT number FROM numbers(10)"})
    assert page.status_code == 200
    assert reader.settings == [
        {
            "readonly": 2,
            "max_execution_time": 7,
            "max_result_rows": 4,
            "result_overflow_mode": "break",
        }
    ]
    assert "3 rows (the first 3; there are more)" in page.text
    assert "row 2" in page.text and "row 3" not in page.text
    assert "SELECT number FROM numbers(10)</textarea>" in page.text  # the query stays shareable


def test_a_refused_query_shows_the_warehouse_message(identity: Identity) -> None:
    reader = ConsoleReader(
        [], error="Code: 164. DB::Exception: Cannot execute query in readonly mode"
    )
    page = _client(reader, identity).get("/sql", params={"q": "DROP TABLE events_usage"})
    assert page.status_code == 400
    assert "Cannot execute query in readonly mode" in page.text


def test_csv_download_has_a_header_and_quotes_what_needs_it(identity: Identity) -> None:
    reader = ConsoleReader([(1, "a,b"), (2, XSS)])
    answer = _client(reader, identity).get("/sql.csv", params={"q": "SELECT 1"})
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines() == ["n,text", '1,"a,b"', f"2,{XSS}"]


def test_values_from_the_warehouse_are_escaped_in_the_table(identity: Identity) -> None:
    page = _client(ConsoleReader([(1, XSS)]), identity).get("/sql", params={"q": "SELECT 1"})
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(2)&gt;" in page.text
