"""``python -m bench.pipeline``: arguments, the run from start to report, the figures file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

import bench.pipeline
from bench.pipeline.context import REPO, RESULTS, Context, PhaseFailed
from bench.pipeline.engines import EngineCounters, summary
from bench.pipeline.events import KINDS, PROBES_PER_SECOND, generate, with_probes
from bench.pipeline.monitor import Monitor, resources
from bench.pipeline.phases import run_system, warm_up
from bench.pipeline.producer import produce_main
from bench.pipeline.report import cpu_per_event, report
from bench.pipeline.services import Services, start_services
from bench.pipeline.systems import Baseline, Full, PerEvent, RawBaseline, System, sink_options

#: The systems a run can measure, by label, in the order they run.
SYSTEMS: dict[str, type[System]] = {
    cls.label: cls for cls in (RawBaseline, Baseline, PerEvent, Full)
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=(bench.pipeline.__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=None, help="drain phase size (300000)")
    parser.add_argument("--rate", type=float, default=None, help="live events/s (20000)")
    parser.add_argument("--seconds", type=float, default=None, help="live phase length (30)")
    parser.add_argument("--quick", action="store_true", help="small numbers for a smoke run")
    parser.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="use this broker instead of starting one"
    )
    parser.add_argument("--clickhouse", metavar="URL", help="use this ClickHouse HTTP URL")
    parser.add_argument(
        "--only",
        default=",".join(SYSTEMS),
        help=f"the systems to run, comma-separated, in this order: {','.join(SYSTEMS)}",
    )
    parser.add_argument(
        "--stall", type=float, default=90.0, help="give up after this long without new rows"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the state dir, databases and topics"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--batch-events",
        type=int,
        default=200,
        help="events per Kafka message (NDJSON batches); 1 = one event per message",
    )
    parser.add_argument(
        "--sink-batch-rows",
        type=int,
        default=None,
        help="SINK__BATCH_ROWS for every system (the setting's default otherwise)",
    )
    parser.add_argument(
        "--sink-batch-seconds",
        type=float,
        default=None,
        help="SINK__BATCH_SECONDS for every system (the setting's default otherwise)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="stream workers of the full pipeline, each a process in the worker's consumer "
        "group (STREAMS__WORKERS; 1 otherwise)",
    )
    parser.add_argument(
        "--sinks",
        type=int,
        default=None,
        help="sinks of the full pipeline, each a process in the sink's consumer group "
        "(SINK__INSTANCES; 1 otherwise)",
    )
    parser.add_argument(
        "--producer-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a confluent-kafka setting of the live phase's producer over the emitter's "
        "producer_config (repeatable), e.g. linger.ms=100",
    )
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the practice run that warms the broker up"
    )
    args = parser.parse_args(argv)
    args.only = [label.strip() for label in args.only.split(",") if label.strip()]
    unknown = set(args.only) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; known: {', '.join(SYSTEMS)}")
    quick = {"events": 20_000, "rate": 2_000.0, "seconds": 8.0}
    full = {"events": 300_000, "rate": 20_000.0, "seconds": 30.0}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_produce"]:
        produce_main(argv[1:])
        return
    args = parse_args(argv)
    from shiftright_server.infra.logs import configure_logging

    configure_logging("WARNING")
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 132))
    try:
        results = run(args, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; everything started was stopped[/]")
        sys.exit(130)
    except PhaseFailed as exc:
        console.print(f"[red]benchmark failed:[/] {escape(str(exc))}")
        sys.exit(1)
    report(console, results)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"pipeline-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"figures written to {path.relative_to(REPO)}")


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="shiftright-bench-"))
    monitor = Monitor()
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        contextlib.ExitStack() as stack,
        Progress(*columns, console=console, transient=True) as progress,
    ):
        stack.callback(_remove_root, root, args.keep, console)
        services = start_services(args, root, stack, progress)
        monitor.watch("bench", os.getpid())
        for name, pid in services.pids.items():
            monitor.watch(name, pid)
        if "kafka" in services.pids and Path("/proc").is_dir():
            monitor.watch("kafka JIT", services.pids["kafka"], part=True)
        monitor.start()
        stack.callback(monitor.close)
        engines = EngineCounters(
            services.clickhouse, services.pids.get("kafka"), services.pids.get("warehouse")
        )
        stack.callback(engines.close)
        ctx = _prepare_events(args, services, root, monitor, progress, console, engines)
        results: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(),
            "params": _params(args, ctx),
        }
        if not args.no_warmup:
            results["warm_up"] = warm_up(ctx, stack)
        results["systems"] = {}
        for label, cls in SYSTEMS.items():
            if label in args.only:
                namespace = f"bench{uuid.uuid4().hex[:8]}{label[0]}"
                system = cls(services, root, namespace, sink_options(args))
                results["systems"][cls.label] = run_system(ctx, system, stack)
        results["resources"] = resources(monitor)
        results["cpu_us_per_event"] = cpu_per_event(results)
        results["engines"] = engine_figures(results, engines)
        results["total_seconds"] = round(time.monotonic() - began, 1)
        results["load_average_at_end"] = os.getloadavg()
    return results


def _prepare_events(
    args: argparse.Namespace,
    services: Services,
    root: Path,
    monitor: Monitor,
    progress: Progress,
    console: Console,
    engines: EngineCounters,
) -> Context:
    n_live = int(args.rate * args.seconds)
    task = progress.add_task("Generating and serializing events", total=args.events + n_live)
    now = datetime.now(UTC).replace(microsecond=0)
    advance: Callable[[int], None] = lambda k: progress.advance(task, k)  # noqa: E731
    drain_events = generate(
        args.events, now - timedelta(minutes=11), now - timedelta(minutes=6), args.seed, advance
    )
    live_events = generate(
        n_live, now - timedelta(minutes=6), now - timedelta(minutes=1), args.seed + 1, advance
    )
    records, probes = with_probes(live_events, max(1, round(args.rate / PROBES_PER_SECOND)))
    live_file = root / "live-events.pickle"
    with live_file.open("wb") as fh:
        pickle.dump({"records": records, "probes": probes}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    progress.remove_task(task)
    drain_records = [r for _, r in drain_events]
    size = sum(len(r[2]) for r in drain_records) / max(1, len(drain_records))
    console.print(
        f"[green]✓[/] {len(drain_records):,} drain + {n_live:,} live events "
        f"({len(probes)} probes), {size:.0f} B on average"
    )
    return Context(
        args,
        services,
        root,
        monitor,
        progress,
        console,
        drain_records,
        live_file,
        len(probes),
        engines,
    )


def _params(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from shiftright_server.infra.settings import SinkSettings

    options = sink_options(args)
    workers = options.pop("workers", 1)
    sink = SinkSettings(**options)
    kinds = [0, 0, 0, 0]
    for kind, _, _ in ctx.drain_records:
        kinds[kind] += 1
    return {
        "events": args.events,
        "rate": args.rate,
        "seconds": args.seconds,
        "quick": args.quick,
        "batch_events": args.batch_events,
        "mix": dict(zip(KINDS, kinds, strict=True)),
        "probes": ctx.probe_count,
        "batch_rows": sink.batch_rows,
        "batch_seconds": sink.batch_seconds,
        "workers": workers,
        "sinks": sink.instances,
        "external_services": ctx.services.external,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def engine_figures(results: dict[str, Any], engines: EngineCounters) -> dict[str, Any]:
    """Per phase tag: the warehouse's and the broker's own counters, per second and per
    event (see :mod:`bench.pipeline.engines`)."""
    out: dict[str, Any] = {"notes": engines.notes, "counters": engines.deltas, "phases": {}}
    for tag, deltas in engines.deltas.items():
        system, phase = tag.split(".")
        run = results["systems"].get(system, {}).get(phase)
        if not run:
            continue
        events = run["events"] if phase == "drain" else run["delivered"]
        seconds = results["resources"]["wall"].get(tag, 0.0)
        out["phases"][tag] = summary(deltas, max(1, events), seconds)
    return out


def _remove_root(root: Path, keep: bool, console: Console) -> None:
    if keep:
        console.print(f"state kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
