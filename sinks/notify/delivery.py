"""Delivering what the outbox holds: per-channel token buckets, retries with exponential
back-off, and one outcome record per attempt.

* A due delivery takes a token from its channel's bucket; without one it is held (one
  ``rate_limited`` record per attempt) and goes out when a token is back — delayed,
  never dropped.
* An attempt runs on a small thread pool, so one slow receiver does not hold up the
  others. Its outcome is written to the outbox with its record in one transaction:
  ``delivered``; ``retrying`` (a timeout, a 5xx, 408, 429 — after ``initial * 2^(n-1)``
  seconds, capped, or the receiver's ``Retry-After`` if longer); ``failed`` (a permanent
  error such as any other 4xx, or the last attempt).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from shiftright_server.infra.settings import AlertingSettings
from shiftright_server.schemas.alerts import NotificationStatus
from shiftright_server.sinks.notify.model import ACTION, DELIVERED, FAILED, Delivery
from shiftright_server.sinks.notify.outbox import Outbox
from shiftright_server.sinks.notify.transports import DeliveryError, PartialDelivery, Transport

log = structlog.get_logger("shiftright.notify")


class TokenBucket:
    """``per_minute`` tokens a minute, at most ``burst`` saved up."""

    def __init__(self, per_minute: float, burst: int, now: float) -> None:
        self.rate = max(per_minute, 1e-9) / 60.0
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self, now: float) -> float:
        """Seconds until a token is available."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    initial: float = 1.0
    maximum: float = 300.0
    factor: float = 2.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before attempt ``attempt + 1``, after ``attempt`` failed ones."""
        base = min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))
        if retry_after is not None:
            return max(base, min(retry_after, self.maximum))
        return base


class _Inline:
    """An executor that runs each task at once (tests, and ``workers=0``)."""

    def submit(self, fn: Callable[..., None], *args: object) -> Future[None]:
        future: Future[None] = Future()
        try:
            fn(*args)
            future.set_result(None)
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def buckets(settings: AlertingSettings, now: float) -> dict[str, TokenBucket]:
    burst = settings.rate_burst
    return {
        "email": TokenBucket(settings.email_per_minute, burst, now),
        "webhook": TokenBucket(settings.webhook_per_minute, burst, now),
        "slack": TokenBucket(settings.slack_per_minute, burst, now),
        ACTION: TokenBucket(settings.action_per_minute, burst, now),
    }


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        transports: Mapping[str, Transport],
        policy: RetryPolicy,
        limits: Mapping[str, TokenBucket],
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox, self.transports, self.policy, self.limits = outbox, transports, policy, limits
        self.workers = max(1, workers)
        self.executor: ThreadPoolExecutor | _Inline = (
            ThreadPoolExecutor(workers, thread_name_prefix="notify") if workers > 0 else _Inline()
        )
        self.clock = clock
        self.inflight: dict[tuple[str, str], tuple[Delivery, Future[None]]] = {}
        self.held: set[tuple[str, str, int]] = set()
        self.outcomes: Counter[str] = Counter()  # by status
        self.latencies: list[float] = []  # due → delivered, seconds, since last taken
        self.wake_at: float | None = None

    # -- the loop's two calls ----------------------------------------------------------------------
    def pump(self) -> None:
        """Record finished attempts, start due ones, and work out :attr:`wake_at`."""
        self.collect()
        now = self.clock()
        wake: list[float] = []
        free = self.workers - len(self.inflight)
        for d in self.outbox.due(now, limit=len(self.inflight) + 200):
            if free <= 0:
                break
            if (d.kind, d.key) in self.inflight:
                continue
            bucket = self.limits.get(d.channel)
            if bucket is not None and not bucket.take(now):
                wake.append(now + bucket.wait(now))
                self._hold(d, bucket, now)
                continue
            self._start(d)
            self.collect()  # an inline executor has finished already
            free = self.workers - len(self.inflight)
        self.collect()
        later = self.outbox.next_due()
        if later is not None and later > now:
            wake.append(later)
        self.wake_at = min(wake) if wake else None

    def collect(self) -> None:
        for ident, (d, future) in list(self.inflight.items()):
            if future.done():
                del self.inflight[ident]
                self._outcome(d, future.exception(), self.clock())

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for attempts in flight, recording their outcomes."""
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.02)
            self.collect()
        self.executor.shutdown(wait=False)

    def take_latencies(self) -> list[float]:
        out, self.latencies = self.latencies, []
        return out

    # -- internals ---------------------------------------------------------------------------------
    def _start(self, d: Delivery) -> None:
        transport = self.transports.get(d.channel)
        if transport is None:
            future: Future[None] = Future()
            future.set_exception(DeliveryError(f"no transport for {d.channel}", permanent=True))
        else:
            future = self.executor.submit(transport.send, d)
        self.inflight[(d.kind, d.key)] = (d, future)

    def _hold(self, d: Delivery, bucket: TokenBucket, now: float) -> None:
        mark = (d.kind, d.key, d.attempt)
        if mark in self.held:
            return
        self.held.add(mark)
        self.outcomes["rate_limited"] += 1
        per_minute = bucket.rate * 60
        error = f"{d.channel} rate limit {per_minute:g}/min: delayed"
        self.outbox.add_records([d.record("rate_limited", d.attempt + 1, _dt(now), error)])
        log.info("notification_held", key=d.key, channel=d.channel, limit_per_minute=per_minute)

    def _outcome(self, d: Delivery, exc: BaseException | None, now: float) -> None:
        self.held.discard((d.kind, d.key, d.attempt))
        d.attempt += 1
        note = ""
        status: NotificationStatus
        if isinstance(exc, PartialDelivery):
            exc, note = None, str(exc)
        if exc is None:
            d.state, d.error = DELIVERED, note
            status = "delivered"
            self.latencies.append(now - d.first_ts.timestamp())
        else:
            if not isinstance(exc, DeliveryError):  # a bug in rendering or a transport
                exc = DeliveryError(f"{type(exc).__name__}: {exc}")
            d.error = str(exc)
            if not exc.permanent and d.attempt < self.policy.max_attempts:
                d.next_at = now + self.policy.delay(d.attempt, exc.retry_after)
                status = "retrying"
            else:
                d.state = FAILED
                status = "failed"
        self.outcomes[status] += 1
        self.outbox.update(d, [d.record(status, d.attempt, _dt(now), d.error)], now)
        event = log.info if status == "delivered" else log.warning
        event(
            f"notification_{status}",
            key=d.key,
            kind=d.kind,
            channel=d.channel,
            subscription=d.notification.subscription,
            attempt=d.attempt,
            **({"error": d.error} if d.error else {}),
            **({"retry_in_s": round(d.next_at - now, 2)} if status == "retrying" else {}),
        )


def policy_from(settings: AlertingSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max(1, settings.retry_max_attempts),
        initial=settings.retry_initial_seconds,
        maximum=settings.retry_max_seconds,
    )


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
