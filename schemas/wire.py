"""How events sit in Kafka messages on the raw topics.

A message value is either one JSON event, or — when the message carries the header
``content-type: application/x-ndjson`` — several JSON events, one per line, whose keys
all map to the message's partition (:func:`partition_of`, Kafka's murmur2 partitioner),
so each event sits where its own key would have put it. Batches let a producer hand Kafka hundreds of events in one message;
consumers in Python pay per message, so this is what lets one stream worker keep up with
tens of thousands of events a second. An event's position is (topic, partition, offset,
index in the message).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping, Sequence
from typing import Final

CONTENT_TYPE: Final = "content-type"
NDJSON: Final = b"application/x-ndjson"
BATCH_HEADERS: Final = [(CONTENT_TYPE, NDJSON)]

#: A batch message stays below this many bytes and events.
MAX_BATCH_BYTES: Final = 512 * 1024
MAX_BATCH_EVENTS: Final = 1000

#: Headers as a consumer reads them.
Headers = Sequence[tuple[str, bytes | None]] | None
#: Headers in any form the Kafka clients hand out or take (pairs or a mapping).
AnyHeaders = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None


def is_batch(headers: AnyHeaders) -> bool:
    items = headers.items() if isinstance(headers, Mapping) else headers or ()
    return any(k == CONTENT_TYPE and v == NDJSON for k, v in items)


def split_events(value: bytes | None, headers: AnyHeaders) -> list[bytes | None]:
    """The event payloads in one message, in order (blank lines are skipped)."""
    if value is None or not is_batch(headers):
        return [value]
    # (isspace, not strip: no copy of every line)
    return [line for line in value.split(b"\n") if line and not line.isspace()]


def pack(payloads: Sequence[bytes]) -> list[bytes]:
    """Group JSON payloads (without newlines) into batch message values."""
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    for payload in payloads:
        if chunk and (size + len(payload) + 1 > MAX_BATCH_BYTES or len(chunk) >= MAX_BATCH_EVENTS):
            out.append(b"\n".join(chunk))
            chunk, size = [], 0
        chunk.append(payload)
        size += len(payload) + 1
    if chunk:
        out.append(b"\n".join(chunk))
    return out


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (what the Java client's default partitioner and librdkafka's
    ``murmur2_random`` partitioner use for keyed messages), as an unsigned 32-bit int."""
    m = 0x5BD1E995
    n = len(data)
    h = (0x9747B28C ^ n) & 0xFFFFFFFF
    whole = n // 4
    for k in struct.unpack_from(f"<{whole}I", data):
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[whole * 4 :]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


@functools.lru_cache(maxsize=65_536)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's murmur2 partitioners give a keyed message. Cached: keys repeat
    (``app|env|host``, ``app|group_id``), and the hash in Python costs microseconds."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
