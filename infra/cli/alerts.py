"""``shiftright alerts`` (firing now, ``--history``), ``alerts tokens`` (the HTTP API's
tokens) and ``shiftright backtest`` (a rule replayed over stored rollups), and
:func:`register`, which adds every alerting command to the ``shiftright`` app.

Thin adapters over :mod:`shiftright_server.streams.alerting.history` and
:mod:`shiftright_server.infra.api.tokens`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from shiftright_server.infra.api.tokens import ROLES, open_tokens
from shiftright_server.infra.cli import rules
from shiftright_server.infra.cli.alerting import INVALID, err, out
from shiftright_server.infra.cli.alerting import abort as _abort
from shiftright_server.infra.cli.alerting import config_store as _store
from shiftright_server.infra.cli.alerting import labels as _labels
from shiftright_server.infra.cli.alerting import load_rule_file as _load
from shiftright_server.infra.cli.alerting import num as _num
from shiftright_server.infra.cli.alerting import read_config as _read
from shiftright_server.infra.cli.alerting import seconds as _seconds
from shiftright_server.infra.cli.alerting import severity as _severity
from shiftright_server.infra.cli.alerting import warehouse_problem as _warehouse_problem
from shiftright_server.infra.cli.alerting import when as _when
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import parse_time
from shiftright_server.infra.cli.common import warehouse_client as _client
from shiftright_server.schemas.alerts import CohortRule, ErrorGroupRule, Rule, parse_duration
from shiftright_server.streams.alerting.history import (
    Episode,
    alert_history,
    current_alerts,
    episodes,
    read_rollups,
    run_backtest,
    warmup_for,
)

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings
    from shiftright_server.schemas.records import Rollup

alerts_app = typer.Typer(
    invoke_without_command=True,
    help="Alerts firing or pending now (--history: recent transitions); API tokens.",
)
tokens_app = typer.Typer(no_args_is_help=True, help="Tokens for the alerting HTTP API.")
alerts_app.add_typer(tokens_app, name="tokens")


# -- alerts -----------------------------------------------------------------------------
@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    history: Annotated[bool, typer.Option("--history", help="Recent transitions instead.")] = False,
    app: Annotated[str, typer.Option("--app", help="Only this app.")] = "",
    env: Annotated[str, typer.Option("--env", help="Only this environment.")] = "",
    rule: Annotated[str, typer.Option("--rule", help="With --history: only this rule.")] = "",
    since: Annotated[str, typer.Option(help="With --history: from 30m, 6h, 7d ago.")] = "7d",
    limit: Annotated[int, typer.Option(help="With --history: at most this many.")] = 50,
) -> None:
    """Alerts firing or pending now; --history for the recent transitions."""
    if ctx.invoked_subcommand is not None:
        return
    start = parse_time(since)
    settings = _settings()
    try:
        client = _client(settings)
        if history:
            rows = alert_history(client, app, env, rule, start, limit)
        else:
            rows = current_alerts(client, app, env)
    except Exception as exc:
        _abort(_warehouse_problem(settings, exc))
    now = datetime.now(UTC)
    if history:
        _print_history(rows, now)
    else:
        _print_current(rows, now)


def _print_current(rows: list[dict[str, Any]], now: datetime) -> None:
    if not rows:
        out.print("[green]no alerts firing or pending[/]")
        return
    table = Table("state", "rule", "severity", "labels", "value", "threshold", "since", "summary")
    for r in rows:
        since = r["starts_at"] if r["state"] == "firing" else r["active_since"]
        colour = "red" if r["state"] == "firing" else "yellow"
        table.add_row(
            f"[{colour}]{r['state']}[/]",
            r["rule"],
            _severity(r["labels"].get("severity", "")),
            _labels(r["labels"]),
            _num(r["value"]),
            _num(r["threshold"]),
            _when(since, now),
            r["annotations"].get("summary", ""),
        )
    out.print(table)
    firing = sum(1 for r in rows if r["state"] == "firing")
    out.print(f"{firing} firing, {len(rows) - firing} pending")


def _print_history(rows: list[dict[str, Any]], now: datetime) -> None:
    if not rows:
        out.print("no alert transitions in this period")
        return
    table = Table("time", "rule", "transition", "labels", "value", "threshold")
    colours = {"firing": "red", "pending": "yellow", "resolved": "green"}
    for r in rows:
        state = f"[{colours.get(r['state'], 'dim')}]{r['state']}[/]"
        table.add_row(
            _when(r["ts"], now),
            r["rule"],
            f"{r['previous']} → {state}",
            _labels(r["labels"]),
            _num(r["value"]),
            _num(r["threshold"]),
        )
    out.print(table)
    out.print(f"[dim]{len(rows)} transition{'s' if len(rows) != 1 else ''}, newest first[/]")


# -- API tokens -------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="viewer (read only) or editor (may change).")],
    label: Annotated[str, typer.Option(help="Who or what uses the token.")] = "",
) -> None:
    """A token for the alerting API; printed once, stored only as a hash."""
    if role not in ROLES:
        err.print(f"[bold red]error:[/] --role must be one of {', '.join(ROLES)}")
        raise typer.Exit(INVALID)
    token, key = open_tokens(_settings()).create(role, None, label)
    typer.echo(token)
    typer.echo(f"token {key.id}: {role}" + (f" ({label})" if label else ""), err=True)


@tokens_app.command("list")
def tokens_list() -> None:
    """Tokens, with their role and state (the tokens themselves are not stored)."""
    table = Table("id", "role", "label", "created", "state")
    for key in open_tokens(_settings()).list():
        state = f"[red]revoked {key.revoked_at}[/]" if key.revoked else "[green]active[/]"
        table.add_row(key.id, key.app, key.label, key.created_at, state)
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: refused from the next request on."""
    if not open_tokens(_settings()).revoke(token_id):
        _abort(f"no active token {token_id}")
    out.print(f"revoked {token_id}")


