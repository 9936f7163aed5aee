"""Running the gateway: a Kafka publisher, the key store, the app, and uvicorn."""

from __future__ import annotations

from pathlib import Path

import structlog

from infra.settings import Settings
from producers.gateway.publisher import KafkaPublisher, PublisherLimits, kafka_publisher

log = structlog.get_logger("shiftright.gateway")


def keys_path(settings: Settings) -> Path:
    return settings.resolved_state_dir() / "gateway" / "keys.sqlite"


def publisher_limits(settings: Settings) -> PublisherLimits:
    g = settings.gateway
    return PublisherLimits(
        max_pending_events=g.max_pending_events,
        max_pending_bytes=g.max_pending_bytes,
        ack_timeout=g.ack_timeout_seconds,
        retry_after=g.retry_after_seconds,
        unavailable_retry_after=g.unavailable_retry_after_seconds,
    )


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; then deliver what Kafka still has queued."""
    import uvicorn

    from producers.gateway.app import Gateway, create_app
    from producers.gateway.keys import KeyStore

    g = settings.gateway
    publisher: KafkaPublisher = kafka_publisher(
        settings.kafka.bootstrap_servers, settings.namespace, publisher_limits(settings)
    )
    keys = KeyStore(keys_path(settings))
    gateway = Gateway(g, keys, publisher, settings.streams.limits())
    app = create_app(gateway)
    bind_host, bind_port = host or g.host, port or g.port
    log.info(
        "gateway_started", host=bind_host, port=bind_port, kafka=settings.kafka.bootstrap_servers
    )
    config = uvicorn.Config(
        app,
        host=bind_host,
        port=bind_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        left = publisher.close(10.0)
        keys.close()
        log.info("gateway_stopped", undelivered=left)
