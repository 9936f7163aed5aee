"""Compression at the HTTP boundary: request bodies (``Content-Encoding`` and
ClickHouse's own block format behind ``decompress=1``) and streamed responses."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, cast

import lz4.block
import lz4.frame
import zstandard
from shiftright_server.infra.warehouse import errors

# Preference order when the client accepts several; lz4 is the cheapest to produce.
RESPONSE_ENCODINGS = ("lz4", "zstd", "gzip", "deflate")

_NATIVE_HEADER = struct.Struct("<BII")  # method, compressed size (with header), raw size
_CHECKSUM_BYTES = 16
_NATIVE_NONE, _NATIVE_LZ4, _NATIVE_ZSTD = 0x02, 0x82, 0x90


def decode_stream(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """Undo ``Content-Encoding`` chunk by chunk, so a body can be consumed as it arrives.
    Several back-to-back frames or members are one body (clickhouse-connect sends LZ4
    frames one per block)."""
    method = (content_encoding or "").strip().lower()
    if method in ("", "identity", "none"):
        return iter(chunks)
    factory = _DECOMPRESSORS.get(method)
    if factory is None:
        raise errors.unknown_compression(method)
    return _guarded(_frames(chunks, factory))


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` for a whole body."""
    return b"".join(decode_stream([body], content_encoding))


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "lz4": lz4.frame.LZ4FrameDecompressor,
    "zstd": lambda: zstandard.ZstdDecompressor().decompressobj(),
    "gzip": lambda: zlib.decompressobj(31),
    "x-gzip": lambda: zlib.decompressobj(31),
    "deflate": zlib.decompressobj,
}


def _frames(chunks: Iterable[bytes], factory: Callable[[], _Decompressor]) -> Iterator[bytes]:
    decompressor, pending = factory(), False
    for chunk in chunks:
        data = chunk
        while data:
            out = decompressor.decompress(data)
            pending = not decompressor.eof
            if out:
                yield out
            data = decompressor.unused_data if decompressor.eof else b""
            if decompressor.eof:
                decompressor = factory()
    if pending:
        raise errors.cannot_decompress("truncated compressed body")


def _guarded(stream: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from stream
    except errors.WarehouseError:
        raise
    except Exception as exc:  # every codec raises its own type; all mean "bad body"
        raise errors.cannot_decompress(str(exc)) from exc


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
        return cast(bytes, lz4.block.decompress(payload, uncompressed_size=raw_size))
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
        return head + cast(bytes, self._inner.compress(data))

    def flush(self) -> bytes:
        head = b"" if self._begun else self._inner.begin()
        self._begun = True
        return head + cast(bytes, self._inner.flush())


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
