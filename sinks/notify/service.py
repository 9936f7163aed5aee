"""The notifier's loop: ``alerts.v1`` → :class:`Notifier` → outbox → channels, with
every outcome to ``notifications.v1``.

One iteration (at least every 0.2 s, sooner when a group or a retry is due):

1. apply a configuration change the watcher saw (subscriptions, silences, inhibition);
2. read what arrived on ``alerts.v1`` and ingest it (action-webhook calls come back);
3. flush the groups that are due (notifications come back);
4. write, in one SQLite transaction, the notifier's state, the offsets consumed and the
   new deliveries — then commit the offsets to Kafka (for lag; the file is the truth);
5. deliver what is due (:class:`Deliverer`), and publish outcome records.

A kill at any point loses nothing: before step 4 commits, the restart re-reads the same
transitions from the saved offsets into the saved state; after it, the deliveries are
in the outbox. A delivery recorded as delivered is never sent again; one cut off
between the receiver's answer and the record is sent again with the same idempotency
key (the only window for a duplicate, microseconds wide).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError
from shiftright_server.infra.access.identity import open_identity
from shiftright_server.infra.alerting_config import AlertingConfig, ConfigWatcher
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.alerts import AlertTransition
from shiftright_server.sinks.notify.delivery import Deliverer, buckets, policy_from
from shiftright_server.sinks.notify.digest import Digests
from shiftright_server.sinks.notify.model import Delivery, from_action, from_notification
from shiftright_server.sinks.notify.notifier import Notifier
from shiftright_server.sinks.notify.outbox import Outbox
from shiftright_server.sinks.notify.personal import personal_subscriptions, unsubscribe_links
from shiftright_server.sinks.notify.transports import Transport, build_transports

log = structlog.get_logger("shiftright.notify")

TICK_S = 0.2  # longest sleep between two looks at the groups and the outbox
PROGRESS_S = 10.0
PRUNE_S = 3600.0
PERSONAL_CHECK_S = 1.0  # how often people's own subscriptions are looked at
DIGEST_CHECK_S = 60.0  # how often the daily digests are looked at


def outbox_path(settings: Settings) -> Path:
    return settings.resolved_state_dir() / "notify" / "outbox.db"


class RecordPublisher:
    """Moves outcome records from the outbox to ``notifications.v1``; a record leaves the
    outbox once Kafka acknowledged it (a resend after a crash is harmless: the table
    deduplicates on (idempotency_key, attempt, status))."""

    def __init__(self, producer: Producer, topic: str, outbox: Outbox) -> None:
        self.producer, self.topic, self.outbox = producer, topic, outbox
        self.sent_upto = 0
        self.acked: list[int] = []
        self.errors = 0
        self.published = 0

    def pump(self) -> None:
        self.producer.poll(0)
        if self.acked:
            self.outbox.published(self.acked)
            self.published += len(self.acked)
            self.acked = []
        for rid, value in self.outbox.unpublished(self.sent_upto):
            key = json.loads(value)["idempotency_key"]
            try:
                self.producer.produce(
                    self.topic,
                    value=value.encode(),
                    key=key.encode(),
                    on_delivery=self._on_delivery(rid),
                )
            except BufferError:
                break
            self.sent_upto = rid

    def _on_delivery(self, rid: int) -> Callable[[KafkaError | None, Message], None]:
        return lambda err, _msg: self._done(rid, err)

    def _done(self, rid: int, err: Any) -> None:
        if err is None:
            self.acked.append(rid)
        else:
            self.errors += 1
            self.sent_upto = 0  # produce what is not acknowledged again
            log.warning("notification_record_unsent", error=str(err))

    def flush(self, timeout: float) -> None:
        self.pump()
        self.producer.flush(timeout)
        self.pump()


class NotifyService:
    def __init__(
        self,
        settings: Settings,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        ns = settings.namespace
        self.settings = settings
        self.alerting = settings.alerting
        self.topic = topics.named(topics.ALERTS, ns)
        self.config_topic = topics.named(topics.ALERTING_CONFIG, ns)
        self.records_topic = topics.named(topics.NOTIFICATIONS, ns)
        self.outbox = Outbox(outbox_path(settings), self.topic)
        self.identity = open_identity(settings)  # people's own subscriptions
        self._config: AlertingConfig | None = None
        self._personal = ("", 0.0)  # (version applied, when last checked)
        leave = unsubscribe_links(self.identity, settings.public_url())
        self.digests = Digests(
            self.identity,
            self._fired,
            self._mail,
            leave,
            settings.alerting.smtp_from,
            settings.access.digest_hour,
        )
        self._digest_at = 0.0
        self.deliverer = Deliverer(
            self.outbox,
            transports if transports is not None else build_transports(self.alerting, leave),
            policy_from(self.alerting),
            buckets(self.alerting, time.time()),
            workers=self.alerting.workers,
        )
        bootstrap = settings.kafka.bootstrap_servers
        self.publisher = RecordPublisher(
            Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 20,
                    "message.timeout.ms": 60_000,
                    "partitioner": "murmur2_random",
                }
            ),
            self.records_topic,
            self.outbox,
        )
        self._config_lock = threading.Lock()
        self._new_config: AlertingConfig | None = None
        self.config_version = -1
        self.watcher = ConfigWatcher(bootstrap, self.config_topic, self._on_config)
        self.notifier = Notifier()
        self.offsets: dict[int, int] = {}
        self.counts: Counter[str] = Counter()
        self.status_path = settings.resolved_state_dir() / "run" / "notifier.json"

    # -- configuration ---------------------------------------------------------------------------
    def _on_config(self, config: AlertingConfig) -> None:  # the watcher's thread
        with self._config_lock:
            self._new_config = config

    def _apply_config(self, restore: bytes | None = None) -> None:
        """Hand a new configuration to the notifier; with ``restore``, first rebuild the
        notifier from its saved state under that configuration (restoring without the
        subscriptions would drop every group, and with them the resolve notifications)."""
        with self._config_lock:
            config, self._new_config = self._new_config, None
        if config is None:
            config = self._config if self._personal_changed() else None
        if config is None:
            return
        self._config = config
        self._personal = (self.identity.subscriptions.version(), time.monotonic())
        rules = config.rules
        silences = config.all_silences()
        subscriptions = [*rules.subscriptions, *personal_subscriptions(self.identity)]
        if restore is not None:
            self.notifier = Notifier.loads(restore, subscriptions, silences, rules.inhibit)
        else:
            self.notifier.configure(subscriptions, silences, rules.inhibit)
        self.config_version = config.version
        log.info(
            "notify_config",
            version=config.version,
            subscriptions=len(subscriptions),
            silences=len(silences),
            inhibit_rules=len(rules.inhibit),
        )

    def _fired(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        from shiftright_server.infra.clickhouse import get_client
        from shiftright_server.sinks.notify.digest import FIRED_SQL

        ch = self.settings.clickhouse
        client = get_client(ch, database=ch.database)
        try:
            found = client.query(FIRED_SQL, parameters={"since": since, "until": until})
            return [dict(zip(found.column_names, row, strict=True)) for row in found.result_rows]
        finally:
            client.close()

    def _mail(self, msg: EmailMessage) -> None:
        import smtplib

        a = self.alerting
        with smtplib.SMTP(a.smtp_host, a.smtp_port, timeout=a.smtp_timeout_seconds) as smtp:
            if a.smtp_starttls:
                smtp.starttls()
            if a.smtp_user:
                smtp.login(a.smtp_user, a.smtp_password or "")
            smtp.send_message(msg)

    def _send_digests(self) -> None:
        """Today's digests, looked at once a minute; a failure is retried then."""
        if time.monotonic() < self._digest_at:
            return
        self._digest_at = time.monotonic() + DIGEST_CHECK_S
        try:
            sent = self.digests.run_due(datetime.now(UTC))
        except Exception as exc:  # the warehouse or the mail server is away: next minute
            log.warning("digest_failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            return
        if sent:
            log.info("digests_sent", count=sent)

    def _personal_changed(self) -> bool:
        """Whether people's own subscriptions changed (looked at every second at most)."""
        version, checked = self._personal
        if self._config is None or time.monotonic() - checked < PERSONAL_CHECK_S:
            return False
        self._personal = (version, time.monotonic())
        return self.identity.subscriptions.version() != version

    # -- run -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self.watcher.start()
        consumer: Consumer | None = None
        try:
            if not self._wait_for_config(stop):
                return
            state, self.offsets = self.outbox.load_state()
            self._apply_config(restore=state)
            consumer = self._consumer()
            pending = self.outbox.counts().get("pending", 0)
            log.info(
                "notify_started",
                topic=self.topic,
                offsets=self.offsets or "beginning",
                groups=len(self.notifier.groups),
                pending=pending,
                outbox=str(self.outbox.path),
            )
            self._loop(consumer, stop)
        finally:
            self._shutdown(consumer)

    def _wait_for_config(self, stop: threading.Event) -> bool:
        """No transition is read before the configuration is: routing it without the
        subscriptions would lose it for them."""
        started = time.monotonic()
        warned = started
        while not self.watcher.loaded.wait(TICK_S):
            if stop.is_set():
                return False
            if time.monotonic() - warned > PROGRESS_S:
                warned = time.monotonic()
                log.warning(
                    "notify_waiting_for_config",
                    topic=self.config_topic,
                    waited_s=round(warned - started),
                )
        return True

    def _consumer(self) -> Consumer:
        group = self.alerting.group_id
        ns = self.settings.namespace
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "group.id": f"{ns}.{group}" if ns else group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
            }
        )
        meta = consumer.list_topics(self.topic, timeout=15)
        found = meta.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            consumer.close()
            raise RuntimeError(
                f"topic {self.topic} is missing: run `shiftright topics` (or `shiftright up`) first"
            )
        consumer.assign(
            [
                TopicPartition(self.topic, p, self.offsets.get(p, OFFSET_BEGINNING))
                for p in sorted(found.partitions)
            ]
        )
        return consumer

    def _loop(self, consumer: Consumer, stop: threading.Event) -> None:
        next_progress = time.monotonic() + PROGRESS_S
        next_prune = 0.0
        window: Counter[str] = Counter()
        while not stop.is_set():
            self._apply_config()
            self._send_digests()
            timeout = self._timeout()
            messages = self._read(consumer, timeout)
            transitions = self._decode(messages)
            now = datetime.now(UTC)
            planned: list[Delivery] = []
            if transitions:
                calls = self.notifier.ingest(transitions, now)
                planned += [from_action(c, now) for c in calls]
            due = self.notifier.next_flush_at()
            flushed = due is not None and due <= now
            if flushed:
                planned += [from_notification(n) for n in self.notifier.flush(now)]
            if messages or flushed:
                added = self.outbox.save(self.notifier.dumps(), self.offsets, planned, time.time())
                for d in added:
                    window[d.kind] += 1
                    log.info(
                        "notification_planned",
                        key=d.key,
                        kind=d.kind,
                        channel=d.channel,
                        subscription=d.notification.subscription,
                        status=d.notification.status,
                        alerts=len(d.notification.alerts),
                    )
                window["known"] += len(planned) - len(added)
                if messages:
                    consumer.commit(
                        offsets=[TopicPartition(self.topic, p, o) for p, o in self.offsets.items()],
                        asynchronous=True,
                    )
            self.deliverer.pump()
            self.publisher.pump()
            if time.monotonic() >= next_progress:
                next_progress = time.monotonic() + PROGRESS_S
                self._progress(window)
                window = Counter()
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_S
                gone = self.outbox.prune(time.time() - self.alerting.keep_days * 86400)
                if gone:
                    log.info("notify_pruned", deliveries=gone)

    @staticmethod
    def _read(consumer: Consumer, timeout: float) -> list[Any]:
        """Wait up to ``timeout`` for the first message, then take what else is there
        (``consume(n, t)`` alone waits the whole ``t`` unless ``n`` messages arrive)."""
        first = consumer.poll(timeout)
        if first is None:
            return []
        return [first, *consumer.consume(499, 0)]

    def _timeout(self) -> float:
        now = time.time()
        wake = [now + TICK_S]
        due = self.notifier.next_flush_at()
        if due is not None:
            wake.append(due.timestamp())
        if self.deliverer.wake_at is not None:
            wake.append(self.deliverer.wake_at)
        if self.deliverer.inflight:
            wake.append(now + 0.02)
        return max(0.0, min(wake) - now)

    def _decode(self, messages: list[Any]) -> list[AlertTransition]:
        out: list[AlertTransition] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("notify_consume_error", error=str(err))
                continue
            self.offsets[msg.partition()] = msg.offset() + 1
            self.counts["consumed"] += 1
            try:
                out.append(AlertTransition.model_validate_json(msg.value() or b""))
            except ValidationError as exc:
                self.counts["invalid"] += 1
                log.error(
                    "notify_bad_transition",
                    partition=msg.partition(),
                    offset=msg.offset(),
                    error=str(exc).splitlines()[0],
                )
        self.counts["transitions"] += len(out)
        return out

    def _progress(self, window: Counter[str]) -> None:
        d = self.deliverer
        latencies = d.take_latencies()
        outbox = self.outbox.counts()
        fields: dict[str, Any] = {
            "consumed": self.counts["consumed"],
            "transitions": self.counts["transitions"],
            "invalid": self.counts["invalid"],
            "planned_notifications": window["notification"],
            "planned_actions": window["action"],
            "already_known": window["known"],
            "delivered": d.outcomes["delivered"],
            "retrying": d.outcomes["retrying"],
            "failed": d.outcomes["failed"],
            "rate_limited": d.outcomes["rate_limited"],
            "pending": outbox.get("pending", 0),
            "in_flight": len(d.inflight),
            "groups": len(self.notifier.groups),
            "alerts": len(self.notifier.alerts),
            "records_published": self.publisher.published,
            "config_version": self.config_version,
            "offsets": dict(self.offsets),
        }
        if latencies:
            fields["latency_p50_s"] = round(statistics.median(latencies), 3)
            fields["latency_max_s"] = round(max(latencies), 3)
        log.info("notify_progress", **fields)
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(fields | {"updated_at": datetime.now(UTC).isoformat()}))
            tmp.replace(self.status_path)
        except OSError:
            pass

    def _shutdown(self, consumer: Consumer | None) -> None:
        self.deliverer.drain(timeout=10.0)
        self.publisher.flush(5.0)
        if consumer is not None:
            consumer.close()
        self.watcher.stop()
        self.outbox.close()
        log.info("notify_stopped", delivered=self.deliverer.outcomes["delivered"])
