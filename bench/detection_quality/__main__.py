"""Detection quality on a labelled corpus: windowed scores per profile, per anomaly kind,
precision, recall and detection delay, for each detector side by side.

The corpus (:mod:`bench.detection_quality.corpus`) is generated from seeds; even seeds
are the training half, odd seeds the held-out half. Per detector and profile one
threshold for the whole corpus is chosen on the training half and reported on the
held-out half (:mod:`bench.detection_quality.scoring`). ``--rule-kinds`` also prints the
per-rule-kind table (threshold, change, anomaly, absence rules through the evaluator,
:mod:`bench.detection_quality.rule_kinds`). Prints figures; asserts nothing.

    python -m bench.detection_quality [--seeds 8] [--detectors a,b] [--rule-kinds]
"""

from __future__ import annotations

import argparse
import time

from bench.detection_quality import report
from bench.detection_quality.corpus import FAMILIES, build
from bench.detection_quality.detectors import DETECTORS
from bench.detection_quality.scoring import Scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=8, help="series per family (half held out)")
    ap.add_argument("--detectors", default=",".join(DETECTORS))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--rule-kinds", action="store_true", help="also the per-rule-kind table")
    args = ap.parse_args()
    corpus = build(tuple(args.families.split(",")), range(args.seeds))
    report.corpus(corpus)
    names = args.detectors.split(",")
    scored: dict[str, list[Scored]] = {}
    for name in names:
        began = time.perf_counter()
        scored[name] = [Scored.of(s, DETECTORS[name](s)) for s in corpus]
        took = time.perf_counter() - began
        points = sum(len(s.values) for s in corpus)
        print(f"{name:18} scored {points:,} points in {took:.1f} s ({took / points * 1e6:.1f} µs)")
    report.results(scored)
    if args.rule_kinds:
        from bench.detection_quality import rule_kinds

        rule_kinds.run(seeds=6, rate=300.0, noise=0.1)


if __name__ == "__main__":
    main()
