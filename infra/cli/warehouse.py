"""``shiftright users warehouse add|list|remove``: accounts of the embedded warehouse."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from shiftright_server.infra.cli.common import cli_settings, fail
from shiftright_server.infra.settings import (
    WRITER_ACCOUNT,
    Settings,
    accounts_path,
    writer_key_path,
)
from shiftright_server.infra.warehouse.accounts import AccountError, Accounts, Role

warehouse_app = typer.Typer(
    help="Accounts of the embedded warehouse: analysts read (read-only at the warehouse), "
    "the pipeline writes.",
    no_args_is_help=True,
)
out = Console()


def _accounts(settings: Settings) -> Accounts:
    if not settings.clickhouse.launch_local:
        fail(
            "a ClickHouse server keeps its own users: create them there, and give the "
            "pipeline its writer with SHIFTRIGHT_CLICKHOUSE__USER / SHIFTRIGHT_CLICKHOUSE__PASSWORD"
        )
    return Accounts(accounts_path(settings.resolved_state_dir()))


@warehouse_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Account name, e.g. an analyst's e-mail.")],
    role: Annotated[
        str, typer.Option(help="reader: read-only at the warehouse; writer: everything.")
    ] = "reader",
) -> None:
    """Create an account (or give it a new key) and print its key once."""
    settings = cli_settings()
    accounts = _accounts(settings)
    first = not accounts.enabled
    try:
        key = accounts.add(name, _role(role))
        _ensure_writer(settings, accounts)
    except AccountError as exc:
        fail(str(exc))
        return
    ch = settings.clickhouse
    out.print(f"[green]✓[/] warehouse account [bold]{name}[/] ({role}); its key, shown once:")
    out.print(key, markup=False, highlight=False)
    out.print(
        f"[dim]curl -u '{name}:KEY' '{ch.http_url}/?database={ch.database}' --data-binary 'SELECT 1'[/]"
    )
    if first:
        out.print(
            "[yellow]Accounts are on:[/] every request must name one from now on. Restart "
            "the pipeline (shiftright down && shiftright up) so its processes use the "
            f"writer account {WRITER_ACCOUNT}."
        )


@warehouse_app.command("list")
def list_accounts() -> None:
    """Every account, its role and when it was made (never its key)."""
    accounts = _accounts(cli_settings()).all()
    if not accounts:
        out.print("no accounts: the warehouse answers anyone on loopback")
        return
    table = Table("account", "role", "created")
    for account in accounts.values():
        table.add_row(account.name, account.role, account.created_at)
    out.print(table)


@warehouse_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="The account to remove.")]) -> None:
    """Remove an account. The writer goes last; removing it turns accounts off."""
    settings = cli_settings()
    accounts = _accounts(settings)
    if name == WRITER_ACCOUNT and set(accounts.all()) != {WRITER_ACCOUNT}:
        fail(f"{WRITER_ACCOUNT} is the pipeline's own account: remove the others first")
    try:
        accounts.remove(name)
    except AccountError as exc:
        fail(str(exc))
        return
    if name == WRITER_ACCOUNT:
        writer_key_path(settings.resolved_state_dir()).unlink(missing_ok=True)
        out.print("accounts are off: the warehouse answers anyone on loopback")
    else:
        out.print(f"removed {name}")


def _role(text: str) -> Role:
    if text == "reader":
        return "reader"
    if text == "writer":
        return "writer"
    raise AccountError(f"unknown role {text!r}: use reader or writer")


def _ensure_writer(settings: Settings, accounts: Accounts) -> None:
    """The pipeline's writer account exists, its key in a file only this user reads."""
    path = writer_key_path(settings.resolved_state_dir())
    if WRITER_ACCOUNT in accounts.all() and path.is_file():
        return
    key = accounts.add(WRITER_ACCOUNT, "writer")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
