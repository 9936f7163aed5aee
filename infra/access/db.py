"""The identity database: one SQLite file (WAL, so several processes share it), its
tables, and the helpers every part of :mod:`shiftright_server.infra.access` uses."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

Clock = Callable[[], datetime]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_links (
    digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS signin_failures (
    subject TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS signin_failures_subject ON signin_failures (subject, at);
CREATE TABLE IF NOT EXISTS api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS share_links (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    apps TEXT NOT NULL,
    envs TEXT NOT NULL,
    pages TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    last_used TEXT,
    views INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    app TEXT NOT NULL DEFAULT '',
    env TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT '',
    rule TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'immediate'
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def now_utc() -> datetime:
    return datetime.now(UTC)


def stamp(at: datetime) -> str:
    """A time as stored: ISO 8601 in UTC (sorts as text)."""
    return at.astimezone(UTC).isoformat(timespec="seconds")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored of a random secret: its SHA-256 (nothing to brute-force in 256 bits)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Minted:
    """A new random secret as the stores keep it (sign-in links, sessions, share links):
    the token, given out once; its digest, all that is stored; when it was made and when
    it expires ('' for no expiry), as stored times."""

    token: str
    digest: str
    made: str
    expires: str


def mint(clock: Clock, ttl: timedelta | None = None) -> Minted:
    """A new secret made now (``clock``), expiring ``ttl`` later (None: never)."""
    token, now = new_secret(), clock()
    expires = "" if ttl is None else stamp(now + ttl)
    return Minted(token, digest(token), stamp(now), expires)


class Db:
    """One connection per process, serialised by a lock (SQLite serialises writers anyway)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, timeout=5.0, check_same_thread=False)
        path.chmod(0o600)
        with self.tx() as c:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA foreign_keys=ON")
            c.executescript(_SCHEMA)
            _add_missing_columns(c)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        with self._lock, self._conn:
            self._conn.execute("PRAGMA foreign_keys=ON")
            yield self._conn

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._conn.execute(sql, args).fetchone()
            return row

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _add_missing_columns(c: sqlite3.Connection) -> None:
    """Columns added to tables after a store was made."""
    have = {row[1] for row in c.execute("PRAGMA table_info(subscriptions)")}
    if "mode" not in have:
        c.execute("ALTER TABLE subscriptions ADD COLUMN mode TEXT NOT NULL DEFAULT 'immediate'")
