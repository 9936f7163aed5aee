"""``python -m bench.worker_steps``: the stream worker's rollup, attach and group steps
offline, CPU µs per event of each and per error of the error path, in messages shaped as
the worker gets them.

    .venv/bin/python -m bench.worker_steps [--events 60000] [--per-message 42,200]
                                           [--batch 400] [--rounds 3] [--handoff on,off]

The bench's event mix (``bench.pipeline.events``: usage, errors, health, changes) is
packed into NDJSON batch messages of ``--per-message`` events per topic partition, the
partitions taking turns as a paced producer's messages arrive (42 is about what each
message holds live at 20,000 events/s in ``bench.streams_worker``; 200 is its drain).
Batches of ``--batch`` records go through the steps as the worker chains them, without
Kafka: the rollup step (validation, rollups, signals, the re-key of errors and its state
records; a batch's error records timed apart from the rest, as a second call), then the
attach step on the batch's health and the errors the rollup step re-keyed (health join,
grouping, both grouped records, state records), then the group step on what the attach
step sent at once. Each step hands its models to the next as it does in the worker;
``--handoff off`` runs the attach step as it runs behind a backlog longer than the
rollup step's hand-over keeps (or on another worker): it reads every error line itself.

The error path per error is the rollup step's error records, the attach step and the
group step, divided by the errors: what the worker spends because errors are in the mix
(the attach step's health events included: it reads them only to join errors). CPU time
of this process (the garbage collector set as in the worker), the best of ``--rounds``
fresh runs, each on events of its own (new ids, numbers and so messages, as live traffic
brings them: every round and row of the run has its own seed; the process's caches are
kept from round to round, as the worker keeps them);
the machine's other load slows each round alike. Prints two tables and the
load average; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from shiftright_server.infra.logs import tune_gc_for_throughput
from shiftright_server.schemas import topics, wire
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.schemas.records import GroupedError
from shiftright_server.schemas.validation import Limits
from shiftright_server.streams.error_flow import Attach, Group
from shiftright_server.streams.error_steps import AttachStep, GroupStep
from shiftright_server.streams.grouping import Grouper, SpikePolicy
from shiftright_server.streams.grouping.stages import AttachStage, GroupStage
from shiftright_server.streams.processor import Processor
from shiftright_server.streams.rekey import Handoff
from shiftright_server.streams.rollup_step import RollupStep, RollupTopics
from shiftright_server.streams.step import Message, Record

from bench.pipeline.events import PARTITIONS, generate

STEPS = ("rollup", "attach", "group")
#: The error path: the rollup step's error records, the attach and group steps.
ERROR_PATH = ("rollup errors", "attach", "group")


@dataclass
class Chain:
    rollup: RollupStep
    attach: AttachStep
    group: GroupStep


def messages(n: int, per_message: int, seed: int = 7) -> list[Record]:
    """``n`` events as records of batch messages, partitions taking turns."""
    now = datetime.now(UTC)
    events = generate(n, now - timedelta(seconds=n / 20_000), now, seed, lambda _: None)
    runs: dict[tuple[int, int], list[bytes]] = {}
    for _, (kind, key, value) in events:
        runs.setdefault((kind, wire.partition_of(key, PARTITIONS)), []).append(value)
    queues = [
        [(kind, p, b"\n".join(v[i : i + per_message])) for i in range(0, len(v), per_message)]
        for (kind, p), v in runs.items()
    ]
    ts, offsets, out = int(now.timestamp() * 1000), dict[tuple[str, int], int](), []
    for turn in range(max(map(len, queues))):
        for kind, p, value in (q[turn] for q in queues if turn < len(q)):
            topic = topics.EVENT_TOPICS[kind]
            offset = offsets[(topic, p)] = offsets.get((topic, p), -1) + 1
            out.append(Record(topic, p, offset, value, ts, wire.BATCH_HEADERS))
    return out


def chain(handoff: bool = True) -> Chain:
    """The three steps wired as ``streams.app`` wires them (alerting signals on); without
    ``handoff`` the attach step reads every error line itself."""
    errors = Handoff[ErrorEvent]() if handoff else None
    grouped = Handoff[GroupedError](limit=10_000)
    kinds = dict(topics.KIND_BY_EVENT_TOPIC)
    processor = Processor(
        kinds, Limits(), 60, 10, signal_seconds=10, rekey_errors=True, handoff=errors
    )
    out = RollupTopics(
        topics.DLQ_EVENTS, topics.ROLLUPS, topics.SIGNALS, topics.ERRORS_BY_HOST, PARTITIONS
    )
    attach = Attach(AttachStage(Grouper()), topics.EVENTS_HEALTH, Limits(), handoff=errors)
    group = Group(GroupStage(SpikePolicy()), topics.ERRORS_COMMANDS, handoff=grouped)
    return Chain(
        RollupStep(processor, out),
        AttachStep(attach, topics.ERRORS_GROUPED, PARTITIONS, topics.ERRORS_ASSIGNED, grouped),
        GroupStep(group, topics.ERRORS_TRANSITIONS, topics.ERRORS_GROUPS),
    )


class Feed:
    """Offsets of the worker's own topics, as a broker would give them."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}

    def records(self, sent: Sequence[Message], topic: str) -> list[Record]:
        out = []
        for m in (m for m in sent if m.topic == topic):
            p = m.partition if m.partition is not None else 0
            offset = self.offsets[(topic, p)] = self.offsets.get((topic, p), -1) + 1
            out.append(Record(topic, p, offset, m.value, 0, m.headers))
        return out


