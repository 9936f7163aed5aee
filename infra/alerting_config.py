"""Where alerting configuration lives: one compacted Kafka topic, ``alerting.config.v1``.

* key ``rules``: the applied rule file — ``{"version", "yaml", "applied_by", "applied_at",
  "source"}``. ``version`` counts applies, so every reader can tell which one it runs.
* key ``silence:<id>``: a silence made from the CLI or the HTTP API (a :class:`Silence` as
  JSON); a tombstone (no value) deletes it. Silences written in the rule file live there.

The topic is compacted, so the latest value of every key survives restarts and
retention; every process that needs the configuration (the evaluator in the stream
worker, the notifier, the CLI, the HTTP API) reads it the same way: from the start of
the log to its end, last value per key wins. :class:`ConfigWatcher` keeps reading after
that and hands each change to a callback within a poll interval (0.2 s).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from shiftright_server.schemas.alerts import RuleFile, Silence
from shiftright_server.schemas.rule_file import load_rules

log = structlog.get_logger("shiftright.alerting")

RULES_KEY = b"rules"
SILENCE_PREFIX = b"silence:"


@dataclass(frozen=True)
class AlertingConfig:
    """Everything the evaluator and the notifier act on, at one version."""

    rules: RuleFile = field(default_factory=RuleFile)
    text: str = ""  # the YAML as applied
    version: int = 0  # 0: nothing applied yet
    applied_by: str = ""
    applied_at: datetime | None = None
    source: str = ""
    silences: dict[str, Silence] = field(default_factory=dict)  # made outside the file

    def all_silences(self) -> list[Silence]:
        """File silences and API/CLI silences (an API silence wins on an equal id)."""
        merged = {s.id: s for s in self.rules.silences} | self.silences
        return list(merged.values())


class ConfigStoreError(RuntimeError):
    """The configuration topic could not be read or written."""


class _Reader:
    """Folds the topic's records into an :class:`AlertingConfig`."""

    def __init__(self) -> None:
        self.config = AlertingConfig()
        self.position = 0

    def fold(self, key: bytes | None, value: bytes | None, offset: int) -> bool:
        """Apply one record; True when the configuration changed."""
        self.position = offset + 1
        if key == RULES_KEY and value:
            try:
                doc = json.loads(value)
                rules = load_rules(doc["yaml"], doc.get("source") or "<applied>")
            except Exception as exc:  # written by an older or foreign writer: keep ours
                log.error("alerting_config_unreadable", offset=offset, error=str(exc))
                return False
            at = doc.get("applied_at")
            self.config = _replace(
                self.config,
                rules=rules,
                text=doc["yaml"],
                version=int(doc["version"]),
                applied_by=doc.get("applied_by", ""),
                source=doc.get("source", ""),
                applied_at=datetime.fromisoformat(at) if at else None,
            )
            return True
        if key is not None and key.startswith(SILENCE_PREFIX):
            sid = key[len(SILENCE_PREFIX) :].decode()
            silences = dict(self.config.silences)
            if value:
                try:
                    silences[sid] = Silence.model_validate_json(value)
                except Exception as exc:
                    log.error("silence_unreadable", offset=offset, error=str(exc))
                    return False
            elif silences.pop(sid, None) is None:
                return False
            self.config = _replace(self.config, silences=silences)
            return True
        return False


def _replace(config: AlertingConfig, **changes: Any) -> AlertingConfig:
    return AlertingConfig(**{**config.__dict__, **changes})


