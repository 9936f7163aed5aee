"""Who hears about which alert, and when: grouping, dedup, repeats, silences, inhibition.

Pure, like the evaluator: alert transitions and ``now`` in, notifications out.

* :meth:`Notifier.ingest` takes the evaluator's transitions (only ``firing`` and
  ``resolved`` matter) and returns the action-webhook calls due now; every subscription
  that wants an alert's labels gets it into one of its groups (``group_by`` labels).
* :meth:`Notifier.flush` returns the notifications due at ``now``. A new group waits
  ``group_wait`` so alerts that fire together go out together; afterwards the group is
  looked at every ``group_interval``: it is sent when its set of firing alerts changed,
  when alerts the receiver was told about resolved (if the subscription wants resolve
  notifications), or when ``repeat_interval`` passed since the last identical send.
* Silenced alerts (an active silence whose matchers all match) and inhibited alerts (a
  firing alert matching an inhibit rule's source, with equal values of its ``equal``
  labels, mutes the targets) are left out. Action webhooks are automation and are not
  muted.
* Each notification carries an idempotency key derived from the subscription, the group
  and the (alert, transition) keys it holds, plus a repeat counter: a redelivery of the
  same notification has the same key, a deliberate repeat a new one. The whole state
  saves to bytes, so a restore before or after a flush yields the same keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from shiftright_server.schemas.alerts import (
    AlertTransition,
    InhibitRule,
    Silence,
    Subscription,
    matches_all,
)


@dataclass(frozen=True)
class AlertView:
    """One alert as a receiver sees it."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: str  # firing | resolved
    starts_at: int  # ms
    ends_at: int | None  # ms
    key: str  # idempotency key of the alert's latest transition


@dataclass(frozen=True)
class Notification:
    subscription: str
    channel: str
    to: str
    group_key: str
    group_labels: dict[str, str]
    status: str  # firing when any alert in it fires
    alerts: tuple[AlertView, ...]
    idempotency_key: str
    ts: datetime


@dataclass(frozen=True)
class ActionCall:
    url: str
    idempotency_key: str
    transition: AlertTransition


@dataclass
class _Group:
    subscription: str
    labels: dict[str, str]
    alerts: list[str] = field(default_factory=list)  # fingerprints, in arrival order
    next_flush: int | None = None
    told_firing: list[str] = field(default_factory=list)  # what the receiver believes
    last_sent_at: int | None = None
    last_keys: list[str] = field(default_factory=list)
    repeat: int = 0


