"""Hand events to Kafka and wait until Kafka has them — within fixed bounds.

Contract: :meth:`KafkaPublisher.publish` returns only when the broker acknowledged every
message of the call (delivery reports from confluent-kafka). It never queues beyond
``max_pending_events`` / ``max_pending_bytes`` of unacknowledged data: past that it raises
:class:`~producers.gateway.errors.Backpressure` (429) before producing anything. While
librdkafka reports all brokers down, or when a delivery fails or is not reported within
``ack_timeout``, it raises :class:`~producers.gateway.errors.KafkaUnavailable` (503).
Messages already produced stay counted as pending until their report arrives, so the bound
holds during an outage too (``message.timeout.ms`` is shorter than the ack timeout).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import structlog
from shiftright_server.producers.gateway.errors import Backpressure, KafkaUnavailable
from shiftright_server.schemas import topics, wire

log = structlog.get_logger("shiftright.gateway")


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One Kafka message: an NDJSON batch of ``events`` events sharing a key."""

    topic: str  # logical topic name (the namespace is added on produce)
    key: bytes
    value: bytes
    events: int


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the publisher uses (a fake in unit tests)."""

    def produce(self, topic: str, value: bytes, key: bytes, **kwargs: Any) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


@dataclass(frozen=True, slots=True)
class PublisherLimits:
    max_pending_events: int = 50_000
    max_pending_bytes: int = 64 * 1024 * 1024
    ack_timeout: float = 10.0
    retry_after: int = 1
    unavailable_retry_after: int = 5


class _Batch:
    """Delivery reports of one publish call, resolved on the event loop when all are in."""

    __slots__ = ("error", "future", "loop", "remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, messages: int) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.remaining = messages
        self.error: str | None = None

    def report(self, error: str | None) -> None:
        """Called on the poll thread."""
        if error is not None and self.error is None:
            self.error = error
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class KafkaPublisher:
    def __init__(
        self,
        make_producer: Callable[[dict[str, Any]], ProducerLike],
        namespace: str = "",
        limits: PublisherLimits = PublisherLimits(),
        config: dict[str, Any] | None = None,
    ) -> None:
        self.limits = limits
        self._namespace = namespace
        self._lock = threading.Lock()
        self._pending_events = 0
        self._pending_bytes = 0
        self._down_since: float | None = None
        self._last_probe = 0.0
        self._closed = threading.Event()
        self._producer = make_producer({**(config or {}), "error_cb": self._on_error})
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._thread.start()

    # -- state ---------------------------------------------------------------------------
    @property
    def pending_events(self) -> int:
        return self._pending_events

    @property
    def kafka_up(self) -> bool:
        return self._down_since is None

    def check(self) -> None:
        """Refuse at once (503) while the broker is known to be unreachable."""
        if self._down_since is not None:
            down_for = time.monotonic() - self._down_since
            raise KafkaUnavailable(
                f"Kafka is unreachable (for {down_for:.0f}s); nothing was accepted",
                self.limits.unavailable_retry_after,
            )

    # -- publishing ----------------------------------------------------------------------
    async def publish(self, messages: Sequence[OutMessage]) -> None:
        if not messages:
            return
        self.check()
        events = sum(m.events for m in messages)
        size = sum(len(m.value) for m in messages)
        self._admit(events, size)
        batch = _Batch(asyncio.get_running_loop(), len(messages))
        for i, message in enumerate(messages):
            try:
                self._produce(message, batch)
            except BufferError:
                self._give_back(messages[i:])
                for _ in messages[i:]:
                    batch.report("queue_full")
                raise Backpressure(
                    "Kafka's producer queue is full", self.limits.retry_after
                ) from None
        await self._await(batch)

    def _admit(self, events: int, size: int) -> None:
        with self._lock:
            busy = self._pending_events > 0 or self._pending_bytes > 0
            over = (
                self._pending_events + events > self.limits.max_pending_events
                or self._pending_bytes + size > self.limits.max_pending_bytes
            )
            if over and busy:  # an oversized request alone is admitted when the queue is empty
                raise Backpressure(
                    f"{self._pending_events} events are waiting for Kafka's acknowledgement "
                    f"(limit {self.limits.max_pending_events}); retry later",
                    self.limits.retry_after,
                )
            self._pending_events += events
            self._pending_bytes += size

    def _give_back(self, messages: Sequence[OutMessage]) -> None:
        with self._lock:
            self._pending_events -= sum(m.events for m in messages)
            self._pending_bytes -= sum(len(m.value) for m in messages)

    def _produce(self, message: OutMessage, batch: _Batch) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            self._give_back((message,))
            if err is None:
                self._down_since = None
                batch.report(None)
            else:
                self._note_failure(err)
                batch.report(err.name() if hasattr(err, "name") else str(err))

        self._producer.produce(
            topics.named(message.topic, self._namespace),
            message.value,
            message.key,
            headers=wire.BATCH_HEADERS,
            on_delivery=delivered,
        )

    async def _await(self, batch: _Batch) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(batch.future), self.limits.ack_timeout)
        except TimeoutError:
            raise KafkaUnavailable(
                f"Kafka did not acknowledge within {self.limits.ack_timeout:g}s; "
                "the events may or may not have been stored",
                self.limits.unavailable_retry_after,
            ) from None
        if batch.error is not None:
            raise KafkaUnavailable(
                f"Kafka did not accept the events ({batch.error})",
                self.limits.unavailable_retry_after,
            )

    # -- the poll thread -----------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)
            if self._down_since is not None and time.monotonic() - self._last_probe > 1.0:
                self._probe()

    def _probe(self) -> None:
        """While down, ask for metadata; an answer means the broker is back."""
        self._last_probe = time.monotonic()
        try:
            self._producer.list_topics(timeout=1.0)
        except Exception:
            return
        if self._down_since is not None:
            log.info("kafka_reachable_again")
        self._down_since = None

    def _on_error(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._mark_down(err.str())

    def _note_failure(self, err: Any) -> None:
        from confluent_kafka import KafkaError

        if err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT):
            self._mark_down(err.str())

    def _mark_down(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._last_probe = time.monotonic()
            log.warning("kafka_unreachable", error=why)

    def close(self, timeout: float = 10.0) -> int:
        """Deliver what is queued (up to ``timeout``); returns messages left undelivered."""
        self._closed.set()
        self._thread.join(timeout=2.0)
        return int(self._producer.flush(timeout))


def kafka_publisher(bootstrap: str, namespace: str, limits: PublisherLimits) -> KafkaPublisher:
    """A publisher on a real confluent-kafka producer with our standard settings."""
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config

    # Reports must arrive before the request gives up waiting, so failures are answered
    # 503 from a report rather than a timeout; the queue bound mirrors ours.
    message_timeout_ms = max(1000, int(limits.ack_timeout * 1000) - 1000)
    config = producer_config(
        bootstrap,
        **{
            "message.timeout.ms": message_timeout_ms,
            "linger.ms": 5,
            "queue.buffering.max.messages": limits.max_pending_events + 1000,
            "queue.buffering.max.kbytes": limits.max_pending_bytes // 1024 + 1024,
        },
    )

    def make(extra: dict[str, Any]) -> ProducerLike:
        return cast(ProducerLike, Producer({**config, **extra}))  # its stubs type headers narrower

    return KafkaPublisher(make, namespace, limits)