class ConfigStore:
    """Reads and writes the configuration topic (blocking calls)."""

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 15.0) -> None:
        self.bootstrap, self.topic, self.timeout_s = bootstrap, topic, timeout_s

    def read(self) -> AlertingConfig:
        """The configuration as of the end of the topic now."""
        reader = _Reader()
        consumer = _consumer(self.bootstrap)
        try:
            end = _end_offset(consumer, self.topic, self.timeout_s)
            consumer.assign([KafkaTopicPartition(self.topic, 0, OFFSET_BEGINNING)])
            deadline = time.monotonic() + self.timeout_s
            while reader.position < end:
                if time.monotonic() > deadline:
                    raise ConfigStoreError(
                        f"reading {self.topic} timed out at offset {reader.position} of {end}"
                    )
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    raise ConfigStoreError(f"reading {self.topic}: {error}")
                reader.fold(msg.key(), msg.value(), _offset(msg))
        finally:
            consumer.close()
        return reader.config

    def apply(self, text: str, author: str, source: str = "") -> AlertingConfig:
        """Validate ``text`` (raises :class:`RuleFileError`) and make it the rule file."""
        rules = load_rules(text, source or "<rules>")
        current = self.read()
        now = datetime.now(UTC)
        doc = {
            "version": current.version + 1,
            "yaml": text,
            "applied_by": author,
            "applied_at": now.isoformat(),
            "source": source,
        }
        self._send(RULES_KEY, json.dumps(doc).encode())
        return _replace(
            current,
            rules=rules,
            text=text,
            version=current.version + 1,
            applied_by=author,
            applied_at=now,
            source=source,
        )

    def add_silence(self, silence: Silence) -> None:
        self._send(SILENCE_PREFIX + silence.id.encode(), silence.model_dump_json().encode())

    def delete_silence(self, silence_id: str) -> None:
        self._send(SILENCE_PREFIX + silence_id.encode(), None)

    def _send(self, key: bytes, value: bytes | None) -> None:
        errors: list[str] = []

        def done(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": int(self.timeout_s * 1000),
                # errors only: a fresh broker's "coordinator load in progress" while the
                # producer gets its idempotence id is retried, and is no news to a user
                "log_level": 3,
            }
        )
        producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=done)
        left = producer.flush(self.timeout_s + 5)
        if left or errors:
            reason = errors[0] if errors else "no acknowledgement in time"
            raise ConfigStoreError(f"writing to {self.topic} at {self.bootstrap}: {reason}")


class ConfigWatcher:
    """A thread that reads the topic and calls ``on_change(config)`` after each change.

    The first call comes once the topic has been read to its end (so a consumer never acts
    on half a configuration); later calls follow each change within ``poll_s``. Broker
    outages are retried; the last good configuration stays in force meanwhile.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_change: Callable[[AlertingConfig], None],
        poll_s: float = 0.2,
    ) -> None:
        self.bootstrap, self.topic, self.on_change, self.poll_s = (
            bootstrap,
            topic,
            on_change,
            poll_s,
        )
        self.loaded = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alerting-config", daemon=True)
        self.current = AlertingConfig()

    def start(self) -> ConfigWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        reader = _Reader()
        while not self._stop.is_set():
            consumer = _consumer(self.bootstrap)
            try:
                end = _end_offset(consumer, self.topic, 10.0)
                consumer.assign([KafkaTopicPartition(self.topic, 0, reader.position)])
                if reader.position >= end:
                    self._publish(reader)
                while not self._stop.is_set():
                    msg = consumer.poll(self.poll_s)
                    error = msg.error() if msg is not None else None
                    if msg is None or (error and error.code() == KafkaError._PARTITION_EOF):
                        if reader.position >= end and not self.loaded.is_set():
                            self._publish(reader)
                        continue
                    if error:
                        raise ConfigStoreError(str(error))
                    changed = reader.fold(msg.key(), msg.value(), _offset(msg))
                    if reader.position >= end and (changed or not self.loaded.is_set()):
                        self._publish(reader)
            except Exception as exc:
                log.warning("alerting_config_retry", topic=self.topic, error=str(exc))
                self._stop.wait(1.0)
            finally:
                consumer.close()

    def _publish(self, reader: _Reader) -> None:
        self.current = reader.config
        try:
            self.on_change(reader.config)
        except Exception:
            log.exception("alerting_config_callback_failed", version=reader.config.version)
        self.loaded.set()


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "shiftright-alerting-config",  # never joined: partitions are assigned
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )


def _end_offset(consumer: Consumer, topic: str, timeout_s: float) -> int:
    try:
        _, high = consumer.get_watermark_offsets(KafkaTopicPartition(topic, 0), timeout_s)
    except Exception as exc:
        raise ConfigStoreError(f"cannot reach the alerting configuration {topic}: {exc}") from exc
    return int(high)


def _offset(msg: Message) -> int:
    offset = msg.offset()
    assert offset is not None, "a consumed record has an offset"
    return offset
