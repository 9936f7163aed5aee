"""Server-side sessions: a random id (256 bits) in the browser's cookie, only its SHA-256
stored here with the account, the sign-in time and the last use. A session ends when it
has been idle too long, when it reaches its absolute lifetime, at sign-out, or with its
account. Every sign-in makes a new id, so an id planted before sign-in is worth nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shiftright_server.infra.access.accounts import User, user_columns, user_of
from shiftright_server.infra.access.db import Clock, Db, digest, mint, now_utc, parse_stamp, stamp

#: Last-use times are written at most this often (a page polls every few seconds).
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Session:
    id: str  # the secret the cookie carries
    user: User


class Sessions:
    def __init__(
        self, db: Db, idle: timedelta, absolute: timedelta, clock: Clock = now_utc
    ) -> None:
        self._db, self.idle, self.absolute, self._clock = db, idle, absolute, clock

    def start(self, user: User, address: str, replacing: str = "") -> Session:
        """A new session for ``user``; the session ``replacing`` (if any) ends."""
        made = mint(self._clock)
        with self._db.tx() as c:
            if replacing:
                c.execute("DELETE FROM sessions WHERE digest = ?", (digest(replacing),))
            c.execute(
                "INSERT INTO sessions (digest, user_id, created_at, last_seen, address) "
                "VALUES (?, ?, ?, ?, ?)",
                (made.digest, user.id, made.made, made.made, address),
            )
        return Session(made.token, user)

    def get(self, session_id: str) -> Session | None:
        """The live session with this id (its last use noted); None when ended or expired."""
        key = digest(session_id)
        row = self._db.one(
            f"SELECT s.created_at, s.last_seen, {user_columns('u')} "
            "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = ?",
            (key,),
        )
        if row is None:
            return None
        now = self._clock()
        created, seen = parse_stamp(row[0]), parse_stamp(row[1])
        if now - seen > self.idle or now - created > self.absolute:
            self.end(session_id)
            return None
        if now - seen > TOUCH_EVERY:
            with self._db.tx() as c:
                c.execute("UPDATE sessions SET last_seen = ? WHERE digest = ?", (stamp(now), key))
        return Session(session_id, user_of(row[2:]))

    def end(self, session_id: str) -> bool:
        with self._db.tx() as c:
            gone = c.execute("DELETE FROM sessions WHERE digest = ?", (digest(session_id),))
        return gone.rowcount == 1

    def end_all(self, user_id: str) -> int:
        with self._db.tx() as c:
            return c.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount
