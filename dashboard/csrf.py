"""CSRF protection for every form and unsafe method: a token derived (HMAC) from the
visitor's session id — or, before sign-in, from a random cookie of its own — that every
POST, PUT, PATCH and DELETE must carry, in the form field ``csrf_token`` (forms include
``_csrf.html``) or the ``X-CSRF-Token`` header (htmx sends it from the page's
``hx-headers``). Requests with an API token carry no ambient credential, so they need
none; nor does a signed one-click unsubscribe link, whose signature is its proof. A missing or wrong token is refused with 403 and nothing is done."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from shiftright_server.dashboard.permissions import Action, declared_action
from shiftright_server.dashboard.visitor import identity_of, visitor_of

FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE = ("GET", "HEAD", "OPTIONS")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def csrf_token(request: Request) -> str:
    """The token this visitor's forms carry ('' outside the permission check)."""
    visitor = visitor_of(request)
    if not visitor.csrf_seed:
        return ""
    return identity_of(request).sign(visitor.csrf_seed, "csrf").rpartition(".")[2]


async def verify_csrf(request: Request) -> None:
    if request.method in SAFE or visitor_of(request).kind == "token":
        return
    if declared_action(request.scope.get("route")) == Action.UNSUBSCRIBE:
        return  # the link's signature is the proof; mail clients POST it (RFC 8058)
    presented = request.headers.get(HEADER, "")
    if not presented and request.headers.get("content-type", "").startswith(FORMS):
        presented = str((await request.form()).get(FIELD, ""))
    expected = csrf_token(request)
    if not expected or not hmac.compare_digest(presented, expected):
        raise HTTPException(
            403, "the form's CSRF token is missing or wrong: reload the page and try again"
        )
