"""The notifier as a process (``python -m shiftright_server.sinks.notify``) against a real
broker, a real SMTP server (aiosmtpd) and a real HTTP receiver: alert transitions go into
alerts.v1 as the stream worker writes them; what users see is what arrives at the
receivers, and the outcome rows in ClickHouse."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from shiftright_server.infra.alerting_config import ConfigStore
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.alerts import (
    AlertState,
    AlertTransition,
    NotificationRecord,
    Silence,
)
from shiftright_server.streams.alerting.evaluator import fingerprint, idempotency_key

from tests.integration.conftest import wait_for
from tests.integration.notifier import (
    DASH,
    SMTP_USER,
    Mailbox,
    NotifierProcess,
    notifier_settings,
    running,
    wait_configured,
)
from tests.integration.pipeline import Pipeline

Sql = Callable[[str], list[tuple[Any, ...]]]
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


# -- receivers -----------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST. ``plan[path]`` lists the
    status codes to answer in turn (200 after); while ``gate`` is clear, requests are held
    before they are answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.plan: dict[str, list[int]] = {}
        self.gate = threading.Event()
        self.gate.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hit: dict[str, Any] = {
                    "path": self.path,
                    "key": self.headers.get("Idempotency-Key"),
                    "type": self.headers.get("Content-Type"),
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(body) if body else None,
                    "at": time.monotonic(),
                    "answered": False,
                    "cut_off": False,
                }
                with receiver.lock:
                    receiver.requests.append(hit)
                receiver.gate.wait()
                with receiver.lock:
                    codes = receiver.plan.get(self.path, [])
                    code = codes.pop(0) if codes else 200
                    hit["code"] = code
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the notifier was killed while this request was held
                finally:
                    hit["answered"] = True

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def hits(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [h for h in self.requests if path is None or h["path"] == path]

    def delivered(self, path: str | None = None) -> list[dict[str, Any]]:
        """Requests answered 2xx that the notifier was alive to see."""
        return [
            h
            for h in self.hits(path)
            if h["answered"] and h.get("code", 0) < 300 and not h["cut_off"]
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.gate.set()
    r.server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    m = Mailbox()
    yield m
    m.stop()


# -- alert transitions as the stream worker writes them ------------------------------------------


class Alerts:
    def __init__(self, settings: Settings) -> None:
        self.topic = topics.named(topics.ALERTS, settings.namespace)
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "linger.ms": 0,
                "partitioner": "murmur2_random",
            }
        )
        self.seq: Counter[str] = Counter()

    def send(
        self, rule: str, state: AlertState, action: str | None = None, **labels: str
    ) -> AlertTransition:
        full = {"alertname": rule, "app": "checkout", "env": "prod", "severity": "warning"}
        full |= labels
        fp = fingerprint(full)
        self.seq[fp] += 1
        now = datetime.now(UTC)
        t = AlertTransition(
            rule=rule,
            rule_kind="threshold",
            fingerprint=fp,
            labels=full,
            annotations={"summary": f"{rule} on {full['app']}"},
            previous="pending" if state == "firing" else "firing",
            state=state,
            ts=now,
            starts_at=now - timedelta(seconds=30) if state == "resolved" else now,
            ends_at=now if state == "resolved" else None,
            value=42.0,
            threshold=10.0,
            seq=self.seq[fp],
            idempotency_key=idempotency_key(rule, fp, self.seq[fp], state),
            action_webhook=action,
        )
        self.producer.produce(
            self.topic, key=f"{rule}|{fp}".encode(), value=t.model_dump_json().encode()
        )
        assert self.producer.flush(10) == 0
        return t


def config_store(settings: Settings) -> ConfigStore:
    return ConfigStore(
        settings.kafka.bootstrap_servers, topics.named(topics.ALERTING_CONFIG, settings.namespace)
    )


def subscriptions(*entries: str) -> str:
    return "subscriptions:\n" + "".join(entries)


def webhook(name: str, url: str, extra: str = "") -> str:
    return (
        f"  - {{name: {name}, channel: webhook, to: '{url}', group_wait: 0s, "
        f"group_interval: 1s{extra}}}\n"
    )


def email(name: str, to: str, extra: str = "") -> str:
    return (
        f"  - {{name: {name}, channel: email, to: '{to}', group_wait: 0s, "
        f"group_interval: 1s{extra}}}\n"
    )


def read_records(settings: Settings, timeout: float = 10.0) -> list[NotificationRecord]:
    """Everything on notifications.v1 so far."""
    topic = topics.named(topics.NOTIFICATIONS, settings.namespace)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "test-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout)
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[NotificationRecord] = []
        deadline = time.monotonic() + timeout
        while len(out) < high and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append(NotificationRecord.model_validate_json(msg.value() or b""))
        return out
    finally:
        consumer.close()


# -- tests ---------------------------------------------------------------------------------------


def test_firing_then_resolved_reaches_the_webhook_the_mailbox_and_the_action_hook(
    settings: Settings, receiver: Receiver, mailbox: Mailbox
) -> None:
    s = notifier_settings(settings, mailbox)
    config_store(s).apply(
        subscriptions(
            webhook("oncall-hook", receiver.url("/hook?token=abc")),
            email("oncall-mail", "oncall@example.com"),
        ),
        "qa@example.com",
    )
    alerts = Alerts(s)
    with running(s) as proc:
        wait_configured(proc, subscriptions=2)
        fired = alerts.send("disk-full", "firing", action=receiver.url("/act"), host="db-1")
        wait_for(
            lambda: (
                len(receiver.delivered("/hook?token=abc")) == 1
                and bool(mailbox.messages)
                and len(receiver.delivered("/act")) == 1
            ),
            30,
            lambda: f"firing notifications\n{proc.log()}",
            interval=0.05,
        )
        (hit,) = receiver.delivered("/hook?token=abc")
        body = hit["body"]
        assert hit["type"] == "application/json" and len(hit["key"]) == 32
        assert body["version"] == "4" and body["status"] == "firing"
        assert body["receiver"] == "oncall-hook" and body["externalURL"] == DASH
        assert body["groupLabels"] == {"alertname": "disk-full", "app": "checkout", "env": "prod"}
        (alert,) = body["alerts"]
        assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
        assert alert["labels"] == fired.labels and alert["fingerprint"] == fired.fingerprint
        assert alert["annotations"] == {"summary": "disk-full on checkout"}
        assert alert["generatorURL"] == f"{DASH}/alerts/disk-full"
        (mail,) = mailbox.messages
        assert mail["Subject"] == "[FIRING:1] alertname=disk-full app=checkout env=prod"
        assert mail["To"] == "oncall@example.com" and mail["From"] == "shiftright@example.com"
        assert mailbox.logins == [SMTP_USER]
        assert {p.get_content_type() for p in mail.walk()} >= {"text/plain", "text/html"}
        (act,) = receiver.delivered("/act")
        assert act["key"] == fired.idempotency_key and act["body"]["status"] == "firing"

        resolved = alerts.send("disk-full", "resolved", action=receiver.url("/act"), host="db-1")
        wait_for(
            lambda: (
                len(receiver.delivered("/hook?token=abc")) == 2
                and len(mailbox.messages) == 2
                and len(receiver.delivered("/act")) == 2
            ),
            30,
            lambda: f"resolved notifications\n{proc.log()}",
            interval=0.05,
        )
        again = receiver.delivered("/hook?token=abc")[1]
        assert again["body"]["status"] == "resolved" and again["key"] != hit["key"]
        (alert,) = again["body"]["alerts"]
        assert alert["status"] == "resolved" and alert["endsAt"] != "0001-01-01T00:00:00Z"
        assert (
            mailbox.messages[1]["Subject"] == "[RESOLVED] alertname=disk-full app=checkout env=prod"
        )
        assert receiver.delivered("/act")[1]["key"] == resolved.idempotency_key

        wait_for(lambda: len(read_records(s)) >= 6, 30, "6 delivery records", interval=0.2)
        records = read_records(s)
        assert Counter((r.channel, r.alert_status, r.status) for r in records) == {
            ("webhook", "firing", "delivered"): 1,
            ("webhook", "resolved", "delivered"): 1,
            ("email", "firing", "delivered"): 1,
            ("email", "resolved", "delivered"): 1,
            ("action", "firing", "delivered"): 1,
            ("action", "resolved", "delivered"): 1,
        }
        hooks = {r.target for r in records if r.channel != "email"}
        assert hooks == {receiver.url("/hook"), receiver.url("/act")}  # no ?token=
    assert proc.proc is not None and proc.proc.returncode == 0  # SIGTERM: a clean stop
    assert proc.events("notify_stopped")[-1]["delivered"] == 6  # 2 mails, 2 hooks, 2 actions


def test_a_silence_applied_through_the_config_store_mutes_matching_alerts(
    settings: Settings, receiver: Receiver
) -> None:
    s = notifier_settings(settings, None)
    store = config_store(s)
    store.apply(subscriptions(webhook("oncall", receiver.url("/hook"))), "qa@example.com")
    alerts = Alerts(s)
    with running(s) as proc:
        wait_configured(proc, subscriptions=1, silences=0)
        now = datetime.now(UTC)
        store.add_silence(
            Silence.model_validate(
                {
                    "id": "deploy-window",
                    "matchers": ['app="checkout"', 'alertname=~"cpu.*"'],
                    "starts_at": now - timedelta(minutes=1),
                    "ends_at": now + timedelta(hours=1),
                    "created_by": "qa@example.com",
                    "comment": "planned deploy",
                }
            )
        )
        wait_configured(proc, subscriptions=1, silences=1)  # live, without a restart
        alerts.send("cpu-high", "firing", host="web-1")  # silenced
        alerts.send("cpu-high", "firing", app="catalog", host="web-2")  # other app: not
        alerts.send("errors-high", "firing")  # other rule: not
        wait_for(
            lambda: len(receiver.delivered()) >= 2,
            30,
            lambda: f"two notifications\n{proc.log()}",
            interval=0.05,
        )
        # one partition, read in order, group_wait 0: the silenced alert was planned (and
        # left out) no later than the two after it, so had it been sent it would be here
        told = {
            (a["labels"]["alertname"], a["labels"]["app"])
            for h in receiver.delivered()
            for a in h["body"]["alerts"]
        }
        assert told == {("cpu-high", "catalog"), ("errors-high", "checkout")}

        store.delete_silence("deploy-window")
        wait_configured(proc, subscriptions=1, silences=0)
        alerts.send("cpu-high", "firing", host="web-3")  # the silence is gone: sent
        wait_for(
            lambda: any(
                a["labels"].get("host") == "web-3"
                for h in receiver.delivered()
                for a in h["body"]["alerts"]
            ),
            30,
            lambda: f"web-3 after the silence ended\n{proc.log()}",
            interval=0.05,
        )
        last = receiver.delivered()[-1]["body"]
        # web-1 still fires: once the silence is gone its group tells about it too
        assert {a["labels"]["host"] for a in last["alerts"]} == {"web-1", "web-3"}


def test_a_failing_receiver_is_retried_and_every_outcome_lands_in_clickhouse(
    settings: Settings, receiver: Receiver, sql: Sql
) -> None:
    s = notifier_settings(settings, None, retry_max_attempts=4)
    config_store(s).apply(
        subscriptions(
            webhook("flaky", receiver.url("/flaky")),
            webhook("gone", receiver.url("/gone")),
        ),
        "qa@example.com",
    )
    receiver.plan = {"/flaky": [500, 500, 200], "/gone": [404]}
    pipeline = Pipeline(s)
    pipeline.start("sink")
    try:
        with running(s) as proc:
            wait_configured(proc, subscriptions=2)
            Alerts(s).send("queue-stuck", "firing")
            query = (
                "SELECT subscription, status, attempt, error FROM alert_notifications FINAL "
                "ORDER BY subscription, attempt, status"
            )
            wait_for(
                lambda: len(sql(query)) == 4,
                60,
                lambda: f"4 outcome rows, got {sql(query)}\n{proc.log()}",
            )
            rows = sql(query)
            assert [(r[0], r[1], r[2]) for r in rows] == [
                ("flaky", "retrying", 1),
                ("flaky", "retrying", 2),
                ("flaky", "delivered", 3),
                ("gone", "failed", 1),
            ]
            assert rows[0][3].startswith("HTTP 500") and rows[2][3] == ""
            assert rows[3][3].startswith("HTTP 404")
            flaky = receiver.hits("/flaky")
            assert [h["code"] for h in flaky] == [500, 500, 200]
            assert len({h["key"] for h in flaky}) == 1  # one notification, three attempts
            assert len(receiver.hits("/gone")) == 1  # a 404 is not retried
            gaps = [b["at"] - a["at"] for a, b in zip(flaky, flaky[1:], strict=False)]
            assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # exponential back-off
    finally:
        pipeline.stop()


def test_killed_with_sigkill_mid_way_every_notification_arrives_exactly_once(
    settings: Settings, receiver: Receiver
) -> None:
    """Requests are held at the receiver so the kills land with deliveries in flight and
    more planned behind them; transitions also arrive while the notifier is down. A
    request cut off by a kill is resent with the same Idempotency-Key (the receiver cannot
    have answered it to anyone); every other notification arrives exactly once."""
    s = notifier_settings(settings, None, workers=4)
    config_store(s).apply(
        subscriptions(webhook("oncall", receiver.url("/hook"), ", group_by: [alertname, host]")),
        "qa@example.com",
    )
    alerts = Alerts(s)
    proc = NotifierProcess(s)

    def kill_with_requests_held(expect_held: int) -> None:
        def held() -> list[dict[str, Any]]:
            return [h for h in receiver.hits() if not h["answered"]]

        wait_for(
            lambda: len(held()) >= expect_held,
            60,
            lambda: f"{expect_held} held requests, got {len(held())}\n{proc.log()}",
            interval=0.05,
        )
        proc.kill9()
        with receiver.lock:
            for h in receiver.requests:
                if not h["answered"]:
                    h["cut_off"] = True
        receiver.gate.set()

    def told() -> Counter[tuple[str, str]]:
        return Counter(
            (a["labels"]["host"], h["body"]["status"])
            for h in receiver.delivered()
            for a in h["body"]["alerts"]
        )

    try:
        proc.start()
        wait_configured(proc, subscriptions=1)
        receiver.gate.clear()
        for i in range(12):
            alerts.send(f"rule-{i % 3}", "firing", host=f"h{i}")
        kill_with_requests_held(4)  # 4 in flight, 8 planned and waiting
        for i in range(6):  # while it is down
            alerts.send(f"rule-{i % 3}", "resolved", host=f"h{i}")
        for i in range(12, 18):
            alerts.send(f"rule-{i % 3}", "firing", host=f"h{i}")
        receiver.gate.clear()
        proc.start()
        kill_with_requests_held(4)  # again, after the restart
        proc.start()
        # 12 + 6 firing, 6 resolved: 24 notifications, one group each
        wait_for(
            lambda: len(receiver.delivered()) >= 24,
            90,
            lambda: f"24 deliveries, got {told()}\n{proc.log()}",
            interval=0.1,
        )
        wait_for(lambda: bool(proc.events("notify_progress")), 30, "a progress line")
    finally:
        receiver.gate.set()
        proc.stop()
    delivered = Counter(h["key"] for h in receiver.delivered())
    assert len(delivered) == 24 and set(delivered.values()) == {1}, delivered
    cut = [h for h in receiver.hits() if h["cut_off"]]
    assert len(cut) == 8 and {h["key"] for h in cut} <= set(delivered)
    assert told() == {(f"h{i}", "firing"): 1 for i in range(18)} | {
        (f"h{i}", "resolved"): 1 for i in range(6)
    }


def test_delivery_latency_from_transition_to_webhook(
    settings: Settings, receiver: Receiver
) -> None:
    """Forty alerts one after another, each in a group of its own (group_wait 0): the
    time from the transition handed to Kafka to the webhook request at the receiver (the
    rate limit raised: 40 in a row would otherwise be paced by the token bucket)."""
    s = notifier_settings(settings, None, webhook_per_minute=60_000)
    config_store(s).apply(subscriptions(webhook("oncall", receiver.url("/hook"))), "qa@example.com")
    alerts = Alerts(s)
    latencies = []
    with running(s) as proc:
        wait_configured(proc, subscriptions=1)
        for i in range(40):
            started = time.monotonic()
            alerts.send(f"latency-{i}", "firing")

            def arrived(n: int = i) -> bool:
                return len(receiver.hits()) > n

            def what(n: int = i) -> str:
                return f"alert {n}\n{proc.log()}"

            wait_for(arrived, 10, what, interval=0.005)
            latencies.append(receiver.hits()[i]["at"] - started)
    ordered = sorted(latencies)
    p50, p99 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(
        f"\ntransition -> webhook over {len(ordered)} alerts: p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
    assert p50 < 1.0 and p99 < 3.0


def test_a_rate_limited_channel_delays_notifications_and_drops_none(
    settings: Settings, receiver: Receiver
) -> None:
    s = notifier_settings(settings, None, webhook_per_minute=120, rate_burst=2)  # 2/s
    config_store(s).apply(subscriptions(webhook("oncall", receiver.url("/hook"))), "qa@example.com")
    alerts = Alerts(s)
    with running(s) as proc:
        wait_configured(proc, subscriptions=1)
        for i in range(6):
            alerts.send(f"storm-{i}", "firing")
        wait_for(
            lambda: len(receiver.delivered()) == 6,
            30,
            lambda: f"6 deliveries\n{proc.log()}",
            interval=0.05,
        )
        wait_for(
            lambda: len([r for r in read_records(s) if r.status == "delivered"]) == 6,
            30,
            "6 delivered records",
            interval=0.2,
        )
    arrivals = [h["at"] for h in receiver.delivered()]
    assert arrivals[-1] - arrivals[0] >= 1.8  # 2 at once, then one every 0.5 s
    held = {r.idempotency_key for r in read_records(s) if r.status == "rate_limited"}
    assert len(held) >= 3 and held <= {h["key"] for h in receiver.delivered()}


def test_a_persons_own_subscription_is_picked_up_live_and_its_mail_unsubscribes_in_one_click(
    settings: Settings, receiver: Receiver, mailbox: Mailbox
) -> None:
    from shiftright_server.infra.access.identity import open_identity

    s = notifier_settings(settings, mailbox)
    config_store(s).apply(subscriptions(webhook("team-hook", receiver.url("/team"))), "qa")
    identity = open_identity(s)
    ann, _ = identity.accounts.add("ann@example.com", "viewer")
    with running(s) as proc:
        wait_configured(proc, subscriptions=1)
        mine = identity.subscriptions.create(ann, "email", "", "checkout", "", "", "disk-full")
        wait_configured(proc, subscriptions=2)  # no restart, no rule-file change
        Alerts(s).send("disk-full", "firing", host="db-1")
        wait_for(
            lambda: bool(mailbox.messages), 30, lambda: f"the mail\n{proc.log()}", interval=0.05
        )
    (mail,) = mailbox.messages
    assert mail["To"] == "ann@example.com"
    link = mail["List-Unsubscribe"]
    base = s.public_url()
    assert link.startswith(f"<{base}/unsubscribe/") and link.endswith(">")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = link[len(f"<{base}/unsubscribe/") : -1]
    assert identity.unsubscribed(token) == mine.id
    identity.close()
