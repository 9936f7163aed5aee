"""Bringing in exceptions a team already logs to a relational database: rows of one table
(any SQLAlchemy URL) become error events, once (backfill) or continuously (follow).

Contract:

* takes: a table and a column mapping (``ts=logged_at,type=exc_class,message=msg,...``);
  rows are read in the order of a cursor column (the ``id`` mapping when given, else
  ``ts``), in pages;
* emits: one error event per row through :class:`producers.emitter.Emitter`, with an
  event id derived from the table and the row (its ``id``, else its content), so an
  event re-sent after a crash is recognisably the same one;
* remembers: the cursor of the last row Kafka acknowledged, in a JSON file under the
  state dir (written after the page's delivery, atomically); a follow or a second run
  starts after it. With a ``ts`` cursor, rows sharing the last timestamp are told apart
  by their ids, so a row inserted later with that same timestamp is still imported;
* skips (counted): rows without a usable ``ts`` or type, and rows older than the
  pipeline's validation accepts (``max_age``), which it would only dead-letter.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from shiftright_server.producers.gateway.stacktrace import parse_frames

#: Event fields a column can fill; ``id`` is the row's identity (and cursor when given).
FIELDS = (
    "id",
    "ts",
    "type",
    "message",
    "stacktrace",
    "app",
    "env",
    "release",
    "host",
    "instance",
    "user_id",
    "customer_id",
    "session_id",
    "route",
    "level",
    "handled",
)
_EVENT_FIELD = {"type": "exception_type", "message": "exception_message"}
_NAMESPACE = uuid.UUID("0b6f3f7e-5d0a-4f1e-9a77-3c6a1b2d9e41")


class ImportSetupError(ValueError):
    """A mapping or table that cannot be imported; the message says why."""


def parse_mapping(text: str) -> dict[str, str]:
    """``ts=logged_at,type=exc_class`` → {event field: column}; ts and type are required."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, column = part.partition("=")
        if not sep or not column.strip():
            raise ImportSetupError(f"{part!r}: expected field=column")
        if name.strip() not in FIELDS:
            raise ImportSetupError(f"unknown field {name.strip()!r}; known: {', '.join(FIELDS)}")
        mapping[name.strip()] = column.strip()
    missing = [f for f in ("ts", "type") if f not in mapping]
    if missing:
        raise ImportSetupError(
            f"the mapping needs {' and '.join(missing)} (e.g. ts=created_at,type=exc_type)"
        )
    return mapping


def to_utc(value: Any) -> datetime | None:
    """A timestamp column's value (datetime, ISO text, epoch seconds or ms) in UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value) / (1000 if float(value) > 1e11 else 1)
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str) and value.strip():
        try:
            return to_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class RowMapper:
    """One row (column → value) → an error event dict in the wire shape, or a skip reason."""

    mapping: dict[str, str]
    source: str  # names the table, for event ids
    defaults: dict[str, str] = field(default_factory=dict)  # app, env when not mapped
    max_age: timedelta = timedelta(days=30)

    def event(self, row: Mapping[str, Any], now: datetime) -> dict[str, Any] | str:
        get = {f: row.get(c) for f, c in self.mapping.items()}
        ts = to_utc(get.get("ts"))
        if ts is None:
            return "no_ts"
        if ts < now - self.max_age:
            return "too_old"
        if not _text(get.get("type")).strip():
            return "no_type"
        out: dict[str, Any] = {
            "kind": "error",
            "event_id": str(self.event_id(row)),
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "app": _text(get.get("app")) or self.defaults.get("app", "imported"),
            "env": _text(get.get("env")) or self.defaults.get("env", "prod"),
            "origin": "user",
        }
        for name, value in get.items():
            if name in ("id", "ts", "app", "env") or value is None:
                continue
            if name == "handled":
                out["handled"] = str(value).lower() in ("1", "true", "t", "yes", "y")
            else:
                out[_EVENT_FIELD.get(name, name)] = _text(value)
        if out.get("stacktrace"):
            out["frames"] = parse_frames(out["stacktrace"])
        out["attributes"] = {"import.source": self.source}
        return out

    def event_id(self, row: Mapping[str, Any]) -> uuid.UUID:
        if "id" in self.mapping:
            identity = _text(row.get(self.mapping["id"]))
        else:
            content = json.dumps({k: _text(v) for k, v in sorted(row.items())})
            identity = hashlib.sha256(content.encode()).hexdigest()
        return uuid.uuid5(_NAMESPACE, f"{self.source}/{identity}")


@dataclass
class Position:
    """Where the import stopped: the cursor of the last delivered row, and (for a ``ts``
    cursor) the ids of the rows delivered at exactly that value."""

    cursor: Any = None
    at_cursor: list[str] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        value = self.cursor.isoformat() if isinstance(self.cursor, datetime) else self.cursor
        kind = "datetime" if isinstance(self.cursor, datetime) else "plain"
        return {"cursor": value, "cursor_type": kind, "at_cursor": self.at_cursor}

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Position:
        value = raw.get("cursor")
        if raw.get("cursor_type") == "datetime" and value is not None:
            value = datetime.fromisoformat(value)
        return cls(value, list(raw.get("at_cursor", [])))


class PositionFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Position:
        if not self.path.exists():
            return Position()
        return Position.load(json.loads(self.path.read_text()))

    def write(self, position: Position) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(position.dump()))
        tmp.replace(self.path)


def position_path(state_dir: Path, url: str, table: str) -> Path:
    """One position file per (database, table); the URL's password is not part of the name."""
    from sqlalchemy.engine import make_url

    safe = make_url(url).render_as_string(hide_password=True).replace("***", "")
    digest = hashlib.sha256(f"{safe}|{table}".encode()).hexdigest()[:16]
    return state_dir / "import" / f"{table}-{digest}.json"


