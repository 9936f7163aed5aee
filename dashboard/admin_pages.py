"""Accounts (``/users``, admins), personal API tokens (``/tokens``: one's own; admins see
and revoke everyone's) and read-only share links (``/links``, editors and admins). A
new sign-in link, token or share link is shown once, on the page that made it; only its
digest is kept. Every change is written to the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from shiftright_server.dashboard.audit_trail import record_change as audit
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.policy import permits
from shiftright_server.dashboard.render import page_context, render
from shiftright_server.dashboard.visitor import Visitor, identity_of, visitor_of
from shiftright_server.infra.access.accounts import ROLES, AccountError, User
from shiftright_server.infra.access.links import PAGES, LinkError, ShareLink
from shiftright_server.infra.access.tokens import SCOPES

router = APIRouter(dependencies=[Depends(check_permission)])
USERS = route_action(Action.MANAGE_USERS)
TOKENS = route_action(Action.OWN_TOKENS)
LINKS = route_action(Action.SHARE_LINKS)


def _external(request: Request) -> str:
    return str(request.app.state.settings.public_url())


def _by_field(exc: AccountError | LinkError) -> dict[str, Any]:
    """The problem next to its form field, or above the form when it is about none."""
    return {"problems": {exc.field: str(exc)}} if exc.field else {"problem": str(exc)}


# -- accounts -----------------------------------------------------------------------------
def _users_page(request: Request, status: int = 200, **shown: Any) -> HTMLResponse:
    ctx = page_context(request)
    users = identity_of(request).accounts.list()
    values: dict[str, Any] = {"users": users, "roles": ROLES, "problem": "", "signin_link": ""}
    values |= {"made_for": "", "problems": {}, "form": {"email": "", "role": "viewer"}}
    return render(ctx, "users.html", status, **(values | shown))


def _user(request: Request, user_id: str) -> User:
    try:
        return identity_of(request).accounts.get(user_id)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None


def _json(user: User) -> dict[str, str]:
    return {"email": user.email, "role": user.role}


@router.get("/users", response_class=HTMLResponse, openapi_extra=USERS)
def users_page(request: Request) -> HTMLResponse:
    """Accounts and their roles."""
    return _users_page(request)


@router.post("/users", response_class=HTMLResponse, openapi_extra=USERS)
def add_user(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=20)] = "viewer",
) -> HTMLResponse:
    """Add an account; its one-time sign-in link is shown once."""
    try:
        user, token = identity_of(request).accounts.add(email, role)
    except AccountError as exc:
        form = {"email": email, "role": role}
        return _users_page(request, 400, form=form, **_by_field(exc))
    audit(request, "user.add", user.email, None, _json(user))
    link = f"{_external(request)}/signin/link/{token}"
    return _users_page(request, signin_link=link, made_for=user.email)


@router.post("/users/{user_id}/role", response_class=HTMLResponse, openapi_extra=USERS)
def change_role(
    request: Request, user_id: str, role: Annotated[str, Form(max_length=20)]
) -> HTMLResponse:
    """Give an account another role (the last admin stays one)."""
    try:
        before, after = identity_of(request).accounts.set_role(_user(request, user_id).email, role)
    except AccountError as exc:
        return _users_page(request, 400, problem=str(exc))
    audit(request, "user.role", after.email, _json(before), _json(after))
    return _users_page(request)


@router.post("/users/{user_id}/link", response_class=HTMLResponse, openapi_extra=USERS)
def new_link(request: Request, user_id: str) -> HTMLResponse:
    """A new one-time sign-in link (a forgotten password), shown once."""
    user = _user(request, user_id)
    token = identity_of(request).accounts.issue_link(user.id)
    audit(request, "user.link", user.email, None, None)
    link = f"{_external(request)}/signin/link/{token}"
    return _users_page(request, signin_link=link, made_for=user.email)


@router.post("/users/{user_id}/remove", response_class=HTMLResponse, openapi_extra=USERS)
def remove_user(request: Request, user_id: str) -> HTMLResponse:
    """Remove an account: its sessions, links and tokens end with it."""
    try:
        gone = identity_of(request).accounts.remove(_user(request, user_id).email)
    except AccountError as exc:
        return _users_page(request, 400, problem=str(exc))
    audit(request, "user.remove", gone.email, _json(gone), None)
    return _users_page(request)


# -- personal API tokens ------------------------------------------------------------------------
def _everyone(visitor: Visitor) -> bool:
    return permits(visitor, Action.MANAGE_TOKENS)


def _tokens_page(request: Request, status: int = 200, **shown: Any) -> HTMLResponse:
    visitor = visitor_of(request)
    tokens = identity_of(request).tokens
    listed = (
        tokens.list() if _everyone(visitor) else tokens.list(visitor.user) if visitor.user else []
    )
    values = {
        "tokens": listed,
        "scopes": SCOPES,
        "problem": "",
        "secret": "",
        "everyone": _everyone(visitor),
        "problems": {},
        "form": {"scope": "read", "label": ""},
    }
    return render(page_context(request), "tokens.html", status, **(values | shown))


@router.get("/tokens", response_class=HTMLResponse, openapi_extra=TOKENS)
def tokens_page(request: Request) -> HTMLResponse:
    """One's API tokens (an admin's: everyone's)."""
    return _tokens_page(request)


