"""Faust's Kafka transport with the fetch settings it does not expose.

Faust builds its aiokafka consumer with ``fetch_min_bytes=1`` and
``fetch_max_wait_ms=1500``: the broker answers a fetch as soon as any byte is waiting.
Live traffic arrives in many small slices (producers linger ~20 ms), so the worker made
a fetch, a cross-thread hand-over and a round of Faust's per-fetch bookkeeping for
every few messages: at 20,000 events/s about a fifth of its CPU. :class:`App` asks the
broker to hold each fetch until ``fetch_min_bytes`` are waiting or ``fetch_max_wait_ms``
passed (``StreamSettings``).
"""

from __future__ import annotations

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_min_bytes = 1
    fetch_max_wait_ms = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it creates its Fetcher
        consumer._fetch_min_bytes = self.fetch_min_bytes
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


def _transport(fetch_min_bytes: int, fetch_max_wait_ms: int) -> type[faust_aiokafka.Transport]:
    thread = type("ConsumerThread", (_ConsumerThread,), {
        "fetch_min_bytes": fetch_min_bytes, "fetch_max_wait_ms": fetch_max_wait_ms})  # fmt: skip

    class FetchingConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
            return thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = FetchingConsumer

    return Transport


class App(faust.App):
    """A Faust app whose consumer fetches with these settings (``kafka://`` brokers)."""

    def __init__(self, *args: Any, fetch_min_bytes: int, fetch_max_wait_ms: int,
                 **kwargs: Any) -> None:  # fmt: skip
        self._transport_class = _transport(fetch_min_bytes, fetch_max_wait_ms)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return self._transport_class(self.conf.broker_consumer, self)
