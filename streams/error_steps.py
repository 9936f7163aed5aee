"""Error analytics as two steps around :mod:`streams.error_flow`.

::

    events.error.v1 ──rollup step (streams.rekey)──▶ errors.byhost.v1 (app|env|host)
    events.health.v1 + errors.byhost.v1 ──attach──▶ errors.assigned.v1 (app|group_id, at once)
                                                   errors.grouped.v1 (with health: stored)
    errors.assigned.v1 + errors.commands.v1 ──group──▶ errors.transitions.v1, errors.groups.v1

Both keep their state in the changelog table ``error-state``, one record per partition
number (``attach:<p>``, ``group:<p>``: offsets and the small part of the state) plus
small records for what changes often, written first so a batch writes only what it
changed: the attach step's health per host (``health:<p>:<host>``), the group step's
groups (``group:<p>:<group id>``). Errors held for their host's health are released on
a quiet partition once the broker confirms nothing is waiting (:class:`HeldRelease`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import structlog
from shiftright_server.schemas.records import GroupedError
from shiftright_server.streams.built import json_bytes
from shiftright_server.streams.driver import Driver
from shiftright_server.streams.error_flow import Attach, Group, Out
from shiftright_server.streams.grouping import Rules
from shiftright_server.streams.grouping.enrich import GroupedLines
from shiftright_server.streams.grouping.keys import group_key
from shiftright_server.streams.packing import pack_messages
from shiftright_server.streams.rekey import Handoff
from shiftright_server.streams.step import (
    Message,
    Output,
    Record,
    Spans,
    StateKey,
    StateWrite,
    TopicPartition,
)

log = structlog.get_logger("shiftright.streams.errors")

#: Records per batch: bounded bursts of sends and of event-loop time per batch.
BATCH_MAX = 500


def load_rules(path: Path | None) -> Rules:
    return Rules.load(path) if path else Rules()


def table_loaders(
    table: Any, step: str
) -> tuple[Callable[[int], bytes | None], Callable[[int], list[bytes]]]:
    """A partition's own record, and its per-host (attach) or per-group (group) records."""
    kind = "health" if step == "attach" else "group"

    def records(p: int) -> list[bytes]:
        prefix = f"{kind}:{p}:".encode()
        return [v for k, v in list(table.data.items()) if k.startswith(prefix)]

    return (lambda p: table.data.get(f"{step}:{p}".encode())), records


class _ErrorStep:
    """What both error steps share: offsets per source partition, state per number."""

    name: str
    flow: Attach | Group

    def missing(self, positions: Iterable[tuple[str, int, int]]) -> Spans:
        return self.flow.missing_before(list(positions))

    def skip(self, record: Record) -> StateKey:
        self.flow.ensure(record.partition)
        self.flow.offsets.applied((record.topic, record.partition), record.offset)
        return record.partition

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        for _, p in partitions:
            self.flow.ensure(p)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        self.flow.forget({p for _, p in partitions})

    def _partition_writes(self, touched: set[StateKey]) -> list[StateWrite]:
        return [
            StateWrite(f"{self.name}:{p}".encode(), self.flow.dumps(p), p)
            for p in sorted(k for k in touched if isinstance(k, int))
            if p in self.flow.loaded  # not revoked meanwhile
        ]

    @staticmethod
    def _counts(out: Out, output: Output) -> Output:
        output.counts.update(replayed=out.replayed, skipped=out.skipped)
        return output


