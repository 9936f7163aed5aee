"""Which partition Kafka's murmur2 partitioners give a key.

The sender groups events per partition rather than per key: a batch message is then as
large as the traffic allows, and each event still sits where its own key would have put
it (the message carries its first event's key, which maps to the same partition). This
is the same function as ``schemas.wire.partition_of`` in the pipeline, kept here because
the SDK must not import the pipeline's packages; a test checks that the two agree.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data``, unsigned 32-bit."""
    n = len(data)
    h = (0x9747B28C ^ n) & _MASK
    whole = n // 4
    for k in struct.unpack_from(f"<{whole}I", data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = n - whole * 4
    if rest:
        tail = data[whole * 4 :]
        if rest == 3:
            h ^= tail[2] << 16
        if rest >= 2:
            h ^= tail[1] << 8
        h = ((h ^ tail[0]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions
