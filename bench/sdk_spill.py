"""The SDK's disk spill on vs off, in one run (``python -m bench.sdk_overhead --spill``).

1. App-thread cost of ``track()`` with the broker unreachable, rounds alternating between
   an SDK without a spill (events wait in memory, then drop) and one with it (after
   ``spill_after`` the sender thread writes them to disk): the app thread does the same
   work; what differs is the sender thread it shares the GIL with.
2. Total CPU per event of the whole process (app + sender thread), each case in a process
   of its own: no spill, a spill that stays idle (the broker answers), and a spill that
   every event goes through (written while the broker is away, read back and sent when
   it answers). A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.sdk_overhead import NullTransport, init_without_kafka, measure, pct

Report = Callable[[str | None], None]


def main(args: argparse.Namespace) -> None:
    if args.spill_total:
        print_total(args.spill_total, args.n * args.rounds)
        return
    print(f"load average before: {_load()}")
    app_thread(args)
    print("\ntotal CPU per track() event, app + sender thread, each case in its own process:\n")
    for case in ("off", "idle", "through"):
        common = ["--n", str(args.n), "--rounds", str(args.rounds)]
        subprocess.run(
            [sys.executable, "-m", "bench.sdk_overhead", "--spill-total", case, *common],
            check=False,
        )
    print(f"\nload average after: {_load()}  (the machine is shared: compare within this run)")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _init(spill_dir: str) -> None:
    import shiftright

    shiftright.init(
        app="bench",
        env="bench",
        kafka="127.0.0.1:9",
        health_interval=0,
        rate_limits={},
        spill_dir=spill_dir,
        spill_after=0.2,
    )


def app_thread(args: argparse.Namespace) -> None:
    import shiftright

    logging.getLogger("shiftright").setLevel(logging.CRITICAL)  # the broker is away on purpose

    def track(n: int) -> None:
        shiftright.track("checkout.submit", user_id="u-42", customer_id="acme", duration_ms=42.0)

    samples: dict[str, list[int]] = {"spill off": [], "spill on": []}
    spilled = 0
    with tempfile.TemporaryDirectory(prefix="sdk-spill-bench-") as root:
        for round_ in range(args.rounds):
            for name in samples:
                _init(os.path.join(root, str(round_)) if name == "spill on" else "")
                measure(track, None, 200)  # warm-up, then the state being measured:
                spill = name == "spill on"
                _wait(lambda: _settled(spill))  # noqa: B023 - called before the loop moves on
                gc.collect()
                samples[name].extend(measure(track, None, args.n))
                if name == "spill on":
                    shiftright.flush(0.5)
                    spilled += shiftright.stats()["spill"]["events"]
                shiftright.close(0.2)
    print(
        f"\napp-thread cost of track(), µs, broker unreachable ({args.rounds} alternating rounds)\n"
    )
    print(f"{'case':<14}{'calls':>9}{'p50':>10}{'p90':>10}{'p99':>10}")
    for name, values in samples.items():
        print(
            f"{name:<14}{len(values):>9,}{pct(values, 0.5):>10.2f}{pct(values, 0.9):>10.2f}"
            f"{pct(values, 0.99):>10.2f}"
        )
    on, off = samples["spill on"], samples["spill off"]
    print(
        f"ratio on/off: p50 {pct(on, 0.5) / pct(off, 0.5):.3f}  p99 {pct(on, 0.99) / pct(off, 0.99):.3f}"
        f"   (events on disk at the end of the spill rounds: {spilled:,})"
    )


def _settled(spill: bool) -> bool:
    import shiftright

    stats = shiftright.stats()
    return stats["queued"] == 0 and (not spill or bool(stats["spill"]["engaged"]))


def _wait(done: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


class AwayThenBack(NullTransport):
    """The broker is away (nothing acknowledged, a buffer of 8 messages) until ``back``."""

    def __init__(self, config: object) -> None:
        super().__init__(config)
        self.away = True

    def produce(
        self, topic: str, value: bytes, key: bytes, headers: object, on_delivery: Report
    ) -> None:
        if self.away and len(self.pending) >= 8:
            raise BufferError("queue full")
        super().produce(topic, value, key, headers, on_delivery)

    def poll(self, timeout: float) -> None:
        if not self.away:
            super().poll(timeout)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self.pending) if self.away else 0

    def purge_queued(self) -> None:
        pending, self.pending = self.pending, []
        for report in pending:
            report("_PURGE_QUEUE")


def print_total(case: str, n: int) -> None:
    import shiftright

    made: list[Any] = []

    def factory(config: object) -> NullTransport:
        made.append(AwayThenBack(config) if case == "through" else NullTransport(config))
        return made[-1]  # type: ignore[no-any-return]  # the list holds transports

    with tempfile.TemporaryDirectory(prefix="sdk-spill-bench-") as root:
        init_without_kafka(
            n, factory, spill_dir=root if case != "off" else "", spill_max_bytes=4 * 1024**3
        )
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            shiftright.track(
                "checkout.submit", user_id="u-42", customer_id="acme", duration_ms=42.0
            )
        peak = 0
        if case == "through":  # everything on disk, then the broker answers
            _wait(lambda: shiftright.stats()["queued"] == 0, 120)
            peak = shiftright.stats()["spill"]["events"]
            made[-1].away = False
        shiftright.flush(120)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stats = shiftright.stats()
        shiftright.close(1)
    label = {"off": "spill off", "idle": "spill on, idle", "through": "spill on, all through disk"}
    print(
        f"{label[case]:<28} {cpu / n * 1e6:7.2f} µs/event  ({n:,} events, {wall:.2f} s wall, "
        f"delivered {stats['delivered']:,}, dropped {sum(stats['dropped'].values()):,}"
        + (f", peak on disk {peak:,} events" if case == "through" else "")
        + ")"
    )
