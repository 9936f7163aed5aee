"""Faust's Kafka transport with the fetch settings the stream worker wants.

Faust builds its aiokafka consumer with ``fetch_min_bytes=1``: the broker answers a fetch
as soon as any partition has a byte, so a worker reading ~80 partitions at a steady
trickle sends fetch after fetch, each with a few records, and both the worker and the
broker pay for every request (the sink had the same problem on its consumer). Faust has
no setting for it; this transport sets the two aiokafka consumer options before the
consumer starts (they are read when its fetcher is built).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

#: The broker waits for this much data, or for FETCH_MAX_WAIT_MS, before it answers.
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class App(faust.App):
    """A Faust app on :class:`Transport` (``kafka://`` URLs only)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
