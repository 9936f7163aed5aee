"""Per-app ingest keys of the gateway, stored hashed in SQLite under the state directory
(``<state dir>/gateway/keys.sqlite``; ``shiftright gateway keys`` and the dashboard's
``/keys`` page manage them, the gateway checks them).

A key looks like ``sr_<id>_<secret>``. Only the SHA-256 of the whole key is stored (the
secret is 256 random bits, so a fast hash is enough; nothing to brute-force). A key is
bound to one app and, optionally, one environment; revoking it takes effect on the next
request, because every request looks its key up (one indexed SQLite read). Its last use
is written at most once a minute per key and process, so checking stays a read.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shiftright_server.infra.settings import Settings

PREFIX = "sr_"
#: Seconds between two writes of one key's last use by one process.
LAST_USE_EVERY_S = 60.0

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
#: Columns added since the table's first version (a key file made before gets them).
_ADDED = {"created_by": "TEXT NOT NULL DEFAULT ''", "last_used_at": "TEXT"}
_COLUMNS = "id, app, env, label, created_at, revoked_at, created_by, last_used_at"


def keys_path(settings: Settings) -> Path:
    return settings.resolved_state_dir() / "gateway" / "keys.sqlite"


@dataclass(frozen=True, slots=True)
class IngestKey:
    id: str
    app: str
    env: str | None
    label: str
    created_at: str
    revoked_at: str | None
    created_by: str = ""  # who made it (an e-mail, or the CLI's user)
    last_used_at: str | None = None  # to the minute

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome of checking a presented key: the key, or why it was not accepted."""

    key: IngestKey | None
    problem: str = ""  # "", "malformed", "unknown", "revoked"


#: What an app or env name may be (what apps send as ``service.name`` / environment).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


class KeyRefused(ValueError):
    """A key that cannot be made as asked; ``field`` names the form field (app, env)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def key_json(key: IngestKey) -> dict[str, str | None]:
    """What the audit trail records of a key (never the key itself)."""
    return {"app": key.app, "env": key.env, "label": key.label}


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
        self._used: dict[str, float] = {}  # key id -> monotonic time of the last write
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(ingest_keys)")}
            for column, kind in _ADDED.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE ingest_keys ADD COLUMN {column} {kind}")

    def create(
        self, app: str, env: str | None = None, label: str = "", created_by: str = ""
    ) -> tuple[str, IngestKey]:
        """A new key: the token (shown once) and its stored record."""
        if not app:
            raise KeyRefused("app", "a key must be bound to an app")
        for field, name in (("app", app), ("env", env)):
            if name and not NAME.fullmatch(name):
                raise KeyRefused(
                    field, f"{name[:100]!r} is not an {field} name (letters, digits, . _ : -)"
                )
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO ingest_keys (id, app, env, label, key_sha256, created_at, "
                "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, app, env or None, label, hash_key(token), created, created_by),
            )
        return token, IngestKey(key_id, app, env or None, label, created, None, created_by)

    def list(self) -> list[IngestKey]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM ingest_keys ORDER BY created_at, id"
            ).fetchall()
        return [IngestKey(*row) for row in rows]

    def get(self, key_id: str) -> IngestKey | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM ingest_keys WHERE id = ?", (key_id,)
            ).fetchone()
        return IngestKey(*row) if row else None

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
                f"SELECT {_COLUMNS}, key_sha256 FROM ingest_keys WHERE id = ?",
                (parts[0],),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[-1], hash_key(token)):
            return Lookup(None, "unknown")
        key = IngestKey(*row[:-1])
        if not key.revoked:
            self._note_use(key.id)
        return Lookup(key, "revoked" if key.revoked else "")

    def _note_use(self, key_id: str) -> None:
        """Write the key's last use, at most every :data:`LAST_USE_EVERY_S` seconds."""
        now = time.monotonic()
        with self._lock:
            if now - self._used.get(key_id, -LAST_USE_EVERY_S) < LAST_USE_EVERY_S:
                return
            self._used[key_id] = now
            used = datetime.now(UTC).isoformat(timespec="minutes")
            with contextlib.suppress(sqlite3.OperationalError), self._db:  # busy: next time
                self._db.execute(
                    "UPDATE ingest_keys SET last_used_at = ? WHERE id = ?", (used, key_id)
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()
