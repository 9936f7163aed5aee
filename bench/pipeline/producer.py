"""Load generation: the paced live producer (a separate process) and the drain preload."""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Callable
from typing import Any

from shiftright_server.schemas import topics

from bench.pipeline.context import PhaseFailed
from bench.pipeline.events import BATCH_EVENTS, Record, to_messages


def produce_main(argv: list[str]) -> None:
    """``python -m bench.pipeline _produce``: send a pickled record list at a fixed rate.

    Prints one JSON line when the clock starts and one with the figures when done.
    """
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config

    parser = argparse.ArgumentParser(prog="bench.pipeline _produce")
    for name in ("--events", "--bootstrap", "--namespace"):
        parser.add_argument(name, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--batch-events", type=int, default=BATCH_EVENTS)
    parser.add_argument("--setting", action="append", default=[], help="KEY=VALUE")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = dict(s.split("=", 1) for s in args.setting)
    with open(args.events, "rb") as fh:
        data = pickle.load(fh)
    records: list[Record] = data["records"]
    probes: dict[int, str] = data["probes"]
    names = [topics.named(t, args.namespace) for t in topics.EVENT_TOPICS]
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        failed.append(str(err))

    producer = Producer(
        producer_config(
            args.bootstrap,
            **{"delivery.report.only.error": True, "on_delivery": on_delivery, **overrides},
        )
    )
    producer.list_topics(timeout=10)  # connected before the clock starts
    started = time.time()
    print(json.dumps({"started": started}), flush=True)
    sent, probe_sent = _paced(
        producer, records, names, probes, args.rate, args.seconds, args.batch_events
    )
    stopped = time.time()
    undelivered = producer.flush(60)
    print(
        json.dumps(
            {
                "started": started,
                "stopped": stopped,
                "sent": sent,
                "failed": len(failed),
                "undelivered": undelivered,
                "probes": probe_sent,
                "errors": failed[:5],
            }
        ),
        flush=True,
    )


def _paced(
    producer: Any,
    records: list[Record],
    names: list[str],
    probes: dict[int, str],
    rate: float,
    seconds: float,
    per_message: int,
) -> tuple[int, dict[str, float]]:
    """Hand records to the producer on schedule (in 20 ms slices, grouped into batch
    messages) until ``seconds`` pass or they run out."""
    began = time.monotonic()
    deadline, n, i = began + seconds, len(records), 0
    probe_sent: dict[str, float] = {}
    while i < n:
        now = time.monotonic()
        if now >= deadline:
            break
        due = min(n, int((now - began) * rate) + 1)
        if due > i:
            for k, key, value, headers, _ in to_messages(records[i:due], per_message):
                _produce_one(producer, names[k], value, key, headers)
            sent_at = time.time()
            probe_sent.update({probes[j]: sent_at for j in range(i, due) if j in probes})
            i = due
        producer.poll(0)
        time.sleep(0.02)
    return i, probe_sent


def _produce_one(producer: Any, topic: str, value: bytes, key: bytes, headers: Any) -> None:
    while True:
        try:
            producer.produce(topic, value, key, headers=headers)
            return
        except BufferError:
            producer.poll(0.01)


def preload(
    bootstrap: str,
    namespace: str,
    records: list[Record],
    advance: Callable[[int], None],
    per_message: int = BATCH_EVENTS,
) -> None:
    """Send every record (``per_message`` events a message) and wait until the broker
    acknowledged them all."""
    from confluent_kafka import Producer
    from shiftright_server.producers.emitter import producer_config

    producer = Producer(producer_config(bootstrap, log_level=3))  # errors only: keep bars clean
    names = [topics.named(t, namespace) for t in topics.EVENT_TOPICS]
    done = 0
    for kind, key, value, headers, count in to_messages(records, per_message):
        _produce_one(producer, names[kind], value, key, headers)
        done += count
        if done >= 10_000:
            producer.poll(0)
            advance(done)
            done = 0
    left = producer.flush(120)
    advance(done)
    if left:
        raise PhaseFailed(f"preload: the broker did not acknowledge {left} events")
