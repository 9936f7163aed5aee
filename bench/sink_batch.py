"""``python -m bench.sink_batch``: the sink's batch path offline, CPU per event split
between the sink and the warehouse, for each way the sink stores events, in one run.

    .venv/bin/python -m bench.sink_batch [--events 100000] [--rounds 3]
        [--window 245] [--batch-rows 50000] [--fetch 500]

The bench's event mix (``bench.pipeline.events``: usage, errors, health, changes in NDJSON
batch messages of 200, or with ``--window`` as a live producer batches them: 1 to about
26 events a message) goes through the real sink (``ClickHouseSink``: routing each
fetch's messages together, validation, batches of ``SINK__BATCH_ROWS``, inserts with
their tokens) from an in-memory consumer into the embedded warehouse over HTTP, started
on a free port. For each mode of ``SINK__EVENT_ROWS`` (a fresh database each round,
modes taking turns so the machine's other load falls on all alike; the garbage
collector set as in the sink process): CPU µs per event of the sink routing (decoding,
validating, gathering), of the sink writing (columns, encoding, HTTP), and of
the warehouse process (parsing, storing; background merges included). Prints a table
and the load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import psutil
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.logs import tune_gc_for_throughput
from shiftright_server.infra.settings import ClickHouseSettings, Settings, SinkSettings
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.fast_lines import collector_paused
from shiftright_server.schemas.validation import Limits
from shiftright_server.sinks.clickhouse_sink import ClickHouseSink, SinkConfig
from shiftright_server.sinks.router import Router
from shiftright_server.sinks.warehouse import ClickHouseWarehouse

from bench.pipeline.events import BATCH_EVENTS, KINDS, PARTITIONS, generate, to_messages
from tests.fakes import FakeConsumer, FakeMessage, FakeTopicIds
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

MODES = get_args(SinkSettings.model_fields["event_rows"].annotation)
Log = dict[tuple[str, int], list[FakeMessage]]


@dataclass
class Cost:
    events: int = 0
    route: float = 0.0  # CPU seconds of the sink
    write: float = 0.0
    warehouse: float = 0.0
    stored: dict[str, int] = field(default_factory=dict)

    def per_event(self, seconds: float) -> float:
        return seconds / self.events * 1e6


def kafka_log(n: int, now: datetime, window: int = 0) -> tuple[Log, int]:
    """``n`` events as the bench's producers batch them, on the raw topics' partitions:
    messages of ``BATCH_EVENTS`` (as a backlog is drained), or with ``window``, each
    message the events of one kind and partition among ``window`` consecutive events (as
    a producer's linger batches them live)."""
    events = generate(n, now - timedelta(minutes=5), now, seed=7, advance=lambda _: None)
    records = [r for _, r in events]
    if window:
        chunks = [records[i : i + window] for i in range(0, len(records), window)]
        messages = [m for chunk in chunks for m in to_messages(chunk, window)]
    else:
        messages = to_messages(records, BATCH_EVENTS)
    log: Log = {}
    stamp = int(now.timestamp() * 1000)
    for kind, key, value, headers, _count in messages:
        topic = topics.EVENT_TOPICS[kind]
        partition = wire.partition_of(key, PARTITIONS)
        part = log.setdefault((topic, partition), [])
        part.append(FakeMessage(topic, partition, len(part), value, stamp, headers))
    return log, len(events)


def run_once(
    mode: str,
    log: Log,
    events: int,
    url: str,
    warehouse: psutil.Process,
    batch_rows: int,
    fetch: int,
) -> Cost:
    settings = Settings(
        namespace="",
        clickhouse=ClickHouseSettings(url=url, database=f"sb_{uuid.uuid4().hex[:8]}"),
        sink=SinkSettings(batch_rows=batch_rows),
    )
    apply_schema(settings)
    client = get_client(settings.clickhouse, database=settings.clickhouse.database)
    router = Router("", Limits(max_age=timedelta(days=1)), event_rows=mode)
    consumer = FakeConsumer(log)
    sink = ClickHouseSink(
        consumer,  # type: ignore[arg-type]  # FakeConsumer has the calls the sink makes on a Consumer
        ClickHouseWarehouse(client),
        router,
        SinkConfig(batch_rows=settings.sink.batch_rows, batch_seconds=3600),
        FakeTopicIds(),
    )
    consumer.subscribe(router.subscriptions, on_assign=sink._on_assign)
    cost, rows = Cost(events), settings.sink.batch_rows
    gc.collect()  # the set-up's garbage (schema, client) is not the sink's to collect
    house = warehouse.cpu_times()
    for batch in batches(consumer, rows):
        started = time.process_time()
        for i, message in enumerate(batch, 1):
            sink._handle(message)  # type: ignore[arg-type]  # a FakeMessage has a Message's calls
            if i % fetch == 0:
                sink._route_pending()  # as the sink's loop does after each fetch
        sink._route_pending()
        routed = time.process_time()
        with collector_paused():  # as the sink's loop writes a batch
            sink._flush()
        cost.route += routed - started
        cost.write += time.process_time() - routed
    after = warehouse.cpu_times()
    cost.warehouse = (after.user + after.system) - (house.user + house.system)
    cost.stored = dict(sink.stats.stored)
    client.command(f"DROP DATABASE {settings.clickhouse.database}")
    return cost


def batches(consumer: FakeConsumer, rows: int) -> Iterator[list[FakeMessage]]:
    """The messages of each batch the sink cuts at ``rows`` rows (whole messages)."""
    pending: list[FakeMessage] = []
    count = 0
    while messages := consumer.consume(num_messages=5000):
        for message in messages:
            pending.append(message)
            count += (message.value() or b"").count(b"\n") + 1
            if count >= rows:
                yield pending
                pending, count = [], 0
    if pending:
        yield pending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="of SINK__EVENT_ROWS")
    parser.add_argument(
        "--window",
        type=int,
        default=0,
        help="messages as a live producer batches them: each the events of one kind and "
        "partition among this many consecutive events (245: about 26 usage and 3 health "
        f"events a message, as live at 50,000/s); 0: messages of {BATCH_EVENTS}",
    )
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=SinkSettings().batch_rows,
        help="SINK__BATCH_ROWS (50000: a second's events live at 50,000/s)",
    )
    parser.add_argument(
        "--fetch",
        type=int,
        default=500,
        help="messages per fetch: the sink routes what it fetched together (live at "
        "50,000/s a fetch of up to 0.2 s holds hundreds)",
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    log, events = kafka_log(args.events, datetime.now(UTC), args.window)
    tune_gc_for_throughput()  # the collector's settings of the sink process
    with tempfile.TemporaryDirectory() as state:
        proc, url = start_warehouse(Path(state) / "data", free_port())
        try:
            house = psutil.Process(proc.pid)
            costs = {mode: Cost(0) for mode in modes}
            shape = (args.batch_rows, args.fetch)
            run_once(modes[0], log, events, url, house, *shape)  # warm-up: caches, JIT-free paths
            for _ in range(args.rounds):
                for mode in modes:
                    add(costs[mode], run_once(mode, log, events, url, house, *shape))
        finally:
            stop_warehouse(proc)
    report(costs, events, args.rounds)


def add(total: Cost, one: Cost) -> None:
    total.events += one.events
    total.route += one.route
    total.write += one.write
    total.warehouse += one.warehouse
    total.stored = one.stored


def report(costs: dict[str, Cost], events: int, rounds: int) -> None:
    kinds = ", ".join(KINDS)
    print(f"{events:,} events ({kinds}) x {rounds} rounds; CPU µs per event:")
    print(f"{'mode':<10}{'route':>8}{'write':>8}{'sink':>8}{'warehouse':>11}{'total':>8}")
    for mode, c in costs.items():
        sink = c.route + c.write
        print(
            f"{mode:<10}{c.per_event(c.route):>8.2f}{c.per_event(c.write):>8.2f}"
            f"{c.per_event(sink):>8.2f}{c.per_event(c.warehouse):>11.2f}"
            f"{c.per_event(sink + c.warehouse):>8.2f}"
        )
    print("stored per round:", {mode: c.stored for mode, c in costs.items()})
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
