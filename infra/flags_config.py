"""Where flags live: the compacted topic ``flags.config.v1`` (records: ``shiftright.flags.topic``).

Every write that changes what an app evaluates is also a change event on
``events.change.v1`` (``change_type`` ``flag``; actor a person, ``token:<name>`` or
``alert:<rule>``), so every chart's markers show flips: applying a file writes one per
flag and environment whose state it changes, a flip or restore writes one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from shiftright.flags.topic import Folder, file_key, flip_key
from shiftright_server.schemas import topics
from shiftright_server.schemas.events import ChangeEvent, partition_key
from shiftright_server.schemas.flag_file import load_flags
from shiftright_server.schemas.flags import FlagFile, Flip


class FlagStoreError(RuntimeError):
    """The flag topic could not be read or written."""


@dataclass(frozen=True)
class Applied:
    """One app's applied flag file."""

    app: str
    version: int = 0
    text: str = ""
    applied_by: str = ""
    applied_at: str = ""
    source: str = ""
    flags: FlagFile | None = None


class FlagTopic:
    """Reads and writes the flag topic and the change events (blocking calls)."""

    def __init__(self, bootstrap: str, namespace: str = "", timeout_s: float = 15.0) -> None:
        self.bootstrap, self.timeout_s = bootstrap, timeout_s
        self.topic = topics.named(topics.FLAGS_CONFIG, namespace)
        self.change_topic = topics.named(topics.EVENTS_CHANGE, namespace)
        self.written = -1  # the offset of this client's last record on the flag topic
        self._made: Producer | None = None

    # -- reading -------------------------------------------------------------------------------
    def read(self) -> Folder:
        """Every app's state as of the end of the topic now."""
        folder = Folder()
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "shiftright-flags-admin",  # never joined: assigned
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            try:
                _, end = consumer.get_watermark_offsets(
                    KafkaTopicPartition(self.topic, 0), self.timeout_s
                )
            except Exception as exc:
                raise FlagStoreError(f"cannot reach the flag topic {self.topic}: {exc}") from exc
            consumer.assign([KafkaTopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            while folder.position < end:
                msg = consumer.poll(self.timeout_s)
                if msg is None:
                    raise FlagStoreError(f"reading {self.topic} timed out at {folder.position}")
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    raise FlagStoreError(f"reading {self.topic}: {error}")
                folder.fold(msg.key(), msg.value(), msg.offset() or 0)
        finally:
            consumer.close()
        return folder

    def applied(self, app: str, folder: Folder | None = None) -> Applied:
        state = (folder or self.read()).apps.get(app)
        doc = state.file if state else {}
        if not doc:
            return Applied(app)
        return Applied(
            app=app,
            version=int(doc.get("version", 0)),
            text=str(doc.get("yaml", "")),
            applied_by=str(doc.get("applied_by", "")),
            applied_at=str(doc.get("applied_at", "")),
            source=str(doc.get("source", "")),
            flags=load_flags(str(doc.get("yaml", "")), f"<applied {app}>"),
        )

    # -- writing -------------------------------------------------------------------------------
    def apply(self, text: str, author: str, source: str = "") -> Applied:
        """Validate ``text`` (raises ``FlagFileError``) and make it its app's flag file."""
        new = load_flags(text, source or "<flags>")
        folder = self.read()
        current = self.applied(new.app, folder)
        now = datetime.now(UTC)
        doc = {
            "version": current.version + 1,
            "yaml": text,
            "flags": [f.model_dump(mode="json") for f in new.flags],
            "applied_by": author,
            "applied_at": now.isoformat(),
            "source": source,
        }
        changes = state_changes(current.flags, new, author, f"flag file version {doc['version']}")
        self._send([(file_key(new.app), json.dumps(doc).encode())], changes)
        return Applied(new.app, current.version + 1, text, author, now.isoformat(), source, new)

    def write_flip(self, flip: Flip, previous: str | None, now: str) -> None:
        """Write a flip record (a restore has ``to`` empty); with ``previous``, also a
        change event from it to ``now``, the state the record brings."""
        key = flip_key(flip.app, flip.flag, flip.env)
        events = []
        if previous is not None:
            event = change_event(flip.app, flip.env, flip.flag, now, previous, flip.actor)
            why = flip.reason or ("restored" if not flip.to else "")
            events.append(event.model_copy(update={"description": why[:2000]}))
        self._send([(key, flip.model_dump_json().encode())], events)

    def write_changes(self, events: list[ChangeEvent]) -> None:
        """Change events alone (a flip made in another flag system)."""
        self._send([], events)

    def _send(self, records: list[tuple[bytes, bytes | None]], events: list[ChangeEvent]) -> None:
        errors: list[str] = []

        def done(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            elif msg.topic() == self.topic:
                self.written = max(self.written, msg.offset())

        producer = self._producer()
        for key, value in records:
            producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=done)
        for event in events:
            producer.produce(
                self.change_topic,
                key=partition_key(event),
                value=event.model_dump_json().encode(),
                on_delivery=done,
            )
        left = producer.flush(self.timeout_s + 5)
        if left or errors:
            self._made = None  # a fresh producer next time
            reason = errors[0] if errors else "no acknowledgement in time"
            raise FlagStoreError(f"writing to {self.topic} at {self.bootstrap}: {reason}")

    def _producer(self) -> Producer:
        """One producer per topic client, made on first write (a flipper writes often)."""
        if self._made is None:
            self._made = Producer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "partitioner": "murmur2_random",
                    "linger.ms": 0,
                    "message.timeout.ms": int(self.timeout_s * 1000),
                    "log_level": 3,
                }
            )
        return self._made


def change_event(app: str, env: str, flag: str, to: str, previous: str, actor: str) -> ChangeEvent:
    return ChangeEvent(
        app=app,
        env=env,
        change_type="flag",
        name=flag[:200],
        value=to[:200],
        previous_value=previous[:200],
        actor=actor[:200],
    )


def state_changes(old: FlagFile | None, new: FlagFile, actor: str, why: str) -> list[ChangeEvent]:
    """One change event per flag and environment whose on/off state a new file changes
    (environments named in either file; a new flag counts as off before, a removed one
    as off after)."""
    before = {f.name: f for f in old.flags} if old is not None else {}
    after = {f.name: f for f in new.flags}
    events = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        envs = set(a.environments if a else {}) | set(b.environments if b else {})
        for env in sorted(envs):
            was = "on" if a is not None and a.enabled(env) else "off"
            now = "on" if b is not None and b.enabled(env) else "off"
            if was != now:
                event = change_event(new.app, env, name, now, was, actor)
                events.append(event.model_copy(update={"description": why}))
    return events
