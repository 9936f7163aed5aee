"""The stream worker's Kafka transport (``streams.transport``) sets two aiokafka consumer
options Faust has no setting for, through attributes aiokafka reads when its fetcher is
built; an aiokafka upgrade that renamed them would silently bring back a fetch per byte."""

from __future__ import annotations

import asyncio

import aiokafka

from streams import transport


def test_aiokafka_still_keeps_the_fetch_options_where_the_transport_sets_them() -> None:
    async def made() -> aiokafka.AIOKafkaConsumer:  # (aiokafka wants a running loop)
        return aiokafka.AIOKafkaConsumer(
            bootstrap_servers="127.0.0.1:9", fetch_min_bytes=7, fetch_max_wait_ms=9
        )

    consumer = asyncio.run(made())
    assert consumer._fetch_min_bytes == 7 and consumer._fetch_max_wait_ms == 9


def test_the_stream_worker_app_fetches_through_the_transport() -> None:
    app = transport.App("transport-test", broker="kafka://127.0.0.1:9", autodiscover=False)
    assert isinstance(app.transport, transport.Transport)
    assert app.transport.Consumer is transport._Consumer
    assert transport.FETCH_MIN_BYTES >= 16 * 1024 and transport.FETCH_MAX_WAIT_MS <= 250
