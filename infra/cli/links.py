"""``shiftright links``: read-only share links of the dashboard for people outside the
team (``create`` prints the link once, ``list``, ``revoke``). Thin adapters over
:mod:`shiftright_server.infra.access.links`; every change is written to the audit trail."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from shiftright_server.infra.access.links import PAGES, LinkError, ShareLink
from shiftright_server.infra.cli.common import fail
from shiftright_server.infra.cli.users import audit_change, open_store, out

links_app = typer.Typer(no_args_is_help=True, help="Read-only share links of the dashboard.")


def _json(link: ShareLink) -> dict[str, object]:
    return {
        "apps": list(link.apps),
        "envs": list(link.envs),
        "pages": list(link.pages),
        "expires_at": link.expires_at,
    }


@links_app.command("create")
def create(
    app: Annotated[list[str], typer.Option("--app", help="An app it shows (repeatable).")],
    env: Annotated[list[str], typer.Option("--env", help="An env it shows (repeatable).")],
    page: Annotated[
        list[str] | None,
        typer.Option("--page", help=f"One of {', '.join(PAGES)} (repeatable; default all)."),
    ] = None,
    days: Annotated[
        float | None, typer.Option(help="Lifetime (default access.share_days).")
    ] = None,
    label: Annotated[str, typer.Option(help="Who it is for.")] = "",
    by: Annotated[str, typer.Option(help="Recorded as its creator.")] = "cli",
) -> None:
    """A read-only link to some apps × envs × pages; printed once."""
    settings, identity = open_store()
    try:
        token, link = identity.links.create(by, app, env, page or list(PAGES), days, label)
    except LinkError as exc:
        fail(str(exc))
        return
    audit_change(settings, identity, "link.create", link.id, None, _json(link))
    typer.echo(f"{settings.public_url()}/s/{token}")
    typer.echo(
        f"link {link.id}: {', '.join(link.pages)} of {', '.join(link.apps)} × {', '.join(link.envs)} until {link.expires_at}",
        err=True,
    )


@links_app.command("list")
def list_links() -> None:
    """Every share link: scope, creator, expiry, last use and views."""
    _, identity = open_store()
    table = Table("id", "apps × envs", "pages", "by", "expires", "last used", "views", "state")
    for link in identity.links.list():
        state = f"revoked {link.revoked_at}" if link.revoked_at else "active"
        scope = f"{', '.join(link.apps)} × {', '.join(link.envs)}"
        table.add_row(
            link.id,
            scope,
            ", ".join(link.pages),
            link.created_by,
            link.expires_at,
            link.last_used or "",
            str(link.views),
            state,
        )
    out.print(table)


@links_app.command("revoke")
def revoke(link_id: Annotated[str, typer.Argument(help="The link's id.")]) -> None:
    """Revoke a link: refused from its next request on."""
    settings, identity = open_store()
    gone = identity.links.revoke(link_id)
    if gone is None:
        fail(f"no active share link {link_id}")
        return
    audit_change(settings, identity, "link.revoke", link_id, _json(gone), None)
    out.print(f"revoked {link_id}")
