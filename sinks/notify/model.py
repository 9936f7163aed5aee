"""What the notifier delivers: a :class:`Delivery` wraps one :class:`Notification` (or an
action-webhook call, shaped as a one-alert notification) with its delivery bookkeeping."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from shiftright_server.infra.access.subscriptions import redact
from shiftright_server.schemas.alerts import AlertTransition, NotificationRecord, NotificationStatus
from shiftright_server.sinks.notify.notifier import ActionCall, AlertView, Notification

DeliveryKind = Literal["notification", "action"]
NOTIFICATION: Final = "notification"
ACTION: Final = "action"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass
class Delivery:
    kind: DeliveryKind
    notification: Notification
    first_ts: datetime  # when it became due
    attempt: int = 0  # attempts made so far
    next_at: float = 0.0  # epoch seconds of the next attempt
    state: str = PENDING  # pending | delivered | failed
    error: str = ""  # the last attempt's error

    @property
    def key(self) -> str:
        return self.notification.idempotency_key

    @property
    def channel(self) -> str:
        """email | webhook | slack | action (actions are webhooks with their own limit)."""
        return ACTION if self.kind == ACTION else self.notification.channel

    def record(
        self, status: NotificationStatus, attempt: int, now: datetime, error: str = ""
    ) -> NotificationRecord:
        n = self.notification
        return NotificationRecord(
            idempotency_key=n.idempotency_key,
            kind=self.kind,
            subscription=n.subscription,
            channel=self.channel,
            target=redact(n.to, self.channel),
            group_key=n.group_key,
            alert_status=n.status,
            rules=sorted({a.rule for a in n.alerts}),
            alert_keys=[a.key for a in n.alerts],
            status=status,
            attempt=attempt,
            error=error[:2000],
            ts=now,
            first_ts=self.first_ts,
        )


def from_notification(n: Notification) -> Delivery:
    return Delivery(NOTIFICATION, n, n.ts, next_at=n.ts.timestamp())


def from_action(call: ActionCall, now: datetime) -> Delivery:
    """An action webhook gets the Alertmanager body of its one alert, keyed by the
    transition's idempotency key."""
    t: AlertTransition = call.transition
    starts = t.starts_at or t.ts
    view = AlertView(
        fingerprint=t.fingerprint,
        rule=t.rule,
        labels=dict(t.labels),
        annotations=dict(t.annotations),
        status=t.state,
        starts_at=_ms(starts),
        ends_at=_ms(t.ends_at) if t.ends_at else None,
        key=t.idempotency_key,
    )
    n = Notification(
        subscription=t.rule,
        channel="webhook",
        to=call.url,
        group_key=f'{{}}/{{action="{t.rule}"}}:{{fingerprint="{t.fingerprint}"}}',
        group_labels={"alertname": t.labels.get("alertname", t.rule)},
        status=t.state,
        alerts=(view,),
        idempotency_key=call.idempotency_key,
        ts=now,
    )
    return Delivery(ACTION, n, now, next_at=now.timestamp())


# -- (de)serialisation for the outbox --------------------------------------------------------


def dump_notification(n: Notification) -> str:
    raw = asdict(n)
    raw["ts"] = n.ts.isoformat()
    return json.dumps(raw, separators=(",", ":"), sort_keys=True)


def load_notification(text: str) -> Notification:
    raw: dict[str, Any] = json.loads(text)
    raw["alerts"] = tuple(AlertView(**a) for a in raw["alerts"])
    raw["ts"] = datetime.fromisoformat(raw["ts"])
    return Notification(**raw)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def utc_now() -> datetime:
    return datetime.now(UTC)
