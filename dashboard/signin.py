"""Signing in and out, and opening a share link.

* ``GET /signin`` — the form; ``POST /signin`` — e-mail and password (throttled per
  account and per address: 429 with ``Retry-After``); a new session each time, the one
  the browser held before (if any) ended, so a planted session id is worth nothing.
* ``GET /signin/link/{token}`` — a one-time sign-in link's page: choose a password;
  ``POST`` uses the link up and signs in.
* ``POST /signout`` — ends the session on the server and clears the cookie.
* ``GET /s/{token}`` — opens a read-only share link: its cookie, then its first page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from shiftright_server.dashboard.permissions import Action, check_permission, route_action
from shiftright_server.dashboard.render import render_problem
from shiftright_server.dashboard.visitor import (
    SESSION_COOKIE,
    SHARE_COOKIE,
    address_of,
    identity_of,
    set_cookie,
    visitor_of,
)
from shiftright_server.infra.access.accounts import AccountError, User
from shiftright_server.infra.access.audit import AuditEntry
from starlette.concurrency import run_in_threadpool

router = APIRouter(dependencies=[Depends(check_permission)])
PUBLIC = route_action(Action.PUBLIC)
#: Where each shared page lives.
PAGE_PATHS = {"overview": "/", "usage": "/usage", "errors": "/errors", "health": "/health"}


def _plain(request: Request, template: str, status: int = 200, **values: object) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]  # Starlette's response is untyped here
        request, template, values, status_code=status
    )


def _safe_next(target: str) -> str:
    """Only a path on this dashboard (never another site)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _signed_in(request: Request, user: User, target: str) -> Response:
    identity = identity_of(request)
    replacing = visitor_of(request).session_id
    session = identity.sessions.start(user, address_of(request), replacing)
    response = RedirectResponse(_safe_next(target), status_code=303)
    max_age = int(identity.sessions.absolute.total_seconds())
    set_cookie(request, response, SESSION_COOKIE, identity.sign(session.id, "session"), max_age)
    response.delete_cookie(SHARE_COOKIE, path="/")
    request.app.state.audit.record(
        AuditEntry(
            user.email,
            user.role,
            "session.start",
            user.email,
            address=address_of(request),
            via="dashboard",
        )
    )
    return response


@router.get("/signin", response_class=HTMLResponse, openapi_extra=PUBLIC)
def signin_page(request: Request, next: str = "/") -> HTMLResponse:
    """The sign-in form."""
    return _plain(request, "signin.html", next=_safe_next(next), email="", problem="")


@router.post("/signin", openapi_extra=PUBLIC)
async def signin(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password; sign in with a new session."""
    accounts = identity_of(request).accounts
    outcome = await run_in_threadpool(accounts.sign_in, email, password, address_of(request))
    if outcome.user is not None:
        return _signed_in(request, outcome.user, next)
    if outcome.retry_after:
        problem = f"Too many failed sign-ins: try again in {outcome.retry_after} s."
        page = _plain(
            request, "signin.html", 429, next=_safe_next(next), email=email, problem=problem
        )
        page.headers["Retry-After"] = str(outcome.retry_after)
        return page
    problem = "Wrong e-mail or password."
    return _plain(request, "signin.html", 401, next=_safe_next(next), email=email, problem=problem)


@router.get("/signin/link/{token}", response_class=HTMLResponse, openapi_extra=PUBLIC)
def link_page(request: Request, token: str) -> HTMLResponse:
    """A one-time sign-in link: choose a password (the link is used when it is sent)."""
    user = identity_of(request).accounts.link_user(token)
    if user is None:
        return _plain(request, "link.html", 404, user=None, token="", problem="")
    return _plain(request, "link.html", user=user, token=token, problem="")


@router.post("/signin/link/{token}", openapi_extra=PUBLIC)
async def use_link(
    request: Request, token: str, password: Annotated[str, Form(max_length=1024)]
) -> Response:
    """Set the password and sign in; the link cannot be used again."""
    accounts = identity_of(request).accounts
    try:
        user = await run_in_threadpool(accounts.redeem_link, token, password)
    except AccountError as exc:
        again = accounts.link_user(token)
        return _plain(request, "link.html", 400, user=again, token=token, problem=str(exc))
    if user is None:
        return _plain(request, "link.html", 404, user=None, token="", problem="")
    return _signed_in(request, user, "/")


@router.post("/signout", openapi_extra=PUBLIC)
def signout(request: Request) -> Response:
    """End the session (on the server too) and forget the cookies."""
    visitor = visitor_of(request)
    if visitor.session_id:
        identity_of(request).sessions.end(visitor.session_id)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(SHARE_COOKIE, path="/")
    return response


@router.get("/s/{token}", openapi_extra=PUBLIC)
def open_share(request: Request, token: str) -> Response:
    """A read-only share link: remembered by a cookie, then its first page."""
    identity = identity_of(request)
    check = identity.links.check(token, view=False)
    if check.link is None or check.problem:
        why = {"expired": "has expired", "revoked": "was revoked"}.get(
            check.problem, "is not valid"
        )
        return render_problem(request, 404, "Link not valid", f"This share link {why}.")
    link = check.link
    first = PAGE_PATHS[next(p for p in PAGE_PATHS if p in link.pages)]
    query = urlencode({"app": link.apps[0], "env": link.envs[0]})
    response = RedirectResponse(f"{first}?{query}", status_code=303)
    set_cookie(request, response, SHARE_COOKIE, identity.sign(token, "share"))
    return response
