"""Re-keying an error event by host, done by the rollup step while it validates the
event (so an error is validated once there, not again by a step of its own).

An error's health lives on the partition of ``app|env|host`` in ``events.health.v1``;
the error itself arrives keyed however its producer chose. The rollup step sends each
valid error to ``errors.byhost.v1`` keyed ``app|env|host``, where the attach step
(:class:`streams.error_flow.Attach`) meets it with its host's health. Each line carries
its origin position (``partition:offset:index`` in ``events.error.v1``) in the
:data:`HEADER_ORIGIN` header: a replay after a crash re-sends some errors, and the
origin tells the attach step which it has already seen.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from shiftright_server.schemas import wire
from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.streams.built import json_bytes
from shiftright_server.streams.grouping.keys import host_key

T = TypeVar("T")

Item = tuple[bytes, bytes, list[tuple[str, bytes]] | None]  # key, value, headers
HEADER_ORIGIN = "shiftright-origin"  # "partition:offset:index" in events.error.v1


def byhost_item(
    event: ErrorEvent, line: bytes, as_given: bool, origin: tuple[int, int, int]
) -> Item:
    """The message for ``errors.byhost.v1``: the line as it came when it parses to the same
    event (``as_given``; the attach step validates it again, and serializing a stack trace
    again costs more), else the event as validated (with the ts and id filled in)."""
    value = line if as_given and line else json_bytes(event)
    header = f"{origin[0]}:{origin[1]}:{origin[2]}".encode()
    return host_key(event), value, [(HEADER_ORIGIN, header)]


class Handoff(Generic[T]):
    """Models one step of this worker validated or built, by the exact line it sent, for
    the step of the same worker that reads that line next: the rollup step's errors for
    the attach step (``errors.byhost.v1``), the attach step's grouped errors for the group
    step (``errors.assigned.v1``). Validating an error (its frames are models of their
    own) is the costliest part of those steps, and the reader would otherwise validate
    each line again. Only lines that validate to exactly the model are kept (an error
    line sent as it came; a grouped error's own serialisation), at most ``limit`` of
    them, the oldest dropped first: a line the reader does not find here (another
    worker's partition, a replay, a backlog longer than the limit) it validates itself,
    with the same result. The rollup step's errors are kept 10,000 by default: live at
    50,000 events/s (2,500 errors/s) the attach step ran more than 5,000 errors behind the
    rollup step and read 42 % of them itself; an error of the pipeline bench kept here
    (its line and its event) holds about 4 KB, so about 43 MB at most.

    An ``OrderedDict`` drops its oldest in constant time; a plain dict, from which the
    reader takes lines near its start, would scan every slot left empty before the first
    line still kept to find it."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._by_line: OrderedDict[bytes, T] = OrderedDict()

    def put(self, line: bytes, model: T) -> None:
        by_line = self._by_line
        by_line[line] = model
        if len(by_line) > self.limit:
            by_line.popitem(last=False)

    def take(self, line: bytes) -> T | None:
        return self._by_line.pop(line, None)


def origins_of(headers: wire.Headers) -> list[tuple[int, int, int]]:
    """The origin of each line: ``p:o:i[,p:o:i...]``."""
    for key, value in headers or ():
        if key == HEADER_ORIGIN and value:
            return [
                (int(p), int(o), int(i))
                for p, o, i in (item.split(":") for item in value.decode().split(","))
            ]
    return []
