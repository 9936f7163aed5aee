"""Offline anomaly scores with the detector the stream runs.

``shiftright detect --csv FILE`` reads ``timestamp,value`` rows (a header
row is skipped; timestamps are ISO 8601, ``YYYY-MM-DD HH:MM:SS`` (UTC) or epoch seconds /
milliseconds) and prints one score in [0, 1] per row, in input order: 0.5 is the firing
point (a tail probability of 10⁻⁵ at the default sensitivity, on any series), and an
anomaly scores above 0 once per episode (:mod:`.detector`). Each score is computed
before its row is learnt, so it depends on earlier rows only. Rows whose value is
empty, not a number or infinite print 0 and are not learnt.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TextIO

from shiftright_server.streams.alerting.detector import AnomalyDetector, DetectorConfig


def parse_ts(text: str) -> int:
    """Epoch milliseconds from ISO 8601, ``YYYY-MM-DD HH:MM:SS`` or epoch s/ms."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return int(number if number > 1e11 else number * 1000)


def scores(rows: Iterable[Sequence[str]], config: DetectorConfig) -> Iterator[float]:
    """One score per ``(timestamp, value)`` row, in order."""
    detector = AnomalyDetector(config)
    for row in rows:
        try:
            ts, value = parse_ts(row[0]), float(row[1])
        except (ValueError, IndexError):
            yield 0.0
            continue
        yield detector.score(ts, value)  # NaN and infinities score 0, unlearnt


def data_rows(f: TextIO) -> Iterator[list[str]]:
    """CSV rows, without a header row (one whose first field is not a timestamp)."""
    reader = csv.reader(f)
    for i, row in enumerate(reader):
        if not row:
            continue
        if i == 0:
            try:
                parse_ts(row[0])
            except ValueError:
                continue
        yield row


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shiftright detect", description=__doc__.split("\n")[0])
    ap.add_argument("--csv", required=True, help="timestamp,value rows ('-' for stdin)")
    ap.add_argument("--direction", choices=("up", "down", "both"), default="both")
    ap.add_argument("--sensitivity", type=float, default=0.5)
    ap.add_argument("--min-volume", type=float, default=0.0)
    ap.add_argument("--warmup", type=int, default=30)
    args = ap.parse_args(argv)
    config = DetectorConfig(args.direction, args.sensitivity, args.min_volume, args.warmup)
    f = sys.stdin if args.csv == "-" else open(args.csv, newline="", encoding="utf-8")  # noqa: SIM115
    try:
        out = sys.stdout
        for score in scores(data_rows(f), config):
            out.write(f"{score:.6f}\n")
    finally:
        if f is not sys.stdin:
            f.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
