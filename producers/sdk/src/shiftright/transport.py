"""Where the sender thread hands messages: an interface, and confluent-kafka behind it.

The sender thread is the only caller. ``produce`` never blocks: it raises ``BufferError``
when the transport's own queue is full (the sender counts those events as dropped).
``on_delivery`` is called later, from ``poll``/``flush``, with ``None`` on success or the
error's name. ``purge_queued`` (optional) gives back the messages the transport still
queues: each one's ``on_delivery`` gets :data:`PURGED` (the disk spill stores them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shiftright.config import Config
from shiftright.ratelog import RateLimitedLog

Delivery = Callable[[str | None], None]

NDJSON_HEADERS = [("content-type", b"application/x-ndjson")]
#: What ``on_delivery`` gets for a message ``purge_queued`` gave back (not sent).
PURGED = "_PURGE_QUEUE"

#: Raw topics accept messages up to this size (schemas.topics.RAW_TOPIC_MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


class Transport(Protocol):
    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: Sequence[tuple[str, bytes]],
        on_delivery: Delivery,
    ) -> None: ...

    def poll(self, timeout: float) -> None: ...

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count, or None while unknown (never blocks for long)."""
        ...

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s; return how many messages are still undelivered."""
        ...

    def close(self) -> None: ...


def producer_config(config: Config) -> dict[str, Any]:
    """confluent-kafka settings: keys land where Faust and the pipeline expect them (murmur2)."""
    settings: dict[str, Any] = {
        "bootstrap.servers": config.kafka,
        "client.id": f"shiftright-sdk:{config.app}",
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 50,
        "message.timeout.ms": config.message_timeout_ms,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "queue.buffering.max.messages": 20_000,
        "queue.buffering.max.kbytes": 64 * 1024,
        "socket.connection.setup.timeout.ms": 5_000,
        "reconnect.backoff.max.ms": 2_000,
        "log.connection.close": False,
    }
    settings.update(config.producer_config)
    return settings


class KafkaTransport:
    """confluent-kafka's Producer. A fatal producer error (an idempotent producer that lost
    its sequence, e.g. around a broker restart) replaces the producer, and every message
    the old one then fails is produced again on the new one: nothing handed over is lost
    (a message in flight when the error struck may be written twice)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._log = RateLimitedLog(logging.getLogger("shiftright.kafka"), every=60.0)
        self._fatal = False
        self._purged: Any = None  # the producer purge_queued is purging
        self._resend: list[tuple[Any, Delivery]] = []  # (failed message, its callback)
        self._producer = self._make()
        self._partition_counts: dict[str, int] = {}
        self._metadata_retry_at: dict[str, float] = {}

    def _make(self) -> Any:
        import confluent_kafka  # looked up at call time, so tests can refuse real producers

        settings = producer_config(self._config)
        settings["error_cb"] = self._on_error
        settings["logger"] = _KafkaLogAdapter(self._log)
        return confluent_kafka.Producer(settings)

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: Sequence[tuple[str, bytes]],
        on_delivery: Delivery,
    ) -> None:
        if self._fatal:
            self._replace()
        self._send(topic, value, key, list(headers), -1, on_delivery)

    def _send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Any,
        partition: int,
        on_delivery: Delivery,
    ) -> None:
        producer = self._producer

        def delivered(err: Any, msg: Any) -> None:
            doomed = self._fatal or producer is not self._producer
            if err is not None and not doomed and _handed_back(err, producer, self._purged):
                on_delivery(PURGED)
            elif err is not None and (doomed or err.fatal() or err.code() in _FATAL_FALLOUT):
                self._resend.append((msg, on_delivery))  # sent again by the next producer
            else:
                on_delivery(None if err is None else err.name())

        producer.produce(
            topic, value, key, partition=partition, headers=headers, on_delivery=delivered
        )

    def _replace(self) -> None:
        """A new producer; what the old one held is purged from it and sent again."""
        old, self._fatal = self._producer, False
        self._producer = self._make()
        old.purge()
        old.flush(1.0)
        failed, self._resend = self._resend, []
        for msg, on_delivery in failed:
            partition = msg.partition()
            self._send(
                msg.topic(),
                msg.value(),
                msg.key(),
                msg.headers(),
                -1 if partition is None else partition,
                on_delivery,
            )

    def purge_queued(self) -> None:
        """Give back what waits in the producer's queue (not what is in flight to a broker,
        which may be written: sending it again could duplicate it)."""
        # Only while its reports are served here: the purge a fatal error makes later
        # still means "send again on the next producer".
        self._purged = self._producer
        try:
            self._producer.purge(in_queue=True, in_flight=False, blocking=True)
            self._producer.poll(0)
        finally:
            self._purged = None

    def poll(self, timeout: float) -> None:
        self._producer.poll(timeout)
        if self._fatal or self._resend:
            self._replace()

    def partitions(self, topic: str) -> int | None:
        known = self._partition_counts.get(topic)
        if known is not None or time.monotonic() < self._metadata_retry_at.get(topic, 0.0):
            return known
        try:
            meta = self._producer.list_topics(topic, timeout=1.0).topics.get(topic)
            count = len(meta.partitions) if meta is not None and meta.error is None else 0
        except Exception:  # broker away: ask again later
            count = 0
        if count <= 0:
            self._metadata_retry_at[topic] = time.monotonic() + 30.0
            return None
        self._partition_counts[topic] = count
        return count

    def flush(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        left = int(self._producer.flush(timeout))
        if self._fatal or self._resend:  # struck while flushing
            self._replace()
            left = int(self._producer.flush(max(deadline - time.monotonic(), 0.0)))
        return left + len(self._resend)

    def close(self) -> None:
        self._producer.flush(0)

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            self._fatal = True
        self._log.warning("kafka_error_reported", err.name(), "%s", err.str())


def _handed_back(err: Any, producer: Any, purged: Any) -> bool:
    """A message purge_queued took out of a healthy producer's queue."""
    return producer is purged and err.code() == _PURGE_QUEUE and not err.fatal()


_PURGE_QUEUE = -152

# What a fatal error does to the messages a producer holds (librdkafka purges its queue);
# a healthy producer is never purged here, so these mean "send again".
_FATAL_FALLOUT = {-150, -152, -151}  # _FATAL, _PURGE_QUEUE, _PURGE_INFLIGHT


class _KafkaLogAdapter:
    """librdkafka's log lines (connection refused, …), rate-limited per facility."""

    def __init__(self, log: RateLimitedLog) -> None:
        self._log = log

    def log(self, level: int, fmt: str, *args: Any) -> None:
        if level <= logging.WARNING:
            return
        self._log.warning("kafka_message_logged", str(args[0]) if args else fmt, fmt, *args)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging.Logger's API
        return True
