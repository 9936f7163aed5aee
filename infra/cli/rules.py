"""``shiftright rules|silence|snooze``: the rule file as code, and muting alerts.

Thin adapters over :mod:`shiftright_server.streams.alerting.service`: they read the
command line, call the service and print what it did.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from shiftright_server.infra.cli.alerting import INVALID, err, out
from shiftright_server.infra.cli.alerting import abort as _abort
from shiftright_server.infra.cli.alerting import config_store as _store
from shiftright_server.infra.cli.alerting import counts as _counts
from shiftright_server.infra.cli.alerting import load_rule_file as _load
from shiftright_server.infra.cli.alerting import read_config as _read
from shiftright_server.infra.cli.alerting import seconds as _seconds
from shiftright_server.infra.cli.alerting import severity as _severity
from shiftright_server.infra.cli.alerting import when as _when
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import parse_time
from shiftright_server.infra.cli.users import audit_cli
from shiftright_server.schemas.rule_file import Change, diff
from shiftright_server.streams.alerting.service import (
    SilenceError,
    SilenceInFile,
    SilenceNotFound,
    change_json,
    delete_silence,
    make_silence,
    rule_summary,
    silences_of,
)

if TYPE_CHECKING:
    from shiftright_server.infra.alerting_config import AlertingConfig
    from shiftright_server.schemas.alerts import Silence

rules_app = typer.Typer(no_args_is_help=True, help="Alert rules as code: test, apply, list.")
silence_app = typer.Typer(no_args_is_help=True, help="Mute notifications of matching alerts.")


def _interactive() -> bool:
    """Ask before applying only when someone can answer."""
    return sys.stdin.isatty()


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name (some containers)
        return "unknown"


def go_ahead(identical_to: int | None, *, dry_run: bool, yes: bool) -> bool:
    """Whether an apply whose diff was just printed goes ahead: not when the file equals
    the applied version ``identical_to`` or on a dry run; asks when someone can answer
    (a "no" exits 1)."""
    if identical_to:
        out.print(f"identical to version {identical_to}: nothing to apply")
        return False
    if dry_run:
        out.print("[dim]dry run: nothing applied[/]")
        return False
    if not yes and _interactive() and not typer.confirm("Apply?", default=False):
        out.print("nothing applied")
        raise typer.Exit(1)
    return True


_OPS = {"+": ("green", "added"), "-": ("red", "removed"), "~": ("yellow", "changed")}


def print_diff(changes: list[Change], console: Console = out) -> None:
    if not changes:
        console.print("[dim]no changes to rules, subscriptions, silences or inhibition[/]")
        return
    table = Table("", "what", "name", "changed fields", box=None, pad_edge=False)
    for c in changes:
        colour, _ = _OPS[c.op]
        table.add_row(f"[{colour}]{c.op}[/]", c.what, f"[{colour}]{c.name}[/]", ", ".join(c.fields))
    console.print(table)
    tally = {word: sum(1 for c in changes if c.op == op) for op, (_, word) in _OPS.items()}
    console.print(", ".join(f"{n} {word}" for word, n in tally.items() if n))


def _applied_line(config: AlertingConfig) -> str:
    if not config.version:
        return "nothing applied yet"
    at = f"{config.applied_at:%Y-%m-%d %H:%M:%S} UTC" if config.applied_at else "?"
    src = f" from {config.source}" if config.source else ""
    return f"version {config.version}, applied by {config.applied_by or '?'} at {at}{src}"


@rules_app.command("test")
def rules_test(
    file: Annotated[Path, typer.Argument(help="The rule file (YAML).")],
) -> None:
    """Validate a rule file without applying it (exit 0 valid, 2 invalid)."""
    _, rules = _load(file)
    out.print(f"{file}: [green]valid[/] — {_counts(rules)}")


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="The rule file (YAML).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; apply nothing.")
    ] = False,
    author: Annotated[str, typer.Option(help="Who applies (default: your user name).")] = "",
) -> None:
    """Validate FILE, show what it changes against the applied version, and apply it."""
    from shiftright_server.infra.alerting_config import ConfigStoreError

    text, rules = _load(file)
    store = _store(_settings())
    current = _read(store)
    out.print(f"[bold]{file}[/] ({_counts(rules)}) against {_applied_line(current)}")
    changes = diff(current.rules, rules)
    print_diff(changes)
    identical = current.version if text == current.text else None
    if not go_ahead(identical, dry_run=dry_run, yes=yes):
        return
    try:
        applied = store.apply(text, author or _actor(), str(file))
    except ConfigStoreError as exc:
        _abort(str(exc))
    after = {"version": applied.version, "changes": [change_json(c) for c in changes]}
    audit_cli("rules.apply", str(file), {"version": current.version}, after)
    out.print(f"[green]applied[/] version [bold]{applied.version}[/] by {applied.applied_by}")


@rules_app.command("list")
def rules_list() -> None:
    """The applied rules and subscriptions, and which version is applied."""
    config = _read(_store(_settings()))
    out.print(_applied_line(config))
    if not config.version:
        out.print("apply a rule file: shiftright rules apply rules.yaml")
        return
    table = Table(
        "name", "kind", "app", "env", "source", "severity", "for", "enabled", title="rules"
    )
    for rule in config.rules.rules:
        s = rule_summary(rule)
        table.add_row(
            s["name"],
            s["kind"],
            s["app"],
            s["env"],
            s["source"],
            _severity(s["severity"]),
            _seconds(s["for"]),
            "yes" if s["enabled"] else "[dim]no[/]",
        )
    out.print(table)
    subs = Table("name", "channel", "to", "matchers", "rules", "resolved", title="subscriptions")
    for sub in config.rules.subscriptions:
        subs.add_row(
            sub.name,
            sub.channel,
            sub.to,
            ", ".join(str(m) for m in sub.matchers) or "(all)",
            ", ".join(sub.rules) or "(any)",
            "yes" if sub.send_resolved else "no",
        )
    out.print(subs)
    out.print(
        f"[dim]{_counts(config.rules)}; silences made outside the file: "
        f"{len(config.silences)} (shiftright silence list)[/]"
    )


@rules_app.command("show")
def rules_show() -> None:
    """Print the applied rule file, as applied (redirect it to a file to edit it)."""
    config = _read(_store(_settings()))
    if not config.version:
        err.print("nothing applied yet")
        raise typer.Exit(1)
    err.print(f"# {_applied_line(config)}", markup=False, highlight=False)
    sys.stdout.write(config.text if config.text.endswith("\n") else config.text + "\n")


# -- silences -------------------------------------------------------------------------------
By = Annotated[str, typer.Option("--by", help="Who silences (default: your user name).")]
Comment = Annotated[str, typer.Option("--comment", "-c", help="Why (shown with the silence).")]


def _add_silence(matchers: list[str], duration: str, comment: str, by: str, starts: str) -> Silence:
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        start = parse_time(starts) if starts else None
        silence = make_silence(matchers, duration, comment, by or _actor(), starts_at=start)
    except (SilenceError, typer.BadParameter) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(INVALID) from None
    try:
        _store(_settings()).add_silence(silence)
    except ConfigStoreError as exc:
        _abort(str(exc))
    made = {"matchers": [str(m) for m in silence.matchers], "ends_at": silence.ends_at.isoformat()}
    audit_cli("silence.add", silence.id, None, made)
    return silence


@silence_app.command("add")
def silence_add(
    match: Annotated[
        list[str],
        typer.Option(
            "--match",
            "-m",
            help="name=value, name!=value, name=~regex, severity>=warning (repeatable; all must match).",
        ),
    ],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    comment: Comment = "",
    by: By = "",
    starts: Annotated[
        str, typer.Option("--starts", help="Start later: an ISO time (default now).")
    ] = "",
) -> None:
    """Mute notifications of alerts whose labels match, for a while (prints the id)."""
    silence = _add_silence(match, duration, comment, by, starts)
    typer.echo(silence.id)  # alone on stdout, for scripts
    err.print(
        f"silence {silence.id} on {', '.join(str(m) for m in silence.matchers)} "
        f"until {_when(silence.ends_at, datetime.now(UTC))}; "
        f"shiftright silence delete {silence.id} ends it",
        highlight=False,
    )


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="Also those that ended.")] = False,
) -> None:
    """Active and upcoming silences: made here or by the API, and those in the rule file."""
    config = _read(_store(_settings()))
    now = datetime.now(UTC)
    views = silences_of(config, now, expired)
    if not views:
        out.print("no active or upcoming silences")
        return
    table = Table("id", "state", "matchers", "starts", "ends", "by", "comment", "from")
    for v in views:
        s = v.silence
        colour = {"active": "green", "upcoming": "cyan"}.get(v.state, "dim")
        table.add_row(
            s.id,
            f"[{colour}]{v.state}[/]",
            ", ".join(str(m) for m in s.matchers),
            _when(s.starts_at, now),
            _when(s.ends_at, now),
            s.created_by,
            s.comment,
            "rule file" if v.origin == "file" else "cli/api",
        )
    out.print(table)


@silence_app.command("delete")
def silence_delete(silence_id: Annotated[str, typer.Argument(help="The silence's id.")]) -> None:
    """End a silence now (silences written in the rule file are removed there)."""
    from shiftright_server.infra.alerting_config import ConfigStoreError

    try:
        gone = delete_silence(_store(_settings()), silence_id)
    except (SilenceNotFound, SilenceInFile, ConfigStoreError) as exc:
        _abort(str(exc))
    audit_cli("silence.expire", gone.id, {"state": "active"}, {"state": "expired"})
    out.print(f"deleted silence {gone.id} ({', '.join(str(m) for m in gone.matchers)})")


def snooze(
    rule: Annotated[str, typer.Argument(help="The rule's name.")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 1h, 1d.")],
    comment: Comment = "",
    by: By = "",
) -> None:
    """Mute one rule's notifications for a while (a silence on alertname)."""
    config = _read(_store(_settings()))
    names = [r.name for r in config.rules.rules]
    if rule not in names:
        known = ", ".join(names) or "none"
        _abort(f"no rule {rule!r} in the applied version {config.version} (rules: {known})")
    silence = _add_silence([f"alertname={rule}"], duration, comment, by, "")
    out.print(
        f"snoozed [bold]{rule}[/] until {_when(silence.ends_at, datetime.now(UTC))} "
        f"(silence {silence.id}; shiftright silence delete {silence.id} ends it)"
    )
