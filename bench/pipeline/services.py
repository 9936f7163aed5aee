"""Setup: the broker and the warehouse the systems under test share, and process helpers."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress


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
        with progress_step(progress, "Starting Apache Kafka (jars from ~/.m2 or Maven Central)"):
            launcher = start_kafka(state / "kafka")
            stack.callback(stop_kafka, launcher)
        assert launcher.process is not None
        bootstrap, pids["kafka"] = launcher.bootstrap, launcher.process.pid
    if not url:
        with progress_step(progress, "Starting the embedded warehouse (chDB)"):
            (state / "warehouse").mkdir(parents=True, exist_ok=True)
            proc, url = start_warehouse(state / "warehouse" / "data", free_port())
            stack.callback(stop_warehouse, proc)
        pids["warehouse"] = proc.pid
    progress.console.print(f"[green]✓[/] Kafka {bootstrap} · ClickHouse {url}")
    return Services(bootstrap, url, pids, external=bool(args.kafka or args.clickhouse))


@contextlib.contextmanager
def progress_step(progress: Progress, what: str) -> Iterator[None]:
    task = progress.add_task(what, total=None)
    try:
        yield
    finally:
        progress.remove_task(task)


def terminate(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
