"""How flag changes reach the app: a thread that reads the compacted flag topic.

Why the topic and not a streaming HTTP endpoint: the SDK already talks to Kafka, so a
flip travels writer → broker → app with no service of ours in between, and the
compacted topic is itself the snapshot a starting app needs (read from the beginning,
the last value per key). A consumer here assigns the one partition and never joins a
group, so a thousand app processes cost the broker a thousand fetch sessions and no
rebalances. Other languages read the same state over HTTP (flagd JSON, OFREP).

Contract:
- The app's copy changes only once the topic was read to its end (never half an apply),
  then after each batch of records that changed something.
- With the broker away the thread retries every second; the app keeps its last copy.
- ``flags_file`` (fail static): read at start when set, before the broker answers, and
  rewritten (atomically) after each change, so a restart without a server serves the
  last copy.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shiftright.flags.evaluate import Snapshot
from shiftright.flags.topic import TOPIC, Folder

if TYPE_CHECKING:
    from shiftright.config import Config
    from shiftright.flags.store import FlagStore

_log = logging.getLogger("shiftright.flags")
#: How long the broker holds the follower's fetch on a topic with nothing new. It answers
#: as soon as a record arrives, so this bounds the idle follower's requests, not a
#: flip's delay.
FETCH_WAIT_MS = 500


def read_file(path: str) -> Snapshot | None:
    """The snapshot saved at ``path``; None when missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return Snapshot.from_json(json.load(f))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def write_file(path: str, snapshot: Snapshot) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".flags-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(snapshot.to_json(), f)
        os.replace(tmp, path)
    except OSError:
        _log.warning("flags file %s not written", path)
        if os.path.exists(tmp):
            os.unlink(tmp)


class Follower:
    """A thread that folds the flag topic into ``folder`` and calls ``on_change()`` once
    the topic was read to its end, then after each batch that changed something."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        folder: Folder,
        on_change: Callable[[], None],
        settings: Mapping[str, Any] | None = None,
        lock: threading.Lock | None = None,
    ) -> None:
        self.bootstrap, self.topic, self.folder, self.on_change = (
            bootstrap,
            topic,
            folder,
            on_change,
        )
        self.settings = dict(settings or {})
        self.lock = lock or threading.Lock()  # held while folding: readers may take it too
        self.loaded = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shiftright-flags", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # the broker away, a topic not there yet
                _log.debug("flag feed retry: %r", exc)
                self._stop.wait(1.0)

    def _follow(self) -> None:
        from confluent_kafka import Consumer, KafkaError, TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "shiftright-flags",  # never joined: the partition is assigned
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                # The broker answers a waiting fetch as soon as a record arrives, so a
                # flip reaches the reader at once; the wait sets how often an idle
                # follower asks (twice a second, not twenty times).
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                "log_level": 3,
                **self.settings,
            }
        )
        folder = self.folder
        try:
            _, end = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), 5.0)
            consumer.assign([TopicPartition(self.topic, 0, folder.position)])
            changed = folder.position < end or not self.loaded.is_set()
            while not self._stop.is_set():
                # poll() returns as soon as a record is there (consume(n, timeout) waits
                # out its timeout for fewer than n); the rest already fetched comes along
                first = consumer.poll(0.1)
                batch = [] if first is None else [first, *consumer.consume(1000, 0)]
                for msg in batch:
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise RuntimeError(str(error))
                    with self.lock:
                        changed |= folder.fold(msg.key(), msg.value(), msg.offset() or 0)
                if changed and folder.position >= end:
                    self.on_change()
                    self.loaded.set()
                    changed = False
        finally:
            consumer.close()


class KafkaFeed:
    """Reads ``<namespace>.flags.config.v1`` into the store, for ``config.app``."""

    def __init__(self, store: FlagStore, config: Config) -> None:
        self.store, self.config = store, config
        prefix = f"{config.namespace}." if config.namespace else ""
        self.folder = Folder(config.app)
        self.follower = Follower(
            config.kafka, prefix + TOPIC, self.folder, self._publish, _client_settings(config)
        )

    def start(self) -> KafkaFeed:
        self.follower.start()
        return self

    def stop(self) -> None:
        self.follower.stop()

    def _publish(self) -> None:
        snapshot = self.folder.snapshot(self.config.app)
        self.store.replace(snapshot, "server")
        if self.config.flags_file:
            write_file(self.config.flags_file, snapshot)


def _client_settings(config: Config) -> dict[str, Any]:
    """The producer's security settings, for the consumer of the same cluster."""
    return {k: v for k, v in config.producer_config.items() if k.startswith(("security", "sasl"))}
