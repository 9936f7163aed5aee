"""Personal alert subscriptions: a person asks to hear about the alerts they care about —
by e-mail to their own address, or to a Slack or generic webhook they name — filtered by
app, env, severity (at least) and rule. The notifier routes them like the rule file's
subscriptions (named ``me.<id>``); each e-mail carries a signed one-click unsubscribe
link (RFC 8058) that needs no sign-in."""

from __future__ import annotations

import builtins
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from shiftright_server.infra.access.accounts import User
from shiftright_server.infra.access.db import Clock, Db, now_utc, stamp

PREFIX = "me."
CHANNELS = ("email", "slack", "webhook")
SEVERITIES = ("info", "warning", "critical")
MODES = ("immediate", "digest")  # at once, or one e-mail a day


class SubscriptionError(ValueError):
    """A subscription that cannot be made as asked; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PersonalSubscription:
    id: str
    owner: str  # the person's e-mail
    channel: str
    to: str
    app: str  # '' = any
    env: str  # '' = any
    severity: str  # the least severity ('' = any)
    rule: str  # '' = any
    created_at: str
    mode: str = "immediate"

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.id}"

    def matchers(self) -> list[str]:
        wanted = [f"app={self.app}"] if self.app else []
        wanted += [f"env={self.env}"] if self.env else []
        return wanted + ([f"severity>={self.severity}"] if self.severity else [])


class Subscriptions:
    def __init__(self, db: Db, clock: Clock = now_utc) -> None:
        self._db, self._clock = db, clock

    def create(
        self,
        owner: User,
        channel: str,
        to: str,
        app: str,
        env: str,
        severity: str,
        rule: str,
        mode: str = "immediate",
    ) -> PersonalSubscription:
        to = _checked(owner, channel, to, severity, mode)
        sub_id = secrets.token_hex(6)
        row = (sub_id, owner.id, channel, to, app.strip(), env.strip(), severity, rule.strip())
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO subscriptions (id, user_id, channel, target, app, env, severity, "
                "rule, created_at, mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, stamp(self._clock()), mode),
            )
            _bump(c)
        return self.get(sub_id)

    def update(
        self, sub_id: str, owner: User, fields: tuple[str, str, str, str, str, str, str]
    ) -> tuple[PersonalSubscription, PersonalSubscription] | None:
        """Change one of ``owner``'s subscriptions in place (its unsubscribe link stays
        good) to ``fields`` (channel, to, app, env, severity, rule, mode, as :meth:`create`
        takes them): (before, after), or None when it is not theirs."""
        channel, to, app, env, severity, rule, mode = fields
        found = self._select("WHERE s.id = ?", (sub_id,))
        if not found or found[0].owner != owner.email:
            return None
        to = _checked(owner, channel, to, severity, mode)
        row = (channel, to, app.strip(), env.strip(), severity, rule.strip(), mode, sub_id)
        with self._db.tx() as c:
            c.execute(
                "UPDATE subscriptions SET channel = ?, target = ?, app = ?, env = ?, "
                "severity = ?, rule = ?, mode = ? WHERE id = ?",
                row,
            )
            _bump(c)
        return found[0], self.get(sub_id)

    def get(self, sub_id: str) -> PersonalSubscription:
        found = self._select("WHERE s.id = ?", (sub_id,))
        if not found:
            raise LookupError(f"no subscription {sub_id}")
        return found[0]

    def list(self, owner: User | None = None) -> builtins.list[PersonalSubscription]:
        if owner is None:
            return self._select("ORDER BY s.created_at, s.id", ())
        return self._select("WHERE s.user_id = ? ORDER BY s.created_at, s.id", (owner.id,))

    def delete(self, sub_id: str, owner: User | None = None) -> PersonalSubscription | None:
        found = self._select("WHERE s.id = ?", (sub_id,))
        if not found or (owner is not None and found[0].owner != owner.email):
            return None
        with self._db.tx() as c:
            c.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
            _bump(c)
        return found[0]

    def digest_sent(self, sub_id: str, day: str) -> bool:
        row = self._db.one("SELECT value FROM settings WHERE name = ?", (f"digest:{sub_id}",))
        return row is not None and row[0] == day

    def mark_digest(self, sub_id: str, day: str) -> None:
        with self._db.tx() as c:
            c.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (f"digest:{sub_id}", day),
            )

    def version(self) -> str:
        """Changes with every change (the notifier reloads when it does)."""
        row = self._db.one("SELECT value FROM settings WHERE name = 'subscriptions_version'")
        return "" if row is None else str(row[0])

    def _select(self, where: str, args: tuple[str, ...]) -> builtins.list[PersonalSubscription]:
        rows = self._db.all(
            "SELECT s.id, u.email, s.channel, s.target, s.app, s.env, s.severity, s.rule, "
            f"s.created_at, s.mode FROM subscriptions s JOIN users u ON u.id = s.user_id {where}",
            args,
        )
        return [PersonalSubscription(*r) for r in rows]


def _checked(owner: User, channel: str, to: str, severity: str, mode: str) -> str:
    """Where the subscription sends, once what was asked is found possible."""
    target = _target(owner, channel, to.strip())
    if severity and severity not in SEVERITIES:
        raise SubscriptionError("severity", f"severity is one of {', '.join(SEVERITIES)}")
    if mode not in MODES or (mode == "digest" and channel != "email"):
        raise SubscriptionError("mode", "a daily digest goes by e-mail; else immediate")
    return target


def _target(owner: User, channel: str, to: str) -> str:
    if channel == "email":
        return owner.email  # one's own address only
    if channel not in CHANNELS:
        raise SubscriptionError("channel", f"channel is one of {', '.join(CHANNELS)}")
    if not to.startswith("https://") or len(to) > 2000 or any(c.isspace() for c in to):
        raise SubscriptionError("to", f"a {channel} subscription needs an https:// URL")
    return to


def _bump(c: object) -> None:
    c.execute(  # type: ignore[attr-defined]  # a sqlite3 connection inside a transaction
        "INSERT INTO settings (name, value) VALUES ('subscriptions_version', ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (secrets.token_hex(8),),
    )


_SECRETISH = re.compile(r"^[A-Za-z0-9_\-]{16,}$")


def redact(target: str, channel: str = "") -> str:
    """A target fit to be recorded (the notifier's outcome table, the audit trail): no
    user/password, query string or fragment, and path segments that look like tokens (a
    Slack webhook's secret, a long key) masked. E-mail addresses stay as they are."""
    if "://" not in target:
        return target
    try:
        parts = urlsplit(target)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    segments = parts.path.split("/")
    if channel == "slack" and len(segments) > 2:
        segments = [*segments[:-1], "***"]
    segments = ["***" if _SECRETISH.match(s) and not s.isalpha() else s for s in segments]
    return urlunsplit((parts.scheme, host + port, "/".join(segments), "", ""))
