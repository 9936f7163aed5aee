"""Cost of the stream's anomaly detector: µs per point, state bytes per series.

One worker's load: ``--series`` detectors (default 10,000), each fed ``--points`` points
of five-minute traffic in turn (series interleaved, as a worker sees them), then each
saved and restored through its changelog form. Also one series fed five weeks, so every
daily and weekly slot holds a value, for the largest state. Prints figures; asserts
nothing.

    python -m bench.detection_speed [--series 10000] [--points 60]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from shiftright_server.streams.alerting.detector import AnomalyDetector, DetectorConfig

T0 = 1_795_392_000_000
STEP = 300_000


def value(rng: random.Random, i: int, base: float) -> float:
    hour = (i * STEP % 86_400_000) / 3_600_000
    return base * (1.2 + math.sin(2 * math.pi * hour / 24)) + rng.gauss(0, base * 0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=60)
    args = ap.parse_args()
    rng = random.Random(1)
    config = DetectorConfig()
    dets = [AnomalyDetector(config) for _ in range(args.series)]
    bases = [rng.uniform(5, 5000) for _ in dets]
    feed = [[value(rng, i, b) for b in bases] for i in range(args.points)]
    began = time.perf_counter()
    for i, row in enumerate(feed):
        ts = T0 + i * STEP
        for det, v in zip(dets, row, strict=True):
            det.score(ts, v)
    took = time.perf_counter() - began
    points = args.series * args.points
    print(f"{args.series:,} series × {args.points} points: {took / points * 1e6:.1f} µs per point")
    began = time.perf_counter()
    saved = [d.dumps() for d in dets]
    for raw in saved:
        AnomalyDetector.loads(config, raw)
    io = time.perf_counter() - began
    sizes = sorted(len(s) for s in saved)
    print(
        f"state: {sum(sizes) / len(sizes):,.0f} B mean, {sizes[-1]:,} B max per series "
        f"({sum(sizes) / 1e6:.1f} MB for all); save + restore {io / len(dets) * 1e6:.0f} µs"
    )
    _long_series(config, rng)


def _long_series(config: DetectorConfig, rng: random.Random) -> None:
    det = AnomalyDetector(config)
    n = 35 * 288
    values = [value(rng, i, 300.0) for i in range(n)]
    began = time.perf_counter()
    for i, v in enumerate(values):
        det.score(T0 + i * STEP, v)
    took = time.perf_counter() - began
    print(
        f"one series, five weeks ({n:,} points): {took / n * 1e6:.1f} µs per point, "
        f"state {len(det.dumps()):,} B"
    )


if __name__ == "__main__":
    main()
