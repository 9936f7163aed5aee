"""The ClickHouse sink against fakes: commit after write, retry, poison rows, restarts."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.schemas.validation import Limits
from shiftright_server.sinks.clickhouse_sink import ClickHouseSink, SinkConfig
from shiftright_server.sinks.errors import RetryableWriteError
from shiftright_server.sinks.router import Router
from shiftright_server.sinks.rows import COLUMNS

from tests.builders import encoded
from tests.fakes import FakeConsumer, FakeMessage, FakeTopicIds, FakeWarehouse

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
USAGE, ERRORS, DLQ = "events.usage.v1", "events.error.v1", "dlq.events.v1"


def message(
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
) -> FakeMessage:
    ts = T0 + timedelta(seconds=offset)
    return FakeMessage(topic, partition, offset, value, int(ts.timestamp() * 1000), headers)


def usage_log(n: int, partitions: int = 2) -> dict[tuple[str, int], list[FakeMessage]]:
    return {
        (USAGE, p): [
            message(USAGE, p, i, encoded("usage", T0 + timedelta(seconds=i))) for i in range(n)
        ]
        for p in range(partitions)
    }


def sink(
    consumer: FakeConsumer,
    warehouse: FakeWarehouse,
    rows: int = 100,
    cluster: FakeTopicIds | None = None,
    seconds: float = 60,
) -> ClickHouseSink:
    config = SinkConfig(batch_rows=rows, batch_seconds=seconds, retry_initial=0.01, retry_max=0.02)
    return ClickHouseSink(
        consumer,  # type: ignore[arg-type]  # FakeConsumer has the calls the sink makes on a Consumer
        warehouse,
        Router("", Limits(max_age=timedelta(days=36500))),
        config,
        cluster or FakeTopicIds(),
    )


def drain(s: ClickHouseSink, consumer: FakeConsumer, rounds: int = 50) -> None:
    consumer.subscribe(s._router.subscriptions, on_assign=s._on_assign)  # what run() does
    for _ in range(rounds):
        s.poll_once(timeout=0)
    s._flush()


def test_every_event_is_stored_once_and_offsets_commit_after_the_insert() -> None:
    consumer, warehouse = FakeConsumer(usage_log(250)), FakeWarehouse()
    drain(sink(consumer, warehouse), consumer)
    rows = warehouse.tables["events_usage"]
    assert len(rows) == 500
    assert len({r["event_id"] for r in rows}) == 500
    assert consumer.committed == {(USAGE, 0): 250, (USAGE, 1): 250}


def test_a_warehouse_outage_pauses_retries_with_the_same_token_and_loses_nothing() -> None:
    consumer, warehouse = FakeConsumer(usage_log(60)), FakeWarehouse()
    s = sink(consumer, warehouse)
    consumer.subscribe(s._router.subscriptions, on_assign=s._on_assign)  # the topic is known
    warehouse.fail_next = [RetryableWriteError("connection refused")] * 3
    drain(s, consumer)
    assert s.stats.retries == 3
    assert len(warehouse.tables["events_usage"]) == 120
    assert consumer.committed == {(USAGE, 0): 60, (USAGE, 1): 60}
    assert not consumer.paused


def test_a_kafka_commit_that_fails_stops_nothing_and_stores_nothing_twice() -> None:
    from confluent_kafka import KafkaError, KafkaException

    consumer, warehouse = FakeConsumer(usage_log(150)), FakeWarehouse()

    def commit(offsets: list[object], asynchronous: bool = True) -> None:
        # the coordinator is still loading after a broker restart
        raise KafkaException(KafkaError(KafkaError._WAIT_COORD))

    consumer.commit = commit  # type: ignore[method-assign]  # a commit that fails, like a loading coordinator
    s = sink(consumer, warehouse)
    drain(s, consumer)
    assert s.stats.commit_failures == s.stats.batches > 1  # logged and counted; the sink kept going
    assert len(warehouse.tables["events_usage"]) == 300
    assert consumer.committed == {}  # Kafka never heard: a restart re-reads everything ...
    again = FakeConsumer(usage_log(150))
    drain(sink(again, warehouse), again)
    assert len(warehouse.tables["events_usage"]) == 300  # ... and stores nothing twice


def test_a_row_the_warehouse_refuses_goes_to_dead_letters_and_the_rest_is_stored() -> None:
    consumer, warehouse = FakeConsumer(usage_log(40, partitions=1)), FakeWarehouse()
    warehouse.reject_if = lambda row: row.get("_offset") == 17 and "event_id" in row
    s = sink(consumer, warehouse)
    drain(s, consumer)
    assert len(warehouse.tables["events_usage"]) == 39
    (letter,) = warehouse.tables["dead_letters"]
    assert (letter["reason"], letter["source_offset"], letter["stage"]) == (
        "warehouse_rejected",
        17,
        "sink",
    )
    assert "Type mismatch" in letter["detail"]
    assert consumer.committed[(USAGE, 0)] == 40


def test_a_restart_after_insert_but_before_commit_stores_nothing_twice() -> None:
    log = usage_log(100, partitions=1)
    warehouse = FakeWarehouse()
    first = FakeConsumer(log)
    s = sink(first, warehouse, rows=30)
    first.subscribe(s._router.subscriptions, on_assign=s._on_assign)
    s.poll_once(timeout=0)  # consumes everything; inserts, commits
    first.committed.clear()  # ... as if the process died before its commits landed
    second = FakeConsumer(log)
    drain(sink(second, warehouse, rows=45), second)  # different batch bounds this time
    assert len(warehouse.tables["events_usage"]) == 100


def test_invalid_raw_events_are_left_to_the_stream_workers_and_dead_letters_are_stored() -> None:
    headers = [
        ("shiftright-reason", b"malformed_json"),
        ("shiftright-detail", b"invalid JSON"),
        ("shiftright-source-topic", USAGE.encode()),
        ("shiftright-source-partition", b"0"),
        ("shiftright-source-offset", b"1"),
        ("shiftright-payload-bytes", b"5"),
    ]
    log = {
        (USAGE, 0): [message(USAGE, 0, 0, encoded("usage", T0)), message(USAGE, 0, 1, b"{oops")],
        (DLQ, 0): [message(DLQ, 0, 0, b"{oops", headers)],
    }
    consumer, warehouse = FakeConsumer(log), FakeWarehouse()
    s = sink(consumer, warehouse)
    drain(s, consumer)
    assert len(warehouse.tables["events_usage"]) == 1
    (letter,) = warehouse.tables["dead_letters"]
    assert (
        letter["reason"],
        letter["source_topic"],
        letter["source_offset"],
        letter["payload"],
    ) == ("malformed_json", USAGE, 1, "{oops")
    assert s.stats.skipped["malformed_json"] == 1
    assert consumer.committed[(USAGE, 0)] == 2


def test_offsets_lookup_waits_for_the_warehouse_to_come_back() -> None:
    consumer, warehouse = FakeConsumer(usage_log(10, partitions=1)), FakeWarehouse()
    warehouse.fail_lookups = [RetryableWriteError("connection refused")] * 2
    s = sink(consumer, warehouse)
    drain(s, consumer)
    assert warehouse.fail_lookups == []
    assert len(warehouse.tables["events_usage"]) == 10


def test_a_batch_message_becomes_one_row_per_valid_event_with_its_index() -> None:
    from shiftright_server.schemas import wire

    value = b"\n".join([encoded("usage", T0, name="a"), b"{broken", encoded("usage", T0, name="c")])
    msg = FakeMessage(USAGE, 0, 7, value, int(T0.timestamp() * 1000), list(wire.BATCH_HEADERS))
    consumer, warehouse = FakeConsumer({(USAGE, 0): [msg]}), FakeWarehouse()
    s = sink(consumer, warehouse)
    drain(s, consumer)
    rows = warehouse.tables["events_usage"]
    assert [(r["name"], r["_offset"], r["_index"]) for r in rows] == [("a", 7, 0), ("c", 7, 2)]
    assert s.stats.skipped["malformed_json"] == 1
    assert consumer.committed[(USAGE, 0)] == 8


def test_a_backlog_of_batch_messages_is_written_in_batches_of_about_batch_rows() -> None:
    from shiftright_server.schemas import wire

    lines = [encoded("usage", T0, name=f"n{i}") for i in range(10)]
    log = {
        (USAGE, 0): [message(USAGE, 0, i, b"\n".join(lines), wire.BATCH_HEADERS) for i in range(30)]
    }
    consumer, warehouse = FakeConsumer(log), FakeWarehouse()
    drain(sink(consumer, warehouse, rows=45), consumer)
    assert len(warehouse.tables["events_usage"]) == 300
    assert warehouse.inserts >= 300 // (45 + 10)  # not the whole backlog in one insert


def test_behind_its_topics_the_sink_fills_batches_to_batch_rows_at_the_head_it_cuts_by_age() -> (
    None
):
    from shiftright_server.schemas import wire

    lines = [encoded("usage", T0, name=f"n{i}") for i in range(10)]
    log = {
        (USAGE, 0): [message(USAGE, 0, i, b"\n".join(lines), wire.BATCH_HEADERS) for i in range(35)]
    }
    consumer, warehouse = FakeConsumer(log), FakeWarehouse()
    s = sink(consumer, warehouse, rows=100, seconds=0)  # every batch old enough at once
    consumer.subscribe(s._router.subscriptions, on_assign=s._on_assign)
    for _ in range(20):
        s.poll_once(timeout=0)
    # 350 rows: three full batches while behind, then the rest when a fetch came up short
    assert len([t for table, t in warehouse.tokens if table == "events_usage"]) == 4
    assert len(warehouse.tables["events_usage"]) == 350


class TrickleConsumer(FakeConsumer):
    """Hands out at most three messages a call, whatever the broker holds (a consumer
    whose fetches have not caught up with the backlog)."""

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[FakeMessage]:
        return super().consume(min(3, num_messages), timeout)


def test_fetches_that_come_back_short_while_the_broker_holds_more_still_fill_the_batch() -> None:
    from shiftright_server.schemas import wire

    lines = [encoded("usage", T0, name=f"n{i}") for i in range(10)]
    log = {
        (USAGE, 0): [message(USAGE, 0, i, b"\n".join(lines), wire.BATCH_HEADERS) for i in range(35)]
    }
    consumer, warehouse = TrickleConsumer(log), FakeWarehouse()
    s = sink(consumer, warehouse, rows=100, seconds=0)
    consumer.subscribe(s._router.subscriptions, on_assign=s._on_assign)
    for _ in range(30):
        s.poll_once(timeout=0)
    assert len(warehouse.tables["events_usage"]) == 350
    # 12 fetches of 3 messages: two batches of 120 rows while 8 or more messages waited,
    # then cut by age as the backlog ran out
    assert len([t for table, t in warehouse.tokens if table == "events_usage"]) == 5


@functools.cache
def mixed_log() -> dict[tuple[str, int], list[FakeMessage]]:
    """Usage, health and change events, some leaving out what the models fill in, some
    only the models can read, and bad lines among good ones in batch messages."""
    from shiftright_server.schemas import wire

    usage = [
        encoded("usage", T0, name="plain"),
        encoded("usage", T0 + timedelta(minutes=1, milliseconds=500), attributes={"k": "v"}),
        encoded("usage", T0, name="zoned").replace(b"15:00:00.000Z", b"17:00:00.5+02:00"),
        b'{"kind":"usage","app":"a","env":"e","name":"no-id-no-ts-no-origin"}',
        encoded("usage", T0, status_code="503"),  # lax: only the models take it
        b"{broken",
        encoded("usage", T0, name="x" * 201),
        b'{"kind":"usage","app":"a","env":"e","name":"first","name":"last"}',
    ]
    health = [encoded("health", T0, origin="synthetic"), encoded("health", T0, metrics={})]
    # decoded in one call: every line valid, one object per line
    all_valid = [encoded("health", T0, host="h1"), encoded("health", T0, metrics={"cpu": 2})]
    change = [encoded("change", T0, description="d", actor="ci")]
    errors = [
        encoded("error", T0, frames=[{"function": "f", "lineno": 3}, {"in_app": False}]),
        encoded("error", T0, handled="yes"),  # lax: only the models take it
    ]
    batch = list(wire.BATCH_HEADERS)
    return {
        (USAGE, 0): [
            message(USAGE, 0, 0, b"\n".join(usage), batch),
            message(USAGE, 0, 1, encoded("usage", T0, name="single")),
        ],
        ("events.health.v1", 0): [
            message("events.health.v1", 0, 0, b"\n".join(health), batch),
            message("events.health.v1", 0, 1, b"\n".join(all_valid), batch),
        ],
        ("events.change.v1", 0): [message("events.change.v1", 0, 0, b"\n".join(change), batch)],
        ("events.error.v1", 0): [message("events.error.v1", 0, 0, b"\n".join(errors), batch)],
    }


def stored_with(event_rows: str) -> tuple[FakeWarehouse, ClickHouseSink]:
    consumer, warehouse = FakeConsumer(mixed_log()), FakeWarehouse()
    s = sink(consumer, warehouse)
    s._router = Router("", Limits(max_age=timedelta(days=36500)), event_rows=event_rows)
    drain(s, consumer)
    return warehouse, s


def test_events_stored_from_the_fast_validators_columns_are_stored_as_the_models_store_them() -> (
    None
):
    fast, fast_sink = stored_with("columns")
    models, models_sink = stored_with("models")
    for table in ("events_usage", "events_health", "events_change", "events_error"):
        key = lambda r: (r["_offset"], r["_index"])  # noqa: E731
        assert sorted(fast.tables[table], key=key) == sorted(models.tables[table], key=key)
    assert fast_sink.stats.skipped == models_sink.stats.skipped
    assert fast_sink.stats.skipped["malformed_json"] == 1
    assert fast.inserts == models.inserts  # one insert per table per batch either way
    names = {r["name"] for r in fast.tables["events_usage"]}
    assert {"plain", "no-id-no-ts-no-origin", "last", "single"} <= names


def test_a_message_of_structs_of_several_kinds_fills_the_columns_as_one_kind_each() -> None:
    from shiftright_server.schemas.fast_events import DECODERS, LAX_DECODERS, Accepted
    from shiftright_server.schemas.positions import Position
    from shiftright_server.sinks.event_columns import MessageEvents, columns

    lines = [encoded("usage", T0, name=f"n{i}", attributes={"k": str(i)}) for i in range(4)]
    strict = [DECODERS["usage"].decode(line) for line in lines]
    lax = [LAX_DECODERS["usage"].decode(line) for line in lines]
    assert type(strict[0]) is not type(lax[0])
    at = Position(USAGE, 0, 7)

    def made(events: list[Any]) -> list[Any]:
        chunk = MessageEvents("events_usage", at, 1)
        for i, event in enumerate(events):
            chunk.add(Accepted(event, 5), i)
        return columns("events_usage", [chunk])

    mixed = made([strict[0], lax[1], strict[2], lax[3]])
    assert mixed == made(strict) == made(lax)
    assert mixed[COLUMNS["events_usage"].index("name")] == ["n0", "n1", "n2", "n3"]


def test_messages_read_together_are_stored_as_the_models_store_them() -> None:
    from shiftright_server.schemas import wire
    from shiftright_server.schemas.positions import Position
    from shiftright_server.sinks.event_columns import MessageEvents
    from shiftright_server.sinks.router import Record

    def batch(kind: str, n: int, **fields: Any) -> bytes:
        lines = [encoded(kind, T0 + timedelta(seconds=i), **fields) for i in range(n)]
        return b"\n".join(lines)

    headers = list(wire.BATCH_HEADERS)
    frames = [{"function": "f", "lineno": 3}, {"in_app": False}]
    log = {
        (USAGE, p): [
            message(USAGE, p, 0, batch("usage", 3, attributes={"k": "v"}), headers),
            message(USAGE, p, 1, encoded("usage", T0, name=f"single{p}")),
            message(USAGE, p, 2, batch("usage", 2, flags={"f": "on"}), headers),
        ]
        for p in range(2)
    }
    log[(ERRORS, 0)] = [
        message(ERRORS, 0, o, batch("error", 2, frames=frames), headers) for o in range(2)
    ]
    stored: dict[str, FakeWarehouse] = {}
    for event_rows in ("columns", "models"):
        consumer, warehouse = FakeConsumer(log), FakeWarehouse()
        s = sink(consumer, warehouse)
        s._router = Router("", Limits(max_age=timedelta(days=36500)), event_rows=event_rows)
        drain(s, consumer)
        stored[event_rows] = warehouse
    for table in ("events_usage", "events_error"):
        key = lambda r: (r["_partition"], r["_offset"], r["_index"])  # noqa: E731
        fast, models = (sorted(stored[e].tables[table], key=key) for e in ("columns", "models"))
        assert fast == models and len(fast) == {"events_usage": 12, "events_error": 4}[table]
    records = [
        Record(Position(m.topic(), m.partition(), m.offset()), m.value(), m.headers(), ms)
        for part in log.values()
        for m in part
        for ms in [m.timestamp()[1]]
    ]
    routed = list(Router("", Limits(max_age=timedelta(days=36500))).route_all(records))
    assert [(type(r), getattr(r, "table", "")) for r in routed] == [
        (MessageEvents, "events_usage"),
        (MessageEvents, "events_error"),
    ]  # each kind's messages read at once


def test_a_records_row_holds_its_fields_in_the_models_order_then_its_position() -> None:
    from shiftright_server.schemas.positions import Position
    from shiftright_server.sinks.rows import RECORD_MODELS, record_row

    pos = Position("t", 2, 9)
    for table, model in RECORD_MODELS.items():
        names = list(model.model_fields)
        values: dict[str, Any] = {name: f"{table}.{name}" for name in names}
        record = model.model_construct(**values)
        for _ in range(2):  # the model's fields read once, the same each time
            row = record_row(record, pos)
            assert row == (*(f"{table}.{n}" for n in names), "t", 2, 9)
            assert len(row) == len(COLUMNS[table])
