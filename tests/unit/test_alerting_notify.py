"""Notification planning and payloads: who is told what, when, and in which shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.schemas.alerts import (
    AlertState,
    AlertTransition,
    InhibitRule,
    Silence,
    Subscription,
)
from shiftright_server.sinks.notify.notifier import Notification, Notifier
from shiftright_server.sinks.notify.payloads import (
    alertmanager_payload,
    email_message,
    render_email,
    slack_payload,
)
from shiftright_server.streams.alerting.evaluator import fingerprint, idempotency_key

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
URL = "http://127.0.0.1:18080"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def alert(
    rule: str, state: AlertState, when: float, seq: int = 1, **labels: str
) -> AlertTransition:
    full = {"alertname": rule, "app": "checkout", "env": "prod", "severity": "warning"} | labels
    fp = fingerprint(full)
    return AlertTransition(
        rule=rule,
        rule_kind="threshold",
        fingerprint=fp,
        labels=full,
        annotations={"summary": f"{rule} on {full.get('host', '-')}"},
        previous="pending" if state == "firing" else "firing",
        state=state,
        ts=at(when),
        starts_at=at(0),
        ends_at=at(when) if state == "resolved" else None,
        seq=seq,
        idempotency_key=idempotency_key(rule, fp, seq, state),
    )


def sub(**fields: Any) -> Subscription:
    base: dict[str, Any] = {
        "name": "oncall",
        "channel": "webhook",
        "to": "http://127.0.0.1:9/hook",
        "group_wait": "5s",
        "group_interval": "30s",
        "repeat_interval": "1h",
    }
    return Subscription.model_validate(base | fields)


def hosts(n: Notification) -> list[str]:
    return sorted(a.labels.get("host", "") for a in n.alerts)


def test_alerts_firing_within_the_group_wait_go_out_in_one_notification() -> None:
    n = Notifier([sub()])
    n.ingest([alert("cpu", "firing", 0, host="h1")], at(0))
    n.ingest([alert("cpu", "firing", 3, host="h2")], at(3))
    assert n.flush(at(4.9)) == []  # still waiting
    (sent,) = n.flush(at(5))
    assert hosts(sent) == ["h1", "h2"] and sent.status == "firing"
    assert sent.group_labels == {"alertname": "cpu", "app": "checkout", "env": "prod"}
    n.ingest([alert("cpu", "firing", 6, host="h3")], at(6))
    assert n.flush(at(20)) == []  # a later alert waits for the group interval ...
    (later,) = n.flush(at(35))
    assert hosts(later) == ["h1", "h2", "h3"]  # ... and the group is re-sent whole


def test_nothing_new_is_not_resent_until_the_repeat_interval() -> None:
    n = Notifier([sub()])
    n.ingest([alert("cpu", "firing", 0, host="h1")], at(0))
    (first,) = n.flush(at(5))
    for t in range(35, 3600, 30):
        assert n.flush(at(t)) == []
    (repeat,) = n.flush(at(3605))
    assert hosts(repeat) == ["h1"] and repeat.idempotency_key != first.idempotency_key


def test_resolve_notifications_follow_the_subscription() -> None:
    wants, quiet = sub(name="wants"), sub(name="quiet", send_resolved=False)
    n = Notifier([wants, quiet])
    n.ingest([alert("cpu", "firing", 0, host="h1")], at(0))
    assert {s.subscription for s in n.flush(at(5))} == {"wants", "quiet"}
    n.ingest([alert("cpu", "resolved", 40, seq=2, host="h1")], at(40))
    (sent,) = n.flush(at(40))
    assert (sent.subscription, sent.status, sent.alerts[0].status) == (
        "wants",
        "resolved",
        "resolved",
    )
    assert n.groups == {} and n.alerts == {}  # nothing left to remember


def test_a_silence_mutes_matching_alerts_only_while_active() -> None:
    silence = Silence.model_validate(
        {
            "id": "deploy",
            "matchers": ["host=h1"],
            "starts_at": at(0),
            "ends_at": at(100),
            "created_by": "alice@shop.example",
            "comment": "rolling restart",
        }
    )
    n = Notifier([sub()], [silence])
    n.ingest([alert("cpu", "firing", 0, host="h1"), alert("cpu", "firing", 0, host="h2")], at(0))
    (sent,) = n.flush(at(5))
    assert hosts(sent) == ["h2"]
    assert n.flush(at(95)) == []
    (after,) = n.flush(at(125))  # the silence ended: h1 is news now
    assert hosts(after) == ["h1", "h2"]


def test_a_firing_critical_inhibits_the_matching_warning() -> None:
    n = Notifier([sub(group_by=["app"])], inhibit=[InhibitRule()])
    crit = alert("cpu-critical", "firing", 0, severity="critical", host="h1")
    warn = alert("cpu-warning", "firing", 0, host="h1")
    other = alert("cpu-warning", "firing", 0, env="preprod", host="h9")  # other env: not matched
    n.ingest([crit, warn, other], at(0))
    sent = n.flush(at(5))
    shown = sorted((a.rule, a.labels["env"]) for s in sent for a in s.alerts)
    assert shown == [("cpu-critical", "prod"), ("cpu-warning", "preprod")]
    n.ingest([alert("cpu-critical", "resolved", 50, seq=2, severity="critical", host="h1")], at(50))
    (back,) = n.flush(at(50))  # the critical resolved: the warning is shown again
    assert ("cpu-warning", "firing") in [(a.rule, a.status) for a in back.alerts]


def test_subscriptions_pick_alerts_by_matchers_and_rule_names() -> None:
    crit_only = sub(name="pager", matchers=["severity>=critical"])
    by_rule = sub(name="team", rules=["latency"])
    n = Notifier([crit_only, by_rule])
    n.ingest(
        [alert("cpu", "firing", 0, host="h1"), alert("latency", "firing", 0, host="h1")], at(0)
    )
    assert [(s.subscription, s.alerts[0].rule) for s in n.flush(at(5))] == [("team", "latency")]


def test_idempotency_keys_survive_a_save_and_restore_before_the_flush() -> None:
    subs = [sub()]
    straight = Notifier(subs)
    straight.ingest([alert("cpu", "firing", 0, host="h1")], at(0))
    restored = Notifier.loads(straight.dumps(), subs)
    a, b = straight.flush(at(5)), restored.flush(at(5))
    assert [x.idempotency_key for x in a] == [x.idempotency_key for x in b] and len(a) == 1
    again = Notifier.loads(restored.dumps(), subs)  # saved after the flush: nothing re-sent
    assert again.flush(at(6)) == [] and again.flush(at(40)) == []


def test_action_webhooks_are_called_on_firing_and_resolve() -> None:
    n = Notifier()
    fire = alert("cpu", "firing", 0).model_copy(update={"action_webhook": "http://flags/off"})
    calls = n.ingest([fire], at(0))
    assert [(c.url, c.idempotency_key) for c in calls] == [
        ("http://flags/off", fire.idempotency_key)
    ]


def _notification() -> Notification:
    n = Notifier([sub()])
    hosts = ("h1", "h2", "h3")
    n.ingest([alert("cpu", "firing", 0, host=h) for h in hosts], at(0))
    n.ingest([alert("cpu", "resolved", 4, seq=2, host="h2")], at(4))
    (sent,) = n.flush(at(5))
    return sent


def test_webhook_payload_has_exactly_the_alertmanager_v4_fields() -> None:
    body = alertmanager_payload(_notification(), URL)
    assert list(body) == [
        "version",
        "groupKey",
        "truncatedAlerts",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "alerts",
    ]
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "oncall"
    assert (
        body["groupKey"]
        == '{}/{subscription="oncall"}:{alertname="cpu", app="checkout", env="prod"}'
    )
    assert body["truncatedAlerts"] == 0 and body["externalURL"] == URL
    assert body["commonLabels"] == {
        "alertname": "cpu",
        "app": "checkout",
        "env": "prod",
        "severity": "warning",
    }
    assert body["commonAnnotations"] == {}  # the summaries differ per host
    # h2 resolved before the receiver heard of it: not shown
    assert [a["labels"]["host"] for a in body["alerts"]] == ["h1", "h3"]
    one = body["alerts"][0]
    assert sorted(one) == sorted(
        ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]
    )
    assert one["endsAt"] == "0001-01-01T00:00:00Z" and one["startsAt"] == "2026-11-26T12:00:00.000Z"
    assert len(one["fingerprint"]) == 16 and one["generatorURL"] == f"{URL}/alerts/cpu"


def test_truncated_alerts_are_counted() -> None:
    n = Notifier([sub()])
    n.ingest([alert("cpu", "firing", 0, host=f"h{i}") for i in range(5)], at(0))
    (sent,) = n.flush(at(5))
    body = alertmanager_payload(sent, URL, max_alerts=2)
    assert (len(body["alerts"]), body["truncatedAlerts"]) == (2, 3)


def test_slack_and_email_render_the_same_alerts() -> None:
    note = _notification()
    slack = slack_payload(note, URL)
    assert slack["text"] == "[FIRING:2] alertname=cpu app=checkout env=prod"
    assert slack["blocks"][0]["type"] == "header" and len(slack["blocks"]) == 3
    assert "cpu on h1" in slack["blocks"][1]["text"]["text"]
    mail = render_email(note, URL)
    assert mail.subject == slack["text"] and "cpu on h1" in mail.text and "<table" in mail.html
    msg = email_message(note, URL, "alerts@shop.example")
    assert msg["Message-ID"] == f"<{note.idempotency_key}@shop.example>"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
