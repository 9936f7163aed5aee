"""Small builders of wire-format events for tests."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(
    kind: str, ts: datetime, app: str = "checkout", env: str = "prod", **fields: Any
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": kind,
        "event_id": str(uuid.uuid4()),
        "ts": iso(ts),
        "app": app,
        "env": env,
    }
    defaults: dict[str, dict[str, Any]] = {
        "usage": {"name": "cart.add", "duration_ms": 10.0, "status_code": 200},
        "error": {"exception_type": "KeyError", "exception_message": "'sku'"},
        "health": {"host": "web-1", "metrics": {"system.cpu.utilization": 0.5}},
        "change": {"change_type": "deploy", "name": "1.4.3"},
    }
    base.update(defaults[kind])
    base.update(fields)
    return base


def encoded(kind: str, ts: datetime, **fields: Any) -> bytes:
    return json.dumps(event(kind, ts, **fields)).encode()
