"""Stored positions belong to one incarnation of a topic: a topic created again (or read
from another cluster) restarts its offsets at 0 and is stored from its first message; rows
stored before rows carried topic ids keep working after an upgrade."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import structlog
from shiftright_server.sinks import frontier
from shiftright_server.sinks.clickhouse_sink import ClickHouseSink
from structlog.testing import capture_logs

from tests.builders import encoded
from tests.fakes import FakeConsumer, FakeMessage, FakeTopicIds, FakeWarehouse
from tests.unit.test_sink import T0, USAGE, drain, message, sink

Log = dict[tuple[str, int], list[FakeMessage]]


@contextmanager
def sink_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """What the sink logs, at every level, whatever logging another test set up first: a
    level filter, or a logger cached on its first use, would keep events from
    ``capture_logs``."""
    saved, kept = structlog.get_config(), frontier.log
    structlog.configure(wrapper_class=structlog.BoundLogger, cache_logger_on_first_use=False)
    frontier.log = structlog.get_logger("shiftright.sink")
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        frontier.log = kept
        structlog.configure(**saved)


def usage_log(n: int, app: str) -> Log:
    """``n`` usage events of ``app`` on partition 0, from offset 0."""
    at = [T0 + timedelta(seconds=i) for i in range(n)]
    return {
        (USAGE, 0): [message(USAGE, 0, i, encoded("usage", t, app=app)) for i, t in enumerate(at)]
    }


def apps(warehouse: FakeWarehouse) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in warehouse.tables["events_usage"]:
        counts[row["app"]] = counts.get(row["app"], 0) + 1
    return counts


def test_a_topic_created_again_is_stored_from_its_first_message_and_logged_once() -> None:
    warehouse, cluster = FakeWarehouse(), FakeTopicIds()
    first = FakeConsumer(usage_log(80, "old"))
    drain(sink(first, warehouse, rows=40, cluster=cluster), first)
    cluster.recreate(USAGE)  # offsets start at 0 again: same batch bounds, same offsets
    with sink_logs() as logs:
        for _ in range(2):  # a second sink (or a restart) of the same incarnation
            again = FakeConsumer(usage_log(80, "new"))
            drain(sink(again, warehouse, rows=40, cluster=cluster), again)
    assert apps(warehouse) == {"old": 80, "new": 80}
    (found,) = [e for e in logs if e["event"] == "topic_incarnation_found"]
    assert found["topic"] == USAGE and found["topic_id"] == cluster.ids[USAGE]
    assert list(found["stored_incarnations"].values()) == [79]


def stored_before_topic_ids(n: int, cluster: FakeTopicIds) -> FakeWarehouse:
    """A warehouse holding the first ``n`` events of ``app`` as stored before rows carried
    a topic id."""
    warehouse, first = FakeWarehouse(), FakeConsumer(usage_log(n, "app"))
    drain(sink(first, warehouse, rows=30, cluster=cluster), first)
    for row in warehouse.tables["events_usage"]:
        del row["_topic_id"]
    del warehouse.tables["topic_incarnations"]
    warehouse.tokens = {(t, token) for t, token in warehouse.tokens if t != "topic_incarnations"}
    return warehouse


def test_an_upgrade_keeps_the_positions_of_rows_stored_without_a_topic_id() -> None:
    cluster = FakeTopicIds()
    warehouse = stored_before_topic_ids(60, cluster)
    with sink_logs() as logs:
        upgraded = FakeConsumer(usage_log(100, "app"))  # nothing committed: all read again
        drain(sink(upgraded, warehouse, rows=45, cluster=cluster), upgraded)
    assert apps(warehouse) == {"app": 100}  # the first 60 skipped, the last 40 stored
    assert not [e for e in logs if e["event"] == "topic_incarnation_found"]


def test_rows_stored_without_a_topic_id_never_skip_a_later_incarnation() -> None:
    cluster = FakeTopicIds()
    warehouse = stored_before_topic_ids(60, cluster)
    upgraded = FakeConsumer(usage_log(60, "app"))  # the upgraded sink finds nothing new ...
    drain(sink(upgraded, warehouse, cluster=cluster), upgraded)
    cluster.recreate(USAGE)  # ... and the topic is created again before any new row
    again = FakeConsumer(usage_log(30, "new"))
    drain(sink(again, warehouse, cluster=cluster), again)
    assert apps(warehouse) == {"app": 60, "new": 30}


def new_ids(running: ClickHouseSink, warehouse: FakeWarehouse) -> set[str]:
    """Run the sink on; the topic ids the rows of the new events carry."""
    for _ in range(5):
        running.poll_once(timeout=0)
    running._flush()
    return {r["_topic_id"] for r in warehouse.tables["events_usage"] if r["app"] == "new"}


@pytest.mark.parametrize("read_before", [True, False])
def test_a_topic_created_again_under_a_running_sink_is_stored_from_its_first_message(
    read_before: bool,
) -> None:
    """The sink restarted after storing the old topic (its frontier at 49), and read the
    old topic again (uncommitted) or nothing (committed); then the topic is created
    again and the consumer's position goes back to its start."""
    warehouse, cluster = FakeWarehouse(), FakeTopicIds()
    first = FakeConsumer(usage_log(50, "old"))
    drain(sink(first, warehouse, rows=20, cluster=cluster), first)
    committed = {} if read_before else dict(first.committed)
    consumer = FakeConsumer(usage_log(50, "old"), committed=committed)
    running = sink(consumer, warehouse, rows=20, cluster=cluster)
    drain(running, consumer)
    cluster.recreate(USAGE)
    consumer.log.update(usage_log(30, "new"))
    consumer._positions[(USAGE, 0)] = 0
    assert new_ids(running, warehouse) == {cluster.ids[USAGE]}
    assert apps(warehouse) == {"old": 50, "new": 30}


def test_a_running_sink_looks_at_its_topics_ids_and_stores_a_new_topic_under_its_id() -> None:
    warehouse, cluster = FakeWarehouse(), FakeTopicIds()
    consumer = FakeConsumer({**usage_log(20, "old"), (USAGE, 1): []})
    running = sink(consumer, warehouse, cluster=cluster)
    drain(running, consumer)
    cluster.recreate(USAGE)  # its partition 1, empty before, gets the new topic's events
    consumer.log[(USAGE, 1)] = [
        message(USAGE, 1, m._offset, m._value) for m in usage_log(30, "new")[(USAGE, 0)]
    ]
    running._frontier._next_check = 0  # the next look at the topics' ids is due
    with sink_logs() as logs:
        assert new_ids(running, warehouse) == {cluster.ids[USAGE]}
    assert apps(warehouse) == {"old": 20, "new": 30}
    assert [e["topic_id"] for e in logs if e["event"] == "topic_incarnation_found"] == [
        cluster.ids[USAGE]
    ]
