"""The dashboard with its alerting service over fakes: the configuration store in memory
(as the CLI tests use it) and a warehouse client that answers the backtest's rollup
reads from rows a test sets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftright_server.infra.api.dashboard_desk import ServiceDesk
from shiftright_server.schemas.records import Rollup

from tests.unit.test_alerts_cli import FakeStore

COLUMNS = (
    "app, env, kind, key, bucket_start, bucket_seconds, count, sums, mins, maxs, "
    "first_ts, last_ts, source_partition, emitted_at"
)


class FakeRollups:
    """``query`` (the count) and ``query_row_block_stream`` (the rows) over ``rollups``."""

    def __init__(self) -> None:
        self.rollups: list[Rollup] = []
        self.closed = 0

    def _wanted(self, params: dict[str, Any]) -> list[Rollup]:
        return [
            r
            for r in self.rollups
            if r.kind == params["kind"] and params["start"] <= r.bucket_start < params["end"]
        ]

    def query(self, sql: str, parameters: dict[str, Any]) -> Any:
        class Result:
            result_rows = [[len(self._wanted(parameters))]]

        return Result()

    @contextmanager
    def query_row_block_stream(
        self, sql: str, parameters: dict[str, Any]
    ) -> Iterator[Iterator[list[tuple[Any, ...]]]]:
        names = [c.strip() for c in COLUMNS.split(",")]
        rows = [tuple(getattr(r, n) for n in names) for r in self._wanted(parameters)]
        yield iter([rows])

    def close(self) -> None:
        self.closed += 1


def cpu_minutes(minutes: int, high: range, host: str = "web-1") -> list[Rollup]:
    """One health rollup a minute for ``minutes`` up to now: CPU 0.95 in the minutes
    ``high`` (counted back from now), 0.2 otherwise."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    found = []
    for back in range(minutes, 0, -1):
        start = now - timedelta(minutes=back)
        cpu = 0.95 if back in high else 0.2
        found.append(
            Rollup(
                app="checkout",
                env="prod",
                kind="health",
                key=host,
                bucket_start=start,
                bucket_seconds=60,
                count=6,
                sums={"system.cpu.utilization": cpu * 6},
                maxs={"system.cpu.utilization": cpu},
                mins={"system.cpu.utilization": cpu},
                first_ts=start,
                last_ts=start + timedelta(seconds=59),
                source_partition=0,
                emitted_at=start + timedelta(seconds=70),
            )
        )
    return found


def service_desk() -> tuple[ServiceDesk, FakeStore, FakeRollups]:
    store, rollups = FakeStore(), FakeRollups()
    return ServiceDesk(store, lambda: rollups), store, rollups
