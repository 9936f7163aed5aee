"""Who is asking the HTTP APIs (alerting, flags): a bearer token of the identity store,
bound to a role — a personal token acts with its owner's role (a ``read`` token as a
viewer), a service token with its own. Viewers read; editors and admins also change.
Every change goes to the audit trail with the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from shiftright_server.infra.access.audit import Audit, AuditEntry, MemoryAudit
from shiftright_server.producers.gateway.errors import Rejected

if TYPE_CHECKING:
    from shiftright_server.producers.gateway.app import KeyChecker

_RANK = {"viewer": 0, "editor": 1, "admin": 2}


@dataclass(frozen=True)
class Caller:
    role: str  # viewer | editor | admin
    name: str  # the token's owner or label, or "token <id>"; "anonymous" without a token
    address: str = ""  # where the request came from (for the audit trail)

    @property
    def actor(self) -> str:
        """As change events name it: a person's e-mail, else ``token:<name>``."""
        return self.name if "@" in self.name else f"token:{self.name}"


class TokenGate:
    """Checks each request's token; records changes (``what``: what the API changes, for
    the refusals' wording)."""

    what = "this"

    def __init__(self, tokens: KeyChecker, anonymous_reads: bool, audit: Audit | None) -> None:
        self.tokens = tokens
        self.anonymous_reads = anonymous_reads
        self.audit = audit or MemoryAudit()

    def record(self, who: Caller, action: str, target: str, before: Any, after: Any) -> None:
        entry = AuditEntry(who.name, who.role, action, target, before, after, who.address, "api")
        self.audit.record(entry)

    def caller(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            if self.anonymous_reads and request.method in ("GET", "HEAD"):
                return Caller("viewer", "anonymous")
            raise Rejected(
                401,
                "key_missing",
                "send an API token: 'Authorization: Bearer srt_…' (shiftright tokens create)",
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise Rejected(
                401, "key_malformed", "the Authorization header must be 'Bearer <token>'"
            )
        found = self.tokens.check(token.strip())
        if found.problem == "revoked":
            raise Rejected(
                401, "key_revoked", f"the token {found.key.id if found.key else ''} was revoked"
            )
        if found.key is None or found.key.app not in _RANK:
            raise Rejected(401, "key_unknown", "not an API token (shiftright tokens list)")
        address = request.client.host if request.client else ""
        return Caller(found.key.app, found.key.label or f"token {found.key.id}", address)

    def viewer(self, request: Request) -> Caller:
        return self.caller(request)

    def editor(self, request: Request) -> Caller:
        who = self.caller(request)
        if _RANK[who.role] < _RANK["editor"]:
            raise Rejected(
                403,
                "forbidden",
                f"a {who.role} token may read, not change, {self.what} "
                "(a write token of an editor may: shiftright tokens create --scope write)",
            )
        return who


def _viewer(request: Request) -> Caller:
    gate: TokenGate = request.app.state.gate
    return gate.viewer(request)


def _editor(request: Request) -> Caller:
    gate: TokenGate = request.app.state.gate
    return gate.editor(request)


#: Route parameters: the caller, refused unless it may read (``Viewer``) or change.
Viewer = Annotated[Caller, Depends(_viewer)]
Editor = Annotated[Caller, Depends(_editor)]
