"""``python -m bench.pipeline``: sustained end-to-end throughput, events produced → rows
queryable in ClickHouse, for the full pipeline and for a bare consumer on the same events.

    .venv/bin/python -m bench.pipeline [--events 300000] [--rate 20000] [--seconds 30]
    .venv/bin/python -m bench.pipeline --quick
    .venv/bin/python -m bench.pipeline --kafka HOST:PORT --clickhouse http://HOST:8123

Without ``--kafka``/``--clickhouse`` it starts a broker and the embedded warehouse on free
ports in a temporary state dir (the integration fixtures' functions) and removes them after.
Each system gets its own namespace (topics ``<ns>.events.*.v1``, database ``<ns>``):

1. *baseline*: ``python -m bench.baseline`` (json.loads → columnar insert, nothing else);
2. *full*: the stream worker and the sink, started like ``shiftright up`` starts them.

For each, two phases on the same pre-serialized events:

- **drain**: ``--events`` events are preloaded into the raw topics, then the consumers
  start; the clock runs until all of them are countable in the four ``events_*`` tables.
- **live**: a producer process sends at ``--rate`` for ``--seconds``, with ~10 probe events
  a second (``name = bench.probe.<n>``) whose send time it records; the driver polls for
  them every ~100 ms (event → queryable latency) and, after the producer stops, for the
  time until every row is queryable (catch-up).

A sampler thread records peak RSS and CPU time of every process involved. Figures go to a
table and to ``bench/results/pipeline-<timestamp>.json``. Nothing is asserted.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import dataclasses
import json
import math
import os
import pickle
import platform
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
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
from rich.table import Table
from shiftright_server.infra.settings import KafkaSettings
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.events import ROLLUP_KEY_FIELD

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
KINDS = ("usage", "error", "health", "change")  # index = position in topics.EVENT_TOPICS
MIX = {"usage": 0.85, "error": 0.05, "health": 0.0995, "change": 0.0005}
RAW_TABLES = ("events_usage", "events_error", "events_health", "events_change")
PROBES_PER_SECOND = 10
PARTITIONS = KafkaSettings().partitions  # of every topic the bench creates
PROBE_APP, PROBE_ENV = "bench", "probe"
#: (kind index, key, value): what the producers send.
Record = tuple[int, bytes, bytes]


#: Events per Kafka message (NDJSON batches, see schemas.wire); 1 sends single events.
batch_events = 200
#: (kind index, key, value, headers, events in it): one Kafka message.
Message = tuple[int, bytes, bytes, list[tuple[str, bytes]] | None, int]


def to_messages(records: list[Record], per_message: int) -> list[Message]:
    """Group records by topic and partition (order kept within a key) into batch messages,
    as ``Emitter.emit_many`` does; a message's key is its first event's key, which maps to
    the same partition as every other key in it."""
    if per_message <= 1:
        return [(k, key, value, None, 1) for k, key, value in records]
    groups: dict[tuple[int, int], tuple[bytes, list[bytes]]] = {}
    for k, key, value in records:
        group = (k, wire.partition_of(key, PARTITIONS))
        if group not in groups:
            groups[group] = (key, [])
        groups[group][1].append(value)
    out: list[Message] = []
    for (k, _partition), (key, values) in groups.items():
        for i in range(0, len(values), per_message):
            chunk = values[i : i + per_message]
            out.append((k, key, b"\n".join(chunk), wire.BATCH_HEADERS, len(chunk)))
    return out


class PhaseFailed(RuntimeError):
    """A phase could not finish (a component died or stopped making progress)."""


# -- events ---------------------------------------------------------------------------------


def generate(
    n: int, start: datetime, end: datetime, seed: int, advance: Callable[[int], None]
) -> list[tuple[str, Record]]:
    """``n`` events in the MIX, ``ts`` in ``[start, end)``, sorted by ``ts``, serialized."""
    from shiftright_server.producers.simulator import Simulator

    sim = Simulator(seed=seed)
    chunks = max(1, min(50, n // 5000))
    step = (end - start) / chunks
    out: list[tuple[str, Record]] = []
    for c in range(chunks):
        lo, hi = start + step * c, start + step * (c + 1)
        part: list[tuple[str, Record]] = []
        for k, kind in enumerate(KINDS):
            share = _share(n, MIX[kind], chunks, c)
            part += [(e["ts"], (k, _key(e), _dumps(e))) for e in sim.generate(kind, share, lo, hi)]
        part.sort(key=lambda item: item[0])
        out += part
        advance(len(part))
    return out


def _share(n: int, fraction: float, chunks: int, c: int) -> int:
    """Chunk ``c``'s part of ``round(n * fraction)``, spread so the totals add up."""
    total = (
        n - sum(round(n * MIX[k]) for k in KINDS[1:])
        if fraction == MIX["usage"]
        else round(n * fraction)
    )
    return total * (c + 1) // chunks - total * c // chunks


