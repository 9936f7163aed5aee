"""A request body read lazily: a head to route the statement by, then the rest as
it arrives, so an INSERT's data flows into chDB while the client is still sending."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Body:
    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.head = b""
        self.exhausted = False

    @classmethod
    def of(cls, data: bytes) -> Body:
        return cls([data] if data else [])

    def fill(self, size: int) -> bytes:
        """Grow ``head`` to at least ``size`` bytes, or to the whole body."""
        parts, have = [self.head], len(self.head)
        while have < size and not self.exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.exhausted = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.head = b"".join(parts) if len(parts) > 1 else self.head
        return self.head

    def read_all(self) -> bytes:
        return self.fill(1 << 62)

    def rest(self) -> Iterator[bytes]:
        """The chunks after ``head``, as they arrive."""
        yield from self._chunks
        self.exhausted = True
