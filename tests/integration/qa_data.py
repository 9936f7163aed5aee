"""Rows for the QA views: events stored as the sink stores them (no Kafka), error rows as
the grouping step stores them, and the constructed prod, preprod and release traffic whose
view results the QA tests compute by hand."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from shiftright_server.schemas.events import EVENT_ADAPTER
from shiftright_server.schemas.positions import Position
from shiftright_server.sinks.rows import COLUMNS, event_row

from tests.builders import iso

TABLES = {"usage": "events_usage", "error": "events_error", "health": "events_health"}
TABLES["change"] = "events_change"


def store(client: Any, events: list[dict[str, Any]]) -> None:
    """Validate each event like the pipeline does and insert it where the sink would."""
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for offset, raw in enumerate(events):
        event = EVENT_ADAPTER.validate_python(raw)
        pos = Position(f"events.{event.kind}.v1", 0, offset)
        rows[TABLES[event.kind]].append(event_row(event, 0, pos))
    for table, batch in rows.items():
        client.insert(table, batch, column_names=list(COLUMNS[table]))


def request(
    ts: datetime, app: str, env: str, release: str, name: str, **fields: Any
) -> dict[str, Any]:
    """A request's usage event, ``name`` = "METHOD /route"."""
    method, route = name.split(" ", 1)
    event: dict[str, Any] = {"kind": "usage", "event_id": str(uuid.uuid4()), "ts": iso(ts)}
    event.update(app=app, env=env, release=release, name=name, route=route, method=method)
    event.update(status_code=200, duration_ms=10.0)
    event.update(fields)
    return event


def requests(
    count: int, start: datetime, app: str, env: str, release: str, name: str, **fields: Any
) -> list[dict[str, Any]]:
    """``count`` requests one second apart from ``start``."""
    return [
        request(start + timedelta(seconds=i), app, env, release, name, **fields)
        for i in range(count)
    ]


def tested(ts: datetime, app: str, env: str, release: str, name: str, run: str, test: str) -> Any:
    """A request a test made (marked as the pytest plugin marks it)."""
    marks = {"user_agent.synthetic.type": "test", "test.case.name": test}
    marks["test.suite.run.id"] = run
    return request(ts, app, env, release, name, origin="test", attributes=marks)


def error(ts: datetime, app: str, env: str, release: str, route: str, method: str) -> Any:
    event: dict[str, Any] = {"kind": "error", "event_id": str(uuid.uuid4()), "ts": iso(ts)}
    event.update(app=app, env=env, release=release, route=route, exception_type="KeyError")
    event["attributes"] = {"http.request.method": method}
    return event


def health(ts: datetime, app: str, env: str, release: str, cores: float, rss: float) -> Any:
    """One instance's snapshot: ``cores`` CPU cores busy (of 2) and ``rss`` bytes resident."""
    metrics = {"process.cpu.utilization": cores / 2, "system.cpu.logical.count": 2.0}
    metrics["process.memory.usage"] = rss
    event: dict[str, Any] = {"kind": "health", "event_id": str(uuid.uuid4()), "ts": iso(ts)}
    event.update(app=app, env=env, release=release, host="web-1", instance="web-1:1")
    event["metrics"] = metrics
    return event


def deploy(ts: datetime, app: str, env: str, release: str) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "change", "event_id": str(uuid.uuid4()), "ts": iso(ts)}
    event.update(app=app, env=env, release=release, change_type="deploy", name=release)
    return event


GROUPED: tuple[str, ...] = ("event_id", "ts", "app", "env", "release", "route")
GROUPED += ("exception_type", "root_type", "title", "group_id", "fingerprint", "basis")
GROUPED += ("rules_version",)


def store_grouped(client: Any, errors: list[tuple[datetime, str, str, str, str, str]]) -> None:
    """Rows of ``errors_grouped``: (ts, app, env, release, route, group_id)."""
    rows = [
        (uuid.uuid4(), ts, app, env, release, route, "KeyError", "KeyError")
        + (f"KeyError in {route}", group, group, "stack", 1)
        for ts, app, env, release, route, group in errors
    ]
    client.insert("errors_grouped", rows, column_names=list(GROUPED))
