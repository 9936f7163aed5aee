"""``shiftright gateway`` (run the service) and ``shiftright gateway keys …`` (ingest keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:
    from shiftright_server.infra.access.ingest_keys import KeyStore
    from shiftright_server.infra.settings import Settings

gateway_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    help="The ingest gateway: JSON batches and OTLP/HTTP from apps in any language.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke per-app ingest keys.")
gateway_app.add_typer(keys_app, name="keys")
out = Console()


def _settings() -> Settings:
    from shiftright_server.infra.logs import configure_logging
    from shiftright_server.infra.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _store() -> KeyStore:
    from shiftright_server.infra.access.ingest_keys import KeyStore, keys_path

    return KeyStore(keys_path(_settings()))


@gateway_app.callback()
def gateway(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 14318).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes sharing the port (default 1).")
    ] = None,
) -> None:
    """Run the gateway (HTTP JSON /v1/events, OTLP /v1/logs /v1/metrics /v1/traces)."""
    if ctx.invoked_subcommand is not None:
        return
    from shiftright_server.infra.api.gateway import serve

    serve(_settings(), host, port, workers)


@keys_app.command("create")
def create(
    app: Annotated[str, typer.Option(help="The app (service.name) the key may send for.")],
    env: Annotated[str | None, typer.Option(help="Restrict the key to one environment.")] = None,
    label: Annotated[str, typer.Option(help="A note: who or what uses the key.")] = "",
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from shiftright_server.infra.access.ingest_keys import KeyRefused, key_json
    from shiftright_server.infra.cli.users import audit_cli, cli_actor

    try:
        token, key = _store().create(app, env, label, cli_actor())
    except KeyRefused as exc:
        typer.echo(f"--{exc.field}: {exc}", err=True)
        raise typer.Exit(2) from None
    audit_cli("key.create", key.id, None, key_json(key))
    typer.echo(token)
    typer.echo(
        f"key {key.id} for app {key.app}" + (f" env {key.env}" if key.env else " (any env)"),
        err=True,
    )


@keys_app.command("list")
def list_keys() -> None:
    """Keys, with their binding and state (the keys themselves are not stored)."""
    # nothing cut short on a narrow (or no) terminal; the id whole, to revoke by
    names = ("app", "env", "label", "created", "by", "last used", "state")
    folded = (Column(name, overflow="fold") for name in names)
    table = Table(Column("id", no_wrap=True, min_width=12), *folded)
    for key in _store().list():
        state = f"[red]revoked {key.revoked_at}[/]" if key.revoked else "[green]active[/]"
        table.add_row(
            key.id,
            key.app,
            key.env or "(any)",
            key.label,
            key.created_at,
            key.created_by or "–",
            key.last_used_at or "–",
            state,
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see keys list).")]) -> None:
    """Revoke a key; requests with it are refused (401) from the next request on."""
    from shiftright_server.infra.cli.users import audit_cli

    if not _store().revoke(key_id):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    audit_cli("key.revoke", key_id, {"state": "active"}, {"state": "revoked"})
    typer.echo(f"revoked {key_id}")
