"""A topic deleted and created again on the real broker, with the same warehouse: offsets
start at 0 again, and the sink stores every event of the new topic and none of the old one
twice. Also holds tests/fakes.py's FakeTopicIds to the admin client's topic ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from confluent_kafka.admin import AdminClient
from shiftright_server.infra.kafka.topics import ensure_topics
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.sinks.incarnations import KafkaTopicIds

from tests.builders import event
from tests.integration.conftest import Sql, wait_for
from tests.integration.pipeline import Pipeline, emit

N = 400


def send(settings: Settings, app: str) -> None:
    at = datetime.now(UTC) - timedelta(minutes=5)
    emit(settings, (event("usage", at + timedelta(seconds=i), app, "prod") for i in range(N)))


def by_app(sql: Sql) -> dict[str, int]:
    rows = sql("SELECT app, count() FROM events_usage GROUP BY app")
    return {str(app): int(n) for app, n in rows}


def create_again(settings: Settings, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    admin.delete_topics([topic])[topic].result(30)
    wait_for(
        lambda: topic not in admin.list_topics(timeout=10).topics, 60, f"{topic} to be deleted"
    )
    ensure_topics(settings.kafka.bootstrap_servers, {topic: settings.kafka.partitions})


def test_a_topic_created_again_is_stored_whole_and_nothing_old_twice(
    settings: Settings, sql: Sql
) -> None:
    usage = topics.named(topics.EVENTS_USAGE, settings.namespace)
    cluster = KafkaTopicIds(AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}))
    first_id = cluster.topic_ids([usage])[usage]
    assert cluster.topic_ids([usage]) == {usage: first_id}  # one incarnation, one id
    pipeline = Pipeline(settings)
    send(settings, "before")
    pipeline.start("sink")
    try:
        wait_for(lambda: by_app(sql) == {"before": N}, 90, lambda: pipeline.log("sink"))
        pipeline.stop()
        create_again(settings, usage)
        second_id = cluster.topic_ids([usage])[usage]
        assert second_id != first_id
        send(settings, "after")  # at offsets the first incarnation already stored
        pipeline.start("sink")
        wait_for(
            lambda: by_app(sql) == {"before": N, "after": N},
            90,
            lambda: f"{by_app(sql)}\n{pipeline.log('sink')}",
        )
        stored_ids = sql("SELECT app, any(_topic_id) FROM events_usage GROUP BY app ORDER BY app")
        assert stored_ids == [("after", second_id), ("before", first_id)]
        assert sql("SELECT uniqExact(event_id) FROM events_usage") == [(2 * N,)]
        found = [
            line
            for line in pipeline.supervisor.log_path("sink").read_text().splitlines()
            if "topic_incarnation_found" in line
        ]
        assert len(found) == 1 and usage in found[0] and second_id in found[0], found
    finally:
        pipeline.stop()
