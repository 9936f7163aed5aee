"""The stream worker alone: how much CPU it spends per event, with a backlog and live.

``python -m bench.streams_worker [--events N] [--rate R --seconds S] [--kafka HOST:PORT]``

The pipeline benchmark (``bench.pipeline``) runs the worker beside Kafka, the warehouse,
the sink and a producer on a 2-core machine, so its figures mix the worker's own cost
with what it gets of the CPU. This one runs only the worker, on the same event mix, in a
namespace of its own, and reads its CPU time from /proc:

1. start-up: it starts on a small warm-up set (1% of the events);
2. drain: the events are sent as fast as the broker takes them (messages of 200 events),
   and it works through the backlog: rollups, dead letters, the health join and
   grouping, until every input topic it reads (raw events and its own intermediate
   topics) is consumed;
3. live: a producer sends at ``--rate`` for ``--seconds`` as ``bench.pipeline`` does
   (every 20 ms, one message per topic partition: small messages);
4. idle: what it costs with nothing to do.

With ``--py-spy PATH`` (a py-spy executable), the worker is sampled through the drain and
through the live phase (``record --nonblocking --threads -f raw``, 100 Hz) into
``py-spy-drain.txt`` and ``py-spy-live.txt``: folded stacks of the
same commit in both shapes of traffic (in ``--state``, which keeps them).

Live and idle, its CPU is also split by thread (from /proc): the main thread (the event
loop: the steps, Faust's streams, sending), librdkafka's threads and the others (Faust's
consumer thread, the flag follower, the alerting config watcher, executor threads).

The baseline, on the same broker in the same run: a bare confluent-kafka consumer that
reads the same messages and decodes every event with orjson (no validation, no state,
no output): the least any consumer of these topics does. The worker is single-threaded
Python: at about one core it is saturated, and then its CPU per event only says it could
not go faster; compare rates below that (e.g. ``--rate 10000``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from shiftright_server.infra.settings import KafkaSettings, Settings
from shiftright_server.schemas import topics, wire

from bench.pipeline import KINDS, PhaseFailed, Record, generate, preload

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
IDLE_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
THREAD_GROUPS = ("main", "other", "librdkafka")
#: The topics the worker consumes besides the raw events (error analytics, alerting).
#: (Not the signals topic: it gets a tick per partition every half second, so the alert
#: agent's lag is rarely zero between its commits.)
DERIVED_INPUTS = (topics.ERRORS_BY_HOST, topics.ERRORS_ASSIGNED, topics.ERRORS_TRANSITIONS)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process's threads in three groups: its main thread (the event
    loop), librdkafka's threads (``rdk:*``) and every other thread (Faust's consumer
    thread, the flag follower, the alerting config watcher, executor threads)."""
    out = dict.fromkeys(THREAD_GROUPS, 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        group = (
            "main"
            if task.name == str(pid)
            else "librdkafka"
            if name.startswith("rdk:")
            else "other"
        )
        out[group] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def thread_cores(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    return {g: round((after[g] - before[g]) / seconds, 3) for g in THREAD_GROUPS}


def group_lag(bootstrap: str, group: str, names: list[str]) -> int:
    """Messages in these topics the group has not committed yet."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
    try:
        meta = probe.list_topics(timeout=5)
        tps = [
            TopicPartition(t, p)
            for t in names
            if t in meta.topics
            for p in meta.topics[t].partitions
        ]
        lag = 0
        for tp in probe.committed(tps, timeout=5):
            end = probe.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 5)[1]
            lag += end - max(tp.offset, 0)
        return lag
    finally:
        probe.close()


@contextlib.contextmanager
def sampled(py_spy: tuple[Path, Path] | None, pid: int, name: str) -> Any:
    """With ``py_spy`` (the executable, a folder), py-spy records ``pid`` into the folder's
    ``name`` (folded stacks) while the block runs."""
    if py_spy is None:
        yield
        return
    exe, folder = py_spy
    out = folder / name
    argv = [str(exe), "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", str(out)]
    proc = subprocess.Popen(
        [*argv, "--threads", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


class Worker:
    """The stream worker under test and what it has consumed."""

    def __init__(self, settings: Settings) -> None:
        from shiftright_server.infra.ops.supervisor import Supervisor, python_components

        ns = settings.namespace
        self.raw = [topics.named(t, ns) for t in topics.EVENT_TOPICS]
        self.derived = [topics.named(t, ns) for t in DERIVED_INPUTS]
        self.group = f"{ns}.{settings.streams.app_id}"
        self.boot = settings.kafka.bootstrap_servers
        self.supervisor = Supervisor(settings)
        self.component = python_components(settings)["streams"]
        self.pid = 0

    def start(self) -> None:
        self.pid = self.supervisor.start(self.component)

    def stop(self) -> None:
        self.supervisor.stop("streams", timeout=20)

    def raw_lag(self) -> int:
        if self.pid and self.supervisor.pid("streams") is None:
            raise PhaseFailed(f"the stream worker exited\n{self.supervisor.tail('streams', 30)}")
        return group_lag(self.boot, self.group, self.raw)

    def settled(self, progress: Progress, task: Any, total: int, limit_s: float) -> float:
        """Wait until every raw and intermediate message is committed; returns when."""
        began, quiet = time.monotonic(), 0
        while quiet < 2:
            time.sleep(0.5)
            lag = self.raw_lag()
            progress.update(task, completed=total - lag)
            rest = group_lag(self.boot, self.group, self.derived) if lag == 0 else 1
            quiet = quiet + 1 if lag == 0 and rest == 0 else 0
            if time.monotonic() - began > limit_s:
                raise PhaseFailed(
                    f"the stream worker still had {lag:,} raw messages after {limit_s:.0f}s"
                )
        return time.monotonic() - 0.5  # the poll before confirmed it


def start_phase(worker: Worker, progress: Progress, limit_s: float) -> dict[str, Any]:
    """Start the worker on a small warm-up set; wait until it has consumed it."""
    messages = worker.raw_lag()
    task = progress.add_task("start-up: warm-up events consumed", total=messages)
    began = time.monotonic()
    worker.start()
    progress.console.print(
        f"  stream worker pid {worker.pid} (attach a profiler now if you want one)"
    )
    done = worker.settled(progress, task, messages, limit_s)
    progress.remove_task(task)
    return {"seconds": round(done - began, 2), "cpu_s": round(cpu_seconds(worker.pid), 2)}


def drain_phase(
    worker: Worker,
    bootstrap: str,
    ns: str,
    records: list[Record],
    progress: Progress,
    limit_s: float,
    py_spy: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Preload ``records`` as fast as the broker takes them while the (started) worker
    runs; the time and CPU from the first record sent until it has consumed them all: its
    pace with a backlog (big messages, big batches), start-up excluded."""
    task = progress.add_task("drain: preloading", total=len(records))
    with sampled(py_spy, worker.pid, "py-spy-drain.txt"):
        began, cpu0 = time.monotonic(), cpu_seconds(worker.pid)
        preload(bootstrap, ns, records, lambda k: progress.advance(task, k))
        progress.remove_task(task)
        task = progress.add_task("drain: raw messages committed", total=None)
        done = worker.settled(progress, task, 0, limit_s)
        progress.remove_task(task)
    cpu = cpu_seconds(worker.pid) - cpu0
    total = len(records)
    return {
        "events": total,
        "busy_s": round(done - began, 2),
        "events_per_s": round(total / (done - began)),
        "cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(total / max(cpu, 1e-9)),
        "us_per_event": round(cpu / total * 1e6, 1),
    }


def idle_cores(worker: Worker) -> dict[str, float]:
    """What the worker costs with nothing to do (timers, fetch loops), in cores, by
    thread group."""
    threads0 = thread_cpu(worker.pid)
    time.sleep(IDLE_SECONDS)
    return thread_cores(threads0, thread_cpu(worker.pid), IDLE_SECONDS)


def live_phase(
    worker: Worker,
    events_file: Path,
    rate: float,
    seconds: float,
    progress: Progress,
    limit_s: float,
    py_spy: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Produce at ``rate`` for ``seconds`` while the worker runs: its CPU per event at a
    live pace (smaller batches than a drain), its lag when the producer stops and how
    long it then takes to have consumed everything."""
    argv = [
        sys.executable,
        "-m",
        "bench.pipeline",
        "_produce",
        "--events",
        str(events_file),
        "--bootstrap",
        worker.boot,
        "--namespace",
        worker.group.split(".")[0],
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
    ]
    task = progress.add_task(f"live at {rate:,.0f}/s", total=seconds)
    cpu0, threads0 = cpu_seconds(worker.pid), thread_cpu(worker.pid)
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    lags: list[int] = []
    try:
        with sampled(py_spy, worker.pid, "py-spy-live.txt"):
            started = json.loads(proc.stdout.readline())["started"]
            while proc.poll() is None:
                time.sleep(1.0)
                lags.append(worker.raw_lag())
                progress.update(task, completed=min(seconds, time.time() - started))
        figures = json.loads(proc.stdout.read().splitlines()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
        progress.remove_task(task)
    cpu_live, threads = cpu_seconds(worker.pid) - cpu0, thread_cpu(worker.pid)
    at_stop = worker.raw_lag()
    task = progress.add_task("live: catching up", total=at_stop)
    stopped = time.monotonic()
    done = worker.settled(progress, task, at_stop, limit_s)
    progress.remove_task(task)
    cpu = cpu_seconds(worker.pid) - cpu0
    sent = figures["sent"]
    return {
        "rate": rate,
        "sent": sent,
        "seconds": round(figures["stopped"] - figures["started"], 2),
        "lag_messages_at_stop": at_stop,
        "lag_messages_max": max(lags, default=0),
        "catch_up_s": round(done - stopped, 2),
        "cores_while_producing": round(cpu_live / (figures["stopped"] - figures["started"]), 2),
        "threads_while_producing": thread_cores(
            threads0, threads, figures["stopped"] - figures["started"]
        ),
        "cpu_s": round(cpu, 2),
        "us_per_event": round(cpu / sent * 1e6, 1),
        "events_per_cpu_s": round(sent / max(cpu, 1e-9)),
    }


def baseline_main(argv: list[str]) -> None:
    """``python -m bench.streams_worker _baseline``: read and decode every event once."""
    import orjson
    from confluent_kafka import Consumer

    parser = argparse.ArgumentParser(prog="bench.streams_worker _baseline")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"{args.namespace}.base",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    consumer.subscribe([topics.named(t, args.namespace) for t in topics.EVENT_TOPICS])
    seen, first = 0, None
    cpu0 = time.process_time()
    while seen < args.events:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                continue
            if first is None:
                first, cpu0 = time.monotonic(), time.process_time()
            # the bench's messages all carry a value
            for line in cast(list[bytes], wire.split_events(msg.value(), msg.headers())):
                orjson.loads(line)
                seen += 1
    done, cpu = time.monotonic(), time.process_time()
    consumer.close()
    assert first is not None
    print(json.dumps({"busy_s": done - first, "cpu_s": cpu - cpu0, "events": seen}), flush=True)


def run_baseline(settings: Settings, total: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task("baseline: reading every event", total=None)
    argv = [
        sys.executable,
        "-m",
        "bench.streams_worker",
        "_baseline",
        "--bootstrap",
        settings.kafka.bootstrap_servers,
        "--namespace",
        settings.namespace,
        "--events",
        str(total),
    ]
    began = time.monotonic()
    try:
        out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    finally:
        progress.remove_task(task)
    if out.returncode:
        raise PhaseFailed(f"the baseline consumer failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "events": figures["events"],
        "seconds": round(time.monotonic() - began, 2),
        "busy_s": round(figures["busy_s"], 2),
        "cpu_s": round(figures["cpu_s"], 2),
        "events_per_cpu_s": round(figures["events"] / max(figures["cpu_s"], 1e-9)),
        "us_per_event": round(figures["cpu_s"] / figures["events"] * 1e6, 1),
    }


def report(console: Console, results: dict[str, Any]) -> None:
    base, drain, live = results["baseline"], results["drain"], results.get("live")
    table = Table(
        title=f"Stream worker alone: {drain['events']:,} events preloaded"
        + (f", then {live['rate']:,.0f}/s for {live['seconds']:.0f} s" if live else "")
    )
    table.add_column("")
    labels = ["bare consumer + orjson", "worker: drain", "ratio"]
    table.add_column(labels[0], justify="right")
    table.add_column(labels[1], justify="right")
    table.add_column(labels[2], justify="right")
    if live:
        table.add_column("worker: live", justify="right")
        table.add_column("ratio", justify="right")

    def row(label: str, key: str, fmt: str, ratio: bool = True) -> None:
        cells = [label, fmt.format(base[key]) if key in base else "", fmt.format(drain[key])]
        cells.append(f"{drain[key] / base[key]:.2f}" if ratio and key in base else "")
        if live:
            cells += [
                fmt.format(live[key]) if key in live else "",
                f"{live[key] / base[key]:.2f}" if ratio and key in live else "",
            ]
        table.add_row(*cells)

    row("CPU per event (µs)", "us_per_event", "{:,.1f}")
    row("events per CPU-second", "events_per_cpu_s", "{:,}")
    row("busy: backlog read / worked through (s)", "busy_s", "{:.2f}")
    start = results["start"]
    table.add_row("start-up: consumed a warm-up set after (s)", "", f"{start['seconds']:.2f}")
    table.add_row("start-up: CPU (s)", "", f"{start['cpu_s']:.2f}")
    console.print(table)
    idle = results["idle_cores"]
    console.print(
        f"idle (at the end, nothing to do): {sum(idle.values()):.3f} cores ({_by_thread(idle)})"
    )
    if live:
        console.print(
            f"live: {live['sent']:,} events at {live['rate']:,.0f}/s; the worker used "
            f"{live['cores_while_producing']:.2f} cores, was {live['lag_messages_at_stop']:,} "
            f"messages behind at the stop (at most {live['lag_messages_max']:,}) and had consumed "
            f"everything {live['catch_up_s']:.1f} s later; cores by thread while producing: "
            f"{_by_thread(live['threads_while_producing'])}"
        )
    console.print(
        f"[dim]To keep up with 20,000 events/s the worker may spend at most "
        f"{1e6 / 20_000:.0f} µs of CPU per event per core it gets.[/]"
    )


def _by_thread(cores: dict[str, float]) -> str:
    return ", ".join(f"{group} {cores[group]:.3f}" for group in THREAD_GROUPS)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["_baseline"]:
        baseline_main(args[1:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m bench.streams_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=300_000, help="events to preload")
    parser.add_argument(
        "--rate", type=float, default=20_000, help="live events/s (0: no live phase)"
    )
    parser.add_argument("--seconds", type=float, default=30, help="live phase length")
    parser.add_argument("--kafka", help="an existing broker (default: start one)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state", type=Path, help="keep the worker's state and log here")
    parser.add_argument("--limit", type=float, default=600.0, help="give up a phase after (s)")
    parser.add_argument(
        "--py-spy", type=Path, help="a py-spy executable: sample the drain and the live phase"
    )
    opts = parser.parse_args(args)
    console = Console()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    results: dict[str, Any] = {"params": vars(opts)}
    RESULTS.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack, Progress(*columns, console=console) as progress:
        root = opts.state or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-streams-"))
        )
        root.mkdir(parents=True, exist_ok=True)
        bootstrap = opts.kafka
        if not bootstrap:
            from tests.integration.kafka_fixture import start_kafka, stop_kafka

            console.print("Starting Apache Kafka …")
            launcher = start_kafka(root / "kafka")
            stack.callback(stop_kafka, launcher)
            bootstrap = launcher.bootstrap
        now = datetime.now(UTC).replace(microsecond=0)
        n_live = int(opts.rate * opts.seconds)
        task = progress.add_task("generating events", total=opts.events + n_live)
        advance = lambda k: progress.advance(task, k)  # noqa: E731
        drained = generate(
            opts.events, now - timedelta(minutes=11), now - timedelta(minutes=6), opts.seed, advance
        )
        records: list[Record] = [r for _, r in drained]
        live_file = root / "live.pickle"
        if n_live:
            lived = generate(
                n_live,
                now - timedelta(minutes=6),
                now - timedelta(minutes=1),
                opts.seed + 1,
                advance,
            )
            with live_file.open("wb") as fh:
                pickle.dump({"records": [r for _, r in lived], "probes": {}}, fh)
        progress.remove_task(task)
        ns = f"bsw{uuid.uuid4().hex[:6]}"
        # No wall-clock closing of quiet partitions: between the phases the worker is idle
        # for a few seconds, and it would close the buckets the live events (stamped
        # minutes ago, like the pipeline bench's) belong to, making them late, which the
        # worker counts without rolling up: cheaper than the real thing.
        settings = Settings(
            state_dir=root / "state",
            namespace=ns,
            kafka=KafkaSettings(bootstrap=bootstrap),
            streams=Settings().streams.model_copy(update={"idle_close_seconds": 3600}),
        )
        from shiftright_server.infra.kafka.topics import create_topics

        create_topics(settings)
        task = progress.add_task("preloading (baseline)", total=len(records))
        preload(bootstrap, ns, records, lambda k: progress.advance(task, k))
        progress.remove_task(task)
        counts = {kind: sum(1 for k, _, _ in records if k == i) for i, kind in enumerate(KINDS)}
        console.print(
            f"  {len(records):,} events: " + ", ".join(f"{n:,} {k}" for k, n in counts.items())
        )
        results["baseline"] = run_baseline(settings, len(records), progress)
        # The worker reads a namespace of its own: warm-up events, then the same records.
        ns = f"{ns}w"
        settings = settings.model_copy(update={"namespace": ns})
        create_topics(settings)
        warm = records[: max(1, len(records) // 100)]
        preload(bootstrap, ns, warm, lambda k: None)
        worker = Worker(settings)
        stack.callback(worker.stop)
        py_spy = (opts.py_spy, root) if opts.py_spy else None
        results["start"] = start_phase(worker, progress, opts.limit)
        results["drain"] = drain_phase(worker, bootstrap, ns, records, progress, opts.limit, py_spy)
        if n_live:
            results["live"] = live_phase(
                worker, live_file, opts.rate, opts.seconds, progress, opts.limit, py_spy
            )
        results["idle_cores"] = idle_cores(worker)
    report(console, results)
    out = RESULTS / f"streams-worker-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"[dim]figures saved to {out.relative_to(REPO)}[/]")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
