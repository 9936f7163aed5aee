"""The stream worker's internal batch messages: single-event messages merged into NDJSON
batch messages per partition (:mod:`schemas.wire`), with each line's origin position
(:data:`streams.rekey.HEADER_ORIGIN`) joined into one header."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from shiftright_server.schemas import wire
from shiftright_server.streams.rekey import HEADER_ORIGIN, Item

Message = tuple[bytes, bytes, list[tuple[str, bytes]], int]  # key, value, headers, partition
#: Internal batch messages stay small: many mid-sized messages keep the producer flowing.
MESSAGE_BYTES, MESSAGE_LINES = 64 * 1024, 100


def _chunks(items: list[Item]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    size = 0
    for item in items:
        if chunk and (size + len(item[1]) > MESSAGE_BYTES or len(chunk) >= MESSAGE_LINES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1]) + 1
    if chunk:
        yield chunk


def pack_messages(items: Sequence[Item], partitions: int) -> list[Message]:
    """Single-event messages merged into NDJSON batch messages per partition, in order
    (Python consumers pay per message; order within a partition is what the next step
    relies on). Origin headers are joined line by line; the key is the first line's."""
    by_partition: dict[int, list[Item]] = {}
    for item in items:
        by_partition.setdefault(wire.partition_of(item[0], partitions), []).append(item)
    out: list[Message] = []
    for partition, group in by_partition.items():
        for lines in _chunks(group):
            value = b"\n".join(v for _, v, _ in lines)
            origins = [dict(h or ()).get(HEADER_ORIGIN, b"") for _, _, h in lines]
            headers = list(wire.BATCH_HEADERS)
            if all(origins):
                headers.append((HEADER_ORIGIN, b",".join(origins)))
            out.append((lines[0][0], value, headers, partition))
    return out
