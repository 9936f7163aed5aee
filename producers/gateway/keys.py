"""Per-app ingest keys, stored hashed in SQLite under the state directory.

A key looks like ``sr_<id>_<secret>``. Only the SHA-256 of the whole key is stored (the
secret is 256 random bits, so a fast hash is enough; nothing to brute-force). A key is
bound to one app and, optionally, one environment; revoking it takes effect on the next
request, because every request looks its key up (one indexed SQLite read).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "sr_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_keys (
    id TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    env TEXT,
    label TEXT NOT NULL DEFAULT '',
    key_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


@dataclass(frozen=True, slots=True)
class IngestKey:
    id: str
    app: str
    env: str | None
    label: str
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome of checking a presented key: the key, or why it was not accepted."""

    key: IngestKey | None
    problem: str = ""  # "", "malformed", "unknown", "revoked"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``sr_<id>_<secret>`` → (id, secret), or None when it is not shaped like a key."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


class KeyStore:
    """Create, list, revoke and check ingest keys (thread-safe; usable across processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=2.0, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def create(self, app: str, env: str | None = None, label: str = "") -> tuple[str, IngestKey]:
        """A new key: the token (shown once) and its stored record."""
        if not app:
            raise ValueError("a key must be bound to an app")
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO ingest_keys (id, app, env, label, key_sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, app, env or None, label, hash_key(token), created),
            )
        return token, IngestKey(key_id, app, env or None, label, created, None)

    def list(self) -> list[IngestKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, app, env, label, created_at, revoked_at FROM ingest_keys "
                "ORDER BY created_at, id"
            ).fetchall()
        return [IngestKey(*row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by id; False when no such key is active."""
        revoked = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._db:
            cursor = self._db.execute(
                "UPDATE ingest_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (revoked, key_id),
            )
        return cursor.rowcount == 1

    def check(self, token: str) -> Lookup:
        parts = split_token(token)
        if parts is None:
            return Lookup(None, "malformed")
        with self._lock:
            row = self._db.execute(
                "SELECT id, app, env, label, created_at, revoked_at, key_sha256 "
                "FROM ingest_keys WHERE id = ?",
                (parts[0],),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[6], hash_key(token)):
            return Lookup(None, "unknown")
        key = IngestKey(*row[:6])
        return Lookup(key, "revoked" if key.revoked else "")

    def close(self) -> None:
        with self._lock:
            self._db.close()
