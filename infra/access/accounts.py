"""People: an account per e-mail address with a role, an argon2id password hash, and
one-time sign-in links (the way in for a new account and for a forgotten password).

Sign-in is throttled per account and per address (:class:`Throttle`): after too many
failures in a window, further attempts are refused unchecked until it passes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from shiftright_server.infra.access.db import (
    Clock,
    Db,
    digest,
    mint,
    new_secret,
    now_utc,
    parse_stamp,
    stamp,
)

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
RANK: dict[str, int] = {role: i for i, role in enumerate(ROLES)}
MIN_PASSWORD = 12


class AccountError(ValueError):
    """A request about accounts that cannot be done (the message says why; ``field``
    names the form field it is about, '' for none)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class User:
    id: str
    email: str
    role: Role
    has_password: bool
    created_at: str


def normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in cleaned):
        raise AccountError(f"{email!r} is not an e-mail address", "email")
    return cleaned


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}", "role")


class Throttle:
    """Failed sign-ins counted per subject (``account:<email>``, ``address:<ip>``)."""

    def __init__(self, db: Db, limit: int, window: timedelta, clock: Clock = now_utc) -> None:
        self._db, self.limit, self.window, self._clock = db, limit, window, clock

    def retry_after(self, subject: str, limit: int) -> int:
        """Seconds until ``subject`` may try again (0: now)."""
        since = stamp(self._clock() - self.window)
        rows = self._db.all(
            "SELECT at FROM signin_failures WHERE subject = ? AND at > ? ORDER BY at",
            (subject, since),
        )
        if len(rows) < limit:
            return 0
        oldest = parse_stamp(rows[-limit][0])
        return max(1, int((oldest + self.window - self._clock()).total_seconds()) + 1)

    def failed(self, *subjects: str) -> None:
        at = stamp(self._clock())
        with self._db.tx() as c:
            c.executemany(
                "INSERT INTO signin_failures (subject, at) VALUES (?, ?)",
                [(s, at) for s in subjects],
            )
            c.execute(
                "DELETE FROM signin_failures WHERE at < ?",
                (stamp(self._clock() - 2 * self.window),),
            )

    def clear(self, subject: str) -> None:
        with self._db.tx() as c:
            c.execute("DELETE FROM signin_failures WHERE subject = ?", (subject,))


@dataclass(frozen=True)
class SignIn:
    """The outcome of a password check: the user, or how long to wait (0: wrong password)."""

    user: User | None
    retry_after: int = 0