class Notifier:
    def __init__(
        self,
        subscriptions: Iterable[Subscription] = (),
        silences: Iterable[Silence] = (),
        inhibit: Iterable[InhibitRule] = (),
    ) -> None:
        self.alerts: dict[str, AlertView] = {}
        self.groups: dict[str, _Group] = {}
        self.configure(subscriptions, silences, inhibit)

    def configure(
        self,
        subscriptions: Iterable[Subscription],
        silences: Iterable[Silence],
        inhibit: Iterable[InhibitRule],
    ) -> None:
        """Replace subscriptions, silences and inhibit rules (groups of removed
        subscriptions are dropped)."""
        self.subscriptions = {s.name: s for s in subscriptions}
        self.silences = list(silences)
        self.inhibit = list(inhibit)
        for key in [k for k, g in self.groups.items() if g.subscription not in self.subscriptions]:
            del self.groups[key]

    # -- input ------------------------------------------------------------------------------
    def ingest(self, transitions: Iterable[AlertTransition], now: datetime) -> list[ActionCall]:
        now_ms = _ms(now)
        calls: list[ActionCall] = []
        for t in transitions:
            if t.state not in ("firing", "resolved"):
                continue
            starts = t.starts_at or t.ts
            ends = _ms(t.ends_at) if t.ends_at else None
            view = AlertView(
                t.fingerprint,
                t.rule,
                t.labels,
                t.annotations,
                t.state,
                _ms(starts),
                ends,
                t.idempotency_key,
            )
            self.alerts[t.fingerprint] = view
            self._route(view, now_ms)
            if t.action_webhook:
                calls.append(ActionCall(t.action_webhook, t.idempotency_key, t))
        return calls

    def _route(self, alert: AlertView, now: int) -> None:
        for sub in self.subscriptions.values():
            if not sub.wants(alert.labels):
                continue
            labels = _group_labels(sub, alert.labels)
            key = group_key(sub.name, labels)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Group(sub.name, labels)
                group.next_flush = now + int(sub.group_wait * 1000)
            elif group.next_flush is None:
                group.next_flush = now
            if alert.fingerprint not in group.alerts:
                group.alerts.append(alert.fingerprint)

    # -- output -----------------------------------------------------------------------------
    def flush(self, now: datetime) -> list[Notification]:
        now_ms = _ms(now)
        out: list[Notification] = []
        for key in sorted(self.groups):
            group = self.groups[key]
            if group.next_flush is not None and group.next_flush <= now_ms:
                sent = self._flush_group(key, group, now_ms)
                if sent is not None:
                    out.append(sent)
        self._forget()
        return out

    def next_flush_at(self) -> datetime | None:
        """When :meth:`flush` next has something to look at (for the caller's timer)."""
        due = [g.next_flush for g in self.groups.values() if g.next_flush is not None]
        return _dt(min(due)) if due else None

    def _flush_group(self, key: str, group: _Group, now: int) -> Notification | None:
        sub = self.subscriptions[group.subscription]
        alerts = [self.alerts[fp] for fp in group.alerts]
        firing = [a for a in alerts if a.status == "firing" and not self.muted(a, now)]
        resolved = [
            a for a in alerts if a.status == "resolved" and a.fingerprint in group.told_firing
        ]
        firing_fps = sorted(a.fingerprint for a in firing)
        news = bool(set(firing_fps) - set(group.told_firing))
        send_resolved = bool(resolved) and sub.send_resolved
        repeat_due = bool(firing) and (
            group.last_sent_at is None or now - group.last_sent_at >= sub.repeat_interval * 1000
        )
        group.alerts = [a.fingerprint for a in alerts if a.status == "firing"]
        group.told_firing = firing_fps  # muted or resolved alerts are no longer news to it
        group.next_flush = now + int(sub.group_interval * 1000) if group.alerts else None
        if not (news or send_resolved or repeat_due):
            return None
        shown = firing + (resolved if sub.send_resolved else [])
        keys = sorted(a.key for a in shown)
        group.repeat = group.repeat + 1 if keys == group.last_keys else 0
        group.last_keys, group.last_sent_at = keys, now
        return Notification(
            subscription=sub.name,
            channel=sub.channel,
            to=sub.to,
            group_key=key,
            group_labels=group.labels,
            status="firing" if firing else "resolved",
            alerts=tuple(shown),
            idempotency_key=_digest(sub.name, key, *keys, str(group.repeat)),
            ts=_dt(now),
        )

    def _forget(self) -> None:
        for key in [k for k, g in self.groups.items() if not g.alerts]:
            del self.groups[key]
        held = {fp for g in self.groups.values() for fp in g.alerts}
        for fp in [
            fp for fp, a in self.alerts.items() if a.status == "resolved" and fp not in held
        ]:
            del self.alerts[fp]

    # -- muting -----------------------------------------------------------------------------
    def muted(self, alert: AlertView, now: int) -> bool:
        return self.silenced(alert, now) or self.inhibited(alert)

    def silenced(self, alert: AlertView, now: int) -> bool:
        at = _dt(now)
        return any(s.active(at) and matches_all(s.matchers, alert.labels) for s in self.silences)

    def inhibited(self, alert: AlertView) -> bool:
        for rule in self.inhibit:
            if not matches_all(rule.target_matchers, alert.labels):
                continue
            if matches_all(rule.source_matchers, alert.labels):
                continue  # an alert never inhibits itself or its peers
            for other in self.alerts.values():
                if (
                    other.status == "firing"
                    and matches_all(rule.source_matchers, other.labels)
                    and all(other.labels.get(n) == alert.labels.get(n) for n in rule.equal)
                ):
                    return True
        return False

    # -- persistence ------------------------------------------------------------------------
    def dumps(self) -> bytes:
        state = {
            "alerts": {fp: asdict(a) for fp, a in self.alerts.items()},
            "groups": {k: asdict(g) for k, g in self.groups.items()},
        }
        return json.dumps(state, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def loads(
        cls,
        raw: bytes,
        subscriptions: Iterable[Subscription] = (),
        silences: Iterable[Silence] = (),
        inhibit: Iterable[InhibitRule] = (),
    ) -> Notifier:
        state = json.loads(raw)
        n = cls()
        n.alerts = {fp: AlertView(**a) for fp, a in state["alerts"].items()}
        n.groups = {k: _Group(**g) for k, g in state["groups"].items()}
        n.configure(subscriptions, silences, inhibit)
        return n


def _group_labels(sub: Subscription, labels: dict[str, str]) -> dict[str, str]:
    if "..." in sub.group_by:
        return dict(labels)
    return {n: labels[n] for n in sorted(sub.group_by) if n in labels}


def group_key(subscription: str, labels: dict[str, str]) -> str:
    """Alertmanager's shape: ``{}/{<route matchers>}:{<group labels>}``."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f'{{}}/{{subscription="{subscription}"}}:{{{inner}}}'


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