# -- backtest -----------------------------------------------------------------------------
def backtest_cmd(
    rule_name: Annotated[str, typer.Argument(metavar="RULE", help="The rule's name.")],
    since: Annotated[
        str, typer.Option(help="Start of the period: 6h, 7d, 30d ago, or an ISO time.")
    ] = "7d",
    until: Annotated[str, typer.Option(help="End of the period (default now).")] = "now",
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Take the rule from this file instead of the applied version."
        ),
    ] = None,
    warmup: Annotated[
        str, typer.Option(help="History read before the period (default: what the rule needs).")
    ] = "",
) -> None:
    """Replay stored rollups through a rule: when would it have fired and resolved?"""
    settings = _settings()
    rules = _load(file)[1] if file else _read(_store(settings)).rules
    found = {r.name: r for r in rules.rules}
    if rule_name not in found:
        where = str(file) if file else "the applied rules"
        _abort(f"no rule {rule_name!r} in {where} (rules: {', '.join(found) or 'none'})")
    rule = found[rule_name]
    if isinstance(rule, ErrorGroupRule):
        _abort("error_group rules follow error-group transitions, not rollups: no backtest")
    now = datetime.now(UTC)
    try:
        start, end = parse_time(since, now), parse_time(until, now)
        lead = timedelta(seconds=parse_duration(warmup)) if warmup else warmup_for(rule)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(INVALID) from None
    if end <= start:
        _abort("--until must be after --since")
    # the newest buckets of a live period are still being closed: stop the clock before them
    stop = min(end, now - timedelta(minutes=2))
    if isinstance(rule, CohortRule):
        cohort = _cohort_backtest(settings, rule, start, stop)
        _print_episodes(rule, cohort, 0, start, end, now, "cohort readings")
        return
    rollups = _read_with_progress(settings, rule, start - lead, end)
    fired = run_backtest(rule, rollups, start, stop)
    _print_episodes(rule, fired, len(rollups), start, end, now)


def _cohort_backtest(
    settings: Settings, rule: CohortRule, start: datetime, stop: datetime
) -> list[Episode]:
    """The cohort rule's window slid over the flag-variant counts, one reading a minute."""
    from shiftright_server.streams.alerting.cohort import backtest

    client = _client(settings)

    def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in client.query(sql, parameters=params).result_rows]

    try:
        return episodes(backtest(rule, query, start, stop, 60))
    except Exception as exc:
        _abort(_warehouse_problem(settings, exc))


def _read_with_progress(
    settings: Settings, rule: Rule, start: datetime, end: datetime
) -> list[Rollup]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("reading rollups"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return read_rollups(_client(settings), rule, start, end, step)
        except Exception as exc:
            _abort(_warehouse_problem(settings, exc))


def _print_episodes(
    rule: Rule,
    found: list[Episode],
    read: int,
    start: datetime,
    end: datetime,
    now: datetime,
    what: str = "rollups",
) -> None:
    period = f"{_when(start, now)} → {_when(end, now)}"
    scope = f"{rule.scope.app}/{rule.scope.env} {rule.scope.source}"
    out.print(f"[bold]{rule.name}[/] ({rule.kind}, {scope}) over {period}", highlight=False)
    if what == "rollups":
        out.print(f"[dim]{read:,} rollups read (with the warm-up before the period)[/]")
        if not read:
            out.print("[yellow]no rollups match the rule's scope in this period[/]")
            return
    if found:
        table = Table("fired", "resolved", "lasted", "labels", "value at firing")
        for e in found:
            before = " [dim](before the period)[/]" if e.fired < start else ""
            table.add_row(
                _when(e.fired, now) + before,
                _when(e.resolved, now) if e.resolved else "[red]still firing[/]",
                _seconds(((e.resolved or end) - e.fired).total_seconds()),
                _labels(e.labels),
                _num(e.value),
            )
        out.print(table)
    series = {tuple(sorted(e.labels.items())) for e in found}
    firing = sum(((e.resolved or end) - max(e.fired, start)).total_seconds() for e in found)
    still = sum(1 for e in found if e.resolved is None)
    out.print(
        f"would have fired [bold]{len(found)}[/] time{'s' if len(found) != 1 else ''} "
        f"on {len(series)} series, firing {_seconds(firing)} in all"
        + (f"; {still} still firing at the end" if still else "")
    )


def register(app: typer.Typer) -> None:
    """Add the alerting commands to the ``shiftright`` app."""
    app.add_typer(rules.rules_app, name="rules")
    app.add_typer(rules.silence_app, name="silence")
    app.add_typer(alerts_app, name="alerts")
    app.command("snooze")(rules.snooze)
    app.command("backtest")(backtest_cmd)
