"""The warehouse's cost per event for the sink's inserts into the real schema (the usage
table's chain of materialized views included), by rows per insert.

    .venv/bin/python -m bench.warehouse_batches [--events 200000] [--rows 10000,20000,50000]
        [--rate 50000] [--variant NAME:SETTING=VALUE,... ...] [--repeat 2] [--settle 40]

Starts the embedded warehouse, and per batch size applies the schema to a fresh database,
then writes the bench's event mix (``bench.pipeline.events``) through the sink's own
routing and ``ClickHouseWarehouse.insert`` in batches of the given rows, one batch after
another, or paced at ``--rate`` events a second as a sink at the head of its topics
writes them. It prints per batch size the warehouse process's CPU per event while
inserting and until its merges are done (and of it the kernel's, with the minor page
faults; and by thread group, :mod:`bench.pipeline.threads`), inserts, parts written and
merges (``system.events``). Each ``--variant`` runs every batch size again with its own
settings, in turn with the others: ``insert.NAME=VALUE`` for a setting sent with every
insert, ``NAME=VALUE`` for a MergeTree setting of every table of the fresh database
(``ALTER TABLE … MODIFY SETTING``), ``client.NAME=VALUE`` for an argument of the
client's ``get_client`` (``client.compress=False``), ``drop=PATTERN|PATTERN…`` to drop the
materialized views whose names are ``LIKE`` a pattern (what the others cost the inserts),
``sql=PATH`` to run a file's statements (``{db}`` the database, ``;`` between them) after
the schema, as a migration not yet in it would. ``--repeat`` runs the variants in turn
that many times; ``--settle`` waits after each run's database is dropped (on ext4
without a journal, creating a file scans the inodes freed in the last half minute, or
longer while their blocks are unwritten, so a
run right after a drop pays for the files the drop deleted). With the warehouse's figures it
prints the bench's own CPU per event while inserting: the sink's encoding and sending.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import ClickHouseSettings, Settings
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.positions import Position
from shiftright_server.sinks.batch import Batch
from shiftright_server.sinks.event_columns import MessageEvents
from shiftright_server.sinks.router import Router, Row
from shiftright_server.sinks.rows import COLUMNS
from shiftright_server.sinks.warehouse import ClickHouseWarehouse

from bench.pipeline import threads
from bench.pipeline.engines import WAREHOUSE_EVENTS
from bench.pipeline.events import generate, to_messages
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rows", default="10000,20000,50000", help="rows per insert, a list")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="events/s: start batch n no earlier than n × rows / rate seconds in, as a sink "
        "at the head of its topics cuts them (default: one after another)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every variant this many times, in turn (A B A B …)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after each run's database is dropped: the files it deleted "
        "make creating files dearer for a while on some file systems (ext4 without a "
        "journal), which the next run would pay for",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:SETTING=VALUE,... (insert.X for an insert setting, else a table setting); "
        "repeat to compare (default: the schema and settings as they are)",
    )
    return parser.parse_args()


@dataclass(frozen=True)
class Variant:
    """A name, the settings sent with every insert, the MergeTree settings of every table,
    the client's arguments, the views to drop and the SQL files to run after the schema."""

    name: str
    insert: dict[str, str]
    table: dict[str, str]
    client: dict[str, str | bool]
    drop: tuple[str, ...] = ()
    sql: tuple[str, ...] = ()


def parse_variant(text: str) -> Variant:
    """``NAME:insert.a=1,b=2,client.c=3,drop=%_mv,sql=x.sql`` → insert setting ``a``,
    table setting ``b``, clickhouse-connect's ``get_client`` argument ``c``, the views
    ``LIKE '%_mv'`` dropped, ``x.sql`` run after the schema."""
    name, _, pairs = text.partition(":")
    insert: dict[str, str] = {}
    table: dict[str, str] = {}
    client: dict[str, str | bool] = {}
    drop: list[str] = []
    sql: list[str] = []
    for pair in filter(None, pairs.split(",")):
        key, _, value = pair.partition("=")
        if key == "drop":
            drop.extend(filter(None, value.split("|")))
        elif key == "sql":
            sql.append(value)
        elif key.startswith("insert."):
            insert[key.removeprefix("insert.")] = value
        elif key.startswith("client."):
            client[key.removeprefix("client.")] = {"True": True, "False": False}.get(value, value)
        else:
            table[key] = value
    return Variant(name or "as is", insert, table, client, tuple(drop), tuple(sql))


def reshape(client: Any, database: str, variant: Variant) -> int:
    """Run the variant's SQL files and drop its views; the views left on the database."""
    for path in variant.sql:
        text = Path(path).read_text().replace("{db}", database)
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
        for statement in filter(None, (s.strip() for s in "\n".join(lines).split(";"))):
            client.command(statement)
    for pattern in variant.drop:
        views = client.query(
            "SELECT name FROM system.tables WHERE database = {d:String}"
            " AND engine = 'MaterializedView' AND name LIKE {p:String}",
            parameters={"d": database, "p": pattern},
        ).result_rows
        for (view,) in views:
            client.command(f"DROP VIEW {database}.{view} SYNC")
    return int(
        client.command(
            "SELECT count() FROM system.tables WHERE database = {d:String}"
            " AND engine = 'MaterializedView'",
            parameters={"d": database},
        )
    )


def set_tables(client: Any, database: str, table_settings: dict[str, str]) -> None:
    """Give every MergeTree table of ``database`` the settings."""
    if not table_settings:
        return
    listed = ", ".join(f"{k} = {v}" for k, v in table_settings.items())
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = {d:String} AND engine LIKE '%MergeTree'",
        parameters={"d": database},
    ).result_rows
    for (table,) in tables:
        client.command(f"ALTER TABLE {database}.{table} MODIFY SETTING {listed}")


