"""A stream worker killed with -9 and started again: what it restored closes like any
other state (a quiet partition's open bucket appears in ``rollups`` on the wall clock,
without waiting for a new event)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.streams.gaps import LogEnds

from tests.builders import event
from tests.integration.alerting import Sql
from tests.integration.conftest import wait_for
from tests.integration.pipeline import Pipeline, emit

#: How long a restarted worker may take to own its partitions again and restore them
#: before the quiet close is due (it takes the dead member's place at once; this also
#: covers the dead member's session expiring, 30 s, should it not).
RESTART_MARGIN_S = 60


def usage_partitions(settings: Settings) -> list[tuple[str, int]]:
    topic = topics.named(topics.EVENTS_USAGE, settings.namespace)
    return [(topic, p) for p in range(settings.kafka.partitions)]


def test_a_restored_open_bucket_closes_when_its_partition_stays_quiet(
    settings: Settings, sql: Sql
) -> None:
    # The first worker never closes quiet buckets: the bucket is open when it dies.
    holding = settings.model_copy(
        update={"streams": settings.streams.model_copy(update={"idle_close_seconds": 3600.0})}
    )
    pipeline = Pipeline(settings)
    Pipeline(holding).start("streams", "sink")
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    events = [
        event("usage", minute + timedelta(seconds=i % 40), "checkout", "prod", name="search")
        for i in range(200)
    ]
    ends = LogEnds(settings.kafka.bootstrap_servers)
    tps = usage_partitions(settings)
    group = f"{settings.namespace}.{settings.streams.app_id}"
    try:
        emit(settings, events)

        def all_committed() -> bool:  # the state is saved before the offsets are committed
            done = ends.committed(tps, group)
            return all(done[tp] == end for tp, end in ends.fetch(tps).items() if end > 0)

        wait_for(
            all_committed, 120, lambda: f"the first worker's commit\n{pipeline.log('streams')}"
        )
        assert sql("SELECT count() FROM rollups") == [(0,)], "the bucket closed before the kill"
        pipeline.kill9("streams")
        restarted = time.monotonic()
        pipeline.start("streams")  # closes quiet partitions after idle_close_seconds
        wait_for(
            lambda: sql("SELECT sum(count) FROM rollups FINAL") == [(200,)],
            settings.streams.idle_close_seconds + RESTART_MARGIN_S,
            lambda: f"the restored bucket in rollups\n{pipeline.log('streams')}",
        )
        print(f"restored bucket closed {time.monotonic() - restarted:.1f} s after the restart")
        assert sql("SELECT app, key, count FROM rollups FINAL") == [("checkout", "search", 200)]
    finally:
        pipeline.stop()
