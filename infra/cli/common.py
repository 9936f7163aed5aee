"""What every ``shiftright`` command group shares: settings, failing with a message, the
warehouse client and times such as ``30m`` ago."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.console import Console
from shiftright_server.infra.settings import Settings, load_settings

err = Console(stderr=True)
AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def cli_settings() -> Settings:
    """The effective settings; the CLI speaks through rich, its own logs only surface
    problems."""
    from shiftright_server.infra.logs import configure_logging

    settings = load_settings()
    configure_logging("WARNING", settings.log_json)
    return settings


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def warehouse_client(settings: Settings) -> Any:
    from shiftright_server.infra.clickhouse import get_client

    return get_client(settings.clickhouse, database=settings.clickhouse.database)


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``30m``/``6h``/``7d`` ago, ``now``, or an ISO 8601 time (UTC when no zone)."""
    now = now or datetime.now(UTC)
    text = text.strip()
    found = AGO.match(text)
    if found:
        return now - timedelta(**{_UNIT[found[2]]: float(found[1])})
    if text == "now":
        return now
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r}: expected e.g. 30m, 6h, 7d or 2026-11-26T10:00"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