class Accounts:
    def __init__(
        self,
        db: Db,
        throttle: Throttle,
        link_ttl: timedelta,
        hasher: PasswordHasher | None = None,
        clock: Clock = now_utc,
    ) -> None:
        self._db, self.throttle, self._link_ttl = db, throttle, link_ttl
        self._hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._clock = clock
        self._dummy = ""  # a hash to verify against for unknown e-mails (equal work)

    # -- the people ------------------------------------------------------------------------
    def add(self, email: str, role: str) -> tuple[User, str]:
        """A new account and its one-time sign-in link token."""
        email, checked = normal_email(email), check_role(role)
        if self.find(email) is not None:
            raise AccountError(f"{email} already has an account", "email")
        user_id = secrets.token_hex(8)
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO users (id, email, role, created_at) VALUES (?, ?, ?, ?)",
                (user_id, email, checked, stamp(self._clock())),
            )
        return self.get(user_id), self.issue_link(user_id)

    def list(self) -> list[User]:
        return [user_of(r) for r in self._db.all(f"SELECT {_COLS} FROM users ORDER BY email")]

    def get(self, user_id: str) -> User:
        row = self._db.one(f"SELECT {_COLS} FROM users WHERE id = ?", (user_id,))
        if row is None:
            raise AccountError(f"no account {user_id}")
        return user_of(row)

    def find(self, email: str) -> User | None:
        row = self._db.one(f"SELECT {_COLS} FROM users WHERE email = ?", (email.strip().lower(),))
        return None if row is None else user_of(row)

    def by_email(self, email: str) -> User:
        found = self.find(email)
        if found is None:
            raise AccountError(f"no account for {email}")
        return found

    def set_role(self, email: str, role: str) -> tuple[User, User]:
        """(before, after)."""
        before, checked = self.by_email(email), check_role(role)
        if before.role == "admin" and checked != "admin":
            self._keep_an_admin(before)
        with self._db.tx() as c:
            c.execute("UPDATE users SET role = ? WHERE id = ?", (checked, before.id))
        return before, self.get(before.id)

    def remove(self, email: str) -> User:
        """Delete the account; its sessions, links and tokens go with it."""
        user = self.by_email(email)
        if user.role == "admin":
            self._keep_an_admin(user)
        with self._db.tx() as c:
            c.execute("DELETE FROM users WHERE id = ?", (user.id,))
        return user

    def _keep_an_admin(self, leaving: User) -> None:
        admins = [u for u in self.list() if u.role == "admin" and u.id != leaving.id]
        if not admins:
            raise AccountError(f"{leaving.email} is the last admin; make another admin first")

    # -- one-time sign-in links --------------------------------------------------------------
    def issue_link(self, user_id: str) -> str:
        """A new sign-in link token for the account (earlier unused links stay valid)."""
        link = mint(self._clock, self._link_ttl)
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO signin_links (digest, user_id, expires_at) VALUES (?, ?, ?)",
                (link.digest, user_id, link.expires),
            )
        return link.token

    def link_user(self, token: str) -> User | None:
        """The account a link signs in, while it is unused and unexpired."""
        row = self._db.one(
            "SELECT user_id FROM signin_links WHERE digest = ? AND expires_at > ?",
            (digest(token), stamp(self._clock())),
        )
        return None if row is None else self.get(row[0])

    def redeem_link(self, token: str, password: str) -> User | None:
        """Use the link once: set the account's password; None when it is not valid."""
        check_password(password)
        user = self.link_user(token)
        if user is None:
            return None
        with self._db.tx() as c:
            gone = c.execute("DELETE FROM signin_links WHERE digest = ?", (digest(token),))
            if gone.rowcount != 1:  # used by a concurrent request
                return None
            c.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (self._hasher.hash(password), user.id),
            )
        return self.get(user.id)

    # -- passwords ------------------------------------------------------------------------
    def sign_in(self, email: str, password: str, address: str) -> SignIn:
        email = email.strip().lower()
        subjects = (f"account:{email}", f"address:{address}")
        limits = (self.throttle.limit, self.throttle.limit * 10)
        wait = max(self.throttle.retry_after(s, n) for s, n in zip(subjects, limits, strict=True))
        if wait:
            return SignIn(None, wait)
        row = self._db.one(f"SELECT {_COLS}, password_hash FROM users WHERE email = ?", (email,))
        if not self._dummy:
            self._dummy = self._hasher.hash(new_secret())
        stored = row[5] if row is not None and row[5] else self._dummy
        if not self._verify(stored, password) or row is None or not row[5]:
            self.throttle.failed(*subjects)
            return SignIn(None)
        self.throttle.clear(subjects[0])
        if self._hasher.check_needs_rehash(stored):
            with self._db.tx() as c:
                c.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (self._hasher.hash(password), row[0]),
                )
        return SignIn(user_of(row[:5]))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters", "password")


def user_columns(alias: str = "") -> str:
    """The columns of ``users`` (named ``alias`` in the query) that :func:`user_of` reads."""
    t = f"{alias}." if alias else ""
    return f"{t}id, {t}email, {t}role, {t}password_hash IS NOT NULL, {t}created_at"


def user_of(row: tuple[object, ...]) -> User:
    """An account from a row of :func:`user_columns`."""
    return User(str(row[0]), str(row[1]), check_role(str(row[2])), bool(row[3]), str(row[4]))


_COLS = user_columns()
