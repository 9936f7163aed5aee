"""Who is asking: every request is given a :class:`Visitor` by :func:`identify` (a
middleware) — a signed-in person (the session cookie), an API token (``Authorization:
Bearer``), a read-only share link (its cookie, set when the link is opened) or an
anonymous visitor — and the cookies that carry them are written on the way out.

The session cookie holds the session id and its signature (HttpOnly, SameSite=Lax,
Secure when the dashboard is reached over HTTPS); the session itself lives server side
(:mod:`shiftright_server.infra.access.sessions`), so signing out ends it everywhere.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from fastapi import HTTPException, Request, Response
from shiftright_server.infra.access.accounts import User
from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.access.links import ShareLink
from starlette.concurrency import run_in_threadpool

SESSION_COOKIE = "sr_session"
SHARE_COOKIE = "sr_share"
CSRF_COOKIE = "sr_csrf"


class GoTo(Exception):
    """Answer with a redirect (303) to ``url`` instead."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass(frozen=True)
class Visitor:
    kind: str  # anonymous | user | token | share
    name: str  # e-mail, "token <id>", "share link <id>", or "anonymous"
    role: str = ""  # viewer | editor | admin ('' for anonymous visitors and share links)
    user: User | None = None
    link: ShareLink | None = None
    session_id: str = ""
    csrf_seed: str = ""  # what the CSRF token is derived from

    @property
    def signed_in(self) -> bool:
        return self.kind in ("user", "token")


ANONYMOUS = Visitor("anonymous", "anonymous")


def visitor_of(request: Request) -> Visitor:
    found: Visitor = getattr(request.state, "visitor", ANONYMOUS)
    return found


def identity_of(request: Request) -> Identity:
    identity: Identity = request.app.state.identity
    return identity


def address_of(request: Request) -> str:
    return request.client.host if request.client else ""


def _lookup(request: Request, identity: Identity, csrf: str) -> Visitor:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        found = identity.tokens.check(token.strip())
        if found.token is None or found.problem:
            raise HTTPException(401, f"the API token is {found.problem or 'not valid'}")
        t = found.token
        return Visitor("token", t.owner or f"token {t.id}", t.role)
    signed = request.cookies.get(SESSION_COOKIE, "")
    session_id = identity.unsign(signed, "session") if signed else None
    if session_id:
        session = identity.sessions.get(session_id)
        if session is not None:
            u = session.user
            return Visitor("user", u.email, u.role, u, session_id=session_id, csrf_seed=session_id)
    shared = identity.unsign(request.cookies.get(SHARE_COOKIE, ""), "share")
    if shared:
        page = not request.url.path.startswith(("/panels/", "/static/"))
        check = identity.links.check(shared, view=page and request.method == "GET")
        if check.link is not None and not check.problem:
            name = f"share link {check.link.id}"
            return Visitor("share", name, link=check.link, csrf_seed=csrf)
    return Visitor("anonymous", "anonymous", csrf_seed=csrf)


async def identify(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """The middleware: the visitor in ``request.state.visitor``; cookies on the way out."""
    if request.url.path.startswith("/static/"):
        return await call_next(request)
    identity = identity_of(request)
    csrf = request.cookies.get(CSRF_COOKIE, "")
    fresh_csrf = "" if csrf else secrets.token_urlsafe(24)
    try:
        visitor = await run_in_threadpool(_lookup, request, identity, csrf or fresh_csrf)
    except HTTPException as exc:
        from shiftright_server.dashboard.render import render_problem

        return render_problem(request, exc.status_code, "Not signed in", str(exc.detail))
    request.state.visitor = visitor
    response = await call_next(request)
    if fresh_csrf:
        set_cookie(request, response, CSRF_COOKIE, fresh_csrf)
    return response


def secure(request: Request) -> bool:
    external = request.app.state.settings.access.external_url
    return request.url.scheme == "https" or str(external).startswith("https://")


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure(request),
        path="/",
    )


def refuse(request: Request, check: object) -> NoReturn:
    """Why not: an anonymous visitor is sent to sign in (pages) or told to (the rest)."""
    visitor = visitor_of(request)
    action = getattr(check, "action", "")
    path = getattr(check, "route", request.url.path)
    if visitor.kind == "anonymous":
        if request.method == "GET":
            raise GoTo(f"/signin?{_next(request)}")
        raise HTTPException(401, "sign in first")
    raise HTTPException(403, f"not allowed: {getattr(action, 'value', action)} on {path}")


def _next(request: Request) -> str:
    from urllib.parse import urlencode

    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return urlencode({"next": here})
