"""Rounds on a three-node Kafka cluster: two stream workers and two sinks, a known set of
events, and a worker, a sink and a broker killed -9 in turn while the events flow; each
round passes only if exactly the events sent come out, rolled up and grouped once.

    .venv/bin/python -m bench.cluster [--rounds 5] [--events 2000]

Prints each round's timeline and a summary; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.cluster_round import Round, cluster_settings, run_round, start_cluster
from tests.integration.kafka_fixture import resolve_kafka_jars
from tests.integration.warehouse_fixture import free_port, start_warehouse, stop_warehouse

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=2_000, help="events of each kind per round")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="shiftright-cluster-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        jars = resolve_kafka_jars(root / "jars")
        (root / "warehouse").mkdir()
        proc, url = start_warehouse(root / "warehouse" / "data", free_port())
        stack.callback(stop_warehouse, proc)
        outcomes = [
            _one_round(root / f"round-{i}", jars, url, args.events) for i in range(args.rounds)
        ]
    _report(outcomes, args.events)


def _one_round(root: Path, jars: Path, url: str, n: int) -> tuple[str, float, Round | None]:
    began = time.monotonic()
    console.print(f"[bold]{root.name}[/]: starting a 3-node cluster")
    cluster = start_cluster(root, jars)
    try:
        done = run_round(cluster, cluster_settings(cluster, url, root / "state"), n)
    except BaseException as exc:  # a failed wait raises pytest's Failed, a BaseException
        if isinstance(exc, KeyboardInterrupt):
            raise
        console.print(f"[red]failed:[/] {str(exc)[:2000]}")
        return "failed", time.monotonic() - began, None
    finally:
        cluster.stop()
    for at, what in done.timeline:
        console.print(f"  {at:7.1f} s  {what}")
    return "exact", time.monotonic() - began, done


def _report(outcomes: list[tuple[str, float, Round | None]], n: int) -> None:
    table = Table(
        "round", "outcome", "seconds", "sent → exact (s)", title=f"{4 * n:,} events a round"
    )
    for i, (outcome, seconds, done) in enumerate(outcomes):
        settle = "–"
        if done is not None:
            marks = dict((what, at) for at, what in done.timeline)
            settle = f"{marks['all stored and rolled up, once'] - marks['all sent']:.1f}"
        table.add_row(str(i), outcome, f"{seconds:.0f}", settle)
    console.print(table)
    passed = sum(o == "exact" for o, _, _ in outcomes)
    console.print(f"{passed} of {len(outcomes)} rounds exact")


if __name__ == "__main__":
    main()
