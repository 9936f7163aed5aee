"""``shiftright import errors`` core against SQLite: mapping, backfill, follow from the
saved position (also with a timestamp cursor and ties), skips, and what a bad mapping says."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shiftright_server.producers.importer import (
    ImportSetupError,
    PositionFile,
    RowMapper,
    TableImporter,
    parse_mapping,
    position_path,
)
from shiftright_server.schemas.events import ErrorEvent

NOW = datetime.now(UTC).replace(microsecond=0)
TRACE = """Traceback (most recent call last):
  File "/srv/shop/checkout/cart.py", line 42, in add_item
    price = prices[sku]
KeyError: 'sku-123'"""


class FakeSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit_many(self, events: list[dict[str, Any]]) -> int:
        self.events += events
        return len(events)

    def flush(self, timeout: float = 30.0) -> int:
        return 0


def make_db(path: Path, rows: list[tuple[Any, ...]]) -> str:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS app_errors (id INTEGER PRIMARY KEY, logged_at TEXT, "
            "exc_class TEXT, msg TEXT, trace TEXT, service TEXT, who TEXT)"
        )
        db.executemany(
            "INSERT INTO app_errors (logged_at, exc_class, msg, trace, service, who) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return f"sqlite:///{path}"


def row(minutes_ago: float, exc: str = "KeyError", who: str = "u1") -> tuple[Any, ...]:
    ts = (NOW - timedelta(minutes=minutes_ago)).isoformat()
    return (ts, exc, "'sku-123'", TRACE, "checkout", who)


def importer(url: str, mapping: str, tmp_path: Path) -> TableImporter:
    mapper = RowMapper(parse_mapping(mapping), "app_errors", {"env": "prod"})
    positions = PositionFile(position_path(tmp_path / "state", url, "app_errors"))
    return TableImporter(url, "app_errors", mapper, positions, page_rows=3)


MAP = "id=id,ts=logged_at,type=exc_class,message=msg,stacktrace=trace,app=service,user_id=who"


def test_backfill_then_only_new_rows_each_run(tmp_path: Path) -> None:
    url = make_db(tmp_path / "e.db", [row(10 - i) for i in range(7)])
    sink = FakeSink()
    stats = importer(url, MAP, tmp_path).run_once(sink)
    assert (stats.rows, stats.emitted) == (7, 7)
    events = [ErrorEvent.model_validate(e) for e in sink.events]  # valid events
    first = events[0]
    assert (first.app, first.env, first.exception_type, first.user_id) == (
        "checkout",
        "prod",
        "KeyError",
        "u1",
    )
    assert [(f.module, f.function, f.lineno, f.in_app) for f in first.frames] == [
        ("checkout.cart", "add_item", 42, True)
    ]  # parsed from the stack text, so grouping uses the in-app frames
    assert importer(url, MAP, tmp_path).run_once(sink).rows == 0  # a new process: nothing new
    make_db(tmp_path / "e.db", [row(1, "ValueError"), row(0.5)])
    stats = importer(url, MAP, tmp_path).run_once(sink)
    assert (stats.rows, stats.emitted) == (2, 2)
    assert [e["exception_type"] for e in sink.events[-2:]] == ["ValueError", "KeyError"]
    assert len({e["event_id"] for e in sink.events}) == 9


def test_a_timestamp_cursor_imports_late_rows_that_share_the_last_timestamp(
    tmp_path: Path,
) -> None:
    same = (NOW - timedelta(minutes=1)).isoformat()
    url = make_db(tmp_path / "e.db", [row(3), (same, "KeyError", "m", "", "a", "u1")])
    sink = FakeSink()
    mapping = "ts=logged_at,type=exc_class,message=msg,app=service,user_id=who"
    assert importer(url, mapping, tmp_path).run_once(sink).emitted == 2
    make_db(tmp_path / "e.db", [(same, "KeyError", "m", "", "a", "u2")])  # same ts, inserted late
    assert importer(url, mapping, tmp_path).run_once(sink).emitted == 1
    assert importer(url, mapping, tmp_path).run_once(sink).emitted == 0
    assert [e["user_id"] for e in sink.events] == ["u1", "u1", "u2"]


def test_rows_without_time_or_type_and_too_old_rows_are_counted_not_sent(tmp_path: Path) -> None:
    url = make_db(
        tmp_path / "e.db",
        [
            row(1),
            row(60 * 24 * 40),
            ("not a time", "E", "", "", "a", ""),
            (NOW.isoformat(), "", "", "", "a", ""),
        ],
    )
    sink = FakeSink()
    stats = importer(url, MAP, tmp_path).run_once(sink)
    assert stats.emitted == 1 and len(sink.events) == 1
    assert dict(stats.skipped) == {"too_old": 1, "no_ts": 1, "no_type": 1}


def test_a_bad_mapping_names_the_problem(tmp_path: Path) -> None:
    url = make_db(tmp_path / "e.db", [])
    with pytest.raises(ImportSetupError, match="needs ts"):
        parse_mapping("type=exc_class")
    with pytest.raises(ImportSetupError, match="unknown field 'colour'"):
        parse_mapping("ts=a,type=b,colour=c")
    with pytest.raises(ImportSetupError, match="no column 'nope'"):
        importer(url, "ts=logged_at,type=nope", tmp_path)


def test_the_position_file_does_not_keep_the_password(tmp_path: Path) -> None:
    path = position_path(tmp_path, "postgresql+psycopg://me:s3cret@db:5432/app", "errs")
    assert "s3cret" not in str(path)
    assert path == position_path(tmp_path, "postgresql+psycopg://me:other@db:5432/app", "errs")
