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

from shiftright_server.schemas.events import ErrorEvent
from shiftright_server.streams.grouping.keys import host_key

Item = tuple[bytes, bytes, list[tuple[str, bytes]] | None]  # key, value, headers
HEADER_ORIGIN = "shiftright-origin"  # "partition:offset:index" in events.error.v1


def byhost_item(
    event: ErrorEvent, line: bytes, as_given: bool, origin: tuple[int, int, int]
) -> Item:
    """The message for ``errors.byhost.v1``: the line as it came when it parses to the same
    event (``as_given``; the attach step validates it again, and serializing a stack trace
    again costs more), else the event as validated (with the ts and id filled in)."""
    value = line if as_given and line else event.model_dump_json().encode()
    header = f"{origin[0]}:{origin[1]}:{origin[2]}".encode()
    return host_key(event), value, [(HEADER_ORIGIN, header)]