class Sink(Protocol):
    """Where events go (the Emitter, or a fake in tests)."""

    def emit_many(self, events: list[dict[str, Any]]) -> int: ...

    def flush(self, timeout: float = 30.0) -> int: ...


@dataclass
class ImportStats:
    rows: int = 0
    emitted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


class TableImporter:
    def __init__(
        self,
        url: str,
        table: str,
        mapper: RowMapper,
        positions: PositionFile,
        page_rows: int = 5_000,
    ) -> None:
        from sqlalchemy import MetaData, Table, create_engine

        self.engine = create_engine(url)
        self.table = Table(table, MetaData(), autoload_with=self.engine)
        self.mapper = mapper
        self.positions = positions
        self.page_rows = page_rows
        cursor = mapper.mapping.get("id", mapper.mapping["ts"])
        if cursor not in self.table.c:
            raise ImportSetupError(f"table {table} has no column {cursor!r}")
        for column in mapper.mapping.values():
            if column not in self.table.c:
                raise ImportSetupError(f"table {table} has no column {column!r}")
        self.cursor = self.table.c[cursor]
        self.by_ts = "id" not in mapper.mapping

    def pages(self, position: Position) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows after ``position`` (at and after it for a ts cursor), in order."""
        from sqlalchemy import select

        while True:
            query = select(self.table).order_by(self.cursor).limit(self.page_rows)
            if position.cursor is not None:
                op = self.cursor >= position.cursor if self.by_ts else self.cursor > position.cursor
                query = query.where(op)
            with self.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(query).mappings()]
            fresh = [r for r in rows if not self._delivered(r, position)]
            if not fresh:
                return
            yield fresh
            position = self._after(fresh, position)
            if len(rows) < self.page_rows:
                return

    def _delivered(self, row: dict[str, Any], position: Position) -> bool:
        return (
            self.by_ts
            and _same(row[self.cursor.name], position.cursor)
            and str(self.mapper.event_id(row)) in position.at_cursor
        )

    def _after(self, rows: list[dict[str, Any]], position: Position) -> Position:
        last = rows[-1][self.cursor.name]
        ids = [str(self.mapper.event_id(r)) for r in rows if _same(r[self.cursor.name], last)]
        if self.by_ts and _same(last, position.cursor):
            ids = position.at_cursor + ids
        return Position(last, ids if self.by_ts else [])

    def run_once(
        self, sink: Sink, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> ImportStats:
        """Import every row after the saved position; save the position page by page,
        each time after Kafka acknowledged the page's events."""
        stats = ImportStats()
        position = self.positions.read()
        for page in self.pages(position):
            events = []
            for row in page:
                made = self.mapper.event(row, now())
                if isinstance(made, str):
                    stats.skipped[made] += 1
                else:
                    events.append(made)
            stats.rows += len(page)
            if events and (sink.emit_many(events) != len(events) or sink.flush(60) != 0):
                raise RuntimeError(
                    "Kafka did not acknowledge every event; the position was not advanced"
                )
            stats.emitted += len(events)
            position = self._after(page, position)
            self.positions.write(position)
        return stats

    def follow(
        self,
        sink: Sink,
        interval: float,
        stop: Callable[[], bool],
        report: Callable[[ImportStats], None],
    ) -> None:
        """Import new rows every ``interval`` seconds until ``stop()``."""
        while not stop():
            stats = self.run_once(sink)
            if stats.rows:
                report(stats)
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline and not stop():
                time.sleep(0.1)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return to_utc(a) == to_utc(b)
    return bool(a == b)
