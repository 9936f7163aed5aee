"""``shiftright users``: accounts of the dashboard and the alerting API (``add`` prints a
one-time sign-in link, ``list``, ``role``, ``remove``, ``link``) and ``shiftright tokens``
(personal API tokens). Thin adapters over :mod:`shiftright_server.infra.access`; every
change is written to the audit trail."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from shiftright_server.infra.access.accounts import ROLES, AccountError
from shiftright_server.infra.access.audit import AuditEntry, WarehouseAudit
from shiftright_server.infra.access.identity import Identity, open_identity
from shiftright_server.infra.cli.common import cli_settings, fail

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

out = Console()
users_app = typer.Typer(no_args_is_help=True, help="Accounts of the dashboard and the API.")
tokens_app = typer.Typer(no_args_is_help=True, help="Personal API tokens (alerting API, CLI).")
ROLE_HELP = f"One of {', '.join(ROLES)}."


def signin_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url()}/signin/link/{token}"


def open_store() -> tuple[Settings, Identity]:
    settings = cli_settings()
    return settings, open_identity(settings)


def cli_actor() -> str:
    """Who a change made on the command line is recorded as."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in this environment
        return "cli"


def audit_change(
    settings: Settings, identity: Identity, action: str, target: str, before: Any, after: Any
) -> None:
    entry = AuditEntry(cli_actor(), "admin", action, target, before, after, "local", "cli")
    WarehouseAudit(identity.db, settings.clickhouse).record(entry)


def audit_cli(action: str, target: str, before: Any, after: Any) -> None:
    """Write a change made by another command (rules, silences) to the audit trail."""
    settings = cli_settings()
    identity = open_identity(settings)
    try:
        audit_change(settings, identity, action, target, before, after)
    finally:
        identity.close()


def _user_json(user: Any) -> dict[str, str]:
    return {"email": user.email, "role": user.role}


@users_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "viewer",
) -> None:
    """Add an account; prints its one-time sign-in link (the password is chosen there)."""
    settings, identity = open_store()
    try:
        user, token = identity.accounts.add(email, role)
    except AccountError as exc:
        fail(str(exc))
        return
    audit_change(settings, identity, "user.add", user.email, None, _user_json(user))
    out.print(f"added {user.email} ({user.role}); sign-in link, valid once:")
    typer.echo(signin_url(settings, token))


@users_app.command("list")
def list_users() -> None:
    """Accounts, their roles, and whether a password is set."""
    _, identity = open_store()
    table = Table("e-mail", "role", "password", "created")
    for user in identity.accounts.list():
        table.add_row(
            user.email, user.role, "set" if user.has_password else "not yet", user.created_at
        )
    out.print(table)


@users_app.command("role")
def role(
    email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help=ROLE_HELP)],
) -> None:
    """Change an account's role (from its next request on)."""
    settings, identity = open_store()
    try:
        before, after = identity.accounts.set_role(email, new_role)
    except AccountError as exc:
        fail(str(exc))
        return
    audit_change(
        settings, identity, "user.role", after.email, _user_json(before), _user_json(after)
    )
    out.print(f"{after.email}: {before.role} → {after.role}")


@users_app.command("remove")
def remove(email: Annotated[str, typer.Argument(help="The account's e-mail address.")]) -> None:
    """Remove an account: its sessions, links and tokens end with it."""
    settings, identity = open_store()
    try:
        user = identity.accounts.remove(email)
    except AccountError as exc:
        fail(str(exc))
        return
    audit_change(settings, identity, "user.remove", user.email, _user_json(user), None)
    out.print(f"removed {user.email}")


@users_app.command("link")
def link(email: Annotated[str, typer.Argument(help="The account's e-mail address.")]) -> None:
    """A new one-time sign-in link (a first sign-in, or a forgotten password)."""
    settings, identity = open_store()
    try:
        user = identity.accounts.by_email(email)
    except AccountError as exc:
        fail(str(exc))
        return
    token = identity.accounts.issue_link(user.id)
    audit_change(settings, identity, "user.link", user.email, None, None)
    typer.echo(signin_url(settings, token))


@tokens_app.command("create")
def token_create(
    email: Annotated[str, typer.Option("--user", help="The token's owner.")],
    scope: Annotated[str, typer.Option(help="read, or write (the owner's role).")] = "read",
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """A personal API token; printed once, stored only as a hash."""
    settings, identity = open_store()
    try:
        owner = identity.accounts.by_email(email)
        token, record = identity.tokens.create(owner, scope, label)
    except (AccountError, ValueError) as exc:
        fail(str(exc))
        return
    after = {"owner": owner.email, "scope": record.scope, "label": label}
    audit_change(settings, identity, "token.create", record.id, None, after)
    typer.echo(token)
    typer.echo(f"token {record.id}: {record.scope} for {owner.email}", err=True)


@tokens_app.command("list")
def token_list() -> None:
    """Every API token: owner, scope, last use, state (the secrets are not stored)."""
    _, identity = open_store()
    table = Table("id", "owner", "role", "scope", "label", "created", "last used", "state")
    for t in identity.tokens.list():
        state = f"revoked {t.revoked_at}" if t.revoked_at else "active"
        table.add_row(
            t.id, t.owner or "-", t.role, t.scope, t.label, t.created_at, t.last_used or "", state
        )
    out.print(table)


@tokens_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: refused from its next request on."""
    settings, identity = open_store()
    if identity.tokens.revoke(token_id) is None:
        fail(f"no active token {token_id}")
    audit_change(
        settings, identity, "token.revoke", token_id, {"state": "active"}, {"state": "revoked"}
    )
    out.print(f"revoked {token_id}")


def first_admin(settings: Settings) -> str:
    """On the first start: an admin account (``admin@localhost``, renamed by adding a real
    admin and removing it) and its sign-in link; '' when accounts exist."""
    identity = open_identity(settings)
    try:
        if identity.accounts.list():
            return ""
        user, token = identity.accounts.add("admin@localhost", "admin")
        audit_change(settings, identity, "user.add", user.email, None, _user_json(user))
        return f"{user.email}: {signin_url(settings, token)}"
    finally:
        identity.close()
