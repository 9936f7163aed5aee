"""Load generation: simulator events in the bench's mix, serialized, batched, with probes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shiftright_server.infra.settings import KafkaSettings
from shiftright_server.schemas import wire
from shiftright_server.schemas.events import ROLLUP_KEY_FIELD

KINDS = ("usage", "error", "health", "change")  # index = position in topics.EVENT_TOPICS
MIX = {"usage": 0.85, "error": 0.05, "health": 0.0995, "change": 0.0005}
RAW_TABLES = ("events_usage", "events_error", "events_health", "events_change")
PROBES_PER_SECOND = 10
PARTITIONS = KafkaSettings().partitions  # of every topic the bench creates
PROBE_APP, PROBE_ENV = "bench", "probe"
#: (kind index, key, value): what the producers send.
Record = tuple[int, bytes, bytes]


#: Events per Kafka message (NDJSON batches, see schemas.wire); 1 sends single events.
BATCH_EVENTS = 200
#: (kind index, key, value, headers, events in it): one Kafka message.
Message = tuple[int, bytes, bytes, list[tuple[str, bytes]] | None, int]


def to_messages(records: list[Record], per_message: int) -> list[Message]:
    """Group records by topic and partition (order kept within a key) into batch messages,
    as ``Emitter.emit_many`` does; a message's key is its first event's key, which maps to
    the same partition as every other key in it."""
    if per_message <= 1:
        return [(k, key, value, None, 1) for k, key, value in records]
    groups: dict[tuple[int, int], tuple[bytes, list[bytes]]] = {}
    for k, key, value in records:
        group = (k, wire.partition_of(key, PARTITIONS))
        if group not in groups:
            groups[group] = (key, [])
        groups[group][1].append(value)
    out: list[Message] = []
    for (k, _partition), (key, values) in groups.items():
        for i in range(0, len(values), per_message):
            chunk = values[i : i + per_message]
            out.append((k, key, b"\n".join(chunk), wire.BATCH_HEADERS, len(chunk)))
    return out


def generate(
    n: int, start: datetime, end: datetime, seed: int, advance: Callable[[int], None]
) -> list[tuple[str, Record]]:
    """``n`` events in the MIX, ``ts`` in ``[start, end)``, sorted by ``ts``, serialized."""
    from shiftright_server.producers.simulator import Simulator

    sim = Simulator(seed=seed)
    chunks = max(1, min(50, n // 5000))
    step = (end - start) / chunks
    out: list[tuple[str, Record]] = []
    for c in range(chunks):
        lo, hi = start + step * c, start + step * (c + 1)
        part: list[tuple[str, Record]] = []
        for k, kind in enumerate(KINDS):
            share = _share(n, MIX[kind], chunks, c)
            part += [(e["ts"], (k, _key(e), _dumps(e))) for e in sim.generate(kind, share, lo, hi)]
        part.sort(key=lambda item: item[0])
        out += part
        advance(len(part))
    return out


def _share(n: int, fraction: float, chunks: int, c: int) -> int:
    """Chunk ``c``'s part of ``round(n * fraction)``, spread so the totals add up."""
    total = (
        n - sum(round(n * MIX[k]) for k in KINDS[1:])
        if fraction == MIX["usage"]
        else round(n * fraction)
    )
    return total * (c + 1) // chunks - total * c // chunks


def _key(event: dict[str, Any]) -> bytes:
    kind = event["kind"]
    return f"{event['app']}|{event['env']}|{event.get(ROLLUP_KEY_FIELD[kind], '')}".encode()


def _dumps(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def with_probes(
    events: list[tuple[str, Record]], every: int
) -> tuple[list[Record], dict[int, str]]:
    """Replace every ``every``-th usage slot by a probe event; (records, index → probe name)."""
    records: list[Record] = []
    probes: dict[int, str] = {}
    for i, (ts, record) in enumerate(events):
        if i % every == every // 2:
            name = f"bench.probe.{len(probes)}"
            probe = {
                "event_id": str(uuid.uuid4()),
                "kind": "usage",
                "ts": ts,
                "app": PROBE_APP,
                "env": PROBE_ENV,
                "origin": "synthetic",
                "name": name,
                "status_code": 200,
                "duration_ms": 1.0,
            }
            probes[i] = name
            record = (0, _key(probe), _dumps(probe))
        records.append(record)
    return records, probes
