"""People's own subscriptions: made and ended on "My subscriptions", routed by the
notifier like the rule file's, and each e-mail's signed one-click unsubscribe link works
without signing in (RFC 8058)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from fastapi.testclient import TestClient
from shiftright_server.infra.access.audit import MemoryAudit
from shiftright_server.infra.access.identity import Identity
from shiftright_server.sinks.notify.digest import Digests
from shiftright_server.sinks.notify.model import Delivery
from shiftright_server.sinks.notify.notifier import Notification
from shiftright_server.sinks.notify.personal import personal_subscriptions, unsubscribe_links
from shiftright_server.sinks.notify.transports import SmtpConfig, SmtpTransport

from tests.signin import sign_in_as
from tests.unit.dashboard.conftest import FakeCommands, FakeReader, make_app


def _client(reader: FakeReader, identity: Identity, audit: MemoryAudit) -> TestClient:
    client = TestClient(make_app(reader, FakeCommands(), identity, audit))
    sign_in_as(client, identity, "viewer", "vi@example.com")
    return client


def test_a_person_subscribes_to_their_own_address_and_the_notifier_routes_it(
    reader: FakeReader, identity: Identity
) -> None:
    audit = MemoryAudit()
    client = _client(reader, identity, audit)
    prefilled = client.get("/subscriptions?rule=checkout-errors&app=checkout").text
    assert 'name="rule" value="checkout-errors"' in prefilled
    form = {
        "channel": "email",
        "to": "someone.else@example.com",
        "app": "checkout",
        "severity": "warning",
        "rule": "checkout-errors",
    }
    made = client.post("/subscriptions", data=form)
    assert made.status_code == 200 and "Subscribed" in made.text
    [mine] = identity.subscriptions.list()
    assert mine.to == "vi@example.com"  # e-mail goes to one's own address only
    bad = client.post("/subscriptions", data={"channel": "slack", "to": "http://insecure"})
    assert bad.status_code == 400 and 'id="p-to"' in bad.text
    assert len(identity.subscriptions.list()) == 1  # nothing half-saved
    [routed] = personal_subscriptions(identity)
    assert routed.name == f"me.{mine.id}" and routed.rules == ["checkout-errors"]
    labels = {"alertname": "checkout-errors", "app": "checkout", "env": "prod"}
    assert routed.wants({**labels, "severity": "critical"})
    assert not routed.wants({**labels, "severity": "info"})
    assert not routed.wants({**labels, "app": "catalog", "severity": "critical"})
    assert [e.action for e in audit.entries] == ["subscription.add"]


def test_a_person_changes_their_subscription_in_place_and_no_one_else_s(
    reader: FakeReader, identity: Identity
) -> None:
    audit = MemoryAudit()
    client = _client(reader, identity, audit)
    other, _ = identity.accounts.add("ot@example.com", "viewer")
    theirs = identity.subscriptions.create(other, "email", "", "checkout", "", "", "")
    client.post("/subscriptions", data={"channel": "email", "app": "checkout", "rule": "r1"})
    [mine] = identity.subscriptions.list(identity.accounts.by_email("vi@example.com"))
    token, version = identity.unsubscribe_token(mine.id), identity.subscriptions.version()
    editing = client.get(f"/subscriptions?edit={mine.id}").text
    assert f'name="replace" value="{mine.id}"' in editing and 'value="r1"' in editing
    change = {"replace": mine.id, "channel": "email", "app": "checkout", "rule": "r2"}
    bad = client.post("/subscriptions", data=change | {"mode": "weekly"})
    assert bad.status_code == 400 and 'id="p-mode"' in bad.text
    assert identity.subscriptions.get(mine.id) == mine  # nothing half-saved
    done = client.post("/subscriptions", data=change | {"severity": "critical"})
    assert done.status_code == 200 and f"Changed ({mine.id})" in done.text
    after = identity.subscriptions.get(mine.id)
    assert (after.rule, after.severity, after.created_at) == ("r2", "critical", mine.created_at)
    assert identity.unsubscribed(token) == mine.id  # its unsubscribe link still works
    assert identity.subscriptions.version() != version  # the notifier reloads it
    stolen = client.post("/subscriptions", data=change | {"replace": theirs.id})
    assert stolen.status_code == 404 and identity.subscriptions.get(theirs.id) == theirs
    [add, changed] = audit.entries
    assert (changed.action, changed.target) == ("subscription.change", mine.id)
    assert (changed.before["rule"], changed.after["rule"]) == ("r1", "r2")
    slack = "https://hooks.slack.com/services/T0001/B0002/s3cretW3bhookT0ken"
    to_slack = client.post("/subscriptions", data=change | {"channel": "slack", "to": slack})
    assert to_slack.status_code == 200 and identity.subscriptions.get(mine.id).to == slack
    assert slack in client.get(f"/subscriptions?edit={mine.id}").text  # the owner's form
    recorded = audit.entries[-1].after["to"]  # the audit trail never holds the secret
    assert recorded == "https://hooks.slack.com/services/T0001/B0002/***"


class _Smtp:
    sent: list[object] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _Smtp:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def send_message(self, msg: object) -> dict[str, object]:
        _Smtp.sent.append(msg)
        return {}


def test_each_email_carries_a_signed_one_click_unsubscribe_that_needs_no_sign_in(
    reader: FakeReader, identity: Identity, monkeypatch: object
) -> None:
    import smtplib

    monkeypatch.setattr(smtplib, "SMTP", _Smtp)  # type: ignore[attr-defined]  # pytest's MonkeyPatch
    user, _ = identity.accounts.add("vi@example.com", "viewer")
    sub = identity.subscriptions.create(user, "email", "", "checkout", "", "", "")
    links = unsubscribe_links(identity, "https://dash.example.com")
    transport = SmtpTransport(
        SmtpConfig("mail", 25, "alerts@example.com"), "https://dash.example.com", links
    )
    note = Notification(
        f"me.{sub.id}", "email", "vi@example.com", "k", {}, "firing", (), "key1", datetime.now(UTC)
    )
    transport.send(Delivery("notification", note, datetime.now(UTC)))
    [sent] = _Smtp.sent
    assert isinstance(sent, EmailMessage)
    header = str(sent["List-Unsubscribe"])
    assert header.startswith("<https://dash.example.com/unsubscribe/")
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"List-Unsubscribe: {header}\n".encode() in sent.as_bytes()  # plain, not encoded
    text, html = (sent.get_body((kind,)) for kind in ("plain", "html"))
    assert text is not None and html is not None
    assert f"Unsubscribe: {header[1:-1]}" in text.get_content()  # also a link in the body
    assert f'<a href="{header[1:-1]}">Unsubscribe</a>' in html.get_content()
    path = header[len("<https://dash.example.com") : -1]
    outsider = TestClient(
        make_app(reader, FakeCommands(), identity, MemoryAudit())
    )  # not signed in
    assert (
        "Unsubscribe?" in outsider.get(path).text and identity.subscriptions.list()
    )  # GET changes nothing
    forged = outsider.post(path[:-4] + "0000", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404 and identity.subscriptions.list()
    done = outsider.post(path, data={"List-Unsubscribe": "One-Click"})  # as a mail client does
    assert done.status_code == 200 and "Unsubscribed" in done.text
    assert identity.subscriptions.list() == []


def test_a_daily_digest_lists_the_day_s_matching_alerts_once_a_day(
    reader: FakeReader, identity: Identity
) -> None:
    client = _client(reader, identity, MemoryAudit())
    slack = {"channel": "slack", "to": "https://hooks.slack.com/x", "mode": "digest"}
    refused = client.post("/subscriptions", data=slack)
    assert refused.status_code == 400 and 'id="p-mode"' in refused.text
    made = client.post(
        "/subscriptions", data={"channel": "email", "app": "checkout", "mode": "digest"}
    )
    assert made.status_code == 200 and "daily digest" in made.text
    assert personal_subscriptions(identity) == []  # not notified at once
    at = datetime(2030, 1, 2, 7, 30, tzinfo=UTC)
    fired = [
        {
            "rule": "cpu-high",
            "labels": {"app": "checkout", "env": "prod", "severity": "warning"},
            "ts": at,
            "value": 0.9,
        },
        {
            "rule": "slow",
            "labels": {"app": "catalog", "env": "prod", "severity": "warning"},
            "ts": at,
            "value": 2.0,
        },
    ]
    asked: list[tuple[datetime, datetime]] = []
    sent: list[EmailMessage] = []

    def fired_between(since: datetime, until: datetime) -> list[dict[str, object]]:
        asked.append((since, until))
        return fired

    links = unsubscribe_links(identity, "https://dash.example.com")
    digests = Digests(identity, fired_between, sent.append, links, "alerts@example.com", 7)
    assert digests.run_due(at.replace(hour=6)) == 0 and asked == []  # before the hour
    assert digests.run_due(at) == 1
    assert digests.run_due(at.replace(hour=9)) == 0  # once a day
    [mail] = sent
    assert (
        mail["To"] == "vi@example.com" and mail["Subject"] == "[DIGEST] 1 alert fired, 2030-01-02"
    )
    body = mail.get_content()
    assert "cpu-high" in body and "slow" not in body  # only checkout's
    assert str(mail["List-Unsubscribe"]).startswith("<https://dash.example.com/unsubscribe/")
    assert asked == [(at - timedelta(days=1), at)]
