"""``python -m bench.sink_lines``: what the sink would spend storing usage events as JSON
lines (the events' own bytes, the row's position spliced in) instead of Native columns.

    .venv/bin/python -m bench.sink_lines [--events 100000] [--rounds 3] [--messages 100]

An experiment beside the sink, not a way it stores: the bench's usage messages
(``bench.pipeline.events``, NDJSON messages of 200) go in batches of ``--messages``
messages into the embedded warehouse over HTTP, taking turns:

- *native*: the sink's router (the whole-message read) and its columns
  (:mod:`sinks.event_columns`), one column-oriented insert (Native);
- *lines*: the same whole-message read (it validates every line), then each line with
  ``_topic``, ``_partition``, ``_offset``, ``received_at``, ``_topic_id`` and ``_index``
  spliced in after its ``{``, one ``INSERT … FORMAT JSONEachRow`` (unknown keys such as
  ``kind`` skipped, RFC 3339 times, floats read exactly).

For each: CPU µs per event of this process (validating, building, encoding, HTTP) and of
the warehouse process. Then both ways store every message once more, and the rows they
stored are compared column by column (printed: equal or not). The garbage collector is
off while timing (a batch is freed between inserts). Prints the load average; asserts
nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from clickhouse_connect.driver.client import Client
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import ClickHouseSettings, Settings
from shiftright_server.schemas import wire
from shiftright_server.schemas.fast_events import Window
from shiftright_server.schemas.fast_lines import accept_message
from shiftright_server.schemas.positions import Position
from shiftright_server.schemas.validation import Limits
from shiftright_server.sinks.event_columns import MessageEvents, columns
from shiftright_server.sinks.router import Router
from shiftright_server.sinks.rows import COLUMNS

from bench.sink_batch import kafka_log
from tests.fakes import FakeMessage
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

TABLE, TOPIC = "events_usage", "events.usage.v1"
LIMITS = Limits(max_age=timedelta(days=1))
LINE_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "date_time_input_format": "best_effort",
    "precise_float_parsing": 1,
}
_INDEX = [b'"_index":%d,' % i for i in range(wire.MAX_BATCH_EVENTS + 1)]
Store = Callable[[Client, list[FakeMessage], str, str], int]


def native(client: Client, messages: list[FakeMessage], token: str, topic_id: str) -> int:
    router, chunks = Router("", LIMITS), []
    for m in messages:
        at = Position(m.topic(), m.partition(), m.offset())
        for routed in router.route(at, m.value(), m.headers(), m.timestamp()[1]):
            assert isinstance(routed, MessageEvents)
            chunks.append(routed)
    made = columns(TABLE, chunks)
    made.append([topic_id] * len(made[0]))
    names = [*COLUMNS[TABLE], "_topic_id"]
    settings = {"insert_deduplication_token": token}
    client.insert(TABLE, made, column_names=names, column_oriented=True, settings=settings)
    return len(made[0])


def json_lines(client: Client, messages: list[FakeMessage], token: str, topic_id: str) -> int:
    body: list[bytes] = []
    count = 0
    for m in messages:
        value, at_ms = m.value(), m.timestamp()[1]
        lines = wire.split_events(value, m.headers())
        read = accept_message(value, lines, "usage", Window.around(at_ms, LIMITS), LIMITS)
        assert read is not None and value is not None
        head = b'{"_topic":"%b","_partition":%d,"_offset":%d,"received_at":"%b",' % (
            m.topic().encode(),
            m.partition(),
            m.offset(),
            _clock(at_ms),
        )
        head += b'"_topic_id":"%b",' % topic_id.encode()
        spliced = [head + _INDEX[i] + (line or b"")[1:] for i, line in enumerate(lines)]
        body.append(b"\n".join(spliced))
        count += len(lines)
    settings = {**LINE_SETTINGS, "insert_deduplication_token": token}
    client.raw_insert(TABLE, insert_block=b"\n".join(body), settings=settings, fmt="JSONEachRow")
    return count


def _clock(ms: int) -> bytes:
    """``YYYY-MM-DD hh:mm:ss.fff`` in UTC."""
    at = datetime.fromtimestamp(ms // 1000, UTC)
    return b"%b.%03d" % (at.strftime("%Y-%m-%d %H:%M:%S").encode(), ms % 1000)


def measure(
    client: Client, house: psutil.Process, batches: list[list[FakeMessage]], rounds: int
) -> dict[str, list[float]]:
    """CPU seconds (this process, warehouse) and events per way, ways taking turns."""
    ways: dict[str, Store] = {"native": native, "lines": json_lines}
    totals = {name: [0.0, 0.0, 0.0] for name in ways}
    for r in range(rounds + 1):  # round 0 warms up
        order = list(ways) if r % 2 else list(reversed(ways))
        for name in order:
            for j, batch in enumerate(batches):
                before, started = house.cpu_times(), time.process_time()
                n = ways[name](client, batch, f"{name}-{r}-{j}", name)
                spent, after = time.process_time() - started, house.cpu_times()
                if r:
                    total = totals[name]
                    total[0] += n
                    total[1] += spent
                    total[2] += (after.user + after.system) - (before.user + before.system)
            gc.collect()
    return totals


def same_rows(client: Client, messages: list[FakeMessage]) -> bool:
    """Both ways store every message once more; do they store the same rows?"""
    client.command(f"TRUNCATE TABLE {TABLE}")
    native(client, messages, "same-native", "native")
    json_lines(client, messages, "same-lines", "lines")
    query = (
        f"SELECT * EXCEPT (_topic_id) FROM {TABLE} WHERE _topic_id = {{w:String}} "
        "ORDER BY _topic, _partition, _offset, _index"
    )
    stored = [client.query(query, parameters={"w": w}).result_rows for w in ("native", "lines")]
    return len(stored[0]) > 0 and stored[0] == stored[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=100, help="per batch")
    args = parser.parse_args()
    log, _ = kafka_log(args.events, datetime.now(UTC))
    usage = [m for (topic, _), part in log.items() if topic == TOPIC for m in part]
    batches = [usage[i : i + args.messages] for i in range(0, len(usage), args.messages)]
    print("load average at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    gc.disable()
    with tempfile.TemporaryDirectory() as state:
        proc, url = start_warehouse(Path(state) / "data", free_port())
        try:
            database = f"sl_{uuid.uuid4().hex[:8]}"
            settings = Settings(
                namespace="", clickhouse=ClickHouseSettings(url=url, database=database)
            )
            apply_schema(settings)
            client = get_client(settings.clickhouse, database=database)
            totals = measure(client, psutil.Process(proc.pid), batches, args.rounds)
            equal = same_rows(client, usage)
        finally:
            stop_warehouse(proc)
    report(totals, args, equal)


def report(totals: dict[str, list[float]], args: Any, equal: bool) -> None:
    print(
        f"usage events in batches of {args.messages} messages, {args.rounds} rounds; CPU µs/event:"
    )
    print(f"{'way':<8}{'sink':>8}{'warehouse':>11}{'both':>8}{'events':>10}")
    for name, (n, sink, house) in totals.items():
        per = 1e6 / n
        print(
            f"{name:<8}{sink * per:>8.2f}{house * per:>11.2f}{(sink + house) * per:>8.2f}{int(n):>10,}"
        )
    print("rows stored both ways equal:", equal)
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
