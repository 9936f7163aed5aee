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


def sink_log(pipeline: Pipeline, event: str) -> list[str]:
    text = pipeline.supervisor.log_path("sink").read_text()
    return [line for line in text.splitlines() if event in line]


def test_a_topic_created_again_is_stored_whole_and_nothing_old_twice(
    settings: Settings, sql: Sql
) -> None:
    """Created again while no sink runs, then again under a running sink (restarted after
    storing, so it skips up to the stored offsets): each time every new event is stored."""
    usage = topics.named(topics.EVENTS_USAGE, settings.namespace)
    cluster = KafkaTopicIds(AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers}))
    ids = [cluster.topic_ids([usage])[usage]]
    assert cluster.topic_ids([usage]) == {usage: ids[0]}  # one incarnation, one id
    pipeline = Pipeline(settings)
    send(settings, "first")
    pipeline.start("sink")
    try:
        wait_for(lambda: by_app(sql) == {"first": N}, 90, lambda: pipeline.log("sink"))
        pipeline.stop()
        create_again(settings, usage)
        send(settings, "second")  # at offsets the first topic already stored
        pipeline.start("sink")
        want = {"first": N, "second": N}
        wait_for(lambda: by_app(sql) == want, 90, lambda: f"{by_app(sql)}\n{pipeline.log('sink')}")
        ids.append(cluster.topic_ids([usage])[usage])
        pipeline.stop()
        pipeline.start("sink")  # skips up to the second topic's stored offsets
        wait_for(lambda: len(sink_log(pipeline, "partitions_assigned")) == 3, 60, "assignment")
        create_again(settings, usage)
        send(settings, "third")
        want["third"] = N
        wait_for(lambda: by_app(sql) == want, 90, lambda: f"{by_app(sql)}\n{pipeline.log('sink')}")
        ids.append(cluster.topic_ids([usage])[usage])
        assert len(set(ids)) == 3
        assert sql("SELECT uniqExact(event_id) FROM events_usage") == [(3 * N,)]
        # The running sink's rows carry the id of the topic as it was read: the first two
        # exactly; the third's from the first look at its ids after the recreation.
        stored_ids = sql("SELECT app, any(_topic_id) FROM events_usage GROUP BY app ORDER BY app")
        assert stored_ids[:2] == [("first", ids[0]), ("second", ids[1])]
        wait_for(
            lambda: len(sink_log(pipeline, "topic_incarnation_found")) == 2,
            30,
            lambda: f"the running sink to find the third topic\n{pipeline.log('sink')}",
        )
        found = sink_log(pipeline, "topic_incarnation_found")
        assert usage in found[0] and ids[1] in found[0] and ids[2] in found[1], found
    finally:
        pipeline.stop()