@router.post("/tokens", response_class=HTMLResponse, openapi_extra=TOKENS)
def create_token(
    request: Request,
    scope: Annotated[str, Form(max_length=10)] = "read",
    label: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """A personal API token, shown once."""
    owner = visitor_of(request).user
    if owner is None:
        raise HTTPException(403, "API tokens are made by a signed-in person")
    try:
        secret, made = identity_of(request).tokens.create(owner, scope, label.strip())
    except ValueError as exc:  # the scope is the one thing that can be wrong
        form = {"scope": scope, "label": label}
        return _tokens_page(request, 400, problems={"scope": str(exc)}, form=form)
    audit(
        request,
        "token.create",
        made.id,
        None,
        {"owner": owner.email, "scope": made.scope, "label": made.label},
    )
    return _tokens_page(request, secret=secret)


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse, openapi_extra=TOKENS)
def revoke_token(request: Request, token_id: str) -> HTMLResponse:
    """Revoke one's token (an admin: anyone's)."""
    visitor = visitor_of(request)
    mine = None if _everyone(visitor) else visitor.user
    if mine is None and not _everyone(visitor):
        raise HTTPException(403, "API tokens are revoked by a signed-in person")
    gone = identity_of(request).tokens.revoke(token_id, mine)
    if gone is None:
        return _tokens_page(request, 404, problem=f"no active token {token_id} of yours")
    audit(request, "token.revoke", token_id, {"state": "active"}, {"state": "revoked"})
    return _tokens_page(request)


# -- share links ----------------------------------------------------------------------------
def _link_json(link: ShareLink) -> dict[str, Any]:
    return {
        "apps": list(link.apps),
        "envs": list(link.envs),
        "pages": list(link.pages),
        "expires_at": link.expires_at,
    }


def _links_page(request: Request, status: int = 200, **shown: Any) -> HTMLResponse:
    ctx = page_context(request)
    pairs = [] if ctx.down else request.app.state.scopes.pairs()
    values = {
        "links": identity_of(request).links.list(),
        "pages": PAGES,
        "all_apps": sorted({a for a, _ in pairs}),
        "all_envs": sorted({e for _, e in pairs}),
        "default_days": request.app.state.settings.access.share_days,
        "problem": "",
        "problems": {},
        "share_url": "",
        "form": {"apps": [], "envs": [], "pages": list(PAGES), "days": "", "label": ""},
    }
    return render(ctx, "links.html", status, **(values | shown))


@router.get("/links", response_class=HTMLResponse, openapi_extra=LINKS)
def links_page(request: Request) -> HTMLResponse:
    """Read-only share links: scope, creator, expiry, last use, views."""
    return _links_page(request)


@router.post("/links", response_class=HTMLResponse, openapi_extra=LINKS)
async def create_link(request: Request) -> HTMLResponse:
    """A read-only link to some apps × envs × pages, shown once."""
    form = await request.form()
    apps, envs, pages = (list(map(str, form.getlist(k))) for k in ("apps", "envs", "pages"))
    days_text, label = (str(form.get(k, "") or "")[:200] for k in ("days", "label"))
    sent = {"apps": apps, "envs": envs, "pages": pages, "days": days_text, "label": label}
    try:
        days = float(days_text) if days_text else None
    except ValueError:
        wrong = {"days": f"{days_text!r} is not a number"}
        return _links_page(request, 400, problems=wrong, form=sent)
    who = visitor_of(request).name
    try:
        token, link = identity_of(request).links.create(who, apps, envs, pages, days, label)
    except LinkError as exc:
        return _links_page(request, 400, form=sent, **_by_field(exc))
    audit(request, "link.create", link.id, None, _link_json(link))
    return _links_page(request, share_url=f"{_external(request)}/s/{token}")


@router.post("/links/{link_id}/revoke", response_class=HTMLResponse, openapi_extra=LINKS)
def revoke_link(request: Request, link_id: str) -> HTMLResponse:
    """Revoke a link: refused from its next request on."""
    gone = identity_of(request).links.revoke(link_id)
    if gone is None:
        return _links_page(request, 404, problem=f"no active share link {link_id}")
    audit(request, "link.revoke", link_id, _link_json(gone), None)
    return _links_page(request)
