"""API tokens of the alerting HTTP API: the personal and service tokens of the identity
store (:mod:`shiftright_server.infra.access.tokens`), seen through the interface the API
checks keys with (a token's role where an ingest key has its app). The older token file,
``<state dir>/alerting/api-tokens.sqlite``, is taken over when the store opens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shiftright_server.infra.access.identity import Identity, open_identity
from shiftright_server.infra.access.ingest_keys import IngestKey, Lookup
from shiftright_server.infra.access.tokens import ApiToken

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

#: What a token may do: viewers read; editors (and admins) also change rules and silences.
ROLES = ("viewer", "editor", "admin")


def _key(token: ApiToken) -> IngestKey:
    name = token.owner or token.label
    return IngestKey(token.id, token.role, None, name, token.created_at, token.revoked_at)


class IdentityTokens:
    """The identity store's API tokens as the alerting API's key checker."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    def create(self, role: str, env: str | None = None, label: str = "") -> tuple[str, IngestKey]:
        token, record = self.identity.tokens.create_unowned(role, label)
        return token, _key(record)

    def list(self) -> list[IngestKey]:
        return [_key(t) for t in self.identity.tokens.list()]

    def revoke(self, token_id: str) -> bool:
        return self.identity.tokens.revoke(token_id) is not None

    def check(self, token: str) -> Lookup:
        found = self.identity.tokens.check(token)
        if found.token is None:
            return Lookup(None, found.problem)
        return Lookup(_key(found.token), found.problem)


def open_tokens(settings: Settings) -> IdentityTokens:
    return IdentityTokens(open_identity(settings))
