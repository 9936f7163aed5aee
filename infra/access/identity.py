"""The identity store as one object (:class:`Identity`) over one SQLite file, opened by
every process that needs it with :func:`open_identity`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from shiftright_server.infra.access.accounts import Accounts, Throttle
from shiftright_server.infra.access.db import Clock, Db, now_utc
from shiftright_server.infra.access.links import ShareLinks
from shiftright_server.infra.access.sessions import Sessions
from shiftright_server.infra.access.subscriptions import Subscriptions
from shiftright_server.infra.access.tokens import ApiTokens

if TYPE_CHECKING:
    from shiftright_server.infra.settings import AccessSettings, Settings


@dataclass
class Identity:
    db: Db
    accounts: Accounts
    sessions: Sessions
    tokens: ApiTokens
    links: ShareLinks
    subscriptions: Subscriptions
    key: bytes  # signs cookies and derives CSRF tokens

    def sign(self, value: str, purpose: str) -> str:
        mac = hmac.new(self.key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
        return f"{value}.{mac[:32]}"

    def unsign(self, signed: str, purpose: str) -> str | None:
        value, _, _mac = signed.rpartition(".")
        if value and hmac.compare_digest(self.sign(value, purpose), signed):
            return value
        return None

    def unsubscribe_token(self, sub_id: str) -> str:
        """What a one-click unsubscribe link carries: the subscription's id, signed."""
        return self.sign(sub_id, "unsubscribe")

    def unsubscribed(self, token: str) -> str | None:
        """The subscription id of a genuine unsubscribe token."""
        return self.unsign(token, "unsubscribe")

    def close(self) -> None:
        self.db.close()


def identity_path(settings: Settings) -> Path:
    return settings.resolved_state_dir() / "access" / "identity.sqlite"


def build_identity(
    path: Path,
    access: AccessSettings,
    hasher: PasswordHasher | None = None,
    clock: Clock = now_utc,
) -> Identity:
    db = Db(path)
    window = timedelta(minutes=access.signin_window_minutes)
    throttle = Throttle(db, access.signin_max_failures, window, clock)
    link_ttl = timedelta(hours=access.signin_link_hours)
    return Identity(
        db,
        Accounts(db, throttle, link_ttl, hasher, clock),
        Sessions(
            db,
            timedelta(minutes=access.session_idle_minutes),
            timedelta(hours=access.session_max_hours),
            clock,
        ),
        ApiTokens(db, clock),
        ShareLinks(db, timedelta(days=access.share_days), clock),
        Subscriptions(db, clock),
        _key(db),
    )


def open_identity(settings: Settings) -> Identity:
    """The store under the state directory (the older alerting API tokens taken over)."""
    identity = build_identity(identity_path(settings), settings.access)
    legacy = settings.resolved_state_dir() / "alerting" / "api-tokens.sqlite"
    identity.tokens.adopt(legacy)
    return identity


def _key(db: Db) -> bytes:
    """The signing key, made once per state directory (never leaves the file)."""
    with db.tx() as c:
        c.execute(
            "INSERT OR IGNORE INTO settings (name, value) VALUES ('signing_key', ?)",
            (secrets.token_hex(32),),
        )
    row = db.one("SELECT value FROM settings WHERE name = 'signing_key'")
    assert row is not None
    return bytes.fromhex(row[0])
