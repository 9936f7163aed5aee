"""Measurement: what the warehouse and the broker did per phase, from their own counters.

The warehouse's ``system.events`` (inserts, rows, parts written, merges and their time),
the broker's request counters and its threads' CPU by name (``kafka.network``
RequestMetrics and the JVM's ThreadMXBean over JMX, read by ``KafkaRequests.java`` attached
to the broker's JVM), and both processes' CPU by thread group, kernel time and page faults
(:mod:`bench.pipeline.threads`) are read before and after each phase; the differences go to
the figures. A side is skipped when it cannot be read (an external service, no JDK), with
the reason in the figures.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bench.pipeline import threads

#: The warehouse's counters read per phase (ClickHouse ProfileEvents).
WAREHOUSE_EVENTS = (
    "InsertQuery",
    "InsertedRows",
    "MergeTreeDataWriterBlocks",
    "MergeTreeDataWriterRows",
    "DuplicatedInsertedBlocks",
    "Merge",
    "MergedRows",
    "MergeTotalMilliseconds",
    "InsertQueryTimeMicroseconds",
    "SelectQuery",
    "UserTimeMicroseconds",
    "SystemTimeMicroseconds",
)

#: Broker counters that are not request types, or split a type counted already (Fetch).
_NOT_REQUESTS = frozenset(
    {
        "FetchConsumer",
        "FetchFollower",
        "MessagesInPerSec",
        "BytesInPerSec",
        "BytesOutPerSec",
        "TotalFetchRequestsPerSec",
        "TotalProduceRequestsPerSec",
    }
)

_JAVA_HELPER = Path(__file__).with_name("KafkaRequests.java")


class EngineCounters:
    """Reads both engines' counters around each tagged phase."""

    def __init__(
        self, clickhouse_url: str, kafka_pid: int | None, warehouse_pid: int | None = None
    ) -> None:
        self._url = clickhouse_url
        self._pids = {"kafka threads": (kafka_pid, "jvm"), "warehouse threads": (warehouse_pid, "")}
        self._kafka: subprocess.Popen[str] | None = None
        self.notes: dict[str, str] = {}
        self.deltas: dict[str, dict[str, dict[str, int]]] = {}
        if kafka_pid is not None:
            self._start_kafka_reader(kafka_pid)

    def _start_kafka_reader(self, pid: int) -> None:
        try:
            self._kafka = subprocess.Popen(
                ["java", str(_JAVA_HELPER), str(pid)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError as exc:
            self.notes["kafka"] = f"no JMX reader: {exc}"

    def close(self) -> None:
        proc, self._kafka = self._kafka, None
        if proc is not None:
            with contextlib.suppress(OSError):
                _pipe(proc.stdin).close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @contextlib.contextmanager
    def tag(self, tag: str) -> Iterator[None]:
        before = self.snapshot()
        try:
            yield
        finally:
            after = self.snapshot()
            self.deltas[tag] = {
                side: {k: v - before[side].get(k, 0) for k, v in counts.items()}
                for side, counts in after.items()
                if side in before
            }

    def snapshot(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        warehouse = self._warehouse()
        if warehouse is not None:
            out["warehouse"] = warehouse
        kafka = self._kafka_counts()
        if kafka is not None:
            out["kafka"] = {k: v for k, v in kafka.items() if not k.startswith("cpu:")}
            out["kafka java threads"] = {k: v for k, v in kafka.items() if k.startswith("cpu:")}
        for side, (pid, group_of) in self._pids.items():
            found = threads.snapshot(pid, group_of) if pid is not None else None
            if found is not None:
                out[side] = found
        return out

    def _warehouse(self) -> dict[str, int] | None:
        names = ", ".join(f"'{name}'" for name in WAREHOUSE_EVENTS)
        sql = f"SELECT event, value FROM system.events WHERE event IN ({names}) FORMAT JSONEachRow"
        url = f"{self._url}/?{urllib.parse.urlencode({'query': sql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                rows = [json.loads(line) for line in reply.read().splitlines() if line]
        except OSError as exc:
            self.notes["warehouse"] = f"system.events unreadable: {exc}"
            return None
        return {name: int(row["value"]) for row in rows for name in [row["event"]]}

    def _kafka_counts(self) -> dict[str, int] | None:
        proc = self._kafka
        if proc is None:
            return None
        try:
            _pipe(proc.stdin).write("\n")
            _pipe(proc.stdin).flush()
            line = _pipe(proc.stdout).readline()
            return {k: int(v) for k, v in json.loads(line).items()}
        except (OSError, ValueError) as exc:
            self.notes["kafka"] = f"JMX reader failed: {exc}"
            self._kafka = None
            return None


def _pipe(stream: IO[str] | None) -> IO[str]:
    assert stream is not None
    return stream


def summary(deltas: dict[str, dict[str, int]], events: int, seconds: float) -> dict[str, Any]:
    """The phase's figures a reader compares: inserts and parts per second, rows per
    insert, merge time per event, broker requests per second by type, and each engine's
    CPU per event by thread group."""
    out = _counts(deltas, events, seconds)
    for side, prefix in (("warehouse threads", "warehouse"), ("kafka threads", "kafka")):
        if deltas.get(side):
            figures = threads.per_event(deltas[side], events)
            out.update({f"{prefix} {name}": value for name, value in figures.items()})
    java = deltas.get("kafka java threads", {})
    for name, ms in sorted(java.items(), key=lambda item: -item[1]):
        if ms * 1000 / events >= 0.1:
            out[f"kafka java {name[4:]} µs/event"] = round(ms * 1000 / events, 1)
    return out


def _counts(deltas: dict[str, dict[str, int]], events: int, seconds: float) -> dict[str, Any]:
    w, k = deltas.get("warehouse", {}), deltas.get("kafka", {})
    out: dict[str, Any] = {}
    if w and seconds > 0:
        inserts = w.get("InsertQuery", 0)
        out["inserts/s"] = round(inserts / seconds, 1)
        out["rows per insert"] = round(w.get("InsertedRows", 0) / inserts) if inserts else None
        out["parts written/s"] = round(w.get("MergeTreeDataWriterBlocks", 0) / seconds, 1)
        out["merges/s"] = round(w.get("Merge", 0) / seconds, 1)
        out["merge ms per 1k events"] = round(w.get("MergeTotalMilliseconds", 0) / events * 1000, 1)
        out["insert ms per 1k events"] = round(
            w.get("InsertQueryTimeMicroseconds", 0) / 1000 / events * 1000, 1
        )
        out["selects/s"] = round(w.get("SelectQuery", 0) / seconds, 1)
    if k and seconds > 0:
        for name in ("Produce", "FetchConsumer", "OffsetCommit", "Heartbeat", "Metadata"):
            out[f"kafka {name}/s"] = round(k.get(name, 0) / seconds, 1)
        requests = sum(v for n, v in k.items() if n not in _NOT_REQUESTS)
        out["kafka requests/s"] = round(requests / seconds, 1)
        out["kafka MB out/s"] = round(k.get("BytesOutPerSec", 0) / seconds / 1e6, 1)
    return out
