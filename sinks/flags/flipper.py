"""The flipper: alert transitions of rules with a ``flip`` action → flag flips.

::

    alerts.v1 ──▶ flipper (consumer group <ns>.shiftright-flipper) ──▶ flags.config.v1
    alerting.config.v1 (which rule flips what) ─┘                     └▶ events.change.v1

Contract:
- A ``firing`` transition of a rule with ``flip`` flips the flag (:func:`alert_flip`:
  never over a person's flip, capped per hour — the rule's ``max_per_hour`` or
  ``SHIFTRIGHT_ALERTING__FLIPS_PER_HOUR`` — once per firing). A ``resolved`` one arms
  the automatic restore in the flip record itself; every ``RESTORE_CHECK_S`` the flipper
  restores the flips whose quiet period has passed.
- Each decision is made on a copy of the flag topic a follower thread keeps current,
  once that copy holds the flipper's own last write (read your writes), so it sees
  every earlier flip, its own included.
- Offsets are committed after the batch's flips were written (acknowledged by the
  broker). A flipper killed in between reads the same firings again and finds their
  flips already written (the flip id is the firing's idempotency key): one flip each.
- It runs as a thread of the notifier process (``python -m shiftright_server.sinks.notify``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from confluent_kafka import Consumer, Message
from pydantic import ValidationError
from shiftright.flags.feed import Follower
from shiftright.flags.topic import Folder
from shiftright_server.infra.alerting_config import AlertingConfig, ConfigWatcher
from shiftright_server.infra.flags_config import FlagStoreError, FlagTopic, change_event
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.schemas.alerts import AlertTransition, FlipSpec, Scope
from shiftright_server.sinks.flags.flips import (
    FlipAction,
    alert_flip,
    alert_resolved,
    auto_restore,
    due_restores,
)
from shiftright_server.sinks.flags.unleash import Held, UnleashClient, UnleashFlips

log = structlog.get_logger("shiftright.flags")
RESTORE_CHECK_S = 1.0
GROUP = "shiftright-flipper"
#: A firing older than this when read (a flipper's first start reading old alerts) flips
#: nothing: pressing the button is for incidents happening now.
STALE_S = 900.0


class Flipper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        kafka, ns = settings.kafka.bootstrap_servers, settings.namespace
        self.flags = FlagTopic(kafka, ns)
        self.folder = Folder()  # the flag topic, kept current by the follower thread
        self._folding = threading.Lock()
        self.follower = Follower(
            kafka, self.flags.topic, self.folder, lambda: None, lock=self._folding
        )
        self.alerts_topic = topics.named(topics.ALERTS, ns)
        self.actions: dict[str, tuple[FlipSpec, Scope]] = {}
        self._lock = threading.Lock()
        self.watcher = ConfigWatcher(
            kafka, topics.named(topics.ALERTING_CONFIG, ns), self._configure
        )
        self.flips = 0
        self.unleash = _unleash(settings, self.flags)

    def _configure(self, config: AlertingConfig) -> None:
        actions = {r.name: (r.flip, r.scope) for r in config.rules.rules if r.flip is not None}
        with self._lock:
            self.actions = actions

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="flipper", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        self.watcher.start()
        self.follower.start()
        consumer = None
        try:
            while not (self.watcher.loaded.wait(0.2) and self.follower.loaded.is_set()):
                if stop.is_set():
                    return
            consumer = self._consumer()
            self._loop(consumer, stop)
        finally:
            if consumer is not None:
                consumer.close()
            self.watcher.stop()
            self.follower.stop()

    def _consumer(self) -> Consumer:
        ns = self.settings.namespace
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "group.id": f"{ns}.{GROUP}" if ns else GROUP,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
        consumer.subscribe([self.alerts_topic])
        return consumer

    def _loop(self, consumer: Consumer, stop: threading.Event) -> None:
        next_check = 0.0
        while not stop.is_set():
            messages = consumer.consume(100, 0.2)
            try:
                if self._handle(messages):
                    consumer.commit(asynchronous=False)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + RESTORE_CHECK_S
                    self.restore_due(datetime.now(UTC))
            except Exception as exc:  # the broker away: the batch is read again
                log.warning("flip_retry", error=str(exc))
                _rewind(consumer, messages)
                stop.wait(1.0)

    def _handle(self, messages: list[Message]) -> bool:
        """Act on a batch; True when it held records (to commit)."""
        read = False
        for msg in messages:
            if msg.error() is not None:
                continue
            read = True
            try:
                transition = AlertTransition.model_validate_json(msg.value() or b"")
            except ValidationError:
                continue
            self.act(transition)
        return read

    def act(self, t: AlertTransition) -> str:
        """Flip, arm a restore, or nothing; returns the outcome (logged)."""
        with self._lock:
            found = self.actions.get(t.rule)
        if found is None or t.state not in ("firing", "resolved"):
            return "none"
        spec, scope = found
        app, env = spec.where(scope)
        cap = spec.max_per_hour or self.settings.alerting.flips_per_hour
        stale = t.state == "firing" and (datetime.now(UTC) - t.ts).total_seconds() > STALE_S
        if spec.via == "unleash":
            outcome = "stale" if stale else self._in_unleash(t, spec, app, env, cap)
            log.info(
                "flag_flip_decided",
                rule=t.rule,
                state=t.state,
                flag=spec.flag,
                via="unleash",
                outcome=outcome,
            )
            return outcome
        action = FlipAction(app, spec.flag, env, spec.to, spec.restore, spec.quiet, cap)
        with self._current() as folder:
            if stale:
                outcome = "stale"
            elif t.state == "firing":
                why = t.annotations.get("summary") or f"alert {t.rule} fired"
                key = t.idempotency_key
                outcome = alert_flip(self.flags, folder, action, t.rule, key, why, t.ts)
            else:
                outcome = alert_resolved(self.flags, folder, action, t.rule, t.ts)
        self.flips += outcome == "flipped"
        log.info("flag_flip_decided", rule=t.rule, state=t.state, flag=spec.flag, outcome=outcome)
        return outcome

    def _in_unleash(self, t: AlertTransition, spec: FlipSpec, app: str, env: str, cap: int) -> str:
        if self.unleash is None:
            return "unleash_not_configured"
        project = spec.project or self.unleash.project
        if t.state == "resolved":
            return self.unleash.resolved(t.rule, project, spec.flag, env, t.ts.timestamp())
        on = spec.to == "on"
        want = Held(t.rule, project, spec.flag, env, on, spec.restore, spec.quiet, app)
        return self.unleash.fired(want, t.idempotency_key, t.ts.timestamp(), cap)

    def restore_due(self, now: datetime) -> int:
        if self.unleash is not None:
            self.unleash.restore_due(now.timestamp())
        with self._lock:
            if not any(spec.restore == "auto" for spec, _ in self.actions.values()):
                return 0
        with self._current() as folder:
            due = due_restores(folder, now)
            for flip in due:
                auto_restore(self.flags, folder, flip, now)
                log.info("flag_restored", flag=flip.flag, env=flip.env, by=flip.actor)
        return len(due)

    @contextlib.contextmanager
    def _current(self) -> Iterator[Folder]:
        """The flag topic as of this flipper's own last write at least (read your writes),
        held still while a decision is made and written; a full read if the follower lags."""
        deadline = time.monotonic() + 5.0
        while self.folder.position <= self.flags.written and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.folder.position <= self.flags.written:
            yield self.flags.read()
            return
        with self._folding:
            yield self.folder


def _unleash(settings: Settings, flags: FlagTopic) -> UnleashFlips | None:
    """Flips in Unleash, when a server is configured; each is a change event as well."""
    a = settings.alerting
    if not a.unleash_url:
        return None
    client = UnleashClient(
        a.unleash_url, a.unleash_token or "", a.unleash_timeout_seconds, a.unleash_attempts
    )

    def changed(held: Held, on: bool, actor: str) -> None:
        now, was = ("on", "off") if on else ("off", "on")
        event = change_event(held.app or "unleash", held.env, held.flag, now, was, actor)
        why = f"in Unleash ({held.project})"
        try:
            flags.write_changes([event.model_copy(update={"description": why})])
        except FlagStoreError as exc:  # the flip itself is made: not worth a second call
            log.warning("flip_change_event_lost", flag=held.flag, error=str(exc))

    return UnleashFlips(client, a.unleash_project, changed)


def _rewind(consumer: Consumer, messages: list[Message]) -> None:
    from confluent_kafka import TopicPartition

    first: dict[tuple[str, int], int] = {}
    for msg in messages:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic and partition is not None and offset is not None:
            first.setdefault((topic, partition), offset)
    for (topic, partition), offset in first.items():
        consumer.seek(TopicPartition(topic, partition, offset))
