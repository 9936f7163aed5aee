"""The notifier's delivery machinery with fake transports: retries and back-off, permanent
failures, per-channel rate limits, idempotency across replays and restarts, redaction.
The outbox is the real SQLite file."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shiftright_server.infra.access.subscriptions import redact
from shiftright_server.schemas.alerts import (
    AlertState,
    AlertTransition,
    NotificationRecord,
    Subscription,
)
from shiftright_server.sinks.notify.delivery import Deliverer, RetryPolicy, TokenBucket
from shiftright_server.sinks.notify.model import (
    Delivery,
    dump_notification,
    from_action,
    from_notification,
    load_notification,
)
from shiftright_server.sinks.notify.notifier import ActionCall, Notifier
from shiftright_server.sinks.notify.outbox import Outbox
from shiftright_server.sinks.notify.transports import (
    DeliveryError,
    HttpTransport,
    PartialDelivery,
    http_error,
)
from shiftright_server.streams.alerting.evaluator import fingerprint, idempotency_key

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TOPIC = "t.alerts.v1"


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTransport:
    """Answers from a script (None: accepted; an exception: raised), then accepts."""

    def __init__(self, *script: BaseException | None) -> None:
        self.script = list(script)
        self.sent: list[str] = []  # idempotency keys of accepted deliveries
        self.calls = 0

    def send(self, delivery: Delivery) -> None:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(delivery.key)


def transition(
    rule: str, state: AlertState, when: float, seq: int = 1, **labels: str
) -> AlertTransition:
    full = {"alertname": rule, "app": "checkout", "env": "prod", "severity": "warning"} | labels
    fp = fingerprint(full)
    return AlertTransition(
        rule=rule,
        rule_kind="threshold",
        fingerprint=fp,
        labels=full,
        annotations={"summary": f"{rule} is high"},
        previous="pending" if state == "firing" else "firing",
        state=state,
        ts=T0 + timedelta(seconds=when),
        starts_at=T0,
        ends_at=T0 + timedelta(seconds=when) if state == "resolved" else None,
        seq=seq,
        idempotency_key=idempotency_key(rule, fp, seq, state),
    )


def subscription(channel: str = "webhook", to: str = "http://hooks.example/alert") -> Subscription:
    return Subscription.model_validate(
        {"name": f"oncall-{channel}", "channel": channel, "to": to, "group_wait": "0s"}
    )


def planned(n: int, channel: str = "webhook") -> list[Delivery]:
    """``n`` notifications (one alert each) from the real Notifier."""
    notifier = Notifier([subscription(channel)])
    notifier.ingest([transition("cpu", "firing", 0, host=f"h{i}") for i in range(n)], T0)
    out = [from_notification(x) for x in notifier.flush(T0)]
    assert len(out) == 1  # grouped by alertname/app/env: one notification ...
    if n == 1:
        return out
    notifier = Notifier([subscription(channel).model_copy(update={"group_by": ["host"]})])
    notifier.ingest([transition("cpu", "firing", 0, host=f"h{i}") for i in range(n)], T0)
    out = [from_notification(x) for x in notifier.flush(T0)]
    assert len(out) == n  # ... or one per host
    return out


def records(outbox: Outbox) -> list[NotificationRecord]:
    return [NotificationRecord.model_validate_json(v) for _, v in outbox.unpublished(0, 10_000)]


def statuses(outbox: Outbox) -> list[tuple[str, int]]:
    return [(r.status, r.attempt) for r in records(outbox)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "notify" / "outbox.db", TOPIC)


def deliverer(
    outbox: Outbox,
    clock: Clock,
    transport: FakeTransport,
    policy: RetryPolicy | None = None,
    limits: dict[str, TokenBucket] | None = None,
) -> Deliverer:
    return Deliverer(
        outbox,
        {"webhook": transport, "email": transport, "slack": transport, "action": transport},
        policy or RetryPolicy(max_attempts=5, initial=1.0, maximum=60.0),
        limits if limits is not None else {},
        workers=0,
        clock=clock,
    )


def test_a_delivery_is_sent_once_and_recorded_delivered(outbox: Outbox, clock: Clock) -> None:
    hook = FakeTransport()
    (d,) = planned(1)
    assert outbox.save(b"{}", {0: 1}, [d], clock()) == [d]
    sender = deliverer(outbox, clock, hook)
    sender.pump()
    sender.pump()
    clock.advance(3600)
    sender.pump()
    assert hook.sent == [d.key]
    assert statuses(outbox) == [("delivered", 1)]
    (rec,) = records(outbox)
    assert rec.channel == "webhook" and rec.alert_status == "firing" and rec.rules == ["cpu"]
    assert rec.target == "http://hooks.example/alert"
    assert outbox.counts() == {"delivered": 1}


def test_server_errors_are_retried_with_exponential_back_off(outbox: Outbox, clock: Clock) -> None:
    hook = FakeTransport(http_error(500, "Internal Server Error"), http_error(503, "Unavailable"))
    (d,) = planned(1)
    outbox.save(b"{}", {}, [d], clock())
    sender = deliverer(outbox, clock, hook)
    sender.pump()
    assert statuses(outbox) == [("retrying", 1)]
    assert sender.wake_at == pytest.approx(clock() + 1.0)  # initial back-off
    clock.advance(0.9)
    sender.pump()
    assert hook.calls == 1  # not before its time
    clock.advance(0.1)
    sender.pump()
    assert statuses(outbox) == [("retrying", 1), ("retrying", 2)]
    assert sender.wake_at == pytest.approx(clock() + 2.0)  # doubled
    clock.advance(2.0)
    sender.pump()
    assert statuses(outbox) == [("retrying", 1), ("retrying", 2), ("delivered", 3)]
    errors = [r.error for r in records(outbox)]
    assert errors[0] == "HTTP 500 Internal Server Error" and errors[1].startswith("HTTP 503")
    assert hook.sent == [d.key]


def test_client_errors_fail_at_once_but_408_and_429_are_retried(
    outbox: Outbox, clock: Clock
) -> None:
    first, second, third = planned(3)
    outbox.save(b"{}", {}, [first, second, third], clock())
    hook = FakeTransport(
        http_error(404, "Not Found"),
        http_error(408, "Timeout"),
        http_error(429, "Too Many", headers={"Retry-After": "30"}),
    )
    sender = deliverer(outbox, clock, hook)
    sender.pump()
    by_key = {r.idempotency_key: (r.status, r.attempt) for r in records(outbox)}
    ordered = sorted([first, second, third], key=lambda d: (d.next_at, d.first_ts))
    assert [by_key[d.key] for d in ordered] == [("failed", 1), ("retrying", 1), ("retrying", 1)]
    later = outbox.get("notification", ordered[2].key)
    assert later is not None and later.next_at == pytest.approx(clock() + 30)
    clock.advance(1.0)
    sender.pump()
    assert sorted(hook.sent) == [ordered[1].key]  # 408 retried after 1 s; 429 waits 30 s
    clock.advance(30)
    sender.pump()
    assert sorted(hook.sent) == sorted([ordered[1].key, ordered[2].key])
    assert ordered[0].key not in hook.sent


def test_the_last_attempt_fails_for_good(outbox: Outbox, clock: Clock) -> None:
    hook = FakeTransport(*[DeliveryError("POST failed: timed out")] * 10)
    (d,) = planned(1)
    outbox.save(b"{}", {}, [d], clock())
    sender = deliverer(outbox, clock, hook, RetryPolicy(max_attempts=3, initial=1, maximum=2))
    for _ in range(10):
        sender.pump()
        clock.advance(2.0)
    assert statuses(outbox) == [("retrying", 1), ("retrying", 2), ("failed", 3)]
    assert hook.calls == 3 and outbox.counts() == {"failed": 1}


def test_rate_limit_holds_deliveries_and_sends_them_later_without_dropping(
    outbox: Outbox, clock: Clock
) -> None:
    batch = planned(5)
    outbox.save(b"{}", {}, batch, clock())
    hook = FakeTransport()
    limits = {"webhook": TokenBucket(per_minute=6, burst=2, now=clock())}  # one per 10 s
    sender = deliverer(outbox, clock, hook, limits=limits)
    sender.pump()
    assert len(hook.sent) == 2
    held = [r for r in records(outbox) if r.status == "rate_limited"]
    assert len(held) == 3 and {r.attempt for r in held} == {1}
    assert "webhook rate limit 6/min" in held[0].error
    assert sender.wake_at == pytest.approx(clock() + 10.0)
    sender.pump()  # still no token: held ones are not recorded again
    assert len([r for r in records(outbox) if r.status == "rate_limited"]) == 3
    for _ in range(3):
        clock.advance(10.0)
        sender.pump()
    assert sorted(hook.sent) == sorted(d.key for d in batch)
    assert Counter(r.status for r in records(outbox)) == {"delivered": 5, "rate_limited": 3}


def test_channels_have_their_own_buckets(outbox: Outbox, clock: Clock) -> None:
    hooks, mails = planned(2, "webhook"), planned(2, "email")
    outbox.save(b"{}", {}, hooks + mails, clock())
    hook = FakeTransport()
    limits = {
        "webhook": TokenBucket(per_minute=1, burst=1, now=clock()),
        "email": TokenBucket(per_minute=60, burst=5, now=clock()),
    }
    deliverer(outbox, clock, hook, limits=limits).pump()
    assert len(set(hook.sent) & {d.key for d in hooks}) == 1  # the webhook bucket ran dry
    assert {d.key for d in mails} <= set(hook.sent)  # ... e-mail was not held by it


def test_a_replayed_notification_is_not_sent_again(outbox: Outbox, clock: Clock) -> None:
    """The same transitions replayed into the same state plan the same keys; the outbox
    knows them (delivered or not), so nothing goes out twice."""
    state = Notifier([subscription()]).dumps()
    runs = []
    for _ in range(2):
        notifier = Notifier.loads(state, [subscription()])
        notifier.ingest([transition("cpu", "firing", 0, host="h1")], T0)
        runs.append([from_notification(x) for x in notifier.flush(T0)])
    assert [d.key for d in runs[0]] == [d.key for d in runs[1]]
    hook = FakeTransport()
    sender = deliverer(outbox, clock, hook)
    assert len(outbox.save(b"{}", {0: 1}, runs[0], clock())) == 1
    sender.pump()
    assert outbox.save(b"{}", {0: 1}, runs[1], clock()) == []
    sender.pump()
    assert len(hook.sent) == 1


def test_a_crash_after_planning_delivers_everything_exactly_once_after_restart(
    tmp_path: Path, clock: Clock
) -> None:
    """Kill points: after the outbox save (before any delivery), and after some
    deliveries. A restart reopens the file: the pending ones go out, the delivered ones
    do not, and the notifier resumes from the saved state and offset."""
    path = tmp_path / "outbox.db"
    hook = FakeTransport()
    subs = [subscription().model_copy(update={"group_by": ["host"]})]
    notifier = Notifier(subs)
    notifier.ingest([transition("cpu", "firing", 0, host=f"h{i}") for i in range(4)], T0)
    batch = [from_notification(x) for x in notifier.flush(T0)]
    first = Outbox(path, TOPIC)
    first.save(notifier.dumps(), {0: 4}, batch, clock())
    limits = {"webhook": TokenBucket(per_minute=0.001, burst=2, now=clock())}
    deliverer(first, clock, hook, limits=limits).pump()  # two delivered, two held ... kill
    assert len(hook.sent) == 2
    del first

    again = Outbox(path, TOPIC)
    raw, offsets = again.load_state()
    assert offsets == {0: 4}
    restored = Notifier.loads(raw or b"", subs)
    assert restored.dumps() == notifier.dumps()
    restored.ingest(
        [transition("cpu", "resolved", 60, seq=2, host="h0")], T0 + timedelta(minutes=1)
    )
    clock.advance(120)
    resolved = [from_notification(x) for x in restored.flush(T0 + timedelta(minutes=2))]
    again.save(restored.dumps(), {0: 5}, batch + resolved, clock())  # a replay of the batch too
    deliverer(again, clock, hook).pump()
    assert sorted(hook.sent) == sorted(d.key for d in batch + resolved)
    assert len(hook.sent) == len(set(hook.sent)) == 5


def test_action_webhooks_are_deliveries_of_their_own(outbox: Outbox, clock: Clock) -> None:
    t = transition("cpu", "firing", 0, host="h1").model_copy(
        update={"action_webhook": "https://ops.example/run?token=s3cr3t"}
    )
    (call,) = Notifier().ingest([t], T0)
    assert isinstance(call, ActionCall)
    d = from_action(call, T0)
    assert d.channel == "action" and d.key == t.idempotency_key
    body = HttpTransport("http://dash.example").body(d)
    assert body["status"] == "firing" and body["version"] == "4"
    assert body["alerts"][0]["labels"]["host"] == "h1"
    assert body["alerts"][0]["fingerprint"] == t.fingerprint
    outbox.save(b"{}", {}, [d], clock())
    hook = FakeTransport()
    deliverer(outbox, clock, hook).pump()
    (rec,) = records(outbox)
    assert (rec.kind, rec.channel, rec.subscription, rec.status) == (
        "action",
        "action",
        "cpu",
        "delivered",
    )
    assert rec.target == "https://ops.example/run"  # no token in the outcome table


def test_a_partial_e_mail_delivery_counts_as_delivered_with_the_refusals_noted(
    outbox: Outbox, clock: Clock
) -> None:
    (d,) = planned(1, "email")
    outbox.save(b"{}", {}, [d], clock())
    deliverer(outbox, clock, FakeTransport(PartialDelivery("refused: b@x (550 no)"))).pump()
    (rec,) = records(outbox)
    assert rec.status == "delivered" and "550" in rec.error


def test_an_unexpected_exception_is_retried_not_fatal(outbox: Outbox, clock: Clock) -> None:
    (d,) = planned(1)
    outbox.save(b"{}", {}, [d], clock())
    sender = deliverer(outbox, clock, FakeTransport(KeyError("boom")))
    sender.pump()
    clock.advance(1)
    sender.pump()
    assert statuses(outbox) == [("retrying", 1), ("delivered", 2)]
    assert "KeyError" in records(outbox)[0].error


def test_slack_gets_a_slack_message_and_webhooks_the_alertmanager_body() -> None:
    (slack,) = planned(1, "slack")
    (hook,) = planned(1, "webhook")
    transport = HttpTransport("http://dash.example")
    assert set(transport.body(slack)) == {"text", "blocks"}
    body = transport.body(hook)
    assert body["receiver"] == "oncall-webhook" and body["alerts"][0]["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "cpu", "app": "checkout", "env": "prod"}


def test_http_errors_are_classified() -> None:
    def kind(code: int, headers: Any = None) -> tuple[bool, float | None]:
        e = http_error(code, "x", headers=headers)
        return e.permanent, e.retry_after

    assert kind(400) == (True, None) and kind(401)[0] and kind(404)[0] and kind(301)[0]
    assert kind(408) == (False, None) and kind(500) == (False, None) and not kind(502)[0]
    assert kind(429, {"Retry-After": "12"}) == (False, 12.0)
    later = (datetime.now(UTC) + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 80 < (kind(503, {"Retry-After": later})[1] or 0) <= 90


def test_back_off_is_capped_and_honours_a_longer_retry_after() -> None:
    p = RetryPolicy(max_attempts=10, initial=0.5, maximum=8.0)
    assert [p.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert p.delay(1, retry_after=5.0) == 5.0 and p.delay(4, retry_after=0.1) == 4.0
    assert p.delay(1, retry_after=3600) == 8.0


def test_token_bucket_refills_at_its_rate() -> None:
    b = TokenBucket(per_minute=30, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.wait(0.0) == pytest.approx(2.0)
    assert not b.take(1.9) and b.take(2.0) and not b.take(2.1)
    assert b.take(100.0) and b.take(100.0) and b.take(100.0) and not b.take(100.0)


def test_targets_are_redacted() -> None:
    assert (
        redact("https://user:pw@hooks.example:8443/a/b?token=x#f")
        == "https://hooks.example:8443/a/b"
    )
    assert redact("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX", "slack") == (
        "https://hooks.slack.com/services/T000/B000/***"
    )
    assert redact("https://api.example/hook/9f8e7d6c5b4a39281706f5e4d3c2b1a0/x") == (
        "https://api.example/hook/***/x"
    )
    assert redact("oncall@example.com", "email") == "oncall@example.com"


def test_a_notification_survives_the_outbox_round_trip() -> None:
    (d,) = planned(1)
    assert load_notification(dump_notification(d.notification)) == d.notification
    assert json.loads(dump_notification(d.notification))["alerts"][0]["rule"] == "cpu"


def test_an_outbox_belongs_to_one_topic(tmp_path: Path) -> None:
    Outbox(tmp_path / "o.db", TOPIC).close()
    with pytest.raises(RuntimeError, match="not 'other.alerts.v1'"):
        Outbox(tmp_path / "o.db", "other.alerts.v1")
