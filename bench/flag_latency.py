"""``python -m bench.flag_latency``: how fast the Big Red Button reaches the app.

    .venv/bin/python -m bench.flag_latency [--rate 10000] [--incidents 20] [--customers 20]

Starts a broker and the embedded warehouse (as ``bench.alert_latency`` does), then the
stream worker, the sink, the notifier (with the flipper) and the simulator's flat
background traffic of ``--rate`` requests/s. The bench process is the app: its SDK
(app ``bench-shop``, env ``bench``) reads the flag topic like any app, and a listener
on its flag store notes when each evaluation changes.

* **flip**: incident *n* sends 150 errors of type ``IncNNError`` (rule ``flip-NN``: more
  than 50 in 10 s, action ``flip: {flag: kill-NN, to: off}``); measured from the first
  error handed to the producer to the SDK evaluating ``kill-NN`` off.
* **ticket**: customer *n* sends 49 ``bench.buy``, then the 50th (the segment's
  ``at_least``); measured from the 50th handed to the producer to the SDK evaluating
  ``vip`` on for that customer.

Prints p50/p99 of each. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import shiftright
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from shiftright.flags import runtime
from shiftright_server.infra.alerting_config import ConfigStore
from shiftright_server.infra.clickhouse import apply_schema
from shiftright_server.infra.flags_config import FlagTopic
from shiftright_server.infra.kafka.topics import create_topics
from shiftright_server.infra.ops.supervisor import Supervisor, python_components
from shiftright_server.infra.settings import ClickHouseSettings, KafkaSettings, Settings
from shiftright_server.producers.emitter import Emitter
from shiftright_server.schemas import topics

from bench.pipeline import start_services
from tests.builders import event

APP, ENV = "bench-shop", "bench"


def flag_file(incidents: int) -> str:
    kills = "".join(
        f"  - {{name: kill-{i:02d}, kind: toggle, environments: {{{ENV}: on}}}}\n"
        for i in range(incidents)
    )
    vip = "  - {name: vip, kind: ticket, segment: {event: bench.buy, at_least: 50, window: 10m, leave_below: 40}}\n"
    return f"version: 1\napp: {APP}\nflags:\n{kills}{vip}"


def rule_file(incidents: int) -> str:
    rules = "".join(
        f"""  - name: flip-{i:02d}
    kind: threshold
    scope: {{app: {APP}, env: {ENV}, source: error, per_key: false,
             filters: {{exception_type: Inc{i:02d}Error}}}}
    measure: count
    aggregate: sum
    window: 10s
    op: ">"
    threshold: 50
    flip: {{flag: kill-{i:02d}, to: off, restore: manual}}