def _key(event: dict[str, Any]) -> bytes:
    kind = event["kind"]
    return f"{event['app']}|{event['env']}|{event.get(ROLLUP_KEY_FIELD[kind], '')}".encode()


def _dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def with_probes(
    events: list[tuple[str, Record]], every: int
) -> tuple[list[Record], dict[int, str]]:
    """Replace every ``every``-th usage slot by a probe event; (records, index → probe name)."""
    records: list[Record] = []
    probes: dict[int, str] = {}
    for i, (ts, record) in enumerate(events):
        if i % every == every // 2:
            name = f"bench.probe.{len(probes)}"
            probe = {
                "event_id": str(uuid.uuid4()),
                "kind": "usage",
                "ts": ts,
                "app": PROBE_APP,
                "env": PROBE_ENV,
                "origin": "synthetic",
                "name": name,
                "status_code": 200,
                "duration_ms": 1.0,
            }
            probes[i] = name
            record = (0, _key(probe), _dumps(probe))
        records.append(record)
    return records, probes


# -- the live producer (a separate process) --------------------------------------------------


def produce_main(argv: list[str]) -> None:
    """``python -m bench.pipeline _produce``: send a pickled record list at a fixed rate.

    Prints one JSON line when the clock starts and one with the figures when done.
    """
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config

    parser = argparse.ArgumentParser(prog="bench.pipeline _produce")
    for name in ("--events", "--bootstrap", "--namespace"):
        parser.add_argument(name, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--batch-events", type=int, default=batch_events)
    args = parser.parse_args(argv)
    with open(args.events, "rb") as fh:
        data = pickle.load(fh)
    records: list[Record] = data["records"]
    probes: dict[int, str] = data["probes"]
    names = [topics.named(t, args.namespace) for t in topics.EVENT_TOPICS]
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        failed.append(str(err))

    producer = Producer(
        producer_config(
            args.bootstrap, **{"delivery.report.only.error": True, "on_delivery": on_delivery}
        )
    )
    producer.list_topics(timeout=10)  # connected before the clock starts
    started = time.time()
    print(json.dumps({"started": started}), flush=True)
    sent, probe_sent = _paced(
        producer, records, names, probes, args.rate, args.seconds, args.batch_events
    )
    stopped = time.time()
    undelivered = producer.flush(60)
    print(
        json.dumps(
            {
                "started": started,
                "stopped": stopped,
                "sent": sent,
                "failed": len(failed),
                "undelivered": undelivered,
                "probes": probe_sent,
                "errors": failed[:5],
            }
        ),
        flush=True,
    )


def _paced(
    producer: Any,
    records: list[Record],
    names: list[str],
    probes: dict[int, str],
    rate: float,
    seconds: float,
    per_message: int,
) -> tuple[int, dict[str, float]]:
    """Hand records to the producer on schedule (in 20 ms slices, grouped into batch
    messages) until ``seconds`` pass or they run out."""
    began = time.monotonic()
    deadline, n, i = began + seconds, len(records), 0
    probe_sent: dict[str, float] = {}
    while i < n:
        now = time.monotonic()
        if now >= deadline:
            break
        due = min(n, int((now - began) * rate) + 1)
        if due > i:
            for k, key, value, headers, _ in to_messages(records[i:due], per_message):
                _produce_one(producer, names[k], value, key, headers)
            sent_at = time.time()
            probe_sent.update({probes[j]: sent_at for j in range(i, due) if j in probes})
            i = due
        producer.poll(0)
        time.sleep(0.02)
    return i, probe_sent


def _produce_one(producer: Any, topic: str, value: bytes, key: bytes, headers: Any) -> None:
    while True:
        try:
            producer.produce(topic, value, key, headers=headers)
            return
        except BufferError:
            producer.poll(0.01)


def preload(
    bootstrap: str, namespace: str, records: list[Record], advance: Callable[[int], None]
) -> None:
    """Send every record and wait until the broker acknowledged them all."""
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config

    producer = Producer(producer_config(bootstrap, log_level=3))  # errors only: keep bars clean
    names = [topics.named(t, namespace) for t in topics.EVENT_TOPICS]
    done = 0
    for kind, key, value, headers, count in to_messages(records, batch_events):
        _produce_one(producer, names[kind], value, key, headers)
        done += count
        if done >= 10_000:
            producer.poll(0)
            advance(done)
            done = 0
    left = producer.flush(120)
    advance(done)
    if left:
        raise PhaseFailed(f"preload: the broker did not acknowledge {left} events")


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
    system = Practice(ctx.services, ctx.root, f"benchwarmup{uuid.uuid4().hex[:6]}")
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


# -- resource sampling -----------------------------------------------------------------------


class Monitor:
    """Samples RSS and CPU time of named processes; peaks and CPU seconds per tag."""

    def __init__(self, interval: float = 0.2) -> None:
        self._interval = interval
        self._procs: dict[str, psutil.Process] = {}
        self._last_cpu: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tag: str | None = None
        self._base: dict[str, float] = {}
        self._began = 0.0
        self.peak_rss: dict[str, dict[str, int]] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self.wall: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def watch(self, name: str, pid: int, fresh: bool = False, part: bool = False) -> None:
        """Follow ``pid``; ``fresh``: it started within the current tag (CPU counts from 0);
        ``part``: follow the JIT compiler threads of that JVM, a part of a watched process
        (not added again into "others")."""
        with contextlib.suppress(psutil.Error), self._lock:
            self._procs[name] = CompilerThreads(pid) if part else psutil.Process(pid)
            if fresh:
                self._last_cpu[name] = 0.0
            if self._tag is not None:
                self._base[name] = 0.0 if fresh else self._sample_one(name)[1]

    def unwatch(self, name: str) -> None:
        with self._lock:
            self._procs.pop(name, None)

    @contextlib.contextmanager
    def tag(self, tag: str) -> Iterator[None]:
        with self._lock:
            self._tag, self._began = tag, time.monotonic()
            self.peak_rss.setdefault(tag, {})
            self._base = {name: self._sample_one(name)[1] for name in self._procs}
            machine = _busy_cpu_seconds()
        try:
            yield
        finally:
            with self._lock:
                self._sample_all()
                self.wall[tag] = time.monotonic() - self._began
                self.cpu[tag] = {
                    n: round(self._last_cpu.get(n, b) - b, 2) for n, b in self._base.items()
                }
                self.cpu[tag]["machine"] = round(_busy_cpu_seconds() - machine, 2)
                ours = sum(
                    v
                    for n, v in self.cpu[tag].items()
                    if n != "machine" and not isinstance(self._procs.get(n), CompilerThreads)
                )
                self.cpu[tag]["others"] = round(max(0.0, self.cpu[tag]["machine"] - ours), 2)
                self._tag = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                self._sample_all()

    def _sample_all(self) -> None:
        for name in list(self._procs):
            self._sample_one(name)

    def _sample_one(self, name: str) -> tuple[int, float]:
        proc = self._procs[name]
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                times = proc.cpu_times()
        except psutil.Error:
            return 0, self._last_cpu.get(name, 0.0)
        cpu = times.user + times.system
        self._last_cpu[name] = cpu
        if self._tag is not None and rss:  # (compiler threads have none of their own)
            peaks = self.peak_rss[self._tag]
            peaks[name] = max(peaks.get(name, 0), rss)
        return rss, cpu


class CompilerThreads:
    """The JIT compiler threads (``C1 …``/``C2 …``) of a JVM, sampled like a process from
    Linux's /proc. Compiler threads come and go; each keeps the CPU time last read from it,
    so the total never goes back."""

    def __init__(self, pid: int) -> None:
        self._tasks = Path(f"/proc/{pid}/task")
        self._seen: dict[str, float] = {}
        self._tick = os.sysconf("SC_CLK_TCK")

    def oneshot(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def memory_info(self) -> Any:
        return _NoMemory  # threads share the JVM's memory

    def cpu_times(self) -> Any:
        with contextlib.suppress(OSError):
            for task in self._tasks.iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if (task / "comm").read_text().startswith(("C1 ", "C2 ")):
                        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                        self._seen[task.name] = (int(fields[11]) + int(fields[12])) / self._tick
        return _CpuTimes(sum(self._seen.values()), 0.0)


@dataclass(frozen=True)
class _CpuTimes:
    user: float
    system: float


class _NoMemory:
    rss = 0


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all processes, ours or not)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


# -- services --------------------------------------------------------------------------------


@dataclass
class Services:
    bootstrap: str
    clickhouse: str
    pids: dict[str, int] = field(default_factory=dict)
    external: bool = False


def start_services(
    args: argparse.Namespace, state: Path, stack: contextlib.ExitStack, progress: Progress
) -> Services:
    from tests.integration.kafka_fixture import start_kafka, stop_kafka
    from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

    pids: dict[str, int] = {}
    bootstrap, url = args.kafka, args.clickhouse
    if not bootstrap:
        with _step(progress, "Starting Apache Kafka (jars from ~/.m2 or Maven Central)"):
            launcher = start_kafka(state / "kafka")
            stack.callback(stop_kafka, launcher)
        assert launcher.process is not None
        bootstrap, pids["kafka"] = launcher.bootstrap, launcher.process.pid
    if not url:
        with _step(progress, "Starting the embedded warehouse (chDB)"):
            (state / "warehouse").mkdir(parents=True, exist_ok=True)
            proc, url = start_warehouse(state / "warehouse" / "data", free_port())
            stack.callback(stop_warehouse, proc)
        pids["warehouse"] = proc.pid
    progress.console.print(f"[green]✓[/] Kafka {bootstrap} · ClickHouse {url}")
    return Services(bootstrap, url, pids, external=bool(args.kafka or args.clickhouse))


@contextlib.contextmanager
def _step(progress: Progress, what: str) -> Iterator[None]:
    task = progress.add_task(what, total=None)
    try:
        yield
    finally:
        progress.remove_task(task)


# -- the systems under test ------------------------------------------------------------------


class System(abc.ABC):
    """One consumer set under test, in its own namespace and database."""

    label = ""

    def __init__(self, services: Services, root: Path, namespace: str) -> None:
        from shiftright_server.infra.settings import (
            ClickHouseSettings,
            KafkaSettings,
            Settings,
            SinkSettings,
        )

        self.namespace = namespace
        self.state = root / self.label
        self.settings = Settings(
            state_dir=self.state,
            namespace=namespace,
            kafka=KafkaSettings(bootstrap=services.bootstrap),
            clickhouse=ClickHouseSettings(url=services.clickhouse, database=namespace),
            sink=SinkSettings(group_id=self.group_id()),
        )
        self._client: Any = None
        self.started_at = 0.0

    def group_id(self) -> str:
        from shiftright_server.infra.settings import SinkSettings

        return SinkSettings().group_id

    def prepare(self) -> None:
        from shiftright_server.infra.clickhouse import apply_schema, get_client
        from shiftright_server.infra.kafka.topics import create_topics

        self.state.mkdir(parents=True, exist_ok=True)
        create_topics(self.settings)
        apply_schema(self.settings)
        self._client = get_client(self.settings.clickhouse, database=self.namespace)

    def count(self) -> int:
        total = " + ".join(f"(SELECT count() FROM {t})" for t in RAW_TABLES)
        return int(self._client.command(f"SELECT {total}"))

    def probes_seen(self) -> list[str]:
        rows = self._client.query(
            "SELECT name FROM events_usage WHERE app = {a:String} AND env = {e:String}",
            parameters={"a": PROBE_APP, "e": PROBE_ENV},
        ).result_rows
        return [str(r[0]) for r in rows]

    def lags(self) -> dict[str, int]:
        """Kafka consumer-group lag over the raw topics, per group of this system."""
        from shiftright_server.infra.ops.status import PipelineFigures, kafka_figures

        figures = PipelineFigures()
        kafka_figures(self.settings, figures)
        return {role: lag for role, lag in figures.lag.items() if role in self.roles()}

    def drop(self) -> None:
        """Remove this system's database and topics (the next system starts clean)."""
        from confluent_kafka.admin import AdminClient

        with contextlib.suppress(Exception):
            self._client.command(f"DROP DATABASE IF EXISTS {self.namespace} SYNC")
        admin = AdminClient(
            {"bootstrap.servers": self.settings.kafka.bootstrap_servers, "log_level": 3}
        )
        names = [
            topics.named(t, self.namespace)
            for t in (*topics.EVENT_TOPICS, topics.DLQ_EVENTS, topics.ROLLUPS)
        ]
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result()

    @abc.abstractmethod
    def roles(self) -> tuple[str, ...]:
        """Implemented by each system."""

    @abc.abstractmethod
    def start(self) -> dict[str, int]:
        """Implemented by each system."""

    @abc.abstractmethod
    def alive(self) -> dict[str, bool]:
        """Implemented by each system."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Implemented by each system."""

    @abc.abstractmethod
    def counters(self) -> dict[str, Any]:
        """Implemented by each system."""

    @abc.abstractmethod
    def tail(self, name: str) -> str:
        """Implemented by each system."""


class Baseline(System):
    label = "baseline"

    def __init__(self, services: Services, root: Path, namespace: str) -> None:
        super().__init__(services, root, namespace)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.state / "consumer.log"
        self._stats = self.state / "consumer.json"

    def group_id(self) -> str:
        from bench.baseline import GROUP_ID

        return GROUP_ID

    def roles(self) -> tuple[str, ...]:
        return ("sink",)

    def start(self) -> dict[str, int]:
        s = self.settings
        argv = [
            sys.executable,
            "-m",
            "bench.baseline",
            "--bootstrap",
            s.kafka.bootstrap_servers,
            "--clickhouse",
            s.clickhouse.http_url,
            "--namespace",
            self.namespace,
            "--database",
            self.namespace,
            "--batch-rows",
            str(s.sink.batch_rows),
            "--batch-seconds",
            str(s.sink.batch_seconds),
            "--stats",
            str(self._stats),
        ]
        with self._log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return {"consumer": self._proc.pid}

    def alive(self) -> dict[str, bool]:
        return {"consumer": self._proc is not None and self._proc.poll() is None}

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc)

    def counters(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._stats.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def tail(self, name: str) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"


class Full(System):
    label = "full"

    def __init__(self, services: Services, root: Path, namespace: str) -> None:
        from shiftright_server.infra.ops.supervisor import Supervisor, python_components

        super().__init__(services, root, namespace)
        self.supervisor = Supervisor(self.settings)
        self._components = python_components(self.settings)

    def roles(self) -> tuple[str, ...]:
        return ("sink", "streams")

    def start(self) -> dict[str, int]:
        return {name: self.supervisor.start(self._components[name]) for name in ("streams", "sink")}

    def error_counts(self) -> tuple[int, int]:
        """(error events stored, of them grouped by the error-analytics agents)."""
        row = self._client.query(
            "SELECT (SELECT count() FROM events_error), "
            "(SELECT uniqExact(event_id) FROM errors_grouped)"
        ).result_rows[0]
        return int(row[0]), int(row[1])

    def alive(self) -> dict[str, bool]:
        return {name: self.supervisor.pid(name) is not None for name in ("streams", "sink")}

    def stop(self) -> None:
        for name in ("sink", "streams"):
            self.supervisor.stop(name, timeout=20)

    def counters(self) -> dict[str, Any]:
        from shiftright_server.infra.ops.status import sink_counters

        return sink_counters(self.settings)

    def tail(self, name: str) -> str:
        return self.supervisor.tail(name, 30)


class Practice(Full):
    """The full pipeline run once before the measured runs, to warm the broker up."""

    label = "warm-up"


def _terminate(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


# -- phases ----------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    services: Services
    root: Path
    monitor: Monitor
    progress: Progress
    console: Console
    drain_records: list[Record]
    live_file: Path
    probe_count: int


def run_system(
    ctx: Context, system: System, stack: contextlib.ExitStack, settle: bool = True
) -> dict[str, Any]:
    """Prepare, drain, live (and for the full pipeline, unless not ``settle``, the time its
    stream worker needs to finish); the consumers are stopped (and the data dropped) on
    the way out."""
    result: dict[str, Any] = {}
    with _step(ctx.progress, f"{system.label}: topics and schema in namespace {system.namespace}"):
        system.prepare()
    task = ctx.progress.add_task(f"{system.label}: preloading", total=len(ctx.drain_records))
    preload(
        ctx.services.bootstrap,
        system.namespace,
        ctx.drain_records,
        lambda k: ctx.progress.advance(task, k),
    )
    ctx.progress.remove_task(task)
    with contextlib.ExitStack() as running:
        running.callback(_stop_system, ctx, system)
        stack.callback(_stop_system, ctx, system)  # on Ctrl-C, too
        with ctx.monitor.tag(f"{system.label}.drain"):
            result["drain"] = drain(ctx, system)
        with ctx.monitor.tag(f"{system.label}.live"):
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
        _check(system, now - last_change, ctx.args.stall)
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


def worker_settle(
    ctx: Context, system: Full, result: dict[str, Any], began: float, limit_s: float = 180.0
) -> dict[str, Any]:
    """After the live phase: when the stream worker has committed every raw message (its
    rollups and error analytics have seen every event). Its throughput over the whole run
    is every event it processed over the time from its start to then."""
    task = ctx.progress.add_task(f"{system.label}: stream worker catching up", total=None)
    while True:
        lag = system.lags().get("streams", 0)
        now = time.monotonic()
        if lag == 0 or now - began > limit_s:
            break
        _check(system, 0.0, math.inf)
        time.sleep(0.5)
    ctx.progress.remove_task(task)
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
        _check(system, 0.0, math.inf)
        time.sleep(0.25)
    ctx.progress.remove_task(task)
    done = grouped >= raw
    ctx.console.print(
        f"[green]✓[/] {system.label}: {grouped:,} of {raw:,} error events grouped "
        + (f"{waited:.1f}s after the last raw row" if done else f"when giving up at {limit_s:.0f}s")
    )
    return {"raw": raw, "grouped": grouped, "after_raw_s": round(waited, 2) if done else None}


def _check(system: System, stalled_for: float, stall_limit: float) -> None:
    dead = [name for name, ok in system.alive().items() if not ok]
    if dead:
        raise PhaseFailed(f"{system.label}: {dead[0]} exited\n{system.tail(dead[0])}")
    if stalled_for > stall_limit:
        raise PhaseFailed(
            f"{system.label}: no new rows for {stall_limit:.0f}s; counters: {system.counters()}"
        )


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
        str(batch_events),
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
        _terminate(proc)
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
        for name in system.probes_seen():
            seen.setdefault(name, now)
        if time.monotonic() - last_count >= 0.25:
            last_count = time.monotonic()
            samples.append((time.time(), system.count()))
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
        _check(system, 0.0, math.inf)
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


# -- report ----------------------------------------------------------------------------------

PROCESS_ORDER = (
    "kafka",
    "kafka JIT",
    "warehouse",
    "producer",
    "consumer",
    "streams",
    "sink",
    "bench",
    "others",
    "machine",
)


def report(console: Console, results: dict[str, Any]) -> None:
    b, f = results["systems"].get("baseline"), results["systems"].get("full")
    table = Table(title="End-to-end throughput and latency (events → rows queryable)")
    table.add_column("")
    table.add_column("baseline", justify="right")
    table.add_column("full pipeline", justify="right")
    table.add_column("full / baseline", justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], Any], bool]] = [
        ("drain events/s (from start)", lambda s: s["drain"]["events_per_s"], True),
        ("drain events/s (first row → last)", lambda s: s["drain"]["steady_events_per_s"], True),
        ("drain seconds", lambda s: s["drain"]["seconds"], False),
        ("first rows after (s)", lambda s: s["drain"]["first_rows_after_s"], False),
        ("live: produced events/s", lambda s: s["live"]["achieved_rate"], True),
        (
            "live: stored events/s while producing",
            lambda s: s["live"]["stored_rate_while_producing"],
            True,
        ),
        ("live: latency p50 (s)", lambda s: s["live"]["latency_p50_s"], False),
        ("live: latency p99 (s)", lambda s: s["live"]["latency_p99_s"], False),
        (
            "live: probes seen / sent",
            lambda s: f"{s['live']['probes_seen']}/{s['live']['probes_sent']}",
            False,
        ),
        ("live: rows behind at producer stop", lambda s: s["live"]["lag_at_stop"], False),
        ("live: catch-up after stop (s)", lambda s: s["live"]["catch_up_s"], False),
        ("live: kept up", lambda s: "yes" if s["live"]["kept_up"] else "no", False),
        ("stream worker done after last row (s)", lambda s: s["worker"]["after_raw_s"], False),
        ("stream worker events/s (whole run)", lambda s: s["worker"]["events_per_s"], False),
        (
            "errors grouped / stored",
            lambda s: f"{s['errors']['grouped']}/{s['errors']['raw']}",
            False,
        ),
        ("errors all grouped after last row (s)", lambda s: s["errors"]["after_raw_s"], False),
    ]
    for title, get, ratio in rows:
        vb, vf = (_get(get, b), _get(get, f))
        r = (
            f"{vf / vb:.2f}×"
            if ratio and isinstance(vb, int | float) and isinstance(vf, int | float) and vb
            else ""
        )
        table.add_row(title, _fmt(vb), _fmt(vf), r)
    console.print(table)
    console.print(_resource_table(results))


def _get(get: Callable[[dict[str, Any]], Any], system: dict[str, Any] | None) -> Any:
    try:
        return get(system) if system else None
    except (KeyError, TypeError):
        return None


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _resource_table(results: dict[str, Any]) -> Table:
    res = results["resources"]
    tags = [
        t for t in ("baseline.drain", "baseline.live", "full.drain", "full.live") if t in res["cpu"]
    ]
    table = Table(title="Per process: peak RSS (MiB) and CPU used (cores = CPU s / wall s)")
    table.add_column("process")
    for system in ("baseline", "full"):
        table.add_column(f"RSS {system}", justify="right")
    for tag in tags:
        table.add_column(f"cores {tag}", justify="right")
    for name in PROCESS_ORDER:
        peaks = [res["peak_rss_mib"].get(s, {}).get(name) for s in ("baseline", "full")]
        cpus = [res["cpu"][t].get(name) for t in tags]
        cores = [
            None if c is None else round(c / res["wall"][t], 2)
            for c, t in zip(cpus, tags, strict=True)
        ]
        if any(v is not None for v in (*peaks, *cores)):
            table.add_row(name, *(_fmt(v) for v in peaks), *(_fmt(v) for v in cores))
    return table


def resources(monitor: Monitor) -> dict[str, Any]:
    peaks: dict[str, dict[str, int]] = {}
    for tag, by_name in monitor.peak_rss.items():
        system = tag.split(".")[0]
        for name, rss in by_name.items():
            peaks.setdefault(system, {})[name] = max(
                peaks.get(system, {}).get(name, 0), round(rss / 2**20)
            )
    wall = {t: round(w, 2) for t, w in monitor.wall.items()}
    return {"peak_rss_mib": peaks, "cpu": monitor.cpu, "wall": wall}


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=None, help="drain phase size (300000)")
    parser.add_argument("--rate", type=float, default=None, help="live events/s (20000)")
    parser.add_argument("--seconds", type=float, default=None, help="live phase length (30)")
    parser.add_argument("--quick", action="store_true", help="small numbers for a smoke run")
    parser.add_argument(
        "--kafka", metavar="BOOTSTRAP", help="use this broker instead of starting one"
    )
    parser.add_argument("--clickhouse", metavar="URL", help="use this ClickHouse HTTP URL")
    parser.add_argument("--only", choices=("baseline", "full"), help="run one system only")
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
        "--no-warmup", action="store_true", help="skip the practice run that warms the broker up"
    )
    args = parser.parse_args(argv)
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
    global batch_events
    batch_events = args.batch_events
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
        ctx = _prepare_events(args, services, root, monitor, progress, console)
        results: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(),
            "params": _params(args, ctx),
        }
        if not args.no_warmup:
            results["warm_up"] = warm_up(ctx, stack)
        results["systems"] = {}
        for cls in (Baseline, Full):
            if args.only in (None, cls.label):
                namespace = f"bench{uuid.uuid4().hex[:8]}{cls.label[0]}"
                system = cls(services, root, namespace)
                results["systems"][cls.label] = run_system(ctx, system, stack)
        results["resources"] = resources(monitor)
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
        args, services, root, monitor, progress, console, drain_records, live_file, len(probes)
    )


def _params(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
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
        "batch_rows": 20_000,
        "batch_seconds": 1.0,
        "external_services": ctx.services.external,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _remove_root(root: Path, keep: bool, console: Console) -> None:
    if keep:
        console.print(f"state kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
