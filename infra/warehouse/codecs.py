"""Compression at the HTTP boundary: request bodies (``Content-Encoding`` and
ClickHouse's own block format behind ``decompress=1``) and streamed responses."""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Protocol

import lz4.block
import lz4.frame
import zstandard

from infra.warehouse import errors

# Preference order when the client accepts several; lz4 is the cheapest to produce.
RESPONSE_ENCODINGS = ("lz4", "zstd", "gzip", "deflate")

_NATIVE_HEADER = struct.Struct("<BII")  # method, compressed size (with header), raw size
_CHECKSUM_BYTES = 16
_NATIVE_NONE, _NATIVE_LZ4, _NATIVE_ZSTD = 0x02, 0x82, 0x90


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding``; clickhouse-connect sends back-to-back LZ4 frames."""
    method = (content_encoding or "").strip().lower()
    try:
        return _decode(body, method)
    except errors.WarehouseError:
        raise
    except Exception as exc:  # every codec raises its own type; all mean "bad body"
        raise errors.cannot_decompress(str(exc)) from exc


def _decode(body: bytes, method: str) -> bytes:
    if method in ("", "identity", "none"):
        return body
    if method == "lz4":
        return _lz4_frames(body)
    if method == "zstd":
        return _zstd_frames(body)
    if method in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if method == "deflate":
        return zlib.decompress(body)
    raise errors.unknown_compression(method)


def _lz4_frames(body: bytes) -> bytes:
    parts: list[bytes] = []
    rest = body
    while rest:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        parts.append(decompressor.decompress(rest))
        if not decompressor.eof:
            raise errors.cannot_decompress("truncated LZ4 frame")
        rest = decompressor.unused_data
    return b"".join(parts)


def _zstd_frames(body: bytes) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
    with reader:
        return reader.read()


def decode_native_blocks(body: bytes) -> bytes:
    """Decode ClickHouse's compressed-block stream (``decompress=1``).

    The CityHash128 checksums are not verified: the body already crossed a
    checksummed TCP connection on loopback, and CityHash is not in the stdlib.
    """
    parts: list[bytes] = []
    pos = 0
    while pos < len(body):
        method, size, raw_size = _NATIVE_HEADER.unpack_from(body, pos + _CHECKSUM_BYTES)
        start = pos + _CHECKSUM_BYTES + _NATIVE_HEADER.size
        payload = body[start : pos + _CHECKSUM_BYTES + size]
        parts.append(_native_block(method, payload, raw_size))
        pos += _CHECKSUM_BYTES + size
    return b"".join(parts)


def _native_block(method: int, payload: bytes, raw_size: int) -> bytes:
    if method == _NATIVE_NONE:
        return payload
    if method == _NATIVE_LZ4:
        return lz4.block.decompress(payload, uncompressed_size=raw_size)
    if method == _NATIVE_ZSTD:
        return zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_size)
    raise errors.unknown_compression(f"0x{method:02x}")


def choose_encoding(accept_encoding: str | None) -> str | None:
    """The first encoding we can produce, in the client's order of listing."""
    if not accept_encoding:
        return None
    offered = [part.split(";")[0].strip().lower() for part in accept_encoding.split(",")]
    return next((enc for enc in offered if enc in RESPONSE_ENCODINGS), None)


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Lz4Stream:
    def __init__(self) -> None:
        self._inner = lz4.frame.LZ4FrameCompressor()
        self._begun = False

    def compress(self, data: bytes) -> bytes:
        head = b"" if self._begun else self._inner.begin()
        self._begun = True
        return head + self._inner.compress(data)

    def flush(self) -> bytes:
        head = b"" if self._begun else self._inner.begin()
        self._begun = True
        return head + self._inner.flush()


class _ZstdStream:
    def __init__(self) -> None:
        self._inner = zstandard.ZstdCompressor(level=1).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._inner.compress(data)

    def flush(self) -> bytes:
        return self._inner.flush()


def compressor_for(encoding: str) -> Compressor:
    """A streaming compressor producing one frame/member for the whole response."""
    if encoding == "lz4":
        return _Lz4Stream()
    if encoding == "zstd":
        return _ZstdStream()
    if encoding == "gzip":
        return zlib.compressobj(3, zlib.DEFLATED, 31)
    return zlib.compressobj(3)
