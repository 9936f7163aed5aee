"""Read-only share links for people outside the team: a random token (256 bits, only its
SHA-256 stored) scoped to apps × envs × pages, with an expiry, a count of views and the
time of last use; revocable. What a visitor may see is decided by the dashboard's policy
from :class:`ShareLink`'s scope."""

from __future__ import annotations

import builtins
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from shiftright_server.infra.access.db import Clock, Db, digest, mint, now_utc, parse_stamp, stamp

#: The pages a link may open (the dashboard maps each to its routes).
PAGES = ("overview", "usage", "errors", "health")


class LinkError(ValueError):
    """A share link that cannot be made as asked (the message says why; ``field`` names
    the form field it is about, '' for none)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ShareLink:
    id: str
    created_by: str
    apps: tuple[str, ...]
    envs: tuple[str, ...]
    pages: tuple[str, ...]
    label: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    last_used: str | None
    views: int

    def covers(self, app: str, env: str) -> bool:
        return app in self.apps and env in self.envs


@dataclass(frozen=True)
class LinkCheck:
    link: ShareLink | None
    problem: str = ""  # '', 'unknown', 'expired', 'revoked'


class ShareLinks:
    def __init__(self, db: Db, default_ttl: timedelta, clock: Clock = now_utc) -> None:
        self._db, self.default_ttl, self._clock = db, default_ttl, clock

    def create(
        self,
        created_by: str,
        apps: list[str],
        envs: list[str],
        pages: list[str],
        days: float | None = None,
        label: str = "",
    ) -> tuple[str, ShareLink]:
        """A new link (its token, shown once, and its record)."""
        apps, envs, pages = _names(apps, "app"), _names(envs, "env"), _names(pages, "page")
        unknown = [p for p in pages if p not in PAGES]
        if unknown:
            raise LinkError(f"page {unknown[0]!r} is not one of {', '.join(PAGES)}", "pages")
        ttl = self.default_ttl if days is None else timedelta(days=days)
        if ttl <= timedelta(0) or ttl > timedelta(days=366):
            raise LinkError("a link lasts more than 0 and at most 366 days", "days")
        made, link_id = mint(self._clock, ttl), secrets.token_hex(6)
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO share_links (id, digest, created_by, apps, envs, pages, label, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    link_id,
                    made.digest,
                    created_by,
                    json.dumps(apps),
                    json.dumps(envs),
                    json.dumps(pages),
                    label,
                    made.made,
                    made.expires,
                ),
            )
        return made.token, self.get(link_id)

    def get(self, link_id: str) -> ShareLink:
        rows = self._select("WHERE id = ?", (link_id,))
        if not rows:
            raise LinkError(f"no share link {link_id}")
        return rows[0]

    def list(self) -> list[ShareLink]:
        return self._select("ORDER BY created_at DESC, id", ())

    def revoke(self, link_id: str) -> ShareLink | None:
        with self._db.tx() as c:
            done = c.execute(
                "UPDATE share_links SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (stamp(self._clock()), link_id),
            )
        return self.get(link_id) if done.rowcount == 1 else None

    def check(self, token: str, view: bool) -> LinkCheck:
        """The link this token opens; its use is noted (``view``: also counted as a view)."""
        rows = self._select("WHERE digest = ?", (digest(token),))
        if not rows:
            return LinkCheck(None, "unknown")
        link = rows[0]
        if link.revoked_at is not None:
            return LinkCheck(link, "revoked")
        if parse_stamp(link.expires_at) <= self._clock():
            return LinkCheck(link, "expired")
        with self._db.tx() as c:
            c.execute(
                "UPDATE share_links SET last_used = ?, views = views + ? WHERE id = ?",
                (stamp(self._clock()), int(view), link.id),
            )
        return LinkCheck(link)

    def _select(self, where: str, args: tuple[str, ...]) -> builtins.list[ShareLink]:
        rows = self._db.all(
            "SELECT id, created_by, apps, envs, pages, label, created_at, expires_at, "
            f"revoked_at, last_used, views FROM share_links {where}",
            args,
        )
        return [
            ShareLink(
                r[0],
                r[1],
                tuple(json.loads(r[2])),
                tuple(json.loads(r[3])),
                tuple(json.loads(r[4])),
                *r[5:],
            )
            for r in rows
        ]


def _names(values: list[str], what: str) -> list[str]:
    names = sorted({v.strip() for v in values if v.strip()})
    if not names:
        raise LinkError(f"a link needs at least one {what}", f"{what}s")
    return names
