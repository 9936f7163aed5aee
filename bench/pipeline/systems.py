"""Setup: the systems under test, each a consumer set in its own namespace and database."""

from __future__ import annotations

import abc
import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shiftright_server.infra.settings import KafkaSettings, Settings
from shiftright_server.schemas import topics

from bench.pipeline.context import REPO, PhaseFailed
from bench.pipeline.events import PROBE_APP, PROBE_ENV, RAW_TABLES
from bench.pipeline.services import Services, terminate


def sink_options(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every system runs with, from the command line: the sink's, and
    ``workers`` (the stream workers of the full pipeline, taken out before the sink's
    settings are made)."""
    options = {
        "batch_rows": args.sink_batch_rows,
        "batch_seconds": args.sink_batch_seconds,
        "instances": getattr(args, "sinks", None),
        "workers": getattr(args, "workers", None),
    }
    return {name: value for name, value in options.items() if value is not None}


class System(abc.ABC):
    """One consumer set under test, in its own namespace and database."""

    label = ""

    def __init__(
        self,
        services: Services,
        root: Path,
        namespace: str,
        sink_options: Mapping[str, Any] | None = None,
    ) -> None:
        from shiftright_server.infra.settings import (
            ClickHouseSettings,
            Settings,
            SinkSettings,
            StreamSettings,
        )

        self.namespace = namespace
        self.state = root / self.label
        options = dict(sink_options or {})
        workers = options.pop("workers", 1)
        self.settings = Settings(
            state_dir=self.state,
            namespace=namespace,
            kafka=KafkaSettings(bootstrap=services.bootstrap),
            clickhouse=ClickHouseSettings(url=services.clickhouse, database=namespace),
            sink=SinkSettings(group_id=self.group_id(), **options),
            streams=StreamSettings(workers=workers),
        )
        self._client: Any = None
        self.started_at = 0.0

    def group_id(self) -> str:
        from shiftright_server.infra.settings import SinkSettings

        return SinkSettings().group_id

    def prepare(self) -> None:
        from shiftright_server.infra.clickhouse import apply_schema, get_client
        from shiftright_server.infra.kafka.topics import create_topics

        self.state.mkdir(parents=True, exist_ok=True)
        create_topics(self.settings)
        apply_schema(self.settings)
        self._client = get_client(self.settings.clickhouse, database=self.namespace)

    def count(self) -> int:
        total = " + ".join(f"(SELECT count() FROM {t})" for t in RAW_TABLES)
        return int(self._client.command(f"SELECT {total}"))

    def probes_seen(self) -> list[str]:
        rows = self._client.query(
            "SELECT name FROM events_usage WHERE app = {a:String} AND env = {e:String}",
            parameters={"a": PROBE_APP, "e": PROBE_ENV},
        ).result_rows
        return [str(r[0]) for r in rows]

    def count_and_probes(self) -> tuple[int, list[str]]:
        """Rows stored and the probes among them, in one query (the warehouse pays for
        the bench's polling: one statement per look, not two)."""
        total = " + ".join(f"(SELECT count() FROM {t})" for t in RAW_TABLES)
        probes = (
            "SELECT groupArray(name) FROM events_usage WHERE app = {a:String} AND env = {e:String}"
        )
        count, names = self._client.query(
            f"SELECT {total}, ({probes})", parameters={"a": PROBE_APP, "e": PROBE_ENV}
        ).result_rows[0]
        return int(count), [str(name) for name in names]

    def lags(self) -> dict[str, int]:
        """Kafka consumer-group lag over the raw topics, per group of this system."""
        from shiftright_server.infra.ops.status import PipelineFigures, kafka_figures

        figures = PipelineFigures()
        kafka_figures(self.settings, figures)
        return {role: lag for role, lag in figures.lag.items() if role in self.roles()}

    def drop(self) -> None:
        """Remove this system's database and topics (the next system starts clean)."""
        from confluent_kafka.admin import AdminClient

        with contextlib.suppress(Exception):
            self._client.command(f"DROP DATABASE IF EXISTS {self.namespace} SYNC")
        admin = AdminClient(
            {"bootstrap.servers": self.settings.kafka.bootstrap_servers, "log_level": 3}
        )
        names = [
            topics.named(t, self.namespace)
            for t in (*topics.EVENT_TOPICS, topics.DLQ_EVENTS, topics.ROLLUPS)
        ]
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result()

    @abc.abstractmethod
    def roles(self) -> tuple[str, ...]:
        """Implemented by each system."""

    @abc.abstractmethod
    def start(self) -> dict[str, int]:
        """Implemented by each system."""

    @abc.abstractmethod
    def alive(self) -> dict[str, bool]:
        """Implemented by each system."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Implemented by each system."""

    @abc.abstractmethod
    def counters(self) -> dict[str, Any]:
        """Implemented by each system."""

    @abc.abstractmethod
    def tail(self, name: str) -> str:
        """Implemented by each system."""


class Baseline(System):
    """The bare consumer: json.loads and a columnar insert per event (``bench.baseline``)."""

    label = "baseline"
    module = "bench.baseline"

    def __init__(
        self,
        services: Services,
        root: Path,
        namespace: str,
        sink_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(services, root, namespace, sink_options)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.state / "consumer.log"
        self._stats = self.state / "consumer.json"

    def group_id(self) -> str:
        from bench.baseline import GROUP_ID

        return GROUP_ID

    def roles(self) -> tuple[str, ...]:
        return ("sink",)

    def start(self) -> dict[str, int]:
        s = self.settings
        argv = [
            sys.executable,
            "-m",
            self.module,
            "--bootstrap",
            s.kafka.bootstrap_servers,
            "--clickhouse",
            s.clickhouse.http_url,
            "--namespace",
            self.namespace,
            "--database",
            self.namespace,
            "--batch-rows",
            str(s.sink.batch_rows),
            "--batch-seconds",
            str(s.sink.batch_seconds),
            "--stats",
            str(self._stats),
        ]
        with self._log.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return {"consumer": self._proc.pid}

    def alive(self) -> dict[str, bool]:
        return {"consumer": self._proc is not None and self._proc.poll() is None}

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc)

    def counters(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._stats.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def tail(self, name: str) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])
        return "(no log)"


class Full(System):
    label = "full"

    def __init__(
        self,
        services: Services,
        root: Path,
        namespace: str,
        sink_options: Mapping[str, Any] | None = None,
    ) -> None:
        from shiftright_server.infra.ops.supervisor import (
            Supervisor,
            python_components,
            scaled_components,
        )

        super().__init__(services, root, namespace, sink_options)
        self.settings = self.configured(self.settings)
        self.supervisor = Supervisor(self.settings)
        self._components = python_components(self.settings)
        #: every stream worker, then every sink (``streams``, ``streams-1``, …, ``sink``, …)
        self._members = list(scaled_components(self.settings))

    def configured(self, settings: Settings) -> Settings:
        """The settings this system runs with (a subclass may switch parts off)."""
        return settings

    def roles(self) -> tuple[str, ...]:
        return ("sink", "streams")

    def start(self) -> dict[str, int]:
        return {name: self.supervisor.start(self._components[name]) for name in self._members}

    def error_counts(self) -> tuple[int, int]:
        """(error events stored, of them grouped by the error-analytics agents)."""
        row = self._client.query(
            "SELECT (SELECT count() FROM events_error), "
            "(SELECT uniqExact(event_id) FROM errors_grouped)"
        ).result_rows[0]
        return int(row[0]), int(row[1])

    def alive(self) -> dict[str, bool]:
        return {name: self.supervisor.pid(name) is not None for name in self._members}

    def stop(self) -> None:
        for name in reversed(self._members):
            self.supervisor.stop(name, timeout=20)

    def counters(self) -> dict[str, Any]:
        from shiftright_server.infra.ops.status import sink_counters

        return sink_counters(self.settings)

    def tail(self, name: str) -> str:
        return self.supervisor.tail(name, 30)


class RawBaseline(Baseline):
    """The strongest floor: message bytes joined and parsed by ClickHouse, no per-event
    Python work (``bench.raw_baseline``)."""

    label = "raw"
    module = "bench.raw_baseline"


class PerEvent(Full):
    """The full pipeline with the hot path switched off: every event through the models,
    rows encoded in Python, rollups one event at a time."""

    label = "per-event"

    def configured(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "sink": settings.sink.model_copy(update={"event_rows": "models"}),
                "streams": settings.streams.model_copy(update={"rollup_columns": False}),
            }
        )


class Practice(Full):
    """The full pipeline run once before the measured runs, to warm the broker up."""

    label = "warm-up"


def check(system: System, stalled_for: float, stall_limit: float) -> None:
    dead = [name for name, ok in system.alive().items() if not ok]
    if dead:
        raise PhaseFailed(f"{system.label}: {dead[0]} exited\n{system.tail(dead[0])}")
    if stalled_for > stall_limit:
        raise PhaseFailed(
            f"{system.label}: no new rows for {stall_limit:.0f}s; counters: {system.counters()}"
        )
