"""The ingest gateway on the configured Kafka: a publisher, the key store and the app.

:func:`assemble` is called once in each serving process (``--workers``), so every process
has its own producer with its own bound on unacknowledged events; on shutdown each
delivers what it still has queued before exiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import structlog
from shiftright_server.infra.access.ingest_keys import keys_path
from shiftright_server.infra.settings import Settings
from shiftright_server.producers.gateway.publisher import PublisherLimits
from shiftright_server.schemas import topics

if TYPE_CHECKING:
    from fastapi import FastAPI

log = structlog.get_logger("shiftright.gateway")


def publisher_limits(settings: Settings) -> PublisherLimits:
    g = settings.gateway
    return PublisherLimits(
        max_pending_events=g.max_pending_events,
        max_pending_bytes=g.max_pending_bytes,
        ack_timeout=g.ack_timeout_seconds,
        retry_after=g.retry_after_seconds,
        unavailable_retry_after=g.unavailable_retry_after_seconds,
    )


def assemble(settings: Settings) -> FastAPI:
    from shiftright_server.infra.access.ingest_keys import KeyStore
    from shiftright_server.producers.gateway.app import Gateway, create_app
    from shiftright_server.producers.gateway.flags import FlagAnswers, TopicFlags
    from shiftright_server.producers.gateway.publisher import kafka_publisher

    publisher = kafka_publisher(
        settings.kafka.bootstrap_servers, settings.namespace, publisher_limits(settings)
    )
    keys = KeyStore(keys_path(settings))
    flags = TopicFlags(
        settings.kafka.bootstrap_servers, topics.named(topics.FLAGS_CONFIG, settings.namespace)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("gateway_started", kafka=settings.kafka.bootstrap_servers)
        flags.follower.start()
        try:
            yield
        finally:
            flags.follower.stop()
            left = await asyncio.to_thread(publisher.close, 10.0)
            keys.close()
            log.info("gateway_stopped", undelivered=left)

    gateway = Gateway(
        settings.gateway, keys, publisher, settings.streams.limits(), flags=FlagAnswers(flags)
    )
    return create_app(gateway, lifespan)