def run(records: list[Record], batch: int, handoff: bool = True) -> dict[str, float]:
    """CPU seconds of each step over all of ``records`` in batches of ``batch`` (the
    rollup step's error records also apart, as ``rollup errors``)."""
    steps, feed = chain(handoff), Feed()
    spent = dict.fromkeys((*STEPS, "rollup errors"), 0.0)
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        errors = [r for r in chunk if r.topic == topics.EVENTS_ERROR]
        others = [r for r in chunk if r.topic != topics.EVENTS_ERROR]
        start = time.process_time()
        out = steps.rollup.process(others)
        steps.rollup.state_writes(out.touched)
        rolled = time.process_time()
        errs = steps.rollup.process(errors)
        steps.rollup.state_writes(errs.touched)
        rekeyed = time.process_time()
        health = [r for r in chunk if r.topic == topics.EVENTS_HEALTH]
        attached = steps.attach.process(health + feed.records(errs.messages, topics.ERRORS_BY_HOST))
        steps.attach.state_writes(attached.touched)
        grouped = time.process_time()
        counted = steps.group.process(feed.records(attached.messages, topics.ERRORS_ASSIGNED))
        steps.group.state_writes(counted.touched)
        done = time.process_time()
        spent["rollup"] += rekeyed - start
        spent["rollup errors"] += rekeyed - rolled
        spent["attach"] += grouped - rekeyed
        spent["group"] += done - grouped
    return spent


def error_count(records: list[Record]) -> int:
    return sum(
        len(wire.split_events(r.value, r.headers))
        for r in records
        if r.topic == topics.EVENTS_ERROR
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--per-message", default="42,200", help="events per message, each")
    parser.add_argument("--batch", type=int, default=400, help="records per batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--handoff", default="on,off", help="errors handed over: on, off or both")
    args = parser.parse_args()
    tune_gc_for_throughput()  # the collector's settings of the worker process
    per_event = Table(
        title=f"Stream worker steps offline: CPU µs per event ({args.events:,} events)"
    )
    per_error = Table(title="The error path: CPU µs per error")
    for column in ("events a message", "handed over", *STEPS, "total"):
        per_event.add_column(column, justify="right")
    for column in ("events a message", "handed over", "errors", *ERROR_PATH, "error path", "share"):
        per_error.add_column(column, justify="right")
    seeds = iter(range(7, 10_000))
    for per_message in (int(n) for n in args.per_message.split(",")):
        for handoff in args.handoff.split(","):
            each = [messages(args.events, per_message, next(seeds)) for _ in range(args.rounds)]
            errors = error_count(each[0])
            rounds = [run(records, args.batch, handoff == "on") for records in each]
            best = {k: min(r[k] for r in rounds) for k in (*STEPS, "rollup errors")}
            total = min(sum(r[k] for k in STEPS) for r in rounds)
            path = min(sum(r[k] for k in ERROR_PATH) for r in rounds)
            cells = (f"{best[s] / args.events * 1e6:.2f}" for s in STEPS)
            per_event.add_row(str(per_message), handoff, *cells, f"{total / args.events * 1e6:.2f}")
            parts = (f"{best[s] / errors * 1e6:.1f}" for s in ERROR_PATH)
            share = f"{path / total:.0%}"
            per_error.add_row(
                str(per_message),
                handoff,
                f"{errors:,}",
                *parts,
                f"{path / errors * 1e6:.1f}",
                share,
            )
    console = Console()
    console.print(per_event)
    console.print(per_error)
    console.print(f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
