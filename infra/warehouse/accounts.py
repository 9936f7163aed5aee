"""Who may talk to the embedded warehouse, and what they may do.

Without accounts the warehouse answers anyone who reaches its port, which is why it
then listens on loopback only. With accounts (``shiftright users warehouse add``) every
request must name one, the way a ClickHouse server takes them: HTTP basic auth, the
``X-ClickHouse-User`` / ``X-ClickHouse-Key`` headers, or ``user`` / ``password`` URL
parameters.

- ``reader`` (analysts, dashboards, notebooks): read-only at the warehouse — every
  statement is held to the read-only rules, whatever settings the client sends.
- ``writer`` (the sink, the stream workers, migrations): everything.

Keys are generated here (256 random bits, shown once) and kept as SHA-256 digests in
``accounts.json``: a key that random needs no slow hash, and a request costs one digest.
The file is re-read when it changes, so accounts added or removed while the warehouse
runs take effect at the next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from shiftright_server.infra.warehouse import errors

Role = Literal["reader", "writer"]
ROLES: tuple[Role, ...] = ("reader", "writer")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    digest: str
    created_at: str

    @property
    def read_only(self) -> bool:
        return self.role == "reader"


class AccountError(ValueError):
    """A bad account name, role, or an account that does not exist."""


class Accounts:
    """The accounts file: read by the warehouse, written by the CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._cache: dict[str, Account] = {}

    # -- reading (the warehouse) ---------------------------------------------------------
    def all(self) -> dict[str, Account]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._cache = None, {}
                return {}
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self._cache = _load(self.path)
                self._stamp = stamp
            return dict(self._cache)

    @property
    def enabled(self) -> bool:
        return bool(self.all())

    def authenticate(self, user: str | None, key: str | None) -> Account | None:
        """The account these credentials name; None when none are needed (no accounts).
        Raises a ClickHouse-shaped 516 AUTHENTICATION_FAILED otherwise."""
        known = self.all()
        if not known:
            return None
        account = known.get(user or "default")
        if account is None or key is None or not hmac.compare_digest(account.digest, _digest(key)):
            raise errors.WarehouseError(
                516,
                "AUTHENTICATION_FAILED",
                f"{user or 'default'}: Authentication failed: password is incorrect, or there "
                "is no user with such name",
            )
        return account

    # -- writing (the CLI) ---------------------------------------------------------------
    def add(self, name: str, role: Role) -> str:
        """Create ``name`` (or give it a new key); returns the key, which is not stored."""
        if not _NAME.match(name):
            raise AccountError(f"invalid account name {name!r}: letters, digits and _ . @ - only")
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}: use {' or '.join(ROLES)}")
        key = secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        self._write({**self.all(), name: Account(name, role, _digest(key), created)})
        return key

    def remove(self, name: str) -> None:
        known = self.all()
        if name not in known:
            raise AccountError(f"no warehouse account named {name!r}")
        del known[name]
        self._write(known)

    def _write(self, accounts: Mapping[str, Account]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            n: {"role": a.role, "sha256": a.digest, "created_at": a.created_at}
            for n, a in sorted(accounts.items())
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(body, out, indent=2)
        tmp.replace(self.path)


def credentials(
    headers: Mapping[str, str], params: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """(user, key) from a request, in ClickHouse's order: headers, basic auth, URL."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "x-clickhouse-user" in lower or "x-clickhouse-key" in lower:
        return lower.get("x-clickhouse-user"), lower.get("x-clickhouse-key")
    auth = lower.get("authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.bad_arguments("malformed Authorization header") from exc
        return user, key
    return params.get("user"), params.get("password")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _load(path: Path) -> dict[str, Account]:
    raw = json.loads(path.read_text() or "{}")
    return {
        name: Account(name, entry["role"], entry["sha256"], entry.get("created_at", ""))
        for name, entry in raw.items()
    }
