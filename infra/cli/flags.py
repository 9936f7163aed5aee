"""``shiftright flags``: flag files as code (test, apply, list, show) and the button itself
(flip, restore)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from shiftright_server.infra.cli.alerting import INVALID, err, out
from shiftright_server.infra.cli.alerting import abort as _abort
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.rules import _actor, go_ahead, print_diff
from shiftright_server.infra.cli.users import audit_cli
from shiftright_server.schemas.flag_file import FlagFileError, diff_flags, load_flags
from shiftright_server.schemas.flags import FlagFile

if TYPE_CHECKING:
    from shiftright.flags.topic import Folder
    from shiftright_server.infra.flags_config import Applied
    from shiftright_server.sinks.flags.admin import FlagAdmin

flags_app = typer.Typer(
    no_args_is_help=True, help="Feature flags as code: test, apply, list, show, flip, restore."
)


def _admin() -> FlagAdmin:
    from shiftright_server.infra.flags_config import FlagTopic
    from shiftright_server.sinks.flags.admin import FlagAdmin

    settings = _settings()
    return FlagAdmin(FlagTopic(settings.kafka.bootstrap_servers, settings.namespace))


def _read(admin: FlagAdmin) -> Folder:
    from shiftright_server.infra.flags_config import FlagStoreError

    try:
        return admin.read()
    except FlagStoreError as exc:
        _abort(f"{exc} (is Kafka up? shiftright status)")


def _load(path: Path) -> tuple[str, FlagFile]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        _abort(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return text, load_flags(text, str(path))
    except FlagFileError as exc:
        for line in str(exc).splitlines():
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        n = len(exc.problems)
        err.print(f"[bold red]{n} problem{'s' if n != 1 else ''}[/]: nothing applied")
        raise typer.Exit(INVALID) from None


def _counts(flags: FlagFile) -> str:
    kinds = [f.kind for f in flags.flags]
    parts = [(kinds.count(k), k) for k in ("toggle", "flag", "ticket")]
    return f"app {flags.app}: " + ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for n, k in parts)


def _applied_line(applied: Applied) -> str:
    if not applied.version:
        return f"nothing applied for {applied.app} yet"
    src = f" from {applied.source}" if applied.source else ""
    return f"version {applied.version}, applied by {applied.applied_by or '?'} at {applied.applied_at[:19]}{src}"


@flags_app.command("test")
def flags_test(file: Annotated[Path, typer.Argument(help="The flag file (YAML).")]) -> None:
    """Validate a flag file without applying it (exit 0 valid, 2 invalid)."""
    _, flags = _load(file)
    out.print(f"{file}: [green]valid[/] — {_counts(flags)}")


@flags_app.command("apply")
def flags_apply(
    file: Annotated[Path, typer.Argument(help="The flag file (YAML).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; apply nothing.")
    ] = False,
    author: Annotated[str, typer.Option(help="Who applies (default: your user name).")] = "",
) -> None:
    """Validate FILE, show what it changes against its app's applied version, apply it."""
    from shiftright_server.infra.flags_config import FlagStoreError

    text, flags = _load(file)
    admin = _admin()
    current = admin.topic.applied(flags.app, _read(admin))
    out.print(f"[bold]{file}[/] ({_counts(flags)}) against {_applied_line(current)}")
    print_diff(diff_flags(current.flags, flags))
    identical = current.version if text == current.text else None
    if not go_ahead(identical, dry_run=dry_run, yes=yes):
        return
    try:
        done = admin.apply(text, author or _actor(), str(file))
    except FlagStoreError as exc:
        _abort(str(exc))
    applied = done.applied or done.before
    audit_cli("flags.apply", str(file), {"version": current.version}, {"version": applied.version})
    out.print(f"[green]applied[/] version [bold]{applied.version}[/] by {applied.applied_by}")


@flags_app.command("list")
def flags_list(
    app: Annotated[str, typer.Option(help="Only this app's flags.")] = "",
) -> None:
    """Every applied flag, its state per environment and the flips in force."""
    admin = _admin()
    table = Table("app", "flag", "kind", "environments", "flipped", title="flags")
    for status in admin.statuses(app, _read(admin)):
        envs = status.environments
        states = ", ".join(f"{e.env}={e.file_state}" for e in envs)
        flips = [f"{e.env}→{e.flipped_to} by {e.actor}" for e in envs if e.flipped_to]
        table.add_row(status.app, status.name, status.kind, states or "-", "; ".join(flips))
    out.print(table)


@flags_app.command("show")
def flags_show(
    app: Annotated[str, typer.Argument(help="The app whose flag file to print.")],
) -> None:
    """Print an app's applied flag file, as applied (redirect it to a file to edit it)."""
    admin = _admin()
    applied = admin.topic.applied(app, _read(admin))
    if not applied.version:
        err.print(f"nothing applied for {app} yet")
        raise typer.Exit(1)
    err.print(f"# {_applied_line(applied)}", markup=False, highlight=False)
    sys.stdout.write(applied.text if applied.text.endswith("\n") else applied.text + "\n")


Where = Annotated[str, typer.Option("--env", help="The environment.")]
App = Annotated[str, typer.Option("--app", help="The flag's app.")]
By = Annotated[str, typer.Option("--by", help="Who (default: your user name).")]


@flags_app.command("flip")
def flags_flip(
    flag: Annotated[str, typer.Argument(help="The flag's name.")],
    app: App,
    env: Where,
    to: Annotated[str, typer.Option("--to", help="on, off or a variant.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (shown with it).")] = "",
    by: By = "",
) -> None:
    """Force a flag on, off or a variant in one environment until restored (an alert
    never undoes a person's flip)."""
    from pydantic import ValidationError
    from shiftright_server.infra.flags_config import FlagStoreError
    from shiftright_server.sinks.flags.flips import FlipRefused

    try:
        _admin().flip(app, flag, env, to, by or _actor(), reason)
    except (FlipRefused, FlagStoreError, ValidationError) as exc:
        _abort(str(exc))
    audit_cli("flags.flip", f"{app}/{flag}/{env}", None, {"to": to, "reason": reason})
    out.print(f"flipped [bold]{flag}[/] in {env} to [bold]{to}[/] (shiftright flags restore)")


@flags_app.command("restore")
def flags_restore(
    flag: Annotated[str, typer.Argument(help="The flag's name.")],
    app: App,
    env: Where,
    by: By = "",
) -> None:
    """End a flip: the flag file's state holds again."""
    from shiftright_server.infra.flags_config import FlagStoreError
    from shiftright_server.sinks.flags.flips import FlipRefused

    try:
        state = _admin().restore(app, flag, env, by or _actor())
    except (FlipRefused, FlagStoreError) as exc:
        _abort(str(exc))
    audit_cli("flags.restore", f"{app}/{flag}/{env}", None, {"to": state})
    out.print(f"restored [bold]{flag}[/] in {env}: {state} as the flag file says")
