"""``shiftright mark deploy|flag``: change events from CI, sent through the SDK."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from shiftright_server.infra.cli.common import cli_settings as _settings
from shiftright_server.infra.cli.common import fail as _fail

mark_app = typer.Typer(no_args_is_help=True, help="Mark a deploy or a feature-flag flip.")
out = Console()


def _sdk_cli() -> Any:
    try:
        import shiftright.cli
    except ImportError:
        _fail("the SDK is not installed: pip install -e producers/sdk (make does this)")
    return shiftright.cli


def _mark(ok: bool, what: str) -> None:
    if not ok:
        _fail(f"could not mark {what}: Kafka did not acknowledge it")
    out.print(f"marked {what}")


@mark_app.command("deploy")
def mark_deploy(
    app_name: Annotated[str, typer.Option("--app")],
    env: Annotated[str, typer.Option()],
    release: Annotated[str, typer.Option()],
    description: Annotated[str, typer.Option()] = "",
) -> None:
    """A release reached an environment: `shiftright mark deploy --app checkout --env prod --release 1.4.3`."""
    s = _settings()
    ok = _sdk_cli().mark_deploy(
        app_name,
        env,
        release,
        kafka=s.kafka.bootstrap_servers,
        namespace=s.namespace,
        description=description,
    )
    _mark(ok, f"deploy of {release} to {app_name}/{env}")


@mark_app.command("flag")
def mark_flag(
    name: str,
    state: Annotated[str, typer.Argument(help="on or off")],
    app_name: Annotated[str, typer.Option("--app")],
    env: Annotated[str, typer.Option()],
) -> None:
    """A feature flag was switched: `shiftright mark flag new-checkout on --app checkout --env prod`."""
    if state not in ("on", "off"):
        _fail("state must be on or off")
    s = _settings()
    ok = _sdk_cli().mark_flag(
        name, state, app_name, env, kafka=s.kafka.bootstrap_servers, namespace=s.namespace
    )
    _mark(ok, f"flag {name} {state} in {app_name}/{env}")
