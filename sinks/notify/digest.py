"""Daily digests of people's own subscriptions (mode ``digest``): once a day, from
``access.digest_hour`` (UTC), one e-mail per subscription listing the alerts that fired
in the 24 hours before and matched it (none: no e-mail), with the same one-click
unsubscribe link as any of its e-mails. A digest sent is noted per day in the identity
store, so a restarted notifier does not send it twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from shiftright_server.infra.access.identity import Identity
from shiftright_server.infra.access.subscriptions import PersonalSubscription
from shiftright_server.sinks.notify.personal import as_subscription

Row = dict[str, Any]
#: The alerts that fired in a span: what a digest lists.
FIRED_SQL = """
SELECT rule, labels, ts, value FROM alerts FINAL
WHERE state = 'firing' AND ts >= {since:DateTime64(3)} AND ts < {until:DateTime64(3)}
ORDER BY ts
"""


class Digests:
    def __init__(
        self,
        identity: Identity,
        fired: Callable[[datetime, datetime], list[Row]],
        send: Callable[[EmailMessage], None],
        unsubscribe: Callable[[str], str | None],
        sender: str,
        hour: int,
    ) -> None:
        self._identity, self._fired, self._send = identity, fired, send
        self._unsubscribe, self._sender, self._hour = unsubscribe, sender, hour

    def run_due(self, now: datetime) -> int:
        """Send today's digests not sent yet (from the digest hour on); how many went."""
        if now.hour < self._hour:
            return 0
        day = now.date().isoformat()
        subs = self._identity.subscriptions
        due = [s for s in subs.list() if s.mode == "digest" and not subs.digest_sent(s.id, day)]
        if not due:
            return 0
        rows = self._fired(now - timedelta(days=1), now)
        sent = 0
        for sub in due:
            wanted = as_subscription(sub)
            mine = [r for r in rows if wanted.wants({"alertname": r["rule"], **r["labels"]})]
            if mine:
                self._send(self.message(sub, mine, day))
                sent += 1
            subs.mark_digest(sub.id, day)
        return sent

    def message(self, sub: PersonalSubscription, rows: list[Row], day: str) -> EmailMessage:
        msg = EmailMessage()
        msg.policy = msg.policy.clone(max_line_length=998)
        msg["Subject"] = f"[DIGEST] {len(rows)} alert{'s' if len(rows) != 1 else ''} fired, {day}"
        msg["From"], msg["To"] = self._sender, sub.to
        leave = self._unsubscribe(sub.name)
        lines = [f"Alerts that fired in the 24 hours before {day} {self._hour:02d}:00 UTC:", ""]
        for r in rows:
            labels = ", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items()))
            lines.append(f"* {r['ts']:%Y-%m-%d %H:%M} UTC  {r['rule']}  ({labels})")
        if leave:
            msg["List-Unsubscribe"] = f"<{leave}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            lines += ["", f"Unsubscribe: {leave}"]
        msg.set_content("\n".join(lines))
        return msg