class AttachStep(_ErrorStep):
    name = "attach"

    def __init__(
        self,
        attach: Attach,
        grouped_topic: str,
        partitions: int,
        assigned_topic: str = "",
        handoff: Handoff[GroupedError] | None = None,
    ) -> None:
        self.flow = self.attach = attach
        #: the assigned errors as sent, for the group step of this worker
        self.handoff = handoff
        self.grouped_topic = grouped_topic
        #: where each error goes as soon as it is grouped ("": not sent)
        self.assigned_topic = assigned_topic
        self.partitions = partitions
        #: when each partition number last received a record (or was restored)
        self.last_seen: dict[int, float] = {}
        self.lines = GroupedLines()

    def process(self, records: Sequence[Record]) -> Output:
        out = self.attach.process(records)
        now = time.monotonic()
        for r in records:
            self.last_seen[r.partition] = now
        return self.output(out)

    def output(self, out: Out) -> Output:
        """The errors sent at once are serialised first: the same errors sent with their
        health reuse their lines' heads (:class:`GroupedLines`)."""
        assigned = (
            self._packed(self.assigned_topic, out.assigned, self.lines.at_once, self.handoff)
            if self.assigned_topic
            else []
        )
        messages = self._packed(self.grouped_topic, out.grouped, self.lines.with_health)
        output = Output(messages + assigned, set(out.touched))
        output.counts["errors_grouped"] += len(out.grouped)
        output.counts["errors_assigned"] += len(out.assigned)
        output.counts["errors_handed_over"] += out.handed_over
        return self._counts(out, output)

    def _packed(
        self,
        topic: str,
        errors: list[GroupedError],
        serialise: Callable[[GroupedError], bytes],
        handoff: Handoff[GroupedError] | None = None,
    ) -> list[Message]:
        singles = [(group_key(g), serialise(g), None) for g in errors]
        if handoff is not None:
            for g, (_, line, _) in zip(errors, singles, strict=True):
                handoff.put(line, g)
        return [
            Message(topic, k, v, h, p) for k, v, h, p in pack_messages(singles, self.partitions)
        ]

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        """The hosts whose health changed, then the partition records."""
        hosts = [
            StateWrite(f"health:{p}:{host}".encode(), data, p)
            for p in sorted(k for k in touched if isinstance(k, int) and k in self.attach.loaded)
            for host, data in self.attach.host_states(p)
        ]
        return [hosts, self._partition_writes(touched)]

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        gone = list(partitions)
        super().forget(gone)
        self.lines.forget({p for _, p in gone})

    def restore(self, partitions: Iterable[TopicPartition]) -> None:
        super().restore(partitions)
        now = time.monotonic()
        for _, p in partitions:
            self.last_seen.setdefault(p, now)


class GroupStep(_ErrorStep):
    name = "group"

    def __init__(self, group: Group, transitions_topic: str, groups_topic: str) -> None:
        self.flow = self.group = group
        self.transitions_topic = transitions_topic
        self.groups_topic = groups_topic

    def process(self, records: Sequence[Record]) -> Output:
        out = self.group.process(records)
        messages = [
            Message(
                self.transitions_topic,
                f"{t.app}|{t.group_id}".encode(),
                json_bytes(t),
            )
            for t in out.transitions
        ]
        messages += [
            Message(self.groups_topic, f"{r.app}|{r.group_id}".encode(), json_bytes(r))
            for r in out.rows
        ]
        touched: set[StateKey] = set(out.touched)
        touched |= {(p, gid) for p, gids in out.changed_groups.items() for gid in gids}
        output = Output(messages, touched)
        output.counts.update(transitions=len(out.transitions), group_rows=len(out.rows))
        output.counts["errors_handed_over"] += out.handed_over
        return self._counts(out, output)

    def state_writes(self, touched: set[StateKey]) -> list[list[StateWrite]]:
        """The changed groups first, then the partition records with the offsets: a
        group's record knows the positions it counted, so a crash between the two
        only makes the replay skip more."""
        groups = sorted(k for k in touched if isinstance(k, tuple))
        first = [
            StateWrite(f"group:{p}:{gid}".encode(), self.group.group_state(p, gid), p)
            for p, gid in groups
            if p in self.group.loaded
        ]
        return [first, self._partition_writes(touched)]


class HeldRelease:
    """Errors wait for their host's health in event time; when a partition has gone
    quiet and the broker confirms nothing is waiting, release them with what is known."""

    def __init__(self, step: AttachStep, driver: Driver, idle_seconds: float) -> None:
        self.step, self.driver = step, driver
        self.idle_seconds = idle_seconds
        self.topics = driver.sources

    async def prepare(self) -> tuple[list[int], dict[TopicPartition, int]] | None:
        now = time.monotonic()
        last_seen = self.step.last_seen
        quiet = [
            p
            for p in self.step.attach.held()
            if now - last_seen.setdefault(p, now) >= self.idle_seconds
        ]
        if not quiet:
            return None
        tps = [(t, p) for p in quiet for t in self.topics]
        try:
            ends = await self.driver.blocking(self.driver.log_ends.fetch, tps)
        except Exception as exc:
            log.warning("held_errors_release_deferred", error=repr(exc))
            return None
        return quiet, ends

    def apply(self, found: tuple[list[int], dict[TopicPartition, int]]) -> Output:
        quiet, ends = found
        attach = self.step.attach
        output = Output()
        for p in quiet:
            last = attach.offsets.last
            caught_up = all(last.get(tp, -1) + 1 >= ends[tp] for tp in ends if tp[1] == p)
            if caught_up and p in attach.loaded:
                released = self.step.output(attach.flush(p))
                released.counts["flushed_idle"] += released.counts["errors_grouped"]
                output.merge(released)
        return output
