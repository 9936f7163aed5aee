"""A confluent-kafka producer that outlives its own fatal errors.

An idempotent librdkafka producer can raise a *fatal* error (the broker lost or refused
its producer id or sequence, e.g. around a broker restart): from then on it accepts
nothing, purges its queue and fails every message it holds. An app's producer must ride
that out, so this wrapper then makes a new producer and sends it every message the old
one failed, in the order they were handed over::

    produce ──► librdkafka producer ──► delivery report ──► on_delivery(err, msg)
                     │ fatal error (error_cb, or produce() raises _FATAL)
                     ▼
            new producer; old one purged ──► its failed messages produced again

Messages that were in flight when the error struck may have been written already; they
are sent again all the same (at least once: nothing handed over is lost). Failures of a
healthy producer (e.g. ``message.timeout.ms`` passed) are reported as they are.

A producer can also stall without any error: after a broker restart, librdkafka's
idempotent producer has been seen holding tens of thousands of messages and sending none
for minutes while the broker answered every other client. When the producer holds
messages, has reported no delivery for ``stall_seconds`` and the broker answers a
metadata request, it is replaced the same way, except that what it has in flight stays
with it until it reports (it is polled until empty; what fails is sent again).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = structlog.get_logger("shiftright.producer")

OnDelivery = Callable[[KafkaError | None, Message], None]
Headers = list[tuple[str, bytes]] | None
_Resend = tuple[str, bytes | None, bytes | None, int, Headers]


class DurableProducer:
    """``produce``/``poll``/``flush`` of a confluent-kafka Producer, with one delivery
    callback for every message, and a fresh producer after a fatal error."""

    def __init__(
        self,
        config: dict[str, Any],
        on_delivery: OnDelivery,
        make: Callable[[dict[str, Any]], Any] | None = None,
        stall_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._user_error_cb = config.get("error_cb")
        self._config = {**config, "error_cb": self._on_error}
        self._make = make or _confluent_producer
        self._on_delivery = on_delivery
        self._fatal: str | None = None
        self._retired: list[Any] = []
        self._resend: deque[_Resend] = deque()
        self.replaced = 0  # producers replaced after a fatal error or a stall
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._progress_at = self._probe_at = self._check_at = clock()
        self._producer = self._make(self._config)
        self._report = self._reporter(self._producer)

    # -- the producer's API ------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int = -1,
        headers: Headers = None,
    ) -> None:
        """Hand one message over; raises ``BufferError`` when the queue is full."""
        self._recover()
        try:
            self._send(topic, value, key, partition, headers)
        except KafkaException as exc:
            if not _is_fatal(exc):
                raise
            self._fatal = self._fatal or str(exc)
            self._recover()
            self._send(topic, value, key, partition, headers)

    def poll(self, timeout: float = 0.0) -> int:
        served = int(self._producer.poll(timeout))
        self._recover()
        return served

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for delivery (of messages sent again too); return how
        many are still undelivered. Waits in short slices, so a fatal error or a stall
        meanwhile is dealt with."""
        deadline = time.monotonic() + timeout
        while True:
            self._recover()
            left = int(self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic()))))
            left += len(self._resend) + sum(len(old) for old in self._retired)
            if left == 0 or time.monotonic() >= deadline:
                return left

    def list_topics(self, topic: str, timeout: float) -> Any:
        return self._producer.list_topics(topic, timeout=timeout)

    def __len__(self) -> int:
        return len(self._producer) + len(self._resend) + sum(len(old) for old in self._retired)

    # -- recovery ----------------------------------------------------------------------

    def _send(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int, headers: Headers
    ) -> None:
        self._producer.produce(
            topic, value, key, partition=partition, on_delivery=self._report, headers=headers
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err.str()
        if self._user_error_cb is not None:
            self._user_error_cb(err)

    def _reporter(self, producer: Any) -> OnDelivery:
        """The delivery callback of one producer: a failure after (or of) its fatal
        error is kept to be sent again, anything else goes to ``on_delivery``."""

        def report(err: KafkaError | None, msg: Message) -> None:
            self._progress_at = self._clock()
            doomed = producer is not self._producer or self._fatal is not None
            if err is not None and (doomed or err.fatal() or err.code() in _FATAL_FALLOUT):
                partition = msg.partition()
                self._resend.append(
                    (
                        msg.topic() or "",
                        msg.value(),
                        msg.key(),
                        -1 if partition is None else partition,
                        msg.headers(),  # type: ignore[arg-type]  # the stub's header value type is wider than what produce() was given
                    )
                )
            else:
                self._on_delivery(err, msg)

        return report

    def _recover(self) -> None:
        """After a fatal error: a new producer; then whatever old ones failed, sent again."""
        if self._fatal is not None:
            self._replace(in_flight=True)
        elif self._stalled():
            self._replace(in_flight=False)
        for old in list(self._retired):
            old.poll(0)
            if len(old) == 0:
                self._retired.remove(old)
        while self._resend:
            topic, value, key, partition, headers = self._resend[0]
            try:
                self._send(topic, value, key, partition, headers)
            except BufferError:
                self._producer.poll(0.05)
                return
            self._resend.popleft()

    def _stalled(self) -> bool:
        """Messages held, no report for ``stall_seconds``, and the broker answers."""
        now = self._clock()
        if now < self._check_at:  # at most once a second: produce() is on the hot path
            return False
        self._check_at = now + 1.0
        if len(self._producer) == 0:
            self._progress_at = now
            return False
        if now - self._progress_at < self._stall_seconds or now < self._probe_at:
            return False
        self._probe_at = now + self._stall_seconds / 3
        try:
            return bool(self._producer.list_topics(timeout=1.0).brokers)
        except KafkaException:  # the broker is away: waiting for it is no stall
            return False

    def _replace(self, *, in_flight: bool) -> None:
        old, reason = self._producer, self._fatal or "no delivery report while the broker answers"
        self._producer = self._make(self._config)
        self._report = self._reporter(self._producer)
        self._fatal = None
        self._progress_at = self._clock()
        self.replaced += 1
        log.warning("producer_replaced", reason=reason, undelivered=len(old))
        # what it still holds comes back as failed, and is sent again (in flight: only
        # after a fatal error; a stalled producer reports those itself, or times them out)
        old.purge(in_queue=True, in_flight=in_flight)
        old.flush(1.0)
        if len(old):
            self._retired.append(old)


def _confluent_producer(config: dict[str, Any]) -> Any:
    """confluent-kafka's Producer, looked up when called (tests may stand in for it)."""
    return Producer(config)


# What a fatal error does to the messages a producer holds (it purges its queue itself);
# this wrapper never purges a healthy producer, so these mean "send again".
_FATAL_FALLOUT = {KafkaError._FATAL, KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}


def _is_fatal(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.fatal() or err.code() == KafkaError._FATAL)