"""
        for i in range(incidents)
    )
    return f"rules:\n{rules}"


class Watch:
    """When each awaited evaluation changed, told by the flag store's listener."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.flips: dict[str, float] = {}  # flag -> when the SDK saw it off
        self.customers: dict[str, float] = {}  # customer -> when vip turned on
        self.waiting: set[str] = set()

    def changed(self, names: list[str]) -> None:
        now = time.monotonic()
        store = self.store
        with self.lock:
            for name in names:
                fresh = name.startswith("kill-") and name not in self.flips
                if fresh and store.evaluate(name)[2] == "DISABLED":
                    self.flips[name] = now
            if "vip" in names:
                for customer in list(self.waiting):
                    if store.evaluate("vip", "", customer)[0] is True:
                        self.customers[customer] = now
                        self.waiting.discard(customer)

    def attach(self) -> None:
        client = shiftright.get_client()
        assert client is not None
        self.store = runtime.store_of(client)
        self.store.listeners.append(self.changed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=10_000.0, help="background requests/s")
    ap.add_argument("--incidents", type=int, default=20)
    ap.add_argument("--customers", type=int, default=20)
    ap.add_argument("--warmup", type=float, default=20.0)
    ap.add_argument("--kafka", default="")
    ap.add_argument("--clickhouse", default="")
    args = ap.parse_args(argv)
    console = Console(width=max(120, Console().width))
    with tempfile.TemporaryDirectory(prefix="sr-flags-") as tmp, contextlib.ExitStack() as stack:
        progress = stack.enter_context(
            Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        )
        services = start_services(args, Path(tmp), stack, progress)
        ns = f"f{uuid.uuid4().hex[:8]}"
        settings = Settings(
            state_dir=Path(tmp) / "state",
            namespace=ns,
            kafka=KafkaSettings(bootstrap=services.bootstrap),
            clickhouse=ClickHouseSettings(url=services.clickhouse, database=ns),
        )
        create_topics(settings)
        apply_schema(settings)
        FlagTopic(services.bootstrap, ns).apply(flag_file(args.incidents), "bench")
        ConfigStore(services.bootstrap, topics.named(topics.ALERTING_CONFIG, ns)).apply(
            rule_file(args.incidents), "bench"
        )
        sup = Supervisor(settings)
        comps = python_components(settings, ["--rate", str(args.rate), "--flat"])
        for name in ("streams", "sink", "notifier", "simulator"):
            sup.start(comps[name])
            stack.callback(sup.stop, name, 20)
        shiftright.init(
            app=APP, env=ENV, kafka=services.bootstrap, namespace=ns, health_interval=0, hooks=False
        )
        stack.callback(shiftright.close, 2)
        watch = Watch()
        watch.attach()
        task = progress.add_task(f"Warming up: {args.rate:,.0f} requests/s", total=None)
        time.sleep(args.warmup)
        emitter = Emitter(services.bootstrap, ns)
        flips = run_incidents(emitter, args.incidents, progress, task)
        customers = run_customers(emitter, watch, args.customers, progress, task)
        progress.update(task, description="Waiting for the last flips")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            len(watch.flips) < len(flips) or len(watch.customers) < len(customers)
        ):
            time.sleep(0.2)
        emitter.flush(5)
        del emitter
        for name in ("simulator", "notifier", "sink", "streams"):
            if not sup.pid(name):
                console.print(f"[red]{name} died:[/]\n{sup.tail(name, 15)}")
    show(console, "flip: first bad event → SDK evaluates off", flips, watch.flips)
    show(console, "ticket: threshold event → SDK evaluates on", customers, watch.customers)


def run_incidents(emitter: Emitter, n: int, progress: Progress, task: TaskID) -> dict[str, float]:
    started = {}
    for i in range(n):
        progress.update(task, description=f"Incident {i + 1}/{n}")
        now = datetime.now(UTC)
        errors = [
            event("error", now, APP, ENV, exception_type=f"Inc{i:02d}Error") for _ in range(150)
        ]
        started[f"kill-{i:02d}"] = time.monotonic()
        emitter.emit_many(errors)
        emitter.flush(10)
        time.sleep(1.0)
    return started


def run_customers(
    emitter: Emitter, watch: Watch, n: int, progress: Progress, task: TaskID
) -> dict[str, float]:
    started = {}
    for i in range(n):
        customer = f"cust-{i:02d}"
        progress.update(task, description=f"Customer {i + 1}/{n} crosses the threshold")
        buys = [
            event("usage", datetime.now(UTC), APP, ENV, name="bench.buy", customer_id=customer)
            for _ in range(49)
        ]
        emitter.emit_many(buys)
        emitter.flush(10)
        time.sleep(1.0)  # the 49 are counted; the next one crosses
        with watch.lock:
            watch.waiting.add(customer)
        started[customer] = time.monotonic()
        emitter.emit_many(
            [event("usage", datetime.now(UTC), APP, ENV, name="bench.buy", customer_id=customer)]
        )
        emitter.flush(10)
        time.sleep(0.5)
    return started


def show(console: Console, what: str, started: dict[str, float], seen: dict[str, float]) -> None:
    took = sorted(seen[k] - t for k, t in started.items() if k in seen)
    if not took:
        console.print(f"{what}: none of {len(started)} seen")
        return
    p99 = took[min(len(took) - 1, round(0.99 * len(took) + 0.5) - 1)]
    console.print(
        f"{what}: {len(took)}/{len(started)} seen; p50 {statistics.median(took):.2f} s, "
        f"p99 {p99:.2f} s, max {took[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
