"""The embedded warehouse with accounts, over HTTP as any ClickHouse client speaks it:
analysts read and cannot write, the writer writes, nobody else gets in, and read-only
never reaches the host's files."""

from __future__ import annotations

import base64
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from shiftright_server.infra.warehouse.accounts import Accounts

from tests.integration.warehouse_fixture import discard_warehouse, free_port, start_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("accounts")
    proc, url = start_warehouse(root / "data", free_port())
    yield url, root / "accounts.json"
    discard_warehouse(proc)


def _post(url: str, sql: str, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=sql.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_without_accounts_read_only_still_keeps_to_the_warehouse(
    warehouse: tuple[str, Path],
) -> None:
    url, _ = warehouse
    client = clickhouse_connect.get_client(dsn=url)
    assert client.command("SELECT 1") == 1
    # what the dashboard's SQL console sends: readonly, plus a table function on the host
    with pytest.raises(DatabaseError, match="ACCESS_DENIED") as refused:
        client.query(
            "SELECT * FROM file('/etc/hostname', 'LineAsString')", settings={"readonly": 2}
        )
    assert "reaches beyond the warehouse's tables" in str(refused.value)


def test_accounts_decide_who_reads_and_who_writes(warehouse: tuple[str, Path]) -> None:
    url, path = warehouse
    accounts = Accounts(path)
    writer_key = accounts.add("pipeline", "writer")
    reader_key = accounts.add("ana@example.com", "reader")
    try:
        writer = clickhouse_connect.get_client(dsn=url, username="pipeline", password=writer_key)
        writer.command(
            "CREATE TABLE IF NOT EXISTS default.t (n UInt8) ENGINE = MergeTree ORDER BY n"
        )
        writer.insert("default.t", [[1], [2]], column_names=["n"])

        analyst = clickhouse_connect.get_client(
            dsn=url, username="ana@example.com", password=reader_key
        )
        assert analyst.command("SELECT sum(n) FROM default.t") == 3
        for statement in ("INSERT INTO default.t VALUES (9)", "DROP TABLE default.t"):
            with pytest.raises(DatabaseError, match="READONLY"):
                analyst.command(statement, settings={"readonly": 0})
        assert writer.command("SELECT count() FROM default.t") == 2  # nothing changed

        basic = "Basic " + base64.b64encode(f"ana@example.com:{reader_key}".encode()).decode()
        assert _post(url, "SELECT sum(n) FROM default.t", {"Authorization": basic}) == (200, "3\n")
        status, body = _post(url, "SELECT 1", {})
        assert status == 401 and "AUTHENTICATION_FAILED" in body
        status, body = _post(
            url, "SELECT 1", {"X-ClickHouse-User": "ana@example.com", "X-ClickHouse-Key": "guess"}
        )
        assert status == 401 and "Authentication failed" in body
    finally:
        accounts.remove("ana@example.com")
        accounts.remove("pipeline")
    assert _post(url, "SELECT 1", {}) == (200, "1\n")  # accounts off again


def test_the_cli_makes_the_writer_and_the_pipeline_uses_it(tmp_path: Path) -> None:
    env = {"SHIFTRIGHT_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    added = subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", "users", "warehouse", "add", "bob"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    assert "Accounts are on" in added.stdout and "shiftright-writer" in added.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "shiftright_server.infra.cli", "users", "warehouse", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert "bob" in listed.stdout and "reader" in listed.stdout
    assert "shiftright-writer" in listed.stdout and "writer" in listed.stdout
    key = added.stdout.split("shown once:")[1].split()[0]
    assert key not in (tmp_path / "warehouse" / "accounts.json").read_text()
    assert (tmp_path / "warehouse" / "writer.key").stat().st_mode & 0o077 == 0