def batches(namespace: str, events: int, rows: int) -> list[Batch]:
    """The bench's events as the sink batches them: ``rows`` events per batch."""
    now = datetime.now(UTC)
    records = [r for _, r in generate(events, now - timedelta(minutes=11), now, 7, lambda _: None)]
    router = Router(namespace, Settings().streams.limits())
    names = [topics.named(t, namespace) for t in topics.EVENT_TOPICS]
    out: list[Batch] = [Batch()]
    sent_ms = int(time.time() * 1000)
    for offset, (kind, _key, value, headers, _n) in enumerate(
        to_messages(records, wire.MAX_BATCH_EVENTS)
    ):
        if out[-1].row_count >= rows:
            out.append(Batch())
        batch = out[-1]
        batch.cover(names[kind], 0, offset)
        for item in router.route(Position(names[kind], 0, offset), value, headers, sent_ms):
            if isinstance(item, MessageEvents):
                batch.add_events(item)
            elif isinstance(item, Row):
                batch.add(item.table, item.values)
    return out


def counters(url: str) -> dict[str, int]:
    names = ", ".join(f"'{n}'" for n in WAREHOUSE_EVENTS)
    sql = f"SELECT event, value FROM system.events WHERE event IN ({names}) FORMAT JSONEachRow"
    with urllib.request.urlopen(f"{url}/?{urllib.parse.urlencode({'query': sql})}") as reply:
        rows = [json.loads(line) for line in reply.read().splitlines() if line]
    return {str(r["event"]): int(r["value"]) for r in rows}


def merges_done(client: Any, deadline_s: float = 120.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if int(client.command("SELECT count() FROM system.merges")) == 0:
            return
        time.sleep(0.2)


def run_batches(
    url: str,
    proc: psutil.Process,
    rows: int,
    todo: list[Batch],
    rate: float | None,
    variant: Variant,
) -> dict[str, Any]:
    """The batches (of ``rows`` events each) into a fresh database."""
    namespace = _namespace(rows)
    events = sum(batch.row_count for batch in todo)
    settings = Settings(
        namespace=namespace, clickhouse=ClickHouseSettings(url=url, database=namespace)
    )
    apply_schema(settings)
    ch = settings.clickhouse
    client = get_client(ch, database=namespace, settings=dict(variant.insert), **variant.client)
    set_tables(client, namespace, variant.table)
    views = reshape(client, namespace, variant)
    warehouse = ClickHouseWarehouse(client)
    me = psutil.Process()
    before, cpu0, t0, own0 = counters(url), _cpu(proc), time.monotonic(), _cpu(me)
    threads0 = threads.snapshot(proc.pid, "warehouse") or {}
    for n, batch in enumerate(todo):
        if rate:
            time.sleep(max(0.0, t0 + n * rows / rate - time.monotonic()))
        for table, columns in batch.tables():
            names = (*COLUMNS[table], "_topic_id")
            ids = ["x"] * len(columns[0])
            warehouse.insert(table, [*columns, ids], names, f"{table}:{n}")
    inserted, inserted_s = _cpu(proc) - cpu0, time.monotonic() - t0
    own = _cpu(me) - own0
    merges_done(client)
    after, done = counters(url), _cpu(proc) - cpu0
    threads1 = threads.snapshot(proc.pid, "warehouse") or {}
    by_thread = {k: v - threads0.get(k, 0) for k, v in threads1.items()}
    client.command(f"DROP DATABASE {namespace} SYNC")
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "variant": variant.name,
        "rows": rows,
        "batches": len(todo),
        "views": views,
        "insert µs/event": round(inserted.seconds / events * 1e6, 1),
        "with merges µs/event": round(done.seconds / events * 1e6, 1),
        "of it system µs/event": round(done.system / events * 1e6, 1),
        "page faults/event": round(done.faults / events, 2),
        "insert wall s": round(inserted_s, 2),
        "client µs/event": round(own.seconds / events * 1e6, 1),
        "inserts": delta.get("InsertQuery", 0),
        "parts written": delta.get("MergeTreeDataWriterBlocks", 0),
        "merges": delta.get("Merge", 0),
        "merge ms": delta.get("MergeTotalMilliseconds", 0),
        "by thread": threads.per_event(by_thread, events),
    }


def _namespace(rows: int) -> str:
    return f"wb{rows}x{os.getpid()}"


@dataclass(frozen=True)
class _Usage:
    """CPU seconds (all, of them in the kernel) and minor page faults of a process."""

    seconds: float
    system: float
    faults: int

    def __sub__(self, other: _Usage) -> _Usage:
        return _Usage(
            self.seconds - other.seconds, self.system - other.system, self.faults - other.faults
        )


def _cpu(proc: psutil.Process) -> _Usage:
    t = proc.cpu_times()
    # /proc/PID/stat field 10 (minflt): the kernel mapping fresh pages, madvise/munmap's price
    stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return _Usage(float(t.user + t.system), float(t.system), int(stat[7]))


def main() -> None:
    args = parse_args()
    data = Path(tempfile.mkdtemp(prefix="warehouse-batches-"))
    server, url = start_warehouse(data / "data", free_port())
    try:
        proc = psutil.Process(server.pid)
        print(f"load average at the start: {os.getloadavg()}")
        variants = [parse_variant(v) for v in args.variant] or [parse_variant("")]
        for rows in (int(r) for r in args.rows.split(",")):
            todo = batches(_namespace(rows), args.events, rows)
            for _ in range(args.repeat):
                for variant in variants:
                    print(run_batches(url, proc, rows, todo, args.rate, variant), flush=True)
                    time.sleep(args.settle)
        print(f"load average at the end: {os.getloadavg()}")
    finally:
        stop_warehouse(server)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
