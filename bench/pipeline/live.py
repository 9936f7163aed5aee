"""Measurement: the live phase — a paced producer, probe latency, catch-up — and its figures."""

from __future__ import annotations

import json
import math
import select
import subprocess
import sys
import time
from typing import Any

from rich.console import Console

from bench.pipeline.context import REPO, Context, PhaseFailed
from bench.pipeline.services import terminate
from bench.pipeline.systems import System, check

#: How often the live phase looks at the warehouse (rows stored, probes seen): the
#: latencies' resolution, and the bench's own load on the warehouse.
LOOK_EVERY_S = 0.2


def live(ctx: Context, system: System) -> dict[str, Any]:
    args = ctx.args
    base = len(ctx.drain_records)
    argv = [
        sys.executable,
        "-m",
        "bench.pipeline",
        "_produce",
        "--events",
        str(ctx.live_file),
        "--bootstrap",
        ctx.services.bootstrap,
        "--namespace",
        system.namespace,
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--batch-events",
        str(args.batch_events),
        *(f"--setting={setting}" for setting in args.producer_setting),
    ]
    err = (system.state / "producer.log").open("ab")
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        start_new_session=True,
    )
    err.close()
    try:
        return _observe_live(ctx, system, proc, base)
    finally:
        terminate(proc)
        ctx.monitor.unwatch("producer")


def _observe_live(
    ctx: Context, system: System, proc: subprocess.Popen[bytes], base: int
) -> dict[str, Any]:
    args = ctx.args
    ctx.monitor.watch("producer", proc.pid, fresh=True)
    started = _first_line(proc, system)["started"]
    task = ctx.progress.add_task(f"{system.label}: live at {args.rate:,.0f}/s", total=args.seconds)
    seen: dict[str, float] = {}
    samples: list[tuple[float, int]] = []
    report: dict[str, Any] | None = None
    last_count = 0.0
    target = math.inf
    cap = max(30.0, 2 * args.seconds + 30)
    while True:
        now = time.time()
        if time.monotonic() - last_count >= LOOK_EVERY_S:
            last_count = time.monotonic()
            count, probes = system.count_and_probes()
            samples.append((time.time(), count))
            for name in probes:
                seen.setdefault(name, now)
        if report is None:
            ctx.progress.update(
                task,
                completed=min(args.seconds, now - started),
                description=f"{system.label}: live: {samples[-1][1] - base:,} rows",
            )
            if proc.poll() is not None:
                report = _last_line(proc, system)
                target = base + report["sent"] - report["failed"] - report["undelivered"]
                ctx.progress.update(
                    task,
                    total=target - base,
                    completed=samples[-1][1] - base,
                    description=f"{system.label}: catching up",
                )
        else:
            ctx.progress.update(task, completed=samples[-1][1] - base)
            caught = samples[-1][1] >= target and len(seen) >= len(report["probes"])
            if caught or time.time() - report["stopped"] > cap:
                break
        check(system, 0.0, math.inf)
        time.sleep(max(0.0, 0.1 - (time.time() - now)))
    ctx.progress.remove_task(task)
    out = {"target_rate": args.rate, **_live_figures(report, samples, seen, base, target)}
    out["group_lag_at_end"] = system.lags()
    _print_live(ctx.console, system.label, out)
    return out


def _first_line(proc: subprocess.Popen[bytes], system: System) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else b""
    if not line:
        log = (system.state / "producer.log").read_text(errors="replace")[-3000:]
        raise PhaseFailed(f"{system.label}: the producer did not start\n{log}")
    return dict(json.loads(line))


def _last_line(proc: subprocess.Popen[bytes], system: System) -> dict[str, Any]:
    assert proc.stdout is not None
    lines = proc.stdout.read().splitlines()
    if proc.returncode != 0 or not lines:
        log = (system.state / "producer.log").read_text(errors="replace")[-3000:]
        raise PhaseFailed(f"{system.label}: the producer failed ({proc.returncode})\n{log}")
    return dict(json.loads(lines[-1]))


def _live_figures(
    report: dict[str, Any],
    samples: list[tuple[float, int]],
    seen: dict[str, float],
    base: int,
    target: float,
) -> dict[str, Any]:
    started, stopped, sent = report["started"], report["stopped"], report["sent"]
    produced = sent - report["failed"] - report["undelivered"]
    at_stop = max((c for t, c in samples if t <= stopped), default=base)
    done_at = next((t for t, c in samples if c >= target), None)
    latencies = sorted(seen[n] - t for n, t in report["probes"].items() if n in seen)
    catch_up = None if done_at is None else round(max(0.0, done_at - stopped), 2)
    return {
        "seconds": round(stopped - started, 2),
        "sent": sent,
        "delivered": produced,
        "failed": report["failed"] + report["undelivered"],
        "achieved_rate": round(sent / max(1e-9, stopped - started)),
        "stored_rate_while_producing": round((at_stop - base) / max(1e-9, stopped - started)),
        "lag_at_stop": int(base + produced - at_stop),
        "catch_up_s": catch_up,
        "lag_at_give_up": None if done_at is not None else int(target - samples[-1][1]),
        "kept_up": catch_up is not None and catch_up <= 3.0,
        "probes_sent": len(report["probes"]),
        "probes_seen": len(latencies),
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p99_s": _percentile(latencies, 99),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
    }


def _percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    return round(values[max(0, math.ceil(pct / 100 * len(values)) - 1)], 3)


def _print_live(console: Console, label: str, out: dict[str, Any]) -> None:
    catch = (
        f"caught up {out['catch_up_s']}s after the producer stopped"
        if out["catch_up_s"] is not None
        else f"gave up with {out['lag_at_give_up']:,} rows missing"
    )
    console.print(
        f"[green]✓[/] {label}: live: produced {out['achieved_rate']:,}/s, stored "
        f"{out['stored_rate_while_producing']:,}/s while producing, p50 {out['latency_p50_s']}s "
        f"p99 {out['latency_p99_s']}s, {catch}"
    )
