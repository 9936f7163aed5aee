"""The stream worker's Kafka consumer takes its fetch and group-membership settings from
StreamSettings, not Faust's defaults (fetch_min_bytes=1: a fetch per few messages, a fifth
of the worker's CPU when live; no static membership: a restart waits for the dead member's
session to expire)."""

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


def _consumer_membership(streams: StreamSettings) -> tuple[str | None, int]:
    streams = streams.model_copy(update={"error_analytics": False, "alerting": False})
    app = build_app(Settings(streams=streams))

    async def create() -> tuple[str | None, int]:
        thread = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread is not on its abstract type
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._group_instance_id, consumer._session_timeout_ms

    return asyncio.run(create())


def test_a_restarted_worker_rejoins_as_the_same_static_member() -> None:
    # A stable instance id is what lets the broker hand a killed worker's partitions to
    # its successor at once rather than after the dead member's session expires.
    assert _consumer_membership(StreamSettings()) == ("worker-0", 30_000)
    custom = StreamSettings(instance_id="worker-3", session_timeout_seconds=12)
    assert _consumer_membership(custom) == ("worker-3", 12_000)


def test_an_empty_instance_id_means_dynamic_membership() -> None:
    assert _consumer_membership(StreamSettings(instance_id=""))[0] is None
