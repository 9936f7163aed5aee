"""The client: a bounded queue the app thread appends to, and the sender thread behind it.

Contract of each step:
- App thread (``enqueue``): admission (sampling, rate limit), then one ``deque.append`` of
  (kind, time, fields, scope). It never waits and never raises; a full queue drops the
  event and counts it (``queue_full``).
- Sender thread: every ``flush_interval`` (or sooner when the queue fills up) it drains
  the queue, builds and scrubs the events, groups them per (topic, partition) into NDJSON
  batch messages and hands those to the transport. A full transport drops the batch and
  counts its events (``transport_full``); the transport reports each message's delivery,
  counted per event as ``delivered`` or ``failed[<Kafka error name>]``.
- With ``spill_dir`` set, a :class:`~shiftright.spiller.Spiller` stands between the
  sender and the transport: while the broker is away batches go to files on disk instead
  of being dropped, and come back in order (see :mod:`shiftright.spiller`).
- ``flush(timeout)`` waits for all of it, for at most ``timeout`` seconds.
- After ``os.fork()`` the child starts with an empty queue, new threads and a new
  transport (librdkafka's threads do not survive a fork).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from typing import Any

from shiftright import testing
from shiftright.config import KINDS, Config
from shiftright.context import Scope, current
from shiftright.limits import Gate
from shiftright.partition import partition_of
from shiftright.payload import Builder, Unsendable
from shiftright.ratelog import RateLimitedLog
from shiftright.spill import Record
from shiftright.spiller import Spiller
from shiftright.transport import NDJSON_HEADERS, PURGED, KafkaTransport, Transport

MAX_BATCH_BYTES = 512 * 1024
MAX_BATCH_EVENTS = 1000

Item = tuple[str, float, dict[str, Any], Scope]

_clients: weakref.WeakSet[Client] = weakref.WeakSet()
#: Transports inherited across a fork are kept, never closed: tearing down a librdkafka
#: handle whose threads did not survive the fork can hang.
_abandoned: list[Transport] = []


class Client:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._log = RateLimitedLog(logging.getLogger("shiftright"), every=60.0)
        self._builder = Builder(config)
        self._gates = {k: Gate(config.sample_rate(k), config.rate_limits.get(k)) for k in KINDS}
        self._max = max(1, config.queue_size)
        self._wake_at = max(1, min(self._max // 2, 5000))
        self.gauges: dict[str, float] = {}
        self.gauge_callbacks: dict[str, Callable[[], float]] = {}
        self.closed = False
        self.requests = 0  # served requests, counted by the middleware (for throughput)
        self._on_start: list[Callable[[Client], None]] = []
        self._start()
        _clients.add(self)

    # -- lifecycle ---------------------------------------------------------------------------
    def _start(self) -> None:
        self._queue: deque[Item] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = False
        self.dropped: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.sent = 0
        self.delivered = 0
        self.delivered_by_kind: Counter[str] = Counter()
        self._in_flight = 0
        self._last_ack = time.monotonic()
        factory = self.config.transport or KafkaTransport
        self._transport: Transport = factory(self.config)
        self._spiller = (
            Spiller(self.config, self._transport, self) if self.config.spill_dir else None
        )
        self._key_partition: dict[tuple[str, bytes], int] = {}
        self._thread = threading.Thread(target=self._run, name="shiftright-sender", daemon=True)
        self._thread.start()
        for start in self._on_start:
            start(self)

    def on_start(self, start: Callable[[Client], None]) -> None:
        """Run ``start(client)`` now and again whenever the client restarts (after a fork)."""
        self._on_start.append(start)
        start(self)

    def after_fork_in_child(self) -> None:
        if self.closed:
            return
        _abandoned.append(self._transport)
        if self._spiller is not None:
            self._spiller.forget()
        self._builder = Builder(self.config)  # the child's own instance id (host:pid)
        self._start()

    def close(self, timeout: float | None = None) -> int:
        """Stop the threads after sending what is queued; return events left undelivered."""
        if self.closed:
            return 0
        left = self.flush(self.config.shutdown_timeout if timeout is None else timeout)
        self.closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join(1.0)
        with contextlib.suppress(Exception):
            self._transport.close()
        return left

    # -- app thread --------------------------------------------------------------------------
    def enqueue(self, kind: str, fields: dict[str, Any]) -> bool:
        """Hand an event to the sender thread; False (and counted) when it is not taken."""
        gate = self._gates[kind]
        if not gate.open:
            reason = gate.refuse()
            if reason is not None:
                self._drop(reason)
                return False
        queue = self._queue
        size = len(queue)
        if size >= self._max or self.closed:
            self._drop("queue_full" if not self.closed else "closed")
            return False
        queue.append((kind, time.time(), fields, testing.mark_scope(current.get())))
        if size == self._wake_at:
            self._wake.set()
        return True

    def flush(self, timeout: float = 2.0) -> int:
        """Wait up to ``timeout`` s for queued events to be delivered; return how many are not."""
        if self.closed:
            return 0
        deadline = time.monotonic() + max(timeout, 0.0)
        self._wake.set()
        while (self._queue or self._busy or self._spilled()) and time.monotonic() < deadline:
            time.sleep(0.002)
            self._wake.set()
        with contextlib.suppress(Exception):
            self._transport.flush(max(deadline - time.monotonic(), 0.0))
        return len(self._queue) + self._in_flight + self._spilled()

    def _spilled(self) -> int:
        return self._spiller.pending() if self._spiller is not None else 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "queued": len(self._queue),
                "sent": self.sent,
                "in_flight": self._in_flight,
                "delivered": self.delivered,
                "delivered_by_kind": dict(self.delivered_by_kind),
                "failed": dict(self.failed),
                "dropped": dict(self.dropped),
                **({"spill": self._spiller.stats()} if self._spiller is not None else {}),
            }

    def _drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    # -- counters the spiller keeps (spiller.Tally) ------------------------------------------
    def count_drop(self, reason: str, count: int) -> None:
        self._drop(reason, count)

    def count_sent(self, count: int) -> None:
        with self._lock:
            self.sent += count

    def count_delivery(self, count: int, kind: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self.delivered += count
                self.delivered_by_kind[kind] += count
                return
            self.failed[error] += count
        self._log.warning("events_undelivered", error, "%d events: %s", count, error)

    # -- sender thread -----------------------------------------------------------------------
    def _run(self) -> None:
        interval = self.config.flush_interval
        spiller = self._spiller
        if spiller is not None:
            spiller.open()  # before the first batch: what a dead process spilled goes first
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self._drain()
                self._transport.poll(0)
                if spiller is not None:
                    spiller.tick(self._stalled())
            except Exception as exc:  # the sender must outlive any bug in one batch
                self._log.warning("sender_failed", "sender", "%r", exc)
                self._busy = False
            if self._stop.is_set() and not self._queue:
                if spiller is not None:
                    self._close_spill(spiller)
                return

    def _close_spill(self, spiller: Spiller) -> None:
        try:
            spiller.close()
        except Exception as exc:  # the app is leaving: say so, never raise
            self._log.warning("spill_close_failed", "spill", "%r", exc)

    def _stalled(self) -> bool:
        """Messages wait and the broker has acknowledged none for ``spill_after`` s."""
        return self._in_flight > 0 and time.monotonic() - self._last_ack > self.config.spill_after

    def _drain(self) -> None:
        self._busy = True
        queue = self._queue
        while queue:
            # Per partition (each event where its own key maps), per key until the broker
            # has told the partition count: bigger messages, cheaper for every consumer.
            groups: dict[tuple[str, int | bytes], list[bytes]] = defaultdict(list)
            first_key: dict[tuple[str, int | bytes], tuple[bytes, str]] = {}
            for _ in range(min(len(queue), 10_000)):
                kind, ts, fields, scope = queue.popleft()
                try:
                    topic, key, value = self._builder.encode(kind, ts, fields, scope)
                except Unsendable as exc:
                    self._drop(str(exc))
                    continue
                except Exception as exc:
                    self._drop("build_failed")
                    self._log.warning("event_build_failed", "build", "%r", exc)
                    continue
                group = (topic, self._partition(topic, key))
                groups[group].append(value)
                first_key.setdefault(group, (key, kind))  # a topic holds one kind
            for group, values in groups.items():
                key, kind = first_key[group]
                for batch, count in _pack(values):
                    self._produce(group[0], key, batch, count, kind)
        self._busy = False

    def _partition(self, topic: str, key: bytes) -> int | bytes:
        found = self._key_partition.get((topic, key))
        if found is not None:
            return found
        ask = getattr(self._transport, "partitions", None)  # optional for custom transports
        count = ask(topic) if ask is not None else None
        if count is None:
            return key
        if len(self._key_partition) > 50_000:
            self._key_partition.clear()
        found = self._key_partition[(topic, key)] = partition_of(key, count)
        return found

    def _produce(self, topic: str, key: bytes, value: bytes, count: int, kind: str) -> None:
        spiller = self._spiller
        if spiller is not None and spiller.engaged:
            spiller.append(Record(topic, key, value, count, kind))
            return

        def delivered(error: str | None) -> None:
            with self._lock:
                self._in_flight -= count
                if error is None:
                    self._last_ack = time.monotonic()
                    self.delivered += count
                    self.delivered_by_kind[kind] += count
                    return
                if error == PURGED and spiller is not None:
                    self.sent -= count
                    spiller.give_back(Record(topic, key, value, count, kind))
                    return
                self.failed[error] += count
            self._log.warning(
                "events_undelivered", error, "%d events to %s: %s", count, topic, error
            )

        with self._lock:  # before produce: another thread's poll may report delivery
            if self._in_flight == 0:
                self._last_ack = time.monotonic()  # the stall clock starts with the first
            self.sent += count
            self._in_flight += count
        for attempt in (0, 1):
            try:
                self._transport.produce(topic, value, key, NDJSON_HEADERS, delivered)
                return
            except BufferError:
                if attempt == 0:
                    self._transport.poll(0.05)
                    continue
                reason = "transport_full"
            except Exception as exc:
                reason = "transport_error"
                self._log.warning("produce_failed", type(exc).__name__, "%r", exc)
            with self._lock:
                self.sent -= count
                self._in_flight -= count
            if reason == "transport_full" and spiller is not None and spiller.trip():
                spiller.append(Record(topic, key, value, count, kind))
            else:
                self._drop(reason, count)
            return


def _pack(values: list[bytes]) -> list[tuple[bytes, int]]:
    """NDJSON batch messages under the wire format's bounds (schemas/wire.py)."""
    out: list[tuple[bytes, int]] = []
    chunk: list[bytes] = []
    size = 0
    for value in values:
        if chunk and (size + len(value) + 1 > MAX_BATCH_BYTES or len(chunk) >= MAX_BATCH_EVENTS):
            out.append((b"\n".join(chunk), len(chunk)))
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        out.append((b"\n".join(chunk), len(chunk)))
    return out


def after_fork_in_child() -> None:
    for client in list(_clients):
        with contextlib.suppress(Exception):
            client.after_fork_in_child()
