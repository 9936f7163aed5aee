"""Reading a request body within the size limit, undoing its Content-Encoding.

The limit holds on the wire and after decompression (so a small gzip bomb is refused with
413 like a large plain body), and the body is read in chunks, never past the limit.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import zstandard
from shiftright_server.producers.gateway.errors import Rejected


def too_large(limit: int, what: str = "request body") -> Rejected:
    return Rejected(413, "too_large", f"the {what} exceeds the limit of {limit} bytes")


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to be larger than ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def decode(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo gzip/deflate/zstd; 415 for other encodings, 400 for a corrupt stream."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    try:
        if name in ("gzip", "x-gzip"):
            return _inflate(body, zlib.decompressobj(16 + zlib.MAX_WBITS), limit)
        if name == "deflate":
            return _inflate(body, zlib.decompressobj(), limit)
        if name == "zstd":
            return _unzstd(body, limit)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise Rejected(400, "bad_encoding", f"the body is not valid {name}: {exc}") from None
    raise Rejected(
        415,
        "unsupported_encoding",
        f"Content-Encoding {encoding!r} is not supported; use gzip, deflate, zstd or none",
    )


def _inflate(body: bytes, inflater: zlib._Decompress, limit: int) -> bytes:
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise too_large(limit, "decompressed request body")
    if not inflater.eof:
        raise zlib.error("truncated stream")
    return out


def _unzstd(body: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(body)
    out = bytearray()
    while chunk := reader.read(64 * 1024):
        out += chunk
        if len(out) > limit:
            raise too_large(limit, "decompressed request body")
    return bytes(out)
