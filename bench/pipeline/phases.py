"""Measurement: a system's run — drain, live, and the stream worker settling — and the warm-up."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import time
import uuid
from typing import Any

from bench.pipeline.context import Context
from bench.pipeline.live import live
from bench.pipeline.producer import preload
from bench.pipeline.services import progress_step
from bench.pipeline.systems import Full, Practice, System, check, sink_options

#: The practice run's live phase at most (the JIT settled within ~40 s of the drain's start).
WARM_UP_LIVE_SECONDS = 30.0


def warm_up(ctx: Context, stack: contextlib.ExitStack) -> dict[str, Any]:
    """A practice run of the full pipeline (drain, then the live phase) in a scratch
    namespace, dropped afterwards; the measured runs come after it.

    A fresh broker's JIT compiler threads take up to a core while the pipeline's request
    mix (hundreds of produce and fetch requests a second from three clients) is new to
    it: measured here, 0.5 cores of the broker's 0.67 in a live phase right after a start,
    settling after ~40 s to ~0.25 cores in all. A long-running broker has paid that once,
    so without this the first system measured would pay for a start-up cost. The table's
    "kafka JIT" row shows what the compiler still used during each measured phase.
    """
    namespace = f"benchwarmup{uuid.uuid4().hex[:6]}"
    system = Practice(ctx.services, ctx.root, namespace, sink_options(ctx.args))
    began = time.monotonic()
    live_s = min(ctx.args.seconds, WARM_UP_LIVE_SECONDS)
    practice = dataclasses.replace(
        ctx, args=argparse.Namespace(**{**vars(ctx.args), "seconds": live_s})
    )
    result = run_system(practice, system, stack, settle=False)
    took = time.monotonic() - began
    ctx.console.print(
        f"[green]✓[/] warm-up: a practice run of the full pipeline took "
        f"{took:.0f}s (not part of the figures below)"
    )
    return {"seconds": round(took, 1), **result}


def run_system(
    ctx: Context, system: System, stack: contextlib.ExitStack, settle: bool = True
) -> dict[str, Any]:
    """Prepare, drain, live (and for the full pipeline, unless not ``settle``, the time its
    stream worker needs to finish); the consumers are stopped (and the data dropped) on
    the way out."""
    result: dict[str, Any] = {}
    with progress_step(
        ctx.progress, f"{system.label}: topics and schema in namespace {system.namespace}"
    ):
        system.prepare()
    task = ctx.progress.add_task(f"{system.label}: preloading", total=len(ctx.drain_records))
    preload(
        ctx.services.bootstrap,
        system.namespace,
        ctx.drain_records,
        lambda k: ctx.progress.advance(task, k),
        ctx.args.batch_events,
    )
    ctx.progress.remove_task(task)
    with contextlib.ExitStack() as running:
        running.callback(_stop_system, ctx, system)
        stack.callback(_stop_system, ctx, system)  # on Ctrl-C, too
        drain_tag, live_tag = f"{system.label}.drain", f"{system.label}.live"
        with ctx.engines.tag(drain_tag), ctx.monitor.tag(drain_tag):
            result["drain"] = drain(ctx, system)
            if isinstance(system, Full):  # the live phase starts on a system at rest
                result["drain"]["worker_done_after_s"] = drain_settle(ctx, system)
        with ctx.engines.tag(live_tag), ctx.monitor.tag(live_tag):
            result["live"] = live(ctx, system)
        if settle and isinstance(system, Full):  # timed from the moment the last raw row was in
            last_row = time.monotonic()
            result["worker"] = worker_settle(ctx, system, result, last_row)
            result["errors"] = errors_settle(ctx, system, last_row)
        result["counters"] = system.counters()
    if not ctx.args.keep:
        system.drop()
    return result


def _stop_system(ctx: Context, system: System) -> None:
    system.stop()
    for name in system.alive():
        ctx.monitor.unwatch(name)


def drain(ctx: Context, system: System) -> dict[str, Any]:
    total = len(ctx.drain_records)
    task = ctx.progress.add_task(f"{system.label}: drain: rows queryable", total=total)
    began = system.started_at = time.monotonic()
    for name, pid in system.start().items():
        ctx.monitor.watch(name, pid, fresh=True)
    first: tuple[float, int] | None = None
    last_change, last_count = began, -1
    while True:
        count, now = system.count(), time.monotonic()
        ctx.progress.update(task, completed=count)
        if count > 0 and first is None:
            first = (now, count)
        if count >= total:
            break
        if count != last_count:
            last_change, last_count = now, count
        check(system, now - last_change, ctx.args.stall)
        time.sleep(max(0.0, 0.25 - (time.monotonic() - now)))
    ctx.progress.remove_task(task)
    seconds = now - began
    out: dict[str, Any] = {
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_s": round(total / seconds),
        "first_rows_after_s": None,
        "steady_events_per_s": None,
    }
    if first is not None and now > first[0]:
        out["first_rows_after_s"] = round(first[0] - began, 2)
        out["steady_events_per_s"] = round((total - first[1]) / (now - first[0]))
    out["group_lag_at_end"] = system.lags()
    ctx.console.print(
        f"[green]✓[/] {system.label}: drained {total:,} events in {seconds:.1f}s "
        f"→ {out['events_per_s']:,} events/s"
    )
    return out


def _worker_lag(ctx: Context, system: Full, began: float, limit_s: float, what: str) -> int:
    """Wait until the stream workers' group has committed every raw message, or
    ``limit_s`` after ``began``; the lag left (0: done)."""
    task = ctx.progress.add_task(f"{system.label}: {what}", total=None)
    while True:
        lag = system.lags().get("streams", 0)
        if lag == 0 or time.monotonic() - began > limit_s:
            break
        check(system, 0.0, math.inf)
        time.sleep(0.25)
    ctx.progress.remove_task(task)
    return lag


def drain_settle(ctx: Context, system: Full, limit_s: float = 180.0) -> float | None:
    """After the drain's last row: how long until the stream workers have committed the
    drain too. The drain phase's CPU figures run until then, so the backlog the workers
    still hold is charged to the drain, not to the live phase that follows."""
    began = time.monotonic()
    lag = _worker_lag(ctx, system, began, limit_s, "stream worker finishing the drain")
    waited = time.monotonic() - began
    if lag:
        ctx.console.print(
            f"[yellow]![/] {system.label}: the stream worker was still {lag:,} messages "
            f"behind {limit_s:.0f}s after the drain's last row; the live phase starts anyway"
        )
        return None
    ctx.console.print(
        f"[green]✓[/] {system.label}: the stream worker had the drain {waited:.1f}s after its "
        "last row"
    )
    return round(waited, 2)


def worker_settle(
    ctx: Context, system: Full, result: dict[str, Any], began: float, limit_s: float = 180.0
) -> dict[str, Any]:
    """After the live phase: when the stream worker has committed every raw message (its
    rollups and error analytics have seen every event). Its throughput over the whole run
    is every event it processed over the time from its start to then."""
    lag = _worker_lag(ctx, system, began, limit_s, "stream worker catching up")
    now = time.monotonic()
    events = result["drain"]["events"] + result["live"]["delivered"]
    if lag:
        ctx.console.print(
            f"[yellow]![/] {system.label}: the stream worker was still {lag:,} "
            f"messages behind {limit_s:.0f}s after the last raw row"
        )
        return {"after_raw_s": None, "events_per_s": None}
    rate = round(events / (now - system.started_at))
    ctx.console.print(
        f"[green]✓[/] {system.label}: the stream worker had every event {now - began:.1f}s after "
        f"the last raw row: {events:,} events at {rate:,}/s since it started"
    )
    return {"after_raw_s": round(now - began, 2), "events_per_s": rate}


def errors_settle(
    ctx: Context, system: Full, began: float, limit_s: float = 120.0
) -> dict[str, Any]:
    """After the live phase: how long until every stored error event is also grouped
    (error analytics: re-key, health join, grouping), counted from the moment the last raw
    row was queryable."""
    task = ctx.progress.add_task(f"{system.label}: errors grouped", total=None)
    while True:
        raw, grouped = system.error_counts()
        ctx.progress.update(task, total=raw, completed=grouped)
        waited = time.monotonic() - began
        if grouped >= raw or waited > limit_s:
            break
        check(system, 0.0, math.inf)
        time.sleep(0.25)
    ctx.progress.remove_task(task)
    done = grouped >= raw
    ctx.console.print(
        f"[green]✓[/] {system.label}: {grouped:,} of {raw:,} error events grouped "
        + (f"{waited:.1f}s after the last raw row" if done else f"when giving up at {limit_s:.0f}s")
    )
    return {"raw": raw, "grouped": grouped, "after_raw_s": round(waited, 2) if done else None}
