"""Where the warehouse's CPU goes for the sink's inserts: per materialized view, per
inserted table and per table's merges, from the engine's own logs.

    .venv/bin/python -m bench.warehouse_views [--events 1000000] [--rows 17000]
        [--rate 50000] [--variant NAME:SETTING=VALUE,...]

Starts the embedded warehouse with its query log, query views log and part log turned on
(the warehouse itself never logs: it costs CPU), applies the schema to a fresh database
and writes the bench's event mix in batches of ``--rows`` as ``bench.warehouse_batches``
does (one ``--variant`` of its syntax), paced at ``--rate``. Then prints, per event of
the run (µs of the engine's user and system CPU time, from each entry's
``ProfileEvents``):

- each materialized view's CPU, the rows it wrote and its CPU per insert;
- each insert statement's CPU by the table inserted (its views included);
- each table's merges: how many, the rows of the parts they wrote, their CPU and of it
  the column statistics built (``MergeTreeDataWriterStatisticsCalculationMicroseconds``).

The logs' own writing costs the warehouse CPU too, so the totals are above those of
``bench.warehouse_batches``; the split is what this bench is for. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from shiftright_server.infra.clickhouse import apply_schema, get_client
from shiftright_server.infra.settings import ClickHouseSettings, Settings
from shiftright_server.sinks.rows import COLUMNS
from shiftright_server.sinks.warehouse import ClickHouseWarehouse

from bench.warehouse_batches import (
    Variant,
    batches,
    merges_done,
    parse_variant,
    reshape,
    set_tables,
)
from tests.integration.warehouse_fixture import _pinged, free_port, stop_warehouse

#: The logs, added to the engine's configuration file by the warehouse this bench starts.
_LOGS = "".join(
    f"  <{name}><database>system</database><table>{name}</table>"
    f"<flush_interval_milliseconds>1000</flush_interval_milliseconds></{name}>\n"
    for name in ("query_log", "query_views_log", "part_log")
)

_LOGGED_WAREHOUSE = f"""
import sys
from shiftright_server.infra.warehouse import tuning
_text = tuning.config_text
tuning.config_text = lambda merge_tree=tuning.MERGE_TREE: _text(merge_tree).replace(
    "</clickhouse>", {_LOGS!r} + "</clickhouse>"
)
from shiftright_server.infra.warehouse.__main__ import main
main(sys.argv[1:])
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=17_000, help="rows per insert")
    parser.add_argument("--rate", type=float, default=50_000.0, help="events/s")
    parser.add_argument("--variant", default="", help="as bench.warehouse_batches' --variant")
    return parser.parse_args()


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True)
    log = (data_dir.parent / "warehouse.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOGGED_WAREHOUSE, "--data-dir", str(data_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 60
    while not _pinged(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_warehouse(proc)
            raise RuntimeError(f"the warehouse did not start; see {data_dir.parent}")
        time.sleep(0.2)
    return proc, url


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


_CPU = "ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds']"

_VIEWS = f"""
SELECT replaceOne(view_name, {{db:String}} || '.', '') AS view, count() AS runs,
       round(sum({_CPU}) / {{events:UInt64}}, 3) AS cpu_us_per_event,
       round(sum({_CPU}) / count() / 1000, 2) AS cpu_ms_per_run,
       sum(written_rows) AS rows_written
FROM system.query_views_log
WHERE startsWith(view_name, {{db:String}} || '.') AND event_time >= {{since:DateTime}}
GROUP BY view ORDER BY cpu_us_per_event DESC
"""

_TABLE = r"arrayElement(splitByChar('.', replaceAll(extract(query, 'INSERT INTO\s+([^\s(]+)'), '`', '')), -1)"

_INSERTS = f"""
SELECT {_TABLE} AS tbl,
       count() AS inserts, round(sum({_CPU}) / {{events:UInt64}}, 3) AS cpu_us_per_event,
       round(sum({_CPU}) / count() / 1000, 2) AS cpu_ms_per_insert, sum(written_rows) AS rows_written
FROM system.query_log
WHERE type = 'QueryFinish' AND query_kind = 'Insert' AND has(databases, {{db:String}})
  AND event_time >= {{since:DateTime}}
GROUP BY tbl ORDER BY cpu_us_per_event DESC
"""

_MERGES = f"""
SELECT table, count() AS merges, sum(rows) AS rows_written,
       round(sum({_CPU}) / {{events:UInt64}}, 3) AS cpu_us_per_event,
       round(sum(ProfileEvents['MergeTreeDataWriterStatisticsCalculationMicroseconds'])
             / {{events:UInt64}}, 3) AS statistics_us_per_event
FROM system.part_log
WHERE database = {{db:String}} AND event_type = 'MergeParts' AND event_time >= {{since:DateTime}}
GROUP BY table ORDER BY cpu_us_per_event DESC
"""


def run(url: str, proc: psutil.Process, args: argparse.Namespace, variant: Variant) -> None:
    database = f"wv{args.rows}"
    todo = batches(database, args.events, args.rows)
    events = sum(batch.row_count for batch in todo)
    settings = Settings(
        namespace=database, clickhouse=ClickHouseSettings(url=url, database=database)
    )
    apply_schema(settings)
    insert = {**variant.insert, "log_queries": "1", "log_query_views": "1"}
    client = get_client(settings.clickhouse, database=database, settings=insert, **variant.client)
    set_tables(client, database, variant.table)
    views = reshape(client, database, variant)
    time.sleep(1.0)  # the logs' times are whole seconds: the schema's statements before
    since = int(str(client.command("SELECT toUnixTimestamp(now())")))
    warehouse = ClickHouseWarehouse(client)
    cpu0, t0 = _cpu(proc), time.monotonic()
    for n, batch in enumerate(todo):
        time.sleep(max(0.0, t0 + n * args.rows / args.rate - time.monotonic()))
        for table, columns in batch.tables():
            names = (*COLUMNS[table], "_topic_id")
            warehouse.insert(table, [*columns, ["x"] * len(columns[0])], names, f"{table}:{n}")
    merges_done(client)
    cpu = _cpu(proc) - cpu0
    client.command("SYSTEM FLUSH LOGS")
    print(
        f"variant {variant.name!r}: {events:,} events in {len(todo)} batches of {args.rows:,}"
        f" rows at {args.rate:,.0f}/s, {views} views; the warehouse (its logs included)"
        f" {cpu / events * 1e6:.1f} µs of CPU per event, merges included"
    )
    params: dict[str, Any] = {"db": database, "events": events, "since": since}
    for title, sql in (("views", _VIEWS), ("inserts", _INSERTS), ("merges", _MERGES)):
        result = client.query(sql, parameters=params)
        print(f"\n{title}: " + " · ".join(result.column_names))
        for row in result.result_rows:
            print("  " + "  ".join(str(v) for v in row))
    client.command(f"DROP DATABASE {database} SYNC")


def main() -> None:
    args = parse_args()
    data = Path(tempfile.mkdtemp(prefix="warehouse-views-"))
    server, url = start(data / "data")
    try:
        run(url, psutil.Process(server.pid), args, parse_variant(args.variant))
    finally:
        stop_warehouse(server)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
