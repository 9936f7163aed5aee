"""App-thread cost of the shiftright SDK next to sentry-sdk and posthog, in one run.

    python -m bench.sdk_overhead [--n 20000] [--rounds 5]
    python -m bench.sdk_overhead --spill [--n 20000] [--rounds 5]   # the disk spill on vs off

What is timed is only the call the app makes (``track()``, ``capture_exception()``, …):
each SDK hands the rest to its own background thread. All three point at addresses where
nothing listens (Kafka at 127.0.0.1:9, Sentry's DSN and PostHog's host at 127.0.0.1:9),
so nothing is delivered; each SDK buffers up to its bound and then drops, which is the
cost an app pays while its backend is away. Rounds interleave the SDKs so machine noise
hits all of them alike. A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

Op = Callable[[int], object]


def _deep(depth: int, n: int) -> None:
    """Raise from ``depth`` frames down, like an exception from inside a service layer."""
    if depth == 0:
        raise ValueError(f"order {n} has no lines")
    _deep(depth - 1, n)


def _fresh_error(n: int) -> BaseException:
    try:
        _deep(8, n)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def setup(lean: bool = False) -> dict[str, tuple[Op, Callable[[int], object] | None]]:
    """name -> (timed call, untimed preparation of its argument). ``lean``: sentry-sdk
    without local variables, source context or default integrations (its cheapest)."""
    import posthog
    import sentry_sdk
    import shiftright

    logging.getLogger("shiftright").setLevel(logging.CRITICAL)  # the broker is away on purpose
    logging.getLogger("posthog").setLevel(logging.CRITICAL)
    logging.getLogger("sentry_sdk").setLevel(logging.CRITICAL)
    shiftright.init(
        app="bench",
        env="bench",
        release="1",
        kafka="127.0.0.1:9",
        health_interval=0,
        rate_limits={},
    )  # every capture does its full work
    sentry_sdk.init(  # lean: no locals, no source context, no default integrations
        dsn="http://public@127.0.0.1:9/1",
        traces_sample_rate=0.0,
        include_local_variables=not lean,
        include_source_context=not lean,
        default_integrations=not lean,
    )
    sentry = "sentry_sdk(lean)" if lean else "sentry_sdk"
    ph = posthog.Posthog("phc_bench", host="http://127.0.0.1:9", max_retries=0)

    def sr_track(n: int) -> None:
        shiftright.track("checkout.submit", user_id="u-42", customer_id="acme", duration_ms=42.0)

    def ph_capture(n: int) -> None:
        ph.capture(
            "checkout.submit",
            distinct_id="u-42",
            properties={"customer_id": "acme", "duration_ms": 42.0},
        )

    errors: dict[int, BaseException] = {}

    def prepare(n: int) -> object:
        errors[0] = _fresh_error(n)
        return None

    return {
        "shiftright.track": (sr_track, None),
        "posthog.capture": (ph_capture, None),
        "shiftright.capture_exception": (
            lambda n: shiftright.capture_exception(errors[0]),
            prepare,
        ),
        f"{sentry}.capture_exception": (
            lambda n: sentry_sdk.capture_exception(errors[0]),
            prepare,
        ),
        "shiftright.capture_message": (lambda n: shiftright.capture_message("stock low"), None),
        f"{sentry}.capture_message": (lambda n: sentry_sdk.capture_message("stock low"), None),
    }


def measure(op: Op, prepare: Callable[[int], object] | None, n: int) -> list[int]:
    out = [0] * n
    clock = time.perf_counter_ns
    for i in range(n):
        if prepare is not None:
            prepare(i)
        started = clock()
        op(i)
        out[i] = clock() - started
    return out


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0  # µs


def run(
    ops: dict[str, tuple[Op, Callable[[int], object] | None]], args: argparse.Namespace
) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {name: [] for name in ops}
    for op, prepare in ops.values():  # warm-up: imports, caches, first allocations
        measure(op, prepare, 200)
    for _ in range(args.rounds):
        for name, (op, prepare) in ops.items():
            n = args.n_errors if "capture_" in name else args.n
            gc.collect()
            samples[name].extend(measure(op, prepare, n))
    return samples


def print_rows(samples: dict[str, list[int]]) -> None:
    for name, values in samples.items():
        print(
            f"{name:<34}{len(values):>9,}{pct(values, 0.5):>10.2f}{pct(values, 0.9):>10.2f}"
            f"{pct(values, 0.99):>10.2f}{statistics.fmean(values) / 1000:>10.2f}"
        )


def print_ratios(samples: dict[str, list[int]], pairs: list[tuple[str, str]]) -> None:
    for ours, theirs in pairs:
        a, b = samples[ours], samples[theirs]
        print(
            f"{ours:<30} vs {theirs:<34} p50 {pct(a, 0.5) / pct(b, 0.5):6.3f}"
            f"   p99 {pct(a, 0.99) / pct(b, 0.99):6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls per SDK per round (events)")
    parser.add_argument("--n-errors", type=int, default=2_000, help="calls per round (errors)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--total-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lean-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spill", action="store_true", help="the disk spill on vs off")
    parser.add_argument("--spill-total", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spill or args.spill_total:
        from bench.sdk_spill import main as spill_main

        spill_main(args)
        return
    if args.total_only:  # a process of its own: no other SDK's threads on the CPU clock
        print_total_cost(args.n * args.rounds)
        return
    if args.lean_only:  # sentry-sdk can have one client per process
        samples = run({k: v for k, v in setup(lean=True).items() if "capture_" in k}, args)
        print_rows(samples)
        print()
        print_ratios(
            samples,
            [
                ("shiftright.capture_exception", "sentry_sdk(lean).capture_exception"),
                ("shiftright.capture_message", "sentry_sdk(lean).capture_message"),
            ],
        )
        return
    samples = run(setup(), args)
    print(
        f"\napp-thread cost per call, µs ({args.rounds} interleaved rounds; backends unreachable)\n"
    )
    print(f"{'call':<34}{'calls':>9}{'p50':>10}{'p90':>10}{'p99':>10}{'mean':>10}")
    print_rows(samples)
    print("\nratios (shiftright / other; below 1 means shiftright costs the app less)\n")
    print_ratios(
        samples,
        [
            ("shiftright.track", "posthog.capture"),
            ("shiftright.capture_exception", "sentry_sdk.capture_exception"),
            ("shiftright.capture_message", "sentry_sdk.capture_message"),
        ],
    )
    track = samples["shiftright.track"]
    print(
        f"\ngoal track() p50 < 5 µs: {pct(track, 0.5):.2f} µs;  p99 < 50 µs: {pct(track, 0.99):.2f} µs"
    )

    import shiftright

    print(f"shiftright SDK counters: {shiftright.stats()}")
    shiftright.close(0.5)
    common = ["--n", str(args.n), "--n-errors", str(args.n_errors), "--rounds", str(args.rounds)]
    print(
        "\nagainst sentry-sdk at its cheapest (no locals, no source context, no default"
        " integrations), in a process of its own:\n"
    )
    subprocess.run(
        [sys.executable, "-m", "bench.sdk_overhead", "--lean-only", *common], check=False
    )
    subprocess.run(
        [sys.executable, "-m", "bench.sdk_overhead", "--total-only", *common], check=False
    )


class NullTransport:
    """Accepts every message and reports it delivered: the SDK's own work, without Kafka."""

    def __init__(self, config: object) -> None:
        self.pending: list[Callable[[str | None], None]] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes,
        headers: object,
        on_delivery: Callable[[str | None], None],
    ) -> None:
        self.pending.append(on_delivery)

    def poll(self, timeout: float) -> None:
        pending, self.pending = self.pending, []
        for report in pending:
            report(None)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def close(self) -> None:
        pass


def init_without_kafka(n: int, transport: Callable[[Any], Any], **options: Any) -> None:
    """The SDK with nothing but its own work: room for ``n`` events, no hooks or health."""
    import shiftright

    shiftright.init(
        app="bench",
        env="bench",
        kafka="-",
        health_interval=0,
        hooks=False,
        logging_level=None,
        transport=transport,
        queue_size=n + 1,
        **options,
    )


def print_total_cost(n: int) -> None:
    """CPU of the whole process per event: the app-thread call plus the sender thread's
    batching, scrubbing and JSON encoding (what the app pays in total, GIL included)."""
    import shiftright

    init_without_kafka(n, NullTransport)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        shiftright.track("checkout.submit", user_id="u-42", customer_id="acme", duration_ms=42.0)
    shiftright.flush(60)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = shiftright.stats()
    shiftright.close(1)
    print(
        f"\ntotal CPU per track() event, app + sender thread, no Kafka: {cpu / n * 1e6:.2f} µs "
        f"({n:,} events in {wall:.2f} s wall, {n / wall:,.0f} events/s; delivered {stats['delivered']:,})"
    )


if __name__ == "__main__":
    main()
