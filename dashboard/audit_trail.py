"""Writing a change made through the dashboard to the audit trail: the signed-in person,
their role and address, and the state before and after (JSON-able values)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from shiftright_server.dashboard.visitor import address_of, visitor_of
from shiftright_server.infra.access.audit import AuditEntry


def record_change(request: Request, action: str, target: str, before: Any, after: Any) -> None:
    who = visitor_of(request)
    entry = AuditEntry(
        who.name, who.role, action, target, before, after, address_of(request), "dashboard"
    )
    request.app.state.audit.record(entry)


def actor(request: Request) -> str:
    """Who a change is recorded as (the signed-in person's e-mail)."""
    return visitor_of(request).name
