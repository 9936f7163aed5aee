"""The stream worker's Kafka consumer fetches with the settings, not Faust's defaults
(fetch_min_bytes=1: a fetch per few messages, a fifth of the worker's CPU when live)."""

from __future__ import annotations

import asyncio

from shiftright_server.infra.settings import Settings, StreamSettings
from shiftright_server.streams.app import build_app


def _consumer_fetch(streams: StreamSettings) -> tuple[int, int]:
    # (without the error and alert agents, which declare their changelogs at once)
    streams = streams.model_copy(update={"error_analytics": False, "alerting": False})
    app = build_app(Settings(streams=streams))

    async def create() -> tuple[int, int]:  # aiokafka wants a running loop; no connection
        thread = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread is not on its abstract type
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms

    return asyncio.run(create())


def test_the_worker_consumer_waits_for_fuller_fetches_by_default() -> None:
    defaults = StreamSettings()
    assert _consumer_fetch(defaults) == (defaults.fetch_min_bytes, defaults.fetch_max_wait_ms)
    assert defaults.fetch_min_bytes >= 64 * 1024 and defaults.fetch_max_wait_ms <= 500


def test_fetch_settings_reach_the_consumer() -> None:
    custom = StreamSettings(fetch_min_bytes=1, fetch_max_wait_ms=40)
    assert _consumer_fetch(custom) == (1, 40)
