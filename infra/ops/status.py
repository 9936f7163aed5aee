"""The figures ``shiftright status`` shows: Kafka messages in, events stored, lag, dead
letters. Kafka counts messages, and a message may carry a batch of events (NDJSON, see
``schemas.wire``), so what comes in and the lag are in messages; what is stored, in rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics


@dataclass
class PipelineFigures:
    messages_in: int = 0  # on the raw event topics (one message may hold many events)
    events_stored: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    #: dead letters of records that made a stream step raise, per step (reason step_failed)
    step_failures: dict[str, int] = field(default_factory=dict)
    rollups: int = 0
    lag: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def stored_total(self) -> int:
        return sum(self.events_stored.values())


def group_ids(settings: Settings) -> dict[str, str]:
    ns = settings.namespace
    sink = settings.sink.group_id
    streams = settings.streams.app_id
    return {
        "sink": f"{ns}.{sink}" if ns else sink,
        "streams": f"{ns}.{streams}" if ns else streams,
    }


def kafka_figures(settings: Settings, figures: PipelineFigures, timeout: float = 3.0) -> None:
    ns = settings.namespace
    raw = [topics.named(t, ns) for t in topics.EVENT_TOPICS]
    probe = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "shiftright-status-probe",
        }
    )
    try:
        meta = probe.list_topics(timeout=timeout)
        tps = [
            TopicPartition(t, p) for t in raw if t in meta.topics for p in meta.topics[t].partitions
        ]
        ends = {
            (tp.topic, tp.partition): probe.get_watermark_offsets(tp, timeout=timeout)[1]
            for tp in tps
        }
        figures.messages_in = sum(ends.values())
        for role, group in group_ids(settings).items():
            figures.lag[role] = _group_lag(settings, group, tps, ends, timeout)
    finally:
        probe.close()


def _group_lag(
    settings: Settings,
    group: str,
    tps: list[TopicPartition],
    ends: dict[tuple[str, int], int],
    timeout: float,
) -> int:
    return sum(_partition_lag(settings, group, tps, ends, timeout).values())


def _partition_lag(
    settings: Settings,
    group: str,
    tps: list[TopicPartition],
    ends: dict[tuple[str, int], int],
    timeout: float,
) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    try:
        committed = consumer.committed(tps, timeout=timeout)
    finally:
        consumer.close()
    lag = {}
    for tp in committed:
        end = ends[(tp.topic, tp.partition)]
        lag[(tp.topic, tp.partition)] = end - tp.offset if tp.offset >= 0 else end
    return lag


@dataclass(frozen=True)
class Member:
    """One consumer of a group: who it is, the raw-event partitions it holds, their lag."""

    role: str  # streams | sink
    member: str  # its static id (streams) or client id and host
    partitions: list[tuple[str, int]]
    lag: int


def group_members(settings: Settings, timeout: float = 5.0) -> list[Member]:
    """Each member of the stream workers' and the sinks' groups, with the raw-event
    partitions assigned to it and how many messages those are behind."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    ns = settings.namespace
    raw = {topics.named(t, ns) for t in topics.EVENT_TOPICS}
    groups = group_ids(settings)
    described = admin.describe_consumer_groups(list(groups.values()), request_timeout=timeout)
    members: list[Member] = []
    for role, group in groups.items():
        description = described[group].result()
        held = {
            m: sorted(
                (tp.topic, tp.partition) for tp in m.assignment.topic_partitions if tp.topic in raw
            )
            for m in description.members
        }
        tps = [TopicPartition(t, p) for parts in held.values() for t, p in parts]
        lag = (
            _partition_lag(settings, group, tps, _ends(settings, tps, timeout), timeout)
            if tps
            else {}
        )
        for m, parts in held.items():
            who = m.group_instance_id or f"{m.client_id} ({m.host.strip('/')})"
            members.append(Member(role, who, parts, sum(lag.get(p, 0) for p in parts)))
    return sorted(members, key=lambda m: (m.role, m.member))


def _ends(
    settings: Settings, tps: list[TopicPartition], timeout: float
) -> dict[tuple[str, int], int]:
    probe = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "shiftright-status-probe",
        }
    )
    try:
        return {
            (tp.topic, tp.partition): probe.get_watermark_offsets(tp, timeout=timeout)[1]
            for tp in tps
        }
    finally:
        probe.close()


def warehouse_figures(client: Any, figures: PipelineFigures) -> None:
    rows = client.query(
        "SELECT table, sum(rows) FROM system.parts WHERE active AND database = currentDatabase() "
        "AND table IN ('events_usage','events_error','events_health','events_change') GROUP BY table"
    ).result_rows
    figures.events_stored = {str(t).removeprefix("events_"): int(n) for t, n in rows}
    figures.dead_letters = int(client.command("SELECT count() FROM dead_letters FINAL"))
    # (the detail of a step_failed dead letter starts with the step's name: "rollup: ...")
    failed = client.query(
        "SELECT splitByString(': ', detail)[1], count() FROM dead_letters FINAL "
        "WHERE reason = 'step_failed' GROUP BY 1 ORDER BY 1"
    ).result_rows
    figures.step_failures = {str(step): int(n) for step, n in failed}
    figures.rollups = int(client.command("SELECT count() FROM rollups"))


def sink_counters(settings: Settings) -> dict[str, Any]:
    return run_counters(settings, "sink")


def run_counters(settings: Settings, component: str) -> dict[str, Any]:
    """What a running component last wrote to ``run/<component>.json`` (empty: nothing)."""
    path = settings.resolved_state_dir() / "run" / f"{component}.json"
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def collect(settings: Settings, client: Any | None) -> PipelineFigures:
    figures = PipelineFigures()
    try:
        kafka_figures(settings, figures)
    except Exception as exc:
        figures.errors.append(f"kafka: {exc}")
    if client is not None:
        try:
            warehouse_figures(client, figures)
        except Exception as exc:
            figures.errors.append(f"warehouse: {exc}")
    return figures
