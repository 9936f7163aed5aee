"""``python -m bench.error_analytics``: how fast errors go through the error path.

1. *in process*: the steps of the error path (the rollup processor's validation, rollup
   and re-key, then ``streams.error_flow``'s health join + grouping and group counting)
   on simulated errors and health, batches of 500: µs per error.
2. *drain*: ``--errors`` simulated errors (plus their hosts' health over the same 10
   minutes) are preloaded into Kafka; then the stream worker and the sink start, and the
   clock runs until every error is a row of ``errors_grouped`` and counted in
   ``error_groups`` (and, for comparison, until the raw ``events_error`` rows are in).

Starts a broker and the embedded warehouse in a temp dir (the integration fixtures).
Prints figures; asserts nothing.

    .venv/bin/python -m bench.error_analytics [--errors 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shiftright_server.producers.simulator import Simulator

END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
START = END - timedelta(minutes=10)


def traffic(errors: int) -> list[dict[str, Any]]:
    sim = Simulator(seed=5)
    health = [e for e in sim.tick(START, 600) if e["kind"] == "health"]
    out = sim.generate("error", errors, START, END) + health
    out.sort(key=lambda e: e["ts"])
    return out


def in_process(events: list[dict[str, Any]]) -> dict[str, float]:
    from shiftright_server.schemas.validation import Limits
    from shiftright_server.streams.error_flow import Attach, Group
    from shiftright_server.streams.grouping import Grouper
    from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
    from shiftright_server.streams.processor import Processor, Record

    ms = int(datetime.now(UTC).timestamp() * 1000)
    errors = [e for e in events if e["kind"] == "error"]
    raw = [
        Record("events.error.v1", 0, i, json.dumps(e).encode(), ms) for i, e in enumerate(errors)
    ]
    health = [json.dumps(e).encode() for e in events if e["kind"] == "health"]
    rekey = Processor({"events.error.v1": "error"}, Limits(), 60, 300, rekey_errors=True)
    attach = Attach(AttachStage(Grouper()), "h", Limits())
    group = Group(GroupStage(), "c")
    timings = {"rekey": 0.0, "attach": 0.0, "group": 0.0}
    t = time.perf_counter()
    byhost = []
    for i in range(0, len(raw), 500):
        byhost += rekey.process(raw[i : i + 500]).byhost
        rekey.state(("events.error.v1", 0)).dumps()
    timings["rekey"] = time.perf_counter() - t
    stream = [Record("h", 0, i, v, ms) for i, v in enumerate(health)]
    stream += [Record("b", 0, i, v, 0, h) for i, (_, v, h) in enumerate(byhost)]
    stream.sort(key=lambda r: r.offset)
    t, grouped = time.perf_counter(), []
    for i in range(0, len(stream), 500):
        grouped += attach.process(stream[i : i + 500]).grouped
        attach.dumps(0)
    grouped += attach.flush(0).grouped
    timings["attach"] = time.perf_counter() - t
    recs = [Record("g", 0, i, g.model_dump_json().encode(), 0) for i, g in enumerate(grouped)]
    t = time.perf_counter()
    for i in range(0, len(recs), 500):
        out = group.process(recs[i : i + 500])
        for gid in out.changed_groups.get(0, ()):
            group.group_state(0, gid)
        group.dumps(0)
    timings["group"] = time.perf_counter() - t
    return {k: v / len(errors) * 1e6 for k, v in timings.items()}


def drain(events: list[dict[str, Any]], errors: int, root: Path) -> dict[str, float]:
    from shiftright_server.infra.clickhouse import apply_schema, get_client
    from shiftright_server.infra.kafka.topics import create_topics
    from shiftright_server.infra.ops.supervisor import Supervisor, python_components
    from shiftright_server.infra.settings import ClickHouseSettings, KafkaSettings, Settings
    from shiftright_server.producers.emitter import Emitter

    from tests.integration.kafka_fixture import start_kafka, stop_kafka
    from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

    launcher = start_kafka(root / "kafka")
    proc, url = start_warehouse(root / "warehouse", free_port())
    ns = f"b{uuid.uuid4().hex[:8]}"
    settings = Settings(
        state_dir=root / "state",
        namespace=ns,
        kafka=KafkaSettings(bootstrap=launcher.bootstrap),
        clickhouse=ClickHouseSettings(url=url, database=ns),
    )
    sup = Supervisor(settings)
    try:
        create_topics(settings)
        apply_schema(settings)
        emitter = Emitter(launcher.bootstrap, ns)
        for i in range(0, len(events), 2000):
            emitter.emit_many(events[i : i + 2000])
            emitter.poll(0)
        assert emitter.flush(120) == 0
        client = get_client(settings.clickhouse, database=ns)
        comps = python_components(settings)
        started = time.monotonic()
        sup.start(comps["streams"])
        sup.start(comps["sink"])
        raw_done = grouped_done = 0.0
        while time.monotonic() - started < 900 and not grouped_done:
            time.sleep(0.5)
            now = time.monotonic() - started
            if (
                not raw_done
                and client.query("SELECT count() FROM events_error").result_rows[0][0] >= errors
            ):
                raw_done = now
            counted = client.query("SELECT sum(count) FROM error_groups FINAL").result_rows[0][0]
            rows = client.query("SELECT count() FROM errors_grouped").result_rows[0][0]
            if counted >= errors and rows >= errors:
                grouped_done = now
        return {"raw_s": raw_done, "grouped_s": grouped_done}
    finally:
        for name in ("sink", "streams"):
            sup.stop(name, timeout=20)
        stop_warehouse(proc)
        stop_kafka(launcher)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--errors", type=int, default=20_000)
    args = parser.parse_args()
    events = traffic(args.errors)
    cost = in_process(events)
    print(
        f"in process, µs per error: validate+rollup+re-key {cost['rekey']:.0f} · attach+group "
        f"{cost['attach']:.0f} · count {cost['group']:.0f} · total {sum(cost.values()):.0f} "
        f"(≈ {1e6 / sum(cost.values()):,.0f} errors/s on one core)"
    )
    with tempfile.TemporaryDirectory(prefix="shiftright-bench-") as tmp:
        took = drain(events, args.errors, Path(tmp))
    health = len(events) - args.errors
    print(
        f"drain of {args.errors:,} errors (+{health:,} health events) preloaded: raw rows in "
        f"{took['raw_s']:.1f} s; grouped and counted in {took['grouped_s']:.1f} s "
        f"= {args.errors / max(took['grouped_s'], 1e-9):,.0f} errors/s end to end"
    )


if __name__ == "__main__":
    main()
