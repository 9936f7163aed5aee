"""Contract suite for the ClickHouse HTTP interface, as clickhouse-connect and curl use it.

By default it runs against the embedded warehouse the session started. Set
``SHIFTRIGHT_TEST_CLICKHOUSE_URL=http://user:pass@host:8123`` to run the same
assertions against a real ClickHouse server.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from shiftright_server.infra.warehouse.tuning import MERGE_TREE

from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def warehouse_url(clickhouse_url: str) -> str:
    """A ClickHouse HTTP URL: the real server named in the environment, or our warehouse."""
    return clickhouse_url.rstrip("/")


def connect(url: str, **kwargs: Any) -> Client:
    parts = urllib.parse.urlsplit(url)
    return clickhouse_connect.get_client(
        interface=parts.scheme or "http",
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 8123,
        username=urllib.parse.unquote(parts.username or "default"),
        password=urllib.parse.unquote(parts.password or ""),
        **kwargs,
    )


@pytest.fixture
def client(warehouse_url: str) -> Iterator[Client]:
    c = connect(warehouse_url)
    yield c
    c.close()


@pytest.fixture
def database(warehouse_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = connect(warehouse_url)
    admin.command(f"CREATE DATABASE {name}")
    yield name
    admin.command(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


@dataclass
class Raw:
    status: int
    headers: dict[str, str]
    body: bytes


def http_call(
    url: str,
    path_query: str = "/",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Raw:
    """One plain HTTP exchange, the way curl would make it; errors are returned, not raised."""
    parts = urllib.parse.urlsplit(url)
    all_headers = dict(headers or {})
    if parts.username:
        all_headers["X-ClickHouse-User"] = urllib.parse.unquote(parts.username)
        all_headers["X-ClickHouse-Key"] = urllib.parse.unquote(parts.password or "")
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    req = urllib.request.Request(base + path_query, data=body, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return Raw(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as err:
        return Raw(err.code, dict(err.headers.items()), err.read())


def q(sql: str, **params: str) -> str:
    return "/?" + urllib.parse.urlencode({"query": sql, **params})


# --- curl-style exchanges -------------------------------------------------------------


def test_ping_answers_ok(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, "/ping")
    assert (raw.status, raw.body) == (200, b"Ok.\n")


def test_get_select_one_returns_tab_separated_with_headers(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, q("SELECT 1"))
    assert raw.status == 200
    assert raw.body == b"1\n"
    assert raw.headers["X-ClickHouse-Format"] == "TabSeparated"
    assert raw.headers["X-ClickHouse-Timezone"]
    assert raw.headers["X-ClickHouse-Query-Id"]
    assert "X-ClickHouse-Server-Display-Name" in raw.headers


def test_post_body_with_format_json(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, "/", b"SELECT number AS n FROM numbers(3) FORMAT JSON")
    doc = json.loads(raw.body)
    assert raw.status == 200
    assert [row["n"] for row in doc["data"]] == ["0", "1", "2"] or [
        row["n"] for row in doc["data"]
    ] == [0, 1, 2]
    assert doc["rows"] == 3
    assert doc["meta"] == [{"name": "n", "type": "UInt64"}]


def test_query_param_and_body_are_joined_by_newline(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, q("SELECT 40 +"), b"2 AS answer")
    assert (raw.status, raw.body) == (200, b"42\n")


def test_default_format_param(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, q("SELECT 7 AS x", default_format="JSONEachRow"))
    assert json.loads(raw.body) == {"x": 7}


def test_get_cannot_modify(warehouse_url: str, database: str) -> None:
    assert (
        http_call(
            warehouse_url, "/", f"CREATE TABLE {database}.t (a Int32) ENGINE = Memory".encode()
        ).status
        == 200
    )
    raw = http_call(warehouse_url, q(f"INSERT INTO {database}.t VALUES (1)"))
    assert raw.status not in (200, 429, 503, 504)
    assert raw.headers["X-ClickHouse-Exception-Code"] == "164"
    assert http_call(warehouse_url, q(f"SELECT count() FROM {database}.t")).body == b"0\n"


def test_unknown_table_is_a_clickhouse_error(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, q("SELECT * FROM no_such_db_x.no_such_table"))
    assert raw.status == 404
    assert raw.headers["X-ClickHouse-Exception-Code"] in ("60", "81")
    assert raw.body.startswith(b"Code: ")
    assert b"DB::Exception" in raw.body


def test_syntax_error_is_bad_request(warehouse_url: str) -> None:
    raw = http_call(warehouse_url, "/", b"SELEC 1")
    assert raw.status == 400
    assert raw.headers["X-ClickHouse-Exception-Code"] == "62"
    assert raw.body.startswith(b"Code: 62. DB::Exception: Syntax error")


def test_post_inserts_in_text_formats(warehouse_url: str, database: str) -> None:
    t = f"{database}.t"
    http_call(
        warehouse_url,
        "/",
        f"CREATE TABLE {t} (a UInt32, s String) ENGINE = MergeTree ORDER BY a".encode(),
    )
    bodies = [
        f"INSERT INTO {t} VALUES (1, 'v')".encode(),
        f'INSERT INTO {t} FORMAT CSV\n2,"c"\n3,"c"\n'.encode(),
        f"INSERT INTO {t} FORMAT TSV\n4\tt\n".encode(),
        f'INSERT INTO {t} FORMAT JSONEachRow {{"a": 5, "s": "j"}}\n'.encode(),
    ]
    for body in bodies:
        raw = http_call(warehouse_url, "/", body)
        assert raw.status == 200, raw.body
        assert "X-ClickHouse-Format" not in raw.headers
    raw = http_call(warehouse_url, q(f"INSERT INTO {t} FORMAT CSV"), b"6,q\n")
    assert raw.status == 200, raw.body
    got = http_call(warehouse_url, q(f"SELECT a, s FROM {t} ORDER BY a FORMAT CSV"))
    assert got.body == b'1,"v"\n2,"c"\n3,"c"\n4,"t"\n5,"j"\n6,"q"\n'


def test_compressed_request_and_response_bodies(warehouse_url: str) -> None:
    raw = http_call(
        warehouse_url,
        q("", enable_http_compression="1"),
        gzip.compress(b"SELECT number FROM numbers(1000) FORMAT TSV"),
        {"Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
    )
    assert raw.status == 200
    assert raw.headers.get("Content-Encoding") == "gzip"
    lines = gzip.decompress(raw.body).splitlines()
    assert lines[0] == b"0" and lines[-1] == b"999" and len(lines) == 1000


def test_query_parameters_over_url(warehouse_url: str) -> None:
    params = {"param_s": "it's\\tok", "param_n": "41"}
    raw = http_call(
        warehouse_url, q("SELECT {s:String} AS s, {n:UInt8} + 1 AS n FORMAT JSONEachRow", **params)
    )
    assert json.loads(raw.body) == {"s": "it's\tok", "n": 42}


# --- clickhouse-connect ---------------------------------------------------------------


def test_client_handshake_and_command(client: Client) -> None:
    assert client.server_version
    assert client.command("SELECT 42") == 42
    assert client.command("SELECT 'a', 'b'") == ["a", "b"]


def test_query_many_types(client: Client) -> None:
    result = client.query(
        "SELECT toDateTime64('2024-05-06 07:08:09.123', 3, 'UTC') AS ts,"
        " map('a', 1, 'b', 2) AS m, [1, 2, 3] AS arr, CAST(NULL AS Nullable(Int32)) AS nul,"
        " toNullable(5) AS nn, toLowCardinality('lc') AS lc, toDecimal64(12.34, 2) AS dec,"
        " toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0') AS id, true AS flag,"
        " toDate('2024-02-29') AS day, -3::Int8 AS small, 2.5::Float64 AS f, 'héllo' AS s"
    )
    row = dict(zip(result.column_names, result.result_rows[0], strict=True))
    ts = row["ts"]
    ts_utc = ts.astimezone(dt.UTC).replace(tzinfo=None) if ts.tzinfo else ts
    assert ts_utc == dt.datetime(2024, 5, 6, 7, 8, 9, 123000)
    assert row["m"] == {"a": 1, "b": 2}
    assert row["arr"] == [1, 2, 3]
    assert row["nul"] is None and row["nn"] == 5
    assert row["lc"] == "lc"
    assert row["dec"] == Decimal("12.34")
    assert row["id"] == uuid.UUID("61f0c404-5cb3-11e7-907b-a6006ad3dba0")
    assert row["flag"] is True
    assert row["day"] == dt.date(2024, 2, 29)
    assert (row["small"], row["f"], row["s"]) == (-3, 2.5, "héllo")


def test_empty_result_has_no_rows(client: Client) -> None:
    assert client.query("SELECT number FROM numbers(10) WHERE number > 100").result_rows == []


EVENT_DDL = (
    "CREATE TABLE {db}.events (id UInt64, kind LowCardinality(String), ts DateTime64(3, 'UTC'),"
    " attrs Map(String, String), tags Array(String), score Nullable(Float64))"
    " ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100"
)
EVENT_COLUMNS = ["id", "kind", "ts", "attrs", "tags", "score"]


def _events(n: int, start: int = 0) -> list[list[Any]]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return [
        [
            i,
            f"k{i % 3}",
            base + dt.timedelta(seconds=i),
            {"i": str(i)},
            ["t"],
            None if i % 2 else i / 2,
        ]
        for i in range(start, start + n)
    ]


def test_insert_row_and_column_oriented(client: Client, database: str) -> None:
    client.command(EVENT_DDL.format(db=database))
    table = f"{database}.events"
    rows = _events(100)
    summary = client.insert(table, rows, column_names=EVENT_COLUMNS)
    assert summary.written_rows == 100
    columns = [list(col) for col in zip(*_events(50, start=100), strict=True)]
    client.insert(table, columns, column_names=EVENT_COLUMNS, column_oriented=True)
    got = client.query(f"SELECT count(), sum(id), countIf(score IS NULL) FROM {table}").result_rows
    assert got == [(150, sum(range(150)), 75)]
    back = client.query(f"SELECT * FROM {table} WHERE id = 4").result_rows[0]
    assert back[1:2] == ("k1",) and back[3:] == ({"i": "4"}, ["t"], 2.0)


def test_insert_deduplication_token(client: Client, database: str) -> None:
    client.command(EVENT_DDL.format(db=database))
    table = f"{database}.events"
    rows = _events(1000)
    settings = {"insert_deduplication_token": "batch-0-1000"}
    client.insert(table, rows, column_names=EVENT_COLUMNS, settings=settings)
    client.insert(table, rows, column_names=EVENT_COLUMNS, settings=settings)
    assert client.command(f"SELECT count() FROM {table}") == 1000
    client.insert(
        table, rows, column_names=EVENT_COLUMNS, settings={"insert_deduplication_token": "other"}
    )
    assert client.command(f"SELECT count() FROM {table}") == 2000
    # The token applied to those inserts only: a later plain insert is not deduplicated.
    client.insert(table, rows[:10], column_names=EVENT_COLUMNS)
    client.insert(table, _events(10, start=5000), column_names=EVENT_COLUMNS)
    assert client.command(f"SELECT count() FROM {table}") == 2020


def test_server_side_parameters(client: Client) -> None:
    tricky = "quote ' backslash \\ tab \t newline \n unicode é"
    result = client.query(
        "SELECT {s:String} AS s, {n:UInt32} AS n, {xs:Array(String)} AS xs",
        parameters={"s": tricky, "n": 7, "xs": ["a'b", "c"]},
    )
    assert result.result_rows == [(tricky, 7, ["a'b", "c"])]


def test_client_side_parameters(client: Client) -> None:
    result = client.query("SELECT %(s)s AS s, %(n)s AS n", parameters={"s": "it's", "n": 3})
    assert result.result_rows == [("it's", 3)]


def test_unknown_table_raises_database_error(client: Client) -> None:
    with pytest.raises(DatabaseError) as caught:
        client.query("SELECT * FROM default.surely_missing_table")
    assert "60" in str(caught.value)
    assert "UNKNOWN_TABLE" in str(caught.value)


def test_syntax_error_raises_database_error(client: Client) -> None:
    with pytest.raises(DatabaseError) as caught:
        client.command("SELEC 1")
    assert "62" in str(caught.value)


def test_session_keeps_temporary_tables_and_set(warehouse_url: str) -> None:
    first = connect(warehouse_url, session_id=f"s-{uuid.uuid4().hex}")
    other = connect(warehouse_url, session_id=f"s-{uuid.uuid4().hex}")
    first.command("CREATE TEMPORARY TABLE scratch (a Int32)")
    first.command("INSERT INTO scratch VALUES (1), (2), (3)")
    first.command("SET max_block_size = 4321")
    assert first.command("SELECT count() FROM scratch") == 3
    assert first.command("SELECT getSetting('max_block_size')") == 4321
    with pytest.raises(DatabaseError):
        other.command("SELECT count() FROM scratch")
    assert other.command("SELECT getSetting('max_block_size')") != 4321


def test_url_settings_apply_to_one_query_only(client: Client) -> None:
    default = client.command("SELECT getSetting('max_block_size')")
    with_setting = client.query(
        "SELECT getSetting('max_block_size')", settings={"max_block_size": 1234}
    ).result_rows
    assert with_setting == [(1234,)]
    assert client.command("SELECT getSetting('max_block_size')") == default


def test_database_of_the_client(warehouse_url: str, database: str) -> None:
    c = connect(warehouse_url, database=database)
    c.command("CREATE TABLE local (a Int32) ENGINE = MergeTree ORDER BY a")
    c.insert("local", [[1], [2]], column_names=["a"])
    assert c.command("SELECT currentDatabase()") == database
    assert c.command(f"SELECT count() FROM {database}.local") == 2


@pytest.mark.parametrize("compress", [True, False, "lz4", "zstd", "gzip"])
def test_compression_on_and_off(warehouse_url: str, database: str, compress: bool | str) -> None:
    c = connect(warehouse_url, compress=compress)
    c.command(EVENT_DDL.format(db=database))
    c.insert(f"{database}.events", _events(20_000), column_names=EVENT_COLUMNS)
    result = c.query(f"SELECT id, kind, attrs FROM {database}.events ORDER BY id")
    assert len(result.result_rows) == 20_000
    assert result.result_rows[-1] == (19_999, "k1", {"i": "19999"})


def test_streamed_query_result(client: Client) -> None:
    total = 0
    rows = 0
    with client.query_row_block_stream("SELECT number FROM numbers(1000000)") as stream:
        for block in stream:
            rows += len(block)
            total += sum(r[0] for r in block)
    assert (rows, total) == (1_000_000, sum(range(1_000_000)))


def test_error_mid_stream_is_not_silent(client: Client) -> None:
    sql = "SELECT throwIf(number = 700000, 'boom') FROM numbers(1000000)"
    # A broken stream may surface as any client error; it must not end quietly.
    with pytest.raises(Exception), client.query_row_block_stream(sql) as stream:  # noqa: B017
        for _ in stream:
            pass


def test_raw_insert_native_roundtrip(client: Client, database: str) -> None:
    client.command(f"CREATE TABLE {database}.src (a UInt32, s String) ENGINE = Memory")
    client.command(f"INSERT INTO {database}.src SELECT number, toString(number) FROM numbers(10)")
    native = client.raw_query(f"SELECT * FROM {database}.src ORDER BY a", fmt="Native")
    client.command(f"CREATE TABLE {database}.dst (a UInt32, s String) ENGINE = Memory")
    client.raw_insert(f"{database}.dst", ["a", "s"], insert_block=native, fmt="Native")
    assert client.command(f"SELECT sum(a), count() FROM {database}.dst") == ["45", "10"]


def test_concurrent_clients(warehouse_url: str, database: str) -> None:
    admin = connect(warehouse_url)
    admin.command(EVENT_DDL.format(db=database))
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            c = connect(warehouse_url)
            for batch in range(5):
                start = (worker * 5 + batch) * 100
                c.insert(f"{database}.events", _events(100, start), column_names=EVENT_COLUMNS)
                c.query(f"SELECT count() FROM {database}.events")
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    assert admin.command(f"SELECT count() FROM {database}.events") == 2000


# --- embedded warehouse only: durability ---------------------------------------------

PERSISTENT_DDL = [
    "CREATE DATABASE app",
    "CREATE TABLE app.raw (id UInt64, kind String, n UInt32) ENGINE = MergeTree ORDER BY id"
    " SETTINGS non_replicated_deduplication_window = 1000",
    "CREATE TABLE app.latest (id UInt64, n UInt32, v UInt64)"
    " ENGINE = ReplacingMergeTree(v) ORDER BY id",
    # A materialized view's target deduplicates retried inserts only with its own window.
    "CREATE TABLE app.totals (kind String, n AggregateFunction(sum, UInt32))"
    " ENGINE = AggregatingMergeTree ORDER BY kind"
    " SETTINGS non_replicated_deduplication_window = 1000",
    "CREATE MATERIALIZED VIEW app.totals_mv TO app.totals AS"
    " SELECT kind, sumState(n) AS n FROM app.raw GROUP BY kind",
]


def test_tables_data_and_engine_settings_survive_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    proc, url = start_warehouse(data_dir, free_port())
    try:
        c = connect(url)
        for ddl in PERSISTENT_DDL:
            c.command(ddl)
        rows = [[i, "a" if i % 2 else "b", 1] for i in range(100)]
        c.insert(
            "app.raw",
            rows,
            column_names=["id", "kind", "n"],
            settings={"insert_deduplication_token": "t1"},
        )
        c.insert("app.latest", [[1, 5, 1], [1, 6, 2]], column_names=["id", "n", "v"])
    finally:
        stop_warehouse(proc)
    assert proc.returncode == 0
    proc, url = start_warehouse(data_dir, free_port())
    try:
        c = connect(url)
        c.insert(
            "app.raw",
            rows,
            column_names=["id", "kind", "n"],
            settings={"insert_deduplication_token": "t1"},
        )
        assert c.command("SELECT count() FROM app.raw") == 100
        totals = c.query("SELECT kind, sumMerge(n) FROM app.totals GROUP BY kind ORDER BY kind")
        assert totals.result_rows == [("a", 50), ("b", 50)]
        assert c.command("SELECT n FROM app.latest FINAL") == 6
        # chDB ignores a configuration file it cannot find without a word: the engine
        # reports the MergeTree defaults of infra.warehouse.tuning as its own.
        for name, value in MERGE_TREE.items():
            sql = "SELECT value FROM system.merge_tree_settings WHERE name = {n:String}"
            assert str(c.command(sql, parameters={"n": name})) == value
        # Small parts are written as one file each, and read back after the restart.
        kinds = "SELECT DISTINCT part_storage_type FROM system.parts WHERE database = 'app'"
        assert c.query(kinds).result_rows == [("Packed",)]
    finally:
        stop_warehouse(proc)


# --- body framing ---------------------------------------------------------------------


def _post_chunked(url: str, path_query: str, pieces: list[bytes]) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 8123, timeout=30)
    headers = {"Transfer-Encoding": "chunked"}
    if parts.username:
        headers["X-ClickHouse-User"] = urllib.parse.unquote(parts.username)
        headers["X-ClickHouse-Key"] = urllib.parse.unquote(parts.password or "")
    conn.request("POST", path_query, body=iter(pieces), headers=headers, encode_chunked=True)
    resp = conn.getresponse()
    result = resp.status, resp.read()
    conn.close()
    return result


def test_insert_statement_split_across_chunks(warehouse_url: str, database: str) -> None:
    table = f"{database}.t"
    http_call(
        warehouse_url, "/", f"CREATE TABLE {table} (a UInt8, s String) ENGINE = Memory".encode()
    )
    pieces = [f"INSERT INTO {table} FORMAT TabSep".encode(), b"arated", b"\n1\tx\n2", b"\ty\n"]
    status, body = _post_chunked(warehouse_url, "/", pieces)
    assert status == 200, body
    got = http_call(warehouse_url, q(f"SELECT a, s FROM {table} ORDER BY a FORMAT CSV"))
    assert got.body == b'1,"x"\n2,"y"\n'


def test_native_data_starting_with_a_newline_byte(
    warehouse_url: str, client: Client, database: str
) -> None:
    # Ten columns: the Native block starts with the byte 0x0A, the same as "\n".
    cols = ", ".join(f"c{i} UInt8" for i in range(10))
    client.command(f"CREATE TABLE {database}.wide ({cols}) ENGINE = Memory")
    client.insert(f"{database}.wide", [list(range(10))], column_names=[f"c{i}" for i in range(10)])
    native = client.raw_query(f"SELECT * FROM {database}.wide", fmt="Native")
    assert native[:1] == b"\n"
    for path_query, body in [
        (q(f"INSERT INTO {database}.wide FORMAT Native"), native),
        ("/", f"INSERT INTO {database}.wide FORMAT Native\n".encode() + native),
    ]:
        assert http_call(warehouse_url, path_query, body).status == 200
    assert client.command(f"SELECT count(), sum(c9) FROM {database}.wide") == ["3", "27"]


def test_large_parameters_sent_as_form(client: Client) -> None:
    big = "x" * 20_000 + "'\\"
    result = client.query(
        "SELECT length({big:String}), right({big:String}, 2)", parameters={"big": big}
    )
    assert result.result_rows == [(20_002, "'\\")]


def test_unknown_session_with_session_check(warehouse_url: str) -> None:
    raw = http_call(
        warehouse_url, q("SELECT 1", session_id=f"missing-{uuid.uuid4().hex}", session_check="1")
    )
    assert raw.status not in (200, 429, 503, 504)
    assert raw.headers["X-ClickHouse-Exception-Code"] == "372"
