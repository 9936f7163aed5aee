"""Personal API tokens for the alerting HTTP API and the command line: ``srt_<id>_<secret>``
(256 random bits), only the SHA-256 stored, shown once, revocable, scoped ``read`` or
``write``. A token acts for its owner with at most the owner's role (a ``read`` token as a
viewer). Tokens made before accounts existed (``sr_<id>_<secret>`` in
``<state dir>/alerting/api-tokens.sqlite``) are taken over once, as tokens owned by no one
that keep their role.

Ingest keys (the gateway's ``sr_`` keys bound to an app) live elsewhere and are never
accepted here: they ship inside apps, so they must never read or change anything.
"""

from __future__ import annotations

import builtins
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shiftright_server.infra.access.accounts import RANK, Role, User, check_role
from shiftright_server.infra.access.db import Clock, Db, digest, new_secret, now_utc, stamp

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = ("read", "write")
PREFIXES = ("srt_", "sr_")


@dataclass(frozen=True)
class ApiToken:
    id: str
    owner: str  # the owner's e-mail ('' for a token owned by no one)
    role: Role  # what the token may do: its scope within its owner's role
    scope: Scope
    label: str
    created_at: str
    last_used: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class TokenCheck:
    token: ApiToken | None
    problem: str = ""  # '', 'malformed', 'unknown', 'revoked'


def _split(token: str) -> str | None:
    for prefix in PREFIXES:
        if token.startswith(prefix):
            token_id, sep, secret = token[len(prefix) :].partition("_")
            if sep and len(token_id) == 12 and secret:
                return token_id
    return None


class ApiTokens:
    def __init__(self, db: Db, clock: Clock = now_utc) -> None:
        self._db, self._clock = db, clock

    def create(self, owner: User, scope: str, label: str = "") -> tuple[str, ApiToken]:
        """A new token (the secret, shown once, and its record)."""
        if scope not in SCOPES:
            raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        role = owner.role if scope == "write" else "viewer"  # kept for ownerless tokens
        token_id = secrets.token_hex(6)
        token = f"srt_{token_id}_{new_secret()}"
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO api_tokens (id, user_id, role, scope, label, digest, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, owner.id, role, scope, label, digest(token), stamp(self._clock())),
            )
        return token, self.get(token_id)

    def create_unowned(self, role: str, label: str = "") -> tuple[str, ApiToken]:
        """A token owned by no one, with a role of its own (for a service, a CI job)."""
        checked = check_role(role)
        scope = "write" if RANK[checked] >= RANK["editor"] else "read"
        token_id = secrets.token_hex(6)
        token = f"srt_{token_id}_{new_secret()}"
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO api_tokens (id, user_id, role, scope, label, digest, created_at) "
                "VALUES (?, NULL, ?, ?, ?, ?, ?)",
                (token_id, checked, scope, label, digest(token), stamp(self._clock())),
            )
        return token, self.get(token_id)

    def get(self, token_id: str) -> ApiToken:
        rows = self._select("WHERE t.id = ?", (token_id,))
        if not rows:
            raise LookupError(f"no token {token_id}")
        return rows[0]

    def list(self, owner: User | None = None) -> list[ApiToken]:
        if owner is None:
            return self._select("ORDER BY t.created_at, t.id", ())
        return self._select("WHERE t.user_id = ? ORDER BY t.created_at, t.id", (owner.id,))

    def revoke(self, token_id: str, owner: User | None = None) -> ApiToken | None:
        """Revoke (``owner``: only among theirs); None when no such active token."""
        mine = "" if owner is None else " AND user_id = ?"
        args: tuple[str, ...] = (token_id,) if owner is None else (token_id, owner.id)
        with self._db.tx() as c:
            done = c.execute(
                f"UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL{mine}",
                (stamp(self._clock()), *args),
            )
        return self.get(token_id) if done.rowcount == 1 else None

    def check(self, token: str) -> TokenCheck:
        token_id = _split(token)
        if token_id is None:
            return TokenCheck(None, "malformed")
        row = self._db.one("SELECT digest FROM api_tokens WHERE id = ?", (token_id,))
        if row is None or not secrets.compare_digest(row[0], digest(token)):
            return TokenCheck(None, "unknown")
        found = self.get(token_id)
        if found.revoked_at is not None:
            return TokenCheck(found, "revoked")
        with self._db.tx() as c:
            c.execute(
                "UPDATE api_tokens SET last_used = ? WHERE id = ?",
                (stamp(self._clock()), token_id),
            )
        return TokenCheck(found)

    def adopt(self, legacy: Path) -> int:
        """Take over the alerting API's older token file (once; re-running adds nothing)."""
        if not legacy.exists():
            return 0
        with sqlite3.connect(legacy) as old:
            rows = old.execute(
                "SELECT id, app, label, key_sha256, created_at, revoked_at FROM ingest_keys"
            ).fetchall()
        adopted = 0
        with self._db.tx() as c:
            for token_id, role, label, sha, created, revoked in rows:
                scope = "write" if RANK.get(role, 0) >= RANK["editor"] else "read"
                done = c.execute(
                    "INSERT OR IGNORE INTO api_tokens (id, user_id, role, scope, label, digest, "
                    "created_at, revoked_at) VALUES (?, NULL, ?, ?, ?, ?, ?, ?)",
                    (token_id, check_role(role), scope, label, sha, created, revoked),
                )
                adopted += done.rowcount
        return adopted

    def _select(self, where: str, args: tuple[str, ...]) -> builtins.list[ApiToken]:
        rows = self._db.all(
            "SELECT t.id, coalesce(u.email, ''), coalesce(u.role, t.role), t.scope, t.label, "
            "t.created_at, t.last_used, t.revoked_at "
            f"FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id {where}",
            args,
        )
        return [_token(r) for r in rows]


def _token(r: tuple[str, ...]) -> ApiToken:
    # a write token acts with its owner's present role; a read token as a viewer
    scope: Scope = "write" if r[3] == "write" else "read"
    role = check_role(r[2]) if scope == "write" else "viewer"
    return ApiToken(r[0], r[1], role, scope, r[4], r[5], r[6], r[7])
