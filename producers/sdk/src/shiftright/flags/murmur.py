"""MurmurHash3 (x86, 32 bit) and the percentage bucket flagd's ``fractional`` uses, so a
split evaluated here and one evaluated by a stock flagd evaluator put a key in the same
bucket."""

from __future__ import annotations

import struct
from collections.abc import Callable

#: An unpacker of n little-endian 32-bit blocks, per n (keys are short: few entries).
_UNPACK: dict[int, Callable[[bytes], tuple[int, ...]]] = {}


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """The unsigned 32-bit MurmurHash3_x86_32 of ``data``."""
    return _finish(_blocks(seed & 0xFFFFFFFF, data), data, len(data))


def _blocks(h: int, data: bytes) -> int:
    """The hash state after the whole 4-byte blocks of ``data`` (constants inlined: this
    runs on the app thread for a user's first percentage evaluation)."""
    blocks = len(data) >> 2
    unpack = _UNPACK.get(blocks)
    if unpack is None:
        unpack = _UNPACK.setdefault(blocks, struct.Struct(f"<{blocks}I").unpack_from)
    for k in unpack(data):
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        h ^= (k * 0x1B873593) & 0xFFFFFFFF
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    return h


def _finish(h: int, data: bytes, length: int) -> int:
    """The tail of ``data`` (its last ``len % 4`` bytes) and the final mix; ``length``
    is the length of everything hashed."""
    rest = len(data) & 3
    if rest:
        tail = len(data) - rest
        k = data[tail]
        if rest >= 2:
            k ^= data[tail + 1] << 8
        if rest == 3:
            k ^= data[tail + 2] << 16
        k = (k * 0xCC9E2D51) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        h ^= (k * 0x1B873593) & 0xFFFFFFFF
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


class FlagBuckets:
    """:func:`bucket` for one flag, its part of the hash computed once: the CBOR of
    ``[flag, key]`` starts with the flag's bytes, whose whole 4-byte blocks are hashed
    here; each key then hashes only the few bytes left of the flag and its own."""

    __slots__ = ("_h", "_pending", "_length")

    def __init__(self, flag: str) -> None:
        prefix = b"\x82" + _cbor_text(flag)
        whole = len(prefix) & ~3
        self._h = _blocks(0, prefix[:whole])
        self._pending = prefix[whole:]
        self._length = whole

    def bucket(self, key: str) -> float:
        data = self._pending + _cbor_text(key)
        h = _blocks(self._h, data)
        return _finish(h, data, self._length + len(data)) * 100 / 4294967296


def bucket(flag: str, key: str) -> float:
    """A stable position in [0, 100) for ``key`` under ``flag``, as flagd's ``fractional``
    computes it: MurmurHash3 of the canonical CBOR encoding of ``[flag, key]``, unsigned,
    scaled to 100 (a variant of weight w out of 100 covers w of the positions)."""
    return murmur3_32(_cbor_pair(flag, key)) * 100 / 4294967296


def _cbor_pair(first: str, second: str) -> bytes:
    """RFC 8949 canonical CBOR of a two-element array of text strings."""
    return b"\x82" + _cbor_text(first) + _cbor_text(second)


#: The CBOR heads of text strings shorter than 24 bytes (most keys).
_HEADS = [bytes([0x60 + n]) for n in range(24)]


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    n = len(data)
    if n < 24:
        return _HEADS[n] + data
    if n < 0x100:
        head = bytes([0x78, n])
    elif n < 0x10000:
        head = b"\x79" + n.to_bytes(2, "big")
    else:
        head = b"\x7a" + n.to_bytes(4, "big")
    return head + data
