"""What a notification looks like on each channel: Alertmanager webhook v4 JSON (so
existing receivers work unchanged), a Slack incoming-webhook message, an e-mail (plain
text and HTML). Pure functions of a :class:`Notification`."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from shiftright_server.sinks.notify.notifier import AlertView, Notification

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
SLACK_HEADER_MAX, SLACK_SECTION_MAX, SLACK_BLOCKS_MAX = 150, 3000, 50


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def generator_url(external_url: str, alert: AlertView) -> str:
    return f"{external_url.rstrip('/')}/alerts/{quote(alert.rule)}"


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in maps[1:])}


def alertmanager_payload(n: Notification, external_url: str, max_alerts: int = 0) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver POSTs (version 4); ``max_alerts`` > 0
    keeps that many alerts and counts the rest in ``truncatedAlerts``."""
    alerts = list(n.alerts)
    kept = alerts[:max_alerts] if max_alerts > 0 else alerts
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": len(alerts) - len(kept),
        "status": n.status,
        "receiver": n.subscription,
        "groupLabels": dict(sorted(n.group_labels.items())),
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [_am_alert(a, external_url) for a in kept],
    }


def _am_alert(a: AlertView, external_url: str) -> dict[str, Any]:
    return {
        "status": a.status,
        "labels": dict(sorted(a.labels.items())),
        "annotations": dict(sorted(a.annotations.items())),
        "startsAt": rfc3339(a.starts_at),
        "endsAt": rfc3339(a.ends_at) if a.ends_at is not None else ZERO_TIME,
        "generatorURL": generator_url(external_url, a),
        "fingerprint": a.fingerprint,
    }


# -- text shared by Slack and e-mail --------------------------------------------------------


def title(n: Notification) -> str:
    firing = sum(1 for a in n.alerts if a.status == "firing")
    head = f"[{n.status.upper()}{f':{firing}' if firing else ''}]"
    labels = " ".join(f"{k}={v}" for k, v in sorted(n.group_labels.items()))
    return f"{head} {labels}".strip()


def _summary(a: AlertView) -> str:
    text = a.annotations.get("summary") or a.annotations.get("description") or a.rule
    flip = a.annotations.get("flag_flip")  # what the alert turned off and how it comes back
    return f"{text} — {flip}" if flip else text


def _detail_labels(a: AlertView, n: Notification) -> list[tuple[str, str]]:
    return [(k, v) for k, v in sorted(a.labels.items()) if k not in n.group_labels]


# -- Slack ----------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (``<!channel>`` would ping everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(n: Notification, external_url: str) -> dict[str, Any]:
    """An incoming-webhook message: a plain fallback ``text`` and Block Kit blocks
    within Slack's limits (header 150, section 3,000 characters, 50 blocks)."""
    head = title(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(head, SLACK_HEADER_MAX)}}
    ]
    shown = list(n.alerts)[: SLACK_BLOCKS_MAX - 2]
    for a in shown:
        icon = ":red_circle:" if a.status == "firing" else ":large_green_circle:"
        labels = ", ".join(f"{k}={v}" for k, v in _detail_labels(a, n))
        text = (
            f"{icon} *{_slack_escape(_summary(a))}* ({a.status})\n{_slack_escape(labels)}\n"
            f"since {rfc3339(a.starts_at)} · <{generator_url(external_url, a)}|details>"
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SLACK_SECTION_MAX)}}
        )
    if len(n.alerts) > len(shown):
        more = f"… and {len(n.alerts) - len(shown)} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    return {"text": head, "blocks": blocks}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- e-mail ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def render_email(n: Notification, external_url: str, unsubscribe: str = "") -> Email:
    """The subject, a plain-text body and an HTML body; ``unsubscribe`` (a person's own
    subscription's one-click link) ends both bodies."""
    lines = [title(n), ""]
    rows = []
    for a in n.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in _detail_labels(a, n))
        lines += [f"* {_summary(a)} [{a.status}]", f"  {labels}", f"  since {rfc3339(a.starts_at)}"]
        if a.ends_at is not None:
            lines.append(f"  resolved {rfc3339(a.ends_at)}")
        lines += [f"  {generator_url(external_url, a)}", ""]
        color = "#c0392b" if a.status == "firing" else "#27ae60"
        rows.append(
            f'<tr><td style="color:{color};font-weight:bold">{html.escape(a.status)}</td>'
            f"<td>{html.escape(_summary(a))}<br><small>{html.escape(labels)}</small></td>"
            f"<td>{rfc3339(a.starts_at)}</td>"
            f'<td><a href="{html.escape(generator_url(external_url, a))}">details</a></td></tr>'
        )
    body = (
        f"<html><body><h2>{html.escape(title(n))}</h2>"
        '<table cellpadding="6" style="border-collapse:collapse">'
        "<tr><th>status</th><th>alert</th><th>since</th><th></th></tr>"
        f"{''.join(rows)}</table>{_leave_html(unsubscribe)}</body></html>"
    )
    if unsubscribe:
        lines.append(f"Unsubscribe: {unsubscribe}")
    return Email(title(n), "\n".join(lines), body)


def _leave_html(unsubscribe: str) -> str:
    if not unsubscribe:
        return ""
    return f'<p><small><a href="{html.escape(unsubscribe)}">Unsubscribe</a></small></p>'


def email_message(
    n: Notification, external_url: str, sender: str, unsubscribe: str = ""
) -> EmailMessage:
    """A multipart/alternative message; its Message-ID is derived from the notification's
    idempotency key, so a resent copy is recognisably the same message. With
    ``unsubscribe``, it carries the RFC 8058 one-click headers and the link in its bodies."""
    mail = render_email(n, external_url, unsubscribe)
    msg = EmailMessage()
    if unsubscribe:  # one unfolded line (RFC 5322 allows 998): folded, the URL would break
        msg.policy = msg.policy.clone(max_line_length=998)
    msg["Subject"], msg["From"], msg["To"] = mail.subject, sender, n.to
    domain = sender.rpartition("@")[2] or "shiftright.local"
    msg["Message-ID"] = f"<{n.idempotency_key}@{domain}>"
    if unsubscribe:  # a mail client's own unsubscribe button POSTs to it
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg
