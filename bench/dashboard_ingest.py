"""The pipeline ingesting while dashboards poll, for ``bench.dashboard --ingest-rate``.

A broker starts; the stream worker and the sink run as ``shiftright up`` starts them, in
the namespace whose database the dashboard reads; a producer process (``bench.pipeline``'s
paced producer) sends simulator events at the rate for the polling's length. Meanwhile
the caller's clients poll. Reported: events produced and stored per second while
producing, the lag when the producer stopped and how long the sink took to catch up, the
probes' event → queryable latency, and every process's CPU.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.pipeline.context import REPO
from bench.pipeline.events import PROBES_PER_SECOND, generate, with_probes
from bench.pipeline.producer import preload
from bench.pipeline.services import Services, terminate
from bench.pipeline.systems import Full

#: Events sent and drained before the measured run: the consumers have joined their
#: groups and written once before the clock starts.
WARM_UP_EVENTS = 20_000
CATCH_UP_LIMIT_S = 120.0


@dataclass
class Ingest:
    """A running pipeline in one namespace, ready to take the paced producer."""

    system: Full
    bootstrap: str
    events_file: Path
    pids: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def pipeline(
    url: str, namespace: str, rate: float, seconds: float, root: Path, seed: int = 11
) -> Iterator[Ingest]:
    """A broker, the stream worker and the sink on ``namespace`` (its database is the one
    the dashboard reads), warmed up, with ``rate × seconds`` events ready to send, made
    from ``seed``. The broker is new, so each round starts with empty topics and its
    Kafka CPU is its own. Its topics start again at offset 0 under new topic ids: the
    sink stores a later round from its first message, whatever earlier rounds (or runs
    on a kept warehouse) stored, and logs ``topic_incarnation_found`` per topic."""
    from tests.integration.kafka_fixture import start_kafka, stop_kafka

    root.mkdir(parents=True, exist_ok=True)
    launcher = start_kafka(root / "kafka")
    try:
        assert launcher.process is not None
        system = Full(Services(launcher.bootstrap, url), root, namespace)
        system.prepare()
        events_file = _events(root, rate, seconds, seed)
        ingest = Ingest(system, launcher.bootstrap, events_file, {"kafka": launcher.process.pid})
        try:
            ingest.pids.update(system.start())
            _warm_up(ingest)
            yield ingest
        finally:
            system.stop()
    finally:
        stop_kafka(launcher)


def _events(root: Path, rate: float, seconds: float, seed: int) -> Path:
    now = datetime.now(UTC)
    made = generate(
        int(rate * seconds) + WARM_UP_EVENTS, now - timedelta(minutes=5), now, seed, lambda _: None
    )
    records, probes = with_probes(made[WARM_UP_EVENTS:], max(1, round(rate / PROBES_PER_SECOND)))
    path = root / "ingest-events.pickle"
    with path.open("wb") as fh:
        data = {
            "records": records,
            "probes": probes,
            "warm_up": [r for _, r in made[:WARM_UP_EVENTS]],
        }
        pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _warm_up(ingest: Ingest) -> None:
    with ingest.events_file.open("rb") as fh:
        warm = pickle.load(fh)["warm_up"]
    before = ingest.system.count()
    preload(ingest.bootstrap, ingest.system.namespace, warm, lambda _: None)
    deadline = time.monotonic() + 60
    while ingest.system.count() < before + len(warm):
        if time.monotonic() > deadline:
            log = ingest.system.tail("sink") + "\n" + ingest.system.tail("streams")
            raise RuntimeError(
                f"the pipeline did not store the warm-up events: {ingest.system.counters()}\n{log}"
            )
        time.sleep(0.5)


def run(ingest: Ingest, rate: float, seconds: float, during: Callable[[], None]) -> dict[str, Any]:
    """Send at ``rate`` for ``seconds`` while ``during()`` runs (it returns when its own
    clock is done); the figures of the ingest."""
    system = ingest.system
    base = system.count()
    # Probe names repeat from round to round, and earlier rounds' probes stay stored: a
    # probe of this round is seen when its name is stored once more than before it.
    before = Counter(system.probes_seen())
    producer = _start_producer(ingest, rate, seconds)
    ingest.pids["producer"] = producer.pid
    samples: list[tuple[float, int]] = []
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(system, samples, seen, before, stop), daemon=True
    )
    try:
        assert producer.stdout is not None
        started = json.loads(producer.stdout.readline())["started"]
        watcher.start()
        during()
        report = json.loads(producer.stdout.read().splitlines()[-1])
        produced = report["sent"] - report["failed"] - report["undelivered"]
        done_at = _wait_for(samples, base + produced, CATCH_UP_LIMIT_S)
        stop.set()
        watcher.join()
        if done_at is not None:
            # Every event was stored by ``done_at``: a probe the watcher's last pass missed
            # was stored by then, so that time bounds its latency from above.
            for name in Counter(system.probes_seen()) - before:
                seen.setdefault(name, done_at)
    finally:
        stop.set()
        terminate(producer)
    return _figures(report, started, samples, seen, base, produced, done_at)


def _start_producer(ingest: Ingest, rate: float, seconds: float) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.pipeline", "_produce", "--events", str(ingest.events_file)]
    argv += ["--bootstrap", ingest.bootstrap, "--namespace", ingest.system.namespace]
    argv += ["--rate", str(rate), "--seconds", str(seconds)]
    log = (ingest.events_file.parent / "producer.log").open("ab")
    proc = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=log, start_new_session=True
    )
    log.close()
    return proc


def _watch(
    system: Full,
    samples: list[tuple[float, int]],
    seen: dict[str, float],
    before: Counter[str],
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        now = time.time()
        samples.append((now, system.count()))
        for name in Counter(system.probes_seen()) - before:
            seen.setdefault(name, now)
        stop.wait(0.25)


def _wait_for(samples: list[tuple[float, int]], target: int, limit_s: float) -> float | None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if samples and samples[-1][1] >= target:
            return samples[-1][0]
        time.sleep(0.25)
    return None


def _figures(
    report: dict[str, Any],
    started: float,
    samples: list[tuple[float, int]],
    seen: dict[str, float],
    base: int,
    produced: int,
    done_at: float | None,
) -> dict[str, Any]:
    stopped = report["stopped"]
    span = max(1e-9, stopped - started)
    at_stop = max((c for t, c in samples if t <= stopped), default=base)
    latencies = sorted(seen[n] - t for n, t in report["probes"].items() if n in seen)
    return {
        "produced_per_s": round(report["sent"] / span),
        "stored_per_s": round((at_stop - base) / span),
        "lag_at_stop": base + produced - at_stop,
        "catch_up_s": None if done_at is None else round(max(0.0, done_at - stopped), 1),
        "probes": f"{len(latencies)} of {len(report['probes'])}",
        "latency_p50_s": _nearest(latencies, 0.5),
        "latency_p99_s": _nearest(latencies, 0.99),
    }


def _nearest(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 2) if values else None
