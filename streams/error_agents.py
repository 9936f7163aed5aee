"""Error analytics in the stream worker: two agents around :mod:`streams.error_flow`.

::

    events.error.v1 ──the rollup agent (streams.rekey)──▶ errors.byhost.v1 (app|env|host)
    events.health.v1 + errors.byhost.v1 ──attach_and_group──▶ errors.grouped.v1 (app|group_id)
    errors.grouped.v1 + errors.commands.v1 ──count_groups──▶ errors.transitions.v1,
                                                             errors.groups.v1

Each follows the rollup agent's delivery contract (``streams.app``): a batch is
processed purely (with the records its state lacks read first), its outputs are sent
and their delivery awaited, then each touched partition's state goes to the changelog
table ``error-state`` and is awaited; only then does Faust ack the batch. A timer reads
what lies between the group's committed offsets and the restored states once per
assignment, and another releases errors held for health on quiet partitions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import structlog
from shiftright_server.infra.settings import Settings
from shiftright_server.schemas import topics
from shiftright_server.streams.error_flow import Attach, Group, Out, pack_messages
from shiftright_server.streams.gaps import GapReader, merge, record_of
from shiftright_server.streams.grouping import Grouper, Rules, SpikePolicy
from shiftright_server.streams.grouping.keys import group_key
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
from shiftright_server.streams.processor import Record, TopicPartition

log = structlog.get_logger("shiftright.streams.errors")

Step = Attach | Group
#: Records per batch: bounded bursts of sends and of event-loop time per batch.
BATCH_MAX = 500


def load_rules(path: Path | None) -> Rules:
    return Rules.load(path) if path else Rules()


def register_error_agents(app: faust.App, settings: Settings) -> None:
    """Add the error-analytics agents and timers to the stream worker's app."""
    from shiftright_server.streams.app import (
        LogEnds,
    )  # streams.app registers us; import at call time

    ns, s = settings.namespace, settings.streams

    def topic(name: str) -> Any:
        return app.topic(topics.named(name, ns), key_serializer="raw", value_serializer="raw")

    health_t = topics.named(topics.EVENTS_HEALTH, ns)
    byhost_t, grouped_t = (
        topics.named(topics.ERRORS_BY_HOST, ns),
        topics.named(topics.ERRORS_GROUPED, ns),
    )
    commands_t = topics.named(topics.ERRORS_COMMANDS, ns)
    grouped = topic(topics.ERRORS_GROUPED)
    transitions, groups = topic(topics.ERRORS_TRANSITIONS), topic(topics.ERRORS_GROUPS)
    table = app.Table(
        "error-state", partitions=settings.kafka.partitions, key_type=bytes, value_type=bytes
    )
    _declare_changelog(settings, table.changelog_topic.get_topic_name())

    def loader(step: str) -> Callable[[int], bytes | None]:
        return lambda p: table.data.get(f"{step}:{p}".encode())

    def records(kind: str) -> Callable[[int], list[bytes]]:
        """A partition's per-group or per-host records."""

        def of(p: int) -> list[bytes]:
            prefix = f"{kind}:{p}:".encode()
            return [v for k, v in list(table.data.items()) if k.startswith(prefix)]

        return of

    rules = load_rules(s.grouping_rules)
    attach = Attach(
        AttachStage(Grouper(rules), max_wait_ms=s.health_max_wait_ms),
        health_t,
        s.limits(),
        loader("attach"),
        records("health"),
    )
    group = Group(GroupStage(SpikePolicy()), commands_t, loader("group"), records("group"))
    names: dict[int, str] = {id(attach): "attach", id(group): "group"}
    totals = {
        "errors_grouped": 0,
        "transitions": 0,
        "group_rows": 0,
        "replayed": 0,
        "gap_records_read": 0,
        "flushed_idle": 0,
        "failed_batches": 0,
    }
    locks = {name: asyncio.Lock() for name in names.values()}
    gap_reader = GapReader(settings.kafka.bootstrap_servers)

    async def save(step: Step, out: Out) -> None:
        """After every batch, before Faust acks it. The group and attach steps keep big
        states split into small records (per group, per host) written first, so a batch
        writes only what it changed: the attach step's health cache saved whole after each
        batch took a third of the worker."""
        name = names[id(step)]
        pending = []
        if isinstance(step, Group):  # the groups first, then the partition's offsets
            for p, changed in out.changed_groups.items():
                for gid in sorted(changed):
                    pending.append(
                        await _put(table, f"group:{p}:{gid}", step.group_state(p, gid), p)
                    )
        elif isinstance(step, Attach):  # the hosts whose health changed, then the rest
            for p in sorted(out.touched & step.loaded):
                for host, data in step.host_states(p):
                    pending.append(await _put(table, f"health:{p}:{host}", data, p))
        await _gather(pending)
        pending = []
        for p in sorted(out.touched):
            if p in step.loaded:  # not revoked meanwhile
                pending.append(await _put(table, f"{name}:{p}", step.dumps(p), p))
        await _gather(pending)

    async def publish(step: Step, out: Out) -> None:
        """Deliver a processed batch; retried until it succeeds. An exception must not
        end the agent: Faust acks the batch anyway, and a dead agent's full queue stops
        every agent of the worker. Re-sent messages are duplicates the next steps drop."""
        delay = 0.5
        while True:
            try:
                return await _deliver(step, out)
            except Exception as exc:  # e.g. a changelog topic not yet in the metadata
                log.warning(
                    "error_batch_retry", step=names[id(step)], in_seconds=delay, error=repr(exc)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _deliver(step: Step, out: Out) -> None:
        parts = settings.kafka.partitions  # of every topic we create
        singles = [(group_key(g), g.model_dump_json().encode(), None) for g in out.grouped]
        sent = [
            await grouped.send(key=k, value=v, headers=h, partition=p)
            for k, v, h, p in pack_messages(singles, parts)
        ]
        sent += [
            await transitions.send(
                key=f"{t.app}|{t.group_id}".encode(), value=t.model_dump_json().encode()
            )
            for t in out.transitions
        ]
        sent += [
            await groups.send(
                key=f"{r.app}|{r.group_id}".encode(), value=r.model_dump_json().encode()
            )
            for r in out.rows
        ]
        await _gather(sent)  # delivered before the state says "done"
        await save(step, out)
        totals["errors_grouped"] += len(out.grouped)
        totals["transitions"] += len(out.transitions)
        totals["group_rows"] += len(out.rows)
        totals["replayed"] += out.replayed

    async def read(missing: dict[TopicPartition, tuple[int, int]]) -> list[Record]:
        loop, delay = asyncio.get_running_loop(), 0.5
        while True:
            try:
                found = await loop.run_in_executor(None, gap_reader.read, missing)
                break
            except Exception as exc:  # broker away: keep the batch unacked and retry
                log.warning("error_gap_read_retry", ranges=len(missing), error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        totals["gap_records_read"] += len(found)
        log.warning(
            "error_state_behind",
            records_read=len(found),
            ranges={f"{t}:{p}": r for (t, p), r in missing.items()},
        )
        return found

    async def run(step: Step, records: list[Record]) -> None:
        async with locks[names[id(step)]]:
            missing = step.missing(records)
            if missing:
                records = merge(records, await read(missing))
            try:
                out = step.process(records)
            except Exception:  # a bug, not bad input (that is skipped and counted)
                log.exception("error_batch_failed", step=names[id(step)], records=len(records))
                totals["failed_batches"] += 1
                return
            await publish(step, out)

    attach_source = app.topic(health_t, byhost_t, key_serializer="raw", value_serializer="raw")

    @app.agent(attach_source, concurrency=1, name="errors-attach")
    async def attach_and_group(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=s.batch_within_seconds):
            await run(attach, [record_of(e.message) for e in events])
            for e in events:
                last_seen[e.message.partition] = time.monotonic()

    group_source = app.topic(grouped_t, commands_t, key_serializer="raw", value_serializer="raw")

    @app.agent(group_source, concurrency=1, name="errors-group")
    async def count_groups(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=s.batch_within_seconds):
            await run(group, [record_of(e.message) for e in events])

    step_by_topic: dict[str, Step] = {
        health_t: attach,
        byhost_t: attach,
        grouped_t: group,
        commands_t: group,
    }
    log_ends = LogEnds(settings.kafka.bootstrap_servers)
    checked: set[TopicPartition] = set()

    @app.timer(2.0)
    async def read_committed_error_gaps() -> None:
        """Once per assignment: what lies between the committed offsets and the states."""
        if not app.tables.recovery.completed.is_set() or app.in_recovery or app.rebalancing:
            return
        todo = [
            (tp.topic, tp.partition)
            for tp in app.consumer.assignment()
            if tp.topic in step_by_topic and (tp.topic, tp.partition) not in checked
        ]
        if not todo:
            return
        try:
            committed = await _blocking(log_ends.committed, todo, app.conf.id)
        except Exception as exc:
            log.warning("committed_offsets_unavailable", error=repr(exc))
            return
        for step in (attach, group):
            positions = [
                (t, p, o) for (t, p), o in committed.items() if o > 0 and step_by_topic[t] is step
            ]
            async with locks[names[id(step)]]:
                missing = step.missing_before(positions)
                if missing:
                    await publish(step, step.process(await read(missing)))
        checked.update(todo)

    last_seen: dict[int, float] = {}

    @app.timer(1.0)
    async def release_held_errors() -> None:
        """Errors wait for their host's health in event time; when a partition has gone
        quiet and the broker confirms nothing is waiting, release them with what is known."""
        now = time.monotonic()
        quiet = [p for p in attach.held() if now - last_seen.get(p, 0.0) >= s.idle_close_seconds]
        if not quiet:
            return
        tps = [(t, p) for p in quiet for t in (health_t, byhost_t)]
        try:
            ends = await _blocking(log_ends.fetch, tps)
        except Exception as exc:
            log.warning("held_errors_release_deferred", error=repr(exc))
            return
        async with locks["attach"]:
            for p in quiet:
                last = attach.offsets.last
                caught_up = all(last.get(tp, -1) + 1 >= ends[tp] for tp in ends if tp[1] == p)
                if caught_up and p in attach.loaded:
                    out = attach.flush(p)
                    totals["flushed_idle"] += len(out.grouped)
                    await publish(attach, out)

    @app.timer(10.0)
    async def report_error_progress() -> None:
        log.info("errors_progress", **totals)

    @app.on_partitions_revoked.connect
    async def forget_error_partitions(sender: Any, revoked: set[Any], **_: Any) -> None:
        for step in (attach, group):
            step.forget({tp.partition for tp in revoked if step_by_topic.get(tp.topic) is step})
        checked.difference_update((tp.topic, tp.partition) for tp in revoked)


def _declare_changelog(settings: Settings, name: str) -> None:
    """Create the state changelog before the agents write to it. Faust declares it too,
    but not always before an agent's first write; a send to a topic missing from the
    producer's metadata waits for it (up to the 20-minute request timeout), which stalls
    the agent and, once its queue is full, the whole worker."""
    from shiftright_server.infra.kafka.topics import ensure_topics

    try:
        ensure_topics(
            settings.kafka.bootstrap_servers,
            {name: settings.kafka.partitions},
            {"cleanup.policy": "compact"},
        )
    except Exception as exc:  # broker away at start: Faust's own declaration remains
        log.warning("error_changelog_not_declared", topic=name, error=repr(exc))


async def _put(table: Any, key: str, value: bytes, partition: int) -> Any:
    table.data[key.encode()] = value
    return await table.changelog_topic.send(key=key.encode(), value=value, partition=partition)


async def _gather(pending: list[Any]) -> None:
    if pending:
        await asyncio.gather(*pending)


async def _blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """A blocking broker call in a thread, bounded (a hung request must not hang us)."""
    call: Awaitable[Any] = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    return await asyncio.wait_for(call, 10.0)
