"""Insert throughput: clickhouse-connect over HTTP to the embedded warehouse versus
clickhouse-connect's in-process chDB backend, for the sink's shape of work
(20k-row columnar Native batches with a deduplication token, a 15-column table).

    .venv/bin/python bench/warehouse_insert.py [--rows 500000] [--batch 20000]

Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.warehouse_fixture import (  # noqa: E402  (after the path fix above)
    free_port,
    start_warehouse,
    stop_warehouse,
)

DDL = """
CREATE TABLE bench.events (
    event_id UUID, tenant LowCardinality(String), service LowCardinality(String),
    kind LowCardinality(String), ts DateTime64(3, 'UTC'), received DateTime64(3, 'UTC'),
    user_id String, session_id String, route String, status UInt16, duration_ms Float64,
    bytes UInt64, error Nullable(String), attrs Map(String, String), tags Array(String)
) ENGINE = MergeTree ORDER BY (tenant, service, ts)
SETTINGS non_replicated_deduplication_window = 1000
"""
COLUMNS = [
    "event_id",
    "tenant",
    "service",
    "kind",
    "ts",
    "received",
    "user_id",
    "session_id",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "error",
    "attrs",
    "tags",
]


ROUTES = ("orders", "users", "items")


def make_batch(rows: int, seed: int) -> list[list[Any]]:
    """One columnar batch of plausible events."""
    rnd = random.Random(seed)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ts = [base + dt.timedelta(milliseconds=rnd.randrange(86_400_000)) for _ in range(rows)]
    return [
        [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(rows)],
        [f"tenant-{rnd.randrange(20)}" for _ in range(rows)],
        [f"svc-{rnd.randrange(50)}" for _ in range(rows)],
        [rnd.choice(("usage", "error", "health")) for _ in range(rows)],
        ts,
        [t + dt.timedelta(milliseconds=rnd.randrange(2000)) for t in ts],
        [f"user-{rnd.randrange(100_000)}" for _ in range(rows)],
        [f"sess-{rnd.getrandbits(48):012x}" for _ in range(rows)],
        [f"/api/v1/{rnd.choice(ROUTES)}/{rnd.randrange(1000)}" for _ in range(rows)],
        [rnd.choice((200, 200, 200, 201, 404, 500)) for _ in range(rows)],
        [rnd.expovariate(1 / 40) for _ in range(rows)],
        [rnd.randrange(100, 100_000) for _ in range(rows)],
        [None if rnd.random() > 0.05 else "TimeoutError: upstream" for _ in range(rows)],
        [{"region": rnd.choice(("eu", "us")), "ver": str(rnd.randrange(5))} for _ in range(rows)],
        [["web"] if rnd.random() > 0.5 else ["web", "beta"] for _ in range(rows)],
    ]


def insert_all(client: Client, batches: list[list[list[Any]]], repeats: int) -> float:
    """Insert every batch ``repeats`` times (distinct tokens); return rows per second."""
    client.command("CREATE DATABASE IF NOT EXISTS bench")
    client.command("DROP TABLE IF EXISTS bench.events")
    client.command(DDL)
    rows = 0
    started = time.perf_counter()
    for r in range(repeats):
        for i, batch in enumerate(batches):
            token = f"bench-{r}-{i}"
            client.insert(
                "bench.events",
                batch,
                column_names=COLUMNS,
                column_oriented=True,
                settings={"insert_deduplication_token": token},
            )
            rows += len(batch[0])
    elapsed = time.perf_counter() - started
    count = client.command("SELECT count() FROM bench.events")
    if count != rows:
        print(f"  warning: table holds {count} rows, inserted {rows}")
    return rows / elapsed


def latency_ms(call: Callable[[], object], n: int = 300) -> float:
    for _ in range(20):
        call()
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best is kept")
    args = parser.parse_args()
    distinct = 5  # batches generated once, re-inserted with fresh tokens
    batches = [make_batch(args.batch, seed) for seed in range(distinct)]
    repeats = max(1, args.rows // (args.batch * distinct))
    total = repeats * distinct * args.batch
    print(f"{total} rows, 15 columns, batches of {args.batch}, columnar Native inserts,")
    print(f"best of {args.rounds} interleaved rounds (the machine may be shared)")

    with tempfile.TemporaryDirectory(prefix="bench-wh-") as tmp:
        proc, url = start_warehouse(Path(tmp) / "served", free_port())
        try:
            port = int(url.rsplit(":", 1)[1])
            clients: dict[str, Client] = {
                "in-process chdb://": clickhouse_connect.get_client(
                    dsn=f"chdb://{Path(tmp) / 'inproc'}"
                ),
                "HTTP compress=lz4": clickhouse_connect.get_client(
                    host="127.0.0.1", port=port, compress="lz4"
                ),
                "HTTP compress=off": clickhouse_connect.get_client(
                    host="127.0.0.1", port=port, compress=False
                ),
            }
            best = dict.fromkeys(clients, 0.0)
            for _ in range(args.rounds):
                for name, client in clients.items():
                    best[name] = max(best[name], insert_all(client, batches, repeats))
            latency = {
                name: min(latency_ms(partial(client.query, "SELECT 1")) for _ in range(3))
                for name, client in clients.items()
            }
        finally:
            stop_warehouse(proc)
    base = best["in-process chdb://"]
    for name, rate in best.items():
        ratio = rate / base
        print(
            f"{name:20s} {rate:>10,.0f} rows/s  ratio {ratio:.2f}  SELECT 1 {latency[name]:.2f} ms"
        )


if __name__ == "__main__":
    main()
