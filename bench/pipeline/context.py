"""What every phase of a run shares: where things are, the run's context, how a phase fails."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from bench.pipeline.engines import EngineCounters
from bench.pipeline.events import Record
from bench.pipeline.monitor import Monitor
from bench.pipeline.services import Services

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"


class PhaseFailed(RuntimeError):
    """A phase could not finish (a component died or stopped making progress)."""


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
    engines: EngineCounters
