"""What the alerting command groups (``rules``, ``silence``, ``snooze``, ``alerts``,
``backtest``) share: the configuration store, reading a rule file, failing with a
message, and how times, durations and labels are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from shiftright_server.infra.cli.common import fail
from shiftright_server.schemas.alerts import RuleFile
from shiftright_server.schemas.rule_file import RuleFileError
from shiftright_server.streams.alerting.service import AlertingStore, open_store, parse_rules

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig
    from shiftright_server.infra.settings import Settings

out = Console()
err = Console(stderr=True)

#: Exit code of a rule file (or matcher, duration …) that does not validate.
INVALID = 2


def warehouse_problem(settings: Settings, exc: Exception) -> str:
    text = str(exc).strip()
    if "Connection refused" in text or "Max retries" in text:
        return f"cannot reach the warehouse at {settings.clickhouse.http_url} (shiftright status)"
    return text.splitlines()[0] if text else repr(exc)


def abort(message: str) -> NoReturn:
    fail(message)  # prints and exits 1
    raise typer.Exit(1)


def config_store(settings: Settings) -> AlertingStore:
    return open_store(settings)


def read_config(store: AlertingStore) -> AlertingConfig:
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        return store.read()
    except ConfigStoreError as exc:
        abort(f"{exc} (is Kafka up? shiftright status)")


def invalid(exc: RuleFileError) -> NoReturn:
    for line in str(exc).splitlines():
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    n = len(exc.problems)
    err.print(f"[bold red]{n} problem{'s' if n != 1 else ''}[/]: nothing applied")
    raise typer.Exit(INVALID)


def load_rule_file(path: Path) -> tuple[str, RuleFile]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        abort(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return text, parse_rules(text, str(path))
    except RuleFileError as exc:
        invalid(exc)


def counts(rules: RuleFile) -> str:
    parts = [
        (len(rules.rules), "rule"),
        (len(rules.subscriptions), "subscription"),
        (len(rules.silences), "silence"),
    ]
    return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts)


def severity(name: str) -> str:
    colour = {"critical": "red", "warning": "yellow"}.get(name, "blue")
    return f"[{colour}]{name}[/]"


def seconds(value: float) -> str:
    value = int(value)
    if not value:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= size:
            parts.append(f"{value // size}{unit}")
            value %= size
    return "".join(parts[:2])


def when(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return ""
    gap = (ts - now).total_seconds()
    rel = f"in {seconds(gap)}" if gap > 0 else f"{seconds(-gap)} ago"
    return f"{ts.astimezone(UTC).isoformat(sep=' ', timespec='seconds')[:19]} ({rel})"


_HIDDEN = {"alertname", "severity"}


def labels(of: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(of.items()) if k not in _HIDDEN)


def num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
